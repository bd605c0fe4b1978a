"""Fused positions with honest uncertainty: a three-motion filter per track, robust to multipath, learning its noise.

Each subject's fixes (a ragged track: flat arrays sorted by time plus CSR
``offsets``) are filtered in a local metric frame (metres) by an interacting
multiple model (IMM) of three motions of one person: *still*, *steady* (walking
or cruising, constant velocity under a small white acceleration) and
*manoeuvre* (starting, stopping, turning: a large one). Each motion keeps one
(position, velocity) covariance for both axes (with isotropic fix noise the
4-state filter splits exactly into two); mixing the motions adds their spread,
kept apart per axis in the reported covariance (full 2x2, ``cov_xy`` included).
:func:`fuse_tracks` documents the model and every parameter.

:func:`fuse_step` runs one batch of a stream, carrying each track's state.
:func:`geomon.kernels.smoother.rts_smooth` is the Rauch-Tung-Striebel
fixed-interval smoother over the (moment-matched) predicted and filtered states
:func:`fuse_tracks_history` stores, for offline forensic replay only; alerting
reads the causal filter.

Notes
-----
Blom and Bar-Shalom, "The interacting multiple model algorithm for systems with
Markovian switching coefficients", IEEE TAC 33(8), 1988 (IMM). Bar-Shalom, Li,
Kirubarajan, "Estimation with Applications to Tracking and Navigation", Wiley
2001: ch. 5 (NIS/NEES consistency), ch. 6 (CWNA model), ch. 11 (IMM). Agamennoni,
Nieto, Nebot, "Approximate inference in state-space models with heavy-tailed
noise", IEEE TSP 60(10), 2012 (Gaussian scale mixtures for outliers). Sarkka and
Nummenmaa, "Recursive noise adaptive Kalman filtering by variational Bayesian
approximations", IEEE TAC 54(3), 2009 (learning the noise level). Allan,
"Statistics of atomic frequency standards", Proc. IEEE 54(2), 1966, and the
variance of the mean of an AR(1) sequence (correlated errors that do not average
away). Rauch, Tung, Striebel, AIAA Journal 3(8), 1965.
"""


from __future__ import annotations

import numpy as np

