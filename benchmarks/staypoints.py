"""Stay-point suite: the sliding-method kernel's throughput, the public path, trackintel and MovingPandas beside them.

Input: the tracks of a ``"mixed"`` scenario (:func:`geomon.sim.scenarios.scenario`:
home, work and errands at a 15 s interval, satellite, cell and Wi-Fi fixes)
repeated to about 20 million fixes, each copy a track of its own; thresholds
100 m, 5 min, gap 15 min (trackintel's defaults).

- **kernel**: :func:`geomon.kernels.staypoints.find_staypoints` on the ragged
  arrays (int64 ms, lon/lat degrees). Timed: the ECEF coordinates, the walk,
  the centroids and the output; not timed: sorting, deduplicating and Arrow,
  which the next row adds.
- **public**: ``geomon.staypoints`` on an Arrow table of the first
  ``public_fixes`` of those fixes, sorted as :func:`geomon.io.load.load_fixes`
  returns them.
- **peers**, on the first ``peer_fixes`` fixes (whole tracks) when importable
  (the ``bench`` extra): trackintel's ``generate_staypoints(method="sliding")``,
  which must give the same stay points (subject, start, finish) as geomon run
  on trackintel's sphere (haversine, R = 6,371 km), and MovingPandas'
  ``TrajectoryStopDetector`` (a maximum diameter instead of a distance from an
  anchor: only its count is reported).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report, tracks

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "staypoints.json"
SCENARIO = "mixed"
#: Million fixes per second of the kernel.
THROUGHPUT_TARGET_M = 100.0
#: trackintel's haversine radius (``point_haversine_dist``), m.
TRACKINTEL_RADIUS_M = 6_371_000.0
PEERS = ("trackintel", "movingpandas")


@dataclass(frozen=True)
class StaypointsConfig(harness.QuickRun):
    """Sizes, thresholds and timing policy of one run of the suite."""

    n_subjects: int = 40
    hours: float = 12.0
    seed: int = 2
    interval_s: float = 15.0
    throughput_fixes: int = 20_000_000
    public_fixes: int = 2_000_000
    peer_fixes: int = 50_000
    dist_threshold_m: float = 100.0
    time_threshold_s: float = 300.0
    gap_threshold_s: float = 900.0
    repeat: int = 5
    min_time_s: float = 1.0
    #: Peer runs take seconds each; a few suffice.
    peer_repeat: int = 3
    quick: bool = False

    #: Smoke-run sizes: 6 subjects x 4 h, 1M fixes, 100k through the public path, 5,000 for the peers.
    QUICK: ClassVar[dict] = {"n_subjects": 6, "hours": 4.0, "throughput_fixes": 1_000_000, "public_fixes": 100_000,
                  "peer_fixes": 5_000, "repeat": 3, "min_time_s": 0.0, "peer_repeat": 1}

    @property
    def time_threshold_ms(self) -> int:
        return round(self.time_threshold_s * 1000)

    @property
    def gap_threshold_ms(self) -> int:
        return round(self.gap_threshold_s * 1000)


@dataclass(frozen=True)
class Tracks:
    """Ragged tracks: CSR offsets, int64 ms times, lon/lat degrees."""

    offsets: np.ndarray
    t_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    def head(self, n_fixes: int) -> Tracks:
        """The first ``n_fixes`` fixes: whole tracks, the last one cut."""
        sub = tracks.first_tracks(self.offsets, n_fixes)
        m = int(sub[-1])
        return Tracks(sub, *(np.ascontiguousarray(a[:m]) for a in (self.t_ms, self.lon, self.lat)))

    def table(self) -> pa.Table:
        """Fixes as load_fixes returns them: subject ``"track-000042"``, sorted by (subject_id, ts)."""
        lengths = np.diff(self.offsets)
        names = np.array([f"track-{s:06d}" for s in range(lengths.size)], dtype=object)
        return pa.table({
            "subject_id": pa.array(np.repeat(names, lengths), pa.string()),
            "ts": pa.array(self.t_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "lon": self.lon, "lat": self.lat,
        })


def scenario_tracks(config: StaypointsConfig) -> tuple[Tracks, int, int]:
    """The scenario's tracks repeated to ``throughput_fixes``; also the base fix count and the copies."""
    from geomon.sim.scenarios import scenario

    sc = scenario(SCENARIO, n_subjects=config.n_subjects, hours=config.hours, interval_s=config.interval_s,
                  seed=config.seed)
    base = tracks.track_offsets(tracks.subject_codes(sc.fixes.column("subject_id")))
    arrays = tuple(np.asarray(sc.fixes.column(c).to_numpy(), np.float64) for c in ("lon", "lat"))
    offsets, (t_ms, lon, lat), copies = tracks.tile_tracks(base, (tracks.times_ms(sc.fixes), *arrays),
                                                           config.throughput_fixes)
    return Tracks(offsets, t_ms, lon, lat), int(base[-1]), copies


