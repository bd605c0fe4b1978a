"""geomon.kernels.fusion: against a textbook reference, and on behaviours derived from first principles.

The reference (:mod:`tests.kernels.fusion_reference`) runs each motion as a
full 4-state filter with numpy matrices; the kernel, which keeps one
(position, velocity) covariance per motion for both axes, must agree with it
to 1e-8 on random ragged tracks. The behavioural tests simulate subjects
(still, walking, driving off) and hold the fused output to bars stated in
metres and sigmas, never to the kernel's own numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomon.kernels.fusion import (
    ACCEPTED,
    N_STATE,
    PREDICTED,
    REINITIALISED,
    REJECTED,
    fuse_step,
    fuse_tracks,
    fuse_tracks_history,
    new_state,
)
from geomon.kernels.smoother import rts_smooth
from tests.kernels.fusion_reference import EXTRAS, OUTPUTS, reference

T0_MS = 1_700_000_000_000


def make_tracks(seed, lengths, origin):
    """Walkers, drivers and still subjects (some driving off), at 1-200 s, with duplicate times, gaps over
    gap_s, NaN fixes and bad sigmas, outliers of 20-2000 m and relocations; empty and single-fix tracks.
    Some tracks mix in a second source of cell-like fixes (sigma 100-2000 m) among the satellite ones.
    Still subjects meet multipath runs of 20-90 m lasting 30 s - 5 min, and moves of 20-90 m that stay
    (the jump doubt's two cases); some devices report one steady accuracy, as most phones do."""
    rng = np.random.default_rng(seed)
    ts, xs, ys, sigmas = [], [], [], []
    for n in lengths:
        kind = rng.choice(5, n, p=[0.6, 0.05, 0.2, 0.1, 0.05])
        step_ms = np.choose(kind, [rng.integers(13_500, 16_500, n), np.zeros(n, np.int64),
                                   rng.integers(1_000, 5_000, n), rng.integers(60_000, 200_000, n),
                                   rng.integers(601_000, 1_200_000, n)])
        t = T0_MS + np.cumsum(step_ms)
        speed = np.full(n, rng.choice([0.0, 1.4, 12.0]))
        if n and rng.random() < 0.3:   # a still subject drives off
            speed[: rng.integers(0, n)] = 0.0
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.3, n))
        dt_s = np.diff(t, prepend=t[:1]) * 1e-3
        x = origin + np.cumsum(speed * np.cos(heading) * dt_s)
        y = origin + np.cumsum(speed * np.sin(heading) * dt_s)
        if n and rng.random() < 0.3:
            at = rng.integers(0, n)
            jump = rng.uniform(500, 3000)
            angle = rng.uniform(0, 2 * np.pi)
            x[at:] += jump * np.cos(angle)
            y[at:] += jump * np.sin(angle)
        still = np.flatnonzero(speed == 0.0)
        if still.size > 2 and rng.random() < 0.6:
            # While still: a multipath run (an offset that ends) or a move (an offset that stays).
            at = rng.choice(still[1:])
            lasting_ms = rng.uniform(30_000, 300_000) if rng.random() < 0.6 else np.inf
            run = (t >= t[at]) & (t < t[at] + lasting_ms) & (speed == 0.0)
            offset, angle = rng.uniform(20, 90), rng.uniform(0, 2 * np.pi)
            x[run] += offset * np.cos(angle)
            y[run] += offset * np.sin(angle)
        if rng.random() < 0.4:
            sigma = np.full(n, rng.choice([1.0, 2.5, 4.7]))
        else:
            sigma = rng.choice([0.3, 2.5, 4.7, 15.0, 100.0, 500.0], n, p=[0.2, 0.35, 0.2, 0.1, 0.1, 0.05])
        true_sigma = sigma * rng.choice([1.0, 3.0])   # some devices understate their noise
        if n and rng.random() < 0.4:
            # A second source of cell-like fixes (100-2000 m, honest) among the satellite ones: the noise
            # scale learns from the satellite fixes only, and a tower's fix re-centres the moving motions.
            tower = rng.random(n) < rng.uniform(0.2, 0.7)
            sigma[tower] = true_sigma[tower] = np.exp(rng.uniform(np.log(100.0), np.log(2000.0), tower.sum()))
        x = x + rng.normal(size=n) * true_sigma
        y = y + rng.normal(size=n) * true_sigma
        outlier = rng.random(n) < 0.1
        x[outlier] += rng.uniform(20, 2000, outlier.sum()) * rng.choice([-1, 1], outlier.sum())
        x[rng.random(n) < 0.05] = np.nan
        y[rng.random(n) < 0.03] = np.nan
        sigma[rng.random(n) < 0.02] = rng.choice([0.0, np.nan, np.inf])
        ts.append(t)
        xs.append(x)
        ys.append(y)
        sigmas.append(sigma)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return offsets, cat(ts, np.int64), cat(xs, np.float64), cat(ys, np.float64), cat(sigmas, np.float64)