from geomon.kernels._pool import split
from geomon.kernels.fusion_filter import (  # noqa: F401  (status codes and layout re-exported)
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
    # Tracks are independent: each chunk of tracks runs on a thread of its own, writing its own fixes' rows.
    split(offsets.size - 1, lambda lo, hi: _run(offsets[lo:hi + 1], t_ms, x_m, y_m, sigma_m, vector, state[lo:hi],
                                                *outputs, keep_extra, keep_history, *history), min_units=64)
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
        likeliest motion's prior (chi-square with 2 dof for a fix that fits
        it); NaN where there was no prior or no position.
    p_outlier : ndarray of float64
        Probability that the fix is multipath rather than where the subject
        is (the reported covariance covers both); NaN without a position.
    noise_m : ndarray of float64
        The per-axis noise the filter used for the fix: ``sigma_m`` times the
        square root of the noise scale it has learnt for the track.

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
    """Filter every track: three motions of a person, a heavy-tailed fix, the noise learnt per track.

    Tracks run in parallel (chunks of tracks on threads, :func:`geomon.kernels._pool.split`), each writing only its
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
        Overrides of :data:`DEFAULT_PARAMS` (each named in the notes below).

    Returns
    -------
    x_m, y_m : ndarray of float64
        Fused position (m) at each fix's time.
    var_x_m2, var_y_m2, cov_xy_m2 : ndarray of float64
        Position covariance (m^2), the full 2x2 of the mixture of motions.
    vx_mps, vy_mps : ndarray of float64
        Velocity (m/s).
    status : ndarray of int8
        :data:`ACCEPTED` (the fix counted as clean), :data:`REJECTED` (likelier
        multipath: the output leans on the prediction), :data:`REINITIALISED`
        (first usable fix, after ``gap_s``, or a restart on two fixes beyond
        multipath's reach) or :data:`PREDICTED` (no position). Fixes before a
        track's first usable one are ``PREDICTED`` with NaN outputs.

    Notes
    -----
    *Motions* (an IMM, Blom and Bar-Shalom 1988). Per axis the state is
    ``(p, v)``. *Still*: ``v = 0`` and ``p`` a random walk of
    ``q_still_m2ps``. *Steady* and *manoeuvre*: constant velocity under white
    acceleration of density ``q_steady_m2ps3`` and ``q_manoeuvre_m2ps3``
    (``Q = q [[T^3/3, T^2/2], [T^2/2, T]]``). A subject leaves a motion after a
    mean ``dwell_still_s``, ``dwell_steady_s``, ``dwell_manoeuvre_s``; of those
    who leave, ``still_to_manoeuvre_p`` go from still to the manoeuvre (the
    rest to steady), ``steady_to_still_p`` from steady to still (the rest to
    the manoeuvre) and ``manoeuvre_to_still_p`` from the manoeuvre to still
    (the rest to steady). One who leaves *still* starts with a velocity of
    spread ``v_start_mps`` (steady) or ``v_manoeuvre_mps`` (manoeuvre), and one
    who enters the manoeuvre from steady motion may change velocity by
    ``v_manoeuvre_mps``: a car pulling away is followed from its first moving
    fix, with no rule that freezes a still track. The manoeuvre's acceleration
    level over an interval ``T`` is at most ``(|v|^2 + v_start_mps^2 + var_v)
    / T`` (its mixed velocity and per-axis velocity variance): no more than
    changes the velocity by its own size plus a start speed, so a walker
    turning between fixes a minute apart is spread over tens of metres, not
    the hundreds a braking car needs, and a precise fix after a turn is not
    taken for multipath. Motions whose probability
    falls under 1 % restart from the mixture, so they are ready when the
    subject changes motion instead of drifting off. A track starts with
    ``init_still_p`` still, ``init_steady_p`` steady, the rest manoeuvre.
    Steady motion's acceleration level is the track's own (a straight walk, a
    car on a road): covariance matching (Myers and Tapley 1976) of its
    innovations while the prior believes in it (weighed by the prior's
    probability, not the posterior's: learning only from the fixes steady motion
    still explains after them would drop every turn and sink the level to its
    floor), starting at ``q_steady_m2ps3``
    with the weight of a prior sd ``q_prior_sd_m2ps3``, fading over
    ``q_memory_s``, bounded by ``q_steady_min_m2ps3`` and ``q_manoeuvre_m2ps3``. On
    a fix too coarse to show motion (sigma of ``noise_learn_below_m`` or more:
    a tower's) while the subject is likelier still, the moving motions are
    centred where the still one is, their spread kept: a motion cannot be
    followed on such fixes, only imagined.

    *Fixes* are clean, ``N(nu; 0, (a + r) I)``, or multipath with probability
    ``outlier_p``, an offset of ``outlier_sigma_m`` (``N(nu; 0, (a + r +
    outlier_sigma^2) I)``; an augmented fix, its sigma under ``outlier_ref_sigma_m``, is
    multipath the more rarely, as the fourth power of the ratio): a Gaussian scale mixture, heavy-tailed, weighed per
    motion. The update is the moment-matched mixture of the two (a multipath
    fix still says where the subject is, give or take its offset), never a
    hard rejection, so the covariance covers both. A third branch, a gross
    error with probability ``gross_p`` flat over a disc of ``gross_reach_m``
    (a fix from nowhere: a bad solution, a wrong tower), explains a lone fix
    that no motion and no multipath can; it moves nothing (``gross_p``
    0 turns it off).

    *Multipath runs beside a still subject or a walker*. Fixes that jump
    within ``outlier_reach_m`` of the anchor and settle there (two fixes
    10-120 s apart together at the anchor's pace, or, beside a still subject,
    the track still again) are a multipath run, an offset that ends after a
    mean ``run_s``, or a move. The anchor is where a still subject stood, or a
    walker's (under 2 m/s) last fused position and velocity, carried on at
    that velocity; only a fix with an outlier probability under 5 % moves
    it, and faster subjects have none. The filter follows the fixes; the
    reported position and covariance weigh the two places, the anchor and
    where the fixes are, by Bayes' rule: odds ``run_prior_odds`` at the
    start, fading as the run would have ended, gone once the fused position
    moves on from where the run began (an offset keeps the anchor's pace),
    leaves multipath's reach, comes back, or the odds fall under 0.05
    (``run_prior_odds`` 0 turns this off; jumps under ``jump_min_m`` are the
    subject's own). Two fixes in a row that are
    likelier multipath, both farther than ``outlier_reach_m`` (plus three fix
    sigmas) from where the likeliest motion expected the subject and joined by
    a speed under ``max_speed_mps``, restart the moving motions on them: a run
    of mutually consistent fixes is followed within two fixes.

    *Noise the device does not report*. The fix noise is ``r = lambda
    sigma^2`` (``sigma^2`` for fixes of ``noise_learn_below_m`` or more, whose
    coarse accuracy says nothing of a receiver's noise):
    ``lambda`` is learnt per track by variational Bayes (Sarkka and
    Nummenmaa 2009: ``E|z - x|^2 / 2 + P = r``), starting at 1 with the weight
    of ``noise_prior_n`` fixes, bounded by ``noise_scale_min`` and
    ``noise_scale_max``, with a fading memory of ``noise_memory_s``; each fix
    counts by the share of its innovation the noise makes (a manoeuvre's says
    nothing of it), its estimate clipped at 4 times the scale learnt so far
    (Huber-type: a turn or a stop the motions did not foresee must not pass
    for noise; a clean fix exceeds it with probability ``e^-4``). Errors
    shared in time (a multipath bias, a drifting solution) do not average
    away: the track compares the noise seen in differences of consecutive
    fixes (motion taken out), which a slowly varying bias hardly enters, with
    the spread of the fixes about their mean while the subject is still (over
    at most ``slow_mean_s``), which it does.
    The gap is the share of the error that is shared, learnt over
    ``corr_memory_s`` with a prior of ``corr_prior_n`` fixes at none; the
    reported covariance is then that of a mean of ``n_eff = r / P`` fixes
    whose shared part is AR(1) with time constant ``bias_tau_s`` (at most
    ``corr_max_inflation`` times the filter's). A satellite fix's accuracy is
    its whole error: while the learnt ``lambda`` stays below 1 by more than two
    of its standard errors (``lambda / sqrt(n)``, ``n`` the fixes it has
    weighed plus ``noise_prior_n``), the rest, ``(1 - lambda) sigma^2`` less
    that margin, is error the filter cannot see (a bias it follows as motion,
    which no track can tell from slow motion, or an accuracy reported too
    wide) and is added to the reported covariance of each axis.

    *Gaps*: more than ``gap_s`` after the last update the track restarts at
    the fix (its learnt noise kept).

    Examples
    --------
    >>> import numpy as np
    >>> from geomon.kernels.fusion import fuse_tracks, REJECTED
    >>> offsets = np.array([0, 4, 6])   # two tracks: fixes 0-3 and 4-5
    >>> t_ms = np.array([0, 1_000, 2_000, 3_000, 0, 15_000])
    >>> x_m = np.array([0.0, 1.0, 60.0, 3.0, 10.0, 11.0])
    >>> x, y, var_x, var_y, cov_xy, vx, vy, status = fuse_tracks(
    ...     offsets, t_ms, x_m, np.zeros(6), np.full(6, 2.5))
    >>> int(status[2]) == REJECTED      # 60 m in a second: multipath, not a move
    True
    >>> bool(abs(x[2]) < 5.0 and var_x[2] > var_x[1])   # the output stays, its covariance widens
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
        1 where fix ``i``'s prior is the filter's prediction from fix ``i - 1``
        (each motion's IMM prior, ``F P F^T + Q`` after mixing); 0 at a
        track's first fix, a restart after ``gap_s`` or a two-fix restart,
        where a smoother segment starts.
    pred, filt : ndarray of float64, shape (n, 7)
        Prior and posterior at each fix, columns :data:`HISTORY_COLUMNS`, the
        motions moment-matched with one covariance for both axes (``pred`` is
        the motions' priors weighed by their probabilities after the fix; NaN
        where there was no prior). ``filt`` is the filter's own state: what
        :func:`fuse_tracks` reports before its output stage, i.e. without the
        inflation for errors shared in time and without the doubt after a
        jump (the two-place mixture of the fused position and the anchor).

    Notes
    -----
    Fourteen numbers a fix are what an offline smoother needs; the live path
    (:func:`fuse_tracks`) never writes them.
    """
    outputs, (pred, filt, link) = _call(True, offsets, t_ms, x_m, y_m, sigma_m, params)
    return outputs[7], link, pred, filt
