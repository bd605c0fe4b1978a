"""Curfew breach and night activity (geomon.engine.night): hand-made nights, the baseline, DST, any batching."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.engine.monitor import fold_alerts
from geomon.engine.night import NightDetector, night_windows
from geomon.io.load import default_rules
from geomon.rules.periods import ThresholdSets
from tests import scenario as sc

MIN = 60_000
SHANGHAI = ZoneInfo("Asia/Shanghai")
X0, Y0 = sc.X0, sc.Y0                  # positions below are metres east/north of it, in sc.FRAME
HOME = shapely.box(X0 - 50, Y0 - 50, X0 + 50, Y0 + 50)   # away = farther than night_away_m (ordinary 300)
OUT = 1000.0                           # x of a place well away from home


def _ms(y, mo, d, h, mi=0, tz=SHANGHAI):
    return (dt.datetime(y, mo, d, h, mi, tzinfo=tz) - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(
        milliseconds=1)


def _detector(homes, levels=None, tz="Asia/Shanghai"):
    n = len(homes)
    ids = [f"s{i + 1}" for i in range(n)]
    levels = levels or ["ordinary"] * n
    sets = ThresholdSets(default_rules(), levels, ids, ["office-w"] * n)
    return NightDetector(sets, ids, levels, ["office-w"] * n, homes, frame=sc.FRAME, tz=tz), sets


def _run(det, sets, code, t, x, y, cuts=(), now_ms=None):
    """Feed a time-ordered stream in batches cut at ``cuts``, each sorted by (code, time); return all events."""
    code, t = np.asarray(code), np.asarray(t)
    x, y = np.asarray(x, float) + X0, np.asarray(y, float) + Y0
    bounds = [0, *sorted(set(min(c, t.size) for c in cuts)), t.size]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b <= a:
            continue
        o = np.lexsort((t[a:b], code[a:b])) + a
        parts.append(det.step(code[o], t[o], x[o], y[o], sets.set_of_fixes(code[o], t[o])))
    if now_ms is not None:
        parts.append(det.step(code[:0], t[:0], x[:0], y[:0], code[:0], now_ms=now_ms))
    return pa.concat_tables(parts)


def _rows(table, kind=None):
    rows = fold_alerts(table).to_pylist()
    return [r for r in rows if kind is None or r["kind"] == kind]


def _t(ts):
    return None if ts is None else int(ts.timestamp() * 1000)


def _track(segments):
    """Fixes every minute: ``segments`` of (start_ms, end_ms, x) standing still at (x, 0)."""
    t = np.concatenate([np.arange(a, b, MIN) for a, b, _ in segments])
    x = np.concatenate([np.full(len(range(a, b, MIN)), xx) for a, b, xx in segments])
    return t, x, np.zeros_like(x)


def test_out_at_23_for_30_minutes_is_a_curfew_breach_from_the_first_away_fix_plus_grace():
    det, sets = _detector([HOME])
    t, x, y = _track([(_ms(2025, 11, 2, 21), _ms(2025, 11, 2, 23), 0.0),
                      (_ms(2025, 11, 2, 23), _ms(2025, 11, 2, 23, 30), OUT),
                      (_ms(2025, 11, 2, 23, 30), _ms(2025, 11, 3, 1), 0.0)])
    rows = _rows(_run(det, sets, np.zeros(t.size, np.int64), t, x, y))
    assert [(r["kind"], r["subject_id"]) for r in rows] == [("curfew_breach", "s1")]   # 30 min < night_away_s
    (r,) = rows
    onset = _ms(2025, 11, 2, 23) + 600_000   # ordinary curfew_grace_s
    assert (_t(r["onset_ts"]), _t(r["confirmed_ts"]), _t(r["ended_ts"])) == (onset, onset, _ms(2025, 11, 2, 23, 30))
    assert json.loads(r["details"])["grace_s"] == 600 and r["severity"] == "high"
    assert abs(r["lon"] - 117.7) < 0.05 and abs(r["lat"] - 37.5) < 0.05   # placed at the fix back home


def test_already_away_as_the_window_opens_counts_from_the_window_start():
    det, sets = _detector([HOME, HOME], levels=["ordinary", "strict"])   # strict: window opens 21:00, grace 300 s
    t, x, y = _track([(_ms(2025, 11, 2, 20), _ms(2025, 11, 2, 23), OUT),
                      (_ms(2025, 11, 2, 23), _ms(2025, 11, 2, 23, 5), 0.0)])
    code = np.r_[np.zeros(t.size, np.int64), np.ones(t.size, np.int64)]
    table = _run(det, sets, code, np.r_[t, t], np.r_[x, x], np.r_[y, y])
    got = {r["subject_id"]: (_t(r["onset_ts"]), _t(r["ended_ts"])) for r in _rows(table, "curfew_breach")}
    assert got == {"s1": (_ms(2025, 11, 2, 22, 10), _ms(2025, 11, 2, 23)),
                   "s2": (_ms(2025, 11, 2, 21, 5), _ms(2025, 11, 2, 23))}
    # Away 22:00-23:00 is exactly night_away_s (3600 s), not above it; strict's 1800 s is exceeded at 21:30.
    act = _rows(table, "night_activity")
    assert [(r["subject_id"], _t(r["onset_ts"])) for r in act] == [("s2", _ms(2025, 11, 2, 21, 30))]
    assert json.loads(act[0]["details"])["trigger"] == "away"


def test_the_watermark_opens_the_window_without_a_fix():
    det, sets = _detector([HOME])
    t, x, y = _track([(_ms(2025, 11, 2, 21), _ms(2025, 11, 2, 21, 31), OUT)])
    assert _run(det, sets, np.zeros(t.size, np.int64), t, x, y, now_ms=_ms(2025, 11, 2, 22, 10)).num_rows == 0
    late = _rows(det.step(*(np.zeros(0, np.int64),) * 2, np.zeros(0), np.zeros(0), np.zeros(0, np.int64),
                          now_ms=_ms(2025, 11, 2, 22, 11)))
    assert [(r["kind"], _t(r["onset_ts"]), r["ended_ts"]) for r in late] == [
        ("curfew_breach", _ms(2025, 11, 2, 22, 10), None)]


def test_back_home_before_the_grace_or_outside_the_window_raises_nothing():
    det, sets = _detector([HOME])
    t, x, y = _track([(_ms(2025, 11, 2, 19), _ms(2025, 11, 2, 21, 50), OUT),    # out in the evening, home by 21:50
                      (_ms(2025, 11, 2, 21, 50), _ms(2025, 11, 2, 23), 0.0),
                      (_ms(2025, 11, 2, 23), _ms(2025, 11, 2, 23, 9), OUT),      # 9 min out: within the grace
                      (_ms(2025, 11, 2, 23, 9), _ms(2025, 11, 3, 8), 0.0)])
    assert _rows(_run(det, sets, np.zeros(t.size, np.int64), t, x, y)) == []


def _walk(night_day, n_steps):
    """From 23:00 of 2025-11-<night_day>, 100 m east every minute for ``n_steps`` minutes (each step counted)."""
    t0 = _ms(2025, 11, night_day, 23)
    k = np.arange(n_steps + 1)
    return t0 + k * MIN, 100.0 * k, np.zeros(k.size)   # the travel gate is 100 m


def test_night_activity_needs_the_floor_and_the_subjects_own_baseline():
    det, sets = _detector([None])   # no home zone: no curfew, travel only
    nights = [(1, 50), (2, 50), (3, 50), (4, 50), (5, 50), (6, 40), (7, 80)]
    t, x, y = (np.concatenate(a) for a in zip(*[_walk(d, n) for d, n in nights]))
    table = _run(det, sets, np.zeros(t.size, np.int64), t, x, y, now_ms=_ms(2025, 11, 8, 7))
    rows = _rows(table)
    assert {r["kind"] for r in rows} == {"night_activity"}
    # Night 1: no history, floor 3000 m passed at the 31st step. Nights 2-5 equal the baseline (5000 m),
    # night 6 (4000 m) is above the floor but below it; night 7 passes 5000 m at the 51st step.
    got = sorted((_t(r["onset_ts"]), _t(r["ended_ts"])) for r in rows)
    assert got == [(_ms(2025, 11, 1, 23) + 31 * MIN, _ms(2025, 11, 2, 6)),
                   (_ms(2025, 11, 7, 23) + 51 * MIN, _ms(2025, 11, 8, 6))]
    last = json.loads(max(rows, key=lambda r: r["onset_ts"])["details"])
    assert ((last["trigger"], last["baseline_travel_m"], last["nights"], last["travel_m"])
            == ("travel", 5000.0, 6, 8000.0))


def test_night_windows_follow_the_local_wall_clock_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    w = night_windows(_ms(2024, 3, 30, 12, tz=berlin), _ms(2024, 3, 31, 12, tz=berlin), "22:00", "06:00", berlin)
    starts = [dt.datetime.fromtimestamp(a / 1000, berlin) for a in w[:, 0]]
    ends = [dt.datetime.fromtimestamp(b / 1000, berlin) for b in w[:, 1]]
    assert all((s.hour, s.minute, e.hour, e.minute) == (22, 0, 6, 0) for s, e in zip(starts, ends))
    assert [(b - a) / 3_600_000 for a, b in w] == [8.0, 7.0, 8.0]   # 29-30, 30-31 (spring forward), 31-1


def test_curfew_across_a_dst_change_keeps_22_to_06_local():
    berlin = ZoneInfo("Europe/Berlin")
    det, sets = _detector([HOME], tz="Europe/Berlin")
    t = np.arange(_ms(2024, 3, 30, 12, tz=berlin), _ms(2024, 4, 1, 12, tz=berlin), 10 * MIN)
    x = np.full(t.size, OUT)   # away all the time
    rows = _rows(_run(det, sets, np.zeros(t.size, np.int64), t, x, np.zeros(t.size)), "curfew_breach")
    got = sorted((_t(r["onset_ts"]), _t(r["ended_ts"])) for r in rows)
    assert got == [(_ms(2024, 3, 30, 22, 10, tz=berlin), _ms(2024, 3, 31, 6, tz=berlin)),
                   (_ms(2024, 3, 31, 22, 10, tz=berlin), _ms(2024, 4, 1, 6, tz=berlin))]
    assert got[0][1] - got[0][0] == 7 * 3_600_000 - 10 * MIN   # the short night


def test_a_fixed_utc_offset_is_accepted():
    w = night_windows(_ms(2025, 11, 2, 12), _ms(2025, 11, 2, 12), "22:00", "06:00", "+08:00")
    assert w[-1].tolist() == [_ms(2025, 11, 2, 22), _ms(2025, 11, 3, 6)]


def _stream():
    """Three subjects over two nights: a breach, a breach from the window start, and night travel without a home."""
    t1, x1, _ = _track([(_ms(2025, 11, 2, 21), _ms(2025, 11, 2, 23), 0.0),
                        (_ms(2025, 11, 2, 23), _ms(2025, 11, 2, 23, 30), OUT),
                        (_ms(2025, 11, 2, 23, 30), _ms(2025, 11, 3, 2), 0.0),
                        (_ms(2025, 11, 3, 21), _ms(2025, 11, 3, 23, 20), OUT)])
    t2, x2, _ = _track([(_ms(2025, 11, 2, 20), _ms(2025, 11, 2, 23), OUT),
                        (_ms(2025, 11, 2, 23), _ms(2025, 11, 2, 23, 8), 0.0),
                        (_ms(2025, 11, 2, 23, 8), _ms(2025, 11, 2, 23, 40), OUT)])
    t3, x3, _ = (np.concatenate(a) for a in zip(_walk(2, 35), _walk(3, 20)))
    code = np.r_[np.zeros(t1.size), np.ones(t2.size), np.full(t3.size, 2)].astype(np.int64)
    t, x = np.r_[t1, t2, t3], np.r_[x1, x2, x3]
    order = np.argsort(t, kind="stable")
    return code[order], t[order], x[order], np.zeros(t.size)


_REFERENCE = None


def _reference():
    global _REFERENCE
    if _REFERENCE is None:
        det, sets = _detector([HOME, HOME, None], levels=["ordinary", "strict", "ordinary"])
        _REFERENCE = _rows(_run(det, sets, *_stream()))
    return _REFERENCE


def test_the_stream_raises_what_it_should():
    got = sorted((r["kind"], r["subject_id"], _t(r["onset_ts"])) for r in _reference())
    assert got == sorted([
        ("curfew_breach", "s1", _ms(2025, 11, 2, 23, 10)),
        ("curfew_breach", "s1", _ms(2025, 11, 3, 22, 10)),    # away since 21:00: from the window start
        # Night 2: above the floor (3600 s) and its baseline (night 1: 30 min away) at 23:00.
        ("night_activity", "s1", _ms(2025, 11, 3, 23)),
        ("curfew_breach", "s2", _ms(2025, 11, 2, 21, 5)),
        ("curfew_breach", "s2", _ms(2025, 11, 2, 23, 13)),    # out again at 23:08
        # Silent while away: the last fix holds, so the next night breaches too (lost contact is raised apart);
        # its time away never passes night 1's baseline.
        ("curfew_breach", "s2", _ms(2025, 11, 3, 21, 5)),
        ("night_activity", "s2", _ms(2025, 11, 2, 21, 30)),
        ("night_activity", "s3", _ms(2025, 11, 2, 23) + 31 * MIN),   # night 2's 2000 m is below the floor
    ])


def test_one_fix_at_a_time_gives_the_same_alerts():
    det, sets = _detector([HOME, HOME, None], levels=["ordinary", "strict", "ordinary"])
    stream = _stream()
    assert _rows(_run(det, sets, *stream, cuts=range(1, stream[0].size))) == _reference()


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 900), max_size=8))
def test_any_batching_gives_the_same_night_alerts(cuts):
    det, sets = _detector([HOME, HOME, None], levels=["ordinary", "strict", "ordinary"])
    assert _rows(_run(det, sets, *_stream(), cuts=cuts)) == _reference()


def _night_out_at(x_m, sigma_m, y_m=0.0):
    """One ordinary subject standing at (x_m, y_m) from 21:00 to 02:00, given each fix's fused sigma."""
    det, sets = _detector([HOME])
    t, x, y = _track([(_ms(2025, 11, 2, 21), _ms(2025, 11, 3, 2), x_m)])
    code = np.zeros(t.size, np.int64)
    sig = np.full(t.size, float(sigma_m))
    return _rows(det.step(code, t, x + X0, y + y_m + Y0, sets.set_of_fixes(code, t), sigma_m=sig))


