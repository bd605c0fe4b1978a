"""Curfew and night activity on the event-time axis, one state row per subject.

Each subject's fixes arrive in time order (flat arrays plus CSR ``offsets``),
batch after batch, with a *watermark* ``now_ms`` (every subject's fixes up to
it are in). Night windows are given as a table of UTC bounds per window
*pair* (one pair per distinct ``(night_start, night_end)`` of the rules; the
caller computes them on the local calendar, see :mod:`geomon.engine.night`). Between
fixes the subject is where its last fix put it (last observation carried
forward): home or away.

- **Curfew breach** (宵禁): away from home inside a window for longer than the
  grace. With ``A`` the first away fix of the current away run and ``WS`` the
  window start, the breach starts at ``max(A, WS) + grace`` and exists if the
  subject was not seen home by then (a fix at home at exactly that time
  clears it); it is emitted once a fix or the watermark passes that moment
  (onset = confirmed), and ends at the first fix at home or at the window end.
- **Night activity**: per window, the travel (anchor-gated sum of fused steps,
  see :data:`TRAVEL_GATE_M`) and the time away; alerted once per window as soon
  as either exceeds the larger of its floor and the subject's baseline (the
  nearest-rank p95 of the last :data:`N_NIGHTS` completed nights with at least
  one fix in the window: the max while fewer than 20; 0 with none). Onset is
  the fix that pushed the travel over, or the exact moment the time away
  crossed; it ends at the window end with the night's totals.

Every decision depends only on the subject's fixes and on "time has reached
tau", and advancing to ``tau1`` then ``tau2`` equals advancing to ``tau2``, so
any cut of the stream into batches gives the same events.

**Time acts only when something is due.** Between its fixes a subject's state
changes with time alone only at a few moments: a window opens or closes, a
curfew's grace runs out, the time away passes the night's threshold. Each
subject carries the earliest of them (``due``, ms), and the watermark advances
only the subjects whose moment it has passed; the others' clocks wait, which
the rule above makes harmless. A live tick then costs what its fixes cost, not
what the roster does.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._arrays import copy_head
from geomon.kernels._jit import jit

__all__ = ["AWAY", "EVENT_CURFEW", "EVENT_ACTIVITY", "HOME", "N_NIGHT_STATE", "N_NIGHTS", "N_REC", "TRAVEL_GATE_M",
           "UNSURE", "new_state", "night_step"]

#: Event kinds.
EVENT_CURFEW = 0
EVENT_ACTIVITY = 1

#: Completed nights kept per subject for the baseline.
N_NIGHTS = 28
#: Travel only counts a move once the fused position is this far from where the
#: last counted move ended (metres), or farther when the position is vague (the
#: caller's per-fix gate): a still subject's jitter, and the 15-60 m offsets of
#: multipath runs in towns that get past the filter, add nothing.
TRAVEL_GATE_M = 100.0

#: Away states of a fix: at home, away, or undecided (keeps the state before it).
HOME, AWAY, UNSURE = 0, 1, -1

_FAR = -4.0e18
#: The padding of the window tables (int64 max), as the kernels read it (float64).
_PAD_F = float(np.iinfo(np.int64).max)

#: Carried state (float64 per subject).
(NS_STARTED, NS_CLOCK, NS_PAIR, NS_TSET, NS_AWAY, NS_AWAY_SINCE, NS_GRACE, NS_AWAY_FLOOR, NS_X, NS_Y,
 NS_WS, NS_WE, NS_LAST_WS, NS_LAST_WE, NS_W_FIXES, NS_W_TRAVEL, NS_W_AWAY, NS_ANCHOR_X, NS_ANCHOR_Y,
 NS_CURFEW_ON, NS_ACT_ON, NS_ACT_DONE, NS_BASE_TRAVEL, NS_BASE_AWAY, NS_RING_N, NS_RING_POS,
 NS_ACT_TRIGGER, NS_ANCHOR_GATE) = range(28)
N_NIGHT_STATE = 28

#: Record columns (float64): subject, kind, onset, confirmed, end (-1: open), place (x, y) and threshold set of
#: the fix that decided, trigger (0 travel, 1 time away, -1 curfew), travel (m) and time away (ms) so far, the
#: baselines (m, ms) and number of nights behind them, start of the away run (ms).
(REC_SUBJECT, REC_KIND, REC_ONSET, REC_CONFIRM, REC_END, REC_X, REC_Y, REC_TSET, REC_TRIGGER, REC_TRAVEL,
 REC_AWAY, REC_BASE_TRAVEL, REC_BASE_AWAY, REC_NIGHTS, REC_AWAY_SINCE) = range(15)
N_REC = 15


def new_state(n_subjects: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """State rows, the two rings (travel m, time away ms) and the due times (ms, +inf: nothing due) of
    ``n_subjects`` subjects before any fix."""
    return (np.zeros((n_subjects, N_NIGHT_STATE)), np.zeros((n_subjects, N_NIGHTS)),
            np.zeros((n_subjects, N_NIGHTS)), np.full(n_subjects, np.inf))


@jit
def _emit(rec, n, s, st, kind, onset, confirm, end, trigger, away_since):
    if n == rec.shape[0]:
        grown = np.empty((2 * rec.shape[0], N_REC))
        copy_head(grown, rec, n)
        rec = grown
    r = rec[n]
    r[REC_SUBJECT] = s
    r[REC_KIND] = kind
    r[REC_ONSET] = onset
    r[REC_CONFIRM] = confirm
    r[REC_END] = end
    r[REC_X] = st[NS_X]
    r[REC_Y] = st[NS_Y]
    r[REC_TSET] = st[NS_TSET]
    r[REC_TRIGGER] = trigger
    r[REC_TRAVEL] = st[NS_W_TRAVEL]
    r[REC_AWAY] = st[NS_W_AWAY]
    r[REC_BASE_TRAVEL] = st[NS_BASE_TRAVEL]
    r[REC_BASE_AWAY] = st[NS_BASE_AWAY]
    r[REC_NIGHTS] = st[NS_RING_N]
    r[REC_AWAY_SINCE] = away_since
    return rec, n + 1


@jit
def _p95(ring, n):
    """Nearest-rank 95th percentile of the first ``n`` values (the max while n < 20; 0 when empty)."""
    if n == 0:
        return 0.0
    v = np.sort(ring[:n])
    return v[int(np.ceil(0.95 * n)) - 1]


@jit
def _open(st, ws, we, ring_travel, ring_away):
    st[NS_WS] = ws
    st[NS_WE] = we
    st[NS_W_FIXES] = 0.0
    st[NS_W_TRAVEL] = 0.0
    st[NS_W_AWAY] = 0.0
    st[NS_ANCHOR_X] = np.nan
    st[NS_ANCHOR_Y] = np.nan
    st[NS_CURFEW_ON] = -1.0
    st[NS_ACT_ON] = -1.0
    st[NS_ACT_DONE] = 0.0
    n = int(st[NS_RING_N])
    st[NS_BASE_TRAVEL] = _p95(ring_travel, n)
    st[NS_BASE_AWAY] = _p95(ring_away, n)


@jit
def _advance(rec, n, s, st, tau, win_start, win_end, ring_travel, ring_away):
    """Run subject ``s`` forward from its clock to ``tau`` on its last fix's state and window pair."""
    p = int(st[NS_PAIR])
    ws_row = win_start[p]
    we_row = win_end[p]
    while True:
        clock = st[NS_CLOCK]
        if st[NS_WS] >= 0.0:
            we = st[NS_WE]
            stop = min(tau, we)
            if st[NS_AWAY] != 0.0 and stop >= clock:
                # Time away, and the moment it crossed the larger of floor and baseline.
                threshold = max(st[NS_AWAY_FLOOR], st[NS_BASE_AWAY])
                if st[NS_ACT_DONE] == 0.0 and st[NS_W_AWAY] + (stop - clock) > threshold:
                    cross = clock + max(threshold - st[NS_W_AWAY], 0.0)
                    st[NS_W_AWAY] += cross - clock
                    st[NS_ACT_ON] = cross
                    st[NS_ACT_DONE] = 1.0
                    st[NS_ACT_TRIGGER] = 1.0
                    rec, n = _emit(rec, n, s, st, np.int64(EVENT_ACTIVITY), cross, cross, -1.0, 1.0, st[NS_AWAY_SINCE])
                    st[NS_W_AWAY] += stop - cross
                else:
                    st[NS_W_AWAY] += stop - clock
                # Curfew: away since max(A, WS) for longer than the grace.
                onset = max(st[NS_AWAY_SINCE], st[NS_WS]) + st[NS_GRACE]
                if st[NS_CURFEW_ON] < 0.0 and onset < stop:
                    st[NS_CURFEW_ON] = onset
                    rec, n = _emit(rec, n, s, st, np.int64(EVENT_CURFEW), onset, onset, -1.0, -1.0, st[NS_AWAY_SINCE])
            st[NS_CLOCK] = max(clock, stop)
            if tau < we:
                break
            # Close the window at its end.
            if st[NS_CURFEW_ON] >= 0.0:
                rec, n = _emit(rec, n, s, st, np.int64(EVENT_CURFEW), st[NS_CURFEW_ON], st[NS_CURFEW_ON], we, -1.0,
                               st[NS_AWAY_SINCE])
            if st[NS_ACT_ON] >= 0.0:
                rec, n = _emit(rec, n, s, st, np.int64(EVENT_ACTIVITY), st[NS_ACT_ON], st[NS_ACT_ON], we,
                               st[NS_ACT_TRIGGER], st[NS_AWAY_SINCE])
            if st[NS_W_FIXES] > 0.0:
                k = int(st[NS_RING_POS])
                ring_travel[k] = st[NS_W_TRAVEL]
                ring_away[k] = st[NS_W_AWAY]
                st[NS_RING_POS] = (k + 1) % N_NIGHTS
                st[NS_RING_N] = min(st[NS_RING_N] + 1.0, float(N_NIGHTS))
            st[NS_LAST_WS] = st[NS_WS]
            st[NS_LAST_WE] = we
            st[NS_WS] = -1.0
            st[NS_CURFEW_ON] = -1.0
            st[NS_ACT_ON] = -1.0
            continue
        # No window open: one containing the clock (never overlapping the last night), else the next one by tau.
        j = np.searchsorted(ws_row, clock, side="right") - 1
        if j >= 0 and we_row[j] > clock and ws_row[j] > st[NS_LAST_WS] and ws_row[j] >= st[NS_LAST_WE]:
            _open(st, ws_row[j], we_row[j], ring_travel, ring_away)
            continue
        j = np.searchsorted(ws_row, max(clock, st[NS_LAST_WE]), side="left")
        while j < ws_row.size and ws_row[j] <= st[NS_LAST_WS]:
            j += 1
        if j < ws_row.size and ws_row[j] <= tau:
            st[NS_CLOCK] = ws_row[j]
            _open(st, ws_row[j], we_row[j], ring_travel, ring_away)
            continue
        st[NS_CLOCK] = max(clock, tau)
        break
    return rec, n


