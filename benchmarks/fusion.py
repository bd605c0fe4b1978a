"""Fusion suite: the evaluation matrix (raw against fused error, honesty of the covariance) and filter throughput.

The matrix (:mod:`benchmarks.fusion_matrix`): every motion family of
:mod:`geomon.sim.field` x noise family of :mod:`geomon.sim.field_noise` x
reporting interval (1, 5, 15, 60 s), each cell's fixes fused by
:func:`geomon.kernels.fusion.fuse_tracks` on metres and compared with the truth
(error quantiles, fused/raw p90 and p99, mean 2-D NEES with the full 2x2
covariance, share of truths outside the fused 95 % ellipse), each cell held to
the issue's bars; a departure metric; parameters chosen on the training cells
(``--tune``) and the held-out row and column judged apart. The targets gate the
matrix's worst cells, not its average. The tables are printed, the heat map
(:mod:`benchmarks.fusion_matrix_report`) and a markdown table are written beside
the JSON.

The real drive (:mod:`benchmarks.fusion_real`): single-point fixes of a car in
town against a PPK reference, at 1, 5 and 15 s, with the matrix's parameters
(never tuned on it), judged on the matrix's bars and gated apart.

Throughput: :func:`geomon.kernels.fusion.fuse_tracks` on the tracks of a
``"mixed"`` scenario repeated to about 20 million fixes, timed per
:mod:`benchmarks.harness`; beside it filterpy's ``KalmanFilter`` (the same
constant-velocity model with CWNA process noise, no gating or adaptation) on
the first 50,000 of those fixes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import fusion_matrix, fusion_matrix_report, fusion_real, harness, report, tracks
from benchmarks.fusion_matrix import nees_2d  # noqa: F401  (the suite's NEES, re-exported)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fusion.json"
#: Where ``--docs`` writes the heat map.
DOCS_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "img" / "fusion_matrix.png"

THROUGHPUT_SCENARIO = "mixed"
#: Million fixes per second.
THROUGHPUT_TARGET_M = 40.0
#: filterpy's constant CWNA density (m^2/s^3) and initial velocity spread (m/s): geomon's restart values.
FILTERPY_Q_M2PS3 = 0.02
FILTERPY_SIGMA_V0_MPS = 3.0


@dataclass(frozen=True)
class FusionConfig(harness.QuickRun):
    """Sizes and timing policy of one run of the suite."""

    #: The matrix: tracks and fixes per cell, reporting intervals, departure trials.
    n_tracks: int = 40
    fixes_per_cell: int = 30_000
    intervals_s: tuple[int, ...] = fusion_matrix.INTERVALS_S
    departure_trials: int = 200
    departure_interval_s: float = 15.0
    #: Choose the parameters of fusion_matrix.TUNING_GRID on the training cells (else the kernel's defaults).
    tune: bool = False
    hold_out_motion: str = fusion_matrix.HOLD_OUT[0]
    hold_out_noise: str = fusion_matrix.HOLD_OUT[1]
    #: Also write the heat map to docs/img/fusion_matrix.png.
    docs: bool = False
    #: The throughput row: a simulated county scenario, tiled.
    n_subjects: int = 40
    hours: float = 12.0
    seed: int = 2
    interval_s: float = 15.0
    throughput_fixes: int = 20_000_000
    filterpy_fixes: int = 50_000
    repeat: int = 5
    min_time_s: float = 1.0
    #: filterpy runs are seconds each; a few suffice.
    filterpy_repeat: int = 3
    quick: bool = False

    #: Smoke-run sizes: 2 tracks of 100 fixes per cell, 10 departures; 6 subjects x 2 h, 1M fixes against
    #: 5,000 for filterpy, 3 repeats.
    QUICK: ClassVar[dict] = {"n_tracks": 2, "fixes_per_cell": 200, "departure_trials": 10, "n_subjects": 6,
                             "hours": 2.0, "throughput_fixes": 1_000_000, "filterpy_fixes": 5_000, "repeat": 3,
                             "min_time_s": 0.0, "filterpy_repeat": 1}


def _scenario(name: str, config: FusionConfig, sigma_m: float | None = None):
    from geomon.sim.scenarios import scenario

    return scenario(name, n_subjects=config.n_subjects, hours=config.hours, interval_s=config.interval_s,
                    seed=config.seed, sigma_m=sigma_m)


def filterpy_fuse(offsets, t_ms, x_m, y_m, sigma_m) -> tuple[np.ndarray, np.ndarray]:
    """Per track, filterpy's 4-state constant-velocity KalmanFilter, ``F`` and CWNA ``Q`` rebuilt per step."""
    from filterpy.common import Q_continuous_white_noise
    from filterpy.kalman import KalmanFilter

    out_x, out_y = np.empty(t_ms.size), np.empty(t_ms.size)
    h = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])  # state (x, vx, y, vy)
    v0 = FILTERPY_SIGMA_V0_MPS**2
    for s in range(offsets.size - 1):
        lo, hi = int(offsets[s]), int(offsets[s + 1])
        if hi == lo:
            continue
        kf = KalmanFilter(dim_x=4, dim_z=2)
        kf.H = h
        kf.x = np.array([x_m[lo], 0.0, y_m[lo], 0.0])
        r0 = sigma_m[lo] ** 2
        kf.P = np.diag([r0, v0, r0, v0])
        out_x[lo], out_y[lo] = x_m[lo], y_m[lo]
        for i in range(lo + 1, hi):
            dt = (t_ms[i] - t_ms[i - 1]) * 1e-3
            kf.F = np.array([[1.0, dt, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, dt], [0.0, 0.0, 0.0, 1.0]])
            kf.Q = Q_continuous_white_noise(dim=2, dt=dt, spectral_density=FILTERPY_Q_M2PS3, block_size=2)
            kf.predict()
            kf.update(np.array([x_m[i], y_m[i]]), R=np.eye(2) * sigma_m[i] ** 2)
            out_x[i], out_y[i] = kf.x[0], kf.x[2]
    return out_x, out_y