def test_away_must_be_beyond_the_uncertainty_of_the_position():
    # 400 m east of home is 350 m from the home box: away beyond 300 + 1.645 sigma when sigma < 30 m.
    assert sorted(r["kind"] for r in _night_out_at(400.0, 20.0)) == ["curfew_breach", "night_activity"]
    assert _night_out_at(400.0, 40.0) == []   # 300 + 1.645 * 40 = 366 m > 350 m: unsure, no breach


def test_an_unsure_fix_does_not_end_a_breach():
    det, sets = _detector([HOME])
    # Out at 1 km from 23:00, a vague fix (sigma 500 m) near home at 23:30, sharp fixes out again after it.
    t, x, y = _track([(_ms(2025, 11, 2, 23), _ms(2025, 11, 3, 1), OUT)])
    sig = np.full(t.size, 3.0)
    vague = t == _ms(2025, 11, 2, 23, 30)
    x = np.where(vague, 320.0, x)     # 270 m from the box: within night_away_m, home if it were sure
    sig[vague] = 500.0
    code = np.zeros(t.size, np.int64)
    rows = _rows(det.step(code, t, x + X0, y + Y0, sets.set_of_fixes(code, t), sigma_m=sig))
    curfew = [r for r in rows if r["kind"] == "curfew_breach"]
    assert len(curfew) == 1   # the vague fix could be home or away: the breach goes on
    sharp = x.copy()
    sig[vague] = 3.0          # the same fix, sharp, is home: the breach ends there and a second one starts
    det, sets = _detector([HOME])
    rows = _rows(det.step(code, t, sharp + X0, y + Y0, sets.set_of_fixes(code, t), sigma_m=sig))
    curfew = sorted((_t(r["onset_ts"]), _t(r["ended_ts"])) for r in rows if r["kind"] == "curfew_breach")
    assert curfew[0] == (_ms(2025, 11, 2, 23, 10), _ms(2025, 11, 2, 23, 30)) and len(curfew) == 2