@jit
def _due(st, win_start, win_end):
    """The earliest time (ms) at which time alone changes subject's state, after :func:`_advance` to its clock:
    the open window's end, its curfew onset or its time-away crossing; with no window open, the next window's
    start (the clock itself when the table ends before it: look again next time; +inf when the pair has none)."""
    if st[NS_STARTED] == 0.0:
        return np.inf
    if st[NS_WS] >= 0.0:
        due = st[NS_WE]
        if st[NS_AWAY] != 0.0:
            if st[NS_CURFEW_ON] < 0.0:
                due = min(due, max(st[NS_AWAY_SINCE], st[NS_WS]) + st[NS_GRACE])
            if st[NS_ACT_DONE] == 0.0:
                threshold = max(st[NS_AWAY_FLOOR], st[NS_BASE_AWAY])
                due = min(due, st[NS_CLOCK] + max(threshold - st[NS_W_AWAY], 0.0))
        return due
    ws_row = win_start[int(st[NS_PAIR])]
    if ws_row[0] >= _PAD_F:
        return np.inf
    j = np.searchsorted(ws_row, max(st[NS_CLOCK], st[NS_LAST_WE]), side="left")
    while j < ws_row.size and ws_row[j] <= st[NS_LAST_WS]:
        j += 1
    if j < ws_row.size and ws_row[j] < _PAD_F:
        return ws_row[j]
    return st[NS_CLOCK]


