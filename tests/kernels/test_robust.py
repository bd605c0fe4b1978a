"""orientation_index against exact rational arithmetic."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels.robust import orientation_index


def orientation_reference(p1x, p1y, p2x, p2y, qx, qy):
    f = Fraction
    det = (f(p2x) - f(p1x)) * (f(qy) - f(p2y)) - (f(p2y) - f(p1y)) * (f(qx) - f(p2x))
    return (det > 0) - (det < 0)


# Exact unless products underflow (coordinate differences below ~1e-150),
# which no planar CRS produces; GEOS returns 0 there too.
finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False).filter(lambda v: v == 0 or abs(v) > 1e-60)


@settings(max_examples=400, deadline=None)
@given(finite, finite, finite, finite, finite, finite)
def test_matches_exact_arithmetic_on_random_points(p1x, p1y, p2x, p2y, qx, qy):
    assert orientation_index(p1x, p1y, p2x, p2y, qx, qy) == orientation_reference(p1x, p1y, p2x, p2y, qx, qy)


@settings(max_examples=400, deadline=None)
@given(finite, finite, finite, finite, st.floats(0, 1), st.integers(-3, 3))
def test_matches_exact_arithmetic_near_the_line(p1x, p1y, p2x, p2y, t, ulps):
    # Points on the segment up to rounding, nudged by a few ulps: where a plain
    # float determinant gives the wrong sign.
    qx = p1x + t * (p2x - p1x)
    qy = p1y + t * (p2y - p1y)
    if abs(qy) < 1e-60:
        qy = ulps * 1e-12  # ulps of zero underflow the products; see ``finite``
    else:
        for _ in range(abs(ulps)):
            qy = float(np.nextafter(qy, np.inf if ulps > 0 else -np.inf))
    assert orientation_index(p1x, p1y, p2x, p2y, qx, qy) == orientation_reference(p1x, p1y, p2x, p2y, qx, qy)


def test_known_collinear_and_turns():
    assert orientation_index(0.0, 0.0, 1.0, 1.0, 2.0, 2.0) == 0
    assert orientation_index(0.0, 0.0, 1.0, 0.0, 0.5, 1.0) == 1
    assert orientation_index(0.0, 0.0, 1.0, 0.0, 0.5, -1.0) == -1
    # 0.1 + 0.2 != 0.3 in binary: not collinear although it looks it.
    assert orientation_index(0.0, 0.0, 0.1, 0.2, 0.3, 0.6) == orientation_reference(0.0, 0.0, 0.1, 0.2, 0.3, 0.6)
