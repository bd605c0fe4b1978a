"""Point-in-polygon suite: geomon against shapely on one polygon and on 2,000 zones.

Two scenarios, both from :data:`benchmarks.registry.CASES`:

* ``contains_xy`` on one prepared polygon: a smooth blob and a spiky comb (see
  :mod:`benchmarks.shapes`) at 16, 256, 4,096 and 65,536 vertices, each with
  1,000,000 points uniform over the outline's bounding box grown by 10%.
* ``zone_index_intersects``: 1,000,000 points uniform over a 50 km square
  against 2,000 zones, geomon's ``ZoneIndex.query_xy`` against
  ``shapely.STRtree.query(points, predicate="intersects")``. The shapely points,
  the tree and the ZoneIndex are all built before timing; build times are
  reported apart.

geomon and shapely run in the same process on the same arrays, and every timed
result is compared with shapely's: a speed-up on wrong answers counts as a FAIL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report, shapes
from benchmarks.registry import CASES, Case, PolygonPoints, ZonePoints, mismatches, normalise, setups

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pip.json"

POLYGON_CASE = "contains_xy"
ZONE_CASE = "zone_index_intersects"

#: (outline, vertices) -> minimum speed-up of geomon over shapely.
RATIO_TARGETS: dict[tuple[str, int], float] = {
    ("smooth", 16): 5.0,
    ("smooth", 4_096): 20.0,
    ("spiky", 4_096): 100.0,
}
#: Minimum speed-up of ZoneIndex.query_xy over the STRtree query.
ZONE_TARGET = 10.0
#: Maximum (max / min) of geomon's time per point over the smooth outlines.
SPREAD_TARGET = 2.0
#: Random stream of the zone scenario's points (the polygon cases use (outline, vertices)).
_ZONE_STREAM = 99
#: The spread target is judged from 16 to 65,536 vertices; with fewer sizes it is skipped.
SPREAD_RANGE = (16, 65_536)


@dataclass(frozen=True)
class PipConfig(harness.QuickRun):
    """Sizes and timing policy of one run of the suite."""

    n_points: int = 1_000_000
    vertex_counts: tuple[int, ...] = (16, 256, 4_096, 65_536)
    outlines: tuple[str, ...] = ("smooth", "spiky")
    n_zones: int = 2_000
    zone_points: int = 1_000_000
    repeat: int = 5
    min_time_s: float = 1.0
    seed: int = 0
    #: Replace missing geomon functions by shapely stand-ins (harness check only).
    stand_in: bool = False
    quick: bool = False

    #: Smoke-run sizes: 100,000 points, 3 repeats, no minimum time.
    QUICK: ClassVar[dict] = {"n_points": 100_000, "zone_points": 100_000, "repeat": 3, "min_time_s": 0.0}


def _status(measured: float | None, op: str, threshold: float, wrong: int) -> str:
    if wrong:
        return "FAIL"  # fast wrong answers are worth nothing
    if measured is None:
        return "SKIP"
    ok = measured >= threshold if op == ">=" else measured <= threshold
    return "PASS" if ok else "FAIL"


def _compare(case: Case, data, geomon: harness.Measurement, reference: harness.Measurement) -> tuple[int, int]:
    """Mismatches of geomon's first and last results against the reference, and the reference's true count."""
    expected = normalise(case, reference.last_result, data)
    wrong = max(
        mismatches(case, normalise(case, geomon.first_result, data), expected),
        mismatches(case, normalise(case, geomon.last_result, data), expected),
    )
    n_true = int(np.count_nonzero(expected)) if case.result == "mask" else int(expected.size)
    return wrong, n_true


def _time_case(case: Case, data, config: PipConfig) -> tuple[harness.Measurement, harness.Measurement]:
    impls = setups(case, stand_in=config.stand_in)
    geomon_label, reference_label = case.label, case.reference
    geomon_setup, stand_in = impls[geomon_label]
    reference_setup, _ = impls[reference_label]
    timing = {"repeat": config.repeat, "min_time_s": config.min_time_s}
    geomon = harness.measure(geomon_label, lambda: geomon_setup(data), stand_in=stand_in, **timing)
    reference = harness.measure(reference_label, lambda: reference_setup(data), **timing)
    return geomon, reference


def _polygon_row(outline: str, n_vertices: int, config: PipConfig) -> dict:
    case = CASES[POLYGON_CASE]
    polygon = shapes.outline(outline, n_vertices, seed=config.seed)
    x, y = shapes.uniform_points(
        polygon.bounds,
        config.n_points,
        seed=config.seed,
        stream=(list(shapes.OUTLINES).index(outline), n_vertices),
        expand=0.1,
    )
    data = PolygonPoints(polygon, x, y)
    geomon, reference = _time_case(case, data, config)
    wrong, n_true = _compare(case, data, geomon, reference)
    threshold = RATIO_TARGETS.get((outline, n_vertices))
    ratio = reference.median_s / geomon.median_s
    return {
        "case": case.name,
        "outline": outline,
        "n_vertices": shapes.n_vertices(polygon),
        "mid_line_crossings": shapes.mid_line_crossings(polygon),
        "n_points": config.n_points,
        "n_zones": None,
        "n_true": n_true,
        "geomon": geomon.to_json(config.n_points),
        "reference": reference.to_json(config.n_points),
        "ratio": ratio,
        "mismatches": wrong,
        "target": None
        if threshold is None
        else {"op": ">=", "threshold": threshold, "status": _status(ratio, ">=", threshold, wrong)},
    }


def _zone_row(config: PipConfig) -> dict:
    case = CASES[ZONE_CASE]
    zones = shapes.zone_field(config.n_zones, seed=config.seed)
    x, y = shapes.uniform_points(shapes.zone_square(), config.zone_points, seed=config.seed, stream=(_ZONE_STREAM,))
    data = ZonePoints.build(zones, x, y)
    geomon, reference = _time_case(case, data, config)
    wrong, n_true = _compare(case, data, geomon, reference)
    ratio = reference.median_s / geomon.median_s
    return {
        "case": case.name,
        "outline": "zones",
        "n_vertices": int(sum(shapes.n_vertices(zone) for zone in zones)),
        "mid_line_crossings": None,
        "n_points": config.zone_points,
        "n_zones": config.n_zones,
        "n_true": n_true,
        "geomon": geomon.to_json(config.zone_points),
        "reference": reference.to_json(config.zone_points),
        "ratio": ratio,
        "mismatches": wrong,
        "target": {"op": ">=", "threshold": ZONE_TARGET, "status": _status(ratio, ">=", ZONE_TARGET, wrong)},
    }


def _targets(rows: list[dict]) -> list[dict]:
    targets = []
    for row in rows:
        if row["target"] is None:
            continue
        if row["outline"] == "zones":
            name = f"ZoneIndex {row['n_points']:,} points x {row['n_zones']:,} zones vs STRtree"
            key = "zoneindex_vs_strtree"
        else:
            name = f"contains_xy {row['outline']} {row['n_vertices']:,} vertices vs shapely"
            key = f"contains_xy_vs_shapely@{row['outline']}_{row['n_vertices']}"
        targets.append(
            {"key": key, "name": name, "measured": row["ratio"], "unit": "x", **row["target"],
             "mismatches": row["mismatches"]}
        )

    smooth = {r["n_vertices"]: r for r in rows if r["outline"] == "smooth"}
    if not smooth:   # a run of the zones alone
        return targets
    spread = None
    if all(n in smooth for n in SPREAD_RANGE):
        per_point = [r["geomon"]["ns_per_point"] for r in smooth.values()]
        spread = max(per_point) / min(per_point)
    wrong = sum(r["mismatches"] for r in smooth.values())
    targets.append(
        {
            "key": "ns_per_point_spread",
            "name": f"geomon ns/point max/min, smooth {SPREAD_RANGE[0]:,}..{SPREAD_RANGE[1]:,} vertices",
            "measured": spread,
            "unit": "",
            "op": "<=",
            "threshold": SPREAD_TARGET,
            "status": _status(spread, "<=", SPREAD_TARGET, wrong),
            "mismatches": wrong,
        }
    )
    return targets


def run_pip(config: PipConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` (if given), write JSON to ``out`` (if given).

    Returns the JSON payload. Raises :class:`benchmarks.registry.GeomonMissing`
    when a geomon function is missing and ``config.stand_in`` is false.
    """
    progress = Console(stderr=True, quiet=console is None)
    # Fail fast, before minutes of timing, if geomon is missing.
    for name in (POLYGON_CASE, ZONE_CASE):
        setups(CASES[name], stand_in=config.stand_in)

    # Taken before the run, so the load average is other people's work, not ours.
    machine = harness.machine_info()
    rows = []
    for outline in config.outlines:
        for n_vertices in config.vertex_counts:
            what = f"{POLYGON_CASE} {outline} {n_vertices:,} vertices, {config.n_points:,} points"
            progress.print(f"[dim]timing {what}[/]")
            rows.append(_polygon_row(outline, n_vertices, config))
    if config.n_zones > 0:
        progress.print(f"[dim]timing {ZONE_CASE} {config.zone_points:,} points x {config.n_zones:,} zones[/]")
        rows.append(_zone_row(config))

    targets = _targets(rows)
    payload = {
        "suite": "pip",
        "schema_version": 1,
        "machine": machine,
        "config": dataclasses.asdict(config),
        "stand_in": any(r["geomon"]["stand_in"] for r in rows),
        "cases": rows,
        "targets": targets,
        "mismatches": sum(r["mismatches"] for r in rows),
    }
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


