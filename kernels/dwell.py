"""Causal stay detection (sliding method) with alerts for stays at places of concern.

The stay is that of :mod:`geomon.kernels.staypoints` (Li et al. 2008, sec. 3.1,
as trackintel reads it), walked one fix at a time with the open stay carried
per subject in a state row (:data:`N_DWELL_STATE` float64), so any cut of the
stream into batches gives the same events:

- the first fix, and every fix after a gap, is an *anchor*: a new candidate
  stay starts at it;
- a fix at a distance of *at least* the radius from the anchor ends the stay
  (at that fix's time) and becomes the new anchor; a closer fix is a member
  (its position joins the running centroid);
- a step between consecutive fixes longer than the gap threshold (the one in
  force at the fix before it) discards the candidate: the stay ends at the
  last fix before the gap, where the subject was last seen. The watermark
  ``now_ms`` passing that moment ends it too, without waiting for a fix.

An alert opens at the first member fix at which the stay so far lasts at least
the dwell threshold (its time minus the anchor's) while the anchor lies at a
place of concern (``place[anchor] >= 0``, decided by the caller); it starts
at the anchor's time and ends when the stay ends. Thresholds are those of each
fix; the radius that of the fix being compared with the anchor.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit

__all__ = ["N_DWELL_STATE", "N_REC", "dwell_step"]

#: Carried state: started, last fix time and the gap threshold in force at it,
#: the anchor (time, x, y, place), the members' running sums (x, y, count), and
#: the open alert (confirmation time, -1: none; its threshold set).
(DS_STARTED, DS_LAST_T, DS_GAP_MS, DS_ANCHOR_T, DS_ANCHOR_X, DS_ANCHOR_Y, DS_PLACE, DS_SUM_X, DS_SUM_Y, DS_N,
 DS_CONFIRM_T, DS_SET) = range(12)
N_DWELL_STATE = 12

#: Integer record columns: subject, place, onset (anchor time), confirmation,
#: end (-1: open), member fixes so far, threshold set at confirmation, and the
#: batch index of the fix that produced the record (-1: the watermark did).
REC_SUBJECT, REC_PLACE, REC_ONSET, REC_CONFIRM, REC_END, REC_COUNT, REC_SET, REC_FIX = range(8)
N_REC = 8


@jit
def _emit(rec_i, rec_f, n, s, st, end, fix):
    rec_i[n, REC_SUBJECT] = s
    rec_i[n, REC_PLACE] = np.int64(st[DS_PLACE])
    rec_i[n, REC_ONSET] = np.int64(st[DS_ANCHOR_T])
    rec_i[n, REC_CONFIRM] = np.int64(st[DS_CONFIRM_T])
    rec_i[n, REC_END] = end
    rec_i[n, REC_COUNT] = np.int64(st[DS_N])
    rec_i[n, REC_SET] = np.int64(st[DS_SET])
    rec_i[n, REC_FIX] = fix
    rec_f[n, 0] = st[DS_SUM_X] / st[DS_N]
    rec_f[n, 1] = st[DS_SUM_Y] / st[DS_N]
    return n + 1


@jit
def _anchor(st, t, x, y, place):
    st[DS_ANCHOR_T] = t
    st[DS_ANCHOR_X] = x
    st[DS_ANCHOR_Y] = y
    st[DS_PLACE] = place
    st[DS_SUM_X] = x
    st[DS_SUM_Y] = y
    st[DS_N] = 1.0
    st[DS_CONFIRM_T] = -1.0


@jit
def dwell_step(offsets, subjects, t_ms, x, y, place, radius_m, dwell_ms, gap_ms, tset, now_ms, state):
    """Advance every subject's open stay over one batch; return the dwell alert records it produced.

    Parameters
    ----------
    offsets : int64 (n_batch_subjects + 1,)
        CSR offsets of each batch subject's fixes, sorted by time.
    subjects : int64 (n_batch_subjects,)
        Row of each batch subject in ``state``.
    t_ms : int64 (n,)
        Fix times (ms), not before the subject's previous fix.
    x, y : float64 (n,)
        Positions in a metric frame (m). Fixes with a non-finite coordinate
        are skipped.
    place : int64 (n,)
        Place of concern at each fix (within its radius), -1 for none; read
        for anchors only.
    radius_m : float64 (n,); dwell_ms, gap_ms, tset : int64 (n,)
        Thresholds and threshold set in force at each fix.
    now_ms : int
        Watermark: every subject's fixes up to this time are in.
    state : float64 (n_subjects, N_DWELL_STATE)
        Carried state (zeros before the first fix); updated in place.

    Returns
    -------
    rec_i : int64 (n_records, N_REC)
        One record when an alert is confirmed (``REC_END`` -1) and one when it
        ends, with the same onset.
    rec_f : float64 (n_records, 2)
        Centroid (x, y) of the stay's members at the record.
    """
    n_sub = state.shape[0]
    rec_i = np.empty((2 * t_ms.size + n_sub + 1, N_REC), np.int64)
    rec_f = np.empty((2 * t_ms.size + n_sub + 1, 2), np.float64)
    n = 0
    for b in range(subjects.size):
        s = subjects[b]
        st = state[s]
        for i in range(offsets[b], offsets[b + 1]):
            t = t_ms[i]
            if not (math.isfinite(x[i]) and math.isfinite(y[i])):
                continue
            restart = st[DS_STARTED] == 0.0
            if not restart and t - np.int64(st[DS_LAST_T]) > np.int64(st[DS_GAP_MS]):
                if st[DS_CONFIRM_T] >= 0.0:
                    n = _emit(rec_i, rec_f, n, s, st, np.int64(st[DS_LAST_T]), i)
                restart = True
            if not restart and math.hypot(x[i] - st[DS_ANCHOR_X], y[i] - st[DS_ANCHOR_Y]) >= radius_m[i]:
                if st[DS_CONFIRM_T] >= 0.0:
                    n = _emit(rec_i, rec_f, n, s, st, t, i)
                restart = True
            if restart:
                st[DS_STARTED] = 1.0
                _anchor(st, t, x[i], y[i], place[i])
            else:
                st[DS_SUM_X] += x[i]
                st[DS_SUM_Y] += y[i]
                st[DS_N] += 1.0
            if st[DS_CONFIRM_T] < 0.0 and st[DS_PLACE] >= 0.0 and t - np.int64(st[DS_ANCHOR_T]) >= dwell_ms[i]:
                st[DS_CONFIRM_T] = t
                st[DS_SET] = tset[i]
                n = _emit(rec_i, rec_f, n, s, st, -1, i)
            st[DS_LAST_T] = t
            st[DS_GAP_MS] = gap_ms[i]
    # A silence longer than the gap ends the stay where the subject was last seen.
    for s in range(n_sub):
        st = state[s]
        if st[DS_STARTED] != 0.0 and now_ms - np.int64(st[DS_LAST_T]) > np.int64(st[DS_GAP_MS]):
            if st[DS_CONFIRM_T] >= 0.0:
                n = _emit(rec_i, rec_f, n, s, st, np.int64(st[DS_LAST_T]), -1)
            st[DS_STARTED] = 0.0
            st[DS_CONFIRM_T] = -1.0
    return rec_i[:n].copy(), rec_f[:n].copy()