@jit
def night_step(offsets, subjects, t_ms, x, y, away, away_since_ms, gate_m, pair, tset, grace_ms, travel_floor_m,
               away_floor_ms, now_ms, win_start, win_end, state, ring_travel, ring_away, due_ms):
    """Advance curfew and night activity over one batch; return the event records it produced.

    Parameters
    ----------
    offsets : int64 (n_batch_subjects + 1,)
        CSR offsets of each batch subject's fixes, sorted by time.
    subjects : int64 (n_batch_subjects,)
        Row of each batch subject in ``state``.
    t_ms : int64 (n,)
        Fix times (ms since the epoch), not before the subject's previous fix.
    x, y : float64 (n,)
        Fused positions, metres in a local metric frame.
    away : int8 (n,)
        Each fix's away state: :data:`AWAY` (surely farther than
        ``night_away_m`` from the subject's home zone), :data:`HOME`, or
        :data:`UNSURE` (too vague to tell; the state before it holds).
        Always HOME without a home zone.
    away_since_ms : float64 (n,)
        Where a fix is :data:`AWAY`, when the subject went away (ms; at most the fix's time): the first
        fix of the evidence that decided it. A curfew's grace and the window's time away count from it.
    gate_m : float64 (n,)
        Travel gate of each fix (m): its distance from the last counted
        position must reach this to count (at least :data:`TRAVEL_GATE_M`,
        more for a vague position), and so must the last counted position's
        gate; a sharper fix within a vaguer last counted position's gate
        replaces it without counting.
    pair : int64 (n,)
        Window pair (row of ``win_start``) of each fix's threshold set.
    tset : int64 (n,)
        Threshold set of each fix (copied into the records).
    grace_ms, away_floor_ms : int64 (n,); travel_floor_m : float64 (n,)
        Thresholds in force at each fix.
    now_ms : int
        Watermark: every subject's fixes up to this time are in.
    win_start, win_end : int64 (n_pairs, n_windows)
        UTC bounds (ms) of each pair's windows, sorted, padded at the end with
        int64 max; they must cover every time between the subjects' clocks and
        ``now_ms``.
    state : float64 (n_subjects, N_NIGHT_STATE)
        Carried state (zeros before the first fix); updated in place.
    ring_travel, ring_away : float64 (n_subjects, N_NIGHTS)
        Per subject, the last nights' travel (m) and time away (ms); updated in place.
    due_ms : float64 (n_subjects,)
        Per subject, when time alone next changes its state (see the module notes; +inf before its first
        fix); updated in place. The watermark advances only the subjects it has reached.

    Returns
    -------
    float64 (n_records, N_REC)
        One record when an event is confirmed (``REC_END`` -1) and one when it
        ends, with the same onset.
    """
    rec = np.empty((16 + 2 * t_ms.size, N_REC))
    n = np.int64(0)
    ws_all = win_start.astype(np.float64)
    we_all = win_end.astype(np.float64)
    for b in range(subjects.size):
        s = subjects[b]
        st = state[s]
        for i in range(offsets[b], offsets[b + 1]):
            t = float(t_ms[i])
            if st[NS_STARTED] == 0.0:
                st[NS_STARTED] = 1.0
                st[NS_CLOCK] = t
                st[NS_WS] = -1.0
                st[NS_LAST_WS] = _FAR
                st[NS_LAST_WE] = _FAR
                st[NS_AWAY] = 0.0
                st[NS_AWAY_SINCE] = -1.0
                st[NS_CURFEW_ON] = -1.0
                st[NS_ACT_ON] = -1.0
            else:
                rec, n = _advance(rec, n, s, st, t, ws_all, we_all, ring_travel[s], ring_away[s])
            # The fix's own window pair, thresholds and place from now on.
            st[NS_PAIR] = pair[i]
            st[NS_TSET] = tset[i]
            st[NS_GRACE] = grace_ms[i]
            st[NS_AWAY_FLOOR] = away_floor_ms[i]
            st[NS_X] = x[i]
            st[NS_Y] = y[i]
            rec, n = _advance(rec, n, s, st, t, ws_all, we_all, ring_travel[s], ring_away[s])
            if st[NS_WS] >= 0.0:
                st[NS_W_FIXES] += 1.0
                if np.isnan(st[NS_ANCHOR_X]):
                    st[NS_ANCHOR_X] = x[i]
                    st[NS_ANCHOR_Y] = y[i]
                    st[NS_ANCHOR_GATE] = gate_m[i]
                else:
                    # A step counts when it clears the gates of both its ends.
                    d = np.hypot(x[i] - st[NS_ANCHOR_X], y[i] - st[NS_ANCHOR_Y])
                    if d >= max(gate_m[i], st[NS_ANCHOR_GATE]):
                        st[NS_W_TRAVEL] += d
                        st[NS_ANCHOR_X] = x[i]
                        st[NS_ANCHOR_Y] = y[i]
                        st[NS_ANCHOR_GATE] = gate_m[i]
                    elif gate_m[i] < st[NS_ANCHOR_GATE]:
                        # A sharper fix within a vague anchor's gate replaces it, counting nothing.
                        st[NS_ANCHOR_X] = x[i]
                        st[NS_ANCHOR_Y] = y[i]
                        st[NS_ANCHOR_GATE] = gate_m[i]
                if st[NS_ACT_DONE] == 0.0 and st[NS_W_TRAVEL] > max(travel_floor_m[i], st[NS_BASE_TRAVEL]):
                    st[NS_ACT_ON] = t
                    st[NS_ACT_DONE] = 1.0
                    st[NS_ACT_TRIGGER] = 0.0
                    rec, n = _emit(rec, n, s, st, np.int64(EVENT_ACTIVITY), t, t, -1.0, 0.0, st[NS_AWAY_SINCE])
            if away[i] == AWAY:
                if st[NS_AWAY] == 0.0:
                    st[NS_AWAY] = 1.0
                    st[NS_AWAY_SINCE] = min(t, away_since_ms[i])
                    if st[NS_WS] >= 0.0:
                        # Decided now, away since then: the window's time away counts from then.
                        st[NS_W_AWAY] += t - min(max(st[NS_AWAY_SINCE], st[NS_WS]), t)
            elif away[i] == HOME and st[NS_AWAY] != 0.0:
                if st[NS_CURFEW_ON] >= 0.0:
                    rec, n = _emit(rec, n, s, st, np.int64(EVENT_CURFEW), st[NS_CURFEW_ON], st[NS_CURFEW_ON], t, -1.0,
                                   st[NS_AWAY_SINCE])
                    st[NS_CURFEW_ON] = -1.0
                st[NS_AWAY] = 0.0
        due_ms[s] = _due(st, ws_all, we_all)
    # Time up to the watermark, for the subjects it has reached.
    now = float(now_ms)
    for s in range(state.shape[0]):
        if due_ms[s] <= now and state[s, NS_STARTED] != 0.0:
            st = state[s]
            rec, n = _advance(rec, n, s, st, now, ws_all, we_all, ring_travel[s], ring_away[s])
            due_ms[s] = _due(st, ws_all, we_all)
    return rec[:n].copy()
