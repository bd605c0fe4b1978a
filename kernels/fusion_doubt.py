"""The jump doubt of the fusion filter's output stage: a multipath run or a move.

A subject whose fixes jump within multipath's reach and stay there, relative to where it stood or
to the line it walked, made a move or is under a multipath run (an offset that ends after a mean
``run_s``). The filter (:mod:`geomon.kernels.fusion_filter`) follows the fixes; the output weighs
the two places, the anchor and where the fixes are, by Bayes' rule: odds ``run_prior_odds`` at the
start, fading as the run would have ended, gone once the fused position moves on from where the run
began (an offset keeps the anchor's pace), leaves multipath's reach, comes back, or the odds are
spent. The anchor is where a still subject stood, or a walker's last clean fused position and
velocity, carried on at that velocity. The filter itself is never touched.

The doubt's state is a slice of :data:`N_DOUBT` columns of a track's state row (``D_*`` offsets),
updated in place.
"""

from __future__ import annotations

from geomon.kernels._jit import jit

#: Offsets in the doubt's slice of a state row: the anchor (valid flag, x, y, per-axis variance), the
#: odds of a run, where the fused position stood when the run began (carried at the anchor's pace),
#: the anchor's time (ms) and velocity (0 for a still subject's).
(D_OK, D_X, D_Y, D_V, D_ODDS, D_LX, D_LY, D_T, D_VX, D_VY) = range(10)
N_DOUBT = 10

#: A subject who moves off slower than this (m/s) from where it stood strolls: no jump.
STROLL_MPS = 1.0
#: The anchor moves with a subject slower than this (m/s), a walker: faster ones turn, brake and stop
#: by more than a multipath offset between fixes.
ANCHOR_WALK_MPS = 2.0
#: A fix whose outlier probability is below this may move the anchor (one a run may have pulled may not).
ANCHOR_CLEAN_P = 0.05
#: Odds of a multipath run below this are spent: the doubt ends and the anchor follows again.
SPENT_ODDS = 0.05


@jit
def _from_anchor(jd, t_ms, comb):
    """The fused position less the anchor's, carried to ``t_ms`` at its velocity."""
    since = (t_ms - jd[D_T]) * 1e-3
    return comb[0] - (jd[D_X] + jd[D_VX] * since), comb[1] - (jd[D_Y] + jd[D_VY] * since), since


@jit
def _hedge(jd, comb, dx, dy, vxx, vyy, vxy):
    """The output: the fused position and the anchor weighed by the doubt, moment-matched."""
    odds = jd[D_ODDS]
    if odds <= 0.0:
        return comb[0], comb[1], vxx, vyy, vxy
    doubt = odds / (1.0 + odds)
    spread = doubt * (1.0 - doubt)
    a_v = jd[D_V]
    return (comb[0] - doubt * dx, comb[1] - doubt * dy, (1.0 - doubt) * vxx + doubt * a_v + spread * dx * dx,
            (1.0 - doubt) * vyy + doubt * a_v + spread * dy * dy, (1.0 - doubt) * vxy + spread * dx * dy)


@jit
def doubt_at_fix(jd, t_ms, dt_last, fade_run, comb, r, still_p, step_x, step_y, p_out, run_odds, jump_min_m,
                 reach_m, vxx, vyy, vxy):
    """Advance the doubt over a fix the filter used; return the output position and covariance.

    ``comb`` is the filter's mixture (x, y, vx, vy, covariance, per-axis variance at 7), ``r`` the fix
    noise, ``still_p`` the still motion's probability, ``step_x``/``step_y`` the step from the last fix
    if 10-120 s before (else inf), ``p_out`` the fix's outlier probability, ``fade_run`` the fading of
    the odds over ``dt_last``; ``vxx, vyy, vxy`` the covariance the output has without the doubt.
    """
    dx, dy, since = _from_anchor(jd, t_ms, comb)
    d2 = dx * dx + dy * dy
    a_v = jd[D_V]
    still_anchor = jd[D_VX] == 0.0 and jd[D_VY] == 0.0
    # The step between the last two fixes beside the anchor's pace (a run's fixes keep it; a subject
    # who stops does not, and its step is then the smaller).
    rel2 = (step_x - jd[D_VX] * dt_last) ** 2 + (step_y - jd[D_VY] * dt_last) ** 2
    odds = jd[D_ODDS]
    carried = odds > 0.0
    if carried:
        odds *= fade_run
        # Where the fused position stood when the run began, carried at the anchor's pace.
        jd[D_LX] += jd[D_VX] * dt_last
        jd[D_LY] += jd[D_VY] * dt_last
        mx, my = comb[0] - jd[D_LX], comb[1] - jd[D_LY]
        if mx * mx + my * my > 9.0 * (r + comb[7]):
            odds *= 0.01
        if d2 > reach_m * reach_m:
            jd[D_OK] = 0.0
        if d2 > reach_m * reach_m or d2 < 9.0 * (comb[7] + a_v) or odds < SPENT_ODDS:
            odds = 0.0
    elif jd[D_OK] != 0.0 and jump_min_m * jump_min_m < d2 <= reach_m * reach_m and d2 > 9.0 * (comb[7] + a_v) \
            and d2 > since * since * STROLL_MPS ** 2 and (
            (rel2 < 18.0 * r and (still_anchor or 4.0 * rel2 < step_x * step_x + step_y * step_y)
             and t_ms - jd[D_T] <= 2500.0 * dt_last)
            or (still_anchor and still_p > 0.9 and comb[2] * comb[2] + comb[3] * comb[3] < 0.04)):
        # A jump, not a walk (faster than a stroll from where the track stood or off the line it
        # walked, then two fixes together right after, or the track still again), within reach.
        odds = run_odds
    jd[D_ODDS] = odds
    if not (carried and odds > 0.0):
        jd[D_LX], jd[D_LY] = comb[0], comb[1]
    if odds == 0.0 and p_out < ANCHOR_CLEAN_P:
        if still_p > 0.9:
            _set_anchor(jd, t_ms, comb, 0.0, 0.0)
        elif 10.0 <= dt_last <= 120.0:
            # Where a run can be told from a walk (two fixes together 10-120 s apart), a walker's anchor;
            # faster subjects have none. Denser fixes keep the anchor where the subject stood.
            if comb[2] * comb[2] + comb[3] * comb[3] < ANCHOR_WALK_MPS * ANCHOR_WALK_MPS:
                _set_anchor(jd, t_ms, comb, comb[2], comb[3])
            else:
                jd[D_OK] = 0.0
    return _hedge(jd, comb, dx, dy, vxx, vyy, vxy)


@jit
def _set_anchor(jd, t_ms, comb, vx, vy):
    jd[D_OK], jd[D_X], jd[D_Y], jd[D_V], jd[D_T], jd[D_VX], jd[D_VY] = 1.0, comb[0], comb[1], comb[7], t_ms, vx, vy


@jit
def doubt_without_fix(jd, t_ms, fade_run, comb, vxx, vyy, vxy):
    """A fix without a position in a run: the odds fade as the run may end meanwhile, the two places stand."""
    if jd[D_ODDS] <= 0.0:
        return comb[0], comb[1], vxx, vyy, vxy
    jd[D_ODDS] *= fade_run
    dx, dy, _ = _from_anchor(jd, t_ms, comb)
    return _hedge(jd, comb, dx, dy, vxx, vyy, vxy)


@jit
def doubt_restart(jd, comb):
    """The filter restarted: no run, no anchor."""
    jd[D_ODDS], jd[D_OK] = 0.0, 0.0
    jd[D_LX], jd[D_LY] = comb[0], comb[1]
