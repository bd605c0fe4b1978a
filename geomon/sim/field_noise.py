"""Noise of position fixes as devices produce and report it, for the fusion matrix (metres, seeded).

Each family turns the true positions of :mod:`geomon.sim.field` into fixes:
a position, the accuracy the device reports, what that accuracy means (its
kind, as :func:`geomon.io.accuracy.sigma_from_accuracy` reads it) and the
fix's source. The families (:data:`NOISES`), with sigma per axis and per
track unless said otherwise:

- ``white``: Gaussian, sigma uniform in 2-5 m, reported as sigma;
- ``augmented``: the same with sigma 0.3-0.5 m (SBAS, RTK);
- ``ar1``: white of 0.6 sigma plus a bias per axis following a first-order
  autoregression (Gauss-Markov) of 0.8 sigma with a time constant of 30-120 s;
  reported as the total sigma (``0.6**2 + 0.8**2 = 1``);
- ``outliers``: white plus 8 % independent outliers of 15-60 m in a random
  direction; reported as the white sigma;
- ``multipath``: white plus runs of one constant offset of 15-60 m each,
  lasting a geometric number of fixes with a mean of 60 s, about 7 % of the
  time; reported as the white sigma;
- ``phone``: a true sigma of 2-8 m (white plus a small AR(1) bias), reported
  as a constant 3.8 m 68 % radius whatever the error (kind ``r68``);
- ``cell``: satellite white of 2-5 m, but 15 % of the time, in periods of
  2-10 min, only cell fixes arrive: one tower offset per period (250 m per
  axis) plus 30 m of white, reported as 400 m sigma, source ``cell``.

Notes
-----
The AR(1) bias with time constant ``tau`` between fixes ``dt`` apart is
``b_k = phi b_{k-1} + sqrt(1 - phi^2) s w_k`` with ``phi = exp(-dt / tau)``:
stationary with sd ``s`` and lag autocorrelation ``exp(-dt / tau)`` (the
first-order Gauss-Markov process of Brown and Hwang, *Introduction to Random
Signals and Applied Kalman Filtering*, 4th ed., 2012, sec. 2.9). The
recurrence is solved for every track at once by a parallel prefix scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geomon.sim.field import FieldTruth

__all__ = ["NOISES", "FieldFixes", "add_noise", "ar1", "alternating_runs"]

#: Noise family names, in the matrix's order.
NOISES: tuple[str, ...] = ("white", "augmented", "ar1", "outliers", "multipath", "phone", "cell")

WHITE_SIGMA_M = (2.0, 5.0)
AUGMENTED_SIGMA_M = (0.3, 0.5)
#: ``ar1``: shares of the total sigma taken by the white part and by the bias; the bias's time constant (s).
AR1_WHITE_SHARE = 0.6
AR1_BIAS_SHARE = 0.8
AR1_TAU_S = (30.0, 120.0)
OUTLIER_SHARE = 0.08
OUTLIER_M = (15.0, 60.0)
MULTIPATH_SHARE = 0.07
MULTIPATH_M = (15.0, 60.0)
MULTIPATH_MEAN_S = 60.0
PHONE_SIGMA_M = (2.0, 8.0)
#: ``phone``: share of its sigma in the slow bias, and the bias's time constant (s).
PHONE_BIAS_SHARE = 0.3
PHONE_TAU_S = 60.0
PHONE_REPORTED_R68_M = 3.8
CELL_SHARE = 0.15
CELL_PERIOD_S = (120.0, 600.0)
CELL_MIN_GAP_S = 60.0
CELL_TOWER_SIGMA_M = 250.0
CELL_WHITE_SIGMA_M = 30.0
CELL_REPORTED_M = 400.0


@dataclass(frozen=True)
class FieldFixes:
    """Fixes of a :class:`FieldTruth`, one per true position, as a device would deliver them."""

    noise: str
    x_m: np.ndarray
    y_m: np.ndarray
    #: What the device reports, in the meaning ``accuracy_kind`` names.
    accuracy_m: np.ndarray
    accuracy_kind: str
    #: ``gnss`` or ``cell`` per fix (object array).
    source: np.ndarray
    #: The per-axis sigma the error was drawn with (outliers and multipath offsets aside).
    true_sigma_m: np.ndarray
    #: True where the fix carries an outlier, a multipath offset or comes from a cell period.
    disturbed: np.ndarray


def ar1(rng: np.random.Generator, t_ms: np.ndarray, new_track: np.ndarray, sd_m: np.ndarray,
        tau_s: np.ndarray) -> np.ndarray:
    """A stationary AR(1) (first-order Gauss-Markov) series per track: sd ``sd_m``, time constant ``tau_s``.

    ``sd_m`` and ``tau_s`` are per fix (constant along a track); a track starts
    at a draw of the stationary distribution.

    Examples
    --------
    >>> b = ar1(np.random.default_rng(0), np.arange(200_000) * 1000, np.arange(200_000) % 100_000 == 0,
    ...         np.full(200_000, 2.0), np.full(200_000, 30.0))
    >>> bool(abs(b.std() - 2.0) < 0.2), bool(abs(np.corrcoef(b[1:], b[:-1])[0, 1] - np.exp(-1 / 30)) < 0.01)
    (True, True)
    """
    dt_s = np.diff(t_ms, prepend=t_ms[:1]) * 1e-3
    # (A new track's step from the previous track's last fix may be negative: it counts as no correlation.)
    phi = np.where(new_track, 0.0, np.exp(-np.where(new_track, 0.0, dt_s) / tau_s))
    w = rng.normal(size=t_ms.size) * sd_m * np.sqrt(1.0 - phi * phi)
    # Hillis-Steele scan of b_k = phi_k b_{k-1} + w_k: after the pass with shift s, (a, b) at k compose the
    # 2 s steps ending at k.
    a, b = phi.copy(), w
    shift = 1
    while shift < t_ms.size:
        b = np.concatenate([b[:shift], b[shift:] + a[shift:] * b[:-shift]])
        a = np.concatenate([a[:shift], a[shift:] * a[:-shift]])
        shift *= 2
    return b


def alternating_runs(rng: np.random.Generator, n: int, mean_off: float, mean_on: float) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Off and on runs over ``n`` steps, of geometric lengths with the given means (>= 1); ``(on, run id)``.

    The first run is on with the stationary probability ``mean_on / (mean_on + mean_off)``.
    """
    p_off, p_on = 1.0 / max(mean_off, 1.0), 1.0 / max(mean_on, 1.0)
    k = int(n / (mean_off + mean_on)) + 16
    runs = np.zeros(0, dtype=np.int64)
    while runs.sum() < n:
        runs = np.concatenate([runs, np.column_stack([rng.geometric(p_off, k), rng.geometric(p_on, k)]).ravel()])
    if rng.random() < mean_on / (mean_on + mean_off):
        runs = runs[1:]    # start inside an on run
        label = np.repeat(np.arange(1, runs.size + 1), runs)[:n]
    else:
        label = np.repeat(np.arange(runs.size), runs)[:n]
    return label % 2 == 1, label // 2


