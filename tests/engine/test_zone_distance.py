"""Each fix's distance to its subject's zone on the kernel (geomon.engine.zone_distance) against shapely."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomon.engine.zone_distance import SubjectZoneDistance, ZonesWithin

DISC = shapely.Point(1000.0, -500.0).buffer(60.0, 64)
RING = shapely.Point(0.0, 0.0).buffer(300.0, 32).difference(shapely.Point(0.0, 0.0).buffer(100.0, 32))
PAIR = shapely.MultiPolygon([shapely.box(0, 0, 50, 50), shapely.box(5000, 5000, 5050, 5080)])
ZONES = [DISC, None, RING, PAIR, shapely.Polygon()]


def _reference(code, x, y):
    geoms = np.array(ZONES, dtype=object)[code]
    out = np.full(code.size, np.nan)
    for i, (g, a, b) in enumerate(zip(geoms, x, y)):
        if g is not None and not g.is_empty and np.isfinite(a) and np.isfinite(b):
            out[i] = shapely.distance(g, shapely.Point(a, b))
    return out


coords = st.floats(-20_000.0, 20_000.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(ZONES) - 1), coords, coords), max_size=40))
@example([])                                                                        # no fix
@example([(0, 1060.0, -500.0), (0, 1000.0, -500.0), (0, 1000.0, 1e7)])            # on the edge, centre, very far
@example([(2, 0.0, 0.0), (2, 100.0, 0.0), (2, 200.0, 0.0), (2, 300.0, 0.0)])        # the hole, its edge, inside
@example([(3, 0.0, 0.0), (3, 25.0, 60.0), (3, 5050.0, 5080.0), (3, 2500.0, 2500.0)])  # vertices, between parts
@example([(1, 5.0, 5.0), (4, 5.0, 5.0)])                                            # no zone, an empty zone
def test_distance_matches_shapely(fixes):
    zd = SubjectZoneDistance(ZONES)
    code = np.array([f[0] for f in fixes], np.int64)
    x = np.array([f[1] for f in fixes], float)
    y = np.array([f[2] for f in fixes], float)
    got = zd.distance(code, x, y)
    want = _reference(code, x, y)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert got[ok] == pytest.approx(want[ok], abs=1e-6, rel=1e-9)


def test_a_fix_without_a_position_has_no_distance():
    zd = SubjectZoneDistance(ZONES)
    assert np.isnan(zd.distance(np.array([0, 2]), np.array([np.nan, 5.0]), np.array([0.0, np.nan]))).all()


def test_no_zone_at_all():
    zd = SubjectZoneDistance([None, None])
    assert np.isnan(zd.distance(np.array([0, 1]), np.zeros(2), np.zeros(2))).all()


PLACES = [DISC, RING, PAIR, shapely.box(-40.0, -40.0, -20.0, 400.0)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(-600.0, 1200.0), st.floats(-700.0, 700.0), st.sampled_from([0.0, 10.0, 50.0])),
                max_size=40))
@example([(1110.0, -500.0, 50.0), (1110.0001, -500.0, 50.0), (1000.0, -500.0, 0.0)])   # at the radius, just past it
@example([(0.0, 0.0, 10.0), (200.0, 0.0, 0.0), (-30.0, 0.0, 10.0), (25.0, 60.0, 10.0)])   # hole, ring, box, vertex
def test_zones_within_match_shapely_dwithin(points):
    zw = ZonesWithin(PLACES, reach_m=50.0)
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    r = np.array([p[2] for p in points], float)
    fi, zi, dist = zw.within(x, y, r)
    tree = shapely.STRtree(np.array(PLACES, dtype=object))
    want_f, want_z = tree.query(shapely.points(x, y), predicate="dwithin", distance=r) if points else ([], [])
    want = sorted(zip(np.asarray(want_f).tolist(), np.asarray(want_z).tolist()))
    # Exactly at the radius the kernel's distance and GEOS's may round apart: compare away from it.
    exact = shapely.distance(shapely.points(x[fi], y[fi]), np.array(PLACES, dtype=object)[zi]) if fi.size else []
    assert dist == pytest.approx(np.asarray(exact, float), abs=1e-6)
    got = sorted(zip(fi.tolist(), zi.tolist()))
    edge = {(f, z) for f in range(len(points)) for z in range(len(PLACES))
            if abs(shapely.distance(PLACES[z], shapely.Point(x[f], y[f])) - r[f]) < 1e-6}
    assert set(got) - edge == set(want) - edge
    assert list(fi) == sorted(fi)


def test_no_place_within_reach_of_nothing():
    zw = ZonesWithin([], reach_m=50.0)
    fi, zi, dist = zw.within(np.array([0.0]), np.array([0.0]), np.array([50.0]))
    assert fi.size == zi.size == dist.size == 0
