"""Sequential evidence of the side of a boundary: Page's CUSUM on a proper likelihood ratio.

A fix near a zone's boundary says how deep the subject is on the wrong side, ``d`` (m, negative on
the right side), give or take ``sigma`` along the boundary's normal. Its evidence for a breach is the
log-likelihood ratio of two hypotheses about the true depth ``delta``, each under the same
heavy-tailed model of a position: Gaussian ``N(d; delta, sigma^2)`` with probability ``1 - eps``,
a gross error flat within ``reach_m`` of ``delta`` with probability ``eps``:

- *compliant* (H0): ``delta = 0``, on the boundary, the hardest compliant case;
- *breach* (H1): ``delta`` in ``[depth_m, deepest_m]``, a breach at least ``depth_m`` deep, however
  deep the place allows: ``deepest_m`` is the reach outside a permitted area, and at most a forbidden
  zone's equal-area radius inside one (no point of a zone lies deeper than that), so that the evidence
  of a fix inside a small zone is not spread over depths the zone does not have. How deep a breach is
  is not known in advance, so the prior is half scale-free (log-uniform: 20-40 m as likely as 200-400
  m, Jeffreys' prior for a scale) and half uniform in depth, piecewise constant over bins
  ``BIN_RATIO`` wide in log depth (exact with the error function). A uniform prior alone spread a
  county's breach over 2 km, and a subject 30 m out needed a third fix; the scale-free half alone
  slowed a fix far out, which each half bounds to a loss of at most ``log 2`` against the other.

Both are densities of ``d``, so their ratio is a likelihood ratio, and Page's (1954) statistic ``S =
max(0, S + llr)``, deciding at ``S >= h``, keeps Lorden's (1971) bound: for fixes that are
independent draws of H0, the mean run between false decisions is at least ``exp(h)`` fixes. A budget
of ``b`` false decisions per subject-day at one fix every ``dt`` seconds therefore needs ``h =
log(86400 / (b dt))`` (:func:`threshold`). Anything that only lowers ``S`` (a reset once a subject
is surely back) keeps the bound. A ratio that picks each fix's likeliest depth (a GLR), or a clipped
Gaussian ratio, is not a likelihood ratio of anything the fixes could be drawn from, and measured
well short of the bound (``tests/kernels/test_evidence.py``).

Every fix's evidence is clipped to ``+-llr_bound(sigma) = log(1 + (1 - eps) / eps * 2 reach_m /
(sqrt(2 pi) sigma))``, which binds only beyond the gross reach, where H0 puts no mass: a fix far
out is a breach's. Within the reach a deep fix carries at most :func:`most_within_reach` (about 9.3
at eps 0.002 and a depth of concern of 20 m outside a permitted area), whatever its sigma. The
decision (:func:`decide_step`) caps each fix at three quarters of the threshold it is judged by, so
one fix, however wrong, never makes a breach, whatever the reporting interval (at five-minute reporting
a special period's threshold is about 8), and a fix that carries the most needs another worth a
quarter of the threshold beside it; a breach ends only on a fix surely back.
Fixes whose errors are correlated in time (a drifting bias, multipath runs) are not independent;
``python -m benchmarks alerts`` and ``python -m benchmarks boundary`` measure what the bound then promises.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit, jit_inline

_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: Seconds in a day.
DAY_S = 86400.0
#: The seconds between a subject's fixes that a threshold assumes are clamped to this range (the first fix of
#: a subject, or one after a silence, counts as the longest).
DT_MIN_S = 1.0
DT_MAX_S = 300.0


@jit_inline
def _phi_between(a, b):
    """``Phi(b) - Phi(a)`` for ``a <= b``, accurate in either tail."""
    r = 1.0 / math.sqrt(2.0)
    if a > 0.0:
        return 0.5 * (math.erfc(a * r) - math.erfc(b * r))
    if b < 0.0:
        return 0.5 * (math.erfc(-b * r) - math.erfc(-a * r))
    return 1.0 - 0.5 * (math.erfc(b * r) + math.erfc(-a * r))


#: Each bin of the breach's depths spans this ratio of depths (:func:`_prior_bins`).
BIN_RATIO = 1.1
#: The share of the breach's prior that is scale-free (log-uniform); the rest is uniform in depth.
SCALE_FREE_SHARE = 0.5
#: Beyond this many sigmas the error function's tail underflows to 0 in double precision (erfc(40 / sqrt(2))
#: is about 1e-350).
_UNDERFLOW_Z = 40.0
#: Gaussian terms beyond this many sigmas of a fix are below double precision's resolution of the sum.
_TAIL_Z = 9.0


@jit_inline
def _prior_bins(depth_m, deepest_m):
    """Number of geometric bins of the breach's depths ``[depth_m, deepest_m]`` and the log of its ratio."""
    span = math.log(deepest_m / depth_m)
    return max(1, int(math.ceil(span / math.log(BIN_RATIO)))), span


