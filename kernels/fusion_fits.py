"""Pieces of the fusion filter that decide about runs of fixes: restart fits and the doubt of a jump.

:func:`_cv_fit` and :func:`_consistent_fit` test whether buffered rejected
fixes fit one motion (and whether that motion starts where the track was);
:func:`_jump` and :func:`_add_jump` keep the doubt that a jump of the state
followed a multipath run, with the anchor that says where the subject is if it
did. :mod:`geomon.kernels.fusion` documents the model.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

#: Doubt stays below 1 so that its odds can fade; below _DOUBT_MIN a new jump sets a new anchor.
_MAX_DOUBT = 1.0 - 1e-9
_DOUBT_MIN = 1e-3


@jit
def _cv_fit(pend, n, extra_var):
    """Weighted least-squares constant-velocity fit of the buffered fixes ``pend[:, :n]``.

    ``pend`` rows are time (ms), x, y (m) and sigma (m). Each fix has variance
    ``sigma^2 + extra_var`` per axis. Returns ``(ok, chi2, x, y, vx, vy, p_pp,
    p_pv, p_vv)`` at the time of the last fix (positions relative to it);
    ``ok`` is False when the times do not determine a velocity.
    """
    last = n - 1
    t0, x0, y0 = pend[0, last], pend[1, last], pend[2, last]
    sw = swt = swtt = sx = stx = sxx = sy = sty = syy = 0.0
    for k in range(n):
        w = 1.0 / (pend[3, k] * pend[3, k] + extra_var)
        tau = (pend[0, k] - t0) * 1e-3
        dx = pend[1, k] - x0
        dy = pend[2, k] - y0
        sw += w
        swt += w * tau
        swtt += w * tau * tau
        sx += w * dx
        stx += w * tau * dx
        sxx += w * dx * dx
        sy += w * dy
        sty += w * tau * dy
        syy += w * dy * dy
    det = sw * swtt - swt * swt
    if not det > 0.0:
        return False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    px = (swtt * sx - swt * stx) / det
    vx = (sw * stx - swt * sx) / det
    py = (swtt * sy - swt * sty) / det
    vy = (sw * sty - swt * sy) / det
    chi2 = (sxx - px * sx - vx * stx) + (syy - py * sy - vy * sty)
    return True, chi2, px, py, vx, vy, swtt / det, -swt / det, sw / det


@jit
def _consistent_fit(pend, n, chi2_max, q_walk, vehicle_gain, walk_speed2, allow_max_var):
    """Do the buffered rejected fixes ``pend[:, :n]`` fit one motion? Returns ``(ok, x, y, vx, vy, p_pp, p_pv, p_vv)``.

    A first fit gives the speed; the second allows each fix the deviation from a
    straight line that the manoeuvres of a subject at that speed cause over the
    run (``q span^3 / 48``, the variance of the middle of three equally spaced
    points of a CWNA path about their chord), with ``q`` as in the prediction,
    at most ``allow_max_var``: a fast fit must not bridge a jump.
    """
    ok, chi2, px, py, vx, vy, a, b, c = _cv_fit(pend, n, 0.0)
    if not ok:
        return False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    span = (pend[0, n - 1] - pend[0, 0]) * 1e-3
    q = max(q_walk, vehicle_gain * (vx * vx + vy * vy - walk_speed2))
    ok, chi2, px, py, vx, vy, a, b, c = _cv_fit(pend, n, min(q * span * span * span / 48.0, allow_max_var))
    return ok and chi2 <= chi2_max, pend[1, n - 1] + px, pend[2, n - 1] + py, vx, vy, a, b, c


@jit
def _add_jump(doubt, jump2_last, jump2, side2, eps, stay_p, real_rate, outlier_var, real_var, min_var):
    """Doubt (probability the state rests on multipath) after a jump of squared length ``jump2``.

    A multipath run starts at a fix with probability about ``eps (1 - stay_p)``
    (this track's outlier rate over the mean run length), a real jump with
    probability ``real_rate``; multipath offsets are N(0, outlier_var) per
    axis and real jumps N(0, real_var), so a jump of a few tens of metres in a
    multipath-prone place is probably multipath and one of a kilometre is
    motion. Returns the combined doubt and the doubt-weighted squared jump.
    """
    start = eps * (1.0 - stay_p)
    dirty = start / outlier_var * np.exp(-0.5 * jump2 / outlier_var)
    real = real_rate / real_var * np.exp(-0.5 * jump2 / real_var)
    p = min(dirty / (dirty + real), _MAX_DOUBT) if dirty + real > 0.0 else 0.0
    # Multipath offsets are metres to tens of metres; a jump much smaller than
    # min_var^0.5 is a manoeuvre the track followed, whatever its cause, and so
    # is a jump along a moving track (a stop or a start): only its sideways
    # part ``side2`` counts.
    p *= -np.expm1(-0.5 * side2 / min_var)
    new = min(1.0 - (1.0 - doubt) * (1.0 - p), _MAX_DOUBT)
    if doubt + p > 0.0:
        jump2_last = (doubt * jump2_last + p * jump2) / (doubt + p)
    return new, jump2_last


@jit
def _jump(doubt, jump2_last, anchor, ox, oy, ovx, ovy, dx, dy, jump2, t, eps, stay_p, real_rate, outlier_var,
          real_var, min_var, moving_speed2):
    """The state jumped from ``(ox, oy)`` to ``(dx, dy)``: update the doubt, the squared jump and the anchor.

    The anchor ``(x, y, vx, vy, t_ms, bx, by)`` is where the track was (and
    how it moved) before the jump that raised the doubt, and the offset of the
    state from it, carried forward, after the jump: if the doubt is right, the
    subject is at the anchor and the fixes carry that offset. A later jump that
    lands nearer the anchor, carried forward, than halfway back to where it
    started is the end of the multipath run: the doubt clears.
    """
    ax, ay, avx, avy, at, bx, by = anchor
    if doubt > _DOUBT_MIN:
        tau = (t - at) * 1e-3
        bx = dx - (ax + avx * tau)
        by = dy - (ay + avy * tau)
        if bx * bx + by * by < 0.25 * ((dx - ox) * (dx - ox) + (dy - oy) * (dy - oy)):
            return 0.0, 0.0, anchor
    else:
        ax, ay, avx, avy, at = ox, oy, ovx, ovy, float(t)
        bx, by = dx - ox, dy - oy
    side2 = jump2
    speed2 = ovx * ovx + ovy * ovy
    if speed2 >= moving_speed2 and speed2 > 0.0:
        along = ((dx - ox) * ovx + (dy - oy) * ovy)
        side2 = max(jump2 - along * along / speed2, 0.0) if jump2 > 0.0 else 0.0
        side2 = min(side2, jump2)
    doubt, jump2_last = _add_jump(doubt, jump2_last, jump2, side2, eps, stay_p, real_rate, outlier_var, real_var,
                                  min_var)
    return doubt, jump2_last, (ax, ay, avx, avy, at, bx, by)
