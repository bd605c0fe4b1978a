"""Encounters suite: geomon's encounter search beside a shapely STRtree ``dwithin`` query per time slice.

Data (:func:`day_of_tracks`): ``n_tracks`` subjects over one day, a fix every
``interval_s`` on a common clock, 3 m of noise; each lives around a home in
one of six towns of a 40 km county (grown at constant density for the
other sizes), alternating stays of 20 minutes to 3 hours
with straight moves at 1.2-15 m/s to places about 2 km from home. Dense on
purpose: a few hundred thousand stretches within 30 m a day at 10,000 tracks.

* **geomon**: :func:`geomon.kernels.encounters.encounter_intervals` plus
  :func:`~geomon.kernels.encounters.merge_intervals` on the projected arrays
  (the search ``geomon.encounters`` runs after reading and projecting), every
  stretch within ``distance_m`` on straight-line interpolation between fixes;
* **STRtree**: the peer, what one writes with shapely: per reporting instant,
  ``STRtree(points).query(points, predicate="dwithin", distance=D)``. It only
  sees the instants (not the moves between them) and is timed on
  ``peer_instants`` instants spread over the day, extrapolated to all of them.

The two must agree at those instants: every pair the STRtree finds within D
at an instant is inside one of geomon's stretches for that pair, and no
stretch covers an instant at which the pair is farther apart (``mismatches``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import shapely
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "encounters.json"
#: The issue's target: 10,000 tracks x 1 day at 30 s searched in under this many seconds.
TARGET_S = 5.0
TARGET_TRACKS = 10_000


@dataclass(frozen=True)
class EncountersConfig(harness.QuickRun):
    """Sizes and search parameters of one run of the suite."""

    n_tracks: int = 10_000
    #: Track counts for the growth table (each one day); sizes that would not fit in memory are skipped.
    sizes: tuple = (1_000, 3_000, 10_000, 30_000, 100_000)
    hours: float = 24.0
    interval_s: float = 30.0
    distance_m: float = 30.0
    min_duration_s: float = 300.0
    max_gap_s: float = 120.0
    slice_s: float = 120.0
    cell_m: float = 150.0
    peer_instants: int = 48
    repeat: int = 3
    min_time_s: float = 0.0
    seed: int = 1
    quick: bool = False
    threads: int = field(default_factory=lambda: int(os.cpu_count() or 1))

    #: Smoke-run sizes: 200 tracks, a growth table of two sizes, 6 peer instants.
    QUICK: ClassVar[dict] = {"n_tracks": 200, "sizes": (100, 200), "peer_instants": 6, "repeat": 1}


def day_of_tracks(n_tracks: int, hours: float = 24.0, interval_s: float = 30.0, seed: int = 0):
    """``offsets, t_s, x_m, y_m`` of ``n_tracks`` simulated subjects (module docstring), fixes on a common clock.

    The county grows with the tracks (40 km and six towns at 10,000 tracks; the
    side as the square root, the towns in proportion), so the density of people,
    and so the number of encounters per person, stays the same at every size.
    """
    side_m = 40_000.0 * np.sqrt(n_tracks / 10_000)
    n_towns = max(1, round(6 * n_tracks / 10_000))
    rng = np.random.default_rng(seed)
    n_fix = int(hours * 3600 / interval_s)
    clock = np.arange(n_fix) * interval_s
    towns = rng.uniform(0.1 * side_m, 0.9 * side_m, (n_towns, 2))
    home = towns[rng.integers(n_towns, size=n_tracks)] + rng.normal(0.0, 1500.0, (n_tracks, 2))
    x = np.empty((n_tracks, n_fix))
    y = np.empty((n_tracks, n_fix))
    for s in range(n_tracks):
        kt, kx, ky = [0.0], [home[s, 0]], [home[s, 1]]
        here, now = home[s], 0.0
        while now < hours * 3600:
            now += rng.uniform(1200.0, 10800.0)   # a stay
            kt.append(now), kx.append(here[0]), ky.append(here[1])
            there = home[s] + rng.normal(0.0, 2000.0, 2) if rng.random() < 0.7 else home[s]
            now += float(np.hypot(*(there - here))) / rng.uniform(1.2, 15.0)
            kt.append(now), kx.append(there[0]), ky.append(there[1])
            here = there
        x[s] = np.interp(clock, kt, kx)
        y[s] = np.interp(clock, kt, ky)
    x += rng.normal(0.0, 3.0, x.shape)
    y += rng.normal(0.0, 3.0, y.shape)
    offsets = np.arange(n_tracks + 1, dtype=np.int64) * n_fix
    return offsets, np.tile(clock, n_tracks), x.ravel(), y.ravel()


def _search(data, c: EncountersConfig):
    from geomon.kernels import encounters as K

    offsets, t, x, y = data
    iv = K.encounter_intervals(offsets, t, x, y, c.distance_m, c.max_gap_s, c.slice_s, c.cell_m, threads=c.threads)
    iv = iv[np.lexsort((iv[:, K.E_START], iv[:, K.E_B], iv[:, K.E_A]))]
    return K.merge_intervals(iv)


def _strtree_pairs(points: np.ndarray, distance_m: float) -> np.ndarray:
    """Pairs (i < j) of one instant's points within ``distance_m``, by shapely's STRtree."""
    tree = shapely.STRtree(points)
    i, j = tree.query(points, predicate="dwithin", distance=distance_m)
    keep = i < j
    return np.column_stack([i[keep], j[keep]])


def _mismatches(stretches: np.ndarray, data, instants: np.ndarray, distance_m: float, n_tracks: int) -> int:
    """Pairs within at an instant by the STRtree but in no stretch, plus pairs in a stretch but not within then."""
    from geomon.kernels import encounters as K

    offsets, t, x, y = data
    n_fix = offsets[1]
    bad = 0
    for k in instants:
        pts = shapely.points(x[k::n_fix], y[k::n_fix])
        peer = {tuple(p) for p in _strtree_pairs(pts, distance_m).tolist()}
        tau = t[k]
        on = (stretches[:, K.E_START] <= tau) & (stretches[:, K.E_END] >= tau)
        ours = {(int(a), int(b)) for a, b in stretches[on][:, [K.E_A, K.E_B]]}
        # A stretch may end exactly at the instant by rounding: count only clear disagreements.
        for a, b in ours ^ peer:
            d = np.hypot(x[a * n_fix + k] - x[b * n_fix + k], y[a * n_fix + k] - y[b * n_fix + k])
            bad += abs(d - distance_m) > 1e-6
    return bad


def _fits(n_tracks: int, c: EncountersConfig) -> bool:
    """Whether a size fits in physical memory with room to spare (arrays, records, intervals: ~120 bytes a fix)."""
    n_fix = n_tracks * c.hours * 3600 / c.interval_s
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return n_tracks <= c.n_tracks
    return n_fix * 120 < 0.6 * total


def run_encounters(config: EncountersConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` and write JSON to ``out`` (each if given); return the payload."""
    c = config
    progress = report.progress_console(console)
    machine = harness.machine_info()
    timing = {"repeat": c.repeat, "min_time_s": c.min_time_s}
    with report.step(progress, f"simulating {c.n_tracks:,} tracks x {c.hours:g} h every {c.interval_s:g} s"):
        data = day_of_tracks(c.n_tracks, c.hours, c.interval_s, c.seed)
    n_fixes = int(data[1].size)
    with report.step(progress, f"geomon encounter search on {n_fixes:,} fixes, {c.threads} threads"):
        geo = harness.measure("geomon.kernels.encounters", lambda: lambda: _search(data, c), **timing)
    stretches = geo.last_result
    n_fix = int(data[0][1])
    instants = np.unique(np.linspace(0, n_fix - 1, min(c.peer_instants, n_fix)).astype(np.int64))
    with report.step(progress, f"shapely STRtree dwithin on {instants.size} of {n_fix:,} instants"):
        pts = [shapely.points(data[2][k::n_fix], data[3][k::n_fix]) for k in instants]
        peer = harness.measure("shapely.STRtree.query dwithin per instant",
                               lambda: lambda: [_strtree_pairs(p, c.distance_m) for p in pts], repeat=1)
    peer_all_s = peer.median_s / instants.size * n_fix
    mismatches = _mismatches(stretches, data, instants, c.distance_m, c.n_tracks)
    long = stretches[(stretches[:, 3] - stretches[:, 2]) >= c.min_duration_s]
    growth = []
    for n in c.sizes:
        if not _fits(n, c):
            growth.append({"n_tracks": n, "skipped": "would not fit in memory"})
            continue
        with report.step(progress, f"growth: {n:,} tracks"):
            d = data if n == c.n_tracks else day_of_tracks(n, c.hours, c.interval_s, c.seed)
            m = harness.measure(f"{n} tracks", lambda: lambda: _search(d, c), repeat=1)
            growth.append({"n_tracks": n, "n_fixes": int(d[1].size), "median_s": m.median_s,
                           "fixes_per_s": d[1].size / m.median_s, "stretches": int(m.last_result.shape[0])})
            del d
    at_target = c.n_tracks == TARGET_TRACKS and c.hours == 24.0 and c.interval_s == 30.0
    targets = [
        report.target(f"search, {c.n_tracks:,} tracks x {c.hours:g} h", geo.median_s, "<", TARGET_S, unit=" s",
                      void="" if at_target or c.quick else "not the issue's size"),
        report.target("disagreements with the STRtree at sampled instants", float(mismatches), "<=", 0),
        report.target("speed-up over the STRtree per instant", peer_all_s / geo.median_s, ">=", 1.0, unit="x"),
    ]
    payload = {
        "suite": "encounters",
        "schema_version": 1,
        "machine": machine,
        "config": dataclasses.asdict(c),
        "n_fixes": n_fixes,
        "geomon": {**geo.to_json(n_fixes), "stretches": int(stretches.shape[0]),
                   "encounters_min_duration": int(long.shape[0])},
        "peer": {**peer.to_json(int(instants.size) * c.n_tracks), "instants_timed": int(instants.size),
                 "instants_total": n_fix, "extrapolated_s": peer_all_s},
        "mismatches": mismatches,
        "growth": growth,
        "targets": targets,
    }
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """The search beside the peer, the growth table and the targets."""
    c, geo, peer = payload["config"], payload["geomon"], payload["peer"]
    console.print(f"[bold]Encounters: geomon vs shapely STRtree dwithin per instant[/]\n"
                  f"{report.machine_line(payload['machine'])}")
    table = Table(title=f"{c['n_tracks']:,} tracks x {c['hours']:g} h every {c['interval_s']:g} s "
                        f"({payload['n_fixes']:,} fixes), within {c['distance_m']:g} m")
    for name in ("method", "seconds", "fixes/s", "result"):
        table.add_column(name, justify="left" if name in ("method", "result") else "right")
    table.add_row(f"geomon ({c['threads']} threads), median of {geo['repeats']}", f"{geo['median_s']:.2f}",
                  f"{payload['n_fixes'] / geo['median_s']:,.0f}",
                  f"{geo['stretches']:,} stretches within, {geo['encounters_min_duration']:,} of "
                  f"{c['min_duration_s']:g} s or more")
    table.add_row(f"STRtree per instant ({peer['instants_timed']} of {peer['instants_total']:,} timed, extrapolated)",
                  f"{peer['extrapolated_s']:.1f}", f"{payload['n_fixes'] / peer['extrapolated_s']:,.0f}",
                  f"instants only; {payload['mismatches']} disagreements")
    console.print(table)
    grow = Table(title="How the search grows (one day each)")
    for name in ("tracks", "fixes", "seconds", "fixes/s", "stretches"):
        grow.add_column(name, justify="right")
    for g in payload["growth"]:
        if "skipped" in g:
            grow.add_row(f"{g['n_tracks']:,}", "-", g["skipped"], "-", "-")
        else:
            grow.add_row(f"{g['n_tracks']:,}", f"{g['n_fixes']:,}", f"{g['median_s']:.2f}", f"{g['fixes_per_s']:,.0f}",
                         f"{g['stretches']:,}")
    console.print(grow)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON written to {out}")