@jit_inline
def _bin_edge(k, depth_m, span, nb):
    return depth_m * math.exp(span * k / nb)


@jit_inline
def _bin_mass(lo, hi, depth_m, deepest_m, nb):
    """Prior mass of one bin: half of an equal share (log-uniform), half its width's share (uniform)."""
    return SCALE_FREE_SHARE / nb + (1.0 - SCALE_FREE_SHARE) * (hi - lo) / (deepest_m - depth_m)


@jit_inline
def _bin_of(x, depth_m, span, nb):
    """The bin holding depth ``x``, clamped to the bins."""
    if x <= depth_m:
        return 0
    return min(int(math.log(x / depth_m) / span * nb), nb - 1)


@jit_inline
def prior_cdf(x, depth_m, deepest_m):
    """The breach's prior probability of a depth at most ``x`` (piecewise linear between the bins' edges)."""
    nb, span = _prior_bins(depth_m, deepest_m)
    return _prior_cdf(x, depth_m, deepest_m, nb, span)


@jit_inline
def _prior_cdf(x, depth_m, deepest_m, nb, span):
    """:func:`prior_cdf` with the prior's bins (:func:`_prior_bins`) given."""
    if x <= depth_m:
        return 0.0
    if x >= deepest_m:
        return 1.0
    k = _bin_of(x, depth_m, span, nb)
    lo, hi = _bin_edge(k, depth_m, span, nb), _bin_edge(k + 1, depth_m, span, nb)
    below = SCALE_FREE_SHARE * k / nb + (1.0 - SCALE_FREE_SHARE) * (lo - depth_m) / (deepest_m - depth_m)
    return below + _bin_mass(lo, hi, depth_m, deepest_m, nb) * min(max((x - lo) / (hi - lo), 0.0), 1.0)


@jit_inline
def _bin_term(k, d, sigma, depth_m, deepest_m, span, nb):
    """One bin's share of :func:`breach_density` and its distance (m) from ``d``."""
    lo, hi = _bin_edge(k, depth_m, span, nb), _bin_edge(k + 1, depth_m, span, nb)
    if k == nb - 1:
        hi = deepest_m
    term = _bin_mass(lo, hi, depth_m, deepest_m, nb) / (hi - lo) * _phi_between((lo - d) / sigma, (hi - d) / sigma)
    return term, max(lo - d, d - hi, 0.0)


@jit_inline
def breach_density(d, sigma, depth_m, deepest_m):
    """Density of a fix ``d`` (Gaussian ``sigma``) under the breach's prior of depths, without gross errors.

    Summed outwards from the bin nearest ``d``; a direction stops at a bin more than ``_TAIL_Z`` sigmas
    from ``d`` whose share is below double precision's resolution of the sum (farther bins are smaller still:
    the Gaussian falls faster than the prior's density can rise, at most ``BIN_RATIO`` per bin). A fix far
    from every depth the prior holds is thus still weighed by all the bins that matter, not the nearest
    alone."""
    nb, span = _prior_bins(depth_m, deepest_m)
    return _breach_density(d, sigma, depth_m, deepest_m, nb, span)


@jit_inline
def _breach_density(d, sigma, depth_m, deepest_m, nb, span):
    """:func:`breach_density` with the prior's bins (:func:`_prior_bins`) given."""
    if depth_m - d > _UNDERFLOW_Z * sigma or d - deepest_m > _UNDERFLOW_Z * sigma:
        return 0.0   # every bin's share underflows to exactly 0 (most fixes: far inside an area)
    k0 = _bin_of(d, depth_m, span, nb)
    total, _ = _bin_term(k0, d, sigma, depth_m, deepest_m, span, nb)
    for step in (-1, 1):
        k = k0 + step
        while 0 <= k < nb:
            term, far = _bin_term(k, d, sigma, depth_m, deepest_m, span, nb)
            total += term
            if far > _TAIL_Z * sigma and term <= 1e-17 * total:
                break
            k += step
    return total


