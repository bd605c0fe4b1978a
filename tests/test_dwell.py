"""Dwell alerts: a stay at a place of concern beyond dwell_s, causal and the same for any batching."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.dwell import DwellDetector, places_of_concern
from geomon.load_rules import default_rules
from geomon.monitor import fold_alerts
from geomon.periods import ThresholdSets
from geomon.zones import compile_zones
from tests import scenario as sc

T0, MIN = sc.T0_MS, 60_000
BAR = (sc.X0 + 2000.0, sc.Y0)        # a 100 m circle, forbidden, category "bar", for everyone
VICTIM = (sc.X0, sc.Y0 + 2000.0)     # a 150 m circle, forbidden, victim_home, for s1 only
ELSEWHERE = (sc.X0 - 1000.0, sc.Y0)
IDS, LEVELS, OFFICES = ["s1", "s2", "s3"], ["ordinary", "strict", "ordinary"], ["office-w"] * 3


def _detector():
    sets = ThresholdSets(default_rules(), LEVELS, IDS, OFFICES)
    return DwellDetector(sets, IDS, LEVELS, OFFICES, **places_of_concern(compile_zones(sc.zones(), sc.FRAME)))


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


def _summary(table):
    return sorted((r["subject_id"], r["zone_id"], _ms(r["onset_ts"]), _ms(r["confirmed_ts"]), _ms(r["ended_ts"]))
                  for r in fold_alerts(table).to_pylist())


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


def _stream():
    rows = (_stay(0, ELSEWHERE, T0, 5, 1) + _stay(0, BAR, T0 + 6 * MIN, 20, 2)
            + _stay(0, ELSEWHERE, T0 + 27 * MIN, 30, 3)
            + _stay(1, BAR, T0, 8, 4) + _stay(1, BAR, T0 + 40 * MIN, 12, 5)
            + _stay(2, VICTIM, T0, 20, 6) + _stay(2, BAR, T0 + 25 * MIN, 40, 7, step_s=45))
    return sorted(rows, key=lambda r: r[1])


_REFERENCE = None


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 330), max_size=8), one_by_one=st.booleans())
def test_any_batching_gives_the_same_dwell_alerts(cuts, one_by_one):
    global _REFERENCE
    stream = _stream()
    if _REFERENCE is None:
        _REFERENCE = fold_alerts(_step(_detector(), stream)).to_pylist()
        assert _summary(_step(_detector(), stream)) == [
            ("s1", "bar", T0 + 6 * MIN, T0 + 21 * MIN, T0 + 27 * MIN),
            # s2 (strict) falls silent after T0 + 52 min; s3's fixes carry the watermark past 10 more minutes.
            ("s2", "bar", T0 + 40 * MIN, T0 + 50 * MIN, T0 + 52 * MIN),
            ("s3", "bar", T0 + 25 * MIN, T0 + 25 * MIN + 900_000, None)]
    n = len(stream)
    bounds = list(range(n + 1)) if one_by_one else [0, *sorted({min(c, n) for c in cuts}), n]
    det = _detector()
    parts = [_step(det, stream[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    assert fold_alerts(pa.concat_tables(parts)).to_pylist() == _REFERENCE