@st.composite
def ragged_tracks(draw, max_tracks=5, max_len=40):
    """:func:`make_tracks` of a drawn seed, track lengths and origin."""
    seed = draw(st.integers(0, 2**32 - 1))
    lengths = draw(st.lists(st.integers(0, max_len), min_size=0, max_size=max_tracks))
    origin = draw(st.sampled_from([0.0, 5.0e5, 4.2e6]))
    return make_tracks(seed, lengths, origin)


PARAMETER_VARIANTS = [
    {},
    {"gap_s": 60.0, "outlier_p": 0.05, "outlier_sigma_m": 10.0, "gross_p": 0.0},
    # Learn fast: the noise scale and the shared-error inflation act within a short track.
    {"noise_prior_n": 0.5, "noise_memory_s": 120.0, "noise_scale_min": 0.5, "noise_scale_max": 4.0,
     "corr_prior_n": 2.0, "corr_memory_s": 300.0, "slow_mean_s": 60.0, "bias_tau_s": 20.0},
    {"init_still_p": 0.1, "init_steady_p": 0.1, "dwell_still_s": 60.0, "dwell_manoeuvre_s": 5.0,
     "v_start_mps": 0.5, "outlier_reach_m": 20.0, "max_speed_mps": 20.0, "gross_p": 0.05,
     "gross_reach_m": 300.0, "still_to_manoeuvre_p": 0.9, "manoeuvre_to_still_p": 0.0},
    # The jump doubt: slower to lift, over a wider band.
    {"run_prior_odds": 20.0, "run_s": 30.0, "jump_min_m": 5.0, "outlier_reach_m": 60.0},
]


def assert_close(actual, expected, what, rtol=1e-8, atol=1e-7):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(ragged_tracks(), st.sampled_from(PARAMETER_VARIANTS))
def test_matches_textbook_reference_on_random_tracks(tracks, params):
    offsets, t_ms, x_m, y_m, sigma_m = tracks
    expected, expected_status, expected_pred, expected_filt, expected_smoothed = reference(
        offsets, t_ms, x_m, y_m, sigma_m, **params)
    got = fuse_step(offsets, t_ms, x_m, y_m, sigma_m, new_state(offsets.size - 1), **params)
    np.testing.assert_array_equal(got[7], expected_status)
    # Positions about the track's origin (coordinates reach 4.2e6 m, where one ulp is 1e-9 m).
    origin = np.nanmax(np.abs(np.r_[x_m, y_m, 0.0])) if x_m.size else 0.0
    for name, values in zip(OUTPUTS, got[:7]):
        # A mixture's spread is formed from differences of coordinates, each rounded by an ulp of the origin:
        # positions and covariances alike get 1e-13 of it (as the history's columns do below); a cross
        # covariance near 0 between variances of a cell's 2 km fixes at 4.2e6 m rounds by 1.2e-7.
        atol = 1e-7 + (1e-13 * origin if name not in ("vx", "vy") else 0.0)
        # A covariance is what an update leaves of a prior up to 1e10 times larger (a long prediction, a
        # 500 m fix before a 0.3 m one): the kernel's P - K P and the reference's (I - K H) P round apart
        # by up to about 1e-7 (measured worst 7e-8 over 2,100 draws).
        rtol = 3e-7 if name in ("var_x", "var_y", "cov_xy") else 1e-8
        assert_close(values, expected[name], name, rtol=rtol, atol=atol)
    for name, values in zip(EXTRAS, got[8:]):
        # The NIS divides by such a prior's variance plus r: the same rounding.
        assert_close(values, expected[name], name, rtol=3e-7 if name == "nis" else 1e-8)
    whole = fuse_tracks(offsets, t_ms, x_m, y_m, sigma_m, **params)
    for a, b in zip(whole, got):
        np.testing.assert_array_equal(a, b)
    status, link, pred, filt = fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma_m, **params)
    np.testing.assert_array_equal(status, expected_status)
    # The history's covariance columns round as the reported covariance does (above).
    rtol = np.array([1e-8] * 4 + [3e-7] * 3)
    for name, values, wanted in (("pred", pred, expected_pred), ("filt", filt, expected_filt)):
        assert_within(values, wanted, rtol * np.abs(wanted) + 1e-7 + 1e-13 * origin, name)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(ragged_tracks(), st.sampled_from(PARAMETER_VARIANTS))