@jit_inline
def fix_llr(d, sigma, depth_m, eps, reach_m, deepest_m):
    """Evidence (natural log-likelihood ratio, a breach ``depth_m`` to ``deepest_m`` deep against the
    boundary, gross errors within ``reach_m``) of one fix ``d`` m on the wrong side, ``sigma`` m along the
    normal, clipped to :func:`llr_bound`. A NaN depth, a non-positive sigma or a place with no depth beyond the
    depth of concern (``deepest_m <= depth_m``, a zone of no area) carries none (0)."""
    if not (d == d) or not (0.0 < sigma < math.inf) or not (deepest_m > depth_m) or not (depth_m > 0.0):
        return 0.0
    bound = llr_bound(sigma, eps, reach_m)
    flat = eps / (2.0 * reach_m)
    z0 = d / sigma
    f0 = (1.0 - eps) * math.exp(-0.5 * z0 * z0) / (sigma * _SQRT_2PI)
    if abs(d) <= reach_m:
        f0 += flat
    nb, span = _prior_bins(depth_m, deepest_m)   # once per fix, for the density and the gross window alike
    f1 = (1.0 - eps) * _breach_density(d, sigma, depth_m, deepest_m, nb, span)
    f1 += flat * (_prior_cdf(d + reach_m, depth_m, deepest_m, nb, span)
                  - _prior_cdf(d - reach_m, depth_m, deepest_m, nb, span))
    if f0 > 0.0 and f1 > 0.0:
        return min(max(math.log(f1) - math.log(f0), -bound), bound)
    if f0 > 0.0:
        return -bound
    if f1 > 0.0:
        return bound
    return bound if d > 0.0 else -bound


@jit_inline
def most_within_reach(depth_m, eps, reach_m, deepest_m):
    """The most evidence a fix within the gross reach of the boundary can carry, whatever its sigma: the gross
    branch's odds against the breach prior's densest bin, its first."""
    nb, span = _prior_bins(depth_m, deepest_m)
    hi = deepest_m if nb == 1 else _bin_edge(1, depth_m, span, nb)
    densest = _bin_mass(depth_m, hi, depth_m, deepest_m, nb) / (hi - depth_m)
    return math.log1p((1.0 - eps) / eps * 2.0 * reach_m * densest)


@jit_inline
def llr_bound(sigma, eps, reach_m):
    """The most evidence one fix of this ``sigma`` can carry either way."""
    return math.log1p((1.0 - eps) / eps * 2.0 * reach_m / (_SQRT_2PI * sigma))


@jit_inline
def threshold(budget_per_day, dt_s):
    """Page's threshold for ``budget_per_day`` false decisions per subject-day at one fix every
    ``dt_s`` seconds: ``log(86400 / (budget_per_day dt_s))`` (Lorden's bound), at least 0."""
    return max(math.log(DAY_S / (budget_per_day * dt_s)), 0.0)


@jit_inline
def page_step(s, llr):
    """Page's CUSUM after one more fix: ``max(0, s + llr)`` (a breach is decided once it reaches
    :func:`threshold`; the geofence state machine carries ``s`` per (subject, zone))."""
    return max(s + llr, 0.0)


#: No fix carries more than this share of the threshold it is judged against.
MOST_OF_THRESHOLD = 0.75


@jit_inline
def decide_step(s, llr, h):
    """:func:`page_step` with the fix's evidence capped at ``MOST_OF_THRESHOLD`` of the threshold ``h``: one fix,
    however deep or wrong, never decides alone (a cap only lowers the sum, so the budget still holds)."""
    return page_step(s, min(llr, MOST_OF_THRESHOLD * h))


@jit_inline
def fix_threshold(budget_per_day, gap_s):
    """:func:`threshold` for a fix ``gap_s`` seconds after its subject's previous one (negative: none),
    the gap clamped to ``DT_MIN_S``-``DT_MAX_S``."""
    dt = DT_MAX_S if gap_s < 0.0 else min(max(gap_s, DT_MIN_S), DT_MAX_S)
    return threshold(budget_per_day, dt)


