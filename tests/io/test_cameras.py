"""The camera layer: nearest cameras within a radius (against geodesic brute force), loading errors, alerts."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.errors import InputError
from geomon.io.cameras import CameraLayer, load_cameras
from tests import scenario as sc

GEOD = Geod(ellps="WGS84")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 2**31 - 1), st.floats(50.0, 2000.0), st.integers(1, 5))
def test_nearest_cameras_equal_a_geodesic_brute_force(n, seed, radius_m, k):
    rng = np.random.default_rng(seed)
    lon = 117.0 + rng.uniform(-0.02, 0.02, n)
    lat = 36.6 + rng.uniform(-0.02, 0.02, n)
    layer = CameraLayer([f"c{i:02d}" for i in range(n)], lon, lat, radius_m=radius_m, k=k)
    places_lon = 117.0 + rng.uniform(-0.025, 0.025, 5)
    places_lat = 36.6 + rng.uniform(-0.025, 0.025, 5)
    got = layer.nearest(np.r_[places_lon, np.nan], np.r_[places_lat, 36.6])
    assert got[-1] == []   # no place, no cameras
    for p in range(5):
        d = np.array([GEOD.inv(places_lon[p], places_lat[p], lon[i], lat[i])[2] for i in range(n)])
        # Away from the radius by more than the projection's error (1e-4 relative here), the sets must agree.
        sure = np.flatnonzero(d <= radius_m * (1 - 1e-4))
        maybe = np.flatnonzero(d <= radius_m * (1 + 1e-4))
        ids = [c["camera_id"] for c in got[p]]
        assert len(ids) == min(k, len(ids)) and len(ids) >= min(k, sure.size) and len(ids) <= min(k, maybe.size)
        assert all(np.isclose(c["distance_m"], d[int(c["camera_id"][1:])], rtol=1e-4, atol=0.1) for c in got[p])
        dist = [c["distance_m"] for c in got[p]]
        assert dist == sorted(dist)
        # Nearest first: no unlisted camera within the radius is nearer than the farthest listed.
        listed = {int(c[1:]) for c in ids}
        if ids:
            assert all(d[i] >= max(dist) - 0.2 for i in sure if i not in listed)


def test_loading_errors_name_row_and_field(tmp_path):
    path = tmp_path / "cameras.csv"
    path.write_text("camera_id,lon,lat\nc1,117.0,36.6\nc2,117.1,95.0\n")
    with pytest.raises(InputError, match="lat") as info:
        load_cameras(path)
    assert info.value.row == 1 and info.value.field == "lat"
    path.write_text("camera_id,lon,lat\nc1,117.0,36.6\nc1,117.1,36.7\n")
    with pytest.raises(InputError, match="also on row 0"):
        load_cameras(path)
    path.write_text("camera_id,lon\nc1,117.0\n")
    with pytest.raises(InputError, match="missing required column"):
        load_cameras(path)
    path.write_text("camera_id,lon,lat\nc1,117.0,36.6\nc2,117.001,36.6\n")
    assert load_cameras(path).camera_id.tolist() == ["c1", "c2"]


def test_monitor_alerts_name_the_nearest_cameras():
    # The bar is 100 m across at +2 km east; cameras at its door, 250 m away and 2 km away.
    lon, lat = sc.FRAME.unproject(np.array([sc.X0 + 1900.0, sc.X0 + 2250.0, sc.X0]), np.array([sc.Y0] * 3))
    cameras = pa.table({"camera_id": ["door", "street", "far"], "lon": lon, "lat": lat})
    t = sc.T0_MS + np.arange(0, 20 * 60_000, 30_000)
    walk = sc.fixes("s1", np.full(t.size, sc.X0 + 2000.0), np.full(t.size, sc.Y0), t)
    monitor = Monitor(sc.zones(), sc.subjects(3), cameras=cameras)
    entry = [r for r in fold_alerts(monitor.process(walk)).to_pylist() if r["kind"] == "forbidden_entry"]
    assert entry, "standing in the bar is a forbidden entry"
    named = json.loads(entry[0]["details"])["cameras"]
    assert [c["camera_id"] for c in named] == ["door", "street"]
    assert named[0]["distance_m"] == pytest.approx(100.0, abs=5.0)
