"""``geomon bench``: every benchmark suite as one tool, with scenarios, targets, checks, comparisons and pictures.

Each suite times geomon beside its peer in the same run, on the same input
(shapely, its STRtree, filterpy, trackintel, MovingPandas, raw point in
polygon). It checks that their answers agree before it reports a speed. A
scenario sets the suites' sizes:

- ``ci``: smoke sizes, seconds per suite; it checks the harness, not the speed
  (CI runs it);
- ``county``: a county's load (2,000-10,000 subjects, millions of fixes), about
  six minutes on two cores;
- ``province``: the suites' full sizes (10,000-100,000 subjects, tens of
  millions of fixes), an hour or more.

Every metric is held to ``benchmarks/targets.toml`` (:mod:`benchmarks.targets`).
A run writes each suite's JSON and ``bench-<scenario>.json``, which holds
every metric with its spread over ``repeat`` runs, the machine and the
versions. It also writes the pictures. ``--compare OLD.json`` then shows what
got worse by more than that spread.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import harness, report
from benchmarks import targets as thresholds

SCENARIOS = ("ci", "county", "province")


@dataclass(frozen=True)
class Suite:
    """One suite of the bench: where it lives, what it compares, and its sizes per scenario."""

    name: str
    what: str
    peer: str
    module: str
    config: str
    run: str
    #: Scenario -> overrides of the suite's config (``ci``: of its smoke-run sizes).
    sizes: dict = field(default_factory=dict)

    def build(self, scenario: str):
        """The suite's config and run function at ``scenario``'s sizes."""
        mod = importlib.import_module(f"benchmarks.{self.module}")
        cls = getattr(mod, self.config)
        overrides = self.sizes.get(scenario, {})
        config = cls.quick_run(**overrides) if scenario == "ci" else cls(**overrides)
        return config, getattr(mod, self.run)


SUITES: tuple[Suite, ...] = (
    Suite("pip", "point in polygon, 16 to 65,536 vertices", "shapely.contains_xy (prepared)", "pip", "PipConfig",
          "run_pip", {"ci": {"n_zones": 0, "vertex_counts": (16, 4_096)},
                      "county": {"n_zones": 0, "repeat": 3, "min_time_s": 0.3}, "province": {"n_zones": 0}}),
    Suite("zones", "which of 2,000 zones each point is in", "shapely STRtree query", "pip", "PipConfig", "run_pip",
          {"ci": {"outlines": (), "n_zones": 300}, "county": {"outlines": (), "repeat": 3},
           "province": {"outlines": ()}}),
    Suite("fusion", "the fusion matrix (motion x noise x interval), departures, throughput",
          "filterpy Kalman filter", "fusion", "FusionConfig",
          "run_fusion", {"county": {"filterpy_fixes": 20_000, "repeat": 3}}),
    Suite("stay", "stay points", "trackintel, MovingPandas", "staypoints", "StaypointsConfig", "run_staypoints",
          {"county": {"throughput_fixes": 5_000_000, "public_fixes": 1_000_000, "peer_fixes": 20_000,
                      "repeat": 3}}),
    Suite("encounters", "who was near whom, a day of tracks", "shapely STRtree dwithin per instant", "encounters",
          "EncountersConfig", "run_encounters",
          {"county": {"sizes": (1_000, 3_000, 10_000), "peer_instants": 24}}),
    Suite("replay", "geomon replay end to end, Parquet to alerts, stays and tracks in DuckDB", "-", "huge",
          "HugeConfig", "run_huge",
          {"county": {"fixes": 5_000_000, "subjects": 2_000, "db": True},
           "province": {"fixes": 50_000_000, "db": True}}),
    Suite("latency", "live: fix arrival to committed alert, CPU", "-", "latency", "LatencyConfig", "run_latency",
          {"county": {"subjects": (2_000, 10_000), "duration_s": 60.0, "warmup_s": 15.0}}),
    Suite("firstrun", "the demo in a fresh process, numba cache empty (cold) and filled (warm)", "-", "firstrun",
          "FirstRunConfig", "run_firstrun"),
    Suite("alerts", "geofence alert quality: false alerts, missed breaches, delay", "raw point in polygon",
          "alerts", "AlertsConfig", "run_alerts"),
    Suite("boundary", "breach decisions per noise family: false alerts, delay, breaches missed",
          "raw point in polygon, the legacy rule", "boundary", "BoundaryConfig", "run_boundary"),
    Suite("behaviour", "lost contact, check-ins, dwell, night: precision and recall", "-", "behaviour",
          "BehaviourConfig", "run_behaviour"),
)
BY_NAME = {s.name: s for s in SUITES}

#: Distributions and packages whose versions a bench result records.
VERSIONED = ("numpy", "numba", "shapely", "pyproj", "rtree", "duckdb", "pyarrow", "typer", "dask", "distributed",
             "matplotlib", "filterpy", "trackintel", "movingpandas", "geomon")


def versions() -> dict:
    """Installed versions of geomon, its dependencies and its peers (None: not installed)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def merge_metrics(payloads: list[dict]) -> list[dict]:
    """One row per metric over a suite's repeated runs: the median, the spread (max - min) and the verdict."""
    rows: dict = {}
    for p in payloads:
        for t in p["targets"]:
            row = rows.setdefault(t["key"], {k: t.get(k) for k in ("key", "name", "unit", "op", "threshold", "source")}
                                  | {"values": [], "peer_values": [], "wrong": []})
            row["values"].append(t["measured"])
            if t.get("peer_measured") is not None:
                row["peer_values"].append(t["peer_measured"])
            if t.get("void") or t.get("mismatches"):
                row["wrong"].append(t.get("void") or f"{t['mismatches']} mismatches")
    for row in rows.values():
        good = _finite(row["values"])
        row["measured"] = statistics.median(good) if good else None
        row["spread"] = max(good) - min(good) if len(good) > 1 else 0.0
        peers = _finite(row["peer_values"])
        row["peer_measured"] = statistics.median(peers) if peers else None
        row.update(thresholds.verdict(row["measured"], row, wrong=bool(row["wrong"])))
    return list(rows.values())