def test_smoother_matches_textbook_rts(tracks, params):
    """rts_smooth over fuse_tracks_history: the 4x4 textbook RTS (position-only where the velocity is known)."""
    offsets, t_ms, x_m, y_m, sigma_m = tracks
    *_, expected_smoothed = reference(offsets, t_ms, x_m, y_m, sigma_m, **params)
    status, link, pred, filt = fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma_m, **params)
    smoothed = rts_smooth(offsets, t_ms, link, pred, filt)
    # The smoother inverts predicted covariances that can be nearly singular (position and velocity
    # almost fully correlated after a long prediction): 1e-8 relative or 1e-5 of the filtered spread.
    origin = np.nanmax(np.abs(np.r_[x_m, y_m, 0.0])) if x_m.size else 0.0
    sd = np.sqrt(np.abs(filt[:, [4, 4, 6, 6]]))
    bound = 1e-8 * np.abs(expected_smoothed[:, :4]) + 1e-5 * sd + 1e-13 * origin
    assert_within(smoothed[:, :4], expected_smoothed[:, :4], bound, "smoothed state")
    scale = np.abs(filt[:, 4:]).sum(axis=1, keepdims=True)
    # Where the gain overshoots (see the positive semi-definite test) it amplifies rounding: 1e-7 relative.
    assert_within(smoothed[:, 4:], expected_smoothed[:, 4:], 1e-7 * np.abs(expected_smoothed[:, 4:]) + 1e-5 * scale,
                  "smoothed covariance")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(ragged_tracks(), st.sampled_from(PARAMETER_VARIANTS))
def test_smoothed_covariance_is_positive_semidefinite(tracks, params):
    offsets, t_ms, x_m, y_m, sigma_m = tracks
    status, link, pred, filt = fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma_m, **params)
    smoothed = rts_smooth(offsets, t_ms, link, pred, filt)
    a, b, c = smoothed[:, 4], smoothed[:, 5], smoothed[:, 6]
    started = ~np.isnan(filt[:, 0])
    assert (a[started] > 0).all() and (c[started] >= 0).all() and (a * c - b * b)[started].min(initial=0) >= -1e-9 * (
        a * c)[started].max(initial=0), "smoothed covariance not positive semi-definite"


def _draws_changed_by(**params):
    """Of 100 random draws, how many fused outputs change when ``params`` switch a rule off."""
    rng = np.random.default_rng(2)
    changed = 0
    for _ in range(100):
        tracks = make_tracks(int(rng.integers(2**32)), list(rng.integers(0, 41, rng.integers(1, 6))), 0.0)
        changed += not np.array_equal(fuse_tracks(*tracks)[0], fuse_tracks(*tracks, **params)[0])
    return changed


def test_random_tracks_exercise_the_jump_doubt():
    """The generator's still subjects meet runs and moves often enough that the reference checks the doubt."""
    assert _draws_changed_by(run_prior_odds=0.0) >= 25


def test_random_tracks_exercise_the_tower_rules():
    """The generator's cell-like fixes make the learnt scale and the re-centring matter (the reference checks them)."""
    assert _draws_changed_by(noise_learn_below_m=1e9) >= 25


def assert_within(actual, expected, tolerance, what):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
    bad = np.abs(actual - expected) > tolerance
    assert not bad.any(), f"{what}: {actual[bad][:3]} != {expected[bad][:3]}"


# --- the stream and the interface -----------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(ragged_tracks(), st.sampled_from(PARAMETER_VARIANTS), st.lists(st.floats(0.0, 1.0), max_size=6))
def test_batches_carrying_state_equal_one_run(tracks, params, cuts):
    """Any cut of each track into consecutive batches (one fix at a time included) gives the same outputs."""
    offsets, t_ms, x_m, y_m, sigma_m = tracks
    n_tracks = offsets.size - 1
    whole = fuse_step(offsets, t_ms, x_m, y_m, sigma_m, new_state(n_tracks), **params)
    lengths = np.diff(offsets)
    # Batch b holds, for every track, its fixes between fractions cuts[b-1] and cuts[b] of its length.
    edges = None if len(cuts) == 6 else np.unique(np.r_[0.0, sorted(cuts), 1.0])   # None: one fix at a time
    state = new_state(n_tracks)
    got = [np.full_like(w, -1) for w in whole]
    steps = max(lengths.max(initial=0), 1) if edges is None else len(edges) - 1
    for b in range(steps):
        if edges is None:
            lo, hi = np.minimum(b, lengths), np.minimum(b + 1, lengths)
        else:
            lo, hi = np.floor(edges[b] * lengths).astype(int), np.floor(edges[b + 1] * lengths).astype(int)
            if b == steps - 1:
                hi = lengths
        idx = np.concatenate([offsets[s] + np.arange(lo[s], hi[s]) for s in range(n_tracks)] or [np.zeros(0, int)])
        part_offsets = np.r_[0, np.cumsum(hi - lo)]
        out = fuse_step(part_offsets, t_ms[idx], x_m[idx], y_m[idx], sigma_m[idx], state, **params)
        for g, o in zip(got, out):
            g[idx] = o
    for name, a, b in zip(OUTPUTS + ("status",) + EXTRAS, got, whole):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_empty_and_single_fix_tracks():
    offsets = np.array([0, 0, 1, 1, 3])
    t_ms = np.array([0, 0, 15_000])
    x_m = np.array([5.0, np.nan, 7.0])
    y_m = np.array([1.0, 2.0, 3.0])
    x, y, var_x, var_y, cov_xy, vx, vy, status = fuse_tracks(offsets, t_ms, x_m, y_m, np.full(3, 2.0))
    assert status.tolist() == [REINITIALISED, PREDICTED, REINITIALISED]
    # A first fix is all the track knows: its place, its noise, no velocity.
    assert (x[0], y[0], vx[0], vy[0], cov_xy[0]) == (5.0, 1.0, 0.0, 0.0, 0.0)
    assert var_x[0] == pytest.approx(4.0, rel=1e-12) and var_y[0] == pytest.approx(4.0, rel=1e-12)
    assert np.isnan([x[1], y[1], var_x[1], var_y[1], cov_xy[1], vx[1], vy[1]]).all()
    empty = fuse_tracks(np.array([0]), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    assert all(a.size == 0 for a in empty)
    no_tracks = fuse_step(np.array([0]), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0), new_state(0))
    assert all(a.size == 0 for a in no_tracks)