#: :func:`side_states` per fix: the wrong side decided, undecided, surely back.
SIDE_WRONG = 1
SIDE_UNDECIDED = 0
SIDE_BACK = -1


@jit
def side_states(offsets, subjects, t_ms, llr, back, budget, carried, out, since_ms):
    """Page's CUSUM of one boundary per subject, over fixes sorted by (subject, time) in runs
    ``offsets[r]:offsets[r + 1]`` of subject ``subjects[r]``: ``out`` is :data:`SIDE_WRONG` once the sum of
    ``llr`` (each capped by :func:`decide_step`) reaches the threshold of the fix's false-alarm ``budget``
    per subject-day (:func:`fix_threshold`),
    :data:`SIDE_BACK` on a fix surely back on the right side (``back``; the sum restarts from 0, which only
    lowers it), else :data:`SIDE_UNDECIDED`. ``since_ms`` is when the sum last left 0 (Page's estimate of
    the change; the fix's own time while the sum is 0). ``carried[s]`` = (sum, previous fix ms or 0, when
    the sum left 0) across batches."""
    for r in range(subjects.size):
        s = subjects[r]
        total, prev, start = carried[s, 0], carried[s, 1], carried[s, 2]
        for i in range(offsets[r], offsets[r + 1]):
            t = float(t_ms[i])
            if back[i]:
                total = 0.0
                out[i] = SIDE_BACK
            else:
                if total <= 0.0:
                    start = t
                h = fix_threshold(budget[i], (t - prev) * 1e-3 if prev > 0.0 else -1.0)
                total = decide_step(total, llr[i], h)
                out[i] = SIDE_WRONG if total >= h else SIDE_UNDECIDED
            since_ms[i] = start if total > 0.0 else t
            prev = t
        carried[s, 0], carried[s, 1], carried[s, 2] = total, prev, start


def expected_delay_s(budget_per_day, interval_s, depth_m, eps, reach_m, at_depth_m, sigma_m, *, nodes=48):
    """Expected seconds from a subject's first fix ``at_depth_m`` beyond a boundary (outside a permitted area,
    fixes every ``interval_s`` under Gaussian noise ``sigma_m`` along the normal) to its confirmation: Wald's
    approximation of Page's run length under a breach, ``h / E[llr]`` fixes (``h`` :func:`threshold`, each
    fix's evidence capped as :func:`decide_step` caps it, its mean over the noise by Gauss-Hermite
    quadrature), and at least two fixes, since no fix decides alone; times ``interval_s``.
    Infinite when the mean evidence is not positive. Overshoot is ignored, so it is a little optimistic
    (``tests/kernels/test_evidence.py`` checks it against simulation)."""
    h = threshold(budget_per_day, interval_s)
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    d = at_depth_m + sigma_m * z
    out = np.empty(d.size)
    n = d.size
    fix_llrs(d, np.full(n, float(sigma_m)), np.full(n, float(depth_m)), np.full(n, float(eps)),
             np.full(n, float(reach_m)), np.full(n, float(reach_m)), out)
    mean = float(np.sum(w * np.minimum(out, MOST_OF_THRESHOLD * h)) / np.sum(w))
    if not mean > 0.0:
        return math.inf
    return max(h / mean, 2.0) * interval_s


@jit
def fix_llrs(d, sigma, depth_m, eps, reach_m, deepest_m, out):
    """:func:`fix_llr` over arrays, every parameter per fix (a threshold set's, a zone's own)."""
    for i in range(d.size):
        out[i] = fix_llr(d[i], sigma[i], depth_m[i], eps[i], reach_m[i], deepest_m[i])


__all__ = ["BIN_RATIO", "DAY_S", "DT_MAX_S", "DT_MIN_S", "MOST_OF_THRESHOLD", "SCALE_FREE_SHARE", "SIDE_BACK",
           "SIDE_UNDECIDED", "SIDE_WRONG", "breach_density", "decide_step", "expected_delay_s", "fix_llr", "fix_llrs",
           "fix_threshold", "llr_bound", "most_within_reach", "page_step", "prior_cdf", "side_states", "threshold"]
