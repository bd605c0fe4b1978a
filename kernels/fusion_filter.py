"""The per-track filter behind :mod:`geomon.kernels.fusion`: three motions, a heavy-tailed fix, noise learnt per track.

:func:`_filter_track` runs one track (fixes ``lo:hi``) carrying its state row (``ST_*`` columns);
:func:`_run` runs every track of a CSR batch in parallel, each writing its own output slots.
:func:`geomon.kernels.fusion.fuse_tracks` documents the model and its parameters.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit, jit_inline
from geomon.kernels.fusion_imm import MANOEUVRE, N_MODELS, STEADY, STILL, combine, mix_predict, transition

#: Status codes, one per fix.
ACCEPTED = 0  #: the fix counted as clean (its outlier probability under 0.5)
REJECTED = 1  #: the fix is likelier an outlier than clean; the output leans on the prediction
REINITIALISED = 2  #: the state (re)started here: first fix, after ``gap_s``, or after a move multipath cannot make
PREDICTED = 3  #: the fix has no usable position; the output is the prediction (NaN before any fix)

#: Columns of the ``(n, 7)`` history arrays: position (m), velocity (m/s) and
#: the per-axis covariance (m^2, m^2/s, m^2/s^2), shared by x and y.
HISTORY_COLUMNS = ("x_m", "y_m", "vx_mps", "vy_mps", "p_pp_m2", "p_pv_m2ps", "p_vv_m2ps2")

#: Defaults of the filter parameters, in the order the kernel reads them
#: (documented in :func:`geomon.kernels.fusion.fuse_tracks`).
DEFAULT_PARAMS = {
    "q_still_m2ps": 3e-5,
    "q_steady_m2ps3": 0.01,
    "q_manoeuvre_m2ps3": 5.0,
    "q_steady_min_m2ps3": 3e-4,
    "q_memory_s": 1200.0,
    "q_prior_sd_m2ps3": 0.03,
    "v_start_mps": 1.5,
    "v_manoeuvre_mps": 5.0,
    "dwell_still_s": 600.0,
    "dwell_steady_s": 300.0,
    "dwell_manoeuvre_s": 30.0,
    "still_to_manoeuvre_p": 0.5,
    "steady_to_still_p": 0.5,
    "manoeuvre_to_still_p": 0.3,
    "outlier_p": 0.003,
    "outlier_sigma_m": 30.0,
    "outlier_ref_sigma_m": 2.0,
    "outlier_reach_m": 100.0,
    "run_prior_odds": 2.5,
    "run_s": 60.0,
    "jump_min_m": 10.0,
    "gross_p": 1e-5,
    "gross_reach_m": 5000.0,
    "max_speed_mps": 60.0,
    "noise_prior_n": 3.0,
    "noise_memory_s": 7200.0,
    "noise_scale_min": 0.25,
    "noise_scale_max": 25.0,
    "noise_learn_below_m": 50.0,
    "corr_prior_n": 20.0,
    "corr_memory_s": 1800.0,
    "corr_max_inflation": 100.0,
    "bias_tau_s": 60.0,
    "slow_mean_s": 300.0,
    "gap_s": 600.0,
    "init_still_p": 0.6,
    "init_steady_p": 0.3,
}

#: A subject who moves off slower than this (m/s) from where it stood strolls: no jump.
_STROLL_MPS = 1.0
#: The jump doubt's anchor moves with a subject slower than this (m/s), a walker: faster ones turn,
#: brake and stop by more than a multipath offset between fixes.
_ANCHOR_WALK_MPS = 2.0
#: A fix whose outlier probability is below this may move the anchor (one a run may have pulled may not).
_ANCHOR_CLEAN_P = 0.05
#: Odds of a multipath run below this are spent: the doubt ends and the anchor follows again.
_SPENT_ODDS = 0.05
#: How steeply multipath's prior falls with a fix's reported sigma below outlier_ref_sigma_m: an augmented fix
#: (SBAS, RTK, PPP: decimetres) that lands tens of metres off is a turn or a stop far more often than a
#: tens-of-metres reflection its corrections let through. (On the training matrix the exponent 1 left a
#: tenth of a cyclist's stop on the prediction; 4 and 6 measured alike, 3 between.)
_AUGMENTED_MP_POW = 4.0
#: Below this probability a model restarts from the mixture.
_STALE_P = 0.01
#: A fix's noise-scale estimate is clipped at this many times the scale learnt so far (Huber-type): a turn or a
#: stop the motions did not foresee must not pass for noise. (A clean fix exceeds it with probability e^-4.)
_U_CLIP = 4.0
#: Error the fixes report and their scatter does not show counts once the learnt noise scale is this many
#: of its standard errors below 1.
_UNSEEN_SDS = 2.0

#: Layout of a track's carried state (one float64 row of :data:`N_STATE`), so that a stream cut
#: into batches filters exactly as one batch: the time of the state and of the last fix, the
#: outlier probability of the last fix, the outlier-rate, noise-scale and correlation sums, the
#: last two normalised innovations with their weights, the last fix if it was far and rejected
#: (time, x, y, variance), then per model m (``ST_MODEL + 8 m``): probability, x, y, vx, vy and
#: the per-axis covariance (a, b, c).
(ST_STARTED, ST_T, ST_TLAST, ST_POUT, ST_LNUM, ST_LDEN, ST_WNUM, ST_WDEN, ST_TNUM, ST_TDEN, ST_SN,
 ST_SX, ST_SY, ST_PT, ST_PX, ST_PY, ST_FAR, ST_FT, ST_FX, ST_FY, ST_FR, ST_QNUM, ST_QDEN, ST_AOK, ST_AX, ST_AY,
 ST_AV, ST_ODDS, ST_LX, ST_LY, ST_AT, ST_AVX, ST_AVY) = range(33)
ST_MODEL = 33
N_STATE = ST_MODEL + 8 * N_MODELS


@jit_inline
def _hedge(comb, odds, dx, dy, a_v, vxx, vyy, vxy):
    """The output after a jump: the fused position (``comb``) and the anchor (``dx, dy`` away, per-axis
    variance ``a_v``) weighed by the odds of a multipath run, moment-matched."""
    doubt = odds / (1.0 + odds)
    spread = doubt * (1.0 - doubt)
    return (comb[0] - doubt * dx, comb[1] - doubt * dy, (1.0 - doubt) * vxx + doubt * a_v + spread * dx * dx,
            (1.0 - doubt) * vyy + doubt * a_v + spread * dy * dy, (1.0 - doubt) * vxy + spread * dx * dy)


@jit
def _filter_track(lo, hi, t_ms, x_m, y_m, sigma_m, params, state,
                  out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
                  out_p_outlier, out_noise, keep_extra, keep_history, pred, filt, link):
    """Filter fixes ``lo:hi`` of one track from ``state`` (a row of :data:`N_STATE`), writing their output slots
    and the state after the last fix back into ``state``."""
    q = np.array([params[0], params[1], params[2]])
    q_steady0, q_steady_min, q_steady_max = params[1], params[3], params[2]
    q_mem, q_prior_w = params[4], 1.0 / (params[5] * params[5])
    v0var = np.array([0.0, params[6] ** 2, params[7] ** 2])
    dwell = np.array([params[8], params[9], params[10]])
    to_other = np.array([params[11], params[12], params[13]])
    eps, eps_ref_m = params[14], params[16]
    outlier_var = params[15] ** 2
    reach_m = params[17]
    run_odds, run_s, jump_min_m = params[18], params[19], params[20]
    gross_p, gross_var = params[21], params[22] ** 2
    max_speed2 = params[23] ** 2
    lam_n, lam_mem = params[24], params[25]
    lam_min, lam_max, learn_below_m = params[26], params[27], params[28]
    corr_n, corr_mem, corr_max = params[29], params[30], params[31]
    bias_tau_s, slow_s = params[32], params[33]
    gap_s = params[34]
    init_p = np.array([params[35], params[36], max(1.0 - params[35] - params[36], 0.0)])

    m = np.empty((N_MODELS, 8))
    mixed = np.empty((N_MODELS, 8))
    tm = np.empty((N_MODELS, N_MODELS))
    comb = np.empty(10)
    comb_p = np.empty(10)
    w3 = np.empty(N_MODELS)
    qe = q.copy()
    wc = np.empty(N_MODELS)
    wo = np.empty(N_MODELS)
    for j in range(N_MODELS):
        for k in range(8):
            m[j, k] = state[ST_MODEL + 8 * j + k]
    started = state[ST_STARTED] != 0.0
    t_state, t_last = np.int64(state[ST_T]), np.int64(state[ST_TLAST])
    p_out = state[ST_POUT]
    l_num, l_den = state[ST_LNUM], state[ST_LDEN]
    q_num, q_den = state[ST_QNUM], state[ST_QDEN]
    a_ok, a_x, a_y, a_v = state[ST_AOK] != 0.0, state[ST_AX], state[ST_AY], state[ST_AV]
    odds, l_x, l_y, a_t = state[ST_ODDS], state[ST_LX], state[ST_LY], np.int64(state[ST_AT])
    a_vx, a_vy = state[ST_AVX], state[ST_AVY]
    w_num, w_den, tt_num, tt_den = state[ST_WNUM], state[ST_WDEN], state[ST_TNUM], state[ST_TDEN]
    s_n, s_x, s_y = state[ST_SN], state[ST_SX], state[ST_SY]
    p_t, p_x, p_y = np.int64(state[ST_PT]), state[ST_PX], state[ST_PY]
    far, f_t, f_x, f_y, f_r = state[ST_FAR] != 0.0, np.int64(state[ST_FT]), state[ST_FX], state[ST_FY], state[ST_FR]
    dt_cached = -1.0
    dtl_cached = -1.0
    fade_lam = fade_corr = fade_run = rho_bias = 1.0
    for i in range(lo, hi):
        zx, zy, sig = x_m[i], y_m[i], sigma_m[i]
        valid = np.isfinite(zx) and np.isfinite(zy) and np.isfinite(sig) and sig > 0.0
        status = PREDICTED
        linked = 0
        step_x = step_y = np.inf
        nis = np.nan
        dt_last = max(t_ms[i] - t_last, 0) * 1e-3
        t_last = t_ms[i]
        if dt_last != dtl_cached:
            # The fading factors of the time since the last fix, computed once while the interval repeats.
            fade_lam = np.exp(-dt_last / lam_mem)
            fade_corr = np.exp(-dt_last / corr_mem)
            fade_run = np.exp(-dt_last / run_s)
            rho_bias = np.exp(-dt_last / bias_tau_s) if dt_last > 0.0 else 0.999
            dtl_cached = dt_last
        # What the track has learnt of its noise: its scale and its outlier rate.
        lam = min(max((l_num + lam_n) / (l_den + lam_n), lam_min), lam_max)
        # The scale is learnt from, and applied to, satellite-grade fixes only: a tower's coarse accuracy
        # says nothing of a receiver's noise (nor the other way round).
        learnable = sig < learn_below_m
        r = (lam if learnable else 1.0) * sig * sig if valid else np.nan
        dt = max(t_ms[i] - t_state, 0) * 1e-3
        t_prev = t_state
        if valid and (not started or dt > gap_s):
            for j in range(N_MODELS):
                m[j, 0] = init_p[j]
                m[j, 1], m[j, 2], m[j, 3], m[j, 4] = zx, zy, 0.0, 0.0
                m[j, 5], m[j, 6], m[j, 7] = r, 0.0, v0var[j]
                for k in range(8):
                    mixed[j, k] = np.nan
            started = True
            t_state = t_ms[i]
            p_out = 0.0
            s_n = 0.0
            p_t, p_x, p_y = t_ms[i], zx, zy
            far = False
            status = REINITIALISED
        elif started:
            linked = 1
            if dt != dt_cached:
                transition(dt, dwell, to_other, tm)
                dt_cached = dt
            # Steady motion's acceleration level is the track's own (a straight walk, a car on a road):
            # covariance matching of its innovations, starting at q_steady_m2ps3.
            q[STEADY] = min(max((q_num + q_steady0 * q_prior_w) / (q_den + q_prior_w), q_steady_min), q_steady_max)
            if keep_history:
                combine(m, comb_p)   # the filtered state after the previous fix, for the smoother's prior
            mix_predict(m, tm, dt, q, v0var, mixed, w3, qe)
            if valid:
                # Each model's fix is clean, N(nu; 0, (a + r) I), or the start of multipath,
                # N(nu; 0, (a + r + outlier_sigma^2) I), at the track's rate: a Gaussian scale mixture.
                jm = 0
                for j in range(1, N_MODELS):
                    if mixed[j, 0] > mixed[jm, 0]:
                        jm = j
                ox, oy = zx - mixed[jm, 1], zy - mixed[jm, 2]
                ca = mixed[jm, 5]
                nis = (ox * ox + oy * oy) / (ca + r)
                # (Densities scaled by exp(emin), the largest of their exponentials, to stay finite.)
                emin = np.inf
                for j in range(N_MODELS):
                    if mixed[j, 0] > 0.0:   # (a motion that cannot be must not set the scale)
                        nx, ny = zx - mixed[j, 1], zy - mixed[j, 2]
                        emin = min(emin, 0.5 * (nx * nx + ny * ny) / (mixed[j, 5] + r + outlier_var))
                if not emin < np.inf:
                    emin = 0.0
                # An augmented fix (sigma under outlier_ref_sigma_m) is multipath the more rarely.
                eps_k = eps * min(sig / eps_ref_m, 1.0) ** _AUGMENTED_MP_POW
                # A gross error (a fix from nowhere: a bad solution, a wrong tower) is flat over a disc of
                # gross_reach_m: it explains a lone fix that no motion and no multipath can.
                lg = gross_p * 2.0 / gross_var * np.exp(min(emin, 700.0))
                total = 0.0
                for j in range(N_MODELS):
                    s = mixed[j, 5] + r
                    so = s + outlier_var
                    nx, ny = zx - mixed[j, 1], zy - mixed[j, 2]
                    d2 = nx * nx + ny * ny
                    lc = (1.0 - eps_k - gross_p) * np.exp(emin - 0.5 * d2 / s) / s
                    lo_ = eps_k * np.exp(emin - 0.5 * d2 / so) / so
                    lj = lc + lo_ + lg
                    # (With gross_p = 0 every term of a far-off motion can underflow: no update there.)
                    wc[j] = lc / lj if lj > 0.0 else 0.0
                    wo[j] = lo_ / lj if lj > 0.0 else 0.0
                    m[j, 0] = mixed[j, 0] * lj
                    total += m[j, 0]
                w_clean = 0.0
                for j in range(N_MODELS):
                    pj = m[j, 0] / total if total > 0.0 else mixed[j, 0]
                    w, wm = wc[j], wo[j]
                    w_clean += pj * w
                    ap, bp, cp = mixed[j, 5], mixed[j, 6], mixed[j, 7]
                    # Clean: gain against r; multipath: the fix still says where the subject is, give or
                    # take the offset (gain against r + outlier_sigma^2); gross: no gain. Moment-matched.
                    inv_c = 1.0 / (ap + r)
                    inv_o = 1.0 / (ap + r + outlier_var)
                    k1c, k2c, k1o, k2o = ap * inv_c, bp * inv_c, ap * inv_o, bp * inv_o
                    k1, k2 = w * k1c + wm * k1o, w * k2c + wm * k2o
                    wg = 1.0 - w - wm
                    s11 = w * (k1c - k1) ** 2 + wm * (k1o - k1) ** 2 + wg * k1 * k1
                    s12 = w * (k1c - k1) * (k2c - k2) + wm * (k1o - k1) * (k2o - k2) + wg * k1 * k2
                    s22 = w * (k2c - k2) ** 2 + wm * (k2o - k2) ** 2 + wg * k2 * k2
                    nx, ny = zx - mixed[j, 1], zy - mixed[j, 2]
                    half = 0.5 * (nx * nx + ny * ny)
                    m[j, 0] = pj
                    m[j, 1] = mixed[j, 1] + k1 * nx
                    m[j, 2] = mixed[j, 2] + k1 * ny
                    m[j, 5] = ap - k1 * ap + s11 * half
                    if j == STILL:
                        m[j, 3] = m[j, 4] = m[j, 6] = m[j, 7] = 0.0
                    else:
                        m[j, 3] = mixed[j, 3] + k2 * nx
                        m[j, 4] = mixed[j, 4] + k2 * ny
                        m[j, 6] = bp - k1 * bp + s12 * half
                        m[j, 7] = cp - k2 * bp + s22 * half
                p_out = 1.0 - w_clean
                status = ACCEPTED if w_clean >= 0.5 else REJECTED
                # Covariance matching (Myers and Tapley 1976) while the prior believes in steady motion:
                # |nu|^2 / 2 - (a0 + r) estimates q g, with information (g / s)^2 and large innovations clipped.
                # (Weighed by the prior, not the posterior: a turn the posterior gives to the manoeuvre must
                # count too, or the level learns only from the fixes that fit it and sinks to its floor.)
                if dt > 0.0 and mixed[STEADY, 0] > 0.5:
                    g = dt * dt * dt * (1.0 / 3.0)
                    s_st = mixed[STEADY, 5] + r
                    a0 = mixed[STEADY, 5] - q[STEADY] * g
                    nx, ny = zx - mixed[STEADY, 1], zy - mixed[STEADY, 2]
                    wq = g / s_st * mixed[STEADY, 0]
                    lam_q = q_mem / (q_mem + dt)
                    q_num = lam_q * q_num + wq / s_st * (0.5 * min(nx * nx + ny * ny, 4.0 * s_st) - a0 - r)
                    q_den = lam_q * q_den + wq * wq
                t_state = max(t_state, t_ms[i])
                # Two rejected fixes in a row beyond multipath's reach that a plausible speed joins:
                # the subject moved (a car pulling away, a ride after an outage). Restart on them.
                reach = reach_m + 3.0 * np.sqrt(r)
                far_now = status == REJECTED and ox * ox + oy * oy > reach * reach
                if far_now and far:
                    span = (t_ms[i] - f_t) * 1e-3
                    jx, jy = zx - f_x, zy - f_y
                    if span > 0.0 and jx * jx + jy * jy <= max_speed2 * span * span:
                        rs = r + f_r
                        for j in range(N_MODELS):
                            m[j, 1], m[j, 2], m[j, 5] = zx, zy, r
                            if j != STILL:
                                m[j, 3], m[j, 4] = jx / span, jy / span
                                m[j, 6], m[j, 7] = r / span, rs / (span * span)
                        m[STILL, 0], m[STEADY, 0], m[MANOEUVRE, 0] = 0.0, 0.5, 0.5
                        p_out = 0.0
                        far_now = False
                        status = REINITIALISED
                        linked = 0
                far = far_now
                f_t, f_x, f_y, f_r = t_ms[i], zx, zy, r
                # How much of the fix's error the noise, not a manoeuvre, makes.
                info = r / (ca + r) * w_clean
                # A model the fixes have left behind restarts from the mixture, ready for when the
                # subject changes motion instead of drifting off, ever vaguer.
                combine(m, comb)
                for j in range(N_MODELS):
                    if j != STILL and not learnable and m[STILL, 0] > 0.5:
                        # On a tower's fixes a moving motion cannot be followed, only imagined: while the
                        # subject is likelier still, a motion is centred where the still one is, its
                        # spread (how far it may have gone) kept.
                        dx, dy = m[j, 1] - m[STILL, 1], m[j, 2] - m[STILL, 2]
                        m[j, 5] += 0.5 * (dx * dx + dy * dy)
                        m[j, 7] += 0.5 * (m[j, 3] * m[j, 3] + m[j, 4] * m[j, 4])
                        m[j, 1], m[j, 2], m[j, 3], m[j, 4], m[j, 6] = m[STILL, 1], m[STILL, 2], 0.0, 0.0, 0.0
                    elif m[j, 0] < _STALE_P:
                        m[j, 1], m[j, 2], m[j, 5] = comb[0], comb[1], comb[7]
                        if j != STILL:
                            m[j, 3], m[j, 4], m[j, 6], m[j, 7] = comb[2], comb[3], comb[8], comb[9]
                # The mixture the next fix starts from (and the smoother carries): after those restarts.
                ex, ey = zx - comb[0], zy - comb[1]
                vpost = comb[7]
                combine(m, comb)
                # The noise scale (variational Bayes): E|z - x|^2 / 2 + P = lambda sigma^2, weighted as above.
                u = (0.5 * (ex * ex + ey * ey) + vpost) / (sig * sig)
                if learnable:
                    l_num = fade_lam * l_num + info * min(u, _U_CLIP * lam, lam_max)
                    l_den = fade_lam * l_den + info
                # Do errors average away? Two estimates of the noise: from differences of consecutive
                # fixes (motion taken out), which a slowly varying bias hardly enters, and, while the
                # subject is still, from the spread of the fixes about their slow mean, which it does.
                # Their gap is the share of the noise shared in time (learnt over corr_memory_s).
                fade = fade_corr
                inv_s2 = 1.0 / (sig * sig)
                if p_t > 0 and dt_last <= gap_s:
                    ddx = zx - p_x - comb[2] * dt_last
                    ddy = zy - p_y - comb[3] * dt_last
                    w_num = fade * w_num + w_clean * 0.25 * (ddx * ddx + ddy * ddy) * inv_s2
                    w_den = fade * w_den + w_clean
                if m[STILL, 0] > 0.9:
                    # The running mean of the fixes since the subject stopped (at most slow_mean_s of
                    # them): a fix deviates from the mean of n before it by var (1 + 1 / n) if independent.
                    if s_n > 0.0:
                        ddx, ddy = zx - s_x, zy - s_y
                        tt_num = fade * tt_num + w_clean * 0.5 * (ddx * ddx + ddy * ddy) * inv_s2 * s_n / (s_n + 1.0)
                        tt_den = fade * tt_den + w_clean
                    s_n = min(s_n + 1.0, max(slow_s / max(dt_last, 1e-3), 1.0))
                    s_x += (zx - s_x) / s_n
                    s_y += (zy - s_y) / s_n
                else:
                    s_n = 0.0
                if p_t > 0 and 10.0 <= dt_last <= 120.0:
                    step_x, step_y = zx - p_x, zy - p_y
                p_t, p_x, p_y = t_ms[i], zx, zy
            else:
                for j in range(N_MODELS):
                    for k in range(8):
                        m[j, k] = mixed[j, k]
                t_state = max(t_state, t_ms[i])
        if started:
            if not (valid and linked):
                combine(m, comb)
            # Errors shared over time (a multipath bias, a drifting solution) do not average away: the
            # reported covariance is that of the mean of the fixes the filter leans on, so correlated.
            inflate = 1.0
            if valid and tt_den > corr_n:
                share = 1.0 - (w_num + corr_n * lam) / (w_den + corr_n) / ((tt_num + corr_n * lam) / (tt_den + corr_n))
                if share > 0.0:
                    # The variance of a mean of n_eff fixes whose shared part is AR(1) with lag-one
                    # correlation rho: 1 + 2 sum_k (1 - k / n) rho^k times that of independent ones.
                    rho = rho_bias
                    n_eff = max(r / comb[7], 1.0)
                    g = 1.0 + 2.0 * rho / (1.0 - rho) * (1.0 - (1.0 - rho ** n_eff) / (n_eff * (1.0 - rho)))
                    inflate = min(1.0 - share + share * g, corr_max)
            # Error the fixes report but their scatter does not show: a satellite fix's accuracy is its whole
            # error, so when the learnt scale stays below 1 by more than its own uncertainty (two sds,
            # lambda / sqrt(n)), the rest is error the filter cannot see, a bias it follows as motion (or an
            # accuracy reported too wide), and it is added to the covariance, never averaged away.
            unseen = 0.0
            if valid and learnable and lam < 1.0:
                unseen = max(1.0 - lam - _UNSEEN_SDS * lam / np.sqrt(l_den + lam_n), 0.0) * sig * sig
            ox_, oy_ = comb[0], comb[1]
            vxx, vyy, vxy = inflate * comb[4] + unseen, inflate * comb[5] + unseen, inflate * comb[6]
            # The fused position less the jump doubt's anchor, carried to the fix's time at its velocity.
            since = (t_ms[i] - a_t) * 1e-3
            dx, dy = comb[0] - (a_x + a_vx * since), comb[1] - (a_y + a_vy * since)
            if valid and status != REINITIALISED:
                # A subject whose fixes jump within multipath's reach and stay there, relative to where it
                # stood or to the line it walked: a multipath run (an offset that ends after a mean run_s)
                # or a move. The filter follows the fixes; the output weighs the two places by Bayes'
                # rule: odds of a run at the start run_prior_odds, fading as the run would have ended,
                # gone once the position moves on relative to the anchor (an offset keeps the anchor's
                # pace), leaves multipath's reach, or comes back. The anchor: where a still subject stood,
                # or a moving subject's last clean fused position and velocity, carried on at that
                # velocity.
                d2 = dx * dx + dy * dy
                still_anchor = a_vx == 0.0 and a_vy == 0.0
                # The step between the last two fixes beside the anchor's pace (a run's fixes keep it; a
                # subject who stops does not, and its step is then the smaller).
                rel2 = (step_x - a_vx * dt_last) ** 2 + (step_y - a_vy * dt_last) ** 2
                if odds > 0.0:
                    odds *= fade_run
                    # Where the fused position stood when the run began, carried at the anchor's pace.
                    l_x += a_vx * dt_last
                    l_y += a_vy * dt_last
                    mx, my = comb[0] - l_x, comb[1] - l_y
                    if mx * mx + my * my > 9.0 * (r + comb[7]):
                        odds *= 0.01
                    if d2 > reach_m * reach_m:
                        a_ok = False
                    if d2 > reach_m * reach_m or d2 < 9.0 * (comb[7] + a_v) or odds < _SPENT_ODDS:
                        odds = 0.0
                elif a_ok and jump_min_m * jump_min_m < d2 <= reach_m * reach_m and d2 > 9.0 * (comb[7] + a_v) \
                        and d2 > since * since * _STROLL_MPS ** 2 and (
                        (rel2 < 18.0 * r and (still_anchor or 4.0 * rel2 < step_x * step_x + step_y * step_y
                                                                 + 18.0 * r)
                         and t_ms[i] - a_t <= 2500.0 * dt_last)
                        or (still_anchor and m[STILL, 0] > 0.9 and comb[2] * comb[2] + comb[3] * comb[3] < 0.04)):
                    # A jump, not a walk (faster than a stroll from where the track stood or off the line
                    # it walked, then two fixes together right after: their step within the noise of two
                    # fixes of the anchor's pace and, off a walker's line, under half the step give or take
                    # that noise; or the track still again), within multipath's reach.
                    odds = run_odds
                    l_x, l_y = comb[0], comb[1]
                if odds == 0.0:
                    l_x, l_y = comb[0], comb[1]
                if odds == 0.0 and p_out < _ANCHOR_CLEAN_P:
                    if m[STILL, 0] > 0.9:
                        a_ok, a_x, a_y, a_v, a_t, a_vx, a_vy = True, comb[0], comb[1], comb[7], t_ms[i], 0.0, 0.0
                    elif 10.0 <= dt_last <= 120.0:
                        # Where a run can be told from a walk (two fixes together 10-120 s apart), a walker's
                        # anchor; faster subjects have none (they turn and brake by more than an offset).
                        # Denser fixes keep the anchor where the subject stood.
                        if comb[2] * comb[2] + comb[3] * comb[3] < _ANCHOR_WALK_MPS * _ANCHOR_WALK_MPS:
                            a_ok, a_x, a_y, a_v, a_t = True, comb[0], comb[1], comb[7], t_ms[i]
                            a_vx, a_vy = comb[2], comb[3]
                        else:
                            a_ok = False
                if odds > 0.0:
                    ox_, oy_, vxx, vyy, vxy = _hedge(comb, odds, dx, dy, a_v, vxx, vyy, vxy)
            elif status == REINITIALISED:
                odds, a_ok = 0.0, False
                l_x, l_y = comb[0], comb[1]
            elif odds > 0.0:
                # A fix without a position in a run: the run may end meanwhile, the two places stand.
                odds *= fade_run
                ox_, oy_, vxx, vyy, vxy = _hedge(comb, odds, dx, dy, a_v, vxx, vyy, vxy)
            out_x[i], out_y[i] = ox_, oy_
            out_var_x[i], out_var_y[i], out_cov_xy[i] = vxx, vyy, vxy
            out_vx[i], out_vy[i] = comb[2], comb[3]
        else:
            out_x[i] = out_y[i] = out_var_x[i] = out_var_y[i] = out_cov_xy[i] = out_vx[i] = out_vy[i] = np.nan
        out_status[i] = status
        if keep_extra:
            out_nis[i] = nis
            out_p_outlier[i] = p_out if valid and started else np.nan
            out_noise[i] = np.sqrt(r)
        if keep_history:
            link[i] = linked
            if linked:
                # The smoother's prior: the previous filtered state carried by constant velocity, with the
                # process noise of the motions weighed as the fix weighed them (a still motion adds none to
                # the velocity), so that it always covers the filtered state it came from.
                dtp = max(t_ms[i] - t_prev, 0) * 1e-3
                qa = qb = qc = 0.0
                for j in range(N_MODELS):
                    if j == STILL:
                        qa += m[j, 0] * qe[STILL] * dtp
                    else:
                        qa += m[j, 0] * qe[j] * dtp * dtp * dtp * (1.0 / 3.0)
                        qb += m[j, 0] * qe[j] * 0.5 * dtp * dtp
                        qc += m[j, 0] * qe[j] * dtp
                pa, pb, pc = comb_p[7], comb_p[8], comb_p[9]
                pred[i, 0], pred[i, 1] = comb_p[0] + dtp * comb_p[2], comb_p[1] + dtp * comb_p[3]
                pred[i, 2], pred[i, 3] = comb_p[2], comb_p[3]
                pred[i, 4] = pa + dtp * (2.0 * pb + dtp * pc) + qa
                pred[i, 5] = pb + dtp * pc + qb
                pred[i, 6] = pc + qc
            else:
                for k in range(7):
                    pred[i, k] = np.nan
            if started:
                filt[i, 0], filt[i, 1], filt[i, 2], filt[i, 3] = comb[0], comb[1], comb[2], comb[3]
                filt[i, 4], filt[i, 5], filt[i, 6] = comb[7], comb[8], comb[9]
            else:
                for k in range(7):
                    filt[i, k] = np.nan
    state[ST_STARTED] = 1.0 if started else 0.0
    state[ST_T], state[ST_TLAST], state[ST_POUT] = t_state, t_last, p_out
    state[ST_LNUM], state[ST_LDEN] = l_num, l_den
    state[ST_QNUM], state[ST_QDEN] = q_num, q_den
    state[ST_AOK], state[ST_AX], state[ST_AY], state[ST_AV] = 1.0 if a_ok else 0.0, a_x, a_y, a_v
    state[ST_ODDS], state[ST_LX], state[ST_LY], state[ST_AT] = odds, l_x, l_y, a_t
    state[ST_AVX], state[ST_AVY] = a_vx, a_vy
    state[ST_WNUM], state[ST_WDEN], state[ST_TNUM], state[ST_TDEN] = w_num, w_den, tt_num, tt_den
    state[ST_SN], state[ST_SX], state[ST_SY] = s_n, s_x, s_y
    state[ST_PT], state[ST_PX], state[ST_PY] = p_t, p_x, p_y
    state[ST_FAR], state[ST_FT], state[ST_FX], state[ST_FY], state[ST_FR] = 1.0 if far else 0.0, f_t, f_x, f_y, f_r
    for j in range(N_MODELS):
        for k in range(8):
            state[ST_MODEL + 8 * j + k] = m[j, k]


@jit
def _run(offsets, t_ms, x_m, y_m, sigma_m, params, state,
         out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
         out_p_outlier, out_noise, keep_extra, keep_history, pred, filt, link):
    for s in range(offsets.size - 1):
        _filter_track(offsets[s], offsets[s + 1], t_ms, x_m, y_m, sigma_m, params, state[s],
                      out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
                      out_p_outlier, out_noise, keep_extra, keep_history, pred, filt, link)