def run_bench(scenario: str, names=None, *, out_dir: Path, repeat: int = 1, console: Console | None = None) -> dict:
    """Run the chosen suites (all by default) at ``scenario``'s sizes; write their JSON, the bench JSON and the
    pictures into ``out_dir``; return the bench payload."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    names = list(names) if names else [s.name for s in SUITES]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown suite(s) {', '.join(unknown)}: choose from {', '.join(BY_NAME)}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    thresholds.load()   # a broken targets file fails now, not after the suites have run
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from benchmarks import floor

    payload = {"bench": scenario, "machine": harness.machine_info(), "versions": versions(), "repeat": repeat,
               "suites": {}, "memory_bandwidth": floor.memory_bandwidth(0.25 if scenario == "ci" else 1.0)}
    for name in names:
        suite = BY_NAME[name]
        config, run = suite.build(scenario)
        runs, files = [], []
        started = time.perf_counter()
        for i in range(repeat):
            path = out_dir / (f"{name}.json" if i == 0 else f"{name}-run{i + 1}.json")
            if console is not None:
                console.rule(f"[bold]{name}[/] ({scenario}{f', run {i + 1} of {repeat}' if repeat > 1 else ''}): "
                             f"{suite.what}")
            runs.append(run(config, out=path, console=console))
            files.append(path.name)
        payload["suites"][name] = {"what": suite.what, "peer": suite.peer, "seconds": time.perf_counter() - started,
                                   "files": files, "metrics": merge_metrics(runs)}
    payload["targets_met"] = all(m["status"] != "FAIL" for s in payload["suites"].values() for m in s["metrics"])
    from benchmarks import bench_plots

    payload["pictures"] = bench_plots.draw(payload, out_dir)
    suites = {name: bench_plots.read_suite(out_dir, payload, name) for name in payload["suites"]}
    payload["floor"] = floor.gaps(floor.measured_rates(suites), payload["memory_bandwidth"])
    harness.write_json(out_dir / f"bench-{scenario}.json", payload)
    return payload


def summary_table(payload: dict) -> Table:
    """Every metric of a bench run: measured (median), spread, the peer's value, the gate, the verdict."""
    table = Table(title=f"geomon bench --scenario {payload['bench']} (median of {payload['repeat']} run"
                        f"{'s' if payload['repeat'] > 1 else ''})", title_justify="left")
    for name, justify in (("suite", "left"), ("metric", "left"), ("measured", "right"), ("spread", "right"),
                          ("peer", "right"), ("required", "right"), ("result", "center")):
        table.add_column(name, justify=justify)
    for suite, s in payload["suites"].items():
        for m in s["metrics"]:
            unit = m["unit"] or ""
            cells = [suite, m["name"], "n/a" if m["measured"] is None else f"{m['measured']:,.3g}{unit}",
                     f"{m['spread']:,.2g}" if m["spread"] else "",
                     "" if m["peer_measured"] is None else f"{m['peer_measured']:,.3g}{unit}",
                     report.fmt_threshold(m), report.styled_status(m["status"], f" ({'; '.join(m['wrong'])})"
                                                                   if m["wrong"] else "")]
            table.add_row(*cells)
    return table


