"""geomon.kernels.gaps against a plain reading of the rules, over whole streams and any batching."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels.gaps import (
    EVENT_DEGRADED,
    EVENT_LOST,
    EVENT_STUCK,
    N_GAP_STATE,
    REC_END,
    REC_KIND,
    REC_ONSET,
    REC_SUBJECT,
    gap_step,
)

LOST_MS, DEGRADED_MS, STUCK_COUNT, STUCK_MS = 600_000, 900_000, 5, 120_000


def reference(fixes, now_ms):
    """Final events ``{(subject, kind, onset): (confirm, end, detail)}`` of whole tracks, read from the rules."""
    events = {}
    for s, track in fixes.items():
        last = last_sat = None
        degraded_on = stuck_on = None
        run = []
        for t, sat, x, y in track:
            if last is not None and t - last > LOST_MS:
                events[(s, EVENT_LOST, last + LOST_MS)] = (last + LOST_MS, t, t - last)
            if last_sat is None:
                last_sat = t
            if sat:
                if degraded_on is not None:
                    events[(s, EVENT_DEGRADED, degraded_on)] = (events[(s, EVENT_DEGRADED, degraded_on)][0], t,
                                                              t - last_sat)
                    degraded_on = None
                last_sat = t
            elif degraded_on is None and t - last_sat > DEGRADED_MS:
                degraded_on = last_sat + DEGRADED_MS
                events[(s, EVENT_DEGRADED, degraded_on)] = (t, -1, t - last_sat)
            if sat:
                if run and (x, y) == run[0][1:]:
                    run.append((t, x, y))
                else:
                    if stuck_on is not None:
                        events[(s, EVENT_STUCK, stuck_on)] = (events[(s, EVENT_STUCK, stuck_on)][0], t, len(run))
                        stuck_on = None
                    run = [(t, x, y)]
                if stuck_on is None and len(run) >= STUCK_COUNT and t - run[0][0] >= STUCK_MS:
                    stuck_on = run[0][0]
                    events[(s, EVENT_STUCK, stuck_on)] = (t, -1, len(run))
            last = t
        if last is not None and now_ms > last + LOST_MS:
            events[(s, EVENT_LOST, last + LOST_MS)] = (last + LOST_MS, -1, -1)
    return events


@st.composite
def streams(draw):
    """A time-ordered stream of a few subjects: outages, cell-only spells, repeated coordinates."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_subjects = draw(st.integers(1, 4))
    rows = []
    for s in range(n_subjects):
        t = int(rng.integers(0, 600_000))
        x = y = 0.0
        for _ in range(int(rng.integers(0, 80))):
            step = rng.choice([15_000, 60_000, 600_000, 700_000, 1_200_000], p=[0.8, 0.08, 0.04, 0.04, 0.04])
            t += int(step) + int(rng.integers(-2_000, 2_000))
            sat = bool(rng.random() < (0.3 if rng.random() < 0.3 else 0.95))
            if rng.random() > 0.4:  # most fixes move a little; some repeat the last coordinates exactly
                x, y = round(float(rng.normal(0, 5)), 1), round(float(rng.normal(0, 5)), 1)
            rows.append((t, s, sat, x, y))
    rows.sort()
    cuts = sorted(draw(st.lists(st.integers(0, max(len(rows), 1)), max_size=6)))
    one_by_one = draw(st.booleans())
    return n_subjects, rows, ([(i, i + 1) for i in range(len(rows))] if one_by_one
                              else list(zip([0, *cuts], [*cuts, len(rows)])))


