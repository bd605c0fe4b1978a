"""The encounter kernel against a brute-force reference: all pairs, positions sampled every 0.25 s."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels import encounters as K

STEP_S = 0.25


def _run(tracks, distance_m, max_gap_s, slice_s, cell_m, threads=1, z=0.0):
    """Merged stretches; a track is (t, x, y) or (t, x, y, sigma)."""
    offsets = np.r_[0, np.cumsum([len(tr[0]) for tr in tracks])].astype(np.int64)
    t = np.concatenate([np.asarray(tr[0], float) for tr in tracks]) if tracks else np.zeros(0)
    x = np.concatenate([np.asarray(tr[1], float) for tr in tracks]) if tracks else np.zeros(0)
    y = np.concatenate([np.asarray(tr[2], float) for tr in tracks]) if tracks else np.zeros(0)
    sig = np.concatenate([np.asarray(tr[3] if len(tr) > 3 else np.zeros(len(tr[0])), float) for tr in tracks]) \
        if tracks else np.zeros(0)
    iv = K.encounter_intervals(offsets, t, x, y, distance_m, max_gap_s, slice_s, cell_m, threads=threads, sigma=sig,
                               z=z)
    iv = iv[np.lexsort((iv[:, K.E_START], iv[:, K.E_B], iv[:, K.E_A]))]
    return K.merge_intervals(iv)


def _positions(track, grid, max_gap_s):  # also used by tests/tracks/test_encounters.py
    """Interpolated position of a track at each grid time (NaN where it is nowhere)."""
    t, x, y = (np.asarray(v, float) for v in track[:3])
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


def _sigma_at(track, grid, max_gap_s):
    """Sigma a track's position carries at each grid time: the larger of its segment's two fixes'."""
    t, sig = np.asarray(track[0], float), np.asarray(track[3], float)
    out = np.zeros(grid.size)
    for i in range(t.size - 1):
        if t[i + 1] - t[i] > max_gap_s or t[i + 1] == t[i]:
            continue
        out[(grid >= t[i]) & (grid <= t[i + 1])] = max(sig[i], sig[i + 1])
    return out


def reference(tracks, max_gap_s, t_end):
    """The sample times, and per pair (a < b) the distance between the two tracks at each (NaN: one is nowhere)."""
    grid = np.arange(-200.0, t_end + STEP_S, STEP_S)
    pos = [_positions(tr, grid, max_gap_s) for tr in tracks]
    return grid, {(a, b): np.hypot(pos[a][0] - pos[b][0], pos[a][1] - pos[b][1])
                  for a in range(len(tracks)) for b in range(a + 1, len(tracks))}


@st.composite
def scenes(draw):
    n_tracks = draw(st.integers(0, 5))
    tracks = []
    for _ in range(n_tracks):
        n = draw(st.integers(0, 8))
        t = np.sort(np.array(draw(st.lists(st.integers(-200, 400), min_size=n, max_size=n)), float))   # < 0 too
        # Moves of a few metres to hundreds: meetings, near misses and passes.
        x = np.array(draw(st.lists(st.floats(-120, 120), min_size=n, max_size=n)))
        y = np.array(draw(st.lists(st.floats(-120, 120), min_size=n, max_size=n)))
        sig = np.array(draw(st.lists(st.floats(0.0, 20.0), min_size=n, max_size=n)))
        tracks.append((t, x, y, sig))
    distance_m = draw(st.floats(5.0, 60.0))
    max_gap_s = draw(st.sampled_from([30.0, 120.0, 1e9]))
    slice_s = draw(st.sampled_from([7.0, 30.0, 60.0, 500.0]))
    cell_m = draw(st.sampled_from([1.0, 20.0, 100.0, 1000.0]))   # 1 m: most boxes are "big"
    z = draw(st.sampled_from([0.0, 1.645]))   # 1.645: within only when sure at 95 %
    return tracks, distance_m, max_gap_s, slice_s, cell_m, z


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_kernel_equals_brute_force_on_random_tracks(scene):
    tracks, distance_m, max_gap_s, slice_s, cell_m, z = scene
    got = _run(tracks, distance_m, max_gap_s, slice_s, cell_m, z=z)
    # Slices shared out over threads give the same stretches.
    np.testing.assert_array_equal(_run(tracks, distance_m, max_gap_s, slice_s, cell_m, threads=3, z=z), got)
    grid, dist = reference(tracks, max_gap_s, 400.0)
    for (a, b), d in dist.items():
        mine = got[(got[:, K.E_A] == a) & (got[:, K.E_B] == b)]
        inside = np.zeros(grid.size, bool)
        for r in mine:
            inside |= (grid >= r[K.E_START] - 1e-9) & (grid <= r[K.E_END] + 1e-9)
        # At every sample the kernel says within exactly when the two are within (by the margin of their sigmas
        # when z > 0); not decidable: a distance equal to the reach up to rounding, an instant at which a track
        # has several fixes (it jumps there) or, with a margin, any fix (its sigma changes there), and the edges
        # of the time both are present (an overlap of a single instant has no duration).
        reach = distance_m - z * np.hypot(_sigma_at(tracks[a], grid, max_gap_s), _sigma_at(tracks[b], grid, max_gap_s))
        jumps = np.zeros(grid.size, bool)
        for k in (a, b):
            t = np.asarray(tracks[k][0])
            jumps |= np.isin(grid, t if z > 0 else t[1:][np.diff(t) == 0])
        present = np.isfinite(d)
        edge = present & ~(np.r_[False, present[:-1]] & np.r_[present[1:], False])
        decidable = ~jumps & ~edge & ~(np.abs(d - reach) <= 1e-6)
        within = (d <= reach) & (reach > 0)   # NaN: nowhere, not within
        assert np.array_equal(inside[decidable], within[decidable]), (a, b, grid[decidable & (inside != within)])
        # The closest approach is exact: no sample in a stretch comes nearer, and it lies in the stretch.
        for r in mine:
            s = (grid >= r[K.E_START] - 1e-9) & (grid <= r[K.E_END] + 1e-9) & ~jumps & np.isfinite(d)
            if s.any():
                assert r[K.E_DMIN] <= d[s].min() + 1e-6
            assert r[K.E_START] - 1e-9 <= r[K.E_TMIN] <= r[K.E_END] + 1e-9 and r[K.E_DMIN] <= distance_m + 1e-6


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
