"""Incident look-back: ranked subjects near a place and time, from the fused tracks a replay keeps."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geomon.geo.crs import transverse_mercator
from geomon.office.lookback import near
from geomon.run.replay import replay
from geomon.store.alert_store import TRACK_SCHEMA
from tests import scenario as sc

AT = 1_762_070_400_000            # the incident
LON, LAT = 117.0, 36.65
FRAME = transverse_mercator(LON)
MIN = 60_000


def _track(subject, t_ms, east_m, north_m, sigma_m=3.0):
    x0, y0 = FRAME.project(np.array([LON]), np.array([LAT]))
    lon, lat = FRAME.unproject(x0[0] + np.asarray(east_m, float), y0[0] + np.asarray(north_m, float))
    n = len(t_ms)
    return pa.table({"subject_id": [subject] * n,
                     "ts": pa.array(np.asarray(t_ms, np.int64)).cast(TRACK_SCHEMA.field("ts").type),
                     "lon": lon, "lat": lat, "sigma_m": np.full(n, float(sigma_m))}, schema=TRACK_SCHEMA)


def _tracks():
    t = AT + np.arange(-60, 61) * MIN // 2                      # every 30 s for an hour either side
    walk = 1.2 * (t - AT) / 1000.0                                 # east at 1.2 m/s, at the place at AT
    gap = np.r_[AT - 20 * MIN, AT + 20 * MIN]
    return pa.concat_tables([
        _track("passer", t, walk, np.zeros(t.size)),
        _track("far", t, np.full(t.size, 5000.0), np.zeros(t.size)),
        _track("silent", gap, [1000.0, -1000.0], [0.0, 0.0]),     # 2 km in 40 min: it could have passed by
        _track("silent_far", gap, [40_000.0, 40_000.0], [0.0, 0.0]),   # 40 km away: it could not
        _track("vague", t, np.full(t.size, 250.0), np.zeros(t.size), sigma_m=100.0),
    ])


def test_statuses_and_ranking():
    got = near(_tracks(), LON, LAT, AT, window_s=600, radius_m=200).to_pylist()
    status = {r["subject_id"]: r["status"] for r in got}
    assert status == {"passer": "was_there", "far": "ruled_out", "silent": "could_have_been",
                      "silent_far": "ruled_out", "vague": "could_have_been"}
    assert [r["subject_id"] for r in got][:1] == ["passer"]
    passer = got[0]
    assert passer["min_distance_m"] == pytest.approx(0.0, abs=0.5)
    assert abs(passer["closest_at"].timestamp() * 1000 - AT) < 1000
    vague = next(r for r in got if r["subject_id"] == "vague")
    assert vague["p_within"] == pytest.approx(0.3085, abs=0.01)   # Phi((200 - 250) / 100)
    silent = next(r for r in got if r["subject_id"] == "silent")
    assert silent["reachable"] and silent["silent_s"] == pytest.approx(1200.0)   # the whole 20-minute window
    assert [r["status"] for r in got] == sorted((r["status"] for r in got),
                                                key=["was_there", "could_have_been", "ruled_out"].index)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-3600, 3600), st.floats(-500, 500), st.floats(-500, 500)), min_size=2,
                max_size=12, unique_by=lambda r: r[0]))
def test_closest_approach_equals_dense_sampling(points):
    points.sort()
    t = AT + 1000 * np.array([p[0] for p in points])
    x = np.array([p[1] for p in points])
    y = np.array([p[2] for p in points])
    (r,) = near(_track("a", t, x, y), LON, LAT, AT, window_s=1800, radius_m=50, max_gap_s=7200).to_pylist()
    grid = np.arange(AT - 1_800_000, AT + 1_800_001, 250)
    inside = (grid >= t[0]) & (grid <= t[-1])
    if not inside.any():
        return
    d = np.hypot(np.interp(grid[inside], t, x), np.interp(grid[inside], t, y))
    speed = max(np.hypot(np.diff(x), np.diff(y)) / (np.diff(t) / 1000.0))
    assert r["min_distance_m"] <= d.min() + 0.05                    # exact, up to the projection's rounding
    assert r["min_distance_m"] >= d.min() - speed * 0.25 - 0.05      # no nearer than a sample can show


def test_replay_keeps_the_tracks_and_geomon_near_reads_them(tmp_path):
    db = tmp_path / "store.duckdb"
    t = sc.T0_MS + np.arange(0, 30 * MIN, 30_000)
    x = sc.X0 - 2000.0 + 1.5 * (t - t[0]) / 1000.0                   # s1 walks east past (X0 - 1000, Y0)
    fixes = pa.concat_tables([sc.fixes("s1", x, np.full(t.size, sc.Y0), t),
                              sc.fixes("s2", np.full(t.size, sc.X0 + 3000.0), np.full(t.size, sc.Y0), t)])
    replay(fixes, sc.zones(), sc.subjects(3), db=db)
    lon, lat = sc.FRAME.unproject(np.array([sc.X0 - 1000.0]), np.array([sc.Y0]))
    at = int(t[0] + 1000 / 1.5 * 1000)
    got = near(db, float(lon[0]), float(lat[0]), at, window_s=300, radius_m=100).to_pylist()
    assert [(r["subject_id"], r["status"]) for r in got] == [("s1", "was_there"), ("s2", "ruled_out")]
    from datetime import datetime, timezone

    from geomon.cli.main import app

    when = datetime.fromtimestamp(at / 1000, timezone.utc).isoformat()
    result = CliRunner().invoke(app, ["near", "--db", str(db), "--lon", str(lon[0]), "--lat", str(lat[0]),
                                      "--at", when, "--window", "300", "--radius", "100"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "s1" in result.output and "was_there" in result.output and "ruled_out" in result.output
