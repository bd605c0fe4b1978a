"""Tests of geomon.kernels.datum against published pairs, a plain-Python reference and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pyproj import Geod

from geomon.kernels.datum import (
    INVERSE_TOL_DEG,
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")

# Well inside the box where the offsets apply (lon 72.004-137.8347, lat
# 0.8293-55.8271), with a margin larger than the offsets themselves (< 0.01 deg).
CHINA_LON = st.floats(73.5, 135.0)
CHINA_LAT = st.floats(3.9, 53.5)


def _points(lon_strategy, lat_strategy, max_size=64):
    return st.integers(1, max_size).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=lon_strategy),
            arrays(np.float64, n, elements=lat_strategy),
        )
    )


def _distance_m(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def _read_only(*arrays_):
    out = []
    for a in arrays_:
        a = np.array(a, dtype=np.float64)
        a.flags.writeable = False
        out.append(a)
    return out


def _one(fn, lon, lat, *args):
    out_lon, out_lat = fn(np.array([lon], dtype=np.float64), np.array([lat], dtype=np.float64), *args)
    return float(out_lon[0]), float(out_lat[0])


# --------------------------------------------------------------------------- #
# Plain-Python reference of the forward transforms, written from the public
# description of the algorithm (Krasovsky ellipsoid, offsets in metres turned
# into degrees with the meridian radius M and the prime-vertical radius N).
# --------------------------------------------------------------------------- #

_A_M = 6378245.0
_EE = 0.00669342162296594323


def _slow_offset_m(x, y):
    s = math.sin
    pi = math.pi
    periodic_common = (20.0 * s(6.0 * x * pi) + 20.0 * s(2.0 * x * pi)) * 2.0 / 3.0
    north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y**2 + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    north += periodic_common
    north += (20.0 * s(y * pi) + 40.0 * s(y / 3.0 * pi)) * 2.0 / 3.0
    north += (160.0 * s(y / 12.0 * pi) + 320.0 * s(y * pi / 30.0)) * 2.0 / 3.0
    east = 300.0 + x + 2.0 * y + 0.1 * x**2 + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    east += periodic_common
    east += (20.0 * s(x * pi) + 40.0 * s(x / 3.0 * pi)) * 2.0 / 3.0
    east += (150.0 * s(x / 12.0 * pi) + 300.0 * s(x / 30.0 * pi)) * 2.0 / 3.0
    return east, north


def slow_wgs84_to_gcj02(lon_deg, lat_deg):
    """Scalar loop over points; the reference the kernel is compared with."""
    out_lon = []
    out_lat = []
    for lon, lat in zip(lon_deg, lat_deg):
        if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
            out_lon.append(lon)
            out_lat.append(lat)
            continue
        east_m, north_m = _slow_offset_m(lon - 105.0, lat - 35.0)
        phi = math.radians(lat)
        w = math.sqrt(1.0 - _EE * math.sin(phi) ** 2)
        meridian_radius_m = _A_M * (1.0 - _EE) / w**3
        normal_radius_m = _A_M / w
        out_lat.append(lat + math.degrees(north_m / meridian_radius_m))
        out_lon.append(lon + math.degrees(east_m / (normal_radius_m * math.cos(phi))))
    return np.array(out_lon), np.array(out_lat)


def slow_gcj02_to_bd09(lon_deg, lat_deg):
    x_pi = math.pi * 3000.0 / 180.0
    out_lon = []
    out_lat = []
    for lon, lat in zip(lon_deg, lat_deg):
        if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
            out_lon.append(lon)
            out_lat.append(lat)
            continue
        radius = math.hypot(lon, lat) + 2e-5 * math.sin(lat * x_pi)
        angle = math.atan2(lat, lon) + 3e-6 * math.cos(lon * x_pi)
        out_lon.append(radius * math.cos(angle) + 0.0065)
        out_lat.append(radius * math.sin(angle) + 0.006)
    return np.array(out_lon), np.array(out_lat)


@settings(max_examples=200, deadline=None)
@given(_points(st.floats(60.0, 150.0), st.floats(-5.0, 60.0)))
def test_forward_matches_slow_reference(points):
    lon, lat = points
    fast = wgs84_to_gcj02(lon, lat)
    slow = slow_wgs84_to_gcj02(lon, lat)
    np.testing.assert_allclose(fast[0], slow[0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(fast[1], slow[1], rtol=0, atol=1e-11)
    fast_bd = gcj02_to_bd09(lon, lat)
    slow_bd = slow_gcj02_to_bd09(lon, lat)
    np.testing.assert_allclose(fast_bd[0], slow_bd[0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(fast_bd[1], slow_bd[1], rtol=0, atol=1e-11)


# --------------------------------------------------------------------------- #
# Published pairs. Each comment names where the numbers were published.
# --------------------------------------------------------------------------- #

# googollee/eviltransform, python/test.py (same table in go/transform_test.go,
# javascript/test.js, php/tests/EvilTransformTest.php):
# (wgs_lat, wgs_lon, gcj_lat, gcj_lon)
EVILTRANSFORM_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # beijing
]


@pytest.mark.parametrize("wgs_lat, wgs_lon, gcj_lat, gcj_lon", EVILTRANSFORM_WGS_GCJ)
def test_eviltransform_pairs(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    lon, lat = _one(wgs84_to_gcj02, wgs_lon, wgs_lat)
    # Published with 16-17 significant digits: agree to 1e-9 deg (0.1 mm).
    assert abs(lon - gcj_lon) < 1e-9
    assert abs(lat - gcj_lat) < 1e-9
    back_lon, back_lat = _one(gcj02_to_wgs84, gcj_lon, gcj_lat)
    # eviltransform's own exact inverse is only held to 0.5 m; ours to 1 cm.
    assert _distance_m(back_lon, back_lat, wgs_lon, wgs_lat) < 0.01


# wandergis/coordtransform, README.md, "result" block for the input (116.404, 39.915).
WANDERGIS_INPUT = (116.404, 39.915)
WANDERGIS_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
WANDERGIS_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
WANDERGIS_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)  # closed-form approximate inverse
WANDERGIS_GCJ02_TO_WGS84 = (116.39775550083061, 39.91359571849836)  # one-step approximate inverse


def test_wandergis_forward_pairs():
    lon, lat = _one(wgs84_to_gcj02, *WANDERGIS_INPUT)
    assert abs(lon - WANDERGIS_WGS84_TO_GCJ02[0]) < 1e-9
    assert abs(lat - WANDERGIS_WGS84_TO_GCJ02[1]) < 1e-9
    lon, lat = _one(gcj02_to_bd09, *WANDERGIS_INPUT)
    assert abs(lon - WANDERGIS_GCJ02_TO_BD09[0]) < 1e-9
    assert abs(lat - WANDERGIS_GCJ02_TO_BD09[1]) < 1e-9


@pytest.mark.parametrize(
    "inverse, forward, published, tol_deg",
    [
        # Baidu's closed-form BD-09 inverse is off by up to ~2e-6 deg (20 cm).
        (bd09_to_gcj02, gcj02_to_bd09, WANDERGIS_BD09_TO_GCJ02, 5e-6),
        # The one-step GCJ-02 inverse is off by up to a few metres.
        (gcj02_to_wgs84, wgs84_to_gcj02, WANDERGIS_GCJ02_TO_WGS84, 5e-5),
    ],
)
def test_wandergis_inverse_pairs_are_improved_on(inverse, forward, published, tol_deg):
    lon, lat = _one(inverse, *WANDERGIS_INPUT)
    assert abs(lon - published[0]) < tol_deg
    assert abs(lat - published[1]) < tol_deg
    # Ours maps back onto the input; the published approximation does not.
    ours_back = _one(forward, lon, lat)
    theirs_back = _one(forward, *published)
    ours_err_m = _distance_m(*ours_back, *WANDERGIS_INPUT)
    theirs_err_m = _distance_m(*theirs_back, *WANDERGIS_INPUT)
    assert ours_err_m < 0.001
    assert ours_err_m < theirs_err_m


# hujiulong/gcoord, test/unit/crs/{WGS84,GCJ02,BD09}.spec.ts, all for the input
# (123, 45). gcoord prints 8 decimals and asserts 5; its GCJ-02 inverse iterates
# to 1e-6 deg and its BD-09 inverse is Baidu's closed form, hence the tolerances.
@pytest.mark.parametrize(
    "chain, published, tol_deg",
    [
        ([wgs84_to_gcj02], (123.00607541, 45.00197815), 1e-8),
        ([gcj02_to_bd09], (123.00636499, 45.00636899), 1e-8),
        ([wgs84_to_gcj02, gcj02_to_bd09], (123.0124491, 45.0083293), 1e-7),
        ([gcj02_to_wgs84], (122.99395597, 44.99804071), 2e-6),
        ([bd09_to_gcj02], (122.99363304, 44.99365430), 5e-6),
        ([bd09_to_gcj02, gcj02_to_wgs84], (122.98762210, 44.99171540), 5e-6),
    ],
)
def test_gcoord_pairs(chain, published, tol_deg):
    lon, lat = 123.0, 45.0
    for fn in chain:
        lon, lat = _one(fn, lon, lat)
    assert abs(lon - published[0]) < tol_deg
    assert abs(lat - published[1]) < tol_deg


# googollee/eviltransform python/test.py also lists BD-09 -> WGS84 pairs near
# (120.02, 29.2); eviltransform's own published formulas do not reproduce them
# (they are 10-40 m away), so they are not used as a reference here.


# --------------------------------------------------------------------------- #
# Round trips, measured in metres on the WGS84 ellipsoid.
# --------------------------------------------------------------------------- #


@settings(max_examples=100, deadline=None)
@given(_points(CHINA_LON, CHINA_LAT))
def test_gcj02_round_trip_under_1_cm(points):
    lon, lat = points
    gcj = wgs84_to_gcj02(lon, lat)
    # The offset is real (a test that maps everything to itself would pass otherwise).
    assert np.all(_distance_m(lon, lat, *gcj) > 1.0)
    back = gcj02_to_wgs84(*gcj)
    assert np.max(_distance_m(lon, lat, *back)) < 0.01
    # The stopping rule holds: the forward transform of the answer hits the input.
    fwd = wgs84_to_gcj02(*back)
    assert np.max(np.abs(fwd[0] - gcj[0])) < INVERSE_TOL_DEG
    assert np.max(np.abs(fwd[1] - gcj[1])) < INVERSE_TOL_DEG


@settings(max_examples=100, deadline=None)
@given(_points(CHINA_LON, CHINA_LAT))
def test_bd09_round_trips_both_ways_under_1_cm(points):
    lon, lat = points
    bd = gcj02_to_bd09(lon, lat)
    back = bd09_to_gcj02(*bd)
    assert np.max(_distance_m(lon, lat, *back)) < 0.01
    # And from BD-09 coordinates: BD-09 -> GCJ-02 -> BD-09.
    gcj = bd09_to_gcj02(lon, lat)
    again = gcj02_to_bd09(*gcj)
    assert np.max(_distance_m(lon, lat, *again)) < 0.01
    # Full chain WGS84 -> BD-09 -> WGS84.
    full = gcj02_to_wgs84(*bd09_to_gcj02(*gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))))
    assert np.max(_distance_m(lon, lat, *full)) < 0.01


def test_iteration_is_what_reaches_1_cm():
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.5, 135.0, 20_000)
    lat = rng.uniform(3.9, 53.5, 20_000)
    gcj = wgs84_to_gcj02(lon, lat)
    one_step = gcj02_to_wgs84(*gcj, INVERSE_TOL_DEG, 1)
    iterated = gcj02_to_wgs84(*gcj)
    assert np.max(_distance_m(lon, lat, *one_step)) > 0.01
    assert np.max(_distance_m(lon, lat, *iterated)) < 0.001


# --------------------------------------------------------------------------- #
# Outside China, NaN, read-only input.
# --------------------------------------------------------------------------- #

OUTSIDE = [
    (139.69, 35.69),  # Tokyo
    (2.35, 48.86),  # Paris
    (-74.0, 40.7),  # New York
    (103.82, 0.5),  # south of the box (near Singapore)
    (71.9, 40.0),  # west of the box
    (116.4, 56.0),  # north of the box
    (183.0, 45.0),  # gcoord's own out-of-China case (GCJ02.spec.ts)
]


@pytest.mark.parametrize("fn", [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02])
def test_points_outside_china_unchanged(fn):
    lon = np.array([p[0] for p in OUTSIDE])
    lat = np.array([p[1] for p in OUTSIDE])
    out_lon, out_lat = fn(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


@pytest.mark.parametrize("fn", [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02])
@pytest.mark.parametrize("nan_at", ["lon", "lat", "both"])
def test_nan_passes_through(fn, nan_at):
    lon = np.array([116.4, 121.5, 113.9])
    lat = np.array([39.9, 31.2, 22.5])
    if nan_at in ("lon", "both"):
        lon[1] = np.nan
    if nan_at in ("lat", "both"):
        lat[1] = np.nan
    out_lon, out_lat = fn(lon, lat)
    assert np.isnan(out_lon[1]) and np.isnan(out_lat[1])
    assert np.all(np.isfinite(out_lon[[0, 2]])) and np.all(np.isfinite(out_lat[[0, 2]]))


@pytest.mark.parametrize("fn", [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02])
def test_read_only_arrays_accepted(fn):
    lon, lat = _read_only([116.4, 121.5, 113.9], [39.9, 31.2, 22.5])
    out_lon, out_lat = fn(lon, lat)
    expected = fn(lon.copy(), lat.copy())
    np.testing.assert_array_equal(out_lon, expected[0])
    np.testing.assert_array_equal(out_lat, expected[1])
    assert out_lon.flags.writeable and out_lat.flags.writeable


@pytest.mark.parametrize("fn", [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02])
def test_empty_input(fn):
    out_lon, out_lat = fn(np.empty(0), np.empty(0))
    assert out_lon.shape == (0,) and out_lat.shape == (0,)
