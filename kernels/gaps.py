"""Contact detectors on the event-time axis: lost contact, degraded location and a stuck device.

Each subject's fixes arrive in time order (flat arrays plus CSR ``offsets``),
batch after batch; a per-subject state row (:data:`N_GAP_STATE` float64)
carries what the detectors remember, so any cut of the stream into batches
gives the same events. Time is event time: a batch also brings a *watermark*
``now_ms`` (the time up to which the stream is known to be complete, e.g. the
newest fix of any subject in a replay), so that silence is noticed even when
the silent subject sends nothing.

- **Lost contact** (失联): no fix for more than ``lost_ms``. The event starts
  at ``last fix + lost_ms`` (when the silence became too long) and is emitted
  once the watermark or the next fix passes that moment; it ends at the next
  fix, and the gap (last fix to next fix) is recorded.
- **Location degraded**: the device keeps reporting, but nothing from
  satellites for more than ``degraded_ms`` (only cell or Wi-Fi fixes: a known
  evasion is to shield the receiver). Starts at ``last satellite fix +
  degraded_ms``, confirmed by the first fix that is not a satellite fix after
  it, ends at the next satellite fix.
- **Stuck device**: satellite fixes repeating exactly the same coordinates;
  real ones never do (noise moves them by centimetres to metres). Starts at the
  first fix of the run, confirmed when the run has ``stuck_count`` fixes and
  spans ``stuck_ms``, ends at the first satellite fix elsewhere.

Thresholds are per fix (profiles and special periods may change them over
time); the value of the fix (or, for silence, of the last fix) that decides
applies.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

__all__ = ["EVENT_LOST", "EVENT_DEGRADED", "EVENT_STUCK", "N_GAP_STATE", "N_REC", "gap_step"]

#: Event kinds.
EVENT_LOST = 0
EVENT_DEGRADED = 1
EVENT_STUCK = 2

#: Carried state: last fix time, last satellite fix time, the stuck run (first
#: time, count, x, y), and the start of each open event (-1: none).
(GS_STARTED, GS_LAST_T, GS_LAST_SAT_T, GS_RUN_T, GS_RUN_N, GS_RUN_X, GS_RUN_Y, GS_LOST_ON, GS_DEGRADED_ON,
 GS_STUCK_ON, GS_LOST_MS, GS_DEGRADED_CONF, GS_STUCK_CONF) = range(13)
N_GAP_STATE = 13

#: Record columns (int64): subject, event kind, onset, confirmed, end (-1: open), detail (gap length ms or
#: count), and the index in the batch of the fix that produced the record (-1: the watermark did).
REC_SUBJECT, REC_KIND, REC_ONSET, REC_CONFIRM, REC_END, REC_DETAIL, REC_FIX = range(7)
N_REC = 7


@jit
def _emit(rec, n, subject, kind, onset, confirm, end, detail, fix):
    rec[n, REC_SUBJECT] = subject
    rec[n, REC_KIND] = kind
    rec[n, REC_ONSET] = onset
    rec[n, REC_CONFIRM] = confirm
    rec[n, REC_END] = end
    rec[n, REC_DETAIL] = detail
    rec[n, REC_FIX] = fix
    return n + 1


@jit
def gap_step(offsets, subjects, t_ms, satellite, x, y, lost_ms, degraded_ms, stuck_count, stuck_ms, now_ms, state,
             due_ms):
    """Advance the contact detectors over one batch; return the event records it produced.

    Parameters
    ----------
    offsets : int64 (n_batch_subjects + 1,)
        CSR offsets of each batch subject's fixes, sorted by time.
    subjects : int64 (n_batch_subjects,)
        Row of each batch subject in ``state``.
    t_ms : int64 (n,)
        Fix times (ms), not before the subject's previous fix.
    satellite : bool (n,)
        Whether each fix is a satellite fix.
    x, y : float64 (n,)
        Coordinates as reported (any frame: only exact repetition matters).
    lost_ms, degraded_ms, stuck_ms : int64 (n,); stuck_count : int64 (n,)
        Thresholds in force at each fix.
    now_ms : int
        Watermark: every subject's fixes up to this time are in.
    state : float64 (n_subjects, N_GAP_STATE)
        Carried state of every subject (zeros before the first fix); updated
        in place. Subjects not in the batch are checked for silence too.
    due_ms : float64 (n_subjects,)
        Per subject, when its silence becomes lost contact (ms: last fix + ``lost_ms``; +inf when nothing is
        due); updated in place. The watermark looks only at the subjects it has passed, so a tick costs what
        its fixes cost, not what the roster does.

    Returns
    -------
    int64 (n_records, N_REC)
        Events: one record when an event is confirmed (``REC_END`` -1) and one
        when it ends (``REC_END`` set), with the same onset. ``REC_DETAIL`` is
        the gap (ms) for lost contact and degraded location (-1 while a lost
        contact is open: the gap is not known yet) and the run's fix count for
        a stuck device.
    """
    n_sub = state.shape[0]
    rec = np.empty((2 * (t_ms.size + n_sub) + 1, N_REC), np.int64)
    n = np.int64(0)
    for b in range(subjects.size):
        s = subjects[b]
        st = state[s]
        for i in range(offsets[b], offsets[b + 1]):
            t = t_ms[i]
            if st[GS_STARTED] == 0.0:
                st[GS_STARTED] = 1.0
                st[GS_LAST_SAT_T] = t
                st[GS_RUN_N] = 0.0
                st[GS_LOST_ON] = -1.0
                st[GS_DEGRADED_ON] = -1.0
                st[GS_STUCK_ON] = -1.0
            else:
                last = np.int64(st[GS_LAST_T])
                limit = np.int64(st[GS_LOST_MS])
                if t - last > limit:
                    onset = last + limit
                    if st[GS_LOST_ON] < 0.0:
                        n = _emit(rec, n, s, np.int64(EVENT_LOST), onset, onset, np.int64(-1), np.int64(-1), i)
                    n = _emit(rec, n, s, np.int64(EVENT_LOST), onset, onset, t, t - last, i)
                    st[GS_LOST_ON] = -1.0
            # Degraded: time since the last satellite fix.
            if satellite[i]:
                if st[GS_DEGRADED_ON] >= 0.0:
                    onset = np.int64(st[GS_DEGRADED_ON])
                    n = _emit(rec, n, s, np.int64(EVENT_DEGRADED), onset, np.int64(st[GS_DEGRADED_CONF]), t,
                              t - np.int64(st[GS_LAST_SAT_T]), i)
                    st[GS_DEGRADED_ON] = -1.0
                st[GS_LAST_SAT_T] = t
            elif st[GS_DEGRADED_ON] < 0.0 and t - np.int64(st[GS_LAST_SAT_T]) > degraded_ms[i]:
                onset = np.int64(st[GS_LAST_SAT_T]) + degraded_ms[i]
                st[GS_DEGRADED_ON] = onset
                st[GS_DEGRADED_CONF] = t
                n = _emit(rec, n, s, np.int64(EVENT_DEGRADED), onset, t, np.int64(-1),
                          t - np.int64(st[GS_LAST_SAT_T]), i)
            # Stuck: satellite fixes at exactly the same place.
            if satellite[i]:
                if st[GS_RUN_N] > 0.0 and x[i] == st[GS_RUN_X] and y[i] == st[GS_RUN_Y]:
                    st[GS_RUN_N] += 1.0
                else:
                    if st[GS_STUCK_ON] >= 0.0:
                        n = _emit(rec, n, s, np.int64(EVENT_STUCK), np.int64(st[GS_STUCK_ON]),
                                  np.int64(st[GS_STUCK_CONF]), t, np.int64(st[GS_RUN_N]), i)
                        st[GS_STUCK_ON] = -1.0
                    st[GS_RUN_N] = 1.0
                    st[GS_RUN_T] = t
                    st[GS_RUN_X] = x[i]
                    st[GS_RUN_Y] = y[i]
                run_t = np.int64(st[GS_RUN_T])
                if (st[GS_STUCK_ON] < 0.0 and st[GS_RUN_N] >= stuck_count[i] and t - run_t >= stuck_ms[i]):
                    st[GS_STUCK_ON] = run_t
                    st[GS_STUCK_CONF] = t
                    n = _emit(rec, n, s, np.int64(EVENT_STUCK), run_t, t, np.int64(-1), np.int64(st[GS_RUN_N]), i)
            st[GS_LAST_T] = t
            st[GS_LOST_MS] = lost_ms[i]
        due_ms[s] = st[GS_LAST_T] + st[GS_LOST_MS] if st[GS_LOST_ON] < 0.0 else np.inf
    # Silence up to the watermark, for the subjects whose silence it has passed.
    now = float(now_ms)
    for s in range(n_sub):
        if due_ms[s] < now:
            due_ms[s] = np.inf
            st = state[s]
            if st[GS_STARTED] != 0.0 and st[GS_LOST_ON] < 0.0:
                onset = np.int64(st[GS_LAST_T]) + np.int64(st[GS_LOST_MS])
                if now_ms > onset:
                    st[GS_LOST_ON] = onset
                    n = _emit(rec, n, s, np.int64(EVENT_LOST), onset, onset, np.int64(-1), np.int64(-1),
                              np.int64(-1))
    return rec[:n].copy()
