"""The encounter kernel against a brute-force reference: all pairs, positions sampled every 0.25 s."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels import encounters as K

STEP_S = 0.25


def _run(tracks, distance_m, max_gap_s, slice_s, cell_m, threads=1):
    offsets = np.r_[0, np.cumsum([len(tr[0]) for tr in tracks])].astype(np.int64)
    t = np.concatenate([np.asarray(tr[0], float) for tr in tracks]) if tracks else np.zeros(0)
    x = np.concatenate([np.asarray(tr[1], float) for tr in tracks]) if tracks else np.zeros(0)
    y = np.concatenate([np.asarray(tr[2], float) for tr in tracks]) if tracks else np.zeros(0)
    iv = K.encounter_intervals(offsets, t, x, y, distance_m, max_gap_s, slice_s, cell_m, threads=threads)
    iv = iv[np.lexsort((iv[:, K.E_START], iv[:, K.E_B], iv[:, K.E_A]))]
    return K.merge_intervals(iv)


def _positions(track, grid, max_gap_s):  # also used by tests/test_encounters.py
    """Interpolated position of a track at each grid time (NaN where it is nowhere)."""
    t, x, y = (np.asarray(v, float) for v in track)
    px = np.full(grid.size, np.nan)
    py = np.full(grid.size, np.nan)
    for i in range(t.size - 1):
        if t[i + 1] - t[i] > max_gap_s or t[i + 1] == t[i]:
            continue
        m = (grid >= t[i]) & (grid <= t[i + 1])
        f = (grid[m] - t[i]) / (t[i + 1] - t[i])
        px[m] = x[i] + f * (x[i + 1] - x[i])
        py[m] = y[i] + f * (y[i + 1] - y[i])
    return px, py


def reference(tracks, distance_m, max_gap_s, t_end):
    """Stretches within, per pair, from positions sampled every STEP_S: (a, b, start, end, min distance)."""
    grid = np.arange(0.0, t_end + STEP_S, STEP_S)
    pos = [_positions(tr, grid, max_gap_s) for tr in tracks]
    out = []
    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            d = np.hypot(pos[a][0] - pos[b][0], pos[a][1] - pos[b][1])
            within = d <= distance_m   # NaN: False
            edges = np.flatnonzero(np.diff(np.r_[0, within.astype(np.int8), 0]))
            for s, e in zip(edges[::2], edges[1::2]):
                out.append((a, b, grid[s], grid[e - 1], float(np.nanmin(d[s:e]))))
    return out


@st.composite
def scenes(draw):
    n_tracks = draw(st.integers(0, 5))
    tracks = []
    for _ in range(n_tracks):
        n = draw(st.integers(0, 8))
        t = np.sort(np.array(draw(st.lists(st.integers(0, 400), min_size=n, max_size=n)), float))
        # Moves of a few metres to hundreds: meetings, near misses and passes.
        x = np.array(draw(st.lists(st.floats(-120, 120), min_size=n, max_size=n)))
        y = np.array(draw(st.lists(st.floats(-120, 120), min_size=n, max_size=n)))
        tracks.append((t, x, y))
    distance_m = draw(st.floats(5.0, 60.0))
    max_gap_s = draw(st.sampled_from([30.0, 120.0, 1e9]))
    slice_s = draw(st.sampled_from([7.0, 30.0, 60.0, 500.0]))
    cell_m = draw(st.sampled_from([1.0, 20.0, 100.0, 1000.0]))   # 1 m: most boxes are "big"
    return tracks, distance_m, max_gap_s, slice_s, cell_m


def _speed(tracks):
    v = 0.0
    for t, x, y in tracks:
        dt = np.diff(t)
        ok = dt > 0
        if ok.any():
            v = max(v, float((np.hypot(np.diff(x), np.diff(y))[ok] / dt[ok]).max()))
    return v


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_kernel_equals_brute_force_on_random_tracks(scene):
    tracks, distance_m, max_gap_s, slice_s, cell_m = scene
    got = _run(tracks, distance_m, max_gap_s, slice_s, cell_m)
    # Slices shared out over threads give the same stretches.
    np.testing.assert_array_equal(_run(tracks, distance_m, max_gap_s, slice_s, cell_m, threads=3), got)
    ref = reference(tracks, distance_m, max_gap_s, 400.0)
    # Two tracks move apart at most 2 v: sampling can miss a stretch shorter than a step and shift ends by one.
    tol_m = 2.0 * _speed(tracks) * STEP_S + 1e-6
    long_got = [r for r in got if r[K.E_END] - r[K.E_START] > 3 * STEP_S]
    long_ref = [r for r in ref if r[3] - r[2] > 3 * STEP_S]
    for r in long_got:
        match = [q for q in ref if q[0] == r[K.E_A] and q[1] == r[K.E_B]
                 and abs(q[2] - r[K.E_START]) <= STEP_S + 1e-9 and abs(q[3] - r[K.E_END]) <= STEP_S + 1e-9]
        assert len(match) == 1, (r, ref)
        # The kernel's closest approach is exact: no sample comes nearer, none is much farther.
        assert r[K.E_DMIN] <= match[0][4] + 1e-6 and match[0][4] - r[K.E_DMIN] <= tol_m
        assert r[K.E_START] - 1e-9 <= r[K.E_TMIN] <= r[K.E_END] + 1e-9
    for q in long_ref:
        match = [r for r in got if r[K.E_A] == q[0] and r[K.E_B] == q[1]
                 and abs(q[2] - r[K.E_START]) <= STEP_S + 1e-9 and abs(q[3] - r[K.E_END]) <= STEP_S + 1e-9]
        assert len(match) == 1, (q, got)


def test_two_walkers_meeting_head_on():
    # A walks east along y = 0 from x = -100 at 1 m/s; B walks west from x = 100 along y = 10, fixes every 10 s.
    t = np.arange(0.0, 201.0, 10.0)
    a = (t, -100.0 + t, np.zeros(t.size))
    b = (t, 100.0 - t, np.full(t.size, 10.0))
    (r,) = _run([a, b], 30.0, 60.0, 60.0, 50.0)
    # |dx| = |200 - 2t| and dy = 10: within 30 m while |200 - 2t| <= sqrt(800), i.e. t in 100 -/+ sqrt(200).
    half = np.sqrt(200.0)
    assert np.isclose(r[K.E_START], 100.0 - half) and np.isclose(r[K.E_END], 100.0 + half)
    assert np.isclose(r[K.E_DMIN], 10.0) and np.isclose(r[K.E_TMIN], 100.0)
    assert np.isclose(r[K.E_X], 0.0) and np.isclose(r[K.E_Y], 5.0)


def test_a_gap_longer_than_max_gap_breaks_an_encounter():
    # Both stand still together, but B reports nothing between 100 s and 400 s.
    ta = np.arange(0.0, 501.0, 10.0)
    tb = np.r_[np.arange(0.0, 101.0, 10.0), np.arange(400.0, 501.0, 10.0)]
    a = (ta, np.zeros(ta.size), np.zeros(ta.size))
    b = (tb, np.full(tb.size, 5.0), np.zeros(tb.size))
    got = _run([a, b], 20.0, 120.0, 60.0, 50.0)
    assert [(r[K.E_START], r[K.E_END]) for r in got] == [(0.0, 100.0), (400.0, 500.0)]
    got = _run([a, b], 20.0, 600.0, 60.0, 50.0)   # the gap interpolated: one encounter
    assert [(r[K.E_START], r[K.E_END]) for r in got] == [(0.0, 500.0)]


def test_empty_and_single_fix_tracks():
    assert _run([], 10.0, 60.0, 60.0, 50.0).shape == (0, K.N_ENC)
    lone = (np.array([5.0]), np.array([0.0]), np.array([0.0]))
    assert _run([lone, lone], 10.0, 60.0, 60.0, 50.0).shape == (0, K.N_ENC)
