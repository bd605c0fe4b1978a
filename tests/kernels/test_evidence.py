"""The sequential evidence kernel against a slow reference and against the statistics it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from geomon.kernels import evidence as ev


def _prior_bins(depth_m, deepest_m):
    """The breach prior's bins, from its definition: edges ``BIN_RATIO`` apart in log depth (the last ends at
    ``deepest_m``), each holding half an equal share (scale-free) and half its width's share (uniform)."""
    nb = max(1, math.ceil(math.log(deepest_m / depth_m) / math.log(ev.BIN_RATIO)))
    edges = [depth_m * (deepest_m / depth_m) ** (k / nb) for k in range(nb)] + [deepest_m]
    mass = [0.5 / nb + 0.5 * (hi - lo) / (deepest_m - depth_m) for lo, hi in zip(edges[:-1], edges[1:])]
    return edges, mass


def _reference_llr(d, sigma, depth_m, eps, reach_m, deepest_m=None):
    """From the definition, densities not logs, the breach's depth integrated numerically bin by bin."""
    if math.isnan(d) or not sigma > 0:
        return 0.0
    deepest_m = reach_m if deepest_m is None else deepest_m

    def clean(delta):
        return (1 - eps) * np.exp(-0.5 * ((d - delta) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))

    def gross(delta):
        return np.where(np.abs(d - delta) <= reach_m, eps / (2 * reach_m), 0.0)

    f0 = float(clean(0.0) + gross(0.0))
    edges, mass = _prior_bins(depth_m, deepest_m)
    f1 = 0.0
    for lo_bin, hi_bin, m in zip(edges[:-1], edges[1:], mass):
        density = m / (hi_bin - lo_bin)
        # Integrated piece by piece between the gross window's edges, where its indicator is constant.
        cuts = sorted({lo_bin, hi_bin, *(min(max(e, lo_bin), hi_bin) for e in (d - reach_m, d + reach_m))})
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            n = int(min(max(2_001, (hi - lo) / sigma * 200), 400_001))
            delta = np.linspace(lo, hi, n)
            f1 += density * (float(np.trapezoid(clean(delta), delta)) + float(gross(0.5 * (lo + hi))) * (hi - lo))
    bound = math.log1p((1 - eps) / eps * 2 * reach_m / (math.sqrt(2 * math.pi) * sigma))
    if f0 > 0 and f1 > 0:
        return min(max(math.log(f1 / f0), -bound), bound)
    return bound if (f1 > 0 or (f0 == 0 and d > 0)) else -bound


sigmas = st.floats(0.3, 50.0)
concern = st.floats(1.0, 200.0)
epss = st.floats(1e-3, 0.3)


@settings(max_examples=150, deadline=None)
@given(st.floats(-1.0, 2.0), sigmas, concern, epss, st.floats(2.0, 25.0), st.floats(0.02, 1.0))
@example(0.0, 6.0, 30.0, 0.02, 2000 / 30, 1.0)        # on the boundary
@example(30.0 / 2000, 6.0, 30.0, 0.02, 2000 / 30, 1.0)  # at the depth of concern
@example(1.0, 0.3, 30.0, 0.02, 10.0, 1.0)             # at the reach, a precise fix
@example(-1.0, 0.3, 30.0, 0.02, 10.0, 1.0)            # the reach inside
@example(0.01, 6.0, 12.5, 0.002, 160.0, 0.0063)       # the centre of a 25 m disc (deepest 25 m)
@example(2.0, 7.0, 1.875, 0.25, 18.0, 0.03125)        # far beyond a narrow prior: every bin counts, not the nearest
@example(-0.9, 0.5, 30.0, 0.02, 10.0, 1.0)            # far inside: the gross reach just misses the prior (-bound)
@example(-0.899, 0.5, 30.0, 0.02, 10.0, 1.0)          # a metre less far: the gross reach holds a sliver of it
def test_fix_llr_matches_the_reference_and_is_bounded(at_reach, sigma, depth_m, eps, reach_over_depth, deep_share):
    reach_m = depth_m * reach_over_depth
    deepest_m = depth_m + deep_share * (reach_m - depth_m)
    d = at_reach * reach_m
    assume(abs(abs(d) - reach_m) > 1e-6 * reach_m)   # the gross branch's edge is a step: no grid resolves it
    got = ev.fix_llr(d, sigma, depth_m, eps, reach_m, deepest_m)
    want = _reference_llr(d, sigma, depth_m, eps, reach_m, deepest_m)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert abs(got) <= ev.llr_bound(sigma, eps, reach_m) + 1e-12