def test_vague_positions_travel_nowhere():
    # Positions trusted to 150 m (cell-grade fixes) scattered by 50 m around a place 1 km out, all night: half
    # the steps pass the 100 m gate, none the 450 m (three sigmas), so nothing is counted.
    det, sets = _detector([None])   # no home: travel only
    t, x, y = _track([(_ms(2025, 11, 2, 22), _ms(2025, 11, 3, 6), OUT)])
    rng = np.random.default_rng(1)
    x = x + rng.normal(0.0, 50.0, t.size)
    y = y + rng.normal(0.0, 50.0, t.size)
    code = np.zeros(t.size, np.int64)
    sig = np.full(t.size, 150.0)
    assert _rows(det.step(code, t, x + X0, y + Y0, sets.set_of_fixes(code, t), sigma_m=sig)) == []
    det, sets = _detector([None])   # the same scatter taken as exact is night activity
    assert [r["kind"] for r in _rows(det.step(code, t, x + X0, y + Y0, sets.set_of_fixes(code, t)))] == \
        ["night_activity"]


def test_a_phone_at_home_on_biased_cell_fixes_is_not_out_at_night():
    # Indoors at home from 21:00 to 03:00: nine fixes in ten are cell fixes claiming 140 m accuracy but all
    # 500 m east of home (one tower, one bias), the tenth a satellite fix at home. The filter's average of the
    # cell fixes is confident and wrong; decisions lean on no less than each fix's own accuracy, so no alert.
    from geomon.engine.monitor import Monitor
    from geomon.io.load import load_subjects, load_zones

    home = shapely.Point(X0, Y0).buffer(30.0)
    zones = load_zones({"type": "FeatureCollection", "features": [
        sc.feature("county", "permitted", shapely.box(X0 - 5000, Y0 - 5000, X0 + 5000, Y0 + 5000)),
        sc.feature("home-s1", "home", home, subject_ids=["s1"])]})
    subjects = load_subjects(pa.table({"subject_id": ["s1"], "level": ["ordinary"], "office_id": ["office-w"],
                                       "home_zone_id": ["home-s1"]}))
    t = np.arange(_ms(2025, 11, 2, 21), _ms(2025, 11, 3, 3), 15_000)
    rng = np.random.default_rng(3)
    satellite = np.arange(t.size) % 10 == 0
    x = np.where(satellite, 0.0, 500.0) + rng.normal(0.0, np.where(satellite, 3.0, 30.0))
    y = rng.normal(0.0, np.where(satellite, 3.0, 30.0))
    table = sc.fixes("s1", X0 + x, Y0 + y, t)
    table = table.set_column(table.schema.get_field_index("source"), "source",
                             pa.array(np.where(satellite, "gnss", "cell").tolist(), pa.string()))
    table = table.set_column(table.schema.get_field_index("accuracy_m"), "accuracy_m",
                             pa.array(np.where(satellite, 5.0, 140.0).astype(np.float32)))
    monitor = Monitor(zones, subjects, frame=sc.FRAME, detectors=("lost_contact", "night", "stays"))
    kinds = [r["kind"] for r in fold_alerts(monitor.process(table)).to_pylist()]
    assert not {"curfew_breach", "night_activity", "night_stay"} & set(kinds), kinds