def _nonfinite(result) -> int:
    """Outputs of fuse_tracks that are not finite (none are expected: every fix has a position)."""
    return int(sum(np.count_nonzero(~np.isfinite(result[k])) for k in (0, 1, 2)))


def throughput_row(config: FusionConfig, progress: Console) -> dict:
    """fuse_tracks on the tiled tracks of a mixed scenario; filterpy on the first ``filterpy_fixes`` of them."""
    import numba

    import geomon
    from geomon.kernels.fusion import fuse_tracks

    with report.step(progress, f"preparing {config.throughput_fixes:,} fixes from {THROUGHPUT_SCENARIO} tracks"):
        sc = _scenario(THROUGHPUT_SCENARIO, config)
        # The filter's per-fix sigma as geomon.fuse derives it (source floors, correlated-run inflation).
        sigma = np.asarray(geomon.fuse(sc.fixes, frame=sc.frame).column("sigma_m").to_numpy(), dtype=np.float64)
        x, y = tracks.projected(sc.fixes, sc.frame)  # fixes are sorted by (subject_id, ts)
        base_offsets = tracks.track_offsets(tracks.subject_codes(sc.fixes.column("subject_id")))
        arrays = (tracks.times_ms(sc.fixes), x, y, sigma)
        offsets, (t_ms, x_m, y_m, sigma_m), copies = tracks.tile_tracks(base_offsets, arrays, config.throughput_fixes)
    n = int(t_ms.size)
    timing = {"repeat": config.repeat, "min_time_s": config.min_time_s}
    with report.step(progress, f"timing fuse_tracks on {n:,} fixes"):
        geo = harness.measure("geomon.kernels.fusion.fuse_tracks",
                              lambda: lambda: fuse_tracks(offsets, t_ms, x_m, y_m, sigma_m), **timing)
    row = {
        "scenario": THROUGHPUT_SCENARIO,
        "base_fixes": int(base_offsets[-1]),
        "copies": copies,
        "n_fixes": n,
        "n_tracks": int(offsets.size - 1),
        "numba_threads": numba.get_num_threads(),
        "geomon": {**geo.to_json(n), "fixes_per_s": n / geo.median_s},
        "nonfinite": max(_nonfinite(geo.first_result), _nonfinite(geo.last_result)),
        "filterpy": None,
        "filterpy_skipped": None,
        "ratio": None,
    }
    del geo
    try:
        import filterpy
    except ImportError as exc:
        row["filterpy_skipped"] = f"filterpy not importable ({exc})"
        return row
    sub = tracks.first_tracks(offsets, config.filterpy_fixes)
    m = int(sub[-1])
    sub_arrays = tuple(np.ascontiguousarray(a[:m]) for a in (t_ms, x_m, y_m, sigma_m))
    with report.step(progress, f"timing filterpy KalmanFilter on {m:,} fixes (pure Python)"):
        peer = harness.measure("filterpy.kalman.KalmanFilter", lambda: lambda: filterpy_fuse(sub, *sub_arrays),
                               repeat=config.filterpy_repeat, min_time_s=0.0)
        # geomon on the very same subset, so the ratio compares like with like at that size too.
        small = fuse_tracks(sub, *sub_arrays)
    row["filterpy"] = {**peer.to_json(m), "fixes_per_s": m / peer.median_s, "version": filterpy.__version__,
                       "n_fixes": m, "n_tracks": int(sub.size - 1)}
    row["nonfinite"] += _nonfinite(small) + int(np.count_nonzero(~np.isfinite(peer.last_result[0])))
    row["ratio"] = row["geomon"]["fixes_per_s"] / row["filterpy"]["fixes_per_s"]
    return row