# --- printing -------------------------------------------------------------------

_STATUS_STYLE = report.STATUS_STYLE


def _mps(impl: dict) -> str:
    return f"{impl['points_per_s'] / 1e6:,.2f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def _fmt_target(target: dict | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    status = target["status"]
    return f"{target['op']} {target['threshold']:g}x", f"[{_STATUS_STYLE[status]}]{status}[/]"


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """The three tables of a run: speeds with targets, build and warm-up times, targets."""
    machine = payload["machine"]
    rows = payload["cases"]
    title = "Point in polygon: geomon vs shapely"
    if payload["stand_in"]:
        title += " [bold red](STAND-IN: shapely plays geomon; numbers say nothing about geomon)[/]"
    console.print(
        f"[bold]{title}[/]\n"
        f"{machine['cpu']}, nproc {machine['nproc']}, numba threads {machine['numba_threads']}; "
        f"numpy {machine['numpy']}, numba {machine['numba']}, shapely {machine['shapely']} (GEOS {machine['geos']}); "
        f"{machine['date_utc']}; load average {report.load_text(machine)}"
    )

    speed = Table(title="Speed (median of repeats; Mpt/s = million points per second)")
    for name, justify in [
        ("case", "left"),
        ("outline", "left"),
        ("vertices", "right"),
        ("mid-line crossings", "right"),
        ("points", "right"),
        ("inside / pairs", "right"),
        ("geomon Mpt/s", "right"),
        ("shapely Mpt/s", "right"),
        ("ratio", "right"),
        ("mismatches", "right"),
        ("target", "right"),
        ("result", "center"),
    ]:
        speed.add_column(name, justify=justify)
    for r in rows:
        outline = f"{r['n_zones']:,} zones" if r["outline"] == "zones" else r["outline"]
        crossings = "-" if r["mid_line_crossings"] is None else str(r["mid_line_crossings"])
        wrong = f"[bold red]{r['mismatches']:,}[/]" if r["mismatches"] else "0"
        speed.add_row(
            r["case"],
            outline,
            f"{r['n_vertices']:,}",
            crossings,
            f"{r['n_points']:,}",
            f"{r['n_true']:,}",
            _mps(r["geomon"]),
            _mps(r["reference"]),
            f"{r['ratio']:,.1f}x",
            wrong,
            *_fmt_target(r["target"]),
        )
    console.print(speed)
    load = machine.get("load_average_1_5_15")
    if load is not None and load[0] > 0.25 * machine["nproc"]:
        console.print(
            f"[bold yellow]warning:[/] load average {load[0]:.2f} on {machine['nproc']} cores when the run started: "
            "parallel timings stall when a worker thread is descheduled; take published numbers on an idle machine "
            "(or compare with --threads 1)."
        )

    builds = Table(title="Setup, first call (warm-up: compile, lazy index build) and median, ms")
    for name in ["case", "outline", "vertices", "geomon setup", "geomon first call", "geomon median",
                 "peer", "peer setup", "peer first call", "peer median"]:
        builds.add_column(name, justify="left" if name in ("case", "outline", "peer") else "right")
    for r in rows:
        g, p = r["geomon"], r["reference"]
        builds.add_row(
            r["case"],
            r["outline"],
            f"{r['n_vertices']:,}",
            _ms(g["setup_s"]),
            _ms(g["first_call_s"]),
            _ms(g["median_s"]),
            p["label"],
            _ms(p["setup_s"]),
            _ms(p["first_call_s"]),
            _ms(p["median_s"]),
        )
    console.print(builds)

    targets = Table(title="Targets")
    for name, justify in [("target", "left"), ("measured", "right"), ("required", "right"), ("result", "center")]:
        targets.add_column(name, justify=justify)
    for t in payload["targets"]:
        measured = "n/a" if t["measured"] is None else f"{t['measured']:,.2f}{t['unit']}"
        note = " (mismatches)" if t["mismatches"] else " (stand-in)" if payload["stand_in"] else ""
        targets.add_row(
            t["name"],
            measured,
            f"{t['op']} {t['threshold']:g}{t['unit']}",
            f"[{_STATUS_STYLE[t['status']]}]{t['status']}{note}[/]",
        )
    console.print(targets)

    if payload["mismatches"]:
        console.print(f"[bold red]{payload['mismatches']:,} mismatches against shapely: the speeds above are void.[/]")
    if out is not None:
        console.print(f"JSON written to {out}")