def test_read_only_inputs_and_int32_offsets():
    offsets, t_ms, x_m, y_m, sigma_m = (np.array([0, 3], np.int32), np.array([0, 15_000, 30_000]),
                                         np.array([0.0, 20.0, 41.0]), np.zeros(3), np.full(3, 2.5))
    for a in (offsets, t_ms, x_m, y_m, sigma_m):
        a.setflags(write=False)
    got = fuse_tracks(offsets, t_ms, x_m, y_m, sigma_m)
    expected = fuse_tracks(offsets.astype(np.int64), t_ms.copy(), x_m.copy(), y_m.copy(), sigma_m.copy())
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    status, link, pred, filt = fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma_m)
    for a in (link, pred, filt):
        a.setflags(write=False)
    assert np.isfinite(rts_smooth(offsets, t_ms, link, pred, filt)).all()


@pytest.mark.parametrize(
    "offsets, n, columns, params, error",
    [
        ([0, 2], 3, None, {}, ValueError),
        ([1, 3], 3, None, {}, ValueError),
        ([0, 2, 1, 3], 3, None, {}, ValueError),
        ([[0, 3]], 3, None, {}, ValueError),
        ([0, 3], 3, (3, 2, 3), {}, ValueError),
        ([0, 3], 3, (3, 3, (3, 1)), {}, ValueError),
        ([0, 3], 3, None, {"gate": 9.0}, TypeError),
        ([0, 3], 3, None, {"reinit_k": 3}, TypeError),
    ],
)
def test_rejects_bad_inputs(offsets, n, columns, params, error):
    shapes = columns or (n, n, n)
    x_m, y_m, sigma_m = (np.ones(s) for s in shapes)
    with pytest.raises(error):
        fuse_tracks(np.array(offsets), np.arange(n) * 1000, x_m, y_m, sigma_m, **params)


def test_state_shape_is_checked():
    one = (np.array([0, 1]), np.zeros(1, np.int64), np.zeros(1), np.zeros(1), np.ones(1))
    for state in (np.zeros((2, N_STATE)), np.zeros((1, N_STATE - 1)), np.zeros((1, N_STATE), np.float32),
                  np.zeros((1, 2 * N_STATE))[:, ::2]):
        with pytest.raises(ValueError, match="state"):
            fuse_step(*one, state)
    fuse_step(*one, new_state(1))


# --- behaviour ----------------------------------------------------------------------------


def _straight(rng, n, interval_s, speed_mps, sigma_m):
    """A subject at constant velocity, a fix every interval_s (jittered by 10 %): t, truth and fixes."""
    t_ms = T0_MS + np.cumsum(rng.integers(int(900 * interval_s), int(1100 * interval_s) + 1, n))
    heading = rng.uniform(0, 2 * np.pi)
    along = speed_mps * (t_ms - t_ms[0]) * 1e-3
    tx, ty = along * np.cos(heading), along * np.sin(heading)
    return t_ms, tx, ty, tx + rng.normal(size=n) * sigma_m, ty + rng.normal(size=n) * sigma_m


def test_smoothing_beats_filtering_on_a_straight_walk():
    rng = np.random.default_rng(11)
    parts = [_straight(rng, 100, 15.0, 1.4, 2.5) for _ in range(30)]
    t_ms, tx, ty, x_m, y_m = (np.concatenate(p) for p in zip(*parts))
    offsets = np.arange(31) * 100
    sigma = np.full(t_ms.size, 2.5)
    x, y = fuse_tracks(offsets, t_ms, x_m, y_m, sigma)[:2]
    status, link, pred, filt = fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma)
    smoothed = rts_smooth(offsets, t_ms, link, pred, filt)
    filtered_error = np.hypot(x - tx, y - ty).mean()
    smoothed_error = np.hypot(smoothed[:, 0] - tx, smoothed[:, 1] - ty).mean()
    raw_error = np.hypot(x_m - tx, y_m - ty).mean()
    assert smoothed_error < 0.8 * filtered_error < 0.8 * raw_error


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 21: the jump doubt hedges a walker (about 0.65-0.7 m/s, sigma 3-4.6 m) setting off after the restart: "
    "the anchor is set where the still motion holds the lagging track, the catch-up reads as a jump faster than a "
    "stroll with two fixes together, and the output is pulled back to the anchor for a fix or two: worst 7.4 "
    "sigma, 3 misses in 2000 draws (11 before the anchor moved with a walker), bar 6"))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.3, 5.0), st.one_of(st.just(0.0), st.floats(0.5, 1.8)),
       st.floats(601.0, 3600.0))