def test_one_stray_fix_before_a_silence_is_no_night_out_and_two_are():
    # At home, then a single fix 1 km off at 23:00 (sigma 6 m) and the device silent for 20 minutes: one fix
    # never decides, so no curfew breach (the legacy rule took it as away until the next fix, for 20 minutes).
    # Two such fixes a minute apart do decide, and the grace counts from the first.
    def night(stray_fixes, rules_legacy=False):
        det, sets = _detector([HOME])
        if rules_legacy:
            rules = default_rules().with_values(breach_by_fixes=True)
            sets = ThresholdSets(rules, ["ordinary"], ["s1"], ["office-w"])
            det = NightDetector(sets, ["s1"], ["ordinary"], ["office-w"], [HOME], frame=sc.FRAME)
        home_t, _, _ = _track([(_ms(2025, 11, 2, 22), _ms(2025, 11, 2, 23), 0.0)])
        stray_t = _ms(2025, 11, 2, 23) + MIN * np.arange(stray_fixes)
        back_t, _, _ = _track([(_ms(2025, 11, 2, 23, 20), _ms(2025, 11, 3, 0), 0.0)])
        t = np.concatenate([home_t, stray_t, back_t])
        x = np.where((t >= stray_t[0]) & (t <= stray_t[-1]), OUT, 0.0)
        o = np.lexsort((t,))
        table = det.step(np.zeros(t.size, np.int64), t[o], x[o] + X0, np.zeros(t.size) + Y0,
                         sets.set_of_fixes(np.zeros(t.size, np.int64), t[o]), sigma_m=np.full(t.size, 6.0))
        return _rows(table, "curfew_breach")

    assert night(1) == []
    assert [_t(r["onset_ts"]) for r in night(1, rules_legacy=True)] == [_ms(2025, 11, 2, 23) + 600_000]
    (r,) = night(2)
    assert _t(r["onset_ts"]) == _ms(2025, 11, 2, 23) + 600_000
    assert json.loads(r["details"])["away_since_ms"] == _ms(2025, 11, 2, 23)
