"""Daily check-ins (签到) on the event-time axis: missed check-ins and check-ins from outside the permitted area.

Each subject's fixes arrive in time order (flat arrays plus CSR ``offsets``),
batch after batch; a per-subject state row (:data:`N_CHECKIN_STATE` float64,
times exact below 2**53 ms) carries the open check-in window, so any cut of
the stream into batches gives the same events.

- **The window.** A subject must check in (a fix whose source is ``checkin``)
  at least once in every window ``(previous deadline, deadline]``; the
  deadline is a local time of day (``checkin_due``). Checking starts at the
  subject's first fix: its first window runs from that fix to the first
  deadline not before it, so no alert is raised for days before any data.
- **Missed check-in.** A window without a check-in is an event at its
  deadline (onset, confirmation and end all at the deadline). It is decided
  once event time passes the deadline: a later fix of the subject, or the
  *watermark* ``now_ms`` (the stream is complete up to it), strictly after the
  deadline, since a check-in exactly at the deadline is on time.
- **Check-in from outside.** A check-in fix flagged as outside the permitted
  area is an event at the fix's time.

The deadline of each window is that of the subject's latest fix's threshold
set (profiles and special periods may set ``checkin_due``); when a fix brings
another deadline, the open window ends at the first new deadline not before
that fix.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

__all__ = ["EVENT_MISSED", "EVENT_OUTSIDE", "N_CHECKIN_STATE", "N_REC", "DAY_MS", "checkin_step", "next_deadline"]

#: Event kinds.
EVENT_MISSED = 0
EVENT_OUTSIDE = 1

DAY_MS = 86_400_000

#: Carried state: started, the open window's deadline (ms) and lower bound
#: (first ms inside it), whether it saw a check-in, the deadline's local
#: minute of day in force, and the latest fix's threshold set and position.
(CS_STARTED, CS_DUE, CS_LOWER, CS_CHECKED, CS_DUE_MIN, CS_SET, CS_LON, CS_LAT) = range(8)
N_CHECKIN_STATE = 8

#: Integer record columns: subject, event kind, event time (ms), threshold set,
#: and the batch index of the fix that decided it (-1: the watermark did).
REC_SUBJECT, REC_KIND, REC_T, REC_SET, REC_FIX = range(5)
N_REC = 5


@jit
def next_deadline(after_ms, due_min, offset_ms):
    """First time (ms, UTC) not before ``after_ms`` whose local minute of day is ``due_min``."""
    local = after_ms + offset_ms
    day_start = (local // DAY_MS) * DAY_MS
    due = day_start + due_min * 60_000
    if due < local:
        due += DAY_MS
    return due - offset_ms


@jit
def _emit(rec_i, rec_f, n, subject, kind, t, tset, fix, lon, lat):
    rec_i[n, REC_SUBJECT] = subject
    rec_i[n, REC_KIND] = kind
    rec_i[n, REC_T] = t
    rec_i[n, REC_SET] = tset
    rec_i[n, REC_FIX] = fix
    rec_f[n, 0] = lon
    rec_f[n, 1] = lat
    return n + 1


@jit
def _pass_deadlines(rec_i, rec_f, n, s, st, until_ms, fix, offset_ms):
    """Close every window whose deadline is before ``until_ms``; a window without a check-in is missed."""
    while np.int64(st[CS_DUE]) < until_ms:
        due = np.int64(st[CS_DUE])
        if st[CS_CHECKED] == 0.0:
            n = _emit(rec_i, rec_f, n, s, EVENT_MISSED, due, np.int64(st[CS_SET]), fix, st[CS_LON], st[CS_LAT])
        st[CS_LOWER] = due + 1
        st[CS_DUE] = next_deadline(due + 1, np.int64(st[CS_DUE_MIN]), offset_ms)
        st[CS_CHECKED] = 0.0
    return n


@jit
def _capacity(offsets, t_ms, now_ms, state):
    """Records this step can produce at most: one per fix plus one per day per subject."""
    hi = now_ms
    lo = now_ms
    for i in range(t_ms.size):
        hi = max(hi, t_ms[i])
        lo = min(lo, t_ms[i])
    for s in range(state.shape[0]):
        if state[s, CS_STARTED] != 0.0:
            lo = min(lo, np.int64(state[s, CS_DUE]))
    days = (hi - lo) // DAY_MS + 2 if hi > lo else 2
    return t_ms.size + state.shape[0] * days + 1


@jit
def checkin_step(offsets, subjects, t_ms, is_checkin, inside, due_min, tset, lon, lat, offset_ms, now_ms, state):
    """Advance the check-in windows over one batch; return the event records it produced.

    Parameters
    ----------
    offsets : int64 (n_batch_subjects + 1,)
        CSR offsets of each batch subject's fixes, sorted by time.
    subjects : int64 (n_batch_subjects,)
        Row of each batch subject in ``state``.
    t_ms : int64 (n,)
        Fix times (ms, UTC), not before the subject's previous fix.
    is_checkin, inside : bool (n,)
        Whether each fix is a check-in, and whether it lies in the subject's
        permitted area (only read for check-ins).
    due_min : int64 (n,)
        Local minute of day of the deadline in force at each fix.
    tset : int64 (n,)
        Threshold set of each fix (carried into the records).
    lon, lat : float64 (n,)
        Position of each fix (degrees; NaN if unknown), where records are placed.
    offset_ms : int
        Local time minus UTC (ms).
    now_ms : int
        Watermark: every subject's fixes up to this time are in.
    state : float64 (n_subjects, N_CHECKIN_STATE)
        Carried state of every subject (zeros before its first fix); updated in
        place. Subjects not in the batch have their deadlines passed too.

    Returns
    -------
    rec_i : int64 (n_records, N_REC)
        One record per event (missed check-ins are placed at the subject's
        latest fix before the deadline, check-ins at themselves).
    rec_f : float64 (n_records, 2)
        Longitude and latitude of each record.
    """
    cap = _capacity(offsets, t_ms, now_ms, state)
    rec_i = np.empty((cap, N_REC), np.int64)
    rec_f = np.empty((cap, 2), np.float64)
    n = 0
    for b in range(subjects.size):
        s = subjects[b]
        st = state[s]
        for i in range(offsets[b], offsets[b + 1]):
            t = t_ms[i]
            if st[CS_STARTED] == 0.0:
                st[CS_STARTED] = 1.0
                st[CS_DUE_MIN] = due_min[i]
                st[CS_LOWER] = t
                st[CS_DUE] = next_deadline(t, due_min[i], offset_ms)
                st[CS_CHECKED] = 0.0
            else:
                n = _pass_deadlines(rec_i, rec_f, n, s, st, t, i, offset_ms)
                if due_min[i] != np.int64(st[CS_DUE_MIN]):
                    st[CS_DUE_MIN] = due_min[i]
                    st[CS_DUE] = next_deadline(max(np.int64(st[CS_LOWER]), t), due_min[i], offset_ms)
            if is_checkin[i]:
                st[CS_CHECKED] = 1.0
                if not inside[i]:
                    n = _emit(rec_i, rec_f, n, s, EVENT_OUTSIDE, t, tset[i], i, lon[i], lat[i])
            st[CS_SET] = tset[i]
            st[CS_LON] = lon[i]
            st[CS_LAT] = lat[i]
    for s in range(state.shape[0]):
        st = state[s]
        if st[CS_STARTED] != 0.0:
            n = _pass_deadlines(rec_i, rec_f, n, s, st, now_ms, -1, offset_ms)
    return rec_i[:n].copy(), rec_f[:n].copy()
