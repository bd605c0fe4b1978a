"""Geofence state machine: permitted-area exits and forbidden-zone entries with hysteresis.

Per (subject, zone) the detector is in one of three states: clear, pending (the
subject was seen on the wrong side, not yet confirmed) and confirmed (an alert
is open). Each fix of the subject says, for each zone, "violation" (on the
wrong side by at least the zone's buffer), "neutral" (inside the buffer band)
or "compliant" (listed as such, or by omission), and carries its evidence for a
breach (a log-likelihood ratio, :mod:`geomon.kernels.evidence`; 0 if unlisted).

A pending state confirms by the rule of the fix being judged (each fix carries
the index of its threshold set, so special periods may change it over time):

- *evidence* (the default): Page's CUSUM ``S = max(0, S + llr)`` confirms when
  ``S`` reaches ``log(86400 / (budget dt))``, ``dt`` the seconds since the
  subject's previous fix (clamped to 1-300 s): a false-alarm budget per
  subject-day. A fix with positive evidence opens a pending state; it clears
  silently when ``S`` falls to 0 or the fix is surely on the right side
  (probability of the wrong side at most ``1 - breach_p``), which only lowers
  ``S`` and so keeps the budget.
- *fixes* (legacy): ``confirm_fixes`` violating fixes *and* ``confirm_ms`` of
  event time since the first one; one compliant fix clears it silently.

A confirmed state ends after ``confirm_fixes`` consecutive compliant fixes and
``confirm_ms``, the end time being the first of them, by either rule. Neutral
fixes change no count. A state confirms or ends at the first fix whose own
thresholds the evidence, count and time so far meet. A segment between two
consecutive fixes that passes through a forbidden zone while neither fix is in
it is alerted at once with interpolated entry and exit times.

Everything is causal and sequential per subject, and the state is carried in
arrays between calls, so feeding the same fixes in any number of consecutive
batches gives the same records.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels import evidence as _ev
from geomon.kernels._arrays import copy_row
from geomon.kernels._jit import jit
from geomon.kernels.pip import LOC_INTERIOR, locate

#: Zone kinds as the state machine sees them.
ZONE_PERMITTED = 0
ZONE_FORBIDDEN = 1

#: Hit flags (a fix absent from a zone's hits is compliant too).
HIT_COMPLIANT = -1
HIT_NEUTRAL = 0
HIT_VIOLATION = 1

#: Entry status.
PENDING = 1
CONFIRMED = 2

#: Record events.
EVENT_CONFIRMED = 0
EVENT_ENDED = 1
EVENT_CROSSING = 2

#: Columns of the carried entry table (int64 and float64 parts).
ENT_SUBJECT, ENT_ZONE, ENT_STATUS, ENT_COUNT, ENT_ONSET_T, ENT_CONFIRM_T, ENT_BACK_COUNT, ENT_BACK_T, ENT_SET = range(9)
N_ENT_INT = 9
ENT_X, ENT_Y, ENT_DEPTH, ENT_P, ENT_SIGMA, ENT_S = range(6)
N_ENT_FLOAT = 6

#: Columns of the record table.
REC_SUBJECT, REC_ZONE, REC_EVENT, REC_ONSET_T, REC_CONFIRM_T, REC_END_T, REC_COUNT, REC_SET = range(8)
N_REC_INT = 8
REC_X, REC_Y, REC_DEPTH, REC_P, REC_SIGMA, REC_S = range(6)
N_REC_FLOAT = 6


@jit
def segment_inside_span(ax, ay, bx, by, edges, e0, e1, grid, nx, ny, cbase, words, ranks, starts, stream, buf):
    """Where the segment A->B runs inside one polygon.

    Returns ``(t_in, t_out, inside)``: the parameters (0..1 along A->B) where
    the first inside stretch starts and the last one ends, and the total
    inside fraction; ``(-1, -1, 0)`` if the segment never enters. Edges of the
    polygon are ``edges[e0:e1]``; its grid locates the midpoints of the pieces
    between successive edge crossings.
    """
    dx = bx - ax
    dy = by - ay
    n = np.int64(0)
    buf[n] = 0.0
    n += 1
    for e in range(e0, e1):
        cx = edges[e, 0]
        cy = edges[e, 1]
        ex = edges[e, 2] - cx
        ey = edges[e, 3] - cy
        denom = dx * ey - dy * ex
        if denom == 0.0:
            continue
        acx = cx - ax
        acy = cy - ay
        t = (acx * ey - acy * ex) / denom
        u = (acx * dy - acy * dx) / denom
        if 0.0 <= t <= 1.0 and 0.0 <= u <= 1.0:
            buf[n] = t
            n += 1
    buf[n] = 1.0
    n += 1
    ts = np.sort(buf[:n])
    t_in = -1.0
    t_out = -1.0
    inside = 0.0
    for k in range(n - 1):
        if ts[k + 1] <= ts[k]:
            continue
        tm = 0.5 * (ts[k] + ts[k + 1])
        if locate(ax + tm * dx, ay + tm * dy, grid, nx, ny, cbase, words, ranks, starts, stream) == LOC_INTERIOR:
            inside += ts[k + 1] - ts[k]
            if t_in < 0.0:
                t_in = ts[k]
            t_out = ts[k + 1]
    return t_in, t_out, inside


@jit
def _emit(rec_i, rec_f, n, subject, zone, event, onset_t, confirm_t, end_t, count, tset, x, y, depth, p, sigma,
          evidence):
    rec_i[n, REC_SUBJECT] = subject
    rec_i[n, REC_ZONE] = zone
    rec_i[n, REC_EVENT] = event
    rec_i[n, REC_ONSET_T] = onset_t
    rec_i[n, REC_CONFIRM_T] = confirm_t
    rec_i[n, REC_END_T] = end_t
    rec_i[n, REC_COUNT] = count
    rec_i[n, REC_SET] = tset
    rec_f[n, REC_X] = x
    rec_f[n, REC_Y] = y
    rec_f[n, REC_DEPTH] = depth
    rec_f[n, REC_P] = p
    rec_f[n, REC_SIGMA] = sigma
    rec_f[n, REC_S] = evidence
    return n + 1


@jit
def geofence_step(batch_offsets, batch_subject, t, x, y, rx, ry,
                  hit_offsets, hit_zone, hit_flag, hit_depth, hit_p, hit_sigma, hit_llr,
                  cross_offsets, cross_zone, cross_t_in, cross_t_out,
                  fix_set, set_confirm_fixes, set_confirm_ms, set_by_fixes, set_budget, set_breach_p,
                  ent_i, ent_f, ent_offsets,
                  last_t, last_x, last_y):
    """Advance the geofence state over one batch of fixes.

    Parameters
    ----------
    batch_offsets : int64 (n_batch_subjects + 1,)
        Fixes of the b-th subject of the batch are ``[batch_offsets[b], batch_offsets[b + 1])``,
        sorted by time.
    batch_subject : int64 (n_batch_subjects,)
        Global subject code of each batch subject.
    t : int64 (n_fixes,)
        Fix times, ms since the epoch.
    x, y : float64 (n_fixes,)
        Fused positions in the local metric frame, metres: where alerts are placed.
    rx, ry : float64 (n_fixes,)
        The fixes as reported: crossings interpolate along their chords.
    hit_offsets, hit_zone, hit_flag, hit_depth, hit_p, hit_sigma, hit_llr
        CSR over fixes: zones (global codes) for which the fix is a violation,
        neutral or compliant (``HIT_*``), with the depth across the boundary in
        metres, the probability of being on the wrong side, the position's
        standard deviation along the boundary normal and the fix's evidence
        for a breach; absent zones are compliant with no evidence.
    cross_offsets, cross_zone, cross_t_in, cross_t_out
        CSR over fixes: forbidden zones the segment from the subject's previous
        fix to this one passes through while neither end violates, with entry
        and exit as fractions of the segment.
    fix_set : int64 (n_fixes,)
        Threshold set of each fix.
    set_confirm_fixes, set_confirm_ms : int64 (n_sets,)
        Hysteresis thresholds per threshold set; the judged fix's set applies.
    set_by_fixes : bool (n_sets,)
        The legacy confirmation rule (fixes and time) instead of the evidence.
    set_budget, set_breach_p : float64 (n_sets,)
        False decisions per subject-day the evidence's threshold allows; the
        probability of the wrong side whose complement marks a fix surely back.
    ent_i, ent_f, ent_offsets
        Carried entries (``ENT_*`` columns), sorted by subject, CSR over global
        subject codes.
    last_t, last_x, last_y : (n_subjects,)
        Each subject's previous fix as reported (``last_t`` = -1 if none); updated in place.

    Returns
    -------
    new_ent_i, new_ent_f : entries of the batch's subjects after the batch.
    rec_i, rec_f : records (``REC_*`` columns): confirmations, ends, crossings.
        ``REC_SET`` is the threshold set of the confirming fix (for an end,
        of the fix that confirmed the alert; for a crossing, of the fix that
        closes the segment).
    """
    n_hits = hit_zone.size
    n_cross = cross_zone.size
    n_old = ent_i.shape[0]
    cap_ent = n_old + n_hits + 1
    new_i = np.empty((cap_ent, N_ENT_INT), np.int64)
    new_f = np.empty((cap_ent, N_ENT_FLOAT))
    cap_rec = 2 * (n_old + n_hits) + n_cross + 1
    rec_i = np.empty((cap_rec, N_REC_INT), np.int64)
    rec_f = np.empty((cap_rec, N_REC_FLOAT))
    n_new = 0
    n_rec = np.int64(0)
    # Scratch for one subject's live entries.
    cur_i = np.empty((cap_ent, N_ENT_INT), np.int64)
    cur_f = np.empty((cap_ent, N_ENT_FLOAT))
    for b in range(batch_subject.size):
        s = batch_subject[b]
        m = 0
        for r in range(ent_offsets[s], ent_offsets[s + 1]):
            copy_row(cur_i, m, ent_i, r)
            copy_row(cur_f, m, ent_f, r)
            m += 1
        for k in range(batch_offsets[b], batch_offsets[b + 1]):
            tk = t[k]
            tset = fix_set[k]
            need = set_confirm_fixes[tset]
            need_ms = set_confirm_ms[tset]
            by_fixes = set_by_fixes[tset]
            # The evidence's threshold for this fix: the budget spread over the subject's reporting rate.
            h_k = _ev.fix_threshold(set_budget[tset], (tk - last_t[s]) * 1e-3 if last_t[s] >= 0 else -1.0)
            back_p = 1.0 - set_breach_p[tset]
            # Crossings between the previous fix and this one.
            for c in range(cross_offsets[k], cross_offsets[k + 1]):
                z = cross_zone[c]
                busy = False
                for q in range(m):
                    if cur_i[q, ENT_ZONE] == z:
                        busy = True
                if busy or last_t[s] < 0:
                    continue
                dt = tk - last_t[s]
                t_in = last_t[s] + np.int64(cross_t_in[c] * dt)
                t_out = last_t[s] + np.int64(cross_t_out[c] * dt)
                tm = 0.5 * (cross_t_in[c] + cross_t_out[c])
                n_rec = _emit(rec_i, rec_f, n_rec, s, z, np.int64(EVENT_CROSSING), t_in, tk, t_out, np.int64(0), tset,
                              last_x[s] + tm * (rx[k] - last_x[s]), last_y[s] + tm * (ry[k] - last_y[s]), 0.0,
                              np.nan, np.nan, np.nan)
            # Existing entries: advance or clear.
            q = 0
            while q < m:
                z = cur_i[q, ENT_ZONE]
                flag = HIT_COMPLIANT  # unless listed otherwise
                depth = 0.0
                prob = 0.0
                sigma = np.nan
                llr = 0.0
                for h in range(hit_offsets[k], hit_offsets[k + 1]):
                    if hit_zone[h] == z:
                        flag = hit_flag[h]
                        depth = hit_depth[h]
                        prob = hit_p[h]
                        sigma = hit_sigma[h]
                        llr = hit_llr[h]
                drop = False
                if cur_i[q, ENT_STATUS] == PENDING:
                    # The evidence is kept under either rule, so a period that changes the rule finds it.
                    cur_f[q, ENT_S] = _ev.decide_step(cur_f[q, ENT_S], llr, h_k)
                    if by_fixes:
                        counts = flag == HIT_VIOLATION
                        confirm = counts and cur_i[q, ENT_COUNT] + 1 >= need and tk - cur_i[q, ENT_ONSET_T] >= need_ms
                        drop = flag == HIT_COMPLIANT  # a blip: clear without alert
                    else:
                        counts = llr > 0.0
                        confirm = cur_f[q, ENT_S] >= h_k
                        drop = cur_f[q, ENT_S] <= 0.0 or (flag == HIT_COMPLIANT and prob <= back_p)
                    if counts:
                        cur_i[q, ENT_COUNT] += 1
                        cur_f[q, ENT_DEPTH] = max(cur_f[q, ENT_DEPTH], depth)
                    if confirm:
                        drop = False
                        cur_i[q, ENT_STATUS] = CONFIRMED
                        cur_i[q, ENT_CONFIRM_T] = tk
                        cur_i[q, ENT_SET] = tset
                        cur_f[q, ENT_X] = x[k]
                        cur_f[q, ENT_Y] = y[k]
                        cur_f[q, ENT_P] = prob
                        cur_f[q, ENT_SIGMA] = sigma
                        n_rec = _emit(rec_i, rec_f, n_rec, s, z, np.int64(EVENT_CONFIRMED), cur_i[q, ENT_ONSET_T], tk,
                                      np.int64(-1), cur_i[q, ENT_COUNT], tset, x[k], y[k], cur_f[q, ENT_DEPTH], prob,
                                      sigma, cur_f[q, ENT_S])
                else:  # CONFIRMED
                    if flag == HIT_VIOLATION:
                        cur_i[q, ENT_BACK_COUNT] = 0
                        cur_i[q, ENT_COUNT] += 1
                    elif flag == HIT_COMPLIANT:
                        if cur_i[q, ENT_BACK_COUNT] == 0:
                            cur_i[q, ENT_BACK_T] = tk
                        cur_i[q, ENT_BACK_COUNT] += 1
                        if cur_i[q, ENT_BACK_COUNT] >= need and tk - cur_i[q, ENT_BACK_T] >= need_ms:
                            n_rec = _emit(rec_i, rec_f, n_rec, s, z, np.int64(EVENT_ENDED), cur_i[q, ENT_ONSET_T],
                                          cur_i[q, ENT_CONFIRM_T], cur_i[q, ENT_BACK_T], cur_i[q, ENT_COUNT],
                                          cur_i[q, ENT_SET], cur_f[q, ENT_X], cur_f[q, ENT_Y], cur_f[q, ENT_DEPTH],
                                          cur_f[q, ENT_P], cur_f[q, ENT_SIGMA], cur_f[q, ENT_S])
                            drop = True
                if drop:
                    m -= 1
                    copy_row(cur_i, q, cur_i, m)
                    copy_row(cur_f, q, cur_f, m)
                else:
                    q += 1
            # New violations (legacy) or new evidence open pending entries.
            for h in range(hit_offsets[k], hit_offsets[k + 1]):
                if (hit_flag[h] != HIT_VIOLATION) if by_fixes else not (hit_llr[h] > 0.0):
                    continue
                z = hit_zone[h]
                known = False
                for q in range(m):
                    if cur_i[q, ENT_ZONE] == z:
                        known = True
                if known:
                    continue
                cur_i[m, ENT_SUBJECT] = s
                cur_i[m, ENT_ZONE] = z
                cur_i[m, ENT_STATUS] = PENDING
                cur_i[m, ENT_COUNT] = 1
                cur_i[m, ENT_ONSET_T] = tk
                cur_i[m, ENT_CONFIRM_T] = -1
                cur_i[m, ENT_BACK_COUNT] = 0
                cur_i[m, ENT_BACK_T] = -1
                cur_i[m, ENT_SET] = -1
                cur_f[m, ENT_X] = x[k]
                cur_f[m, ENT_Y] = y[k]
                cur_f[m, ENT_DEPTH] = hit_depth[h]
                cur_f[m, ENT_P] = hit_p[h]
                cur_f[m, ENT_SIGMA] = hit_sigma[h]
                cur_f[m, ENT_S] = _ev.decide_step(0.0, hit_llr[h], h_k)
                if (need <= 1 and need_ms <= 0) if by_fixes else cur_f[m, ENT_S] >= h_k:
                    cur_i[m, ENT_STATUS] = CONFIRMED
                    cur_i[m, ENT_CONFIRM_T] = tk
                    cur_i[m, ENT_SET] = tset
                    n_rec = _emit(rec_i, rec_f, n_rec, s, z, np.int64(EVENT_CONFIRMED), tk, tk, np.int64(-1),
                                  np.int64(1), tset, x[k], y[k], hit_depth[h], hit_p[h], hit_sigma[h], cur_f[m, ENT_S])
                m += 1
            last_t[s] = tk
            last_x[s] = rx[k]
            last_y[s] = ry[k]
        for q in range(m):
            copy_row(new_i, n_new, cur_i, q)
            copy_row(new_f, n_new, cur_f, q)
            n_new += 1
    return new_i[:n_new].copy(), new_f[:n_new].copy(), rec_i[:n_rec].copy(), rec_f[:n_rec].copy()
