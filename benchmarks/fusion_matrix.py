"""The fusion evaluation matrix: motion families x noise families x reporting intervals, judged cell by cell.

Every cell simulates tracks of one motion family (:mod:`geomon.sim.field`)
under one noise family (:mod:`geomon.sim.field_noise`) at one reporting
interval, gives the filter (:func:`geomon.kernels.fusion.fuse_tracks`, on
metres) each fix's sigma exactly as :func:`geomon.fuse` derives it (the
reported accuracy read by its kind, floored per source, inflated along runs of
correlated sources), and compares raw and fused positions with the truth:
p50/p90/p95/p99 horizontal error, fused/raw p90 and p99, the mean 2-D NEES
``e^T P^-1 e`` with the full 2x2 covariance (2 when honest) and the share of
truths outside the fused 95 % ellipse (NEES above the chi-square(2) 95 % point,
5 % when honest). Bar-Shalom, Li, Kirubarajan, *Estimation with Applications
to Tracking and Navigation*, Wiley 2001, sec. 5.4, for NEES.

Each cell is held to the bars of :data:`BARS` and says which it misses. The
departure metric (:func:`departure`) follows subjects who stand for 10 min and
drive off. Leave-one-out: parameters are chosen (:func:`choose`) on the
training cells only, those whose motion and noise are both not held out
(:data:`HOLD_OUT`); the held-out row (that motion, every noise) and column
(that noise, every motion) are then judged on the same bars.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks import report

#: Reporting intervals of the matrix, seconds.
INTERVALS_S = (1, 5, 15, 60)
#: (motion, noise) held out of the tuning; ``--hold-out-motion`` / ``--hold-out-noise`` override it.
HOLD_OUT = ("bus", "multipath")
#: Parameter name -> values tried by ``--tune`` (keys of the kernel's DEFAULT_PARAMS; names it no longer knows
#: are dropped, and said so).
TUNING_GRID: dict[str, list] = {"q_steady_m2ps3": [0.01, 0.03], "outlier_p": [0.003, 0.01],
                                "q_still_m2ps": [1e-4, 3e-5]}
#: chi-square 95 % point, 2 degrees of freedom: the fused 95 % ellipse.
CHI2_2DOF_95 = 5.991464547107979
QUANTILES = (50, 90, 95, 99)

NEES_BAR = (1.4, 3.0)
OUTSIDE95_BAR = (0.02, 0.10)
#: Walking and driving in white noise at these intervals: fused p90 at most this share of raw.
WHITE_MOVING_FAMILIES = ("walk", "car_town", "car_road", "bus")
WHITE_MOVING_MAX_INTERVAL_S = 15
WHITE_MOVING_RATIO = 0.7
#: Augmented fixes on moving subjects: fused p90 below this (m).
AUGMENTED_P90_M = 1.0
#: Departure: fused error at and after the second moving fix, over the raw sigma, at most this.
DEPARTURE_BAR = 3.0
DEPARTURE_WINDOW_S = 300.0


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix."""

    motion: str
    noise: str
    interval_s: int

    @property
    def label(self) -> str:
        return f"{self.motion}/{self.noise}/{self.interval_s}s"


def white_moving(cell: Cell) -> bool:
    """Walking or driving at <= 15 s in white noise, where fused p90 must be <= 0.7 x raw."""
    return (cell.noise == "white" and cell.motion in WHITE_MOVING_FAMILIES
            and cell.interval_s <= WHITE_MOVING_MAX_INTERVAL_S)


def augmented_moving(cell: Cell) -> bool:
    """Augmented fixes on a moving subject, where fused p90 must be under 1 m."""
    return cell.noise == "augmented" and cell.motion != "rest"


#: The bars a cell is held to: (name, applies to the cell, missed by the row).
BARS: tuple[tuple[str, Callable[[Cell], bool], Callable[[dict], bool]], ...] = (
    ("p90>raw", lambda c: True, lambda r: not r["p90_ratio"] <= 1.0),
    ("p99>raw", lambda c: True, lambda r: not r["p99_ratio"] <= 1.0),
    ("NEES", lambda c: True, lambda r: not NEES_BAR[0] <= r["nees_mean"] <= NEES_BAR[1]),
    ("out95", lambda c: True, lambda r: not OUTSIDE95_BAR[0] <= r["outside95"] <= OUTSIDE95_BAR[1]),
    ("p90>0.7raw", white_moving, lambda r: not r["p90_ratio"] <= WHITE_MOVING_RATIO),
    ("p90>=1m", augmented_moving, lambda r: not r["fused_p90_m"] < AUGMENTED_P90_M),
)

