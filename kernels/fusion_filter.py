"""The per-track gated constant-velocity Kalman filter: the numba kernel behind :mod:`geomon.kernels.fusion`.

:func:`_filter_track` runs one track (fixes ``lo:hi``) carrying its state row (``ST_*`` columns);
:func:`_run` runs every track of a CSR batch in parallel, each writing its own output slots. The
model, gating, re-initialisation and stationary handling are documented in
:func:`geomon.kernels.fusion.fuse_tracks`, the public entry points in :mod:`geomon.kernels.fusion`.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit, jit_parallel, prange
from geomon.kernels.fusion_fits import _DOUBT_MIN, _MAX_DOUBT, _consistent_fit, _jump

#: Status codes, one per fix.
ACCEPTED = 0  #: the fix updated the state
REJECTED = 1  #: the fix failed the gate; the output is the prediction (covariance widened)
REINITIALISED = 2  #: the state restarted here: first fix, after a gap, or after a consistent rejected run
PREDICTED = 3  #: the fix has no usable position; the output is the prediction (NaN before any fix)

#: Columns of the ``(n, 7)`` history arrays: position (m), velocity (m/s) and
#: the per-axis covariance (m^2, m^2/s, m^2/s^2), shared by x and y.
HISTORY_COLUMNS = ("x_m", "y_m", "vx_mps", "vy_mps", "p_pp_m2", "p_pv_m2ps", "p_vv_m2ps2")

#: Defaults of the filter parameters, in the order the kernel reads them
#: (documented in :func:`fuse_tracks`).
DEFAULT_PARAMS = {
    "gate_nis": 13.815510557964274,  # chi-square 99.9 %, 2 dof
    "gate_q_m2ps3": 0.01,
    "manoeuvre_nis": 9.210340371976182,  # chi-square 99 %, 2 dof
    "q_init_m2ps3": 0.02,
    "q_min_m2ps3": 1e-7,
    "q_max_m2ps3": 50.0,
    "q_prior_sd_m2ps3": 3.0,
    "q_memory_s": 1200.0,
    "vehicle_q_gain_ps": 0.02,
    "walk_speed_mps": 2.5,
    "sigma_v0_mps": 3.0,
    "zupt_gate": 1.0,
    "reinit_k": 3,
    "consistent_chi2": 9.210340371976182,  # chi-square 99 %, 2 k - 4 = 2 dof
    "gap_s": 300.0,
    "gap_speed_mps": 1.5,
    "outlier_start_p": 0.02,
    "outlier_stay_p": 0.75,
    "outlier_sigma_m": 30.0,
    "q_clip_nis": 4.0,
    "zupt_r": 0.02,
    "fade_min_speed_mps": 0.5,
    "real_jump_rate": 0.002,
    "jump_memory_s": 60.0,
    "connect_chi2": 13.276704135987622,  # chi-square 99 %, 2 (k + 1) - 4 = 4 dof
    "zupt_max_sd_mps": 0.3,
    "jump_real_sigma_m": 300.0,
    "outlier_memory_s": 3600.0,
    "outlier_prior_n": 20.0,
    "jump_min_m": 10.0,
    "consistent_allow_max_m": 20.0,
    "connect_max_m": 200.0,
    "manoeuvre_p": 0.05,
    "zupt_vague_m": 50.0,
}

_MAX_REINIT_K = 16
#: Below this the doubt is dropped (saves an exp per fix on settled tracks).
_DOUBT_ZERO = 1e-9

#: Layout of a track's carried state (one float64 row of :data:`N_STATE`), so
#: that a stream cut into batches filters exactly as one batch: started flag,
#: time of the state (ms), position, velocity, covariance (a, b, c), the
#: process-noise estimate and its running sums, and the buffered rejected fixes
#: (time, x, y, sigma) that may yet prove consistent.
(ST_STARTED, ST_T, ST_X, ST_Y, ST_VX, ST_VY, ST_A, ST_B, ST_C, ST_Q, ST_QNUM, ST_QDEN, ST_NPEND, ST_OUT,
 ST_DOUBT, ST_JUMP2, ST_TLAST, ST_STILL, ST_ENUM, ST_EDEN, ST_ANCHOR) = range(21)
ST_PEND = ST_ANCHOR + 7
N_STATE = ST_PEND + 4 * _MAX_REINIT_K


@jit
def _filter_track(lo, hi, t_ms, x_m, y_m, sigma_m, params, state,
                  out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
                  out_doubt, out_jump_var, keep_extra, keep_history, pred, filt, link):
    """Filter fixes ``lo:hi`` of one track from ``state`` (a row of :data:`N_STATE`), writing their output slots
    and the state after the last fix back into ``state``."""
    gate_nis, gate_q, manoeuvre_nis = params[0], params[1], params[2]
    q_init, q_min, q_max, q_prior_sd, q_memory_s = params[3], params[4], params[5], params[6], params[7]
    q_prior_w = 1.0 / (q_prior_sd * q_prior_sd)
    vehicle_gain, walk_speed2 = params[8], params[9] * params[9]
    v0_var, zupt_gate = params[10] * params[10], params[11]
    reinit_k, consistent_chi2 = int(params[12]), params[13]
    gap_s, gap_speed2 = params[14], params[15] * params[15]
    eps0, stay_p = params[16], params[17]
    outlier_var = params[18] * params[18]
    q_clip_nis, zupt_r = params[19], params[20]
    fade_speed2 = params[21] * params[21]
    real_rate, jump_memory_s, connect_chi2 = params[22], params[23], params[24]
    zupt_max_var = params[25] * params[25]
    jump_real_var = params[26] * params[26]
    inv_eps_memory, eps_prior_n = 1.0 / params[27], params[28]
    jump_min_var = params[29] * params[29]
    allow_max_var = params[30] * params[30]
    connect_max2 = params[31] * params[31]
    manoeuvre_p = params[32]
    vague_var = params[33] * params[33]
    # With an outlier rate of at most 0.1 a fix of NIS up to clean_nis is clean
    # whatever its prior: (1 - p)(1 - manoeuvre_p) exp(-nis / 2) / s >= p / s.
    clean_nis = 2.0 * np.log(9.0 * (1.0 - manoeuvre_p))

    started = state[ST_STARTED] != 0.0
    if started:
        t_state = np.int64(state[ST_T])
        px, py, vx, vy = state[ST_X], state[ST_Y], state[ST_VX], state[ST_VY]
        a, b, c = state[ST_A], state[ST_B], state[ST_C]
        q, q_num, q_den = state[ST_Q], state[ST_QNUM], state[ST_QDEN]
    else:
        t_state = np.int64(0)
        px = py = vx = vy = a = b = c = np.nan
        q, q_num, q_den = q_init, 0.0, 0.0
    n_pending = int(state[ST_NPEND])
    outlier = state[ST_OUT] != 0.0
    doubt, jump2_last, t_last = state[ST_DOUBT], state[ST_JUMP2], np.int64(state[ST_TLAST])
    e_num, e_den = state[ST_ENUM], state[ST_EDEN]
    anchor = (state[ST_ANCHOR], state[ST_ANCHOR + 1], state[ST_ANCHOR + 2], state[ST_ANCHOR + 3], state[ST_ANCHOR + 4],
              state[ST_ANCHOR + 5], state[ST_ANCHOR + 6])
    still = state[ST_STILL] != 0.0
    pend = np.empty((4, _MAX_REINIT_K + 1))
    for j in range(n_pending):
        for r in range(4):
            pend[r, j + 1] = state[ST_PEND + r * _MAX_REINIT_K + j]
    for i in range(lo, hi):
        zx = x_m[i]
        zy = y_m[i]
        sig = sigma_m[i]
        valid = np.isfinite(zx) and np.isfinite(zy) and np.isfinite(sig) and sig > 0.0
        status = PREDICTED
        linked = 0
        mx = my = mvx = mvy = ap = bp = cp = np.nan
        f = 1.0
        nis = np.nan
        dt_last = max(t_ms[i] - t_last, 0) * 1e-3
        t_last = t_ms[i]
        if doubt > 0.0:
            # Each fix that stays with the jumped track makes multipath, whose
            # runs end, less likely: the odds fade with the run's persistence.
            odds = doubt / (1.0 - doubt) * np.exp(-dt_last / jump_memory_s)
            doubt = odds / (1.0 + odds)
            if doubt < _DOUBT_ZERO:
                doubt = 0.0
                jump2_last = 0.0
        if not started:
            if valid:
                started = True
                px, py, vx, vy = zx, zy, 0.0, 0.0
                a, b, c = sig * sig, 0.0, v0_var
                t_state = t_ms[i]
                outlier = False
                still = False
                status = REINITIALISED
        else:
            dt = max(t_ms[i] - t_state, 0) * 1e-3
            gap = dt > gap_s
            if gap:
                # After a long outage the old velocity says nothing: restart it
                # and let the position spread at a plausible speed.
                mx, my, mvx, mvy = px, py, 0.0, 0.0
                an = a + gap_speed2 * dt * dt
                ap, bp, cp = an, 0.0, v0_var
                g = 0.0
                qe = q
            else:
                linked = 1
                dt2 = dt * dt
                g = dt2 * dt * (1.0 / 3.0)
                mx = px + dt * vx
                my = py + dt * vy
                mvx, mvy = vx, vy
                an = a + dt * (2.0 * b + dt * c)
                # A vehicle's turns and stops are accelerations that grow with speed.
                qe = max(q, vehicle_gain * (vx * vx + vy * vy - walk_speed2))
                ap = an + qe * g
                bp = b + dt * c + 0.5 * qe * dt2
                cp = c + qe * dt
            if valid:
                r = sig * sig
                s = ap + r
                inv = 1.0 / s
                nx = zx - mx
                ny = zy - my
                d2 = nx * nx + ny * ny
                nis = d2 * inv
                # Gate against a prior that allows at least a walker's manoeuvre,
                # and weigh "the fix is clean" (N(0, s)) against "the fix is
                # multipath" (N(0, s + outlier_sigma^2)), whose prior is higher
                # right after an outlier because multipath comes in runs.
                sg = s + max(gate_q - qe, 0.0) * g
                so = s + outlier_var
                # A run goes on with probability stay_p per fix, i.e. fades over
                # jump_memory_s: after a long silence the fix is judged afresh.
                # This track's rate of outliers: the prior that a fix is one.
                eps = (e_num + eps0 * eps_prior_n) / (e_den + eps_prior_n)
                accept = d2 <= gate_nis * sg
                if accept and (outlier or eps > 0.1 or nis > clean_nis):
                    # (Below clean_nis, with eps <= 0.1, "clean" wins whatever s.)
                    # A clean fix follows the model, or (manoeuvre_p) a walker's
                    # manoeuvre the gate allows for.
                    p_dirty = eps + (stay_p - eps) * np.exp(-dt_last / jump_memory_s) if outlier else eps
                    clean = (1.0 - p_dirty) * ((1.0 - manoeuvre_p) * np.exp(-0.5 * nis) / s
                                               + manoeuvre_p * np.exp(-0.5 * d2 / sg) / sg)
                    dirty = p_dirty * np.exp(-0.5 * d2 / so) / so
                    accept = clean >= dirty
                slow = mvx * mvx + mvy * mvy < fade_speed2
                if not gap and d2 > manoeuvre_nis * s and still:
                    # A track standing still does not turn: a fix this far off is
                    # multipath, or the start of a move that consistent fixes will show.
                    accept = False
                outlier = not accept
                if not gap:
                    lam_e = max(1.0 - dt_last * inv_eps_memory, 0.0)
                    e_num = lam_e * e_num + (1.0 if outlier else 0.0)
                    e_den = lam_e * e_den + 1.0
                if accept:
                    if not gap and d2 > manoeuvre_nis * s and not slow:
                        # A manoeuvre: scale the prior by the fading factor that makes
                        # this innovation typical (|nu|^2 / 2 = f a_prior + r), so a
                        # turn is followed now instead of raising q for the next leg.
                        # What the widening adds to the move may be multipath's.
                        f = (0.5 * d2 - r) / ap
                        k0 = ap * inv
                        ap, bp, cp = f * ap, f * bp, f * cp
                        invu = 1.0 / (ap + r)
                        extra = ap * invu - k0
                        faded = True
                    else:
                        invu = inv
                        faded = False
                    k1 = ap * invu
                    k2 = bp * invu
                    px = mx + k1 * nx
                    py = my + k1 * ny
                    if faded:
                        doubt, jump2_last, anchor = _jump(doubt, jump2_last, anchor, mx, my, mvx, mvy, px, py,
                                                          extra * extra * d2, t_ms[i], eps, stay_p, real_rate,
                                                          outlier_var, jump_real_var, jump_min_var, fade_speed2)
                    vx = mvx + k2 * nx
                    vy = mvy + k2 * ny
                    a = ap * r * invu
                    b = bp * r * invu
                    c = cp - bp * k2
                    n_pending = 0
                    t_state = max(t_state, t_ms[i])
                else:
                    # The state stays as it was, as for a missing fix; only the
                    # reported variance is widened (see the output below).
                    f = (0.5 * d2 - r) / ap
                if gap:
                    status = REJECTED
                    if accept:
                        status = REINITIALISED
                        still = False
                        q, q_num, q_den = q_init, 0.0, 0.0
                elif accept:
                    status = ACCEPTED
                    if doubt > _DOUBT_MIN and not faded:
                        # Does the fix move as the track does (the jump was real) or
                        # as the anchor plus the jump's offset (multipath)?
                        tau = (t_ms[i] - anchor[4]) * 1e-3
                        ex = zx - (anchor[0] + anchor[2] * tau + anchor[5])
                        ey = zy - (anchor[1] + anchor[3] * tau + anchor[6])
                        # Dead reckoning from a moving anchor drifts as a walker may turn.
                        moving_anchor = anchor[2] * anchor[2] + anchor[3] * anchor[3] >= fade_speed2
                        vm = s + (q * tau * tau * tau / 3.0 if moving_anchor else 0.0)
                        log_lr = -0.5 * (ex * ex + ey * ey) / vm - np.log(vm) + 0.5 * nis + np.log(s)
                        odds = doubt / (1.0 - doubt) * np.exp(min(log_lr, 50.0))
                        doubt = min(odds / (1.0 + odds), _MAX_DOUBT)
                        # The offset is learnt from the fixes as the track is.
                        anchor = (anchor[0], anchor[1], anchor[2], anchor[3], anchor[4],
                                  anchor[5] + k1 * ex, anchor[6] + k1 * ey)
                    # Covariance matching: |nu|^2 / 2 - (a0 + r) estimates q g, with
                    # information (g / s)^2; fading memory; large innovations clipped.
                    w = g * inv
                    lam = q_memory_s / (q_memory_s + dt)
                    q_num = lam * q_num + w * inv * (0.5 * min(d2, q_clip_nis * s) - an - r)
                    q_den = lam * q_den + w * w
                    q = min(max((q_num + q_init * q_prior_w) / (q_den + q_prior_w), q_min), q_max)
                    still = vx * vx + vy * vy < zupt_gate * c and (c < zupt_max_var or r > vague_var)
                    if still:
                        # Zero-velocity update: v = 0 observed with covariance zupt_r * P_vv.
                        gv = 1.0 / (1.0 + zupt_r)
                        kp = gv * b / c
                        px -= kp * vx
                        py -= kp * vy
                        vx -= gv * vx
                        vy -= gv * vy
                        a -= kp * b
                        b -= gv * b
                        c -= gv * c
                else:
                    status = REJECTED
                if not accept and reinit_k > 0:
                    # Rejected fixes are buffered in columns 1..k; column 0 is
                    # the track where it was last updated.
                    if n_pending == reinit_k:
                        for j in range(1, reinit_k):
                            for r in range(4):
                                pend[r, j] = pend[r, j + 1]
                        n_pending -= 1
                    n_pending += 1
                    pend[0, n_pending] = t_ms[i]
                    pend[1, n_pending] = zx
                    pend[2, n_pending] = zy
                    pend[3, n_pending] = sig
                    if n_pending == reinit_k:
                        pend[0, 0] = t_state
                        pend[1, 0] = px
                        pend[2, 0] = py
                        pend[3, 0] = np.sqrt(a)
                        # The run must fit one motion, and unless it is farther than
                        # multipath reaches, that motion must start where the track
                        # was: a run that sits still away from a still track is
                        # what multipath does.
                        ok, fx, fy, fvx, fvy, fa, fb, fc = _consistent_fit(
                            pend[:, 1:], n_pending, consistent_chi2, gate_q, vehicle_gain, walk_speed2, allow_max_var)
                        far = (fx - mx) * (fx - mx) + (fy - my) * (fy - my) > connect_max2
                        if ok and not far:
                            ok = _consistent_fit(pend, n_pending + 1, connect_chi2, gate_q, vehicle_gain, walk_speed2,
                                                allow_max_var)[0]
                        if ok:
                            # How far the state jumps, measured against the prediction;
                            # the jump may have followed a multipath run.
                            jump2 = (fx - mx) * (fx - mx) + (fy - my) * (fy - my)
                            nis = jump2 / (ap + fa)
                            doubt, jump2_last, anchor = _jump(doubt, jump2_last, anchor, mx, my, mvx, mvy, fx, fy,
                                                              jump2, t_ms[i], eps, stay_p, real_rate,
                                                              outlier_var, jump_real_var, jump_min_var, fade_speed2)
                            px, py, vx, vy, a, b, c = fx, fy, fvx, fvy, fa, fb, fc
                            outlier = False
                            still = False
                            n_pending = 0
                            q, q_num, q_den = q_init, 0.0, 0.0
                            t_state = max(t_state, t_ms[i])
                            status = REINITIALISED
                            linked = 0
        if status == PREDICTED or status == REJECTED:
            ox, oy, ovx, ovy, oa, ob, oc = mx, my, mvx, mvy, ap, bp, cp
        else:
            ox, oy, ovx, ovy, oa, ob, oc = px, py, vx, vy, a, b, c
        # A rejected fix says that either it or the prediction is off by about
        # |nu|; the reported variance says so too (never less than the prediction's).
        jv = 0.5 * doubt * jump2_last
        var = (max(f, 1.0) * oa if status == REJECTED else oa) + jv
        out_x[i] = ox
        out_y[i] = oy
        out_var_x[i] = var
        out_var_y[i] = var
        out_cov_xy[i] = 0.0 * var
        out_vx[i] = ovx
        out_vy[i] = ovy
        out_status[i] = status
        if keep_extra:
            out_nis[i] = nis
            out_doubt[i] = doubt
            out_jump_var[i] = jv
        if keep_history:
            link[i] = linked
            pred[i, 0] = mx
            pred[i, 1] = my
            pred[i, 2] = mvx
            pred[i, 3] = mvy
            pred[i, 4] = ap
            pred[i, 5] = bp
            pred[i, 6] = cp
            filt[i, 0] = ox
            filt[i, 1] = oy
            filt[i, 2] = ovx
            filt[i, 3] = ovy
            filt[i, 4] = oa
            filt[i, 5] = ob
            filt[i, 6] = oc
    state[ST_STARTED] = 1.0 if started else 0.0
    state[ST_T] = t_state
    state[ST_X], state[ST_Y], state[ST_VX], state[ST_VY] = px, py, vx, vy
    state[ST_A], state[ST_B], state[ST_C] = a, b, c
    state[ST_Q], state[ST_QNUM], state[ST_QDEN] = q, q_num, q_den
    state[ST_NPEND] = n_pending
    state[ST_OUT] = 1.0 if outlier else 0.0
    state[ST_DOUBT], state[ST_JUMP2], state[ST_TLAST] = doubt, jump2_last, t_last
    state[ST_ENUM], state[ST_EDEN] = e_num, e_den
    for j in range(7):
        state[ST_ANCHOR + j] = anchor[j]
    state[ST_STILL] = 1.0 if still else 0.0
    for j in range(n_pending):
        for r in range(4):
            state[ST_PEND + r * _MAX_REINIT_K + j] = pend[r, j + 1]


@jit_parallel
def _run(offsets, t_ms, x_m, y_m, sigma_m, params, state,
         out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
         out_doubt, out_jump_var, keep_extra, keep_history, pred, filt, link):
    for s in prange(offsets.size - 1):
        _filter_track(offsets[s], offsets[s + 1], t_ms, x_m, y_m, sigma_m, params, state[s],
                      out_x, out_y, out_var_x, out_var_y, out_cov_xy, out_vx, out_vy, out_status, out_nis,
                      out_doubt, out_jump_var, keep_extra, keep_history, pred, filt, link)
