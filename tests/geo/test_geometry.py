"""geomon's public point-in-polygon API against shapely, boundary points included.

Every expected value comes from shapely (``contains_xy``, ``intersects_xy``,
``STRtree.query``, ``distance``), never from geomon's own output, on the
polygons and boundary-stressing points of :mod:`tests.strategies`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import geomon
from geomon.geo import geometry as geometry
from tests.strategies import points_for, polygons, with_gaps, zone_sets

PREDICATES = {"contains": (geomon.contains_xy, shapely.contains_xy),
              "intersects": (geomon.intersects_xy, shapely.intersects_xy)}


def _source(geom) -> str:
    """Python source that rebuilds ``geom`` bit for bit (WKT output rounds coordinates)."""
    if isinstance(geom, shapely.Polygon) and not geom.is_empty:
        rings = [shapely.get_coordinates(r).tolist() for r in (geom.exterior, *geom.interiors)]
        return f"shapely.Polygon({rings[0]!r}, {rings[1:]!r})"
    if isinstance(geom, shapely.MultiPolygon) and not geom.is_empty:
        return f"shapely.MultiPolygon([{', '.join(_source(p) for p in geom.geoms)}])"
    if geom is None:
        return "None"
    return f"shapely.from_wkb(bytes.fromhex({shapely.to_wkb(geom, hex=True)!r}))"


def _reproducer(call: str, geom, x, y, got, want) -> str:
    """A line to paste into a shell that shows the first disagreement; ``call`` has ``{x}``, ``{y}``."""
    return (f"geom = {_source(geom)}; " + call.format(x=repr(float(x)), y=repr(float(y)))
            + f" -> {got!r}, shapely says {want!r}")


def _assert_same(name, geom, x, y, got, want):
    """``got`` equals shapely's ``want`` in type, shape, dtype and every element."""
    assert type(got) is type(want), f"{name}: type {type(got)} != shapely's {type(want)}"
    got_a, want_a = np.asarray(got), np.asarray(want)
    assert got_a.shape == want_a.shape, f"{name}: shape {got_a.shape} != shapely's {want_a.shape}"
    assert got_a.dtype == want_a.dtype, f"{name}: dtype {got_a.dtype} != shapely's {want_a.dtype}"
    bad = np.flatnonzero((got_a != want_a).ravel())
    if bad.size:
        xb, yb, _ = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), got_a)
        k = bad[0]
        raise AssertionError(f"{name}: {bad.size} of {got_a.size} disagree; first: "
                             + _reproducer(name.split()[0] + "(geom, {x}, {y})", geom, xb.ravel()[k], yb.ravel()[k],
                                           got_a.ravel()[k], want_a.ravel()[k]))


@st.composite
def polygon_and_points(draw, n_random=40):
    geom = draw(polygons())
    x, y = draw(points_for(geom, n_random=n_random))
    return geom, x, y


# --- contains_xy / intersects_xy -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(polygon_and_points())
def test_predicates_match_shapely_on_boundary_stressing_points(case):
    geom, x, y = case
    for name, (fast, reference) in PREDICATES.items():
        _assert_same(f"geomon.{name}_xy", geom, x, y, fast(geom, x, y), reference(geom, x, y))
    # Built on first use, then the same index for the same object.
    assert geometry._CACHE.get(geom) is geometry._CACHE.get(geom)


@st.composite
def input_forms(draw):
    """(geom, x, y) where x, y take every form shapely accepts, gaps included."""
    geom, x, y = draw(polygon_and_points(n_random=10))
    x, y = draw(with_gaps(x, y))
    k = draw(st.integers(0, x.size - 1))
    form = draw(st.sampled_from(["float", "numpy_scalar", "int_scalar", "x_array_y_scalar", "x_scalar_y_array",
                                 "column_by_row", "2d", "list", "int_array", "read_only", "strided", "float32",
                                 "empty"]))
    if form == "float":
        x, y = float(x[k]), float(y[k])
    elif form == "numpy_scalar":
        x, y = x[k], y[k]
    elif form == "int_scalar":
        xi, yi = np.nan_to_num(np.round([x[k], y[k]]), nan=0.0, posinf=0.0, neginf=0.0)
        x, y = int(xi), int(yi)
    elif form == "x_array_y_scalar":
        y = float(y[k])
    elif form == "x_scalar_y_array":
        x = x[k]
    elif form == "column_by_row":
        x, y = x[:7, None], y[None, :5]
    elif form == "2d":
        m = x.size // 2
        x, y = x[:2 * m].reshape(2, m), y[:2 * m].reshape(2, m)
    elif form == "list":
        x, y = x.tolist(), y.tolist()
    elif form == "int_array":
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = np.round(x[ok]).astype(np.int64), np.round(y[ok]).astype(np.int64)
    elif form == "read_only":
        x.setflags(write=False)
        y.setflags(write=False)
    elif form == "strided":
        x, y = x[::2], y[::2]
    elif form == "float32":
        x, y = x.astype(np.float32), y.astype(np.float32)
    else:
        x, y = x[:0], y[:0]
    return form, geom, x, y


