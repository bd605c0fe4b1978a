"""The dwell walk: stays kept for reports, dwell at places of concern, unexplained night stays; any batching."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import geomon
from geomon.engine.monitor import fold_alerts
from geomon.engine.stays import StayDetector, places_of_concern
from geomon.engine.zones import compile_zones
from geomon.rules.load import default_rules
from geomon.rules.periods import ThresholdSets
from tests import scenario as sc

T0, MIN = sc.T0_MS, 60_000
BAR = (sc.X0 + 2000.0, sc.Y0)        # a 100 m circle, forbidden, category "bar", for everyone
VICTIM = (sc.X0, sc.Y0 + 2000.0)     # a 150 m circle, forbidden, victim_home, for s1 only
ELSEWHERE = (sc.X0 - 1000.0, sc.Y0)
IDS, LEVELS, OFFICES = ["s1", "s2", "s3"], ["ordinary", "strict", "ordinary"], ["office-w"] * 3


def _detector(ids=IDS, levels=LEVELS, home=None, work=None):
    offices = ["office-w"] * len(ids)
    sets = ThresholdSets(default_rules(), levels, ids, offices)
    return StayDetector(sets, ids, levels, offices, **places_of_concern(compile_zones(sc.zones(), sc.FRAME)),
                         home_geometry_m=home, work_geometry_m=work)


def _stay(code, place, t0_ms, minutes, seed=0, step_s=30):
    """Fixes every ``step_s`` for ``minutes`` within 10 m of ``place``: rows (code, t_ms, x, y)."""
    rng = np.random.default_rng(seed)
    t = np.arange(t0_ms, t0_ms + minutes * MIN + 1, step_s * 1000)
    dx, dy = rng.uniform(-7, 7, (2, t.size))
    return [(code, int(ti), place[0] + a, place[1] + b) for ti, a, b in zip(t, dx, dy)]


def _step(det, rows, now_ms=None):
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    code = np.array([r[0] for r in rows], np.int64)
    t = np.array([r[1] for r in rows], np.int64)
    x = np.array([r[2] for r in rows], float)
    y = np.array([r[3] for r in rows], float)
    return det.step(code, t, x, y, det._sets.set_of_fixes(code, t), now_ms)


def _ms(ts):
    return None if ts is None else int(ts.timestamp() * 1000)


def _summary(table, kind="dwell_concern"):
    return sorted((r["subject_id"], r["zone_id"], _ms(r["onset_ts"]), _ms(r["confirmed_ts"]), _ms(r["ended_ts"]))
                  for r in fold_alerts(table).to_pylist() if r["kind"] == kind)


def test_a_twenty_minute_stay_in_a_bar_alerts_from_arrival_confirmed_after_dwell_s():
    arrive = T0 + 5 * MIN
    leave = arrive + 20 * MIN + 30_000
    rows = []
    for code, seed in ((0, 1), (1, 2)):   # s1 ordinary (900 s), s2 strict (600 s)
        rows += _stay(code, ELSEWHERE, T0, 4, seed) + _stay(code, BAR, arrive, 20, seed)
        rows.append((code, leave, ELSEWHERE[0], ELSEWHERE[1]))
    out = _step(_detector(), rows)
    assert _summary(out) == [("s1", "bar", arrive, arrive + 15 * MIN, leave),
                             ("s2", "bar", arrive, arrive + 10 * MIN, leave)]
    first = out.to_pylist()[0]          # the confirmation comes first, still open
    assert first["ended_ts"] is None and first["severity"] == "medium"
    rows = {r["subject_id"]: r for r in fold_alerts(out).to_pylist()}
    assert rows["s2"]["severity"] == "high"
    details = json.loads(rows["s1"]["details"])
    assert details["event"] == "ended" and details["zone_category"] == "bar"
    assert details["duration_s"] == (leave - arrive) / 1000 and details["n_fixes"] == 41
    # Placed at the stay's centroid, within the jitter of the bar's centre.
    lon, lat = sc.FRAME.unproject(np.array([BAR[0]]), np.array([BAR[1]]))
    assert abs(rows["s1"]["lon"] - lon[0]) < 1e-4 and abs(rows["s1"]["lat"] - lat[0]) < 1e-4


def test_the_alert_is_raised_while_the_stay_lasts():
    det = _detector()
    assert _step(det, _stay(0, BAR, T0, 14)).num_rows == 0
    out = _step(det, _stay(0, BAR, T0 + 14 * MIN + 30_000, 1)).to_pylist()
    assert [(_ms(r["onset_ts"]), _ms(r["confirmed_ts"]), r["ended_ts"]) for r in out] == [(T0, T0 + 15 * MIN, None)]


def test_stays_elsewhere_or_broken_by_a_gap_or_out_of_reach_raise_nothing():
    # s2 (strict: dwell_s 10 min, lost_contact_s 10 min) stays 8 + 8 minutes with 11 minutes of silence between.
    rows = (_stay(0, ELSEWHERE, T0, 60)
            + _stay(1, BAR, T0, 8) + _stay(1, BAR, T0 + 19 * MIN, 8)
            # 70 m outside the bar's edge: beyond dwell_radius_m (50 m)
            + _stay(2, (BAR[0] + 170.0, BAR[1]), T0, 30, step_s=60))
    assert _step(_detector(), rows).num_rows == 0
    # ...while 30 m outside the edge is within it.
    near = _summary(_step(_detector(), _stay(2, (BAR[0] + 130.0, BAR[1]), T0, 20, seed=3)))
    assert near == [("s3", "bar", T0, T0 + 15 * MIN, None)]


def test_a_victims_home_concerns_only_its_offender():
    rows = _stay(0, VICTIM, T0, 20) + _stay(2, VICTIM, T0, 20)
    out = fold_alerts(_step(_detector(), rows)).to_pylist()
    assert [(r["subject_id"], r["zone_id"], r["severity"]) for r in out] == [("s1", "victim-1", "high")]


def test_a_silence_ends_the_stay_at_the_last_fix_by_fix_or_by_watermark():
    last = T0 + 20 * MIN
    by_fix = _step(_detector(), _stay(0, BAR, T0, 20) + [(0, last + 31 * MIN, *BAR)])
    assert _summary(by_fix) == [("s1", "bar", T0, T0 + 15 * MIN, last)]
    det = _detector()
    _step(det, _stay(0, BAR, T0, 20))
    assert _step(det, [], now_ms=last + 30 * MIN).num_rows == 0
    ended = _step(det, [], now_ms=last + 30 * MIN + 1)
    assert [_ms(r["ended_ts"]) for r in ended.to_pylist()] == [last]
    # The fix after the silence starts a new stay: nothing more is emitted for the old one.
    assert _step(det, [(0, last + 31 * MIN, *BAR)]).num_rows == 0


SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local_ms(day, hour, minute=0):
    """Event time (ms) of a local time in Asia/Shanghai, November 2025 (T0 is 2 November, 08:00 local)."""
    return int(dt.datetime(2025, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


FRIEND = (sc.X0 + 1000.0, sc.Y0 - 2000.0)          # a friend's house: no zone at all
HOME = (sc.X0 - 3000.0, sc.Y0)
WORK = (sc.X0 - 3000.0, sc.Y0 + 1500.0)
HOME_ZONE = shapely.Point(*HOME).buffer(40.0)
WORK_ZONE = shapely.box(WORK[0] - 60.0, WORK[1] - 60.0, WORK[0] + 60.0, WORK[1] + 60.0)


def _stream():
    """Three subjects' mornings (dwell at the bar and the victim's home); s1's night at a friend's (home elsewhere)."""
    rows = (_stay(0, ELSEWHERE, T0, 5, 1) + _stay(0, BAR, T0 + 6 * MIN, 20, 2)
            + _stay(0, ELSEWHERE, T0 + 27 * MIN, 30, 3)
            + _stay(1, BAR, T0, 8, 4) + _stay(1, BAR, T0 + 40 * MIN, 12, 5)
            + _stay(2, VICTIM, T0, 20, 6) + _stay(2, BAR, T0 + 25 * MIN, 40, 7, step_s=45)
            + _stay(0, FRIEND, _local_ms(2, 23), 180, 8, step_s=120) + _stay(0, HOME, _local_ms(3, 2, 10), 10, 9))
    return sorted(rows, key=lambda r: r[1])


_REFERENCE = None


def _stream_detector():
    return _detector(home=[HOME_ZONE, HOME_ZONE, None])


def _stay_rows(table):
    return sorted(table.drop_columns(["run_id"]).to_pylist(), key=lambda r: (r["subject_id"], r["started_at"]))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 440), max_size=8), one_by_one=st.booleans())
def test_any_batching_gives_the_same_dwell_and_night_stay_alerts_and_stays(cuts, one_by_one):
    global _REFERENCE
    stream = _stream()
    if _REFERENCE is None:
        det = _stream_detector()
        out = _step(det, stream)
        _REFERENCE = fold_alerts(out).to_pylist(), _stay_rows(det.take_stays())
        assert _summary(out) == [
            ("s1", "bar", T0 + 6 * MIN, T0 + 21 * MIN, T0 + 27 * MIN),
            # s2 (strict) falls silent after T0 + 52 min; s3's fixes carry the watermark past 10 more minutes.
            ("s2", "bar", T0 + 40 * MIN, T0 + 50 * MIN, T0 + 52 * MIN),
            # s3's last fix is its 54th, 45 s apart; s1's night fixes carry the watermark past its silence.
            ("s3", "bar", T0 + 25 * MIN, T0 + 25 * MIN + 900_000, T0 + 25 * MIN + 53 * 45_000)]
        # s1 arrives at 23:00 after a silence, has spent 2 h (ordinary night_stay_s) there at 01:00, leaves at 02:10.
        assert _summary(out, "night_stay") == [("s1", None, _local_ms(2, 23), _local_ms(3, 1), _local_ms(3, 2, 10))]
        stays = {(r["subject_id"], _ms(r["started_at"]), _ms(r["finished_at"]), r["ended_by"])
                 for r in _REFERENCE[1]}
        assert {("s1", T0 + 6 * MIN, T0 + 27 * MIN, "moved"),                   # the bar, left by a fix
                ("s1", _local_ms(2, 23), _local_ms(3, 2, 10), "moved"),         # the friend's
                ("s2", T0 + 40 * MIN, T0 + 52 * MIN, "silence")} <= stays       # the bar, then silence
    n = len(stream)
    bounds = list(range(n + 1)) if one_by_one else [0, *sorted({min(c, n) for c in cuts}), n]
    det = _stream_detector()
    parts, stays = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            parts.append(_step(det, stream[a:b]))
            stays.append(det.take_stays())
    assert (fold_alerts(pa.concat_tables(parts)).to_pylist(), _stay_rows(pa.concat_tables(stays))) == _REFERENCE


# ------------------------------------------------------------------ night_stay on a hand-made night

NIGHT_IDS = ["friend-night", "friend-day", "work-night", "home-night", "homeless", "strict-friend"]
NIGHT_LEVELS = ["ordinary"] * 5 + ["strict"]


def _night_detector():
    home = [HOME_ZONE] * 4 + [None, HOME_ZONE]
    return _detector(NIGHT_IDS, NIGHT_LEVELS, home=home, work=[WORK_ZONE] * 6)


def _day(code, away_at, arrive_ms, hours=3):
    """At home from 3 h before ``arrive_ms``, at ``away_at`` for ``hours`` from it, then home: fixes every minute."""
    leave = arrive_ms + hours * 60 * MIN
    return (_stay(code, HOME, arrive_ms - 180 * MIN, 179, code, step_s=60)
            + _stay(code, away_at, arrive_ms, hours * 60 - 1, code + 10, step_s=60)
            + _stay(code, HOME, leave, 60, code + 20, step_s=60))


def test_three_hours_at_a_friends_at_one_at_night_is_one_night_stay_and_nothing_else_is():
    one_am = _local_ms(3, 1)
    rows = (_day(0, FRIEND, one_am) + _day(1, FRIEND, _local_ms(3, 15))     # the same stay at 15:00
            + _day(2, WORK, one_am) + _day(3, HOME, one_am)                 # at work, at home
            + _day(4, FRIEND, one_am) + _day(5, FRIEND, one_am))            # without a home zone; strict
    det = _night_detector()
    out = _step(det, rows)
    leave = one_am + 180 * MIN      # the first fix back home ends the stay
    assert _summary(out, "night_stay") == [
        ("friend-night", None, one_am, one_am + 120 * MIN, leave),          # ordinary night_stay_s: 2 h
        ("strict-friend", None, one_am, one_am + 60 * MIN, leave)]          # strict: 1 h
    by_subject = {r["subject_id"]: r for r in fold_alerts(out).to_pylist() if r["kind"] == "night_stay"}
    assert by_subject["friend-night"]["severity"] == "medium" and by_subject["strict-friend"]["severity"] == "high"
    details = json.loads(by_subject["friend-night"]["details"])
    assert (details["event"], details["stay_started_ms"], details["duration_s"]) == ("ended", one_am, 3 * 3600.0)
    lon, lat = sc.FRAME.unproject(np.array([FRIEND[0]]), np.array([FRIEND[1]]))
    assert (abs(by_subject["friend-night"]["lon"] - lon[0]) < 1e-4
            and abs(by_subject["friend-night"]["lat"] - lat[0]) < 1e-4)
    # Confirmed while the subject is still there, before the stay ends.
    first = [r for r in out.to_pylist() if r["kind"] == "night_stay" and r["subject_id"] == "friend-night"][0]
    assert first["ended_ts"] is None and _ms(first["confirmed_ts"]) == one_am + 120 * MIN
    # The stays table has the friend's stay, 3 h away from home and work.
    stays = [r for r in det.take_stays().to_pylist() if r["subject_id"] == "friend-night"]
    friend = [r for r in stays if _ms(r["started_at"]) == one_am]
    assert len(friend) == 1 and _ms(friend[0]["finished_at"]) == leave and friend[0]["n_fixes"] == 180
    assert friend[0]["ended_by"] == "moved" and friend[0]["concern_zone_id"] is None
    assert abs(friend[0]["home_distance_m"] - (np.hypot(4000.0, 2000.0) - 40.0)) < 10.0
    home = [r for r in stays if _ms(r["started_at"]) == one_am - 180 * MIN]
    assert home[0]["home_distance_m"] == 0.0 and home[0]["work_distance_m"] > 1000.0


def test_a_night_stay_needs_its_time_inside_the_window():
    # From 04:30 to 07:30: only 1.5 h before the window ends at 06:00.
    assert _summary(_step(_night_detector(), _day(0, FRIEND, _local_ms(3, 4, 30))), "night_stay") == []
    # From 20:30 to 23:30: the window opens at 22:00; 2 h inside it are not reached either.
    assert _summary(_step(_night_detector(), _day(0, FRIEND, _local_ms(2, 20, 30))), "night_stay") == []
    # From 20:30 for 4 h: 2 h inside the window at 00:00; the onset is the window's start.
    got = _summary(_step(_night_detector(), _day(0, FRIEND, _local_ms(2, 20, 30), hours=4)), "night_stay")
    assert got == [("friend-night", None, _local_ms(2, 22), _local_ms(3, 0), _local_ms(3, 0, 30))]


# ------------------------------------------------------------------ the causal walk against geomon.staypoints

GRID_M = 37.0    # grid distances are sqrt(k) * 37 m: 37 or 52.3 m around the 50 m radius, never within 4 %


@st.composite
def _grid_tracks(draw):
    """Up to three subjects wandering on a 37 m grid west of the centre; steps up to 1 h (gaps of 1800 s and more)."""
    rows = []
    for code in range(draw(st.integers(1, 3))):
        t, i, j = T0 + draw(st.integers(0, 600)) * 1000, 0, 0
        for _ in range(draw(st.integers(0, 60))):
            t += draw(st.sampled_from([60_000, 120_000, 300_000, 600_000, 1_800_000, 1_800_001, 3_600_000]))
            if draw(st.integers(0, 3)) == 0:
                i, j = i + draw(st.integers(-2, 2)), j + draw(st.integers(-2, 2))
            rows.append((code, t, sc.X0 - 2000.0 + GRID_M * i, sc.Y0 - 2000.0 + GRID_M * j))
    return rows


def _fix_table(rows):
    x = np.array([r[2] for r in rows])
    lon, lat = sc.FRAME.unproject(x, np.array([r[3] for r in rows]))
    return pa.table({"subject_id": [IDS[r[0]] for r in rows],
                     "ts": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                     "lon": lon, "lat": lat})


def _keys(table):
    return sorted((r["subject_id"], _ms(r["started_at"]), _ms(r["finished_at"]), r["n_fixes"])
                  for r in table.to_pylist())


@settings(max_examples=60, deadline=None)
@given(rows=_grid_tracks())
def test_closed_stays_agree_with_geomon_staypoints(rows):
    """Same rule, same thresholds (ordinary: 50 m, 600 s, lost_contact_s 1800 s as the gap).

    The batch function drops a stay broken by a gap, and the open stay at the
    end unless ``include_last``; the causal walk ends a stay at a silence at
    its last fix and keeps it (``ended_by = 'silence'``). So: the stays left
    by a fix are exactly ``staypoints(..., include_last=False)``'s, and once
    the watermark is past every silence all the stays are exactly those of
    ``staypoints(..., include_last=True)`` run on each stretch between gaps.
    """
    det = _detector(["s1", "s2", "s3"], ["ordinary"] * 3)
    _step(det, rows)
    _step(det, [], now_ms=max((r[1] for r in rows), default=T0) + 10**9)
    causal = det.take_stays()
    moved = causal.filter(pa.compute.equal(causal["ended_by"], "moved"))
    fixes = _fix_table(rows)
    batch = geomon.staypoints(fixes, dist_threshold_m=50, time_threshold_s=600, gap_threshold_s=1800)
    assert _keys(moved) == _keys(batch)
    # Centroids: the mean of projected metres against the mean of degrees, a few millimetres apart at most.
    c = {k[:2]: r for k, r in zip(_keys(moved),
                                  sorted(moved.to_pylist(), key=lambda r: (r["subject_id"], r["started_at"])))}
    for r in batch.to_pylist():
        m = c[(r["subject_id"], _ms(r["started_at"]))]
        assert abs(m["lon"] - r["lon"]) < 1e-7 and abs(m["lat"] - r["lat"]) < 1e-7
    # Every stay, cut at the gaps.
    stretches = []
    by_subject = sorted(rows, key=lambda r: (r[0], r[1]))
    start = 0
    for k in range(1, len(by_subject) + 1):
        if (k == len(by_subject) or by_subject[k][0] != by_subject[k - 1][0]
                or by_subject[k][1] - by_subject[k - 1][1] > 1_800_000):
            stretches.append(geomon.staypoints(_fix_table(by_subject[start:k]), dist_threshold_m=50,
                                               time_threshold_s=600, include_last=True))
            start = k
    assert _keys(causal) == sorted(k for part in stretches for k in _keys(part))