#: The bar of each worst-cell metric (fusion_matrix.WORST): (op, threshold, what, unit).
WORST_BARS = {
    "p90_ratio_max": ("<=", 1.0, "worst fused/raw p90", ""),
    "p99_ratio_max": ("<=", 1.0, "worst fused/raw p99", ""),
    "nees_mean_min": (">=", fusion_matrix.NEES_BAR[0], "lowest mean NEES", ""),
    "nees_mean_max": ("<=", fusion_matrix.NEES_BAR[1], "highest mean NEES", ""),
    "outside95_min": (">=", fusion_matrix.OUTSIDE95_BAR[0], "fewest outside the 95 % ellipse", ""),
    "outside95_max": ("<=", fusion_matrix.OUTSIDE95_BAR[1], "most outside the 95 % ellipse", ""),
    "p90_ratio_max@white_moving_15s": ("<=", fusion_matrix.WHITE_MOVING_RATIO,
                                       "worst fused/raw p90, walking and driving, white, <= 15 s", ""),
    "fused_p90_m_max@augmented_moving": ("<", fusion_matrix.AUGMENTED_P90_M,
                                         "worst fused p90, augmented, moving", " m"),
}
#: The scopes the targets gate, and the key suffix of each.
TARGET_SCOPES = {"all": "", "held_out_motion": "held_out_motion", "held_out_noise": "held_out_noise"}


def scoped_key(key: str, suffix: str) -> str:
    """``key`` for a scope: ``p90_ratio_max@held_out_motion``, ``p90_ratio_max@white_moving_15s_held_out_motion``."""
    if not suffix:
        return key
    return f"{key}_{suffix}" if "@" in key else f"{key}@{suffix}"


def _targets(matrix: dict, throughput: dict) -> list[dict]:
    """The worst cells of the whole matrix and of the held-out row and column; departures; throughput."""
    targets = []
    hold = matrix["hold_out"]
    for name, suffix in TARGET_SCOPES.items():
        where = {"all": "matrix", "held_out_motion": f"held-out {hold['motion']}",
                 "held_out_noise": f"held-out {hold['noise']}"}[name]
        for key, w in matrix["summaries"][name]["worst"].items():
            if w["cell"] is None:
                continue   # no cell of the scope is covered by this bar (e.g. no white cell in a noise column)
            op, threshold, what, unit = WORST_BARS[key]
            void = "" if w["value"] is not None else f"nothing measured in {w['cell']}"
            targets.append(report.target(f"{where}: {what} ({w['cell']})", w["value"], op, threshold, unit=unit,
                                         void=void, key=scoped_key(key, suffix), row=w["cell"]))
    dep = matrix["departure"]
    targets.append(report.target(f"departure: worst fused error / sigma, {dep['n_trials']} trials at "
                                 f"{dep['interval_s']:g} s", dep["error_sigma_max"], "<=",
                                 fusion_matrix.DEPARTURE_BAR, key="departure_error_sigma_max"))
    void = f"{throughput['nonfinite']:,} non-finite outputs" if throughput["nonfinite"] else ""
    targets.append(report.target(f"fuse_tracks throughput, {throughput['numba_threads']} numba threads",
                                 throughput["geomon"]["fixes_per_s"] / 1e6, ">=", THROUGHPUT_TARGET_M,
                                 unit=" M fixes/s", void=void, key="fuse_tracks_mfixes_per_s"))
    return targets