@example(2884311240, 4.570730116617442, 0.6832302478249819, 3069.1502747088625)   # a measured miss (7.4 sigma)
def test_relocation_after_a_gap_over_gap_s_reinitialises(seed, sigma_m, speed_mps, gap_s):
    """Parked, then found 2 km away after more than gap_s, still or walking."""
    rng = np.random.default_rng(seed)
    t1, tx1, ty1, x1, y1 = _straight(rng, 20, 15.0, 0.0, sigma_m)
    t2, tx2, ty2, x2, y2 = _straight(rng, 20, 15.0, speed_mps, sigma_m)
    angle = rng.uniform(0, 2 * np.pi)
    shift = 2000.0 * np.array([np.cos(angle), np.sin(angle)])
    t_ms = np.concatenate([t1, t1[-1] + int(gap_s * 1000) + t2 - t2[0]])
    tx, ty = np.concatenate([tx1, tx2 + shift[0]]), np.concatenate([ty1, ty2 + shift[1]])
    x_m, y_m = np.concatenate([x1, x2 + shift[0]]), np.concatenate([y1, y2 + shift[1]])
    x, y, var_x, var_y, cov_xy, vx, vy, status, _, _, noise_m = fuse_step(
        np.array([0, 40]), t_ms, x_m, y_m, np.full(40, sigma_m), new_state(1))
    assert status[20] == REINITIALISED
    # The restart knows the fix and its noise, nothing else: its variance is the noise learnt, plus, where that
    # is below what the fix reports, at most the rest of the reported one (error the scatter did not show).
    assert np.hypot(x[20] - x_m[20], y[20] - y_m[20]) < 1e-9 * 2000.0
    np.testing.assert_allclose([var_x[20] - var_y[20], cov_xy[20], vx[20], vy[20]], 0.0, atol=1e-12)
    learnt, reported = noise_m[20] ** 2, sigma_m**2
    assert learnt * (1 - 1e-9) <= var_x[20] <= max(learnt, reported) * (1 + 1e-9)
    assert (status[21:] == ACCEPTED).mean() >= 0.9
    # Then it follows the new place: a raw fix's median radial error is 1.18 sigma; the median of 20
    # filtered ones, correlated, spreads more; a restart with no velocity may lag by a few sigma.
    error = np.hypot(x[20:] - tx[20:], y[20:] - ty[20:])
    assert np.median(error) < 2.0 * sigma_m and error.max() < 6.0 * sigma_m


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 21: worst 4.35 sigma over 2000 draws (4.6 % over 3), bar 3; shown as missed in benchmarks/targets.toml"))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(2.0, 5.0), st.floats(10.0, 15.0), st.floats(1.5, 3.0),
       st.floats(0.0, 1.0, exclude_max=True))
@example(238, 3.0, 12.0, 2.0, 0.5)   # a measured miss (4.1 sigma), so the outcome cannot hang on the search
def test_departure_is_followed_within_two_fixes(seed, sigma_m, speed_mps, accel_mps2, phase):
    """Still 10 min, then a car drives off straight: from the second moving fix on, for 5 min, the fused
    error stays under 3 sigma (issue 21's bar)."""
    rng = np.random.default_rng(seed)
    interval_s = 15.0
    n = int((600 + 420) / interval_s)
    t_s = np.arange(n) * interval_s
    depart_s = 600.0 + phase * interval_s
    tau = np.maximum(t_s - depart_s, 0.0)
    t_full = speed_mps / accel_mps2
    along = np.where(tau < t_full, 0.5 * accel_mps2 * tau**2, 0.5 * speed_mps * t_full + speed_mps * (tau - t_full))
    heading = rng.uniform(0, 2 * np.pi)
    tx, ty = along * np.cos(heading), along * np.sin(heading)
    x_m, y_m = tx + rng.normal(size=n) * sigma_m, ty + rng.normal(size=n) * sigma_m
    t_ms = T0_MS + (t_s * 1000).astype(np.int64)
    x, y = fuse_tracks(np.array([0, n]), t_ms, x_m, y_m, np.full(n, sigma_m))[:2]
    second = np.flatnonzero(t_s > depart_s)[1]
    window = (t_s >= t_s[second]) & (t_s <= t_s[second] + 300.0)
    error = np.hypot(x - tx, y - ty)[window]
    assert error.max() < 3.0 * sigma_m, f"worst {error.max() / sigma_m:.2f} sigma at fix {np.argmax(error)}"


