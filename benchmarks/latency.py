"""Latency suite: the live path (geomon.run.live.LiveMonitor) driven in real time by N subjects at a reporting interval.

A synthetic county (a 40 km square permitted area, 400 forbidden discs of 80 m)
holds ``subjects`` people who each report a fix every ``interval_s`` seconds at
their own phase, a few metres around home. ``breach_share`` of them, at a random
moment after the warm-up, start reporting from inside a forbidden disc: each
such subject raises one ``forbidden_entry`` once the ordinary profile confirms it
(3 fixes over 30 s). The feed runs in real time, in the same process as the
engine: every ``tick_s`` it hands the fixes that came due to
:meth:`LiveMonitor.offer` (as a device gateway's client would) and calls
:meth:`LiveMonitor.tick`, which commits the micro-batch (and, every
``checkpoint_every_s``, the checkpoint) to a DuckDB file.

Measured after ``warmup_s``:

* **per micro-batch**: wall time of offer + tick (validation, the Monitor, the
  DuckDB transaction), p50 / p99 / max;
* **per alert**: from the arrival of the fix that confirmed it (the moment the
  device took it: no transit time, so the wait for the next micro-batch is
  counted) to the return of the commit that stored it
  (:attr:`geomon.run.live.TickResult.latency_s`), p50 / p99 / max;
* **CPU**: process CPU time spent in offer + tick over the wall time, in % of one
  core (the feed's own time is excluded; numba and DuckDB threads are included).

With ``companion_share`` > 0, that share of the subjects each has a person of
concern (``C`` + its id) who reports like a subject, 10 m from it all the time:
every such pair is one open meeting, so the frequent-contact watch
(:mod:`geomon.engine.meetings`) searches and carries them at every micro-batch.

Targets (issue 8): at 10,000 subjects reporting every 15 s, p99 alert latency
<= 1 s with the engine under 20 % of one core.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latency.json"
LATENCY_P99_TARGET_S = 1.0
CPU_TARGET_PCT = 20.0
CENTRE = (117.7, 37.5)


@dataclass(frozen=True)
class LatencyConfig(harness.QuickRun):
    subjects: tuple[int, ...] = (10_000, 100_000)
    interval_s: float = 15.0
    duration_s: float = 150.0
    warmup_s: float = 30.0
    tick_s: float = 0.25
    checkpoint_every_s: float = 5.0
    breach_share: float = 0.01
    n_forbidden: int = 400
    companion_share: float = 0.0
    seed: int = 0
    #: Seconds a breach must last to be confirmed (None: the rules' own, 30 s for ordinary subjects). A smoke run
    #: lasts 12 s, shorter than that: it confirms in 4 s, so that forbidden entries are raised whatever the time of
    #: day (at night the night detectors raise alerts anyway; by day only the geofence does).
    confirm_s: float | None = None
    quick: bool = False

    QUICK = {"subjects": (500,), "duration_s": 12.0, "warmup_s": 3.0, "interval_s": 2.0, "breach_share": 0.05,
             "confirm_s": 4.0}


def _world(n: int, n_forbidden: int, rng: np.random.Generator, folder: Path):
    """Zones and subjects files of the synthetic county; homes and the disc each subject would enter (metres)."""
    import json

    from geomon.geo.crs import transverse_mercator
    from geomon.sim.output import zone_collection

    frame = transverse_mercator(CENTRE[0])
    cx, cy = (float(v[0]) for v in frame.project([CENTRE[0]], [CENTRE[1]]))
    half = 20_000.0
    discs = np.column_stack([cx + rng.uniform(-half + 500, half - 500, n_forbidden),
                             cy + rng.uniform(-half + 500, half - 500, n_forbidden)])
    geoms = [shapely.box(cx - half, cy - half, cx + half, cy + half)]
    geoms += [shapely.Point(x, y).buffer(80.0, 16) for x, y in discs]
    props = [{"zone_id": "county", "kind": "permitted"}]
    props += [{"zone_id": f"forbidden-{i:04d}", "kind": "forbidden"} for i in range(n_forbidden)]
    (folder / "zones.geojson").write_text(json.dumps(zone_collection(frame, geoms, props)))
    home = np.column_stack([cx + rng.uniform(-half + 1000, half - 1000, n),
                            cy + rng.uniform(-half + 1000, half - 1000, n)])
    tree = shapely.STRtree(shapely.points(discs))
    near = tree.query_nearest(shapely.points(home), max_distance=400.0, return_distance=False)
    home[np.unique(near[0])] += 1500.0                                    # nobody lives beside a forbidden zone
    ids = [f"P{i:06d}" for i in range(n)]
    lines = ["subject_id,level,office_id,home_zone_id"] + [f"{s},ordinary,office-01," for s in ids]
    (folder / "subjects.csv").write_text("\n".join(lines) + "\n")
    target = discs[rng.integers(0, n_forbidden, n)]
    return frame, np.array(ids, dtype=object), home, target


def _rules(config: LatencyConfig):
    """The packaged rules, with the ordinary profile (every subject here) confirming after ``config.confirm_s``."""
    if config.confirm_s is None:
        return None
    from dataclasses import replace

    from geomon.rules.load import default_rules

    rules = default_rules()
    ordinary = {**rules.profiles["ordinary"], "confirm_s": float(config.confirm_s)}
    return replace(rules, profiles={**rules.profiles, "ordinary": ordinary})


def run_one(n: int, config: LatencyConfig, progress: Console) -> dict:
    """Drive the live path with ``n`` subjects for ``config.duration_s`` seconds of wall time."""
    from geomon.run.live import LiveMonitor

    rng = np.random.default_rng(config.seed + n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame, ids, home, target = _world(n, config.n_forbidden, rng, folder)
        phase = rng.uniform(0, config.interval_s, n)
        breacher = rng.random(n) < config.breach_share
        confirm_s = 30.0 if config.confirm_s is None else config.confirm_s
        breach_at = rng.uniform(config.warmup_s, max(config.warmup_s, config.duration_s - confirm_s - 15.0), n)
        # Companions: persons of concern walking 10 m from a share of the subjects (tracked people, not subjects).
        walked = np.flatnonzero(rng.random(n) < config.companion_share)
        concern = {f"C{ids[i]}": [ids[i]] for i in walked} or None
        with report.step(progress, f"{n:,} subjects: building the engine"):
            live = LiveMonitor(folder / "zones.geojson", folder / "subjects.csv", _rules(config),
                               db=folder / "live.duckdb",
                               clock="wall", checkpoint_every_s=config.checkpoint_every_s, concern=concern)
        ids = np.concatenate([ids, np.array([f"C{ids[i]}" for i in walked], dtype=object)])
        home = np.concatenate([home, home[walked] + [10.0, 0.0]])
        target, breacher = np.concatenate([target, target[walked]]), np.r_[breacher, np.zeros(walked.size, bool)]
        breach_at = np.r_[breach_at, breach_at[walked]]
        phase = np.r_[phase, rng.uniform(0, config.interval_s, walked.size)]
        ids_arrow = pa.array(ids.tolist(), pa.string())
        start = time.time()
        last_k = np.floor((0.0 - phase) / config.interval_s)
        batch_s, alert_s, cpu_s, n_fixes, n_ticks, seen = [], [], 0.0, 0, 0, set()
        with report.step(progress, f"{n:,} subjects: {config.duration_s:g} s in real time"):
            while True:
                now = time.time()
                elapsed = now - start
                if elapsed >= config.duration_s:
                    break
                k = np.floor((elapsed - phase) / config.interval_s)
                due = np.flatnonzero(k > last_k)
                last_k = k
                table = _fixes(due, ids_arrow, home, target, breacher, breach_at, phase, k, config, start, rng, frame)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                if table is not None:   # each fix arrived when it was taken (no transit): it waits for the tick
                    live.offer(table, source="feed", arrived=table.column("ts").cast(pa.int64()).to_numpy() / 1e3)
                result = live.tick()
                wall1 = time.perf_counter()
                cpu1 = time.process_time()
                if elapsed >= config.warmup_s:
                    batch_s.append(wall1 - wall0)
                    cpu_s += cpu1 - cpu0
                    n_fixes += 0 if table is None else table.num_rows
                    n_ticks += 1
                    for alert_id, latency in zip(result.alerts.column("alert_id").to_pylist(), result.latency_s):
                        if alert_id not in seen:         # a new alert (later events of one only end it)
                            seen.add(alert_id)
                            alert_s.append(float(latency))
                time.sleep(max(0.0, config.tick_s - (time.time() - now)))
            measured = time.time() - start - config.warmup_s
        live.close()
    batch = report.quantiles(np.array(batch_s), (50, 99, 100))
    alerts = report.quantiles(np.array(alert_s), (50, 99, 100))
    return {"subjects": n, "companions": int(walked.size), "fixes_per_s": n_fixes / measured,
            "ticks": n_ticks, "alerts": len(alert_s),
            "breaching_subjects": int(breacher.sum()), "batch_s": batch, "alert_latency_s": alerts,
            "cpu_pct": 100.0 * cpu_s / measured, "measured_s": measured,
            # Every measurement, for the distributions geomon bench draws.
            "samples": {"alert_latency_s": [round(float(v), 5) for v in alert_s],
                        "batch_s": [round(float(v), 5) for v in batch_s]}}


def _fixes(due, ids_arrow, home, target, breacher, breach_at, phase, k, config, start, rng, frame):
    if due.size == 0:
        return None
    report_s = phase[due] + k[due] * config.interval_s                  # the event time, seconds after start
    inside = breacher[due] & (report_s >= breach_at[due])
    x = np.where(inside, target[due, 0], home[due, 0]) + rng.normal(0, 3.0, due.size)
    y = np.where(inside, target[due, 1], home[due, 1]) + rng.normal(0, 3.0, due.size)
    lon, lat = frame.unproject(x, y)
    ts = ((start + report_s) * 1000).astype(np.int64)
    return pa.table({"subject_id": ids_arrow.take(pa.array(due)), "ts": pa.array(ts).cast(pa.timestamp("ms", "UTC")),
                     "lon": pa.array(np.asarray(lon, np.float64)), "lat": pa.array(np.asarray(lat, np.float64)),
                     "source": pa.array(["gnss"] * due.size, pa.string()),
                     "accuracy_m": pa.array(np.full(due.size, 3.0, np.float32))})


def run_latency(config: LatencyConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    progress = report.progress_console(console)
    machine = harness.machine_info()
    if console is not None:
        report.warn_if_loaded(machine, console)
    rows = [run_one(n, config, progress) for n in config.subjects]
    targets = []
    for r in rows:
        void = "" if r["alerts"] else "no alert was raised"
        targets.append(report.target(f"{r['subjects']:,} subjects: p99 fix arrival -> committed alert",
                                     r["alert_latency_s"]["p99"], "<=", LATENCY_P99_TARGET_S, unit=" s", void=void,
                                     key=f"alert_p99_s@{r['subjects']}"))
        targets.append(report.target(f"{r['subjects']:,} subjects: engine CPU, % of one core", r["cpu_pct"], "<",
                                     CPU_TARGET_PCT, unit=" %", key=f"cpu_pct@{r['subjects']}"))
    payload = {"suite": "latency", "config": asdict(config), "machine": machine, "runs": rows, "targets": targets}
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    c = payload["config"]
    table = Table(title=f"Live path, real time: a fix every {c['interval_s']:g} s per subject, a micro-batch every "
                        f"{c['tick_s']:g} s, a checkpoint every {c['checkpoint_every_s']:g} s "
                        f"({c['duration_s']:g} s, first {c['warmup_s']:g} s not counted)", title_justify="left")
    for name in ("subjects", "fixes/s", "micro-batch p50 / p99 / max ms", "alerts", "alert latency p50 / p99 / max s",
                 "CPU % of one core"):
        table.add_column(name, justify="right")
    for r in payload["runs"]:
        b, a = r["batch_s"], r["alert_latency_s"]
        walked = f" (+{r['companions']:,} companions)" if r.get("companions") else ""
        table.add_row(f"{r['subjects']:,}{walked}", f"{r['fixes_per_s']:,.0f}",
                      " / ".join(report.fmt(None if v is None else 1000 * v, ",.1f") for v in b.values()),
                      f"{r['alerts']:,}", " / ".join(report.fmt(v, ".3f") for v in a.values()), f"{r['cpu_pct']:.1f}")
    console.print(report.machine_line(payload["machine"]))
    console.print(table)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON: {out}")