def floor_table(payload: dict) -> Table:
    """Each streaming kernel's throughput against the memory-bandwidth floor of the bytes it moves per item."""
    bw = payload["memory_bandwidth"]
    table = Table(title=f"Against the memory-bandwidth floor (read {bw['read_gbs']:.1f} GB/s, copy "
                        f"{bw['copy_gbs']:.1f} GB/s, {bw['threads']} threads)", title_justify="left")
    for name, justify in (("kernel", "left"), ("bytes per item", "right"), ("measured items/s", "right"),
                          ("floor items/s", "right"), ("share of the floor", "right")):
        table.add_column(name, justify=justify)
    for r in payload["floor"]:
        table.add_row(r["what"], f"{r['bytes_per_item']}", f"{r['items_per_s']:,.3g}", f"{r['floor_items_per_s']:,.3g}",
                      f"{100 * r['share_of_floor']:.1f} %")
    return table


def suites_table(payload: dict) -> Table:
    table = Table(title="Suites", title_justify="left")
    for name, justify in (("suite", "left"), ("what", "left"), ("peer in the same run", "left"),
                          ("seconds", "right"), ("JSON", "left")):
        table.add_column(name, justify=justify)
    for name, s in payload["suites"].items():
        table.add_row(name, s["what"], s["peer"], f"{s['seconds']:,.0f}", ", ".join(s["files"]))
    return table


# ----------------------------------------------------------------- comparing two runs

def _direction(op: str) -> int:
    """+1 when more is better, -1 when less is, 0 when the metric is a range."""
    return {">=": 1, "<=": -1, "<": -1}.get(op, 0)


def compare(old: dict, new: dict, *, tolerance: float = 0.05) -> list[dict]:
    """Each metric both runs have: old and new medians, the change, the noise allowed and the verdict.

    A change counts as a regression when the metric moved the wrong way by more than the larger of the two runs'
    spreads (max - min over their repeats) and ``tolerance`` times the old value, or when its verdict went from
    PASS to FAIL.
    """
    rows = []
    old_metrics = {(suite, m["key"]): m for suite, s in old.get("suites", {}).items() for m in s["metrics"]}
    for suite, s in new.get("suites", {}).items():
        for m in s["metrics"]:
            o = old_metrics.get((suite, m["key"]))
            if o is None or o["measured"] is None or m["measured"] is None:
                continue
            allowed = max(o.get("spread") or 0.0, m.get("spread") or 0.0, tolerance * abs(o["measured"]))
            moved = (m["measured"] - o["measured"]) * _direction(m["op"])
            if o["status"] == "PASS" and m["status"] == "FAIL":
                verdict = "regression"
            elif moved < -allowed:
                verdict = "regression"
            elif moved > allowed:
                verdict = "better"
            else:
                verdict = "same"
            change = (m["measured"] - o["measured"]) / abs(o["measured"]) if o["measured"] else None
            rows.append({"suite": suite, "key": m["key"], "name": m["name"], "unit": m["unit"] or "",
                         "old": o["measured"], "new": m["measured"], "change": change, "allowed": allowed,
                         "verdict": verdict})
    return rows


