"""Fused positions with honest uncertainty: a gated constant-velocity Kalman filter per track.

Each subject's fixes (a ragged track: flat arrays sorted by time plus CSR
``offsets``) are filtered in a local metric frame (metres) with a
constant-velocity (CV) model driven by continuous white-noise acceleration
(CWNA). With isotropic measurement noise ``R = sigma^2 I`` and the same model on
both axes, the 4-state filter splits exactly into two (position, velocity)
filters that share one 2x2 covariance and one gain: the state is two means per
axis and three covariance numbers, the reported ``cov_xy`` is exactly 0 and
``var_x == var_y``. :func:`fuse_tracks` documents the model, the adaptive
process noise, gating, re-initialisation and stationary handling.

:func:`fuse_step` runs one batch of a stream, carrying each track's state.
:func:`geomon.kernels.smoother.rts_smooth` is the Rauch-Tung-Striebel
fixed-interval smoother over the predicted and filtered states
:func:`fuse_tracks_history` stores, for offline forensic replay only; alerting
reads the causal filter.

Notes
-----
Bar-Shalom, Li, Kirubarajan, "Estimation with Applications to Tracking and
Navigation", Wiley 2001: ch. 5 (Kalman filter, NIS/NEES consistency tests),
ch. 6 (CWNA model), ch. 8 (smoothing), ch. 11 (adaptive noise level, fading
memory). Myers and Tapley, "Adaptive sequential estimation with unknown noise
statistics", IEEE TAC 21(4), 1976 (covariance matching). Zhou and Frank,
"Strong tracking filtering of nonlinear time-varying stochastic systems with
coloured noise", Int. J. Control 65(2), 1996 (fading factor). Foxlin,
"Pedestrian tracking with shoe-mounted inertial sensors", IEEE CG&A 25(6), 2005
(zero-velocity updates). Rauch, Tung, Striebel, "Maximum likelihood estimates of
linear dynamic systems", AIAA Journal 3(8), 1965.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit, jit_parallel, prange
from geomon.kernels.fusion_fits import _DOUBT_MIN, _MAX_DOUBT, _consistent_fit, _jump

__all__ = ["ACCEPTED", "REJECTED", "REINITIALISED", "PREDICTED", "HISTORY_COLUMNS", "DEFAULT_PARAMS", "N_STATE",
           "new_state", "fuse_tracks", "fuse_step", "fuse_tracks_history"]

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


def _check_offsets(offsets, n):
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be non-decreasing, start at 0 and end at the number of fixes")


def _params_vector(params):
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise TypeError(f"unknown fusion parameters: {sorted(unknown)}")
    p = {**DEFAULT_PARAMS, **params}
    k = p["reinit_k"]
    if k != int(k) or (k != 0 and not 2 <= k <= _MAX_REINIT_K):
        raise ValueError(f"reinit_k must be 0 (off) or an integer from 2 to {_MAX_REINIT_K}")
    return np.array([float(p[name]) for name in DEFAULT_PARAMS])


def new_state(n_tracks: int) -> np.ndarray:
    """Carried state of ``n_tracks`` tracks that have seen no fix yet, for :func:`fuse_step`."""
    return np.zeros((int(n_tracks), N_STATE))


def _call(keep_history, offsets, t_ms, x_m, y_m, sigma_m, params, state=None, keep_extra=False):
    vector = _params_vector(params)
    # No copy when the dtype already fits, so read-only Arrow buffers pass straight through.
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    t_ms = np.ascontiguousarray(t_ms, dtype=np.int64)
    x_m, y_m, sigma_m = (np.ascontiguousarray(v, dtype=np.float64) for v in (x_m, y_m, sigma_m))
    n = t_ms.size
    if t_ms.ndim != 1 or x_m.shape != (n,) or y_m.shape != (n,) or sigma_m.shape != (n,):
        raise ValueError("t_ms, x_m, y_m and sigma_m must be 1-D and of the same length")
    _check_offsets(offsets, n)
    if state is None:
        state = new_state(offsets.size - 1)
    elif state.shape != (offsets.size - 1, N_STATE) or state.dtype != np.float64 or not state.flags.c_contiguous:
        raise ValueError(f"state must be a C-contiguous float64 array of shape (n_tracks, {N_STATE})")
    # Outputs come from numpy, whose large allocations are backed by huge pages
    # where the kernel allows it: first-touch page faults otherwise cost more
    # than the filter itself.
    n_extra = n if keep_extra else 0
    outputs = (tuple(np.empty(n) for _ in range(7)) + (np.empty(n, np.int8),)
               + tuple(np.empty(n_extra) for _ in range(3)))
    m = n if keep_history else 0
    history = (np.empty((m, 7)), np.empty((m, 7)), np.empty(m, np.int8))
    _run(offsets, t_ms, x_m, y_m, sigma_m, vector, state, *outputs, keep_extra, keep_history, *history)
    return outputs, history


def fuse_step(offsets, t_ms, x_m, y_m, sigma_m, state, **params):
    """:func:`fuse_tracks` on one batch of a stream, carrying each track's state in ``state``.

    Parameters
    ----------
    offsets, t_ms, x_m, y_m, sigma_m, **params
        As for :func:`fuse_tracks`; each track's fixes must follow, in time,
        those of the previous batches.
    state : ndarray of float64, shape (n_tracks, N_STATE)
        Row ``s`` is track ``s``'s state after the previous batches
        (:func:`new_state` before the first); updated in place.

    Returns
    -------
    x_m, y_m, var_x_m2, var_y_m2, cov_xy_m2, vx_mps, vy_mps, status
        As for :func:`fuse_tracks`.
    nis : ndarray of float64
        Each fix's normalised innovation squared ``|nu|^2 / s`` against the
        prior (chi-square with 2 dof for a fix that fits the model); at a
        restart after consistent rejected fixes, that of the restarted position
        (how far the state jumped); NaN where there was no prior or no position.
    doubt : ndarray of float64
        Probability that the state rests on a multipath run rather than on
        where the subject is: raised by each jump of the state (a restart after
        rejected fixes, or the extra move of a manoeuvre-widened update) by how
        multipath-prone the track has been and how large the jump is, and
        fading as the jumped track persists (multipath runs end).
    jump_var_m2 : ndarray of float64
        The part of ``var_x_m2`` (and ``var_y_m2``) that covers the doubt:
        ``doubt * |jump|^2 / 2``, the spread between where the state jumped
        from and to.

    Notes
    -----
    Running a stream batch by batch gives bit for bit the outputs of one call
    over the whole stream: the state holds everything the filter remembers.

    Examples
    --------
    >>> import numpy as np
    >>> t, x = np.arange(6) * 15_000, np.arange(6) * 20.0
    >>> whole = fuse_tracks(np.array([0, 6]), t, x, np.zeros(6), np.full(6, 3.0))
    >>> state = new_state(1)
    >>> parts = [fuse_step(np.array([0, 3]), t[k:k + 3], x[k:k + 3], np.zeros(3), np.full(3, 3.0), state)
    ...          for k in (0, 3)]
    >>> bool(np.array_equal(np.concatenate([p[0] for p in parts]), whole[0]))
    True
    """
    return _call(False, offsets, t_ms, x_m, y_m, sigma_m, params, state, keep_extra=True)[0]


def fuse_tracks(offsets, t_ms, x_m, y_m, sigma_m, **params):
    """Filter every track with the gated, adaptive constant-velocity Kalman filter.

    Tracks run in parallel (numba ``prange`` over tracks), each writing only its
    own output slots. Inputs may be read-only.

    Parameters
    ----------
    offsets : array_like of int64, shape (n_tracks + 1,)
        CSR offsets: track ``s`` is fixes ``offsets[s]:offsets[s + 1]``.
    t_ms : array_like of int64, shape (n,)
        Fix times, ms since the epoch (UTC), non-decreasing within a track (a
        step back is read as no time elapsed).
    x_m, y_m : array_like of float64, shape (n,)
        Easting and northing in a local metric frame (m); NaN: no position.
    sigma_m : array_like of float64, shape (n,)
        1-sigma per-axis noise of each fix (m), already floored by the caller;
        non-finite or non-positive makes the fix unusable.
    **params
        Overrides of :data:`DEFAULT_PARAMS` (each named in the notes below;
        ``reinit_k`` is 0, which turns restarts off, or 2 to 16).

    Returns
    -------
    x_m, y_m : ndarray of float64
        Fused position (m) at each fix's time.
    var_x_m2, var_y_m2, cov_xy_m2 : ndarray of float64
        Position covariance (m^2); ``var_x == var_y`` and ``cov_xy == 0``.
    vx_mps, vy_mps : ndarray of float64
        Velocity (m/s).
    status : ndarray of int8
        :data:`ACCEPTED`, :data:`REJECTED`, :data:`REINITIALISED` or
        :data:`PREDICTED`. A track's first usable fix is ``REINITIALISED``;
        fixes before it are ``PREDICTED`` with NaN outputs.

    Notes
    -----
    *Model* (Bar-Shalom, Li, Kirubarajan 2001, ch. 6): per axis the state is
    ``(p, v)``, ``F = [[1, T], [0, 1]]``, ``Q = q [[T^3/3, T^2/2], [T^2/2, T]]``
    (continuous white-noise acceleration of density ``q``), ``H = [1, 0]``,
    ``R = sigma^2``; both axes share the covariance and the gain.

    *Process noise* ``q`` is estimated rather than switched between a walking
    and a driving model, because a person's acceleration level varies
    continuously: covariance matching (Myers and Tapley 1976) of each accepted
    innovation, ``|nu|^2 / 2 - (a0 + r)`` with the innovation clipped at
    ``q_clip_nis`` (so that manoeuvres and multipath do not inflate it),
    weighted by its information ``(T^3 / 3 / s)^2``, in a fading memory of
    ``q_memory_s`` with a weak prior at ``q_init_m2ps3`` (sd
    ``q_prior_sd_m2ps3``), bounded to ``[q_min_m2ps3, q_max_m2ps3]``. Vehicles
    get a floor ``vehicle_q_gain_ps * (|v|^2 - walk_speed_mps^2)``: lateral
    acceleration in a turn is speed times turn rate.

    *Gating and multipath* (Bar-Shalom et al. sec. 5.4; a Markov-switching
    outlier model): a fix is accepted when its NIS against a prior that allows
    at least a walker's manoeuvre (``gate_q_m2ps3``) is below ``gate_nis`` and
    it is likelier clean than multipath: clean is ``N(0, s)`` or, with
    probability ``manoeuvre_p``, a manoeuvre ``N(0, s_gate)``; multipath is
    ``N(0, s + outlier_sigma_m^2)``. The prior that a fix is multipath is the
    track's own outlier rate (its rejected fraction over ``outlier_memory_s``,
    starting at ``outlier_start_p`` with the weight of ``outlier_prior_n``
    fixes), and right after an outlier ``outlier_stay_p``, fading over
    ``jump_memory_s``: multipath comes in runs. A track standing still (its
    last update was a zero-velocity update) does not turn, so there a fix with
    NIS above ``manoeuvre_nis`` is rejected too. A rejected fix leaves the
    state as a missing fix would; the output is the prediction with its
    variance widened by the fading factor ``f = (|nu|^2 / 2 - r) / a_prior``
    (at least 1; Zhou and Frank 1996). An accepted fix with NIS above
    ``manoeuvre_nis`` on a track moving at ``fade_min_speed_mps`` or more gets
    that widening of its prior before the update, so a turn is followed at once.

    *Restarts*: ``reinit_k`` consecutive rejected fixes restart the state
    (from their weighted constant-velocity fit) when they fit one motion
    (residual chi-square at most ``consistent_chi2``) and, unless the restart
    is farther than ``connect_max_m`` from the prediction (beyond multipath's
    reach), that motion also starts where the track was (``connect_chi2``): a
    run that sits still away from a still track is what multipath does. Each
    fit allows the deviation from a line that a subject at the fitted speed
    makes by turning, ``q span^3 / 48``, at most ``consistent_allow_max_m``
    squared. More than ``gap_s`` after the last update the velocity restarts at
    0 with spread ``sigma_v0_mps`` and the position spreads at
    ``gap_speed_mps``.

    *Doubt of jumps*: a restart, or the extra move of a manoeuvre-widened
    update, is a jump of the state, and a jump may have followed a multipath
    run. Its probability of being multipath is Bayes' rule between a
    multipath run start (rate: outlier rate times ``1 - outlier_stay_p``,
    offset ``N(0, outlier_sigma_m^2)``) and a real jump (``real_jump_rate``,
    ``N(0, jump_real_sigma_m^2)``), counting only the part of the jump across
    the direction of motion and discounted below ``jump_min_m`` (a stop, a
    start or a small step is the subject's own). The doubt then fades as the
    run would end (odds times ``exp(-dt / jump_memory_s)``) and is tested at
    each accepted fix: the fix as the anchor (where the track was before the
    jump, carried on at its velocity) plus the learnt offset, against the fix
    as the track predicts; a jump back to the anchor ends it. The reported
    variance adds ``doubt |jump|^2 / 2`` per axis (the spread between the two
    places), which keeps the covariance honest on multipath; decisions about
    zones use the two places separately (:class:`geomon.engine.monitor.Monitor`).

    *Stationary handling* is a zero-velocity update (Foxlin 2005): after an
    accepted fix, if ``|v|^2 < zupt_gate * P_vv`` and the velocity is known
    (``P_vv`` below ``zupt_max_sd_mps`` squared: right after a restart any
    speed is within its spread) or the fix is vague (over ``zupt_vague_m``: on
    cell fixes indoors nothing else stops the track), ``v = 0`` is observed with covariance
    ``zupt_r * P_vv``. Without it a parked subject's velocity wanders and the
    prediction across an outage drifts; a loose one (large ``zupt_r``) leaves
    the covariance of a still subject twice what its error is.

    Examples
    --------
    >>> import numpy as np
    >>> from geomon.kernels.fusion import fuse_tracks, REJECTED
    >>> offsets = np.array([0, 4, 6])   # two tracks: fixes 0-3 and 4-5
    >>> t_ms = np.array([0, 15_000, 30_000, 45_000, 0, 15_000])
    >>> x_m = np.array([0.0, 1.0, 200.0, 3.0, 10.0, 11.0])
    >>> x, y, var_x, var_y, cov_xy, vx, vy, status = fuse_tracks(
    ...     offsets, t_ms, x_m, np.zeros(6), np.full(6, 2.5))
    >>> int(status[2]) == REJECTED      # a 200 m jump
    True
    """
    return _call(False, offsets, t_ms, x_m, y_m, sigma_m, params)[0][:8]


def fuse_tracks_history(offsets, t_ms, x_m, y_m, sigma_m, **params):
    """:func:`fuse_tracks`, keeping the predicted and filtered states for :func:`geomon.kernels.smoother.rts_smooth`.

    Parameters
    ----------
    offsets, t_ms, x_m, y_m, sigma_m, **params
        As for :func:`fuse_tracks`.

    Returns
    -------
    status : ndarray of int8, shape (n,)
        As for :func:`fuse_tracks`.
    link : ndarray of int8, shape (n,)
        1 where fix ``i``'s prior is the model's prediction from fix ``i - 1``
        (``pred[i] = F filt[i - 1]``, covariance ``F P F^T + Q``, possibly
        widened by the fading factor); 0 at a track's first fix, a restart or
        a velocity reset, where a smoother segment starts.
    pred, filt : ndarray of float64, shape (n, 7)
        Prior and posterior at each fix, columns :data:`HISTORY_COLUMNS`
        (``pred`` is NaN where there was no prior). ``filt`` is what
        :func:`fuse_tracks` reports, except that at a rejected fix it keeps the
        prediction's own variance, not the widened one.

    Notes
    -----
    Fourteen numbers a fix are what an offline smoother needs; the live path
    (:func:`fuse_tracks`) never writes them.
    """
    outputs, (pred, filt, link) = _call(True, offsets, t_ms, x_m, y_m, sigma_m, params)
    return outputs[7], link, pred, filt
