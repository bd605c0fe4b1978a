"""The causal stay walk (kernels/dwell.py) against its slow reference: stays, dwell and night records, any batching."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels.dwell import KIND_DWELL, KIND_NIGHT, KIND_STAY, N_DWELL_STATE, REC_FIX, dwell_step
from tests.dwell_reference import Fix, cut_stays, reference_records

_PAD = np.iinfo(np.int64).max
MIN = 60_000

# Steps between fixes (ms): same-time duplicates, seconds, minutes, and silences longer than any gap threshold.
STEPS = st.sampled_from([0, 0, 1_000, 30_000, 60_000, 60_000, 120_000, 300_000, 301_000, 900_000])
# Moves on a 10 m grid, so distances of exactly 30, 40 and 50 m (3-4-5) are common.
MOVES = st.tuples(st.integers(-4, 4), st.integers(-4, 4)).map(lambda d: (10.0 * d[0], 10.0 * d[1]))
THRESHOLDS = st.fixed_dictionaries({
    "radius_m": st.sampled_from([30.0, 50.0]),
    "dwell_ms": st.sampled_from([0, 2 * MIN, 5 * MIN]),
    "gap_ms": st.sampled_from([2 * MIN, 5 * MIN]),
    "stay_ms": st.sampled_from([0, 2 * MIN, 4 * MIN]),
    "night_ms": st.sampled_from([0, 3 * MIN, 6 * MIN]),
})


@st.composite
def tracks(draw):
    """Up to three subjects' tracks (some empty), fixes with places, away flags, NaN positions, two threshold sets."""
    sets = [draw(THRESHOLDS), draw(THRESHOLDS)]
    out = []
    for _ in range(draw(st.integers(0, 3))):
        t, x, y = draw(st.integers(0, 10 * MIN)), 0.0, 0.0
        track = []
        for _ in range(draw(st.integers(0, 40))):
            t += draw(STEPS)
            if draw(st.booleans()):
                dx, dy = draw(MOVES)
                x, y = x + dx, y + dy
            missing = draw(st.integers(0, 15)) == 0
            k = draw(st.integers(0, 1))
            track.append(Fix(t, np.nan if missing else x, y, place=draw(st.integers(-1, 1)), away=draw(st.booleans()),
                             pair=draw(st.integers(0, 1)), tset=k, **sets[k]))
        out.append(track)
    return out


def _windows(offset_ms: int, period_ms: int, length_ms: int, until_ms: int) -> list[tuple[int, int]]:
    return [(w, w + length_ms) for w in range(offset_ms, until_ms + period_ms, period_ms)]


def _padded(windows: list[list[tuple[int, int]]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(w) for w in windows))
    ws = np.full((len(windows), width), _PAD, np.int64)
    we = np.full((len(windows), width), _PAD, np.int64)
    for p, rows in enumerate(windows):
        for j, (a, b) in enumerate(rows):
            ws[p, j], we[p, j] = a, b
    return ws, we


def _stream(tracks_):
    """The fixes of every subject merged in time order (stable), as columns."""
    rows = sorted(((f.t, s, i) for s, track in enumerate(tracks_) for i, f in enumerate(track)))
    fixes = [tracks_[s][i] for _, s, i in rows]
    col = {name: np.array([getattr(f, name) for f in fixes]) for name in Fix.__dataclass_fields__}
    col["code"] = np.array([s for _, s, _ in rows], np.int64)
    return col


def _run(tracks_, windows, cuts, now_ms):
    """Kernel records for the stream fed in batches cut at ``cuts`` (watermark: the newest fix), then ``now_ms``."""
    col = _stream(tracks_)
    n = col["code"].size
    ws, we = _padded(windows)
    state = np.zeros((len(tracks_), N_DWELL_STATE))
    due = np.full(len(tracks_), np.inf)
    bounds = [0, *sorted({min(c, n) for c in cuts}), n]
    parts = []
    newest = -1
    for a, b in [*zip(bounds[:-1], bounds[1:]), (n, n)]:
        o = np.lexsort((col["t"][a:b], col["code"][a:b])) + a   # by subject, then time; stable
        code = col["code"][o]
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if o.size else np.zeros(0, np.int64)
        offsets = np.r_[starts, o.size].astype(np.int64)
        if o.size:
            newest = max(newest, int(col["t"][o].max()))
        now = now_ms if a == b == n else newest
        c = {k: v[o] for k, v in col.items()}
        rec_i, rec_f = dwell_step(offsets, code[starts], c["t"].astype(np.int64), c["x"].astype(float),
                                  c["y"].astype(float), c["place"].astype(np.int64), c["away"].astype(bool),
                                  c["radius_m"].astype(float), c["dwell_ms"].astype(np.int64),
                                  c["gap_ms"].astype(np.int64), c["stay_ms"].astype(np.int64),
                                  c["night_ms"].astype(np.int64), c["pair"].astype(np.int64),
                                  c["tset"].astype(np.int64), now, ws, we, state, due)
        parts += [(*np.delete(r, REC_FIX).tolist(), *f.tolist()) for r, f in zip(rec_i, rec_f)]
    return sorted(parts)


def _same(got, want):
    assert [r[:-2] for r in got] == [r[:-2] for r in want]
    assert np.allclose([r[-2:] for r in got], [r[-2:] for r in want], rtol=0, atol=1e-9) if got else not want