def compare_table(rows: list[dict], old_name: str) -> Table:
    table = Table(title=f"Against {old_name} (noise allowed: the larger spread of repeated runs, at least the "
                        f"tolerance)", title_justify="left")
    for name, justify in (("suite", "left"), ("metric", "left"), ("old", "right"), ("new", "right"),
                          ("change", "right"), ("noise allowed", "right"), ("verdict", "center")):
        table.add_column(name, justify=justify)
    style = {"regression": "bold red", "better": "green", "same": "dim"}
    for r in rows:
        table.add_row(r["suite"], r["name"], f"{r['old']:,.3g}{r['unit']}", f"{r['new']:,.3g}{r['unit']}",
                      "" if r["change"] is None else f"{100 * r['change']:+.1f} %", f"{r['allowed']:,.3g}",
                      f"[{style[r['verdict']]}]{r['verdict']}[/]")
    return table


def read_result(path: Path) -> dict:
    """A ``bench-<scenario>.json``, checked to be one."""
    import json

    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "suites" not in data or "bench" not in data:
        raise ValueError(f"{path}: not a geomon bench result (bench-<scenario>.json)")
    return data


def _print_comparison(console: Console, old: dict, new: dict, old_name: str, tolerance: float) -> int:
    """The comparison table and its counts; the number of regressions."""
    rows = compare(old, new, tolerance=tolerance)
    if old.get("bench") != new.get("bench"):
        console.print(f"[yellow]note:[/] {old_name} is a {old.get('bench')} run, this one {new.get('bench')}")
    console.print(compare_table(rows, old_name))
    worse = sum(r["verdict"] == "regression" for r in rows)
    console.print(f"{worse} regression(s), {sum(r['verdict'] == 'better' for r in rows)} better, "
                  f"{sum(r['verdict'] == 'same' for r in rows)} within noise")
    return worse


def main(scenario: str, names, *, out_dir: Path, repeat: int, check: bool, compare_with: Path | None,
         tolerance: float, console: Console, against: Path | None = None) -> int:
    """What ``geomon bench`` does: run, print the tables, compare, and the exit code (1: a target missed under
    ``check``, or a regression under ``check`` with ``compare_with``). With ``against`` (an earlier result), it
    runs nothing and compares that result with ``compare_with``."""
    old = read_result(compare_with) if compare_with is not None else None   # a bad file fails before the run
    if against is not None:
        if old is None:
            raise ValueError("--against compares two results: give --compare OLD.json too")
        worse = _print_comparison(console, old, read_result(against), str(compare_with), tolerance)
        return 1 if worse and check else 0
    payload = run_bench(scenario, names, out_dir=out_dir, repeat=repeat, console=console)
    console.rule("[bold]geomon bench[/]")
    console.print(report.machine_line(payload["machine"]))
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in payload["versions"].items() if v))
    console.print(suites_table(payload))
    console.print(summary_table(payload))
    console.print(floor_table(payload))
    for name in payload["pictures"]:
        console.print(f"picture: {Path(out_dir) / name}")
    console.print(f"JSON: {Path(out_dir) / f'bench-{scenario}.json'}")
    code = 0
    failed = [m["key"] for s in payload["suites"].values() for m in s["metrics"] if m["status"] == "FAIL"]
    if failed:
        console.print(f"[bold red]{len(failed)} target(s) missed:[/] {', '.join(failed)}")
        code = 1 if check else 0
    else:
        console.print("[bold green]every target met[/]")
    if old is not None and _print_comparison(console, old, payload, str(compare_with), tolerance) and check:
        code = 1
    return code