@settings(max_examples=150, deadline=None)
@given(input_forms())
def test_predicates_match_shapely_for_every_input_form(case):
    form, geom, x, y = case
    for name, (fast, reference) in PREDICATES.items():
        with np.errstate(invalid="ignore"):
            want = reference(geom, x, y)
        _assert_same(f"geomon.{name}_xy [{form}]", geom, x, y, fast(geom, x, y), want)


@st.composite
def fallback_geometries(draw):
    """Geometries geomon hands to shapely: non-areal, None, empty, collections, arrays."""
    geom = draw(polygons())
    kind = draw(st.sampled_from(["boundary", "exterior_ring", "vertices", "vertex", "centroid", "collection",
                                 "none", "empty_polygon", "empty_multi", "empty_collection", "array"]))
    if kind == "boundary":
        return kind, geom, shapely.boundary(geom)
    if kind == "exterior_ring":
        first = shapely.get_parts(geom)[0]
        return kind, geom, first.exterior
    if kind == "vertices":
        return kind, geom, shapely.MultiPoint(shapely.get_coordinates(geom))
    if kind == "vertex":
        return kind, geom, shapely.Point(shapely.get_coordinates(geom)[0])
    if kind == "centroid":
        return kind, geom, shapely.centroid(geom)
    if kind == "collection":
        return kind, geom, shapely.GeometryCollection([geom, shapely.boundary(geom)])
    if kind == "none":
        return kind, geom, None
    if kind == "empty_polygon":
        return kind, geom, shapely.Polygon()
    if kind == "empty_multi":
        return kind, geom, shapely.MultiPolygon()
    if kind == "empty_collection":
        return kind, geom, shapely.GeometryCollection()
    # Broadcast (3, 1) geometries against (n,) points.
    return kind, geom, np.array([geom, None, shapely.boundary(geom)], dtype=object)[:, None]


@settings(max_examples=100, deadline=None)
@given(fallback_geometries(), st.data())
def test_predicates_match_shapely_on_fallback_geometries(case, data):
    kind, source, geom = case
    x, y = data.draw(points_for(source, n_random=10))
    x, y = data.draw(with_gaps(x, y))
    for name, (fast, reference) in PREDICATES.items():
        _assert_same(f"geomon.{name}_xy [{kind}]", geom if kind != "array" else source, x, y,
                     fast(geom, x, y), reference(geom, x, y))
        k = data.draw(st.integers(0, x.size - 1))
        _assert_same(f"geomon.{name}_xy [{kind}, scalar]", source, x[k], y[k],
                     fast(geom, float(x[k]), float(y[k])), reference(geom, float(x[k]), float(y[k])))


def test_cache_returns_one_index_per_geometry_object():
    a = shapely.box(0, 0, 1, 1)
    b = shapely.box(0, 0, 1, 1)  # equal, but another object
    assert geomon.contains_xy(a, 0.5, 0.5) == shapely.contains_xy(a, 0.5, 0.5)
    assert geometry._CACHE.get(a) is geometry._CACHE.get(a)
    assert geometry._CACHE.get(b) is geometry._CACHE.get(b)
    assert geometry._CACHE.get(a) is not geometry._CACHE.get(b)


# --- ZoneIndex -----------------------------------------------------------------------------


def _strtree_pairs(zones, x, y, predicate):
    """Pairs (point, zone) from shapely's STRtree, sorted by point then zone."""
    tree_predicate = {"intersects": "intersects", "contains": "within"}[predicate]
    points = shapely.points(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    pairs = shapely.STRtree(np.asarray(zones, dtype=object)).query(points, predicate=tree_predicate)
    order = np.lexsort((pairs[1], pairs[0]))
    return pairs[0][order], pairs[1][order]


def _assert_pairs_match(zones, x, y, predicate, got):
    point_index, zone_index = got
    for a in (point_index, zone_index):
        assert isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.integer) and a.ndim == 1, a
    assert point_index.shape == zone_index.shape
    want_point, want_zone = _strtree_pairs(zones, x, y, predicate)
    got_set = set(zip(point_index.tolist(), zone_index.tolist()))
    want_set = set(zip(want_point.tolist(), want_zone.tolist()))
    extra, missing = sorted(got_set - want_set), sorted(want_set - got_set)
    if extra or missing:
        p, z = (extra or missing)[0]
        raise AssertionError(
            f"query_xy(predicate={predicate!r}): {len(extra)} pairs not in STRtree, {len(missing)} missing; "
            f"first: zone = {_source(zones[z])}; point ({float(x[p])!r}, {float(y[p])!r}) "
            f"{'extra' if extra else 'missing'}")
    assert len(point_index) == len(got_set), "duplicate pairs"
    order = np.lexsort((zone_index, point_index))
    assert (order == np.arange(len(order))).all(), "pairs are not sorted by point, then zone"