def _across_a_line(seed, sigma_m, n_offset, inside_m=12.0, offset_m=40.0, interval_s=15.0):
    """A still subject inside_m inside a straight line (random orientation) for 10 min, then n_offset fixes
    offset_m across it, then 5 min back in place. Returns the fused probability of being across the line
    (the normal CDF of the signed distance over the fused sigma along the line's normal) and the fix times."""
    rng = np.random.default_rng(seed)
    n_before = int(600 / interval_s)
    n = n_before + n_offset + int(300 / interval_s)
    t_s = np.arange(n) * interval_s
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])   # the line through the origin, across is positive
    x_m = -inside_m * normal[0] + rng.normal(size=n) * sigma_m
    y_m = -inside_m * normal[1] + rng.normal(size=n) * sigma_m
    x_m[n_before:n_before + n_offset] += offset_m * normal[0]
    y_m[n_before:n_before + n_offset] += offset_m * normal[1]
    x, y, var_x, var_y, cov_xy, *_ = fuse_tracks(np.array([0, n]), T0_MS + (t_s * 1000).astype(np.int64),
                                                  x_m, y_m, np.full(n, sigma_m))
    signed_m = x * normal[0] + y * normal[1]
    sd_m = np.sqrt(normal[0] ** 2 * var_x + 2 * normal[0] * normal[1] * cov_xy + normal[1] ** 2 * var_y)
    p_across = np.array([0.5 * math.erfc(-z / math.sqrt(2.0)) for z in signed_m / sd_m])
    return p_across[n_before:n_before + n_offset], t_s[n_before:n_before + n_offset] - t_s[n_before]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 21: the doubt needs two fixes together, so the first fix across is the filter's alone (up to 0.99 "
    "across), and where the second is not together with it (a step over 3 sqrt(2 r)) the clean fix moves the "
    "anchor across and the doubt is never raised: probability across >= 0.95 on some fix in 4.3 % of 600 draws "
    "(sigma 2-5 m; 4.5 % before a walker's two fixes could differ by the noise of two fixes; 3.2 % before the "
    "noise scale's estimate was clipped, which learns a smaller noise and so "
    "finds two fixes together less often; 9.7 % before the doubt stopped reading the jump's own velocity), up "
    "to 1.0"))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(2.0, 5.0))
@example(1672080355, 4.894282292471198)   # a measured miss, so the outcome cannot hang on the search
def test_a_short_offset_across_a_line_stays_in_doubt(seed, sigma_m):
    """Six fixes (75 s) 40 m across a line from a subject still 12 m inside it: a multipath run as likely as a
    move (a run ends after about a minute), so the fused output never puts the subject across at 95 %."""
    p_across, _ = _across_a_line(seed, sigma_m, 6)
    assert p_across.max() < 0.95, f"p across {p_across.round(3)}"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 21: as for the short offset, the doubt is never raised in some draws: the probability across "
    "settles over 0.95 before 3 min in 4.5 % of 600 draws (sigma 2-5 m; 3.0 % before the noise scale's estimate "
    "was clipped, 6.8 % before that), as early as the first fix"))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(2.0, 5.0))
@example(2624628442, 3.8002115763470066)   # a measured miss, so the outcome cannot hang on the search
def test_an_offset_that_stays_is_believed_within_minutes(seed, sigma_m):
    """The same offset lasting 20 min is a move: a multipath run of mean one minute has ended by 3 min
    (odds of 2.5 times exp(-3) left), so from some fix 3-12 min after the jump the probability across exceeds
    0.95 and stays over it."""
    p_across, t_s = _across_a_line(seed, sigma_m, 80)
    doubted = np.flatnonzero(p_across <= 0.95)
    settled_s = t_s[doubted[-1] + 1] if doubted.size and doubted[-1] + 1 < t_s.size else (0.0 if not doubted.size
                                                                                          else np.inf)
    assert 180.0 <= settled_s <= 720.0, f"settled across at {settled_s / 60:.2f} min"


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(2.0, 5.0), st.floats(10.0, 15.0), st.floats(1.5, 3.0))
def test_a_departing_car_is_never_hedged(seed, sigma_m, speed_mps, accel_mps2):
    """Still 10 min, then off at 10-15 m/s: the track moves on, so the output is the filter's on every fix
    (the same as with the doubt switched off)."""
    rng = np.random.default_rng(seed)
    n = int(1020 / 15.0)
    t_s = np.arange(n) * 15.0
    tau = np.maximum(t_s - 600.0, 0.0)
    t_full = speed_mps / accel_mps2
    along = np.where(tau < t_full, 0.5 * accel_mps2 * tau**2, 0.5 * speed_mps * t_full + speed_mps * (tau - t_full))
    heading = rng.uniform(0, 2 * np.pi)
    x_m = along * np.cos(heading) + rng.normal(size=n) * sigma_m
    y_m = along * np.sin(heading) + rng.normal(size=n) * sigma_m
    fixes = (np.array([0, n]), T0_MS + (t_s * 1000).astype(np.int64), x_m, y_m, np.full(n, sigma_m))
    for a, b in zip(fuse_tracks(*fixes), fuse_tracks(*fixes, run_prior_odds=0.0)):
        np.testing.assert_array_equal(a, b)


