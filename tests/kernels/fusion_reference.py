"""A slow, textbook reference of :mod:`geomon.kernels.fusion`, written with numpy matrices.

Each motion carries the full 4-state ``[x, y, vx, vy]`` mean and 4x4 covariance;
prediction is ``F P F^T + Q`` with explicit ``F`` and ``Q``; each fix is the
moment-matched mixture of three textbook Kalman updates (``K = P H^T S^-1``):
clean (``R = r I``), multipath (``R = (r + outlier_sigma^2) I``) and gross (a
flat density: no update); the IMM interaction mixes the motions with explicit
mixing weights (Blom and Bar-Shalom 1988). Densities are compared in the log
domain. One loop iteration per fix, no cached quantities.

Where the kernel makes documented approximations, they are reproduced here
explicitly, in matrix form, and marked *kernel approximation*: the per-motion
covariance is isotropic (:func:`isotropic`), the motions' transition matrix,
the restart of stale motions, the re-centring of the moving motions on the
still one at a tower's fix (the mixture recombined after both, the noise scale
learnt from the one before), the two-fix restart rule, the learnt noise scale
(satellite-grade fixes only), the output inflation for errors shared in time
and for error the fixes report but their scatter does not show,
the doubt after a jump of a still subject (the output a two-place mixture, the
filter untouched), the smoother's prior (the filtered state carried by constant
velocity), its position-only gain where the prediction knows the velocity and
its covariance kept a covariance.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels.fusion import ACCEPTED, DEFAULT_PARAMS, PREDICTED, REINITIALISED, REJECTED

STILL, STEADY, MANOEUVRE = 0, 1, 2
MOTIONS = (STILL, STEADY, MANOEUVRE)
#: Below this probability a motion restarts from the mixture (the kernel's constant).
STALE_P = 0.01
#: A still subject's position that moves off no faster than this (m/s) since the anchor is a walk, not a jump
#: (the kernel's constant).
STROLL_MPS = 1.0
#: The anchor moves with a subject slower than this (m/s); faster ones have none (the kernel's constant).
ANCHOR_WALK_MPS = 2.0
#: A fix whose outlier probability is below this may move the anchor (the kernel's constant).
ANCHOR_CLEAN_P = 0.05
#: Odds of a run below this are spent (the kernel's constant).
SPENT_ODDS = 0.05
#: A fix's noise-scale estimate is clipped at this many times the scale learnt so far (the kernel's constant).
U_CLIP = 4.0
#: Multipath's prior falls as (sigma / outlier_ref_sigma_m) to this power below the reference.
AUGMENTED_MP_POW = 4.0
#: Unseen error counts once the learnt scale is this many of its standard errors below 1 (the kernel's constant).
UNSEEN_SDS = 2.0
#: The log of the smallest (subnormal) double: a density below it is 0 in the kernel.
SMALLEST_LOG = np.log(np.nextafter(0.0, 1.0))
H = np.hstack([np.eye(2), np.zeros((2, 2))])
#: Keeps the position, drops the velocity: how the still motion sees any state.
POSITION_ONLY = np.diag([1.0, 1.0, 0.0, 0.0])
VELOCITY_ONLY = np.diag([0.0, 0.0, 1.0, 1.0])
OUTPUTS = ("x", "y", "var_x", "var_y", "cov_xy", "vx", "vy")
EXTRAS = ("nis", "p_outlier", "noise")


def cv_transition(dt):
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    return f


def manoeuvre_level(dt, p, x0, P0):
    """The manoeuvre's acceleration level over ``dt`` from its mixed state ``x0``, ``P0``: at most what
    changes the velocity by its own size plus a start speed (|v|^2 + v_start^2 + the velocity's per-axis
    variance, over dt)."""
    q = p["q_manoeuvre_m2ps3"]
    if dt > 0:
        q = min(q, (x0[2:] @ x0[2:] + p["v_start_mps"] ** 2 + isotropic(P0)[2, 2]) / dt)
    return q


def motion_model(j, dt, p, q_steady, q_manoeuvre):
    """``F`` and ``Q`` of motion j over ``dt`` seconds (Bar-Shalom et al. 2001, ch. 6)."""
    if j == STILL:
        # Position a random walk, velocity zero.
        return POSITION_ONLY, p["q_still_m2ps"] * dt * POSITION_ONLY
    q = q_steady if j == STEADY else q_manoeuvre
    return cv_transition(dt), q * np.kron(np.array([[dt**3 / 3.0, dt**2 / 2.0], [dt**2 / 2.0, dt]]), np.eye(2))


def markov_matrix(dt, p):
    """``T[i, j]``: probability of going from motion i to j in ``dt``; kernel approximation: the
    exponential dwell of each motion with fixed shares of where a subject goes, not a matrix exponential."""
    dwell = (p["dwell_still_s"], p["dwell_steady_s"], p["dwell_manoeuvre_s"])
    first_share = (p["still_to_manoeuvre_p"], p["steady_to_still_p"], p["manoeuvre_to_still_p"])
    first = (MANOEUVRE, STILL, STILL)
    second = (STEADY, MANOEUVRE, STEADY)
    t = np.zeros((3, 3))
    for i in MOTIONS:
        leave = 1.0 - np.exp(-dt / dwell[i])
        t[i, i] = 1.0 - leave
        t[i, first[i]] += leave * first_share[i]
        t[i, second[i]] += leave * (1.0 - first_share[i])
    return t


def isotropic(P):
    """Kernel approximation: each motion keeps one (position, velocity) covariance for both axes, so a
    4x4 covariance is replaced by the isotropic one with the same per-axis traces (x and y averaged,
    the x-y cross terms dropped)."""
    a = 0.5 * (P[0, 0] + P[1, 1])
    b = 0.5 * (P[0, 2] + P[1, 3])
    c = 0.5 * (P[2, 2] + P[3, 3])
    return np.kron(np.array([[a, b], [b, c]]), np.eye(2))


def mixture(weights, means, covs):
    """Moment-matched Gaussian mixture: mean and full covariance."""
    mean = sum(w * x for w, x in zip(weights, means))
    cov = sum(w * (P + np.outer(x - mean, x - mean)) for w, x, P in zip(weights, means, covs))
    return mean, cov


def as_seen_by(j, i, x, P, p):
    """Motion i's state as motion j takes it over in the interaction step."""
    if j == STILL:
        return POSITION_ONLY @ x, POSITION_ONLY @ P @ POSITION_ONLY
    if i == STILL:
        # A subject who was still starts with a velocity of spread v_start (steady) or v_manoeuvre.
        v0 = p["v_start_mps"] if j == STEADY else p["v_manoeuvre_mps"]
        return POSITION_ONLY @ x, POSITION_ONLY @ P @ POSITION_ONLY + v0**2 * VELOCITY_ONLY
    if j == MANOEUVRE and i == STEADY:
        # Entering the manoeuvre, the velocity may change by v_manoeuvre.
        return x, P + p["v_manoeuvre_mps"] ** 2 * VELOCITY_ONLY
    return x, P


