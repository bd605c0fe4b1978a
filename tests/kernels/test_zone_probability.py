"""Probability of being inside a zone against the Gaussian tail and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import geomon
from geomon.kernels.zone_probability import pair_inside_probability


def _probabilities(geom, x, y, var_x, var_y, cov_xy, n_sigma=10.0):
    index = geomon.ZoneIndex([geom])
    n = len(x)
    pi = np.arange(n, dtype=np.int64)
    zi = np.zeros(n, dtype=np.int64)
    p, d, s = (np.empty(n) for _ in range(3))
    pair_inside_probability(np.asarray(x, float), np.asarray(y, float), np.asarray(var_x, float),
                            np.asarray(var_y, float), np.asarray(cov_xy, float), pi, zi,
                            index._zone_grid, index._zone_dims, index._zone_cbase, *index._cells.arrays(),
                            n_sigma, 0.0, p, d, s)
    return p, d, s


def _phi(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@settings(max_examples=200, deadline=None)
@given(st.floats(-30, 30).filter(lambda v: v == 0 or abs(v) > 1e-6), st.floats(0.5, 20), st.floats(0.5, 20),
       st.floats(-0.9, 0.9))
def test_straight_boundary_is_the_gaussian_tail(x0, sx, sy, rho):
    # Near the middle of the left side of a big square, the boundary is the line x = 0.
    box = shapely.box(0, 0, 10_000, 10_000)
    p, d, s = _probabilities(box, [x0], [5_000.0], [sx * sx], [sy * sy], [rho * sx * sy])
    if x0 == 0:
        assert p[0] == 0.5
        return
    cov = np.array([[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]])
    sigma_max = math.sqrt(np.linalg.eigvalsh(cov).max())
    if abs(x0) >= 10 * sigma_max * (1 - 1e-9):
        assert p[0] == (1.0 if x0 > 0 else 0.0)  # beyond the search cap: certain
        return
    assert math.isclose(s[0], sx, rel_tol=1e-9)
    assert math.isclose(d[0], x0, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(p[0], _phi(x0 / sx), rel_tol=1e-9, abs_tol=1e-12)


def test_far_from_the_boundary_is_certain():
    box = shapely.box(0, 0, 1000, 1000)
    p, _, _ = _probabilities(box, [500.0, -500.0, np.nan], [500.0, 500.0, 500.0], [4.0] * 3, [4.0] * 3, [0.0] * 3)
    assert p[0] == 1.0 and p[1] == 0.0 and np.isnan(p[2])


@settings(max_examples=20, deadline=None)
@given(st.floats(60, 140), st.floats(2, 8), st.integers(0, 2**31))
def test_circle_matches_monte_carlo(r0, sigma, seed):
    circle = shapely.Point(0, 0).buffer(100, 256)
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, sigma, (40_000, 2)) + np.array([r0, 0.0])
    expected = shapely.contains_xy(circle, samples[:, 0], samples[:, 1]).mean()
    p, _, _ = _probabilities(circle, [r0], [0.0], [sigma**2], [sigma**2], [0.0])
    # Tangent-line approximation plus Monte Carlo error.
    assert abs(p[0] - expected) < 0.03
