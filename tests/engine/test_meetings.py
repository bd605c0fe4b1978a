"""Meetings on a stream (geomon/engine/meetings.py): any batching finds the stretches of one batch, which are the
encounter kernel's over the whole tracks; frequent contact and victim alerts live equal the batch ones."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geomon
from geomon.engine.meetings import MeetingWatch
from geomon.engine.monitor import Monitor, fold_alerts
from geomon.geo.crs import transverse_mercator
from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.kernels import encounters as K
from geomon.office.evaluate import score
from geomon.rules.load import default_rules
from geomon.run.meetings import meeting_alerts
from geomon.run.replay import time_ordered_batches
from geomon.sim.meetings import add_meetings, encounter_truth, frequent_contact_truth
from geomon.sim.scenarios import scenario

T0 = 1_762_000_000_000   # ms: times of today's size, so that rounding is as in operation
MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


def _watch(n: int, distance_m: float, max_gap_s: float) -> MeetingWatch:
    """Every person a subject, each judged for meeting every later one, stretches alerted from their first instant."""
    ids = [f"S{i}" for i in range(n)]
    orders = [{"subject_id": ids[a], "victim_id": ids[b], "warning_m": distance_m, "alert_m": distance_m}
              for a in range(n) for b in range(a + 1, n)]
    profile = default_rules().profile("ordinary")
    return MeetingWatch(ids, ["ordinary"] * n, ["o"] * n, [profile] * n, protections=orders,
                        frame=transverse_mercator(117.0), max_gap_s=max_gap_s, confirm_s=0.0)


@st.composite
def streams(draw):
    n = draw(st.integers(2, 4))
    rows = []
    for p in range(n):
        k = draw(st.integers(0, 10))
        times = sorted(draw(st.lists(st.integers(0, 400), min_size=k, max_size=k)))   # repeats: jumps in place
        for t in times:
            rows.append((p, T0 + 1000 * t + draw(st.sampled_from([0, 0, 1, 250, 999])),
                         draw(st.floats(-80, 80)), draw(st.floats(-80, 80))))
    rows.sort(key=lambda r: r[1])   # arrival order: event time
    distance_m = draw(st.floats(5.0, 60.0))
    max_gap_s = draw(st.sampled_from([20.0, 60.0, 120.0]))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(rows)), max_size=8))))
    # Watermarks: anywhere from a batch's newest fix up to the next batch's oldest (fixes never come after it).
    gaps = draw(st.lists(st.floats(0, 1), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    return n, rows, distance_m, max_gap_s, cuts, gaps


def _feed(watch: MeetingWatch, rows, bounds, gaps) -> list[dict]:
    events = []
    for (a, b), g in zip(zip(bounds[:-1], bounds[1:]), gaps):
        batch = sorted(rows[a:b], key=lambda r: (r[0], r[1]))
        code = np.array([r[0] for r in batch], np.int64)
        t = np.array([r[1] for r in batch], np.int64)
        x = np.array([r[2] for r in batch], float)
        y = np.array([r[3] for r in batch], float)
        newest = max((r[1] for r in rows[:b]), default=T0)
        nxt = rows[b][1] if b < len(rows) else newest + 10_000
        now = newest + int(g * (nxt - newest))
        events.append(watch.step(code, t, x, y, np.zeros(t.size), now))
    events.append(watch.step(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0),
                             T0 + 10 * HOUR))   # everyone long silent: every stretch ends
    table = pa.concat_tables(events).drop_columns(["emitted_at"])
    return sorted(table.to_pylist(), key=lambda r: (r["kind"], r["subject_id"], r["details"], r["onset_ts"]))


def _kernel_stretches(n, rows, distance_m, max_gap_s) -> list[tuple]:
    """The batch kernel over the whole tracks: (a, b, start ms, end ms, closest distance) of each merged stretch."""
    by = sorted(rows, key=lambda r: (r[0], r[1]))
    offsets = np.searchsorted([r[0] for r in by], np.arange(n + 1)).astype(np.int64)
    t = np.array([r[1] / 1000.0 for r in by])
    x = np.array([r[2] for r in by], float)
    y = np.array([r[3] for r in by], float)
    iv = K.encounter_intervals(offsets, t, x, y, distance_m, max_gap_s, 120.0, max(5 * distance_m, 150.0))
    iv = K.merge_intervals(iv[np.lexsort((iv[:, K.E_START], iv[:, K.E_B], iv[:, K.E_A]))])
    return sorted((f"S{int(r[0])}", f"S{int(r[1])}", round(r[2] * 1000), round(r[3] * 1000), round(r[4], 1))
                  for r in iv)


@settings(max_examples=150, deadline=None)
@given(streams())
def test_any_batching_finds_the_stretches_of_one_batch_and_of_the_kernel(case):
    n, rows, distance_m, max_gap_s, cuts, gaps = case
    whole = _feed(_watch(n, distance_m, max_gap_s), rows, [0, len(rows)], [gaps[0]])
    bounds = sorted({0, len(rows), *cuts})
    assert _feed(_watch(n, distance_m, max_gap_s), rows, bounds, gaps) == whole
    ended = sorted((r["subject_id"], json.loads(r["details"])["victim_id"], int(r["onset_ts"].timestamp() * 1000),
                    int(r["ended_ts"].timestamp() * 1000), json.loads(r["details"])["min_distance_m"])
                   for r in whole if r["kind"] == "victim_warning" and r["ended_ts"] is not None)
    assert ended == _kernel_stretches(n, rows, distance_m, max_gap_s)


def test_a_late_position_is_counted_not_searched_again():
    watch = _watch(2, 20.0, 120.0)
    step = lambda code, t, now: watch.step(np.array(code), np.array(t, np.int64), np.zeros(len(t)),  # noqa: E731
                                           np.zeros(len(t)), np.zeros(len(t)), now)
    step([0, 0, 1], [T0, T0 + 10_000, T0], T0 + 10_000)
    step([1], [T0 + 5_000], T0 + 200_000)     # after its last fix (T0): in time
    assert watch.n_late == 0
    step([1], [T0 + 90_000], T0 + 210_000)    # silent for over max_gap_s, so its frontier went to the watermark
    assert watch.n_late == 1


# ----------------------------------------------------------------- frequent contact and victims through the Monitor

CONCERN = ["S0011", "S0012"]   # tracked, not supervised


@pytest.fixture(scope="module")
def days():
    sc = scenario("open_sky", n_subjects=12, hours=80.0, seed=4)
    t = lambda day, hour: sc.start_ms + day * DAY + hour * HOUR   # noqa: E731
    plan = [*[("meet", "S0011", "S0001", t(d, 10), 20 * MIN) for d in range(3)],
            *[("meet", "S0011", "S0002", t(d, 12), 20 * MIN) for d in range(2)],
            *[("meet", "S0012", "S0003", t(d, 14), (2 if d == 1 else 20) * MIN) for d in range(3)],
            *[("near_miss", "S0012", "S0004", t(d, 16), 30 * MIN) for d in range(3)],
            *[("meet", "S0005", "S0006", t(d, 9), 20 * MIN) for d in range(3)],
            ("meet", "S0012", "S0007", t(2, 18), 10 * MIN)]     # S0012 is also S0007's victim
    fixes, true_x, true_y = add_meetings(sc, plan, seed=2)
    supervised = sc.subjects.filter(pc.invert(pc.is_in(sc.subjects.column("subject_id"), pa.array(CONCERN))))
    return sc, fixes, supervised, true_x, true_y


ORDERS = [{"subject_id": "S0007", "victim_id": "S0012", "warning_m": 300.0, "alert_m": 50.0}]


def _monitor_alerts(sc, fixes, supervised, batch_rows, **kw) -> pa.Table:
    m = Monitor(load_zones(sc.zones), load_subjects(supervised), detectors=(), **kw)
    out = [m.process(b) for b in time_ordered_batches(load_fixes(fixes), batch_rows)]
    assert m.n_read == m.n_accepted + m.n_quarantined == fixes.num_rows and m.n_quarantined == 0
    alerts = fold_alerts(pa.concat_tables(out))
    return alerts.filter(pc.is_in(alerts.column("kind"), pa.array(["frequent_contact", "victim_warning",
                                                                   "victim_breach"])))


@pytest.mark.parametrize("subject_pairs", [False, True])
def test_live_frequent_contact_is_exactly_the_labelled_and_the_batch_alerts(days, subject_pairs):
    sc, fixes, supervised, true_x, true_y = days
    rules = default_rules()
    levels = dict(zip(supervised.column("subject_id").to_pylist(), supervised.column("level").to_pylist()))
    truth = frequent_contact_truth(encounter_truth(sc, fixes, true_x, true_y, 30.0, 0.0), levels, rules, CONCERN,
                                   subject_pairs=subject_pairs)
    assert truth.num_rows >= 2
    live = _monitor_alerts(sc, fixes, supervised, 5_000, concern=CONCERN, subject_pairs=subject_pairs)
    live = live.filter(pc.equal(live.column("kind"), "frequent_contact"))
    (s,) = score(live, truth, slack_s=120)
    assert s.true_positives == s.n_truth == s.n_alerts, (s, live.to_pylist(), truth.to_pylist())
    batch = meeting_alerts(fixes, supervised, concern=CONCERN if not subject_pairs else None) if not subject_pairs \
        else geomon.frequent_contacts(geomon.fuse(fixes), supervised, CONCERN, rules, subject_pairs=True)

    def key(table):
        return sorted((r["subject_id"], json.loads(r["details"])["person_id"], r["onset_ts"].timestamp(),
                       r["ended_ts"].timestamp()) for r in table.to_pylist())

    # The same alerts (onsets and ends to a few ms: the batch works in another frame and time origin).
    for (s1, p1, on1, end1), (s2, p2, on2, end2) in zip(key(live), key(batch), strict=True):
        assert (s1, p1) == (s2, p2) and abs(on1 - on2) < 0.01 and abs(end1 - end2) < 0.01
    for r in live.to_pylist():
        d = json.loads(r["details"])
        assert d["event"] == "ended" and len(d["meetings"]) == d["meeting_count"]


def test_live_victim_alerts_equal_the_batch_and_any_batching_gives_them(days):
    sc, fixes, supervised, _, _ = days
    one = _monitor_alerts(sc, fixes, supervised, 10_000_000, concern=CONCERN, protections=ORDERS)
    batch = meeting_alerts(fixes, supervised, protections=ORDERS)
    victim = one.filter(pc.is_in(one.column("kind"), pa.array(["victim_warning", "victim_breach"])))
    assert sorted(victim.column("kind").to_pylist()) == ["victim_breach", "victim_warning"]
    for mine, theirs in zip(victim.sort_by("kind").to_pylist(), batch.sort_by("kind").to_pylist(), strict=True):
        assert mine["kind"] == theirs["kind"] and mine["subject_id"] == theirs["subject_id"] == "S0007"
        assert abs((mine["onset_ts"] - theirs["onset_ts"]).total_seconds()) < 0.01
        assert abs((mine["ended_ts"] - theirs["ended_ts"]).total_seconds()) < 0.01
    for rows in (997, 61):
        assert _monitor_alerts(sc, fixes, supervised, rows, concern=CONCERN, protections=ORDERS).equals(one)