@settings(deadline=None)   # the first example compiles the kernel
@given(st.floats(-3000.0, 3000.0), sigmas, concern, epss, st.floats(2.0, 25.0), st.floats(0.02, 1.0))
def test_within_the_reach_one_fix_carries_at_most_the_flat_branchs_odds(d, sigma, depth_m, eps, reach_over_depth,
                                                                         deep_share):
    # The gross branch puts eps / (2 reach) under H0 everywhere within the reach; H1's density is at most the
    # prior's densest bin's (the first).
    reach_m = depth_m * reach_over_depth
    deepest_m = depth_m + deep_share * (reach_m - depth_m)
    assume(abs(d) <= reach_m)
    edges, mass = _prior_bins(depth_m, deepest_m)
    most = math.log1p((1 - eps) / eps * 2 * reach_m * mass[0] / (edges[1] - edges[0]))
    assert ev.most_within_reach(depth_m, eps, reach_m, deepest_m) == pytest.approx(most, rel=1e-9)
    assert ev.fix_llr(d, sigma, depth_m, eps, reach_m, deepest_m) <= most + 1e-9


@settings(deadline=None)   # the first example compiles the kernel
@given(st.floats(-3000.0, 3000.0), sigmas, concern)
def test_the_priors_cdf_is_its_bins_masses(x, depth_m, ratio):
    deepest_m = depth_m * (1.0 + ratio)
    edges, mass = _prior_bins(depth_m, deepest_m)
    want = sum(m * min(max((x - lo) / (hi - lo), 0.0), 1.0) for lo, hi, m in zip(edges[:-1], edges[1:], mass))
    assert ev.prior_cdf(x, depth_m, deepest_m) == pytest.approx(want, abs=1e-12)
    assert sum(mass) == pytest.approx(1.0)


def test_one_fix_never_decides_at_any_interval():
    # decide_step caps a fix below the threshold: even beyond the gross reach, where one fix carries the
    # bound, and at five-minute reporting in a special period (threshold about 8).
    for budget in (0.02, 0.1, 10.0):
        for dt in (1.0, 15.0, 300.0):
            h = ev.threshold(budget, dt)
            assert ev.decide_step(0.0, ev.fix_llr(1e5, 6.0, 10.0, 0.002, 2000.0, 2000.0), h) < h
            assert ev.decide_step(0.0, 3.0, h) == pytest.approx(min(3.0, ev.MOST_OF_THRESHOLD * h))
            assert ev.MOST_OF_THRESHOLD < 1.0
            assert ev.decide_step(0.3 * h, h, h) >= h          # two fixes may


def test_inside_a_small_zone_a_fix_says_more_than_beside_a_county():
    # The centre of a 25 m disc (depth of concern 12.5 m, half its radius), sigma 6 m: the breach's depths are
    # those the disc has, not 12.5-2,000 m. (The scale-free half of the prior already puts a third of a
    # county's breach under 25 m deep, so the disc's ten times denser prior there says about 2.4 more.)
    small = ev.fix_llr(22.0, 6.0, 12.5, 0.002, 2000.0, 25.0)
    wide = ev.fix_llr(22.0, 6.0, 12.5, 0.002, 2000.0, 2000.0)
    assert small > wide + 2.0
    assert small < ev.threshold(0.02, 15.0)           # still no lone fix decides