#: Worst-cell metrics of a set of cells: (key, row field, "max"/"min", cells it covers or None for all).
WORST: tuple[tuple[str, str, str, Callable[[Cell], bool] | None], ...] = (
    ("p90_ratio_max", "p90_ratio", "max", None),
    ("p99_ratio_max", "p99_ratio", "max", None),
    ("nees_mean_min", "nees_mean", "min", None),
    ("nees_mean_max", "nees_mean", "max", None),
    ("outside95_min", "outside95", "min", None),
    ("outside95_max", "outside95", "max", None),
    ("p90_ratio_max@white_moving_15s", "p90_ratio", "max", white_moving),
    ("fused_p90_m_max@augmented_moving", "fused_p90_m", "max", augmented_moving),
)


def matrix_cells(motions: Sequence[str], noises: Sequence[str], intervals_s: Iterable[int]) -> list[Cell]:
    """Every motion x noise x interval, motion-major (the order of the tables)."""
    return [Cell(m, n, int(i)) for m in motions for i in intervals_s for n in noises]


def scope(cell: Cell, hold_out: tuple[str, str]) -> str:
    """``training``, or which held-out set the cell is in (``held_out_both`` for the crossing cell)."""
    motion, noise = cell.motion == hold_out[0], cell.noise == hold_out[1]
    return "held_out_both" if motion and noise else "held_out_motion" if motion else \
        "held_out_noise" if noise else "training"


def nees_2d(ex: np.ndarray, ey: np.ndarray, var_x: np.ndarray, var_y: np.ndarray, cov_xy: np.ndarray) -> np.ndarray:
    """``e^T P^-1 e`` with ``P = [[var_x, cov_xy], [cov_xy, var_y]]``; NaN where P is not positive definite."""
    det = var_x * var_y - cov_xy * cov_xy
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (var_y * ex * ex - 2.0 * cov_xy * ex * ey + var_x * ey * ey) / det
    return np.where((det > 0) & (var_x > 0), value, np.nan)


