"""Check-in alerts: missed daily check-ins on the watermark, check-ins from outside, any batching."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.engine.checkins import CheckinDetector
from geomon.engine.monitor import fold_alerts
from geomon.errors import InputError
from geomon.rules.load import default_rules, load_rules
from geomon.rules.periods import ThresholdSets
from tests import scenario as sc

T0 = sc.T0_MS            # 2025-11-02 00:00 UTC = 08:00 China Standard Time
HOUR = 3_600_000
DUE_1 = T0 + 12 * HOUR   # 20:00 local on day 1
DUE_2 = DUE_1 + 24 * HOUR
COUNTY = shapely.box(sc.X0 - 5000, sc.Y0 - 5000, sc.X0 + 5000, sc.Y0 + 5000)
IDS, LEVELS, OFFICES = ["s1", "s2", "s3"], ["ordinary", "strict", "ordinary"], ["office-w"] * 3


def _detector(rules=None):
    rules = rules or default_rules()
    return CheckinDetector(ThresholdSets(rules, LEVELS, IDS, OFFICES), IDS, LEVELS, OFFICES)


def _fixes(rows):
    """(subject code, t_ms, is_checkin, x_m) rows -> the columns step() takes, sorted by (code, time)."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    code = np.array([r[0] for r in rows], np.int64)
    t = np.array([r[1] for r in rows], np.int64)
    checkin = np.array([r[2] for r in rows], bool)
    x = np.array([r[3] for r in rows], float)
    y = np.full(x.size, sc.Y0)
    lon, lat = sc.FRAME.unproject(x, y) if x.size else (x, y)
    return code, t, checkin, shapely.contains_xy(COUNTY, x, y), lon, lat


def _step(det, rows, now_ms=None):
    code, t, checkin, inside, lon, lat = _fixes(rows)
    return det.step(code, t, checkin, inside, det._sets.set_of_fixes(code, t), now_ms, lon=lon, lat=lat)


def _ms(ts):
    return int(ts.timestamp() * 1000)


def _hourly(code, hours, checkin_hours=(), x=sc.X0):
    return [(code, T0 + h * HOUR, h in checkin_hours, x) for h in hours]


def test_a_day_with_a_checkin_is_quiet_and_a_day_without_is_missed_at_the_deadline():
    det = _detector()
    # s1 checks in at 09:00 local on day 1 only; s2 on both days; fixes hourly for 40 hours.
    rows = _hourly(0, range(41), checkin_hours=(1,)) + _hourly(1, range(41), checkin_hours=(1, 30))
    rows[36] = (0, T0 + 36 * HOUR, False, sc.X0 + 700.0)   # s1's fix at exactly the day-2 deadline
    out = fold_alerts(_step(det, rows)).to_pylist()
    assert [(r["kind"], r["subject_id"]) for r in out] == [("missed_checkin", "s1")]
    (missed,) = out
    assert _ms(missed["onset_ts"]) == _ms(missed["confirmed_ts"]) == _ms(missed["ended_ts"]) == DUE_2
    assert missed["severity"] == "medium" and missed["zone_id"] is None
    # Placed at the latest fix at or before the deadline.
    lon, _ = sc.FRAME.unproject(np.array([sc.X0 + 700.0]), np.array([sc.Y0]))
    assert missed["lon"] == pytest.approx(lon[0])
    details = json.loads(missed["details"])
    assert (details["event"], details["checkin_due"], details["profile"]) == ("missed", "20:00", "ordinary")


def test_a_missed_checkin_is_emitted_once_the_watermark_passes_the_deadline():
    det = _detector()
    # s1 reports once in the morning; s2 checks in exactly at the deadline (on time).
    assert _step(det, [(0, T0, False, sc.X0), (1, T0 + HOUR, False, sc.X0), (1, DUE_1, True, sc.X0)]).num_rows == 0
    assert _step(det, [], now_ms=DUE_1).num_rows == 0          # not yet past the deadline
    late = _step(det, [], now_ms=DUE_1 + 1).to_pylist()
    assert [(r["kind"], r["subject_id"], _ms(r["onset_ts"])) for r in late] == [("missed_checkin", "s1", DUE_1)]
    assert _step(det, [], now_ms=DUE_1 + 2).num_rows == 0      # emitted once
    # A silent subject misses every day: day 2 for both, once the clock passes it.
    later = _step(det, [], now_ms=DUE_2 + HOUR).to_pylist()
    assert sorted((r["subject_id"], _ms(r["onset_ts"]), r["severity"]) for r in later) == [
        ("s1", DUE_2, "medium"), ("s2", DUE_2, "high")]