def interact_and_predict(motions, dt, p, q_steady):
    """IMM interaction (mixing weights ``mu_i|j = T[i, j] mu_i / c_j``) and prediction of each motion; returns the
    priors and the manoeuvre's acceleration level over ``dt``."""
    T = markov_matrix(dt, p)
    mu = np.array([m[0] for m in motions])
    priors, q_manoeuvre = [], None
    for j in MOTIONS:
        c_j = T[:, j] @ mu
        weights = T[:, j] * mu / c_j if c_j > 0 else np.eye(3)[j]
        seen = [as_seen_by(j, i, motions[i][1], motions[i][2], p) for i in MOTIONS]
        used = [i for i in MOTIONS if weights[i] != 0.0]
        x0, P0 = mixture(weights[used], [seen[i][0] for i in used], [seen[i][1] for i in used])
        if j == MANOEUVRE:
            q_manoeuvre = manoeuvre_level(dt, p, x0, P0)
        F, Q = motion_model(j, dt, p, q_steady, q_manoeuvre)
        priors.append((c_j, F @ x0, F @ isotropic(P0) @ F.T + Q))
    return priors, q_manoeuvre


def log_normal(nu, S):
    return -0.5 * nu @ np.linalg.solve(S, nu) - 0.5 * np.log(np.linalg.det(2.0 * np.pi * S))


def kalman(x, P, z, R):
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    return x + K @ (z - H @ x), (np.eye(4) - K @ H) @ P