def _per_track(truth: FieldTruth, values: np.ndarray) -> np.ndarray:
    return np.repeat(values, np.diff(truth.offsets))


def _cell_periods(rng: np.random.Generator, truth: FieldTruth) -> tuple[np.ndarray, np.ndarray]:
    """Per fix: inside a cell-only period (in time, :data:`CELL_SHARE` of it), and the period's id."""
    on = np.zeros(truth.t_ms.size, bool)
    period = np.zeros(truth.t_ms.size, np.int64)
    mean_on = 0.5 * sum(CELL_PERIOD_S)
    mean_off = mean_on * (1.0 - CELL_SHARE) / CELL_SHARE
    first = 0
    for s in range(truth.n_tracks):
        lo, hi = truth.offsets[s], truth.offsets[s + 1]
        t_s = (truth.t_ms[lo:hi] - truth.t_ms[lo]) * 1e-3
        k = int(t_s[-1] / (mean_on + mean_off)) + 8
        # Periods never touch: at least a minute of satellite fixes between two.
        gaps = CELL_MIN_GAP_S + rng.exponential(mean_off - CELL_MIN_GAP_S, k)
        gaps[0] = rng.uniform(0.0, mean_off + mean_on)   # the track starts at a random phase
        lengths = rng.uniform(*CELL_PERIOD_S, k)
        begin = np.cumsum(gaps + np.concatenate([[0.0], lengths[:-1]]))
        i = np.searchsorted(begin, t_s, side="right") - 1
        inside = (i >= 0) & (t_s < begin[np.maximum(i, 0)] + lengths[np.maximum(i, 0)])
        on[lo:hi], period[lo:hi] = inside, first + np.maximum(i, 0)
        first += k
    return on, period