@settings(max_examples=300, deadline=None)
@given(tracks_=tracks(), offsets=st.tuples(st.integers(0, 10 * MIN), st.integers(0, 15 * MIN)),
       cuts=st.lists(st.integers(0, 120), max_size=6), one_by_one=st.booleans(), late=st.sampled_from([0, 10**9]))
def test_the_kernel_gives_the_reference_records_in_any_batching(tracks_, offsets, cuts, one_by_one, late):
    until = max((f.t for track in tracks_ for f in track), default=0)
    windows = [_windows(offsets[0], 10 * MIN, 5 * MIN, until), _windows(offsets[1], 15 * MIN, 8 * MIN, until)]
    now = until + late
    want = reference_records(tracks_, windows, now)
    n = sum(len(track) for track in tracks_)
    got = _run(tracks_, windows, range(n) if one_by_one else cuts, now)
    _same(got, want)


def test_a_hand_made_track_gives_each_kind_of_record():
    """Still 8 min (place 0, away), 60 m off for 3 min, then a 10-minute silence; night window 2-6 min."""
    f = dict(radius_m=50.0, dwell_ms=5 * MIN, gap_ms=5 * MIN, stay_ms=3 * MIN, night_ms=3 * MIN)
    track = ([Fix(k * MIN, 0.0, 0.0, place=0, away=True, **f) for k in range(9)]            # 0..8 min, at a place
             + [Fix(k * MIN, 60.0, 0.0, place=-1, away=True, **f) for k in range(9, 13)]     # 9..12 min, away
             + [Fix(23 * MIN, 60.0, 0.0, **f)])                                               # after 11 min of silence
    windows = [[(2 * MIN, 6 * MIN), (10 * MIN, 14 * MIN)]]
    assert [(a, b, e, c) for a, b, e, c in cut_stays(track, 23 * MIN)] == [(0, 9, 9 * MIN, 9), (9, 13, 12 * MIN, None),
                                                                            (13, 14, None, None)]
    got = [r[:9] for r in _run([track], windows, [5], 23 * MIN)]
    assert got == sorted([
        (0, KIND_DWELL, 0, 0, 5 * MIN, -1, 6, 0, 0), (0, KIND_DWELL, 0, 0, 5 * MIN, 9 * MIN, 9, 0, 0),
        (0, KIND_STAY, 0, 0, 9 * MIN, 9 * MIN, 9, 0, 0),
        # At a place of concern: no night stay there. Away from 9 min: 10-12 min in the window is 2 < 3 min.
        (0, KIND_STAY, -1, 9 * MIN, 12 * MIN, 12 * MIN, 4, 0, 9 * MIN),
    ])
    # With a 2-minute night threshold it is proved at 12 min, onset at the window start, ended by the silence.
    track2 = [Fix(fx.t, fx.x, fx.y, fx.place, fx.away, **{**f, "night_ms": 2 * MIN}) for fx in track]
    night = [r[:9] for r in _run([track2], windows, [], 23 * MIN) if r[1] == KIND_NIGHT]
    assert night == [(0, KIND_NIGHT, -1, 10 * MIN, 12 * MIN, -1, 4, 0, 9 * MIN),
                     (0, KIND_NIGHT, -1, 10 * MIN, 12 * MIN, 12 * MIN, 4, 0, 9 * MIN)]


def test_the_fix_that_leaves_a_stay_can_prove_a_night_stay():
    f = dict(radius_m=50.0, gap_ms=5 * MIN, stay_ms=MIN, night_ms=4 * MIN)
    track = [Fix(k * MIN, 0.0, 0.0, away=True, **f) for k in range(4)] + [Fix(4 * MIN, 100.0, 0.0, **f)]
    got = [r[:9] for r in _run([track], [[(0, 10 * MIN)]], [], 4 * MIN) if r[1] == KIND_NIGHT]
    assert got == [(0, KIND_NIGHT, -1, 0, 4 * MIN, -1, 4, 0, 0), (0, KIND_NIGHT, -1, 0, 4 * MIN, 4 * MIN, 4, 0, 0)]


def test_read_only_inputs_are_accepted():
    f = dict(radius_m=50.0, gap_ms=5 * MIN, stay_ms=MIN)
    track = [Fix(k * MIN, 0.0, 0.0, **f) for k in range(3)] + [Fix(3 * MIN, 100.0, 0.0, **f)]
    col = _stream([track])
    arrays = [np.array([0, 4], np.int64), np.array([0], np.int64), col["t"].astype(np.int64), col["x"], col["y"],
              col["place"].astype(np.int64), col["away"], col["radius_m"], col["dwell_ms"].astype(np.int64),
              col["gap_ms"].astype(np.int64), col["stay_ms"].astype(np.int64), col["night_ms"].astype(np.int64),
              col["pair"].astype(np.int64), col["tset"].astype(np.int64)]
    for a in arrays:
        a.setflags(write=False)
    ws, we = _padded([[(0, MIN)]])
    ws.setflags(write=False)
    we.setflags(write=False)
    rec_i, _ = dwell_step(*arrays, 3 * MIN, ws, we, np.zeros((1, N_DWELL_STATE)), np.full(1, np.inf))
    assert rec_i[:, 1].tolist() == [KIND_STAY]
