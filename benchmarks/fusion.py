"""Fusion suite: raw against fused horizontal error, honesty of the fused covariance, and filter throughput.

Accuracy, per simulated scenario (:func:`geomon.sim.scenarios.scenario`, the
same seed and paths for every row, noise differing): every raw fix projected
to the scenario's frame and every output of :func:`geomon.fuse` is compared
with the true position at that fix. Reported: the p50/p90/p99 of both errors,
fused p90 / raw p90, and the mean 2-D NEES ``e^T P^-1 e`` of the fused
covariance ``P`` (2 for an honest filter; Bar-Shalom, Li, Kirubarajan 2001,
sec. 5.4) with the share of fixes above the chi-square(2) 99 % point, 1 % if honest.

Throughput: :func:`geomon.kernels.fusion.fuse_tracks` on the tracks of a
``"mixed"`` scenario repeated to about 20 million fixes, timed per
:mod:`benchmarks.harness`; beside it filterpy's ``KalmanFilter`` (the same
constant-velocity model with CWNA process noise, no gating or adaptation) on
the first 50,000 of those fixes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report, tracks

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fusion.json"

#: (row label, scenario name, open-sky sigma_m or None for the default 2.5 m).
ROWS = (
    ("augmented", "augmented", None),
    ("open_sky", "open_sky", None),
    ("open_sky_4.7m", "open_sky", 4.7),
    ("urban", "urban", None),
    ("indoor", "indoor", None),
)
THROUGHPUT_SCENARIO = "mixed"
#: chi-square 99 % point, 2 degrees of freedom.
CHI2_2DOF_99 = 9.210340371976182
NEES_RANGE = (1.5, 2.5)
#: (name, row label, row key, op, threshold, unit), judged on the accuracy rows.
ACCURACY_TARGETS = (
    ("augmented fused p90 error", "augmented", "fused_p90_m", "<", 1.0, " m"),
    ("open_sky fused p90 / raw p90", "open_sky", "p90_ratio", "<=", 0.6, ""),
    ("open_sky_4.7m fused p90 error", "open_sky_4.7m", "fused_p90_m", "<=", 10.0, " m"),
    ("open_sky mean NEES", "open_sky", "nees_mean", "in", NEES_RANGE, ""),
    ("urban mean NEES", "urban", "nees_mean", "in", NEES_RANGE, ""),
)
#: Million fixes per second.
THROUGHPUT_TARGET_M = 40.0
#: filterpy's constant CWNA density (m^2/s^3) and initial velocity spread (m/s): geomon's restart values.
FILTERPY_Q_M2PS3 = 0.02
FILTERPY_SIGMA_V0_MPS = 3.0


@dataclass(frozen=True)
class FusionConfig(harness.QuickRun):
    """Sizes and timing policy of one run of the suite."""

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

    #: Smoke-run sizes: 6 subjects x 2 h, 1M fixes against 5,000 for filterpy, 3 repeats.
    QUICK: ClassVar[dict] = {"n_subjects": 6, "hours": 2.0, "throughput_fixes": 1_000_000, "filterpy_fixes": 5_000,
                  "repeat": 3, "min_time_s": 0.0, "filterpy_repeat": 1}


def _scenario(name: str, config: FusionConfig, sigma_m: float | None = None):
    from geomon.sim.scenarios import scenario

    return scenario(name, n_subjects=config.n_subjects, hours=config.hours, interval_s=config.interval_s,
                    seed=config.seed, sigma_m=sigma_m)


def nees_2d(ex: np.ndarray, ey: np.ndarray, var_x: np.ndarray, var_y: np.ndarray, cov_xy: np.ndarray) -> np.ndarray:
    """``e^T P^-1 e`` with ``P = [[var_x, cov_xy], [cov_xy, var_y]]``; NaN where P is not positive definite."""
    det = var_x * var_y - cov_xy * cov_xy
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (var_y * ex * ex - 2.0 * cov_xy * ex * ey + var_x * ey * ey) / det
    return np.where((det > 0) & (var_x > 0), value, np.nan)


def _noise(name: str, sigma_m: float | None) -> str:
    """The scenario's noise model in a few words (its constants live in geomon.sim.noise)."""
    from geomon.sim import noise as sim_noise

    if name == "augmented":
        return f"{sim_noise.SIGMA_AUGMENTED_M:g} m"
    if name == "open_sky":
        return f"{sim_noise.SIGMA_OPEN_M if sigma_m is None else sigma_m:g} m"
    if name == "urban":
        return f"{sim_noise.SIGMA_URBAN_M:g} m + multipath"
    low, high = sim_noise.CELL_SIGMA_M
    return f"cell {low:g}-{high:g} m"


