"""Rauch-Tung-Striebel smoothing of the fused tracks, for offline forensic replay only.

The causal filter (:mod:`geomon.kernels.fusion`) feeds alerts; this smoother
uses later fixes to improve earlier positions and must never feed them.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit
from geomon.kernels._pool import split
from geomon.kernels.fusion import _check_offsets

__all__ = ["rts_smooth"]


#: A predicted covariance whose determinant is below this share of ``a c`` carries no velocity information
#: the smoother could invert (a still subject's velocity is known to be zero).
_KNOWN_VELOCITY = 1e-9


@jit
def _smooth_track(lo, hi, t_ms, link, pred, filt, out):
    """Backward RTS pass over fixes ``lo:hi`` of one track."""
    for i in range(hi - 1, lo - 1, -1):
        for j in range(7):
            out[i, j] = filt[i, j]
        if i == hi - 1 or link[i + 1] == 0:
            continue
        ap, bp, cp = pred[i + 1, 4], pred[i + 1, 5], pred[i + 1, 6]
        det = ap * cp - bp * bp
        if not ap > 0.0:
            continue
        dt = max(t_ms[i + 1] - t_ms[i], 0) * 1e-3
        a, b, c = filt[i, 4], filt[i, 5], filt[i, 6]
        if not det > _KNOWN_VELOCITY * ap * cp:
            # The prediction knows the velocity (a still subject's is zero): smooth the position alone.
            c11 = a / ap
            for axis in range(2):
                out[i, axis] = filt[i, axis] + c11 * (out[i + 1, axis] - pred[i + 1, axis])
            out[i, 4] = a + c11 * c11 * (out[i + 1, 4] - ap)
            continue
        # Smoother gain C = P F^T P_pred^-1, one 2x2 for both axes.
        m11, m12, m21, m22 = a + b * dt, b, b + c * dt, c
        ia, ib, ic = cp / det, -bp / det, ap / det
        c11 = m11 * ia + m12 * ib
        c12 = m11 * ib + m12 * ic
        c21 = m21 * ia + m22 * ib
        c22 = m21 * ib + m22 * ic
        for axis in range(2):
            dp = out[i + 1, axis] - pred[i + 1, axis]
            dv = out[i + 1, axis + 2] - pred[i + 1, axis + 2]
            out[i, axis] = filt[i, axis] + c11 * dp + c12 * dv
            out[i, axis + 2] = filt[i, axis + 2] + c21 * dp + c22 * dv
        da = out[i + 1, 4] - ap
        db = out[i + 1, 5] - bp
        dc = out[i + 1, 6] - cp
        t11 = c11 * da + c12 * db
        t12 = c11 * db + c12 * dc
        t21 = c21 * da + c22 * db
        t22 = c21 * db + c22 * dc
        sa = a + t11 * c11 + t12 * c12
        sb = b + t11 * c21 + t12 * c22
        sc = c + t21 * c21 + t22 * c22
        # The filtered states of a multiple-model filter are not one linear model's, so the update can
        # overshoot below zero by a little: keep the covariance a covariance.
        sa, sc = max(sa, 0.0), max(sc, 0.0)
        lim = np.sqrt(sa * sc)
        out[i, 4], out[i, 5], out[i, 6] = sa, min(max(sb, -lim), lim), sc


@jit
def _smooth_run(offsets, t_ms, link, pred, filt, out):
    for s in range(offsets.size - 1):
        _smooth_track(offsets[s], offsets[s + 1], t_ms, link, pred, filt, out)


def rts_smooth(offsets, t_ms, link, pred, filt):
    """Rauch-Tung-Striebel smoothed states of every track, for offline forensic replay only.

    Parameters
    ----------
    offsets : array_like of int64, shape (n_tracks + 1,)
        CSR offsets, as given to :func:`fuse_tracks_history`.
    t_ms : array_like of int64, shape (n,)
        Fix times, ms since the epoch (UTC).
    link, pred, filt : ndarray
        As returned by :func:`fuse_tracks_history`.

    Returns
    -------
    ndarray of float64, shape (n, 7)
        Smoothed state at each fix, columns :data:`HISTORY_COLUMNS`. Each
        segment between links of 0 is smoothed on its own, and its last fix
        keeps the filtered state.

    Notes
    -----
    Rauch, Tung, Striebel (1965); Bar-Shalom, Li, Kirubarajan (2001, ch. 8):
    ``C_i = P_i|i F^T P_i+1|i^-1``, ``x_i|N = x_i|i + C_i (x_i+1|N - x_i+1|i)``,
    ``P_i|N = P_i|i + C_i (P_i+1|N - P_i+1|i) C_i^T``. A prior widened by the
    fading factor acts as extra process noise on that step, which the
    recursion allows. The smoothed state uses later fixes, so it must never
    feed alerts.
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    t_ms = np.ascontiguousarray(t_ms, dtype=np.int64)
    link = np.ascontiguousarray(link, dtype=np.int8)
    pred = np.ascontiguousarray(pred, dtype=np.float64)
    filt = np.ascontiguousarray(filt, dtype=np.float64)
    n = t_ms.size
    if link.shape != (n,) or pred.shape != (n, 7) or filt.shape != (n, 7):
        raise ValueError("t_ms, link, pred and filt must describe the same fixes")
    _check_offsets(offsets, n)
    out = np.empty((n, 7))
    split(offsets.size - 1, lambda lo, hi: _smooth_run(offsets[lo:hi + 1], t_ms, link, pred, filt, out), min_units=64)
    return out