def scale_mixture_update(priors, z, r, p, sigma):
    """Bayes over (motion, fix kind); each motion's posterior the moment-matched mixture of its three updates.

    Returns the posterior motions, the probability that the fix is clean and, per motion, the
    probability that it is clean if the subject moves so."""
    # An augmented fix (its sigma under outlier_ref_sigma_m) is multipath the more rarely, steeply.
    eps, gross_p = p["outlier_p"] * min(sigma / p["outlier_ref_sigma_m"], 1.0) ** AUGMENTED_MP_POW, p["gross_p"]
    R_clean = r * np.eye(2)
    R_multipath = (r + p["outlier_sigma_m"] ** 2) * np.eye(2)
    # A gross error is flat over a disc of gross_reach_m (not truncated to it).
    log_gross = np.log(gross_p) - np.log(np.pi * p["gross_reach_m"] ** 2) if gross_p > 0 else -np.inf
    with np.errstate(divide="ignore"):
        log_kind = np.log([1.0 - eps - gross_p, eps])
    log_like = np.empty((3, 3))   # motion x kind: log p(z | motion, kind) + log p(kind)
    for j, (c_j, x, P) in enumerate(priors):
        nu = z - H @ x
        S = H @ P @ H.T
        log_like[j] = [log_kind[0] + log_normal(nu, S + R_clean), log_kind[1] + log_normal(nu, S + R_multipath),
                       log_gross]
    vanished = np.zeros(3, bool)
    if gross_p == 0:
        # Kernel approximation (documented there): its densities, without 2 pi, are scaled by the largest
        # multipath exponential over the motions that may be (probability over 0); a motion whose clean
        # and multipath densities both fall below the smallest double gets no update and probability 0.
        half_nu2 = [0.5 * (z - H @ x) @ (z - H @ x) for _, x, _ in priors]
        a = [np.trace(H @ P @ H.T) / 2.0 for _, _, P in priors]
        e_min = min((h / (aj + r + p["outlier_sigma_m"] ** 2) for (c, _, _), h, aj in zip(priors, half_nu2, a)
                     if c > 0), default=0.0)
        for j, (h, aj) in enumerate(zip(half_nu2, a)):
            s_c, s_o = aj + r, aj + r + p["outlier_sigma_m"] ** 2
            with np.errstate(divide="ignore"):
                terms = [log_kind[0] + e_min - h / s_c - np.log(s_c), log_kind[1] + e_min - h / s_o - np.log(s_o)]
            vanished[j] = max(terms) < SMALLEST_LOG
        log_like[vanished] = -np.inf
    with np.errstate(divide="ignore"):
        log_joint = np.log([c for c, _, _ in priors])[:, None] + log_like
    if not np.isfinite(log_joint).any():   # every motion that may be vanished: the kernel keeps the priors
        motion_p, w_clean = np.array([c for c, _, _ in priors]), 0.0
    else:
        joint = np.exp(log_joint - log_joint.max())
        motion_p = joint.sum(axis=1) / joint.sum()
        w_clean = float(joint[:, 0].sum() / joint.sum())
    with np.errstate(invalid="ignore"):
        kinds = np.exp(log_like - log_like.max(axis=1, keepdims=True))
    kinds[vanished] = [0.0, 0.0, 1.0]   # no update
    kinds /= kinds.sum(axis=1, keepdims=True)
    posterior = []
    for j, (c_j, x, P) in enumerate(priors):
        updates = [kalman(x, P, z, R_clean), kalman(x, P, z, R_multipath), (x, P)]
        xm, Pm = mixture(kinds[j], [u[0] for u in updates], [u[1] for u in updates])
        # Kernel approximation: isotropic motion covariance (the spread of the three updates is
        # nu nu^T times gains, averaged over the axes).
        posterior.append((motion_p[j], xm, isotropic(Pm)))
    return posterior, w_clean, kinds[:, 0]


def two_fix_start(t0_ms, z0, r0, t1_ms, z1, r1):
    """Least squares of a constant-velocity state at the second of two fixes, with no process noise."""
    span = (t1_ms - t0_ms) * 1e-3
    A = np.vstack([H @ cv_transition(-span), H])
    W = np.diag([1.0 / r0, 1.0 / r0, 1.0 / r1, 1.0 / r1])
    z = np.concatenate([z0 - z1, z1 - z1])   # about the second fix: no cancellation at large coordinates
    P = np.linalg.inv(A.T @ W @ A)
    x = P @ A.T @ W @ z
    x[:2] += z1
    return x, P


def ar1_mean_variance_ratio(rho, n):
    """Variance of the mean of n fixes of an AR(1) sequence over that of n independent ones (n real)."""
    return 1.0 + 2.0 * rho / (1.0 - rho) * (1.0 - (1.0 - rho**n) / (n * (1.0 - rho)))