def accuracy_row(label: str, name: str, sigma_m: float | None, config: FusionConfig) -> dict:
    """Errors and NEES of one scenario (see the module docstring)."""
    import geomon
    from geomon.tracks.fusion import STATUS_NAMES

    sc = _scenario(name, config, sigma_m)
    raw_x, raw_y = tracks.projected(sc.fixes, sc.frame)
    fused = geomon.fuse(sc.fixes, frame=sc.frame)
    fx, fy, var_x, var_y, cov_xy = (np.asarray(fused.column(c).to_numpy(), dtype=np.float64)
                                    for c in ("x_m", "y_m", "var_x_m2", "var_y_m2", "cov_xy_m2"))
    ex, ey = fx - sc.true_x_m, fy - sc.true_y_m
    finite = np.isfinite(ex) & np.isfinite(ey) & np.isfinite(var_x) & np.isfinite(var_y) & np.isfinite(cov_xy)
    raw = report.quantiles(np.hypot(raw_x - sc.true_x_m, raw_y - sc.true_y_m), (50, 90, 99))
    fused_q = report.quantiles(np.hypot(ex, ey)[finite], (50, 90, 99))
    nees = nees_2d(ex[finite], ey[finite], var_x[finite], var_y[finite], cov_xy[finite])
    nees = nees[np.isfinite(nees)]
    status = np.bincount(np.asarray(fused.column("status").to_numpy(), dtype=np.int64), minlength=len(STATUS_NAMES))
    ratio = fused_q["p90"] / raw["p90"] if raw["p90"] and fused_q["p90"] is not None else None
    return {
        "label": label,
        "scenario": name,
        "sigma_open_m": sigma_m,
        "noise": _noise(name, sigma_m),
        "n_subjects": config.n_subjects,
        "n_fixes": sc.fixes.num_rows,
        "n_finite": int(finite.sum()),
        "raw_error_m": raw,
        "fused_error_m": fused_q,
        "fused_p90_m": fused_q["p90"],
        "p90_ratio": ratio,
        "nees_mean": float(nees.mean()) if nees.size else None,
        "nees_over_chi2_99": float(np.mean(nees > CHI2_2DOF_99)) if nees.size else None,
        "n_nees": int(nees.size),
        "status_counts": dict(zip(STATUS_NAMES, status.tolist())),
    }


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


def _targets(rows: list[dict], throughput: dict) -> list[dict]:
    by_label = {r["label"]: r for r in rows}
    targets = []
    for name, label, key, op, threshold, unit in ACCURACY_TARGETS:
        measured = by_label[label][key] if label in by_label else None
        targets.append(report.target(name, measured, op, threshold, unit=unit, row=label, key=f"{key}@{label}"))
    void = f"{throughput['nonfinite']:,} non-finite outputs" if throughput["nonfinite"] else ""
    targets.append(report.target(f"fuse_tracks throughput, {throughput['numba_threads']} numba threads",
                                 throughput["geomon"]["fixes_per_s"] / 1e6, ">=", THROUGHPUT_TARGET_M,
                                 unit=" M fixes/s", void=void, key="fuse_tracks_mfixes_per_s"))
    return targets


def run_fusion(config: FusionConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` and write JSON to ``out`` (each if given); return the payload."""
    progress = report.progress_console(console)
    machine = harness.machine_info()  # before the run: the load average is other people's work
    rows = []
    for label, name, sigma_m in ROWS:
        what = f"simulating and fusing {label}: {config.n_subjects} subjects x {config.hours:g} h"
        with report.step(progress, what):
            rows.append(accuracy_row(label, name, sigma_m, config))
    throughput = throughput_row(config, progress)
    targets = _targets(rows, throughput)
    payload = {
        "suite": "fusion",
        "schema_version": 1,
        "machine": machine,
        "config": dataclasses.asdict(config),
        "accuracy": rows,
        "throughput": throughput,
        "targets": targets,
    }
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """Accuracy, throughput and targets tables."""
    machine, config = payload["machine"], payload["config"]
    console.print(f"[bold]Fusion: raw vs fused error, NEES, throughput vs filterpy[/]\n{report.machine_line(machine)}")
    verdict: dict[str, list[str]] = {}
    for t in payload["targets"]:
        verdict.setdefault(t.get("row"), []).append(t["status"])

    accuracy = Table(title=f"Horizontal error (m) per fix against the truth, {config['n_subjects']} subjects x "
                           f"{config['hours']:g} h, seed {config['seed']}; NEES 2 and 1 % over 9.21 if honest")
    for name in ["scenario", "noise (1-sigma)", "fixes", "raw p50", "raw p90", "raw p99", "fused p50", "fused p90",
                 "fused p99", "fused/raw p90", "mean NEES", "NEES > 9.21", "rejected", "targets"]:
        accuracy.add_column(name, justify="left" if name == "scenario" else "right")
    for r in payload["accuracy"]:
        raw, fused = r["raw_error_m"], r["fused_error_m"]
        statuses = verdict.get(r["label"], [])
        accuracy.add_row(
            r["label"], r["noise"], f"{r['n_fixes']:,}",
            *(report.fmt(raw[k]) for k in ("p50", "p90", "p99")),
            *(report.fmt(fused[k]) for k in ("p50", "p90", "p99")),
            report.fmt(r["p90_ratio"], ".2f"), report.fmt(r["nees_mean"], ".2f"),
            report.fmt(None if r["nees_over_chi2_99"] is None else 100 * r["nees_over_chi2_99"], ".1f") + " %",
            f"{100 * r['status_counts']['rejected'] / max(r['n_fixes'], 1):.1f} %",
            " ".join(report.styled_status(s) for s in statuses),
        )
    console.print(accuracy)

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