def geomon_stays(data: Tracks, config: StaypointsConfig, **ellipsoid) -> set[tuple[int, int, int]]:
    """``(track, started_ms, finished_ms)`` of geomon's stay points (WGS84, or the ellipsoid given)."""
    from geomon.kernels.staypoints import find_staypoints

    stay_offsets, first, _, finished_ms, _, _ = find_staypoints(
        data.offsets, data.t_ms, data.lon, data.lat, config.dist_threshold_m, config.time_threshold_ms,
        config.gap_threshold_ms, **ellipsoid)
    track = np.repeat(np.arange(stay_offsets.size - 1), np.diff(stay_offsets))
    return set(zip(track.tolist(), data.t_ms[first].tolist(), finished_ms.tolist()))


def _geodataframe(data: Tracks, *, utc: bool):
    import geopandas as gpd
    import pandas as pd

    times = pd.to_datetime(data.t_ms, unit="ms", utc=utc)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(data.offsets.size - 1), np.diff(data.offsets)),
                          "tracked_at": times})
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(data.lon, data.lat), crs="EPSG:4326")


def trackintel_setup(data: Tracks, config: StaypointsConfig):
    """Positionfixes built untimed; the call is ``generate_staypoints(method="sliding")`` (minutes)."""
    import trackintel as ti

    pfs = ti.Positionfixes(_geodataframe(data, utc=True))

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ti.preprocessing.generate_staypoints(
                pfs, method="sliding", dist_threshold=config.dist_threshold_m,
                time_threshold=config.time_threshold_s / 60.0, gap_threshold=config.gap_threshold_s / 60.0)[1]
    return call