@st.composite
def zones_and_points(draw):
    zones = draw(zone_sets())
    present = [z for z in zones if z is not None and not z.is_empty]
    x, y = draw(points_for(shapely.GeometryCollection(present), n_random=40))
    x, y = draw(with_gaps(x, y))
    return zones, x, y


@settings(max_examples=150, deadline=None)
@given(zones_and_points())
def test_zone_index_matches_strtree(case):
    zones, x, y = case
    index = geomon.ZoneIndex(zones)
    assert len(index) == len(zones)
    for predicate in ("intersects", "contains"):
        with np.errstate(invalid="ignore"):
            _assert_pairs_match(zones, x, y, predicate, index.query_xy(x, y, predicate=predicate))


def test_zone_index_shared_edge_intersects_both_contained_by_neither():
    zones = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    index = geomon.ZoneIndex(zones)
    x = np.array([1.0, 1.0, 1.0, 0.5, 1.5])
    y = np.array([0.5, 0.0, 1.0, 0.5, 0.5])
    for predicate in ("intersects", "contains"):
        _assert_pairs_match(zones, x, y, predicate, index.query_xy(x, y, predicate=predicate))
    point_index, zone_index = index.query_xy(x[:1], y[:1], predicate="intersects")
    assert sorted(zone_index.tolist()) == [0, 1]
    assert index.query_xy(x[:1], y[:1], predicate="contains")[0].size == 0


def test_zone_index_nested_overlapping_none_and_empty_zones():
    outer = shapely.box(0, 0, 10, 10)
    ring = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (8, 2), (8, 8), (2, 8)]])
    zones = [None, outer, shapely.Polygon(), ring, shapely.box(2, 2, 8, 8), shapely.box(5, 5, 15, 15),
             shapely.MultiPolygon(), outer]
    index = geomon.ZoneIndex(zones)
    grid = np.arange(-1.0, 16.5, 0.5)
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    for predicate in ("intersects", "contains"):
        _assert_pairs_match(zones, x, y, predicate, index.query_xy(x, y, predicate=predicate))


@pytest.mark.parametrize("zones", [[], [None], [shapely.Polygon(), None, shapely.MultiPolygon()]],
                         ids=["no-zones", "none", "only-empty"])
def test_zone_index_without_live_zones_matches_strtree(zones):
    index = geomon.ZoneIndex(zones)
    x = np.array([0.0, 1.0, np.nan])
    y = np.array([0.0, 1.0, 2.0])
    for predicate in ("intersects", "contains"):
        _assert_pairs_match(zones, x, y, predicate, index.query_xy(x, y, predicate=predicate))


def test_zone_index_without_points_matches_strtree():
    zones = [shapely.box(0, 0, 1, 1), None, shapely.box(0.5, 0.5, 2, 2)]
    index = geomon.ZoneIndex(zones)
    x = np.zeros(0)
    for predicate in ("intersects", "contains"):
        _assert_pairs_match(zones, x, x, predicate, index.query_xy(x, x, predicate=predicate))


def test_zone_index_rejects_unknown_predicate_and_non_areal_zones():
    index = geomon.ZoneIndex([shapely.box(0, 0, 1, 1)])
    for predicate in ("within", "covers", "Intersects", None):
        with pytest.raises(ValueError):
            index.query_xy(np.array([0.5]), np.array([0.5]), predicate=predicate)
    with pytest.raises(TypeError):
        geomon.ZoneIndex([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])


