"""geomon.staypoints against the slow reference (plain loop, pyproj.Geod) on random tracks across China.

Tracks are stays and moves around random starts, near UTM zone borders, in
the far north and the far south, with time steps that land exactly on the time
and gap thresholds, exact duplicates, same-time fixes that differ, fixes
without a position, and shuffled rows. Exact distance ties are the kernel
tests' business (tests/kernels/test_staypoints.py): here examples where a
compared distance lies within 1 ppm of the threshold are set aside, since two
correct metrics may put such a fix on either side.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import geomon
from geomon.errors import InputError
from geomon.io.load import load_fixes
from geomon.tracks.stays import STAYPOINT_SCHEMA
from tests.staypoints_reference import GEOD, PLACES, reference_staypoints

START_MS = 1_762_099_200_000  # 2025-11-02T16:00Z
STEPS_MS = [0, 1_000, 15_000, 30_000, 60_000, 90_000, 90_001, 120_000, 300_000, 600_000, 600_001]


def fix_table(rows: list[dict]) -> pa.Table:
    return pa.table({
        "subject_id": pa.array([r["subject_id"] for r in rows], pa.string()),
        "ts": pa.array([r["ts"] for r in rows], pa.timestamp("ms", tz="UTC")),
        "lon": pa.array([r["lon"] for r in rows], pa.float64()),
        "lat": pa.array([r["lat"] for r in rows], pa.float64()),
        "source": pa.array(["gnss"] * len(rows), pa.string()),
        "accuracy_m": pa.array([r["accuracy_m"] for r in rows], pa.float32()),
    })


@st.composite
def fix_rows(draw, dist_m: float):
    rows = []
    for subject in draw(st.lists(st.sampled_from(["a", "b", "c", "é"]), unique=True, max_size=3)):
        lon, lat = draw(PLACES)
        t = START_MS + draw(st.integers(0, 10_000))
        for _ in range(draw(st.integers(0, 6))):
            stay = draw(st.booleans())
            centre = (lon, lat)
            for _ in range(draw(st.integers(1, 8))):
                t += draw(st.sampled_from(STEPS_MS))
                if stay:  # mostly well inside, sometimes on the edge
                    r = draw(st.one_of(st.floats(0.0, 0.45), st.floats(0.9, 1.1))) * dist_m
                    lon, lat, _ = GEOD.fwd(*centre, draw(st.floats(-180, 180)), r)
                else:
                    lon, lat, _ = GEOD.fwd(lon, lat, draw(st.floats(-180, 180)), draw(st.floats(0.3, 2.5)) * dist_m)
                rows.append({"subject_id": subject, "ts": t, "lon": lon, "lat": lat,
                             "accuracy_m": draw(st.sampled_from([3.0, 5.0]))})
    if rows:
        for _ in range(draw(st.integers(0, 3))):  # exact duplicates
            rows.append(dict(draw(st.sampled_from(rows))))
        for _ in range(draw(st.integers(0, 2))):  # same subject and time, another accuracy: not a duplicate
            twin = dict(draw(st.sampled_from(rows)))
            twin["accuracy_m"] = 4.0
            rows.append(twin)
        for _ in range(draw(st.integers(0, 2))):  # no position
            blind = dict(draw(st.sampled_from(rows)))
            blind.update(lon=None, lat=None, ts=blind["ts"] + 1)
            rows.append(blind)
    return draw(st.permutations(rows))


def as_rows(stays: pa.Table) -> list[dict]:
    out = []
    for r in stays.to_pylist():
        started, finished = (round(r.pop(k).timestamp() * 1000) for k in ("started_at", "finished_at"))
        out.append({**r, "started_at_ms": started, "finished_at_ms": finished})
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dist_m=st.sampled_from([50.0, 100.0, 250.0]), time_s=st.sampled_from([60.0, 300.0]),
       gap_s=st.sampled_from([None, 90.0, 600.0]), include_last=st.booleans())
def test_staypoints_equal_the_reference_on_random_tracks(data, dist_m, time_s, gap_s, include_last):
    rows = data.draw(fix_rows(dist_m))
    table = fix_table(rows)
    expected, margin = reference_staypoints(table.to_pylist(), dist_m, time_s, gap_s, include_last)
    assume(margin > 1e-6)
    got = geomon.staypoints(table, dist_m, time_s, gap_s, include_last)
    assert got.schema == STAYPOINT_SCHEMA
    got_rows = as_rows(got)
    key = ("subject_id", "started_at_ms", "finished_at_ms", "n_fixes")
    assert [tuple(r[k] for k in key) for r in got_rows] == [tuple(r[k] for k in key) for r in expected]
    for g, e in zip(got_rows, expected):
        assert abs(g["lon"] - e["lon"]) < 1e-9 and abs(g["lat"] - e["lat"]) < 1e-9


def walk(subject: str, lon: float, lat: float) -> list[dict]:
    """12 minutes within 10 m, then a move east of 300 m a minute for 5 minutes, then 15 still minutes."""
    rows = []
    for i in range(13):
        x, y, _ = GEOD.fwd(lon, lat, 37.0 * i, 10.0 * (i % 2))
        rows.append({"subject_id": subject, "ts": START_MS + 60_000 * i, "lon": x, "lat": y, "accuracy_m": 3.0})
    for i in range(1, 21):
        x, y, _ = GEOD.fwd(lon, lat, 90.0, 300.0 * min(i, 5))
        rows.append({"subject_id": subject, "ts": START_MS + 60_000 * (12 + i), "lon": x, "lat": y,
                     "accuracy_m": 3.0})
    return rows


def test_one_day_across_utm_zones_and_from_the_loader():
    # The same walk in Kashgar (UTM 43), Beijing (50) and Mohe (51), in one table.
    rows = walk("kashgar", 75.99, 39.47) + walk("beijing", 116.40, 39.90) + walk("mohe", 122.53, 53.47)
    table = fix_table(rows)
    stays = geomon.staypoints(table, 100.0, 300.0, include_last=True)
    assert stays.column("subject_id").to_pylist() == ["beijing"] * 2 + ["kashgar"] * 2 + ["mohe"] * 2
    assert stays.column("n_fixes").to_pylist() == [13, 16] * 3
    minutes = [(round(s.timestamp() * 1000) - START_MS) // 60_000 for s in stays.column("started_at").to_pylist()]
    assert minutes == [0, 17] * 3
    loaded = load_fixes(table.take(np.random.default_rng(0).permutation(len(rows))))
    assert geomon.staypoints(loaded, 100.0, 300.0, include_last=True).equals(stays)


def test_duplicates_and_fixes_without_position():
    rows = walk("a", 116.4, 39.9)
    base = geomon.staypoints(fix_table(rows), 100.0, 300.0)
    extra = [dict(rows[3]), dict(rows[3], lon=None, lat=None), dict(rows[4], lon=float("nan"))]
    table = fix_table(rows + extra)
    assert geomon.staypoints(table, 100.0, 300.0).equals(base)
    in_order = table.take(pc.sort_indices(table, [("subject_id", "ascending"), ("ts", "ascending")]))
    assert geomon.staypoints(in_order, 100.0, 300.0).equals(base)  # rows already in order take another path
    twin = dict(rows[3], accuracy_m=9.0)  # another fix at the same time and place: counted
    assert geomon.staypoints(fix_table(rows + [twin]), 100.0, 300.0).column("n_fixes").to_pylist() == [14]


def test_thresholds_at_millisecond_resolution():
    rows = [{"subject_id": "a", "ts": START_MS + t, "lon": 116.4 + d, "lat": 39.9, "accuracy_m": 1.0}
            for t, d in ((0, 0.0), (1, 0.0), (2, 0.01))]
    table = fix_table(rows)
    assert geomon.staypoints(table, 100.0, 0.002).num_rows == 1
    assert geomon.staypoints(table, 100.0, 0.0015).num_rows == 1  # at least 1.5 ms is at least 2 ms
    assert geomon.staypoints(table, 100.0, 0.0021).num_rows == 0
    assert geomon.staypoints(table, 100.0, 0.001, gap_threshold_s=0.0009).num_rows == 0  # 1 ms steps are gaps
    assert geomon.staypoints(table, 100.0, 0.002, gap_threshold_s=0.001).num_rows == 1
    assert geomon.staypoints(table, 100.0, 0.002, gap_threshold_s=math.inf).num_rows == 1


def test_empty_and_other_column_types():
    empty = geomon.staypoints(fix_table([]), 50.0, 60.0)
    assert empty.num_rows == 0 and empty.schema == STAYPOINT_SCHEMA
    rows = walk("a", 116.4, 39.9)
    table = fix_table(rows)
    other = table.set_column(0, "subject_id", pa.array(["a"] * len(rows)).dictionary_encode())
    other = other.set_column(1, "ts", table.column("ts").cast(pa.timestamp("us")))
    assert geomon.staypoints(other, 100.0, 300.0).equals(geomon.staypoints(table, 100.0, 300.0))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dist_threshold_m": 0.0}, ValueError, "dist_threshold_m"),
    ({"dist_threshold_m": math.inf}, ValueError, "finite"),
    ({"time_threshold_s": -1.0}, ValueError, "time_threshold_s"),
    ({"time_threshold_s": math.nan}, ValueError, "time_threshold_s"),
    ({"gap_threshold_s": 0}, ValueError, "gap_threshold_s"),
    ({"dist_threshold_m": "50"}, TypeError, "number"),
    ({"time_threshold_s": True}, TypeError, "number"),
    ({"include_last": 1}, TypeError, "include_last"),
])
def test_bad_thresholds(kwargs, error, match):
    args = {"dist_threshold_m": 50.0, "time_threshold_s": 60.0, **kwargs}
    with pytest.raises(error, match=match):
        geomon.staypoints(fix_table(walk("a", 116.4, 39.9)), **args)


def test_bad_tables():
    table = fix_table(walk("a", 116.4, 39.9))
    with pytest.raises(InputError, match="missing column"):
        geomon.staypoints(table.drop_columns(["lat"]), 50.0, 60.0)
    with pytest.raises(InputError, match="timestamp"):
        geomon.staypoints(table.set_column(1, "ts", table.column("ts").cast(pa.int64())), 50.0, 60.0)
    with pytest.raises(InputError, match="nulls"):
        geomon.staypoints(table.set_column(0, "subject_id", pa.array([None] * table.num_rows, pa.string())),
                          50.0, 60.0)
    lat = table.column("lat").to_pylist()
    lat[5] = 91.0
    with pytest.raises(InputError, match="row 5, field 'lat'"):
        geomon.staypoints(table.set_column(3, "lat", pa.array(lat)), 50.0, 60.0)
    with pytest.raises(InputError, match="pyarrow.Table"):
        geomon.staypoints(table.to_pylist(), 50.0, 60.0)


def test_started_and_finished_are_utc_milliseconds():
    stays = geomon.staypoints(fix_table(walk("a", 116.4, 39.9)), 100.0, 300.0)
    started = stays.column("started_at").to_pylist()[0]
    assert started == dt.datetime.fromtimestamp(START_MS / 1000, dt.timezone.utc)
