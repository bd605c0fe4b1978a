"""The grid point-in-polygon kernel against a brute-force ray-crossing reference."""

from fractions import Fraction

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.geo.geometry import _build, _coarse_codes, _Density, _edges_of, _pack_codes
from geomon.kernels import pip
from tests.strategies import points_for, polygons


def locate_reference(edges, px, py):
    """GEOS's RayCrossingCounter over every edge, in exact rational arithmetic."""
    crossings = 0
    for x1, y1, x2, y2 in edges:
        if x1 < px and x2 < px:
            continue
        if px == x2 and py == y2:
            return pip.LOC_BOUNDARY
        if y1 == py and y2 == py:
            if min(x1, x2) <= px <= max(x1, x2):
                return pip.LOC_BOUNDARY
            continue
        if (y1 > py and y2 <= py) or (y2 > py and y1 <= py):
            f = Fraction
            det = (f(x2) - f(x1)) * (f(py) - f(y2)) - (f(y2) - f(y1)) * (f(px) - f(x2))
            sign = (det > 0) - (det < 0)
            if sign == 0:
                return pip.LOC_BOUNDARY
            if y2 < y1:
                sign = -sign
            if sign > 0:
                crossings += 1
    return pip.LOC_INTERIOR if crossings % 2 else pip.LOC_EXTERIOR


def kernel_locations(geom, x, y, cells_per_edge=8, min_cells=64, shift=1):
    e = _edges_of(np.array([geom], dtype=object))
    g = _build(e.edges, e.prev_edge, e.next_edge, _Density(cells_per_edge, min_cells, 1 << 20))
    out_int = np.empty(x.size, np.bool_)
    out_bnd = np.empty(x.size, np.bool_)
    coarse, ncx = _coarse_codes(g.codes, g.nx, g.ny, shift)
    args = (g.grid, g.nx, g.ny, *g.packed().arrays(), _pack_codes(coarse), ncx, shift)
    pip.locate_points(x, y, *args, pip.LOC_INTERIOR, out_int)
    pip.locate_points(x, y, *args, pip.LOC_BOUNDARY, out_bnd)
    return np.where(out_int, pip.LOC_INTERIOR, np.where(out_bnd, pip.LOC_BOUNDARY, pip.LOC_EXTERIOR)), e.edges


@st.composite
def polygon_and_points(draw):
    geom = draw(polygons())
    x, y = draw(points_for(geom, n_random=40))
    return geom, x, y


@settings(max_examples=150, deadline=None)
@given(polygon_and_points(), st.sampled_from([(8, 64, 1), (1, 1, 0), (512, 1 << 16, 3), (4, 256, 2)]))
def test_grid_kernel_matches_brute_force_reference(case, density):
    geom, x, y = case
    got, edges = kernel_locations(geom, x, y, *density)
    want = np.array([locate_reference(edges, px, py) for px, py in zip(x, y)])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches, first at ({x[bad[0]]!r}, {y[bad[0]]!r}): "
                           f"{got[bad[0]]} != {want[bad[0]]}")


def test_nan_and_outside_box_are_exterior():
    square = shapely.box(0, 0, 1, 1)
    x = np.array([np.nan, 0.5, 2.0, -1.0, np.inf])
    y = np.array([0.5, np.nan, 0.5, 0.5, 0.5])
    got, _ = kernel_locations(square, x, y)
    assert (got == pip.LOC_EXTERIOR).all()


def test_comb_with_long_horizontal_runs():
    # Teeth whose tops lie on one horizontal line right of many cells: the
    # chains of off-cell edges the toggles stand for are long here.
    xs = []
    for k in range(20):
        xs += [(2 * k, 0.0), (2 * k, 5.0), (2 * k + 1, 5.0), (2 * k + 1, 1.0)]
    ring = [(-1.0, -1.0)] + xs + [(40.0, 0.0), (40.0, -1.0)]
    geom = shapely.Polygon(ring)
    assert geom.is_valid
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-2, 41, 3000), np.repeat(np.arange(-1, 41, 0.5), 4)])
    y = np.concatenate([rng.uniform(-2, 6, 3000), np.tile([5.0, 1.0, 0.0, -1.0], 84)])
    for density in [(1, 1, 0), (4, 16, 1), (512, 1 << 16, 3)]:
        got, edges = kernel_locations(geom, x, y, *density)
        want = np.array([locate_reference(edges, px, py) for px, py in zip(x, y)])
        assert (got == want).all(), density
