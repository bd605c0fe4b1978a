"""Sequential evidence of the side of a boundary: Page's CUSUM on a proper likelihood ratio.

A fix near a zone's boundary says how deep the subject is on the wrong side, ``d`` (m, negative on
the right side), give or take ``sigma`` along the boundary's normal. Its evidence for a breach is the
log-likelihood ratio of two hypotheses about the true depth ``delta``, each under the same
heavy-tailed model of a position: Gaussian ``N(d; delta, sigma^2)`` with probability ``1 - eps``,
a gross error flat within ``reach_m`` of ``delta`` with probability ``eps``:

- *compliant* (H0): ``delta = 0``, on the boundary, the hardest compliant case;
- *breach* (H1): ``delta`` uniform on ``[depth_m, deepest_m]``, a breach at least ``depth_m`` deep,
  however deep the place allows: ``deepest_m`` is the reach outside a permitted area, and at most a
  forbidden zone's equal-area radius inside one (no point of a zone lies deeper than that), so that the
  evidence of a fix inside a small zone is not spread over depths the zone does not have.

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
out is a breach's. Within the reach a deep fix carries at most about ``log(1 + 2 (1 - eps) reach_m /
(eps (deepest_m - depth_m)))`` (about 6.9 at eps 0.002 outside a permitted area), whatever its sigma,
so where the threshold exceeds that, one fix, however wrong, neither makes a breach nor undoes one.
Fixes whose errors are correlated in time (a drifting bias, multipath runs) are not independent;
``python -m benchmarks alerts`` and ``python -m benchmarks boundary`` measure what the bound then promises.
"""

from __future__ import annotations

import math

from geomon.kernels._jit import jit, jit_inline

_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: Seconds in a day.
DAY_S = 86400.0


@jit_inline
def _phi_between(a, b):
    """``Phi(b) - Phi(a)`` for ``a <= b``, accurate in either tail."""
    r = 1.0 / math.sqrt(2.0)
    if a > 0.0:
        return 0.5 * (math.erfc(a * r) - math.erfc(b * r))
    if b < 0.0:
        return 0.5 * (math.erfc(-b * r) - math.erfc(-a * r))
    return 1.0 - 0.5 * (math.erfc(b * r) + math.erfc(-a * r))


@jit_inline
def fix_llr(d, sigma, depth_m, eps, reach_m, deepest_m):
    """Evidence (natural log-likelihood ratio, a breach ``depth_m`` to ``deepest_m`` deep against the
    boundary, gross errors within ``reach_m``) of one fix ``d`` m on the wrong side, ``sigma`` m along the
    normal, clipped to :func:`llr_bound`. A NaN depth, a non-positive sigma or a place with no depth beyond the
    depth of concern (``deepest_m <= depth_m``, a zone of no area) carries none (0)."""
    if not (d == d) or not (sigma > 0.0) or not (deepest_m > depth_m):
        return 0.0
    bound = llr_bound(sigma, eps, reach_m)
    width = deepest_m - depth_m
    flat = eps / (2.0 * reach_m)
    z0 = d / sigma
    f0 = (1.0 - eps) * math.exp(-0.5 * z0 * z0) / (sigma * _SQRT_2PI)
    if abs(d) <= reach_m:
        f0 += flat
    f1 = (1.0 - eps) / width * _phi_between((depth_m - d) / sigma, (deepest_m - d) / sigma)
    overlap = min(deepest_m, d + reach_m) - max(depth_m, d - reach_m)
    if overlap > 0.0:
        f1 += flat * overlap / width
    if f0 > 0.0 and f1 > 0.0:
        return min(max(math.log(f1) - math.log(f0), -bound), bound)
    if f0 > 0.0:
        return -bound
    if f1 > 0.0:
        return bound
    return bound if d > 0.0 else -bound


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


@jit
def fix_llrs(d, sigma, depth_m, eps, reach_m, deepest_m, out):
    """:func:`fix_llr` over arrays, every parameter per fix (a threshold set's, a zone's own)."""
    for i in range(d.size):
        out[i] = fix_llr(d[i], sigma[i], depth_m[i], eps[i], reach_m[i], deepest_m[i])


__all__ = ["DAY_S", "fix_llr", "fix_llrs", "llr_bound", "page_step", "threshold"]
