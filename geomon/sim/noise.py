"""Simulated position fixes: each device's report schedule and the noise of each fix.

Part of :mod:`geomon.sim.simulate`, whose module docstring describes the noise
modes: augmented and open-sky satellite fixes, urban fixes with persistent
multipath offsets (a two-state Markov chain over fixes), and indoor fixes that
are lost, urban satellite fixes, or cell fixes (a per-stay tower offset plus
scatter). ``accuracy_m`` is the honest 1-sigma per axis of the mode.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SOURCE_NAMES", "schedule_ms", "subject_fixes"]

#: Reported 1-sigma (per axis) of satellite fixes by mode, metres.
SIGMA_AUGMENTED_M = 0.3
SIGMA_OPEN_M = 2.5
SIGMA_URBAN_M = 6.0
#: Share of urban fixes carrying a multipath offset, drawn per device.
MULTIPATH_FRACTION = (0.05, 0.10)
MULTIPATH_OFFSET_M = (15.0, 60.0)
MULTIPATH_MEAN_RUN_FIXES = 4.0
#: Range of cell-fix 1-sigma (per axis), drawn per stay, metres.
CELL_SIGMA_M = (100.0, 800.0)
#: Indoor fixes: share lost, share that are (urban-quality) satellite fixes; the rest are cell fixes.
INDOOR_P_LOST = 0.45
INDOOR_P_GNSS = 0.10

#: Fix sources by their code in :func:`subject_fixes` output.
SOURCE_NAMES = ("gnss", "cell")
_GNSS, _CELL = 0, 1


def schedule_ms(rng, interval_s: float, span_ms: int) -> np.ndarray:
    """Scheduled fix times of one device, ms from the start: every ``interval_s``, each step jittered by +/-10 %."""
    step_ms = interval_s * 1_000.0
    n = int(span_ms / (0.9 * step_ms)) + 3
    steps = np.maximum(np.rint(step_ms * rng.uniform(0.9, 1.1, n)).astype(np.int64), 1)
    t = int(rng.uniform(0.0, step_ms)) + np.concatenate([[0], np.cumsum(steps[:-1])])
    return t[t < span_ms]


def _multipath(rng, n: int):
    """Two-state Markov chain over fixes: on/off and, when on, a persistent offset per run (metres)."""
    fraction = rng.uniform(*MULTIPATH_FRACTION)
    p_off = 1.0 / MULTIPATH_MEAN_RUN_FIXES
    p_on = p_off * fraction / (1.0 - fraction)
    runs = np.zeros(0, dtype=np.int64)
    while runs.sum() < n:
        k = int(n * p_on) + 16
        pair = np.column_stack([rng.geometric(p_on, k), rng.geometric(p_off, k)]).ravel()
        runs = np.concatenate([runs, pair])
    label = np.repeat(np.arange(runs.size), runs)[:n]
    mag = rng.uniform(*MULTIPATH_OFFSET_M, runs.size // 2)
    ang = rng.uniform(0.0, 2 * np.pi, runs.size // 2)
    on = label % 2 == 1
    run = label // 2
    return on, np.where(on, mag[run] * np.cos(ang[run]), 0.0), np.where(on, mag[run] * np.sin(ang[run]), 0.0)


def subject_fixes(rng, geo, subj, tl_t, tl_x, tl_y, indoor, sched_ms, noise: bool):
    """Fixes of one subject: ``(ts_ms, x_m, y_m, source, accuracy_m)`` with lost fixes removed."""
    t = sched_ms / 1_000.0
    x, y = np.interp(t, tl_t, tl_x), np.interp(t, tl_t, tl_y)
    n = t.size
    if not noise:
        return sched_ms, x, y, np.full(n, _GNSS, np.int8), np.full(n, SIGMA_AUGMENTED_M, np.float32)
    piece = np.clip(np.searchsorted(tl_t, t, side="right") - 1, 0, indoor.size - 1)
    is_indoor = indoor[piece]
    urban = geo.urban(x, y)
    sigma = np.where(urban, SIGMA_URBAN_M, SIGMA_AUGMENTED_M if subj.augmented else SIGMA_OPEN_M)
    u = rng.random(n)
    lost = is_indoor & (u < INDOOR_P_LOST)
    cell = is_indoor & (u >= INDOOR_P_LOST + INDOOR_P_GNSS)
    sigma = np.where(is_indoor, SIGMA_URBAN_M, sigma)
    mp_on, mp_x, mp_y = _multipath(rng, n)
    mp = (sigma == SIGMA_URBAN_M) & mp_on
    ex = rng.normal(size=n) * sigma + np.where(mp, mp_x, 0.0)
    ey = rng.normal(size=n) * sigma + np.where(mp, mp_y, 0.0)
    # A cell fix is a per-stay offset (the serving tower) plus scatter; 0.8**2 + 0.6**2 = 1.
    cell_sigma = np.rint(rng.uniform(*CELL_SIGMA_M, indoor.size))
    off = rng.normal(size=(indoor.size, 2)) * (0.8 * cell_sigma)[:, None]
    jitter = rng.normal(size=(n, 2)) * (0.6 * cell_sigma[piece])[:, None]
    ex = np.where(cell, off[piece, 0] + jitter[:, 0], ex)
    ey = np.where(cell, off[piece, 1] + jitter[:, 1], ey)
    acc = np.where(cell, cell_sigma[piece], sigma).astype(np.float32)
    keep = ~lost
    source = np.where(cell, _CELL, _GNSS).astype(np.int8)
    return sched_ms[keep], (x + ex)[keep], (y + ey)[keep], source[keep], acc[keep]
