"""Robust orientation predicate, the one geometric decision everything else rests on.

``orientation_index(p1, p2, q)`` returns +1 if q lies to the left of the directed
line p1 -> p2, -1 to the right, and 0 if the three points are exactly collinear.
A floating-point determinant with a forward error bound answers almost every
call; when the bound cannot decide, the determinant is evaluated exactly as a
sum of error-free products and its sign read from an exactly rounded sum.

Notes
-----
The filter is GEOS's ``CGAlgorithmsDD::orientationIndexFilter`` (after
Shewchuk's orient2d filter), so decisions agree with shapely's on every input
the filter decides. The exact stage uses Dekker's TwoProduct and Knuth's TwoSum
(Shewchuk, "Adaptive Precision Floating-Point Arithmetic and Fast Robust
Geometric Predicates", 1997, sections 2.5-2.6) and the partials summation of
Shewchuk's msum (the algorithm behind Python's ``math.fsum``), whose result is
the exact sum correctly rounded, so its sign is the sign of the exact sum.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

_DP_SAFE_EPSILON = 1e-15
_SPLITTER = 134217729.0  # 2**27 + 1, Dekker's split constant for float64


@jit
def _sign(d):
    if d > 0.0:
        return 1
    if d < 0.0:
        return -1
    return 0


@jit
def _two_sum(a, b):
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


@jit
def _split(a):
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


@jit
def _two_product(a, b):
    p = a * b
    ahi, alo = _split(a)
    bhi, blo = _split(b)
    err = alo * blo - (((p - ahi * bhi) - alo * bhi) - ahi * blo)
    return p, err


@jit
def _exact_sum_sign(terms):
    """Sign of the exact sum of ``terms`` (Shewchuk's msum partials)."""
    partials = np.empty(terms.size + 1)
    n = 0
    for k in range(terms.size):
        x = terms[k]
        m = 0
        for i in range(n):
            y = partials[i]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[m] = lo
                m += 1
            x = hi
        partials[m] = x
        n = m + 1
    # The partials are non-overlapping and increasing in magnitude: the last
    # non-zero one carries the sign of the exact sum.
    for i in range(n - 1, -1, -1):
        if partials[i] > 0.0:
            return 1
        if partials[i] < 0.0:
            return -1
    return 0


@jit
def _orientation_exact(p1x, p1y, p2x, p2y, qx, qy):
    # det = dx1 * dy2 - dy1 * dx2 with dx1 = p2 - p1, dx2 = q - p2, each
    # difference held exactly as a (hi, lo) pair.
    a1, a0 = _two_sum(p2x, -p1x)
    c1, c0 = _two_sum(p2y, -p1y)
    d1, d0 = _two_sum(qx, -p2x)
    b1, b0 = _two_sum(qy, -p2y)
    terms = np.empty(16)
    k = 0
    for u, v, sgn in (
        (a1, b1, 1.0), (a1, b0, 1.0), (a0, b1, 1.0), (a0, b0, 1.0),
        (c1, d1, -1.0), (c1, d0, -1.0), (c0, d1, -1.0), (c0, d0, -1.0),
    ):
        p, e = _two_product(u, v)
        terms[k] = sgn * p
        terms[k + 1] = sgn * e
        k += 2
    return _exact_sum_sign(terms)


@jit
def orientation_index(p1x, p1y, p2x, p2y, qx, qy):
    """Exact sign of the orientation of q relative to the directed segment p1 -> p2.

    Parameters
    ----------
    p1x, p1y, p2x, p2y : float
        Segment end points (any planar unit).
    qx, qy : float
        Query point.

    Returns
    -------
    int
        +1 left (counter-clockwise), -1 right, 0 exactly collinear.
    """
    detleft = (p1x - qx) * (p2y - qy)
    detright = (p1y - qy) * (p2x - qx)
    det = detleft - detright
    if detleft > 0.0:
        if detright <= 0.0:
            return _sign(det)
        detsum = detleft + detright
    elif detleft < 0.0:
        if detright >= 0.0:
            return _sign(det)
        detsum = -detleft - detright
    else:
        return _sign(det)
    errbound = _DP_SAFE_EPSILON * detsum
    if det >= errbound or -det >= errbound:
        return _sign(det)
    return _orientation_exact(p1x, p1y, p2x, p2y, qx, qy)