def test_far_out_is_a_breach_and_far_in_is_not():
    # Beyond the gross reach the boundary cannot have made the fix: the bound. Within it, a fix deep out
    # is strong evidence, a fix near the line on the right side strong evidence against.
    b = ev.llr_bound(6.0, 0.02, 2000.0)
    assert ev.fix_llr(5000.0, 6.0, 30.0, 0.02, 2000.0, 2000.0) == b
    assert ev.fix_llr(-5000.0, 6.0, 30.0, 0.02, 2000.0, 2000.0) == -b
    assert ev.fix_llr(50.0, 6.0, 30.0, 0.02, 2000.0, 2000.0) > 4.0
    assert ev.fix_llr(-5.0, 6.0, 30.0, 0.02, 2000.0, 2000.0) < -4.0
    assert ev.fix_llr(math.nan, 6.0, 30.0, 0.02, 2000.0, 2000.0) == 0.0
    assert ev.fix_llr(10.0, 0.0, 30.0, 0.02, 2000.0, 2000.0) == 0.0
    assert ev.fix_llr(10.0, 6.0, 0.0, 0.02, 2000.0, 0.0) == 0.0          # a zone of no area


@settings(deadline=None)   # the first example compiles the kernel
@given(st.lists(st.floats(-20.0, 20.0), max_size=60), st.floats(0.0, 10.0))
@example([], 0.0)                           # an empty run
@example([5.0, -100.0, 5.0], 0.0)           # the floor at zero
def test_page_step_is_pages_cusum(llr, s0):
    # Page (1954): S_k = max(0, S_{k-1} + llr_k); the path, folded one fix at a time as the state machine does.
    s, want = s0, s0
    for x in llr:
        s = ev.page_step(s, x)
        want = want + x if want + x > 0.0 else 0.0
        assert s == pytest.approx(want, abs=1e-12) and s >= 0.0


def test_threshold_is_the_log_of_the_mean_run():
    # 0.02 false decisions per subject-day at one fix every 15 s: one in 50 days of 5,760 fixes.
    assert ev.threshold(0.02, 15.0) == pytest.approx(math.log(288_000))
    assert ev.threshold(1e6, 15.0) == 0.0


def _decisions(llr: np.ndarray, h: float) -> int:
    """Decisions of a CUSUM restarted after each one."""
    s, n = 0.0, 0
    for x in llr:
        s = max(0.0, s + x)
        if s >= h:
            n, s = n + 1, 0.0
    return n


@pytest.mark.parametrize("gross_share", [0.0, 0.02, 0.08])
def test_independent_fixes_on_the_boundary_keep_the_budget(gross_share):
    # The hardest compliant subject stands on the boundary, white fixes with gross errors as modelled.
    # Lorden's bound: at most one false decision per exp(h) fixes. (A GLR of the likeliest depth kept
    # 0.02-0.5 of it here, a clipped Gaussian ratio 0.03-0.3 with gross errors.)
    rng = np.random.default_rng(11)
    n, sigma, reach = 300_000, 6.0, 300.0
    eps = max(gross_share, 1e-3)
    d = rng.normal(0.0, sigma, n)
    gross = rng.random(n) < gross_share
    d[gross] = rng.uniform(-reach, reach, gross.sum())
    llr = np.empty(n)
    for depth_m, deepest_m in ((3.0, reach), (6.0, reach), (30.0, reach), (6.0, 12.0), (12.5, 25.0)):
        ev.fix_llrs(d, np.full(n, sigma), np.full(n, depth_m), np.full(n, eps), np.full(n, reach),
                    np.full(n, deepest_m), llr)
        for mean_run in (50.0, 500.0):
            assert _decisions(llr, math.log(mean_run)) <= n / mean_run, (depth_m, deepest_m, mean_run)


@pytest.mark.parametrize("out_m", [50.0, 200.0, 1500.0])
def test_a_deep_breach_is_decided_by_the_third_fix_and_no_lone_fix_decides(out_m):
    # sigma 6 m, a budget of 0.02 per subject-day at 15 s fixes.
    sigma, eps, reach = 6.0, 0.02, 2000.0
    h = ev.threshold(0.02, 15.0)
    rng = np.random.default_rng(5)
    for _ in range(200):
        d = out_m + rng.normal(0.0, sigma, 3)
        llr = np.array([ev.fix_llr(x, sigma, 30.0, eps, reach, reach) for x in d])
        assert llr.sum() >= h
    worst = max(ev.fix_llr(x, sigma, 30.0, eps, reach, reach) for x in np.linspace(-3 * reach, 3 * reach, 20001))
    assert worst < h