def reference_track(t_ms, xs, ys, sigmas, p):
    """One track: outputs, status, extras and the history (pred, filt, link)."""
    n = len(t_ms)
    out = {name: np.full(n, np.nan) for name in OUTPUTS + EXTRAS}
    status = np.full(n, PREDICTED, np.int8)
    pred, filt = np.full((n, 7), np.nan), np.full((n, 7), np.nan)
    link = np.zeros(n, np.int8)
    init_p = (p["init_still_p"], p["init_steady_p"], max(1.0 - p["init_still_p"] - p["init_steady_p"], 0.0))
    v0var = (0.0, p["v_start_mps"] ** 2, p["v_manoeuvre_mps"] ** 2)
    started = False
    motions = None
    t_state = t_last = 0
    p_out = 0.0
    l_num = l_den = 0.0                           # noise scale: sums of the VB estimate
    q_num = q_den = 0.0                           # steady motion's acceleration: covariance matching
    w_num = w_den = tt_num = tt_den = 0.0         # shared-error estimate: differences and slow spread
    s_n, s_mean = 0.0, np.zeros(2)                # running mean of the fixes while still
    prev_t, prev_z = 0, np.zeros(2)               # the last fix (time 0: none)
    far, far_t, far_z, far_r = False, 0, np.zeros(2), 0.0
    run = {"anchor_ok": False, "anchor": np.zeros(2), "anchor_v": np.zeros(2), "anchor_var": 0.0, "anchor_t": 0,
           "odds": 0.0, "last": np.zeros(2)}
    for i in range(n):
        z = np.array([xs[i], ys[i]])
        sig = sigmas[i]
        valid = bool(np.all(np.isfinite(z)) and np.isfinite(sig) and sig > 0)
        st, linked, nis, step = PREDICTED, 0, np.nan, None
        dt_last = max(t_ms[i] - t_last, 0) * 1e-3
        t_last = t_ms[i]
        # Kernel approximation (Sarkka and Nummenmaa 2009, simplified): the noise scale is a
        # fading weighted mean of per-fix estimates with a prior of noise_prior_n fixes at 1.
        lam = np.clip((l_num + p["noise_prior_n"]) / (l_den + p["noise_prior_n"]),
                      p["noise_scale_min"], p["noise_scale_max"])
        # Kernel rule: the scale is learnt from, and applied to, fixes under noise_learn_below_m only (a
        # tower's accuracy says nothing of a receiver's noise); other fixes use r = sigma^2.
        learnable = bool(sig < p["noise_learn_below_m"])
        r = (lam if learnable else 1.0) * sig**2 if valid else np.nan
        dt = max(t_ms[i] - t_state, 0) * 1e-3
        priors = None
        if valid and (not started or dt > p["gap_s"]):
            motions = [(init_p[j], np.array([z[0], z[1], 0.0, 0.0]), np.diag([r, r, v0var[j], v0var[j]]))
                       for j in MOTIONS]
            started = True
            t_state = t_ms[i]
            p_out, s_n = 0.0, 0.0
            prev_t, prev_z = t_ms[i], z
            far = False
            st = REINITIALISED
            comb = mixture([m[0] for m in motions], [m[1] for m in motions], [m[2] for m in motions])
        elif started:
            linked = 1
            # Kernel approximation (Myers and Tapley 1976, simplified): steady motion's acceleration
            # density is a fading weighted mean of per-fix estimates, with a prior at q_steady_m2ps3.
            q_prior_w = 1.0 / p["q_prior_sd_m2ps3"] ** 2
            q_steady = np.clip((q_num + p["q_steady_m2ps3"] * q_prior_w) / (q_den + q_prior_w),
                               p["q_steady_min_m2ps3"], p["q_manoeuvre_m2ps3"])
            # The smoother's prior starts from the filter's moment-matched state as the motions left it.
            carried = mixture([m[0] for m in motions], [m[1] for m in motions], [m[2] for m in motions])
            priors, q_manoeuvre = interact_and_predict(motions, dt, p, q_steady)
            t_state = max(t_state, t_ms[i])
            if not valid:
                motions = priors
                comb = mixture([m[0] for m in motions], [m[1] for m in motions], [m[2] for m in motions])
            else:
                likeliest = int(np.argmax([c for c, _, _ in priors]))
                offset = z - H @ priors[likeliest][1]
                a_prior = np.trace(H @ priors[likeliest][2] @ H.T) / 2.0
                nis = offset @ offset / (a_prior + r)
                motions, w_clean, clean_given_motion = scale_mixture_update(priors, z, r, p, sig)
                p_out = 1.0 - w_clean
                st = ACCEPTED if w_clean >= 0.5 else REJECTED
                if dt > 0 and priors[STEADY][0] > 0.5:
                    # Per axis, E|nu|^2 / 2 = a0 + r + q g with g = dt^3 / 3 (the prior's position
                    # variance without this step's process noise: a0); large innovations clipped.
                    g = dt**3 / 3.0
                    _, x_st, P_st = priors[STEADY]
                    s_st = np.trace(H @ P_st @ H.T) / 2.0 + r
                    a0 = s_st - r - q_steady * g
                    nu = z - H @ x_st
                    # Weighed by the prior's belief in steady motion, not the posterior's: the fixes
                    # a turn pulls away from it must count, or the level learns only from the fixes
                    # that fit it and sinks to its floor.
                    wq = g / s_st * priors[STEADY][0]
                    fade = p["q_memory_s"] / (p["q_memory_s"] + dt)
                    q_num = fade * q_num + wq / s_st * (0.5 * min(nu @ nu, 4.0 * s_st) - a0 - r)
                    q_den = fade * q_den + wq**2
                # Kernel rule: two rejected fixes in a row, each beyond multipath's reach of the
                # likeliest motion's prediction, that a plausible speed joins, restart the moving
                # motions on the two-fix least-squares state.
                reach = p["outlier_reach_m"] + 3.0 * np.sqrt(r)
                far_now = st == REJECTED and offset @ offset > reach**2
                if far_now and far:
                    span = (t_ms[i] - far_t) * 1e-3
                    jump = z - far_z
                    if span > 0 and jump @ jump <= (p["max_speed_mps"] * span) ** 2:
                        x2, P2 = two_fix_start(far_t, far_z, far_r, t_ms[i], z, r)
                        motions = [(0.0, POSITION_ONLY @ x2, POSITION_ONLY @ P2 @ POSITION_ONLY),
                                   (0.5, x2, P2), (0.5, x2, P2)]
                        p_out, far_now, st, linked = 0.0, False, REINITIALISED, 0
                far = far_now
                far_t, far_z, far_r = t_ms[i], z, r
                comb = mixture([m[0] for m in motions], [m[1] for m in motions], [m[2] for m in motions])
                # Kernel rule: on a fix that is not learnable (a tower's) while still is likelier, each moving
                # motion is re-centred on the still one: its position variance grows by half the squared
                # distance moved, its velocity variance by half its squared velocity, velocity and cross
                # term 0. Otherwise a stale motion restarts from the (isotropic) mixture, keeping its
                # probability.
                comb_iso = isotropic(comb[1])
                still_mu, still_x, _ = motions[STILL]
                kept = []
                for j, (mu, x, P) in enumerate(motions):
                    if j != STILL and not learnable and still_mu > 0.5:
                        moved, v = x[:2] - still_x[:2], x[2:]
                        a = P[0, 0] + 0.5 * moved @ moved
                        c = P[2, 2] + 0.5 * v @ v
                        kept.append((mu, POSITION_ONLY @ still_x, np.diag([a, a, c, c])))
                    elif mu < STALE_P:
                        kept.append((mu, comb[0], comb_iso) if j != STILL
                                    else (mu, POSITION_ONLY @ comb[0], POSITION_ONLY @ comb_iso @ POSITION_ONLY))
                    else:
                        kept.append((mu, x, P))
                motions = kept
                # The noise scale: E|z - x|^2 / 2 + P = lambda sigma^2, each fix weighted by the share
                # of its innovation variance the noise makes and by its probability of being clean; kernel
                # rule: the residual and posterior variance are those of the mixture before the restarts.
                info = r / (a_prior + r) * w_clean
                error = z - comb[0][:2]
                u = (0.5 * error @ error + np.trace(comb[1][:2, :2]) / 2.0) / sig**2
                # Kernel rule: the mixture after the restarts and re-centring is what the output, the
                # history and the next fix start from.
                comb = mixture([m[0] for m in motions], [m[1] for m in motions], [m[2] for m in motions])
                fade = np.exp(-dt_last / p["noise_memory_s"])
                if learnable:
                    # Kernel rule: a fix's estimate is clipped at 4 times the scale learnt so far (a Huber-type
                    # M-estimate: a turn or a stop the motions missed must not pass for noise).
                    l_num = fade * l_num + info * min(u, U_CLIP * lam, p["noise_scale_max"])
                    l_den = fade * l_den + info
                # Shared errors: half the squared difference of consecutive fixes (motion taken out)
                # against the spread about the running mean while still.
                fade = np.exp(-dt_last / p["corr_memory_s"])
                if prev_t > 0 and dt_last <= p["gap_s"]:
                    diff = z - prev_z - comb[0][2:] * dt_last
                    w_num = fade * w_num + w_clean * 0.25 * diff @ diff / sig**2
                    w_den = fade * w_den + w_clean
                if motions[STILL][0] > 0.9:
                    if s_n > 0:
                        dev = z - s_mean
                        tt_num = fade * tt_num + w_clean * 0.5 * dev @ dev / sig**2 * s_n / (s_n + 1.0)
                        tt_den = fade * tt_den + w_clean
                    s_n = min(s_n + 1.0, max(p["slow_mean_s"] / max(dt_last, 1e-3), 1.0))
                    s_mean = s_mean + (z - s_mean) / s_n
                else:
                    s_n = 0.0
                # The step between two fixes 10-120 s apart (the doubt judges whether they are together).
                if prev_t > 0 and 10.0 <= dt_last <= 120.0:
                    step = z - prev_z
                prev_t, prev_z = t_ms[i], z
        if started:
            inflate = 1.0
            if valid and tt_den > p["corr_prior_n"]:
                cn = p["corr_prior_n"]
                share = 1.0 - ((w_num + cn * lam) / (w_den + cn)) / ((tt_num + cn * lam) / (tt_den + cn))
                if share > 0:
                    rho = np.exp(-dt_last / p["bias_tau_s"]) if dt_last > 0 else 0.999
                    n_eff = max(r / (np.trace(comb[1][:2, :2]) / 2.0), 1.0)
                    inflate = min(1.0 - share + share * ar1_mean_variance_ratio(rho, n_eff),
                                  p["corr_max_inflation"])
            # Kernel approximation: error a satellite fix reports but the scatter does not show (the scale
            # learnt so far, two of its standard errors below 1) is added to the output, isotropic.
            unseen = 0.0
            if valid and learnable and lam < 1.0:
                unseen = max(1.0 - lam - UNSEEN_SDS * lam / np.sqrt(l_den + p["noise_prior_n"]), 0.0) * sig**2
            mean, cov = comb
            out_mean, out_cov = mean[:2], inflate * cov[:2, :2] + unseen * np.eye(2)
            if valid and st != REINITIALISED:
                doubt = jump_doubt(run, int(t_ms[i]), dt_last, mean, cov, r, motions[STILL][0], step, p_out, p)
                if doubt > 0:
                    # The output only: the two places weighed by the doubt, moment-matched (about
                    # the fused position, so that large coordinates cancel exactly).
                    offset, out_cov = mixture([1.0 - doubt, doubt], [np.zeros(2), -run["d"]],
                                              [out_cov, run["anchor_var"] * np.eye(2)])
                    out_mean = mean[:2] + offset
            elif st == REINITIALISED:
                run["odds"], run["anchor_ok"], run["last"] = 0.0, False, mean[:2].copy()
            elif run["odds"] > 0:
                # Kernel rule: a fix without a position in a run: the odds fade as the run may have ended,
                # the two places stand (no other rule of the doubt acts).
                run["odds"] *= np.exp(-dt_last / p["run_s"])
                doubt = run["odds"] / (1.0 + run["odds"])
                offset, out_cov = mixture([1.0 - doubt, doubt], [np.zeros(2), anchor_at(run, int(t_ms[i])) - mean[:2]],
                                          [out_cov, run["anchor_var"] * np.eye(2)])
                out_mean = mean[:2] + offset
            out["x"][i], out["y"][i] = out_mean
            out["vx"][i], out["vy"][i] = mean[2:]
            out["var_x"][i], out["var_y"][i], out["cov_xy"][i] = out_cov[0, 0], out_cov[1, 1], out_cov[0, 1]
            filt[i] = state_row(mean, isotropic(cov))
            if valid:
                out["p_outlier"][i] = p_out
        if linked:
            # Kernel approximation, the smoother's prior: the filter's moment-matched state before the fix
            # carried by constant velocity, F P F^T, plus the process noise of the motions weighed by
            # their probabilities after the fix (still: q_still dt on the position only).
            F = cv_transition(dt)
            Q = sum(m[0] * motion_model(j, dt, p, q_steady, q_manoeuvre)[1] for j, m in enumerate(motions))
            pred[i] = state_row(F @ carried[0], F @ isotropic(carried[1]) @ F.T + Q)
        out["nis"][i] = nis
        out["noise"][i] = np.sqrt(r)
        status[i] = st
        link[i] = linked
    return out, status, pred, filt, link


