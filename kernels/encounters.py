"""Encounters: pairs of tracks within a distance of each other, found by grid hashing per time slice.

A track is one subject's fixes sorted by time (flat arrays plus CSR ``offsets``),
in planar metres. Between two consecutive fixes no more than ``max_gap_s``
apart the subject moves in a straight line at constant speed; across a longer
gap, and before its first or after its last fix, it is nowhere. Two tracks are
*within* while the distance between their interpolated positions is at most
``distance_m``; an encounter is a maximal stretch of time within.

The search, linear in the fixes rather than quadratic in the tracks:

1. time is cut into slices of ``slice_s``; for every slice a track is present
   in, the bounding box of its positions in that slice (the segment ends and
   fixes inside it) is one *record*;
2. per slice, records are hashed into square grid cells of ``cell_m`` by their
   boxes grown by ``distance_m / 2`` on every side; two records are a
   *candidate* when their grown boxes overlap (boxes whose tracks come within
   ``distance_m`` always do), reported once, in the cell holding the corner of
   the overlap with the smallest coordinates;
3. for each candidate, the slice is cut at both tracks' fix times; in each
   piece both move linearly, so their separation is a quadratic in time whose
   roots give the exact stretch within and whose vertex the closest approach;
4. stretches of one pair that touch (across pieces and slices) are merged.

Times are float64 seconds (callers subtract a reference time first so that
milliseconds stay exact).
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._arrays import copy_head
from geomon.kernels._jit import jit

__all__ = ["BIG_CELLS", "N_ENC", "encounter_intervals", "merge_intervals", "slice_records", "slices_within"]

#: Interval columns (float64): track a, track b, start, end, closest distance, its time, and the midpoint of the
#: two positions then (x, y).
E_A, E_B, E_START, E_END, E_DMIN, E_TMIN, E_X, E_Y = range(8)
N_ENC = 8


@jit
def _slices_of(t0, t1, slice_s):
    """First and last slice a segment [t0, t1] is in (one ending on a slice boundary does not enter the next)."""
    k0 = np.int64(math.floor(t0 / slice_s))
    k1 = np.int64(math.floor(t1 / slice_s))
    if k1 * slice_s == t1 and k1 > k0:
        k1 -= 1
    return k0, k1


@jit
def _count_records(offsets, t, max_gap_s, slice_s):
    """Number of (slice, track) records of each track."""
    n_tracks = offsets.size - 1
    counts = np.zeros(n_tracks, np.int64)
    for s in range(n_tracks):
        last = np.int64(-(1 << 62))   # before any slice (times may be negative)
        for i in range(offsets[s], offsets[s + 1] - 1):
            t0, t1 = t[i], t[i + 1]
            if t1 - t0 > max_gap_s:
                continue
            k0, k1 = _slices_of(t0, t1, slice_s)
            for k in range(max(k0, last + 1), k1 + 1):
                counts[s] += 1
            last = max(last, k1)
    return counts


@jit
def _fill_records(offsets, t, x, y, max_gap_s, slice_s, starts, rec_k, rec_s, box):
    """Slice, track and bounding box (xmin, ymin, xmax, ymax) of every record, track by track."""
    n_tracks = offsets.size - 1
    for s in range(n_tracks):
        j = starts[s] - 1
        last = np.int64(-(1 << 62))   # before any slice (times may be negative)
        for i in range(offsets[s], offsets[s + 1] - 1):
            t0, t1 = t[i], t[i + 1]
            if t1 - t0 > max_gap_s:
                continue
            k0, k1 = _slices_of(t0, t1, slice_s)
            span = t1 - t0
            for k in range(k0, k1 + 1):
                a = max(t0, k * slice_s)
                b = min(t1, (k + 1) * slice_s)
                fa = 0.0 if span == 0.0 else (a - t0) / span
                fb = 0.0 if span == 0.0 else (b - t0) / span
                xa, ya = x[i] + fa * (x[i + 1] - x[i]), y[i] + fa * (y[i + 1] - y[i])
                xb, yb = x[i] + fb * (x[i + 1] - x[i]), y[i] + fb * (y[i + 1] - y[i])
                if k > last:
                    j += 1
                    rec_k[j] = k
                    rec_s[j] = s
                    box[j, 0] = min(xa, xb)
                    box[j, 1] = min(ya, yb)
                    box[j, 2] = max(xa, xb)
                    box[j, 3] = max(ya, yb)
                    last = k
                else:
                    box[j, 0] = min(box[j, 0], xa, xb)
                    box[j, 1] = min(box[j, 1], ya, yb)
                    box[j, 2] = max(box[j, 2], xa, xb)
                    box[j, 3] = max(box[j, 3], ya, yb)


@jit
def _segment_at(t, lo, hi, tau):
    """Index i in [lo, hi - 1) of the segment [t[i], t[i + 1]] holding ``tau`` (the last one starting at or before)."""
    a, b = lo, hi - 1
    while b - a > 1:
        m = (a + b) // 2
        if t[m] <= tau:
            a = m
        else:
            b = m
    return a


@jit
def _grow(out, n, row):
    if n == out.shape[0]:
        grown = np.empty((2 * out.shape[0] + 16, out.shape[1]))
        copy_head(grown, out, n)
        out = grown
    for c in range(row.size):
        out[n, c] = row[c]
    return out, n + 1


@jit
def _pair_within(out, n, a, b, lo_a, hi_a, lo_b, hi_b, t, x, y, sig, z, ws, we, max_gap_s, distance_m):
    """Append the stretches tracks a and b are within inside [ws, we) (pieces cut at both tracks' fixes).

    Within a piece means at most ``distance_m - z * hypot(sa, sb)`` apart, ``sa``/``sb`` the larger 1-sigma of the
    fixes at either end of each track's segment (``z`` 0: the plain distance).
    """
    tau = ws
    ia = _segment_at(t, lo_a, hi_a, tau)
    ib = _segment_at(t, lo_b, hi_b, tau)
    row = np.empty(N_ENC)
    is_open = False   # a stretch within is open (times may be negative: no sentinel value)
    open_start = 0.0
    open_end = -1.0
    best = np.inf
    best_t = 0.0
    best_x = 0.0
    best_y = 0.0
    while tau < we:
        # Advance each track to the segment covering tau.
        while ia + 1 < hi_a - 1 and t[ia + 1] <= tau:
            ia += 1
        while ib + 1 < hi_b - 1 and t[ib + 1] <= tau:
            ib += 1
        na = t[ia] if tau < t[ia] else t[ia + 1]
        nb = t[ib] if tau < t[ib] else t[ib + 1]
        end = min(we, na, nb)
        valid = (t[ia] <= tau < t[ia + 1] and t[ia + 1] - t[ia] <= max_gap_s
                 and t[ib] <= tau < t[ib + 1] and t[ib + 1] - t[ib] <= max_gap_s)
        if valid:
            sa = t[ia + 1] - t[ia]
            sb = t[ib + 1] - t[ib]
            vax = 0.0 if sa == 0.0 else (x[ia + 1] - x[ia]) / sa
            vay = 0.0 if sa == 0.0 else (y[ia + 1] - y[ia]) / sa
            vbx = 0.0 if sb == 0.0 else (x[ib + 1] - x[ib]) / sb
            vby = 0.0 if sb == 0.0 else (y[ib + 1] - y[ib]) / sb
            pax = x[ia] + vax * (tau - t[ia])
            pay = y[ia] + vay * (tau - t[ia])
            pbx = x[ib] + vbx * (tau - t[ib])
            pby = y[ib] + vby * (tau - t[ib])
            rx, ry = pax - pbx, pay - pby
            vx, vy = vax - vbx, vay - vby
            length = end - tau
            reach = distance_m - z * math.hypot(max(sig[ia], sig[ia + 1]), max(sig[ib], sig[ib + 1]))
            d2 = reach * reach if reach > 0.0 else -1.0   # a reach of nothing: never within
            qa = vx * vx + vy * vy
            qb = 2.0 * (rx * vx + ry * vy)
            qc = rx * rx + ry * ry
            # Closest approach in the piece.
            u = 0.0 if qa == 0.0 else min(max(-qb / (2.0 * qa), 0.0), length)
            ex, ey = rx + vx * u, ry + vy * u
            dmin2 = ex * ex + ey * ey
            # Where qa u^2 + qb u + qc - d2 <= 0 within [0, length].
            lo, hi = 1.0, 0.0   # empty
            if qa == 0.0:
                if qc <= d2:
                    lo, hi = 0.0, length
            else:
                disc = qb * qb - 4.0 * qa * (qc - d2)
                if disc >= 0.0:
                    root = math.sqrt(disc)
                    lo = max((-qb - root) / (2.0 * qa), 0.0)
                    hi = min((-qb + root) / (2.0 * qa), length)
            if lo <= hi:
                s0, s1 = tau + lo, tau + hi
                if is_open and s0 <= open_end:
                    open_end = max(open_end, s1)
                else:
                    if is_open:
                        row[E_A], row[E_B], row[E_START], row[E_END] = a, b, open_start, open_end
                        row[E_DMIN], row[E_TMIN], row[E_X], row[E_Y] = math.sqrt(best), best_t, best_x, best_y
                        out, n = _grow(out, n, row)
                    open_start, open_end, is_open = s0, s1, True
                    best = np.inf
                if dmin2 < best:
                    best = dmin2
                    best_t = tau + u
                    best_x = 0.5 * (pax + vax * u + pbx + vbx * u)
                    best_y = 0.5 * (pay + vay * u + pby + vby * u)
        tau = end if end > tau else we
    if is_open:
        row[E_A], row[E_B], row[E_START], row[E_END] = a, b, open_start, open_end
        row[E_DMIN], row[E_TMIN], row[E_X], row[E_Y] = math.sqrt(best), best_t, best_x, best_y
        out, n = _grow(out, n, row)
    return out, n


#: A grown box covering more grid cells than this is checked against every record of its slice instead.
BIG_CELLS = 256


@jit
def _cell_span(box, r, half, cell_m):
    cx0 = np.int64(math.floor((box[r, 0] - half) / cell_m))
    cx1 = np.int64(math.floor((box[r, 2] + half) / cell_m))
    cy0 = np.int64(math.floor((box[r, 1] - half) / cell_m))
    cy1 = np.int64(math.floor((box[r, 3] + half) / cell_m))
    return cx0, cx1, cy0, cy1


@jit
def _cell_key(cx, cy):
    return (cx << 32) ^ (cy & 0xFFFFFFFF)


@jit
def _boxes_meet(box, i, j, half):
    return (max(box[i, 0], box[j, 0]) - half <= min(box[i, 2], box[j, 2]) + half
            and max(box[i, 1], box[j, 1]) - half <= min(box[i, 3], box[j, 3]) + half)


@jit
def _check(out, n, i, j, rec_s, offsets, t, x, y, sig, z, ws, we, max_gap_s, distance_m, done, until):
    a, b = rec_s[i], rec_s[j]
    if a > b:
        a, b = b, a
    # Only the pair's open window: after what both tracks had before (done), up to what both have now (until).
    ws = max(ws, min(done[a], done[b]))
    we = min(we, min(until[a], until[b]))
    if ws >= we:
        return out, n
    return _pair_within(out, n, a, b, offsets[a], offsets[a + 1], offsets[b], offsets[b + 1],
                        t, x, y, sig, z, ws, we, max_gap_s, distance_m)


@jit
def _slice_pairs(out, n, r0, r1, rec_s, box, offsets, t, x, y, sig, z, ws, we, max_gap_s, distance_m, cell_m, done,
                 until):
    """Candidates of one slice's records [r0, r1) by grid hashing, each checked exactly."""
    half = 0.5 * distance_m
    big = np.zeros(r1 - r0, np.bool_)
    n_cells = 0
    for r in range(r0, r1):
        cx0, cx1, cy0, cy1 = _cell_span(box, r, half, cell_m)
        cells = (cx1 - cx0 + 1) * (cy1 - cy0 + 1)
        if cells > BIG_CELLS:
            big[r - r0] = True
        else:
            n_cells += cells
    # Big boxes (a long move within one slice) meet every record directly.
    for r in range(r0, r1):
        if not big[r - r0]:
            continue
        for q in range(r0, r1):
            if q == r or (big[q - r0] and q < r):
                continue
            if _boxes_meet(box, r, q, half):
                out, n = _check(out, n, r, q, rec_s, offsets, t, x, y, sig, z, ws, we, max_gap_s, distance_m, done,
                                until)
    keys = np.empty(n_cells, np.int64)
    owner = np.empty(n_cells, np.int64)
    c = 0
    for r in range(r0, r1):
        if big[r - r0]:
            continue
        cx0, cx1, cy0, cy1 = _cell_span(box, r, half, cell_m)
        for cx in range(cx0, cx1 + 1):
            for cy in range(cy0, cy1 + 1):
                keys[c] = _cell_key(cx, cy)
                owner[c] = r
                c += 1
    order = np.argsort(keys, kind="mergesort")
    g0 = 0
    while g0 < n_cells:
        key = keys[order[g0]]
        g1 = g0 + 1
        while g1 < n_cells and keys[order[g1]] == key:
            g1 += 1
        for p in range(g0, g1):
            i = owner[order[p]]
            for q in range(p + 1, g1):
                j = owner[order[q]]
                if not _boxes_meet(box, i, j, half):
                    continue
                # Report the pair only in the cell holding the overlap's lower corner.
                rx = np.int64(math.floor((max(box[i, 0], box[j, 0]) - half) / cell_m))
                ry = np.int64(math.floor((max(box[i, 1], box[j, 1]) - half) / cell_m))
                if _cell_key(rx, ry) != key:
                    continue
                out, n = _check(out, n, i, j, rec_s, offsets, t, x, y, sig, z, ws, we, max_gap_s, distance_m, done,
                                until)
        g0 = g1
    return out, n


@jit
def slice_records(offsets, t, x, y, max_gap_s, slice_s):
    """Records of every (slice, track) a track is present in, grouped by slice.

    Returns
    -------
    per : int64 (n_slices + 1,)
        Records of slice ``k_lo + k`` are ``[per[k], per[k + 1])``.
    track : int64 (n_records,)
        Track of each record.
    box : float64 (n_records, 4)
        Bounding box (xmin, ymin, xmax, ymax) of the track's positions in the slice.
    k_lo : int
        First slice index.
    """
    counts = _count_records(offsets, t, max_gap_s, slice_s)
    starts = np.zeros(counts.size + 1, np.int64)
    starts[1:] = np.cumsum(counts)
    n_rec = starts[-1]
    rec_k = np.empty(n_rec, np.int64)
    rec_s = np.empty(n_rec, np.int64)
    box = np.empty((n_rec, 4))
    _fill_records(offsets, t, x, y, max_gap_s, slice_s, starts, rec_k, rec_s, box)
    if n_rec == 0:
        return np.zeros(1, np.int64), rec_s, box, 0
    # Counting sort of the records by slice.
    k_lo = rec_k.min()
    k_hi = rec_k.max()
    per = np.zeros(k_hi - k_lo + 2, np.int64)
    for r in range(n_rec):
        per[rec_k[r] - k_lo + 1] += 1
    per = np.cumsum(per)
    pos = per[:-1].copy()
    track = np.empty(n_rec, np.int64)
    box_sorted = np.empty((n_rec, 4))
    for r in range(n_rec):
        k = rec_k[r] - k_lo
        track[pos[k]] = rec_s[r]
        box_sorted[pos[k]] = box[r]
        pos[k] += 1
    return per, track, box_sorted, k_lo


@jit
def slices_within(per, track, box, k_lo, k_from, k_to, offsets, t, x, y, sig, z, distance_m, max_gap_s, slice_s,
                  cell_m, done, until):
    """Stretches within of slices ``k_from <= k < k_to`` (rows of ``per``); releases the GIL, so threads can split
    the slices."""
    out = np.empty((64, N_ENC))
    n = 0
    for k in range(k_from, k_to):
        r0, r1 = per[k], per[k + 1]
        if r1 - r0 < 2:
            continue
        ws = (k + k_lo) * slice_s
        out, n = _slice_pairs(out, n, r0, r1, track, box, offsets, t, x, y, sig, z, ws, ws + slice_s,
                              max_gap_s, distance_m, cell_m, done, until)
    return out[:n].copy()


def encounter_intervals(offsets, t, x, y, distance_m, max_gap_s, slice_s, cell_m, threads=1, sigma=None, z=0.0,
                        done=None, until=None):
    """Every stretch of time two tracks are within ``distance_m``, per slice (merge them with :func:`merge_intervals`).

    Parameters
    ----------
    offsets : int64 (n_tracks + 1,)
        CSR offsets of each track's fixes.
    t : float64 (n,)
        Fix times (s), sorted within each track.
    x, y : float64 (n,)
        Positions (m), finite.
    distance_m : float
        Within means at most this far apart (> 0).
    max_gap_s : float
        Longest step between consecutive fixes that is interpolated (>= 0).
    slice_s : float
        Length of the time slices (> 0).
    cell_m : float
        Side of the grid cells (> 0); about ``distance_m`` plus the distance a
        subject moves in a slice.
    threads : int
        Threads to split the slices over (the kernels release the GIL).
    sigma : float64 (n,), optional
        1-sigma (m) of each position; with ``z`` > 0 two tracks are within
        only when at most ``distance_m - z * hypot(sigma_a, sigma_b)`` apart
        (each the larger sigma of its segment's two fixes): sure to be within.
    z : float
        How many sigmas of margin (0: the plain distance, sigma unused).
    done, until : float64 (n_tracks,), optional
        Per track, the time (s) up to which it was already searched and up to
        which it may be searched now: a pair is searched only over
        ``[min(done_a, done_b), min(until_a, until_b))``, so that a stream
        searches each stretch of each pair once (:mod:`geomon.engine.meetings`).
        Default: everything.

    Returns
    -------
    float64 (n_intervals, N_ENC)
        One row per stretch within each slice, unordered.
    """
    per, track, box, k_lo = slice_records(offsets, t, x, y, max_gap_s, slice_s)
    n_slices = per.size - 1
    args = (per, track, box, k_lo)
    sig = np.zeros(t.size) if sigma is None else np.ascontiguousarray(sigma, dtype=np.float64)
    n_tracks = offsets.size - 1
    done = np.full(n_tracks, -np.inf) if done is None else np.ascontiguousarray(done, dtype=np.float64)
    until = np.full(n_tracks, np.inf) if until is None else np.ascontiguousarray(until, dtype=np.float64)
    rest = (offsets, t, x, y, sig, float(z), float(distance_m), float(max_gap_s), float(slice_s), float(cell_m),
            done, until)
    if threads <= 1 or n_slices < 2:
        return slices_within(*args, 0, n_slices, *rest)
    # Chunks of about equal record counts (the work grows with them), a few per thread.
    n_chunks = min(n_slices, 4 * threads)
    cuts = np.searchsorted(per, np.linspace(0, per[-1], n_chunks + 1)[1:-1])
    bounds = np.unique(np.r_[0, np.clip(cuts, 0, n_slices), n_slices])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(lambda ab: slices_within(*args, ab[0], ab[1], *rest), zip(bounds[:-1], bounds[1:])))
    return np.concatenate(parts) if parts else np.zeros((0, N_ENC))


@jit
def merge_intervals(iv):
    """Merge the stretches of each pair that touch; ``iv`` sorted by (a, b, start). Closest approach kept."""
    out = np.empty_like(iv)
    n = 0
    for i in range(iv.shape[0]):
        if n > 0 and out[n - 1, E_A] == iv[i, E_A] and out[n - 1, E_B] == iv[i, E_B] \
                and iv[i, E_START] <= out[n - 1, E_END]:
            prev = out[n - 1]
            prev[E_END] = max(prev[E_END], iv[i, E_END])
            if iv[i, E_DMIN] < prev[E_DMIN]:
                prev[E_DMIN] = iv[i, E_DMIN]
                prev[E_TMIN] = iv[i, E_TMIN]
                prev[E_X] = iv[i, E_X]
                prev[E_Y] = iv[i, E_Y]
        else:
            out[n] = iv[i]
            n += 1
    return out[:n].copy()