def _still(rng, n, interval_s, sigma_m):
    t_ms = T0_MS + np.arange(n) * int(interval_s * 1000)
    return t_ms, rng.normal(size=n) * sigma_m, rng.normal(size=n) * sigma_m


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 21: 5 misses in 2000 draws, all at sigma 3.5-4.9 m (not rejected, the output moved 3 m or more, or a "
    "trace of a sigma or more left); shown as missed in benchmarks/targets.toml"))
# (One failure reported, not hypothesis's group of distinct ones, so that the strict xfail sees an AssertionError.)
@settings(max_examples=100, deadline=None, derandomize=True, database=None, report_multiple_bugs=False)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 5.0), st.floats(30.0, 60.0), st.integers(30, 120))
# Measured misses, so that the outcome hangs on no search (0.25 % of draws miss: 100 examples find one by luck).
# (The augmented misses before multipath's prior fell steeply below outlier_ref_sigma_m, sigma 0.76 and 1.5 m,
# are rejected since: the gross branch, which takes no gain, explains them.)
@example(3530346939, 4.129781318547703, 53.503747507754696, 118)
@example(3940190558, 4.872576025494692, 33.401156774003994, 67)
def test_single_multipath_fix_on_a_still_track_is_rejected(seed, sigma_m, offset_m, at):
    rng = np.random.default_rng(seed)
    n = at + 20
    t_ms, x_m, y_m = _still(rng, n, 1.0, sigma_m)
    lost = x_m.copy()
    lost[at] = np.nan
    angle = rng.uniform(0, 2 * np.pi)
    x_m[at] += offset_m * np.cos(angle)
    y_m[at] += offset_m * np.sin(angle)
    offsets, sigma = np.array([0, n]), np.full(n, sigma_m)
    x, y, *_, status = fuse_tracks(offsets, t_ms, x_m, y_m, sigma)
    assert status[at] == REJECTED
    # The output moves by less than a few metres (a clean fix would pull it by its gain, towards 30-60 m) ...
    assert np.hypot(x[at] - x[at - 1], y[at] - y[at - 1]) < 3.0
    # ... and leaves little trace: the track goes on much as if the fix had been lost.
    x_lost, y_lost = fuse_tracks(offsets, t_ms, lost, y_m, sigma)[:2]
    assert np.hypot(x[at + 1:] - x_lost[at + 1:], y[at + 1:] - y_lost[at + 1:]).max() < sigma_m


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 5.0), st.sampled_from([1.0, 2.0, 5.0]), st.floats(0.0, 20.0))
def test_two_far_consistent_fixes_restart_the_track(seed, sigma_m, interval_s, speed_mps):
    """A subject still for 2 min, then fixes 500 m away that move together at a plausible speed: the second
    of them restarts the track there (a run of mutually consistent fixes is followed within two fixes)."""
    rng = np.random.default_rng(seed)
    n_still = int(120 / interval_s)
    t1, x1, y1 = _still(rng, n_still, interval_s, sigma_m)
    t2, tx2, ty2, x2, y2 = _straight(rng, 20, interval_s, speed_mps, sigma_m)
    angle = rng.uniform(0, 2 * np.pi)
    shift = 500.0 * np.array([np.cos(angle), np.sin(angle)])
    t_ms = np.concatenate([t1, t1[-1] + t2 - t2[0] + int(interval_s * 1000)])
    tx, ty = np.r_[np.zeros(n_still), tx2 + shift[0]], np.r_[np.zeros(n_still), ty2 + shift[1]]
    x_m, y_m = np.r_[x1, x2 + shift[0]], np.r_[y1, y2 + shift[1]]
    n = t_ms.size
    x, y, *_, status = fuse_tracks(np.array([0, n]), t_ms, x_m, y_m, np.full(n, sigma_m))
    assert status[n_still] == REJECTED            # one far fix may be multipath ...
    assert np.hypot(x[n_still], y[n_still]) < 3.0 * sigma_m + 2.0
    assert status[n_still + 1] == REINITIALISED   # ... two that agree are where the subject is
    assert np.hypot(x[n_still + 1] - x_m[n_still + 1], y[n_still + 1] - y_m[n_still + 1]) < 1e-6
    # The restart sits on a raw fix (over 5 sigma: once in 250,000), then the filter follows the run.
    error = np.hypot(x - tx, y - ty)[n_still + 1:]
    assert error.max() < 5.0 * sigma_m
    assert (status[n_still + 2:] == ACCEPTED).mean() >= 0.9


def test_scattered_far_fixes_do_not_restart_the_track():
    # Far fixes no subject can join (each over max_speed_mps from the last) stay rejected.
    rng = np.random.default_rng(7)
    t_ms, x_m, y_m = _still(rng, 80, 1.0, 2.5)
    for i, (dx, dy) in zip(range(60, 65), [(500, 0), (-400, 300), (0, -600), (700, 700), (-800, -100)]):
        x_m[i] += dx
        y_m[i] += dy
    x, y, *_, status = fuse_tracks(np.array([0, 80]), t_ms, x_m, y_m, np.full(80, 2.5))
    assert (status[60:65] == REJECTED).all()
    assert (status[65:] == ACCEPTED).mean() >= 0.9
    assert np.hypot(x[55:], y[55:]).max() < 5.0


