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

from geomon.kernels.fusion_filter import (  # noqa: F401  (status codes and layout re-exported)
    _MAX_REINIT_K,
    ACCEPTED,
    DEFAULT_PARAMS,
    HISTORY_COLUMNS,
    N_STATE,
    PREDICTED,
    REINITIALISED,
    REJECTED,
    _run,
)

__all__ = ["ACCEPTED", "REJECTED", "REINITIALISED", "PREDICTED", "HISTORY_COLUMNS", "DEFAULT_PARAMS", "N_STATE",
           "new_state", "fuse_tracks", "fuse_step", "fuse_tracks_history"]


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