def test_checking_starts_at_the_first_fix():
    det = _detector()
    # First fix at 21:00 local, after day 1's deadline: day 1 is not checked.
    out = _step(det, _hourly(2, range(13, 40))).to_pylist()
    assert [(r["subject_id"], _ms(r["onset_ts"])) for r in out] == [("s3", DUE_2)]


def test_a_checkin_from_outside_the_county_is_flagged_and_still_counts():
    det = _detector()
    rows = _hourly(0, range(14)) + [(0, T0 + 2 * HOUR + 60_000, True, sc.X0 + 6000.0)]
    out = fold_alerts(_step(det, rows)).to_pylist()
    assert [r["kind"] for r in out] == ["checkin_outside"]
    (flag,) = out
    t = T0 + 2 * HOUR + 60_000
    assert _ms(flag["onset_ts"]) == _ms(flag["confirmed_ts"]) == _ms(flag["ended_ts"]) == t
    assert flag["severity"] == "high" and json.loads(flag["details"])["event"] == "checkin"
    # A check-in inside the county raises nothing.
    assert _step(_detector(), _hourly(0, range(14), checkin_hours=(3,))).num_rows == 0


def test_checkin_due_comes_from_the_rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[profiles.ordinary]\ncheckin_due = 09:30:00\n[profiles.strict]\ninherits = "ordinary"\n')
    rules = load_rules(path)
    assert rules.profile("strict")["checkin_due"] == "09:30"
    det = _detector(rules)
    out = _step(det, _hourly(0, range(3))).to_pylist()       # 08:00 to 10:00 local, no check-in
    assert [_ms(r["onset_ts"]) for r in out] == [T0 + HOUR + 30 * 60_000]
    path.write_text('[profiles.ordinary]\ncheckin_due = "9:30"\n[profiles.strict]\n')
    with pytest.raises(InputError, match="HH:MM"):
        load_rules(path)


def _stream():
    """Three subjects over three days, fixes every 20 minutes, check-ins on some days, one from outside."""
    rng = np.random.default_rng(7)
    rows = []
    for code in range(3):
        start = T0 + code * 5 * HOUR
        for t in range(start, T0 + 72 * HOUR, 20 * 60_000):
            rows.append((code, t + int(rng.integers(0, 60_000)), False, sc.X0))
    for code, hour, x in [(0, 1, sc.X0), (0, 27, sc.X0 + 6000.0), (1, 30, sc.X0), (2, 50, sc.X0)]:
        rows.append((code, T0 + hour * HOUR + 1, True, x))
    return sorted(rows, key=lambda r: r[1])


_REFERENCE = None


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 650), max_size=8), one_by_one=st.booleans())
def test_any_batching_gives_the_same_checkin_alerts(cuts, one_by_one):
    global _REFERENCE
    stream = _stream()
    if _REFERENCE is None:
        _REFERENCE = fold_alerts(_step(_detector(), stream)).to_pylist()
        # s1's check-in from outside counts for day 2: s1 misses day 3, s2 days 1 and 3, s3 days 1 and 2.
        got = sorted((r["kind"], r["subject_id"], _ms(r["onset_ts"])) for r in _REFERENCE)
        assert got == sorted([("checkin_outside", "s1", T0 + 27 * HOUR + 1),
                              ("missed_checkin", "s1", DUE_2 + 24 * HOUR),
                              ("missed_checkin", "s2", DUE_1), ("missed_checkin", "s2", DUE_2 + 24 * HOUR),
                              ("missed_checkin", "s3", DUE_1), ("missed_checkin", "s3", DUE_2)])
    n = len(stream)
    bounds = list(range(n + 1)) if one_by_one else [0, *sorted({min(c, n) for c in cuts}), n]
    det = _detector()
    parts = [_step(det, stream[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    assert fold_alerts(pa.concat_tables(parts)).to_pylist() == _REFERENCE