def anchor_at(j, t_ms):
    """The jump doubt's anchor ``j`` carried to ``t_ms`` at its velocity."""
    return j["anchor"] + j["anchor_v"] * (t_ms - j["anchor_t"]) * 1e-3


def jump_doubt(j, t_ms, dt_s, fused, P_fused, r, still_p, step, p_out, p):
    """Kernel rule: the doubt after a subject's fused position jumps within multipath's reach.

    ``j`` carries the anchor (where the subject stood while still, or a walker's last clean fused
    position and velocity: position, velocity, per-axis variance, time in ms), the odds of a multipath
    run and where the fused position stood when the run began, carried at the anchor's velocity;
    ``t_ms`` is the fix's time, ``dt_s`` the time since the last fix, ``fused`` the filter's mean
    ``[x, y, vx, vy]``, ``P_fused`` its covariance, ``step`` the step from the last fix if 10-120 s
    before (else None), ``p_out`` the fix's outlier probability. The anchor is carried to the fix's
    time at its velocity. The odds start at run_prior_odds where the position, between jump_min_m and
    outlier_reach_m from the anchor and beyond 3 sigma of both, is farther from it than a stroll of 1
    m/s since the anchor's time could go, and settles: two fixes together (their step within 3 sqrt(2 r)
    of the anchor's pace, and, off a walker's line, under half the step itself give or take the two
    fixes' noise: a subject who stops keeps no pace) within 2.5 fix intervals of the anchor's time, or,
    from a still anchor, the still motion over 0.9 with under 0.2 m/s. Each later fix fades them as a
    run of mean run_s would have ended, and by 100 where the position moves on from where the run began
    (an offset keeps the anchor's pace); they end beyond reach, back within 3 sigma of the anchor, or
    under SPENT_ODDS. Without odds, a fix under ANCHOR_CLEAN_P moves the anchor: still over 0.9, to the
    fused position at rest; else, 10-120 s after the last fix, to the fused position and velocity if
    slower than ANCHOR_WALK_MPS, and faster the anchor goes (denser fixes keep the anchor). Returns the
    doubt (the probability that the fused position is a run's and the subject is at the anchor;
    ``j["d"]`` the fused position less the anchor's); updates ``j`` in place."""
    a = np.trace(P_fused[:2, :2]) / 2.0
    since = (t_ms - j["anchor_t"]) * 1e-3
    d = fused[:2] - anchor_at(j, t_ms)
    j["d"] = d
    reach2 = p["outlier_reach_m"] ** 2
    three_sigma2 = 9.0 * (a + j["anchor_var"])              # 3 sigma of both places, squared
    still_anchor = not np.any(j["anchor_v"])
    if step is None:
        together = False
    else:
        rel = step - j["anchor_v"] * dt_s
        together = rel @ rel < 9.0 * 2.0 * r and (still_anchor or 4.0 * rel @ rel < step @ step + 9.0 * 2.0 * r)
    if j["odds"] > 0:
        j["odds"] *= np.exp(-dt_s / p["run_s"])
        j["last"] = j["last"] + j["anchor_v"] * dt_s
        moved = fused[:2] - j["last"]
        if moved @ moved > 9.0 * (r + a):
            j["odds"] *= 0.01
        if d @ d > reach2:
            j["anchor_ok"] = False
        if d @ d > reach2 or d @ d < three_sigma2 or j["odds"] < SPENT_ODDS:
            j["odds"] = 0.0
    elif (j["anchor_ok"] and p["jump_min_m"] ** 2 < d @ d <= reach2 and d @ d > three_sigma2
          # Faster than a stroll from where the track stood, or off the line it walked.
          and d @ d > since**2 * STROLL_MPS**2
          and ((together and t_ms - j["anchor_t"] <= 2500.0 * dt_s)
               or (still_anchor and still_p > 0.9 and fused[2:] @ fused[2:] < 0.2**2))):
        j["odds"] = p["run_prior_odds"]
        j["last"] = fused[:2].copy()
    if j["odds"] == 0:
        j["last"] = fused[:2].copy()
        if p_out < ANCHOR_CLEAN_P:
            if still_p > 0.9:
                j["anchor_ok"], j["anchor"], j["anchor_v"] = True, fused[:2].copy(), np.zeros(2)
                j["anchor_var"], j["anchor_t"] = a, t_ms
            elif 10.0 <= dt_s <= 120.0 and fused[2:] @ fused[2:] < ANCHOR_WALK_MPS**2:
                j["anchor_ok"], j["anchor"], j["anchor_v"] = True, fused[:2].copy(), fused[2:].copy()
                j["anchor_var"], j["anchor_t"] = a, t_ms
            elif 10.0 <= dt_s <= 120.0:
                j["anchor_ok"] = False
    return j["odds"] / (1.0 + j["odds"])