def test_ten_metres_inside_for_a_day_never_decides():
    sigma, eps, reach = 6.0, 0.02, 2000.0
    rng = np.random.default_rng(9)
    n = 5760 * 20        # twenty subject-days at 15 s
    d = rng.normal(-10.0, sigma, n)
    llr = np.empty(n)
    ev.fix_llrs(d, np.full(n, sigma), np.full(n, 30.0), np.full(n, eps), np.full(n, reach), np.full(n, reach), llr)
    assert _decisions(llr, ev.threshold(0.02, 15.0)) == 0


def _side_states_reference(t_ms, llr, back, budget):
    """One subject's states, from the definition: Page's sum of capped evidence, reset on a fix surely back."""
    total, prev, start, out, since = 0.0, None, None, [], []
    for t, x, b, bud in zip(t_ms, llr, back, budget):
        if b:
            total, state = 0.0, ev.SIDE_BACK
        else:
            gap = 300.0 if prev is None else min(max((t - prev) / 1000, 1.0), 300.0)
            h = math.log(86400 / (bud * gap))
            if total <= 0.0:
                start = t
            total = max(0.0, total + min(x, ev.MOST_OF_THRESHOLD * h))
            state = ev.SIDE_WRONG if total >= h else ev.SIDE_UNDECIDED
        out.append(state)
        since.append(start if total > 0.0 else t)
        prev = t
    return out, since


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400_000), st.floats(-12.0, 12.0), st.booleans(), st.sampled_from([0.02, 0.5])),
                max_size=40), st.integers(0, 40), st.integers(0, 2))
@example([], 0, 0)                                                         # an empty track
@example([(15_000, 7.0, False, 0.02)] * 3, 1, 0)                           # decided on the second fix, cut between
@example([(0, 12.0, False, 0.02), (15_000, 12.0, False, 0.02)], 0, 1)     # two fixes at the same time
def test_side_states_match_the_reference_in_any_cut(steps, cut, subject):
    # Fixes of one subject (row `subject` of three), times from the steps' gaps, cut into two batches anywhere.
    gaps, llr, back, budget = (list(c) for c in zip(*steps)) if steps else ([], [], [], [])
    t = np.cumsum(np.array(gaps, np.int64)) + 1_762_000_000_000
    llr, back, budget = np.array(llr, float), np.array(back, bool), np.array(budget, float)
    want, want_since = _side_states_reference(t.tolist(), llr.tolist(), back.tolist(), budget.tolist())
    carried = np.zeros((3, 3))
    got, since = np.empty(t.size, np.int8), np.empty(t.size)
    cut = min(cut, t.size)
    for lo, hi in ((0, cut), (cut, t.size)):
        ev.side_states(np.array([0, hi - lo]), np.array([subject]), t[lo:hi], llr[lo:hi], back[lo:hi],
                       budget[lo:hi], carried, got[lo:hi], since[lo:hi])
    assert got.tolist() == want
    assert since.tolist() == [float(x) for x in want_since]
    assert not carried[[s for s in range(3) if s != subject]].any()


@pytest.mark.parametrize(("budget", "depth_m", "at_m"), [(0.02, 20.0, 25.0), (0.02, 20.0, 30.0), (0.1, 10.0, 18.0),
                                                          (0.0002, 20.0, 22.0)])
def test_expected_delay_is_walds_run_length_by_simulation(budget, depth_m, at_m):
    # A subject standing at_m out, sigma 6 m, a fix every 15 s: the mean run of the capped CUSUM to the threshold,
    # simulated, lies between Wald's approximation (no overshoot) and one fix more.
    sigma, eps, reach, dt = 6.0, 0.002, 2000.0, 15.0
    h = ev.threshold(budget, dt)
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(3000):
        s, k = 0.0, 0
        while s < h:
            k += 1
            s = ev.decide_step(s, ev.fix_llr(at_m + rng.normal(0.0, sigma), sigma, depth_m, eps, reach, reach), h)
        runs.append(k)
    simulated = float(np.mean(runs)) * dt
    predicted = ev.expected_delay_s(budget, dt, depth_m, eps, reach, at_m, sigma)
    assert predicted - 0.5 <= simulated <= predicted + dt + 0.5, (simulated, predicted)


def test_expected_delay_of_a_subject_inside_is_infinite():
    assert ev.expected_delay_s(0.02, 15.0, 20.0, 0.002, 2000.0, -10.0, 6.0) == math.inf
