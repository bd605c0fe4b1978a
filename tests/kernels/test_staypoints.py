"""geomon.kernels.staypoints: the sliding method against its literal reading, and its distances against pyproj.Geod.

Planar tracks on an integer grid make distances exactly equal to the
threshold common, and the kernel must then agree with the reference fix for
fix; geographic tracks check the ellipsoidal chord as a ground distance.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels import staypoints as sp
from tests.staypoints_reference import GEOD, PLACES, mean_position, sliding

MEAN_RADIUS_M = sp.WGS84_A_M * (1.0 - sp.WGS84_F / 3.0)


def ground_m(lon1, lat1, lon2, lat2, a_m=sp.WGS84_A_M, f=sp.WGS84_F):
    """The distance the kernel acts on: ``2 R asin(chord / 2R)`` between ECEF points."""
    x1, y1, z1 = sp.ecef_m(np.atleast_1d(np.asarray(lon1, float)), np.atleast_1d(np.asarray(lat1, float)), a_m, f)
    x2, y2, z2 = sp.ecef_m(np.atleast_1d(np.asarray(lon2, float)), np.atleast_1d(np.asarray(lat2, float)), a_m, f)
    r_m = a_m * (1.0 - f / 3.0)
    chord = np.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2 + (z1 - z2) ** 2)
    return 2.0 * r_m * np.arcsin(np.minimum(chord / (2.0 * r_m), 1.0))


# --- the method on exact planar tracks -----------------------------------------------


@st.composite
def grid_tracks(draw):
    """Ragged planar tracks on an integer grid: (offsets, t_ms, x, y); empty and one-fix tracks included."""
    lengths = draw(st.lists(st.integers(0, 30), min_size=1, max_size=6))
    t, x, y = [], [], []
    for n in lengths:
        now = draw(st.integers(0, 5))
        px, py = draw(st.integers(-5, 5)), draw(st.integers(-5, 5))
        for _ in range(n):
            now += draw(st.sampled_from([0, 1, 1, 2, 3, 4, 6]))
            if draw(st.booleans()):  # mostly small moves, sometimes a jump: 3-4-5 and 5-0 hit a threshold of 5
                px += draw(st.integers(-2, 2))
                py += draw(st.integers(-2, 2))
            else:
                dx, dy = draw(st.sampled_from([(3, 4), (-4, 3), (5, 0), (0, -5), (6, 8), (1, 1), (0, 0)]))
                px, py = px + dx, py + dy
            t.append(now)
            x.append(float(px))
            y.append(float(py))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return offsets, np.array(t, np.int64), np.array(x), np.array(y)


def reference_tracks(offsets, t_ms, x, y, dist, time_ms, gap_ms, include_last):
    """Reference stays of every track, as ``(track, first, n_fixes, finished_ms, x, y)`` rows."""
    rows = []
    for s in range(offsets.size - 1):
        lo, hi = int(offsets[s]), int(offsets[s + 1])
        tx, ty, tt = x[lo:hi].tolist(), y[lo:hi].tolist(), t_ms[lo:hi].tolist()

        def outside(i, j):
            return (tx[j] - tx[i]) ** 2 + (ty[j] - ty[i]) ** 2 >= dist * dist  # exact on the integer grid

        for first, stop, finished in sliding(tt, outside, time_ms, gap_ms, include_last):
            cx, cy = mean_position(tx[first:stop], ty[first:stop], geographic=False)
            rows.append((s, lo + first, stop - first, finished, cx, cy))
    return rows


def kernel_rows(result):
    stay_offsets, first, n_fixes, finished_ms, cx, cy = result
    track = np.repeat(np.arange(stay_offsets.size - 1), np.diff(stay_offsets))
    return list(zip(track.tolist(), first.tolist(), n_fixes.tolist(), finished_ms.tolist(), cx.tolist(), cy.tolist()))


def assert_same_stays(got, expected, tol):
    assert [r[:4] for r in got] == [r[:4] for r in expected]
    for g, e in zip(got, expected):
        assert abs(g[4] - e[4]) <= tol and abs(g[5] - e[5]) <= tol, (g, e)


@settings(max_examples=300, deadline=None)
@given(tracks=grid_tracks(), dist=st.sampled_from([1.0, 2.0, 5.0, 10.0]), time_ms=st.integers(1, 12),
       gap_ms=st.sampled_from([None, 2, 3, 4, 6]), include_last=st.booleans(), two_pass=st.booleans())
def test_kernel_equals_the_literal_reading_on_exact_tracks(tracks, dist, time_ms, gap_ms, include_last, two_pass):
    offsets, t_ms, x, y = tracks
    result = sp.find_staypoints(offsets, t_ms, x, y, dist, time_ms, sp.NO_GAP_MS if gap_ms is None else gap_ms,
                                include_last, geographic=False, two_pass=two_pass)
    expected = reference_tracks(offsets, t_ms, x, y, dist, time_ms, gap_ms, include_last)
    assert_same_stays(kernel_rows(result), expected, 1e-12)
    assert result[0][0] == 0 and np.all(np.diff(result[0]) >= 0)


def test_rules_on_hand_made_tracks():
    def run(t, x, **kw):
        kw = {"gap_threshold_ms": sp.NO_GAP_MS, "include_last": False, **kw}
        res = sp.find_staypoints([0, len(t)], np.array(t), np.array(x, float), np.zeros(len(t)), 10.0, 60,
                                 kw["gap_threshold_ms"], kw["include_last"], geographic=False)
        return [r[1:4] for r in kernel_rows(res)]

    # exactly the threshold distance is outside; exactly the time threshold is long enough
    assert run([0, 30, 60, 70], [0, 9.999, 10, 30]) == [(0, 2, 60)]
    # a stay too short leaves its closing fix as the anchor (not the fix after the old anchor)
    assert run([0, 10, 20, 30, 100], [0, 5, 10, 12, 40]) == [(2, 2, 100)]
    # a step longer than the gap threshold discards the open stay; exactly the threshold is no gap
    assert run([0, 50, 100, 110], [0, 0, 0, 50], gap_threshold_ms=49) == []
    assert run([0, 50, 100, 110], [0, 0, 0, 50], gap_threshold_ms=50) == [(0, 3, 110)]
    # the last open stay only when asked, members up to the last fix, finished at its time
    assert run([0, 30, 60], [0, 1, 2]) == []
    assert run([0, 30, 60], [0, 1, 2], include_last=True) == [(0, 3, 60)]
    assert run([0, 30, 59], [0, 1, 2], include_last=True) == []
    # ... and never after a gap at the last fix or a stay closed by it
    assert run([0, 30, 120], [0, 1, 2], include_last=True, gap_threshold_ms=60) == []
    assert run([0, 60, 70], [0, 1, 20], include_last=True) == [(0, 2, 70)]


def test_one_pass_and_two_passes_agree_when_room_is_tight():
    rng = np.random.default_rng(4)
    n = 20_000
    t = np.cumsum(rng.integers(1, 3, n)).astype(np.int64)
    x = np.cumsum(rng.normal(0, 1, n))
    offsets = np.array([0, 5, 5, 12_000, n])
    one = sp.find_staypoints(offsets, t, x, np.zeros(n), 1.5, 2, 3, True, geographic=False, two_pass=False)
    two = sp.find_staypoints(offsets, t, x, np.zeros(n), 1.5, 2, 3, True, geographic=False, two_pass=True)
    auto = sp.find_staypoints(offsets, t, x, np.zeros(n), 1.5, 2, 3, True, geographic=False)
    assert sp.room_bound(offsets, t, 2).sum() > n // 8  # so the default counts first
    for a, b, c in zip(one, two, auto):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_room_bound_holds():
    offsets = np.array([0, 0, 1, 4, 10])
    t = np.array([5, 0, 100, 100, 0, 10, 20, 30, 40, 1000], np.int64)
    np.testing.assert_array_equal(sp.room_bound(offsets, t, 10), [0, 0, 2, 5])


def test_read_only_arrays_and_no_tracks():
    t = np.arange(4, dtype=np.int64) * 60_000
    lon = np.array([116.0, 116.0, 116.0, 116.1])
    lat = np.full(4, 40.0)
    arrays = [np.array([0, 4]), t, lon, lat]
    for a in arrays:
        a.setflags(write=False)
    res = sp.find_staypoints(*arrays, 100.0, 60_000)
    assert res[0].tolist() == [0, 1] and res[2].tolist() == [3]
    empty = sp.find_staypoints(np.array([0]), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), 100.0, 1)
    assert empty[0].tolist() == [0] and all(a.size == 0 for a in empty[1:])


def test_bad_arguments_are_refused():
    t, z = np.zeros(3, np.int64), np.zeros(3)
    with pytest.raises(ValueError, match="CSR offsets"):
        sp.find_staypoints([0, 2], t, z, z, 1.0, 1)
    with pytest.raises(ValueError, match="decrease"):
        sp.find_staypoints([0, 2, 1, 3], t, z, z, 1.0, 1)
    with pytest.raises(ValueError, match="flattening"):
        sp.find_staypoints([0, 3], t, z, z, 1.0, 1, f=0.1)
    with pytest.raises(ValueError, match="positive"):
        sp.find_staypoints([0, 3], t, z, z, 1.0, 0)


def test_docstring_examples():
    assert doctest.testmod(sp).failed == 0


# --- the ground distance --------------------------------------------------------------


def test_ecef_matches_the_closed_form():
    rng = np.random.default_rng(0)
    lon = np.concatenate([rng.uniform(-180, 180, 100_000), [-180.0, 180.0, 0.0, 90.0]])
    lat = np.concatenate([rng.uniform(-90, 90, 100_000), [90.0, -90.0, 0.0, 45.0]])
    e2 = sp.WGS84_F * (2 - sp.WGS84_F)
    phi, lam = np.radians(lat), np.radians(lon)
    n_m = sp.WGS84_A_M / np.sqrt(1 - e2 * np.sin(phi) ** 2)
    expected = (n_m * np.cos(phi) * np.cos(lam), n_m * np.cos(phi) * np.sin(lam), n_m * (1 - e2) * np.sin(phi))
    for got, want in zip(sp.ecef_m(lon, lat), expected):
        assert np.max(np.abs(got - want)) < 2e-8  # a few units in the last place of 6.4e6 m


@settings(max_examples=300, deadline=None)
@given(place=PLACES, azimuth=st.floats(-180, 180), dist_m=st.floats(0.5, 100_000))
def test_ground_distance_is_within_1e_6_of_the_geodesic_in_china(place, azimuth, dist_m):
    lon2, lat2, _ = GEOD.fwd(place[0], place[1], azimuth, dist_m)
    geodesic = GEOD.inv(place[0], place[1], lon2, lat2)[2]
    assert abs(ground_m(*place, lon2, lat2)[0] / geodesic - 1.0) < 1e-6


def test_ground_distance_anywhere_up_to_3000_km():
    rng = np.random.default_rng(7)
    n = 50_000
    lon, lat = rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-0.999, 0.999, n)))
    for top, bound in ((100e3, 1e-6), (1_000e3, 2e-5), (3_000e3, 2e-4)):
        s = rng.uniform(1.0, top, n)
        lon2, lat2, _ = GEOD.fwd(lon, lat, rng.uniform(-180, 180, n), s)
        geodesic = GEOD.inv(lon, lat, lon2, lat2)[2]
        assert np.max(np.abs(ground_m(lon, lat, lon2, lat2) / geodesic - 1.0)) < bound, top


@settings(max_examples=100, deadline=None)
@given(place=PLACES, azimuth=st.floats(-180, 180), dist=st.sampled_from([20.0, 50.0, 100.0, 500.0, 5_000.0]))
def test_threshold_is_a_ground_distance(place, azimuth, dist):
    # a fix 2 ppm inside the threshold stays in; 2 ppm beyond it is outside
    for factor, expected in ((1 - 2e-6, 0), (1 + 2e-6, 1)):
        lon2, lat2, _ = GEOD.fwd(place[0], place[1], azimuth, dist * factor)
        res = sp.find_staypoints([0, 2], np.array([0, 1000]), np.array([place[0], lon2]),
                                 np.array([place[1], lat2]), dist, 1000)
        assert res[0][-1] == expected, factor


def test_sphere_gives_great_circle_distances():
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(70, 140, 10_000), rng.uniform(15, 55, 10_000)
    lon2, lat2 = lon + rng.normal(0, 0.01, lon.size), lat + rng.normal(0, 0.01, lat.size)
    p1, p2, dl = np.radians(lat), np.radians(lat2), np.radians(lon2 - lon)
    hav = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    great_circle = 2 * 6_371_000.0 * np.arcsin(np.sqrt(hav))
    np.testing.assert_allclose(ground_m(lon, lat, lon2, lat2, 6_371_000.0, 0.0), great_circle, rtol=1e-9)


def test_centroid_across_the_antimeridian():
    lon = np.array([179.9999, -179.9999, 179.9999, -179.9998, 170.0])
    res = sp.find_staypoints([0, 5], np.arange(5) * 60_000, lon, np.zeros(5), 100.0, 60_000)
    assert res[2].tolist() == [4]
    expected = mean_position(lon[:4].tolist(), [0.0] * 4, geographic=True)[0]
    assert abs(res[4][0] - expected) < 1e-9 and abs(abs(res[4][0]) - 180.0) < 1e-4