def trackintel_stays(sp) -> set[tuple[int, int, int]]:
    """``(track, started_ms, finished_ms)`` of trackintel's staypoints."""
    import pandas as pd

    if not len(sp):
        return set()
    epoch, ms = pd.Timestamp(0, tz="UTC"), pd.Timedelta(milliseconds=1)
    started, finished = ((sp[c] - epoch) // ms for c in ("started_at", "finished_at"))
    return set(zip(map(int, sp["user_id"]), map(int, started), map(int, finished)))


def public_stays(table: pa.Table) -> set[tuple[int, int, int]]:
    """``(track, started_ms, finished_ms)`` of geomon.staypoints' table (subjects ``"track-000042"``)."""
    track = [int(s.rsplit("-", 1)[1]) for s in table.column("subject_id").to_pylist()]
    started, finished = (table.column(c).cast(pa.int64()).to_pylist() for c in ("started_at", "finished_at"))
    return set(zip(track, started, finished))


def movingpandas_setup(data: Tracks, config: StaypointsConfig):
    """TrajectoryCollection built untimed; the call is ``TrajectoryStopDetector(...).get_stop_time_ranges``."""
    import movingpandas as mpd

    collection = mpd.TrajectoryCollection(_geodataframe(data, utc=False), traj_id_col="user_id", t="tracked_at")
    return lambda: mpd.TrajectoryStopDetector(collection).get_stop_time_ranges(
        max_diameter=config.dist_threshold_m, min_duration=timedelta(seconds=config.time_threshold_s))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def peer_row(name: str, data: Tracks, config: StaypointsConfig, geomon_fixes_per_s: float) -> dict:
    """Time one peer on ``data``; a peer that cannot be imported is a skipped row with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            __import__(name)
    except ImportError as exc:
        return {"label": name, "skipped": f"{name} not importable ({exc}); pip install -e '.[bench]'"}
    setup = trackintel_setup if name == "trackintel" else movingpandas_setup
    n = int(data.offsets[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = harness.measure(name, lambda: setup(data, config), repeat=config.peer_repeat, min_time_s=0.0)
    row = {**m.to_json(n), "skipped": None, "version": _version(name), "n_fixes": n,
           "n_tracks": int(data.offsets.size - 1), "fixes_per_s": n / m.median_s,
           "n_stays": len(m.last_result), "geomon_ratio": geomon_fixes_per_s / (n / m.median_s)}
    if name == "trackintel":
        theirs = trackintel_stays(m.last_result)
        sphere = geomon_stays(data, config, a_m=TRACKINTEL_RADIUS_M, f=0.0)
        wgs84 = geomon_stays(data, config)
        row["mismatches_sphere"] = len(theirs ^ sphere)
        row["differences_wgs84"] = len(theirs ^ wgs84)
        row["geomon_n_stays"] = len(wgs84)
    return row


def run_staypoints(config: StaypointsConfig, *, out: Path | None = DEFAULT_OUT,
                   console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` and write JSON to ``out`` (each if given); return the payload."""
    import numba

    import geomon
    from geomon.kernels.staypoints import find_staypoints

    progress = report.progress_console(console)
    machine = harness.machine_info()
    what = (f"preparing {config.throughput_fixes:,} fixes from {SCENARIO} tracks "
            f"({config.n_subjects} x {config.hours:g} h)")
    with report.step(progress, what):
        data, base_fixes, copies = scenario_tracks(config)
    n = int(data.offsets[-1])
    timing = {"repeat": config.repeat, "min_time_s": config.min_time_s}
    args = (config.dist_threshold_m, config.time_threshold_ms, config.gap_threshold_ms)
    with report.step(progress, f"timing find_staypoints on {n:,} fixes"):
        kernel = harness.measure("geomon.kernels.staypoints.find_staypoints",
                                 lambda: lambda: find_staypoints(data.offsets, data.t_ms, data.lon, data.lat, *args),
                                 **timing)
    stay_offsets = kernel.last_result[0]
    kernel_row = {**kernel.to_json(n), "fixes_per_s": n / kernel.median_s, "n_fixes": n,
                  "n_tracks": int(data.offsets.size - 1), "n_stays": int(stay_offsets[-1]), "base_fixes": base_fixes,
                  "copies": copies, "numba_threads": numba.get_num_threads(),
                  "same_as_first_call": all(np.array_equal(a, b) for a, b in zip(kernel.first_result,
                                                                                 kernel.last_result))}
    del kernel

    public_data = data.head(config.public_fixes)
    m = int(public_data.offsets[-1])
    with report.step(progress, f"timing geomon.staypoints on a {m:,}-row Arrow table"):
        table = public_data.table()
        public = harness.measure("geomon.staypoints", lambda table=table: lambda: geomon.staypoints(
            table, config.dist_threshold_m, config.time_threshold_s, config.gap_threshold_s), **timing)
    public_row = {**public.to_json(m), "fixes_per_s": m / public.median_s, "n_fixes": m,
                  "n_stays": public.last_result.num_rows,
                  "same_as_kernel": public_stays(public.last_result) == geomon_stays(public_data, config)}
    del public, table

    peer_data = data.head(config.peer_fixes)
    peers = {}
    for name in PEERS:
        with report.step(progress, f"timing {name} on {int(peer_data.offsets[-1]):,} fixes"):
            peers[name] = peer_row(name, peer_data, config, kernel_row["fixes_per_s"])
    targets = _targets(kernel_row, public_row, peers)
    payload = {
        "suite": "staypoints",
        "schema_version": 1,
        "machine": machine,
        "config": dataclasses.asdict(config),
        "kernel": kernel_row,
        "public": public_row,
        "peers": peers,
        "targets": targets,
    }
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def _targets(kernel: dict, public: dict, peers: dict) -> list[dict]:
    void = "" if kernel["same_as_first_call"] and public["same_as_kernel"] else "results differ between runs or paths"
    targets = [report.target(f"find_staypoints throughput, {kernel['numba_threads']} numba threads",
                             kernel["fixes_per_s"] / 1e6, ">=", THROUGHPUT_TARGET_M, unit=" M fixes/s", void=void,
                             key="find_staypoints_mfixes_per_s")]
    ti = peers["trackintel"]
    targets.append(report.target("stay points differing from trackintel (geomon on its sphere)",
                                 None if ti["skipped"] else ti["mismatches_sphere"], "<=", 0,
                                 key="trackintel_differences"))
    return targets


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """Throughput table (geomon and peers) and targets."""
    machine, config, k, p = payload["machine"], payload["config"], payload["kernel"], payload["public"]
    console.print(f"[bold]Stay points: sliding method, {config['dist_threshold_m']:g} m, "
                  f"{config['time_threshold_s']:g} s, gap {config['gap_threshold_s']:g} s[/]\n"
                  f"{report.machine_line(machine)}")
    speed = Table(title=f"{SCENARIO} tracks ({k['base_fixes']:,} fixes) repeated {k['copies']}x; median of repeats")
    for name in ["implementation", "fixes", "tracks", "stay points", "first call s", "median s", "M fixes/s",
                 "geomon kernel / this", "agreement"]:
        speed.add_column(name, justify="left" if name in ("implementation", "agreement") else "right")
    speed.add_row(f"{k['label']} ({k['numba_threads']} threads)", f"{k['n_fixes']:,}", f"{k['n_tracks']:,}",
                  f"{k['n_stays']:,}", f"{k['first_call_s']:.3f}", f"{k['median_s']:.3f}",
                  f"{k['fixes_per_s'] / 1e6:,.1f}", "",
                  "same on every run" if k["same_as_first_call"] else "[red]varies")
    speed.add_row("geomon.staypoints (Arrow in and out)", f"{p['n_fixes']:,}", "", f"{p['n_stays']:,}",
                  f"{p['first_call_s']:.3f}", f"{p['median_s']:.3f}", f"{p['fixes_per_s'] / 1e6:,.1f}",
                  f"{k['fixes_per_s'] / p['fixes_per_s']:,.1f}x",
                  "same as kernel" if p["same_as_kernel"] else "[red]differs from kernel")
    for name, r in payload["peers"].items():
        if r["skipped"]:
            speed.add_row(name, "-", "-", "-", "-", "-", "-", "-", f"[yellow]skipped: {r['skipped']}[/]")
            continue
        if name == "trackintel":
            agree = (f"{r['mismatches_sphere']} differ from geomon on R = 6,371 km; "
                     f"{r['differences_wgs84']} of {r['geomon_n_stays']} from geomon on WGS84")
        else:
            agree = "count only (max diameter, not distance from an anchor)"
        speed.add_row(f"{name} {r['version']}", f"{r['n_fixes']:,}", f"{r['n_tracks']:,}", f"{r['n_stays']:,}",
                      f"{r['first_call_s']:.3f}", f"{r['median_s']:.3f}", f"{r['fixes_per_s'] / 1e6:,.3f}",
                      f"{r['geomon_ratio']:,.0f}x", agree)
    console.print(speed)
    report.warn_if_loaded(machine, console)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON written to {out}")