def add_noise(truth: FieldTruth, noise: str, rng: np.random.Generator) -> FieldFixes:
    """Fixes of ``truth`` under one noise family (see the module docstring).

    Examples
    --------
    >>> from geomon.sim.field import simulate_motion
    >>> truth = simulate_motion("rest", 3, 50, 15.0, np.random.default_rng(0))
    >>> fixes = add_noise(truth, "phone", np.random.default_rng(1))
    >>> fixes.accuracy_kind, float(fixes.accuracy_m.min()), float(fixes.accuracy_m.max())
    ('r68', 3.8, 3.8)
    """
    if noise not in NOISES:
        raise ValueError(f"unknown noise family {noise!r}; expected one of {', '.join(NOISES)}")
    n, n_tracks = truth.t_ms.size, truth.n_tracks
    new_track = truth.new_track
    unit = rng.normal(size=(2, n))
    kind = "sigma"
    source = np.full(n, "gnss", dtype=object)
    disturbed = np.zeros(n, bool)
    ex, ey = np.zeros(n), np.zeros(n)
    if noise == "augmented":
        sigma = _per_track(truth, rng.uniform(*AUGMENTED_SIGMA_M, n_tracks))
    elif noise == "phone":
        sigma = _per_track(truth, rng.uniform(*PHONE_SIGMA_M, n_tracks))
    else:
        sigma = _per_track(truth, rng.uniform(*WHITE_SIGMA_M, n_tracks))
    reported = sigma.copy()
    white = sigma
    if noise in ("ar1", "phone"):
        bias_share = AR1_BIAS_SHARE if noise == "ar1" else PHONE_BIAS_SHARE
        white = sigma * (AR1_WHITE_SHARE if noise == "ar1" else np.sqrt(1.0 - PHONE_BIAS_SHARE ** 2))
        tau = _per_track(truth, rng.uniform(*AR1_TAU_S, n_tracks)) if noise == "ar1" else np.full(n, PHONE_TAU_S)
        ex = ar1(rng, truth.t_ms, new_track, bias_share * sigma, tau)
        ey = ar1(rng, truth.t_ms, new_track, bias_share * sigma, tau)
    if noise == "phone":
        reported = np.full(n, PHONE_REPORTED_R68_M)
        kind = "r68"
    ex, ey = ex + white * unit[0], ey + white * unit[1]
    if noise in ("outliers", "multipath"):
        if noise == "outliers":
            disturbed, run = rng.random(n) < OUTLIER_SHARE, np.arange(n)
        else:
            mean_on = max(MULTIPATH_MEAN_S / truth.interval_s, 1.0)
            disturbed, run = alternating_runs(rng, n, mean_on * (1.0 - MULTIPATH_SHARE) / MULTIPATH_SHARE, mean_on)
        # One offset per outlier, or per multipath run: a distance in the family's range, any direction.
        jump = rng.uniform(*(OUTLIER_M if noise == "outliers" else MULTIPATH_M), run.max() + 1)[run]
        angle = rng.uniform(0.0, 2 * np.pi, run.max() + 1)[run]
        ex = ex + np.where(disturbed, jump * np.cos(angle), 0.0)
        ey = ey + np.where(disturbed, jump * np.sin(angle), 0.0)
    elif noise == "cell":
        disturbed, period = _cell_periods(rng, truth)
        tower = rng.normal(0.0, CELL_TOWER_SIGMA_M, (2, period.max() + 1))
        ex = np.where(disturbed, tower[0, period] + CELL_WHITE_SIGMA_M * unit[0], ex)
        ey = np.where(disturbed, tower[1, period] + CELL_WHITE_SIGMA_M * unit[1], ey)
        sigma = np.where(disturbed, np.hypot(CELL_TOWER_SIGMA_M, CELL_WHITE_SIGMA_M), sigma)
        reported = np.where(disturbed, CELL_REPORTED_M, reported)
        source[disturbed] = "cell"
    return FieldFixes(noise, truth.x_m + ex, truth.y_m + ey, reported, kind, source, sigma, disturbed)