# --- simulating a cell --------------------------------------------------------------


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def simulate_cells(cells: Sequence[Cell], *, seed: int, n_tracks: int, fixes_per_cell: int):
    """Yield ``(cell, truth, fixes)`` per cell; a truth is drawn once per motion and interval, shared by the noises.

    The draws depend on the seed and the cell alone (not on which other cells run), so a cell is the same
    whether held out, tuned on or run alone.
    """
    from geomon.sim import field, field_noise

    n_fixes = max(2, fixes_per_cell // n_tracks)
    truths: dict = {}
    for cell in cells:
        key = (cell.motion, cell.interval_s)
        if key not in truths:
            truths.clear()
            rng = _rng(seed, field.MOTIONS.index(cell.motion), cell.interval_s)
            truths[key] = field.simulate_motion(cell.motion, n_tracks, n_fixes, float(cell.interval_s), rng)
        truth = truths[key]
        rng = _rng(seed, field.MOTIONS.index(cell.motion), cell.interval_s, 100 + field_noise.NOISES.index(cell.noise))
        yield cell, truth, field_noise.add_noise(truth, cell.noise, rng)


def filter_sigma_m(fixes, new_track: np.ndarray) -> np.ndarray:
    """The per-fix sigma geomon.fuse gives the filter: the accuracy read by its kind, floored per source,
    times the square root of the fix's place in a run of correlated sources."""
    from geomon.io.accuracy import sigma_from_accuracy
    from geomon.tracks.fusion import correlated_run_length, sigma_from_codes, source_codes

    codes = source_codes(fixes.source)
    sigma = sigma_from_codes(sigma_from_accuracy(fixes.accuracy_m, fixes.accuracy_kind), codes)
    return sigma * np.sqrt(correlated_run_length(codes, new_track))


def run_filter(truth, fixes, params: dict) -> tuple:
    """``fuse_tracks`` on a cell's fixes (metres), with ``params``."""
    from geomon.kernels.fusion import fuse_tracks

    return fuse_tracks(truth.offsets, truth.t_ms, fixes.x_m, fixes.y_m, filter_sigma_m(fixes, truth.new_track),
                       **params)


def _status_counts(status: np.ndarray) -> dict:
    from geomon.tracks.fusion import STATUS_NAMES

    counts = np.bincount(np.asarray(status, dtype=np.int64), minlength=len(STATUS_NAMES))
    return {(STATUS_NAMES[i] if i < len(STATUS_NAMES) else str(i)): int(c) for i, c in enumerate(counts)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def cell_metrics(cell: Cell, truth, fixes, fused: tuple) -> dict:
    """One cell's row: raw and fused error quantiles (m), their ratios, NEES, the 95 % ellipse, status counts.

    A fused output whose covariance is not positive definite (NaN NEES) counts as outside the ellipse.
    """
    fx, fy, var_x, var_y, cov_xy = (np.asarray(a, dtype=np.float64) for a in fused[:5])
    ex, ey = fx - truth.x_m, fy - truth.y_m
    raw = report.quantiles(np.hypot(fixes.x_m - truth.x_m, fixes.y_m - truth.y_m), QUANTILES)
    fused_error = np.hypot(ex, ey)
    fused_q = report.quantiles(fused_error, QUANTILES)
    nees = nees_2d(ex, ey, var_x, var_y, cov_xy)
    finite = np.isfinite(nees)
    return {
        "motion": cell.motion, "noise": cell.noise, "interval_s": cell.interval_s, "label": cell.label,
        "n_fixes": int(truth.t_ms.size), "n_tracks": truth.n_tracks,
        "n_nonfinite": int(np.count_nonzero(~np.isfinite(fused_error)) + np.count_nonzero(~finite)),
        "raw_error_m": raw, "fused_error_m": fused_q, "fused_p90_m": fused_q["p90"],
        "p90_ratio": _ratio(fused_q["p90"], raw["p90"]), "p99_ratio": _ratio(fused_q["p99"], raw["p99"]),
        "nees_mean": float(nees[finite].mean()) if finite.any() else None,
        "outside95": float(np.mean(~finite | (nees > CHI2_2DOF_95))),
        "status_counts": _status_counts(fused[7]),
    }


def missed_bars(cell: Cell, row: dict) -> list[str]:
    """Names of the bars (:data:`BARS`) the cell's row misses; a missing measurement misses its bar."""
    missed = []
    for name, applies, misses in BARS:
        if applies(cell):
            try:
                if misses(row):
                    missed.append(name)
            except TypeError:   # None: nothing measured
                missed.append(name)
    return missed


def evaluate(cells: Sequence[Cell], points: Sequence[dict], *, seed: int, n_tracks: int, fixes_per_cell: int,
             on_cell: Callable[[Cell], None] | None = None) -> list[list[dict]]:
    """Rows of every cell under every parameter point (``[point][cell]``); each cell simulated once."""
    out: list[list[dict]] = [[] for _ in points]
    for cell, truth, fixes in simulate_cells(cells, seed=seed, n_tracks=n_tracks, fixes_per_cell=fixes_per_cell):
        if on_cell is not None:
            on_cell(cell)
        for rows, params in zip(out, points):
            row = cell_metrics(cell, truth, fixes, run_filter(truth, fixes, params))
            row["missed"] = missed_bars(cell, row)
            rows.append(row)
    return out


# --- worst cells, tuning ------------------------------------------------------------


def _cell_of(row: dict) -> Cell:
    return Cell(row["motion"], row["noise"], int(row["interval_s"]))


def worst(rows: Sequence[dict]) -> dict:
    """The worst cell of ``rows`` per metric of :data:`WORST`: ``{key: {"value", "cell"}}`` (None: no cell).

    A cell without a measurement is the worst there is (its value is None and it is named).
    """
    out = {}
    for key, field, how, covers in WORST:
        mine = [r for r in rows if covers is None or covers(_cell_of(r))]
        if not mine:
            out[key] = {"value": None, "cell": None}
            continue
        missing = [r for r in mine if r[field] is None or not math.isfinite(r[field])]
        if missing:
            out[key] = {"value": None, "cell": missing[0]["label"]}
            continue
        pick = (max if how == "max" else min)(mine, key=lambda r: r[field])
        out[key] = {"value": pick[field], "cell": pick["label"]}
    return out


def misses_by_bar(rows: Sequence[dict]) -> dict[str, int]:
    """How many cells miss each bar (every bar named, 0 included)."""
    counts = {name: 0 for name, _, _ in BARS}
    for r in rows:
        for name in r["missed"]:
            counts[name] += 1
    return counts


def tuning_score(rows: Sequence[dict]) -> tuple[int, float, float]:
    """(bar violations, mean |ln(NEES / 2)|, mean fused/raw p90) over ``rows``: smaller is better, in that order."""
    violations = sum(len(r["missed"]) for r in rows)
    nees = [abs(math.log(r["nees_mean"] / 2.0)) if r["nees_mean"] else math.inf for r in rows]
    ratio = [r["p90_ratio"] if r["p90_ratio"] is not None else math.inf for r in rows]
    return violations, float(np.mean(nees)) if nees else math.inf, float(np.mean(ratio)) if ratio else math.inf


def choose(scores: Sequence[tuple[int, float, float]]) -> int:
    """Index of the best score: fewest violations, then NEES nearest 2, then the smallest p90 ratio."""
    return min(range(len(scores)), key=lambda i: scores[i])


def grid_points(grid: dict[str, list], known: Iterable[str]) -> tuple[list[dict], list[str]]:
    """Every combination of the grid's values over the names the kernel knows, and the names dropped."""
    known = set(known)
    names = [n for n in grid if n in known]
    dropped = [n for n in grid if n not in known]
    points = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    return points or [{}], dropped


# --- departures ---------------------------------------------------------------------


def departure(*, seed: int, n_trials: int, interval_s: float, params: dict) -> dict:
    """Subjects who stand still for 10 min, then drive off to 10-15 m/s, white noise of 2-5 m.

    Per trial, the fused error at and after the second fix after the departure, for
    :data:`DEPARTURE_WINDOW_S`, over the trial's per-axis sigma; the worst over all trials is held to
    :data:`DEPARTURE_BAR`.
    """
    from geomon.sim import field, field_noise

    rng = _rng(seed, 999)
    truth, depart_ms = field.departure_truth(n_trials, interval_s, rng)
    fixes = field_noise.add_noise(truth, "white", rng)
    fused = run_filter(truth, fixes, params)
    error = np.hypot(fused[0] - truth.x_m, fused[1] - truth.y_m) / fixes.true_sigma_m
    track = np.repeat(np.arange(truth.n_tracks), np.diff(truth.offsets))
    moving = truth.t_ms > depart_ms[track]
    # Index of each trial's second moving fix: the first moving one, plus one.
    second = np.array([truth.offsets[s] + np.argmax(moving[truth.offsets[s]:truth.offsets[s + 1]]) + 1
                       for s in range(truth.n_tracks)])
    t_second = truth.t_ms[second][track]
    window = (truth.t_ms >= t_second) & (truth.t_ms <= t_second + DEPARTURE_WINDOW_S * 1000.0)
    per_trial = np.full(truth.n_tracks, np.nan)
    np.fmax.at(per_trial, track[window], error[window])
    worst_trial = int(np.nanargmax(per_trial)) if np.isfinite(per_trial).any() else None
    # The reference no causal filter can beat by much: the raw fix at the second moving fix (the velocity is then
    # known from two fixes at best, so the fix is nearly all there is to know of where the car is).
    raw_second = np.hypot(fixes.x_m[second] - truth.x_m[second], fixes.y_m[second] - truth.y_m[second]) \
        / fixes.true_sigma_m[second]
    return {
        "n_trials": n_trials, "interval_s": interval_s,
        "error_sigma_max": None if worst_trial is None else float(per_trial[worst_trial]),
        "error_sigma_p50": float(np.nanmedian(per_trial)) if worst_trial is not None else None,
        "trials_over_bar": int(np.count_nonzero(per_trial > DEPARTURE_BAR)),
        "worst_trial": worst_trial,
        "raw_second_sigma_max": float(raw_second.max()) if raw_second.size else None,
        "raw_second_trials_over_bar": int(np.count_nonzero(raw_second > DEPARTURE_BAR)),
    }


# --- the whole matrix -----------------------------------------------------------------


SCOPES = ("all", "training", "held_out_motion", "held_out_noise")


def _in_scope(name: str, row: dict, hold_out: tuple[str, str]) -> bool:
    if name == "all":
        return True
    if name == "training":
        return row["scope"] == "training"
    return (row["motion"] == hold_out[0]) if name == "held_out_motion" else (row["noise"] == hold_out[1])


def summaries(rows: Sequence[dict], hold_out: tuple[str, str]) -> dict:
    """Per scope (:data:`SCOPES`): cells, cells missing a bar, misses per bar, the worst cell per metric."""
    out = {}
    for name in SCOPES:
        mine = [r for r in rows if _in_scope(name, r, hold_out)]
        out[name] = {"n_cells": len(mine), "n_cells_missing": sum(1 for r in mine if r["missed"]),
                     "misses": misses_by_bar(mine), "worst": worst(mine)}
    return out


def run_matrix(config, progress) -> dict:
    """The matrix at ``config``'s sizes: tuned on the training cells when ``config.tune``, held-out cells after.

    ``config`` has ``seed``, ``n_tracks``, ``fixes_per_cell``, ``intervals_s``, ``tune``, ``hold_out_motion``,
    ``hold_out_noise``, ``departure_trials`` and ``departure_interval_s``; ``progress`` is a console for
    :func:`benchmarks.report.step`.
    """
    from geomon.kernels.fusion import DEFAULT_PARAMS
    from geomon.sim.field import MOTIONS
    from geomon.sim.field_noise import NOISES

    hold_out = (config.hold_out_motion, config.hold_out_noise)
    if hold_out[0] not in MOTIONS or hold_out[1] not in NOISES:
        raise ValueError(f"hold-out {hold_out} must name a motion ({', '.join(MOTIONS)}) and a noise "
                         f"({', '.join(NOISES)})")
    cells = matrix_cells(MOTIONS, NOISES, config.intervals_s)
    points, dropped = grid_points(TUNING_GRID, DEFAULT_PARAMS) if config.tune else ([{}], [])
    sizes = {"seed": config.seed, "n_tracks": config.n_tracks, "fixes_per_cell": config.fixes_per_cell}

    def by_motion(chosen: list[Cell], pts: list[dict], what: str) -> list[list[dict]]:
        out: list[list[dict]] = [[] for _ in pts]
        for motion in MOTIONS:
            mine = [c for c in chosen if c.motion == motion]
            if mine:
                with report.step(progress, f"{what}: {motion}, {len(mine)} cells x {len(pts)} parameter set(s)"):
                    for rows, more in zip(out, evaluate(mine, pts, **sizes)):
                        rows.extend(more)
        return out

    training = [c for c in cells if scope(c, hold_out) == "training"]
    held = [c for c in cells if scope(c, hold_out) != "training"]
    train_rows = by_motion(training, points, "training cells")
    scores = [tuning_score(rows) for rows in train_rows]
    best = choose(scores)
    params = points[best]
    held_rows = by_motion(held, [params], "held-out cells")[0]
    found = {r["label"]: r for r in [*train_rows[best], *held_rows]}
    rows = [found[c.label] | {"scope": scope(c, hold_out)} for c in cells]
    with report.step(progress, f"departures: {config.departure_trials} trials at {config.departure_interval_s:g} s"):
        dep = departure(seed=config.seed, n_trials=config.departure_trials,
                        interval_s=config.departure_interval_s, params=params)
    tuning = None
    if config.tune:
        tuning = {"grid": TUNING_GRID, "dropped": dropped, "chosen": best,
                  "points": [{"params": p, "violations": s[0], "nees_log_dev": s[1], "p90_ratio_mean": s[2]}
                             for p, s in zip(points, scores)]}
    return {"hold_out": {"motion": hold_out[0], "noise": hold_out[1]}, "params": params, "tuning": tuning,
            "intervals_s": list(config.intervals_s), "cells": rows, "summaries": summaries(rows, hold_out),
            "departure": dep}
