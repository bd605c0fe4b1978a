"""Tests of geomon.geo.datum: the datum option's names, shapes, identity datums and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geomon.errors import InputError
from geomon.geo.datum import DATUMS, from_wgs84, to_wgs84
from geomon.kernels.datum import gcj02_to_bd09

GEOD = Geod(ellps="WGS84")

# wandergis/coordtransform README.md: wgs84togcj02(116.404, 39.915) and
# gcj02tobd09(116.404, 39.915).
WANDERGIS_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
WANDERGIS_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)


def test_datums_listed():
    assert DATUMS == ("wgs84", "cgcs2000", "gcj02", "bd09")


@pytest.mark.parametrize("datum", ["wgs84", "cgcs2000", "WGS84", "CGCS2000"])
def test_identity_datums(datum):
    lon = np.array([116.404, 2.35, np.nan])
    lat = np.array([39.915, 48.86, 1.0])
    for fn in (to_wgs84, from_wgs84):
        out_lon, out_lat = fn(lon, lat, datum)
        assert out_lon.dtype == np.float64
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
        # No copy for float64 input.
        assert np.shares_memory(out_lon, lon)


@pytest.mark.parametrize("spelling", ["gcj02", "GCJ-02", "gcj_02", " Gcj02 "])
def test_gcj02_spellings_and_published_pair(spelling):
    lon, lat = from_wgs84([116.404], [39.915], spelling)
    assert abs(lon[0] - WANDERGIS_WGS84_TO_GCJ02[0]) < 1e-9
    assert abs(lat[0] - WANDERGIS_WGS84_TO_GCJ02[1]) < 1e-9


def test_bd09_goes_through_gcj02():
    gcj_lon, gcj_lat = from_wgs84([116.404], [39.915], "gcj02")
    bd_lon, bd_lat = from_wgs84([116.404], [39.915], "BD-09")
    # The BD-09 leg on its own reproduces wandergis's published GCJ-02 -> BD-09 pair.
    leg_lon, leg_lat = gcj02_to_bd09(np.array([116.404]), np.array([39.915]))
    assert abs(leg_lon[0] - WANDERGIS_GCJ02_TO_BD09[0]) < 1e-9
    assert abs(leg_lat[0] - WANDERGIS_GCJ02_TO_BD09[1]) < 1e-9
    chained = gcj02_to_bd09(gcj_lon, gcj_lat)
    np.testing.assert_array_equal(bd_lon, chained[0])
    np.testing.assert_array_equal(bd_lat, chained[1])
    back_lon, back_lat = to_wgs84(bd_lon, bd_lat, "bd09")
    assert GEOD.inv(back_lon, back_lat, [116.404], [39.915])[2][0] < 0.01


def test_unknown_datum_names_it_and_lists_valid_ones():
    with pytest.raises(ValueError) as excinfo:
        to_wgs84([116.4], [39.9], "beijing54")
    message = str(excinfo.value)
    assert "beijing54" in message
    for name in DATUMS:
        assert name in message
    assert isinstance(excinfo.value, InputError)
    with pytest.raises(ValueError, match="mars"):
        from_wgs84([116.4], [39.9], "mars")


def test_shapes_broadcast_and_scalars():
    lon = np.full((2, 3), 116.404)
    lat = 39.915
    out_lon, out_lat = from_wgs84(lon, lat, "gcj02")
    assert out_lon.shape == (2, 3) and out_lat.shape == (2, 3)
    assert np.all(out_lon == out_lon[0, 0])
    out_lon, out_lat = to_wgs84(116.41024449916938, 39.91640428150164, "gcj02")
    assert out_lon.shape == ()
    assert abs(float(out_lon) - 116.404) < 1e-8 and abs(float(out_lat) - 39.915) < 1e-8


def test_read_only_and_integer_input():
    lon = np.array([116.404, 121.5])
    lat = np.array([39.915, 31.2])
    lon.flags.writeable = False
    lat.flags.writeable = False
    out = to_wgs84(lon, lat, "bd09")
    assert np.all(np.isfinite(out[0]))
    out = from_wgs84(np.array([116, 121]), np.array([40, 31]), "gcj02")
    assert out[0].dtype == np.float64


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.floats(73.5, 135.0), st.floats(3.9, 53.5)), min_size=1, max_size=50),
    st.sampled_from(DATUMS),
)
def test_round_trip_every_datum(points, datum):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    there = from_wgs84(lon, lat, datum)
    back = to_wgs84(*there, datum)
    assert np.max(GEOD.inv(lon, lat, *back)[2]) < 0.01
