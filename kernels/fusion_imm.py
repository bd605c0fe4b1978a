"""The three motions of a person behind :mod:`geomon.kernels.fusion_filter`: transitions, mixture, prediction.

Each motion (still, steady, manoeuvre) keeps one row of 8: probability, x, y, vx, vy and the per-axis
(position, cross, velocity) covariance; :func:`mix_predict` is the interacting-multiple-model step
from one fix to the next, :func:`combine` the moment-matched mixture the filter reports.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

#: The motions, in the order of a state row's model blocks.
N_MODELS = 3
STILL, STEADY, MANOEUVRE = 0, 1, 2


@jit
def transition(dt, dwell, to_other, tm):
    """Fill ``tm[i, j]``, the probability of moving from model i to model j over ``dt`` seconds.

    A subject leaves model i after a mean ``dwell[i]``; ``to_other[i]`` is the share of those
    departures that go to the first of the other two models (still -> manoeuvre, steady -> still,
    manoeuvre -> still), the rest to the second."""
    for i in range(N_MODELS):
        leave = 1.0 - np.exp(-dt / dwell[i])
        first = MANOEUVRE if i == STILL else STILL
        second = STEADY if i != STEADY else MANOEUVRE
        tm[i, i] = 1.0 - leave
        tm[i, first] = leave * to_other[i]
        tm[i, second] = leave * (1.0 - to_other[i])


@jit
def combine(m, out):
    """Moment-matched mixture: out = (x, y, vx, vy, var_x, var_y, cov_xy, a, b, c).

    ``a, b, c`` are the per-axis (trace / 2) position, cross and velocity covariances."""
    x = y = vx = vy = 0.0
    for j in range(N_MODELS):
        w = m[j, 0]
        x += w * m[j, 1]
        y += w * m[j, 2]
        vx += w * m[j, 3]
        vy += w * m[j, 4]
    sxx = syy = sxy = bb = cb = 0.0
    for j in range(N_MODELS):
        w = m[j, 0]
        dx, dy, dvx, dvy = m[j, 1] - x, m[j, 2] - y, m[j, 3] - vx, m[j, 4] - vy
        sxx += w * (m[j, 5] + dx * dx)
        syy += w * (m[j, 5] + dy * dy)
        sxy += w * dx * dy
        bb += w * (m[j, 6] + 0.5 * (dx * dvx + dy * dvy))
        cb += w * (m[j, 7] + 0.5 * (dvx * dvx + dvy * dvy))
    out[0], out[1], out[2], out[3] = x, y, vx, vy
    out[4], out[5], out[6] = sxx, syy, sxy
    out[7], out[8], out[9] = 0.5 * (sxx + syy), bb, cb


@jit
def mix_predict(m, tm, dt, q, v0var, mixed, w3, qe):
    """IMM interaction and prediction: ``mixed[j]`` is model j's prior at the fix, ``mixed[j, 0]`` its probability.

    A subject who was still starts moving with a velocity of spread ``v0var[j]``; one who enters
    the manoeuvre from steady motion may change velocity by ``v0var[MANOEUVRE]``. The x and y parts
    of the spread between the models are averaged (the models keep one covariance for both axes).
    The manoeuvre's acceleration level is at most what changes the velocity, over ``dt``, by its own
    size plus a start speed (``|v|^2 + v0var[STEADY]`` with the velocity's variance): a walker
    turning between fixes a minute apart is not spread like a car braking. ``qe`` gets the levels
    used."""
    for j in range(N_MODELS):
        cj = 0.0
        for i in range(N_MODELS):
            cj += tm[i, j] * m[i, 0]
        x = y = vx = vy = 0.0
        for i in range(N_MODELS):
            w = tm[i, j] * m[i, 0] / cj if cj > 0.0 else (1.0 if i == j else 0.0)
            w3[i] = w
            x += w * m[i, 1]
            y += w * m[i, 2]
            if i != STILL and j != STILL:
                vx += w * m[i, 3]
                vy += w * m[i, 4]
        a = b = c = 0.0
        for i in range(N_MODELS):
            w = w3[i]
            if w == 0.0:
                continue
            dx, dy = m[i, 1] - x, m[i, 2] - y
            a += w * (m[i, 5] + 0.5 * (dx * dx + dy * dy))
            if j != STILL:
                if i == STILL:
                    ivx = ivy = ib = 0.0
                    ic = v0var[j]
                else:
                    ivx, ivy, ib, ic = m[i, 3], m[i, 4], m[i, 6], m[i, 7]
                    if j == MANOEUVRE and i != MANOEUVRE:
                        ic += v0var[MANOEUVRE]
                dvx, dvy = ivx - vx, ivy - vy
                b += w * (ib + 0.5 * (dx * dvx + dy * dvy))
                c += w * (ic + 0.5 * (dvx * dvx + dvy * dvy))
        mixed[j, 0] = cj
        if j == STILL:
            mixed[j, 1], mixed[j, 2], mixed[j, 3], mixed[j, 4] = x, y, 0.0, 0.0
            qe[j] = q[j]
            mixed[j, 5], mixed[j, 6], mixed[j, 7] = a + q[j] * dt, 0.0, 0.0
        else:
            dt2 = dt * dt
            qj = q[j]
            if j == MANOEUVRE and dt > 0.0:
                qj = min(qj, (vx * vx + vy * vy + v0var[STEADY] + c) / dt)
            qe[j] = qj
            mixed[j, 1], mixed[j, 2], mixed[j, 3], mixed[j, 4] = x + dt * vx, y + dt * vy, vx, vy
            mixed[j, 5] = a + dt * (2.0 * b + dt * c) + qj * dt2 * dt * (1.0 / 3.0)
            mixed[j, 6] = b + dt * c + 0.5 * qj * dt2
            mixed[j, 7] = c + qj * dt