def _pictures(payload: dict, out: Path | None, docs: bool) -> dict:
    """The heat map and the markdown table beside the JSON (and the heat map in docs/img with ``docs``)."""
    files = {}
    paths = [out.parent / "fusion_matrix.png"] if out is not None else []
    if docs:
        paths.append(DOCS_IMAGE)
    for path in paths:
        fusion_matrix_report.heat_map(payload["matrix"], path)
        files.setdefault("heat_map", []).append(str(path))
    if out is not None:
        md = out.parent / "fusion_matrix.md"
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(fusion_matrix_report.markdown_table(payload["matrix"]))
        files["markdown"] = str(md)
    return files


def run_fusion(config: FusionConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` and write JSON, heat map and markdown beside ``out``
    (each if given); return the payload."""
    progress = report.progress_console(console)
    machine = harness.machine_info()  # before the run: the load average is other people's work
    started = time.perf_counter()
    matrix = fusion_matrix.run_matrix(config, progress)
    matrix["seconds"] = time.perf_counter() - started
    with report.step(progress, "real drive: SPP fixes against PPK at 1, 5 and 15 s"):
        real = fusion_real.real_rows(matrix["params"])   # a held-out check: never used to choose parameters
    throughput = throughput_row(config, progress)
    targets = _targets(matrix, throughput) + fusion_real.real_targets(real)
    payload = {
        "suite": "fusion",
        "schema_version": 2,
        "machine": machine,
        "config": dataclasses.asdict(config),
        "matrix": matrix,
        "real_drive": real,
        "throughput": throughput,
        "targets": targets,
    }
    payload["files"] = _pictures(payload, out, config.docs)
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """Matrix, held-out summaries, departures, the real drive, throughput and targets tables."""
    machine = payload["machine"]
    console.print(f"[bold]Fusion: the evaluation matrix, departures, throughput vs filterpy[/]\n"
                  f"{report.machine_line(machine)}")
    fusion_matrix_report.print_matrix(payload["matrix"], payload["config"], console)
    fusion_real.print_real(payload["real_drive"], console)
    tp = payload["throughput"]
    speed = Table(title=f"Throughput: {tp['scenario']} tracks ({tp['base_fixes']:,} fixes) repeated {tp['copies']}x; "
                        "median of repeats")
    for name in ["implementation", "fixes", "tracks", "threads", "first call s", "median s", "M fixes/s",
                 "geomon / peer"]:
        speed.add_column(name, justify="left" if name == "implementation" else "right")
    g = tp["geomon"]
    speed.add_row(g["label"], f"{tp['n_fixes']:,}", f"{tp['n_tracks']:,}", str(tp["numba_threads"]),
                  f"{g['first_call_s']:.3f}", f"{g['median_s']:.3f}", f"{g['fixes_per_s'] / 1e6:,.1f}", "")
    if tp["filterpy"] is None:
        speed.add_row("filterpy.kalman.KalmanFilter", "-", "-", "-", "-", "-", "-",
                      f"[yellow]skipped: {tp['filterpy_skipped']}[/]")
    else:
        p = tp["filterpy"]
        speed.add_row(f"{p['label']} {p['version']}", f"{p['n_fixes']:,}",
                      f"{p['n_tracks']:,}", "1", f"{p['first_call_s']:.3f}", f"{p['median_s']:.3f}",
                      f"{p['fixes_per_s'] / 1e6:,.3f}", f"{tp['ratio']:,.0f}x")
    console.print(speed)
    if tp["nonfinite"]:
        console.print(f"[bold red]{tp['nonfinite']:,} non-finite filter outputs: the speeds above are void.[/]")
    report.warn_if_loaded(machine, console)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON written to {out}")
    for path in [*payload["files"].get("heat_map", []), payload["files"].get("markdown")]:
        if path:
            console.print(f"written: {path}")