def _walker_with_stops(rng, n, interval_s, speed_mps=1.3):
    """Walks of 1-10 min with random turns between stops of 1-10 min: truth at a fix every interval_s."""
    t_s = np.arange(n) * interval_s
    x = np.zeros(n)
    y = np.zeros(n)
    heading, moving, until = rng.uniform(0, 2 * np.pi), False, rng.uniform(60, 600)
    for k in range(1, n):
        if t_s[k] > until:
            moving, until = not moving, t_s[k] + rng.uniform(60, 600)
        heading += rng.normal(0, 0.2) if moving else 0.0
        step = speed_mps * interval_s if moving else 0.0
        x[k], y[k] = x[k - 1] + step * np.cos(heading), y[k - 1] + step * np.sin(heading)
    return t_s, x, y


def _nees(ex, ey, var_x, var_y, cov_xy):
    """2-D normalised estimation error squared of errors ``ex, ey`` under the full covariance."""
    return (var_y * ex**2 - 2 * cov_xy * ex * ey + var_x * ey**2) / (var_x * var_y - cov_xy**2)


def test_covariance_is_honest_on_a_walker_with_stops():
    """Mean 2-D NEES with the full covariance (2 where honest) in a wide sanity band (the benchmark holds the
    real bars)."""
    rng = np.random.default_rng(3)
    n_tracks, n = 12, 720
    parts = []
    for _ in range(n_tracks):
        t_s, tx, ty = _walker_with_stops(rng, n, 5.0)
        parts.append((T0_MS + (t_s * 1000).astype(np.int64), tx, ty))
    t_ms, tx, ty = (np.concatenate(p) for p in zip(*parts))
    sigma = np.repeat(rng.uniform(2.0, 5.0, n_tracks), n)
    x_m, y_m = tx + rng.normal(size=tx.size) * sigma, ty + rng.normal(size=ty.size) * sigma
    x, y, var_x, var_y, cov_xy, *_ = fuse_tracks(np.arange(n_tracks + 1) * n, t_ms, x_m, y_m, sigma)
    nees = _nees(x - tx, y - ty, var_x, var_y, cov_xy)
    settled = np.tile(np.arange(n) >= 20, n_tracks)
    assert 1.0 <= nees[settled].mean() <= 3.5, nees[settled].mean()


def test_covariance_covers_a_slow_bias_the_accuracy_reports():
    """A still subject at 1 s whose fixes carry a bias drifting over minutes (AR(1), 0.8 of the reported sigma,
    tau 30-120 s) beside white noise (0.6): the filter follows the bias as slow motion, the scatter it learns is
    the white part, and the rest of the reported accuracy must stay in the covariance (mean NEES near 2 where
    the fixes' scatter alone gave about 15-20)."""
    from geomon.sim.field_noise import ar1

    rng = np.random.default_rng(0)
    n_tracks, n, sigma = 8, 1800, 4.0
    t_ms = np.tile(T0_MS + np.arange(n) * 1000, n_tracks)
    new_track = np.tile(np.arange(n) == 0, n_tracks)
    tau = np.repeat(rng.uniform(30.0, 120.0, n_tracks), n)
    bias = [ar1(rng, t_ms, new_track, np.full(t_ms.size, 0.8 * sigma), tau) for _ in range(2)]
    x_m, y_m = (b + rng.normal(size=t_ms.size) * 0.6 * sigma for b in bias)
    x, y, var_x, var_y, cov_xy, *_ = fuse_tracks(np.arange(n_tracks + 1) * n, t_ms, x_m, y_m,
                                                 np.full(t_ms.size, sigma))
    nees = _nees(x, y, var_x, var_y, cov_xy)   # the truth is 0, 0
    settled = np.tile(np.arange(n) >= 300, n_tracks)
    assert 1.2 <= nees[settled].mean() <= 3.5, nees[settled].mean()
    assert 0.01 <= np.mean(nees[settled] > 5.991) <= 0.15


@pytest.mark.parametrize("interval_s", [1.0, 15.0])
def test_noise_scale_learns_a_phone_that_understates_its_noise(interval_s):
    # A phone reports 3.8 m whatever its error; the truth is 3x that, per axis.
    rng = np.random.default_rng(5)
    n_tracks, n, sigma_m = 8, 501, 3.8
    t_ms = np.tile(T0_MS + np.arange(n) * int(interval_s * 1000), n_tracks)
    x_m, y_m = rng.normal(size=(2, n_tracks * n)) * 3.0 * sigma_m
    noise_m = fuse_step(np.arange(n_tracks + 1) * n, t_ms, x_m, y_m, np.full(n * n_tracks, sigma_m),
                        new_state(n_tracks))[10]
    learnt = noise_m.reshape(n_tracks, n)[:, -1]
    assert noise_m[0] == pytest.approx(sigma_m)   # the reported accuracy is the prior
    np.testing.assert_allclose(learnt, 3.0 * sigma_m, rtol=0.3)