def run_batches(n_subjects, rows, bounds):
    state = np.zeros((n_subjects, N_GAP_STATE))
    due = np.full(n_subjects, np.inf)
    final = {}
    now = 0
    for lo, hi in bounds:
        part = rows[lo:hi]
        part = sorted(part, key=lambda r: (r[1], r[0]))
        subjects = np.array(sorted({r[1] for r in part}), np.int64)
        counts = [sum(1 for r in part if r[1] == s) for s in subjects]
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        n = len(part)
        if part:
            now = max(now, max(r[0] for r in part))
        t = np.array([r[0] for r in part], np.int64)
        rec = gap_step(offsets, subjects, t, np.array([r[2] for r in part], bool),
                       np.array([r[3] for r in part], float), np.array([r[4] for r in part], float),
                       np.full(n, LOST_MS, np.int64), np.full(n, DEGRADED_MS, np.int64),
                       np.full(n, STUCK_COUNT, np.int64), np.full(n, STUCK_MS, np.int64), now, state, due)
        for r in rec:
            key = (int(r[REC_SUBJECT]), int(r[REC_KIND]), int(r[REC_ONSET]))
            final[key] = tuple(int(v) for v in r[3:6])  # last record of an event wins, as in the store
    return final, now


@settings(max_examples=150, deadline=None)
@given(streams())
def test_any_batching_gives_the_rules_events(stream):
    n_subjects, rows, bounds = stream
    got, now = run_batches(n_subjects, rows, bounds)
    tracks = {s: [(r[0], r[2], r[3], r[4]) for r in rows if r[1] == s] for s in range(n_subjects)}
    assert got == reference(tracks, now)


def test_hand_made_outage_shielding_and_stuck_device():
    minute = 60_000
    # s0: fixes every 15 s, then 20 min of silence; s1: satellite, then only cell for 20 min;
    # s2: the same satellite coordinates 10 times, 15 s apart.
    rows = [(k * 15_000, 0, True, float(k), 0.0) for k in range(4)]
    rows += [(45_000 + 20 * minute, 0, True, 9.0, 0.0)]
    rows += [(0, 1, True, 0.0, 0.0)] + [(k * minute, 1, False, 100.0, 0.0) for k in range(1, 21)]
    rows += [(21 * minute, 1, True, 1.0, 1.0)]
    rows += [(k * 15_000, 2, True, 5.0, 5.0) for k in range(10)] + [(150_000, 2, True, 6.0, 5.0)]
    rows.sort()
    got, _ = run_batches(3, rows, [(0, len(rows))])
    assert got[(0, EVENT_LOST, 45_000 + LOST_MS)][1:] == (45_000 + 20 * minute, 20 * minute)
    # Degraded from 15 min after the last satellite fix, confirmed by the cell fix at 16 min.
    assert got[(1, EVENT_DEGRADED, DEGRADED_MS)] == (16 * minute, 21 * minute, 21 * minute)
    # Stuck: 5 fixes and 2 min after the first: the 9th fix (at 120 s) confirms; the move at 150 s ends it.
    assert got[(2, EVENT_STUCK, 0)] == (120_000, 150_000, 10)
    # s2 then falls silent: lost contact 10 min after its last fix, still open at the end of the stream.
    assert got[(2, EVENT_LOST, 150_000 + LOST_MS)] == (150_000 + LOST_MS, -1, -1)
    assert len(got) == 4


def test_silence_is_noticed_without_a_fix_from_the_silent_subject():
    state = np.zeros((2, N_GAP_STATE))
    due = np.full(2, np.inf)
    one = np.ones(1, np.int64)
    args = (one * LOST_MS, one * DEGRADED_MS, one * STUCK_COUNT, one * STUCK_MS)
    gap_step(np.array([0, 1]), np.array([0]), np.array([0]), np.ones(1, bool), np.zeros(1), np.zeros(1),
             *args, 0, state, due)
    rec = gap_step(np.array([0, 1]), np.array([1]), np.array([LOST_MS + 1]), np.ones(1, bool), np.zeros(1),
                   np.zeros(1), *args, LOST_MS + 1, state, due)
    assert [(r[REC_SUBJECT], r[REC_KIND], r[REC_ONSET], r[REC_END]) for r in rec] == [(0, EVENT_LOST, LOST_MS, -1)]