def state_row(x, P):
    return [x[0], x[1], x[2], x[3], P[0, 0], P[0, 2], P[2, 2]]


#: The smoother's share of ``a c`` under which a predicted covariance's determinant means a known velocity.
KNOWN_VELOCITY = 1e-9


def reference_smooth(t_ms, link, pred, filt):
    """RTS (Rauch, Tung, Striebel 1965) with 4x4 matrices and the CV transition, restarting where link == 0.

    Kernel rule: where the prediction knows the velocity (a still subject's is zero: the per-axis
    determinant under KNOWN_VELOCITY of ``a c``), the state is the position alone (``F = I``) and
    the gain ``C = P_pp P_pred,pp^-1`` moves the position and its variance only."""
    out = filt.copy()

    def unpack(row):
        return row[:4].copy(), np.kron(np.array([[row[4], row[5]], [row[5], row[6]]]), np.eye(2))

    for i in range(len(t_ms) - 2, -1, -1):
        if link[i + 1] == 0:
            continue
        xf, pf = unpack(filt[i])
        xp, pp = unpack(pred[i + 1])
        xs, ps = unpack(out[i + 1])
        per_axis = pp[::2, ::2]
        if not per_axis[0, 0] > 0:
            continue
        if not np.linalg.det(per_axis) > KNOWN_VELOCITY * per_axis[0, 0] * per_axis[1, 1]:
            c = pf[:2, :2] @ np.linalg.inv(pp[:2, :2])
            xs_pos = xf[:2] + c @ (xs[:2] - xp[:2])
            ps_pos = pf[:2, :2] + c @ (ps[:2, :2] - pp[:2, :2]) @ c.T
            out[i] = [xs_pos[0], xs_pos[1], xf[2], xf[3], ps_pos[0, 0], pf[0, 2], pf[2, 2]]
            continue
        f = cv_transition(max(t_ms[i + 1] - t_ms[i], 0) * 1e-3)
        c = pf @ f.T @ np.linalg.inv(pp)
        row = state_row(xf + c @ (xs - xp), pf + c @ (ps - pp) @ c.T)
        # Kernel rule: the smoothed covariance kept a covariance (a, c at least 0, |b| at most sqrt(a c)).
        row[4], row[6] = max(row[4], 0.0), max(row[6], 0.0)
        row[5] = float(np.clip(row[5], -np.sqrt(row[4] * row[6]), np.sqrt(row[4] * row[6])))
        out[i] = row
    return out


def reference(offsets, t_ms, xs, ys, sigmas, **params):
    """Every track through :func:`reference_track` and :func:`reference_smooth`."""
    p = {**DEFAULT_PARAMS, **params}
    n = len(t_ms)
    out = {name: np.full(n, np.nan) for name in OUTPUTS + EXTRAS}
    status = np.empty(n, np.int8)
    pred, filt, smoothed = np.empty((n, 7)), np.empty((n, 7)), np.empty((n, 7))
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        o, s, pr, fi, li = reference_track(t_ms[lo:hi], xs[lo:hi], ys[lo:hi], sigmas[lo:hi], p)
        for name in out:
            out[name][lo:hi] = o[name]
        status[lo:hi], pred[lo:hi], filt[lo:hi] = s, pr, fi
        smoothed[lo:hi] = reference_smooth(t_ms[lo:hi], li, pr, fi)
    return out, status, pred, filt, smoothed