# --- signed_distance_xy -------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(polygon_and_points(), st.sampled_from([1e-3, 0.05, 0.5, 5.0, math.inf]), st.data())
def test_signed_distance_matches_shapely(case, cap_fraction, data):
    geom, x, y = case
    x, y = data.draw(with_gaps(x, y))
    xmin, ymin, xmax, ymax = geom.bounds
    cap = cap_fraction * max(xmax - xmin, ymax - ymin)
    got = geomon.signed_distance_xy(geom, x, y, cap)
    call = f"geomon.signed_distance_xy(geom, {{x}}, {{y}}, cap={cap!r})"
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == x.shape

    nan = np.isnan(x) | np.isnan(y)
    assert np.isnan(got[nan]).all(), "NaN in must give NaN out"
    assert not np.isnan(got[~nan]).any(), "NaN out for a non-NaN point"
    inside = shapely.contains_xy(geom, x, y)
    touches = shapely.intersects_xy(geom, x, y)
    on_boundary = touches & ~inside
    outside = ~touches & ~nan
    for mask, ok, what in ((inside, got > 0, "> 0 inside"), (on_boundary, got == 0, "0 on the boundary"),
                           (outside, got < 0, "< 0 outside")):
        bad = np.flatnonzero(mask & ~ok)
        if bad.size:
            k = bad[0]
            raise AssertionError(f"signed distance not {what} ({bad.size} points); first: "
                                 + _reproducer(call, geom, x[k], y[k], got[k],
                                               f"contains={inside[k]}, intersects={touches[k]}"))

    with np.errstate(invalid="ignore", over="ignore"):
        distance = shapely.distance(shapely.boundary(geom), shapely.points(x, y))
    want = np.minimum(cap, distance)
    finite = np.isfinite(x) & np.isfinite(y)
    scale = max(1.0, np.abs(geom.bounds).max(), np.abs(x[finite]).max(initial=0), np.abs(y[finite]).max(initial=0))
    # Infinite distances (cap = inf, infinite points) are equal, not inf - inf = NaN apart.
    with np.errstate(invalid="ignore"):
        err = np.where(np.abs(got[~nan]) == want[~nan], 0.0, np.abs(np.abs(got[~nan]) - want[~nan]))
    bad = np.flatnonzero(~(err <= 1e-9 * scale))
    if bad.size:
        k = np.flatnonzero(~nan)[bad[0]]
        raise AssertionError(f"|signed distance| off by {err[bad[0]]!r} (> 1e-9 * {scale!r}); first: "
                             + _reproducer(call, geom, x[k], y[k], got[k],
                                           f"min(cap, distance to boundary) = {want[k]!r}"))


@settings(max_examples=30, deadline=None)
@given(polygon_and_points(n_random=5))
def test_signed_distance_input_forms_follow_the_predicates(case):
    geom, x, y = case
    cap = 1.0
    x2, y2 = x[: 2 * (x.size // 2)].reshape(2, -1), y[: 2 * (y.size // 2)].reshape(2, -1)
    x2.setflags(write=False)
    y2.setflags(write=False)
    for xs, ys in ((x2, y2), (x2.tolist(), y2.tolist()), (x2, float(y[0])), (x2[:, :1], y2[:1, :])):
        got = geomon.signed_distance_xy(geom, xs, ys, cap)
        inside = shapely.contains_xy(geom, xs, ys)
        touches = shapely.intersects_xy(geom, xs, ys)
        assert got.shape == inside.shape
        assert (np.sign(got) == np.where(inside, 1.0, np.where(touches, 0.0, -1.0))).all()
    scalar = geomon.signed_distance_xy(geom, float(x[0]), float(y[0]), cap)
    assert np.ndim(scalar) == 0
    assert np.sign(scalar) == (1.0 if shapely.contains_xy(geom, x[0], y[0])
                               else 0.0 if shapely.intersects_xy(geom, x[0], y[0]) else -1.0)


def test_signed_distance_of_empty_polygon_is_minus_cap():
    # shapely: an empty polygon intersects nothing, and its boundary is infinitely far.
    x = np.array([0.0, np.nan, 1e9])
    y = np.array([0.0, 0.0, -5.0])
    for empty in (shapely.Polygon(), shapely.MultiPolygon()):
        assert not shapely.intersects_xy(empty, x, y).any()
        got = geomon.signed_distance_xy(empty, x, y, 2.5)
        np.testing.assert_array_equal(got, [-2.5, np.nan, -2.5])


@pytest.mark.parametrize("cap", [0.0, -1.0, -math.inf, math.nan])
def test_signed_distance_rejects_non_positive_cap(cap):
    with pytest.raises(ValueError):
        geomon.signed_distance_xy(shapely.box(0, 0, 1, 1), [0.5], [0.5], cap)


@pytest.mark.parametrize("geom", [None, shapely.Point(0, 0), shapely.LineString([(0, 0), (1, 1)]),
                                  shapely.box(0, 0, 1, 1).exterior, shapely.MultiPoint([(0, 0), (1, 1)]),
                                  shapely.GeometryCollection([shapely.box(0, 0, 1, 1)]),
                                  np.array([shapely.box(0, 0, 1, 1)], dtype=object)],
                         ids=["none", "point", "line", "ring", "multipoint", "collection", "array"])
def test_signed_distance_rejects_non_areal_geometries(geom):
    with pytest.raises(TypeError):
        geomon.signed_distance_xy(geom, [0.5], [0.5], 1.0)
