"""Causal stay detection (sliding method): closed stays, dwell at places of concern, unexplained night stays.

The stay is that of :mod:`geomon.kernels.staypoints` (Li et al. 2008, sec. 3.1,
as trackintel reads it), walked one fix at a time with the open stay carried
per subject in a state row (:data:`N_DWELL_STATE` float64), so any cut of the
stream into batches gives the same records:

- the first fix, and every fix after a gap, is an *anchor*: a new candidate
  stay starts at it;
- a fix at a distance of *at least* the radius from the anchor ends the stay
  (at that fix's time) and becomes the new anchor; a closer fix is a member
  (its position joins the running centroid);
- a step between consecutive fixes longer than the gap threshold (the one in
  force at the fix before it) ends the stay at the last fix before the gap,
  where the subject was last seen. The watermark ``now_ms`` passing that
  moment ends it too, without waiting for a fix.

Three kinds of record come out (:data:`KIND_DWELL`, :data:`KIND_NIGHT`,
:data:`KIND_STAY`):

- **stay**: every stay that ends having lasted at least the stay threshold
  (its end minus the anchor's time; the threshold in force at its end: the
  closing fix's, or the last member's when a silence ends it). Its members
  are the anchor up to the last fix before the end.
- **dwell**: opens at the first member fix at which the stay so far lasts at
  least the dwell threshold while the anchor lies at a place of concern
  (``place[anchor] >= 0``, decided by the caller); it starts at the anchor's
  time and ends when the stay ends.
- **night**: opens at the first fix at which the stay so far, ``[anchor,
  fix]``, has spent at least the night-stay threshold inside one night window
  of that fix's window pair while the stay is *away* (``away`` of the anchor
  or of a member up to that fix, decided by the caller: away from home and
  work; the anchor is often a fix on the way in) and at no place of
  concern. The fix that ends a stay counts (the stay lasted until it), so a
  night record may open and end at that fix. Onset is the later of the
  anchor's time and that window's start; it ends when the stay ends. Only
  fixes confirm: between fixes the subject may already be gone (a silence
  would end the stay at the last fix), so the watermark can end a stay but
  never lengthen one.

Thresholds are those of each fix; the radius that of the fix being compared
with the anchor.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._arrays import copy_head
from geomon.kernels._jit import jit

__all__ = ["KIND_DWELL", "KIND_NIGHT", "KIND_STAY", "N_DWELL_STATE", "N_REC", "dwell_step"]

#: Carried state: started, last fix time and the gap threshold, stay threshold
#: and threshold set in force at it, the anchor (time, x, y, place, away), the
#: members' running sums (x, y, count), the open dwell alert (confirmation
#: time, -1: none; its threshold set) and the open night alert (onset,
#: confirmation, -1: none; its threshold set).
(DS_STARTED, DS_LAST_T, DS_GAP_MS, DS_ANCHOR_T, DS_ANCHOR_X, DS_ANCHOR_Y, DS_PLACE, DS_SUM_X, DS_SUM_Y, DS_N,
 DS_CONFIRM_T, DS_SET, DS_AWAY, DS_NIGHT_ONSET, DS_NIGHT_CONFIRM_T, DS_NIGHT_SET, DS_STAY_MS, DS_LAST_SET) = range(18)
N_DWELL_STATE = 18

#: Record kinds.
KIND_DWELL, KIND_NIGHT, KIND_STAY = 0, 1, 2

#: Integer record columns: subject, kind, place of the anchor (-1: none),
#: onset (dwell and stay: the anchor's time; night: the later of it and the
#: window start), confirmation (stay: its end), end (-1: open), member fixes
#: so far, threshold set (at confirmation; stay: at its end), the batch index
#: of the fix that produced the record (-1: the watermark did), and the
#: anchor's time.
REC_SUBJECT, REC_KIND, REC_PLACE, REC_ONSET, REC_CONFIRM, REC_END, REC_COUNT, REC_SET, REC_FIX, REC_ANCHOR = range(10)
N_REC = 10


@jit
def _emit(rec_i, rec_f, n, s, st, kind, onset, confirm, end, tset, fix):
    if n == rec_i.shape[0]:
        grown_i = np.empty((2 * n, N_REC), np.int64)
        grown_f = np.empty((2 * n, 2), np.float64)
        copy_head(grown_i, rec_i, n)
        copy_head(grown_f, rec_f, n)
        rec_i, rec_f = grown_i, grown_f
    rec_i[n, REC_SUBJECT] = s
    rec_i[n, REC_KIND] = kind
    rec_i[n, REC_PLACE] = np.int64(st[DS_PLACE])
    rec_i[n, REC_ONSET] = onset
    rec_i[n, REC_CONFIRM] = confirm
    rec_i[n, REC_END] = end
    rec_i[n, REC_COUNT] = np.int64(st[DS_N])
    rec_i[n, REC_SET] = tset
    rec_i[n, REC_FIX] = fix
    rec_i[n, REC_ANCHOR] = np.int64(st[DS_ANCHOR_T])
    rec_f[n, 0] = st[DS_SUM_X] / st[DS_N]
    rec_f[n, 1] = st[DS_SUM_Y] / st[DS_N]
    return rec_i, rec_f, n + 1


@jit
def _anchor(st, t, x, y, place, away):
    st[DS_ANCHOR_T] = t
    st[DS_ANCHOR_X] = x
    st[DS_ANCHOR_Y] = y
    st[DS_PLACE] = place
    st[DS_AWAY] = 1.0 if away else 0.0
    st[DS_SUM_X] = x
    st[DS_SUM_Y] = y
    st[DS_N] = 1.0
    st[DS_CONFIRM_T] = -1.0
    st[DS_NIGHT_CONFIRM_T] = -1.0


@jit
def _night_window(anchor_ms, t_ms, need_ms, ws_row, we_row):
    """First window ``[ws, we)`` of a row the stay ``[anchor_ms, t_ms]`` meets for at least ``need_ms``; -1: none."""
    j = np.searchsorted(we_row, anchor_ms, side="right")
    while j < ws_row.size and ws_row[j] <= t_ms:
        if min(t_ms, we_row[j]) - max(anchor_ms, ws_row[j]) >= need_ms:
            return j
        j += 1
    return -1


@jit
def _night_check(rec_i, rec_f, n, s, st, t, need_ms, ws_row, we_row, tset, fix):
    """Open the night record if the stay so far, up to ``t``, proves it."""
    if st[DS_NIGHT_CONFIRM_T] >= 0.0 or st[DS_AWAY] == 0.0 or st[DS_PLACE] >= 0.0:
        return rec_i, rec_f, n
    anchor_t = np.int64(st[DS_ANCHOR_T])
    j = _night_window(anchor_t, t, need_ms, ws_row, we_row)
    if j < 0:
        return rec_i, rec_f, n
    st[DS_NIGHT_ONSET] = max(anchor_t, ws_row[j])
    st[DS_NIGHT_CONFIRM_T] = t
    st[DS_NIGHT_SET] = tset
    return _emit(rec_i, rec_f, n, s, st, np.int64(KIND_NIGHT), np.int64(st[DS_NIGHT_ONSET]), t, np.int64(-1), tset, fix)


@jit
def _close(rec_i, rec_f, n, s, st, end, stay_ms, tset, fix):
    """End the open stay at ``end``: close its alerts and keep it if it lasted ``stay_ms``."""
    anchor_t = np.int64(st[DS_ANCHOR_T])
    if st[DS_CONFIRM_T] >= 0.0:
        rec_i, rec_f, n = _emit(rec_i, rec_f, n, s, st, np.int64(KIND_DWELL), anchor_t, np.int64(st[DS_CONFIRM_T]), end,
                                np.int64(st[DS_SET]), fix)
    if st[DS_NIGHT_CONFIRM_T] >= 0.0:
        rec_i, rec_f, n = _emit(rec_i, rec_f, n, s, st, np.int64(KIND_NIGHT), np.int64(st[DS_NIGHT_ONSET]),
                                np.int64(st[DS_NIGHT_CONFIRM_T]), end, np.int64(st[DS_NIGHT_SET]), fix)
    if end - anchor_t >= stay_ms:
        rec_i, rec_f, n = _emit(rec_i, rec_f, n, s, st, np.int64(KIND_STAY), anchor_t, end, end, tset, fix)
    st[DS_CONFIRM_T] = -1.0
    st[DS_NIGHT_CONFIRM_T] = -1.0
    return rec_i, rec_f, n


@jit
def dwell_step(offsets, subjects, t_ms, x, y, place, away, radius_m, dwell_ms, gap_ms, stay_ms, night_ms, pair, tset,
               now_ms, win_start, win_end, state, due_ms):
    """Advance every subject's open stay over one batch; return the records it produced.

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
    away : bool (n,)
        Whether each fix is away from the subject's home and work (False
        without a home); read for anchors only.
    radius_m : float64 (n,); dwell_ms, gap_ms, stay_ms, night_ms, tset : int64 (n,)
        Thresholds and threshold set in force at each fix.
    pair : int64 (n,)
        Night window pair (row of ``win_start``) of each fix's threshold set.
    now_ms : int
        Watermark: every subject's fixes up to this time are in.
    win_start, win_end : int64 (n_pairs, n_windows)
        UTC bounds (ms) of each pair's night windows, sorted, padded at the
        end with int64 max; they must cover every time from the anchor of
        each batch subject's open stay to the batch's last fix.
    state : float64 (n_subjects, N_DWELL_STATE)
        Carried state (zeros before the first fix); updated in place.
    due_ms : float64 (n_subjects,)
        Per subject, when a silence ends its open stay (ms: last fix + gap; +inf with none open); updated in
        place. The watermark looks only at the subjects it has passed.

    Returns
    -------
    rec_i : int64 (n_records, N_REC)
        Stays (one record each, when they end); dwell and night alerts (one
        record when confirmed, ``REC_END`` -1, and one when they end, with
        the same onset).
    rec_f : float64 (n_records, 2)
        Centroid (x, y) of the stay's members at the record.
    """
    n_sub = state.shape[0]
    rec_i = np.empty((t_ms.size // 4 + n_sub + 16, N_REC), np.int64)
    rec_f = np.empty((rec_i.shape[0], 2), np.float64)
    n = np.int64(0)
    for b in range(subjects.size):
        s = subjects[b]
        st = state[s]
        for i in range(offsets[b], offsets[b + 1]):
            t = t_ms[i]
            if not (math.isfinite(x[i]) and math.isfinite(y[i])):
                continue
            ws_row = win_start[pair[i]]
            we_row = win_end[pair[i]]
            restart = st[DS_STARTED] == 0.0
            if not restart and t - np.int64(st[DS_LAST_T]) > np.int64(st[DS_GAP_MS]):
                rec_i, rec_f, n = _close(rec_i, rec_f, n, s, st, np.int64(st[DS_LAST_T]), np.int64(st[DS_STAY_MS]),
                                         np.int64(st[DS_LAST_SET]), i)
                restart = True
            if not restart and math.hypot(x[i] - st[DS_ANCHOR_X], y[i] - st[DS_ANCHOR_Y]) >= radius_m[i]:
                # The stay lasted until this fix, which may prove a night stay before ending it.
                rec_i, rec_f, n = _night_check(rec_i, rec_f, n, s, st, t, night_ms[i], ws_row, we_row, tset[i], i)
                rec_i, rec_f, n = _close(rec_i, rec_f, n, s, st, t, stay_ms[i], tset[i], i)
                restart = True
            if restart:
                st[DS_STARTED] = 1.0
                _anchor(st, t, x[i], y[i], place[i], away[i])
            else:
                st[DS_SUM_X] += x[i]
                st[DS_SUM_Y] += y[i]
                st[DS_N] += 1.0
                if away[i]:
                    st[DS_AWAY] = 1.0   # seen surely away during the stay: the anchor may be an arrival fix
            if st[DS_CONFIRM_T] < 0.0 and st[DS_PLACE] >= 0.0 and t - np.int64(st[DS_ANCHOR_T]) >= dwell_ms[i]:
                st[DS_CONFIRM_T] = t
                st[DS_SET] = tset[i]
                rec_i, rec_f, n = _emit(rec_i, rec_f, n, s, st, np.int64(KIND_DWELL), np.int64(st[DS_ANCHOR_T]), t,
                                        np.int64(-1), tset[i], i)
            rec_i, rec_f, n = _night_check(rec_i, rec_f, n, s, st, t, night_ms[i], ws_row, we_row, tset[i], i)
            st[DS_LAST_T] = t
            st[DS_GAP_MS] = gap_ms[i]
            st[DS_STAY_MS] = stay_ms[i]
            st[DS_LAST_SET] = tset[i]
        due_ms[s] = st[DS_LAST_T] + st[DS_GAP_MS] if st[DS_STARTED] != 0.0 else np.inf
    # A silence longer than the gap ends the stay where the subject was last seen.
    now = float(now_ms)
    for s in range(n_sub):
        if due_ms[s] < now:
            due_ms[s] = np.inf
            st = state[s]
            if st[DS_STARTED] != 0.0 and now_ms - np.int64(st[DS_LAST_T]) > np.int64(st[DS_GAP_MS]):
                rec_i, rec_f, n = _close(rec_i, rec_f, n, s, st, np.int64(st[DS_LAST_T]), np.int64(st[DS_STAY_MS]),
                                         np.int64(st[DS_LAST_SET]), np.int64(-1))
                st[DS_STARTED] = 0.0
    return rec_i[:n].copy(), rec_f[:n].copy()
