"""The causal stay walk of :mod:`geomon.kernels.dwell` read plainly: the slow reference of ``dwell_step``.

It does not walk fix by fix with carried state as the kernel does: it first
cuts each subject's whole track into stays (as docs/staypoints.md states the
sliding method, with a silence ending the stay at its last fix), then reads
each stay's records off its member list. The kernel must give the same
records for the same stream in one batch or in any number of batches.

A record is a tuple ``(subject, kind, place, onset, confirmed, end, n_fixes,
threshold set, anchor time, x, y)`` with the kernel's kind codes and ``end``
-1 while open; ``(x, y)`` is the centroid of the members at the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geomon.kernels.dwell import KIND_DWELL, KIND_NIGHT, KIND_STAY


@dataclass(frozen=True)
class Fix:
    """One fix and the thresholds in force at it (times ms, distances m)."""

    t: int
    x: float
    y: float
    place: int = -1
    away: bool = False
    radius_m: float = 50.0
    dwell_ms: int = 900_000
    gap_ms: int = 1_800_000
    stay_ms: int = 600_000
    night_ms: int = 7_200_000
    pair: int = 0
    tset: int = 0


def _mean(fixes: list[Fix]) -> tuple[float, float]:
    return sum(f.x for f in fixes) / len(fixes), sum(f.y for f in fixes) / len(fixes)


def cut_stays(fixes: list[Fix], now_ms: int) -> list[tuple[int, int, int | None, int | None]]:
    """``(first, stop, end_ms, closer)`` of each stay of one time-sorted track; members are ``first .. stop - 1``.

    ``closer`` is the index of the fix that left the stay (None when a silence
    ended it); ``end_ms`` is None for the stay still open at ``now_ms``.
    """
    stays = []
    first = 0
    for k in range(1, len(fixes)):
        if fixes[k].t - fixes[k - 1].t > fixes[k - 1].gap_ms:
            stays.append((first, k, fixes[k - 1].t, None))
            first = k
        elif math.hypot(fixes[k].x - fixes[first].x, fixes[k].y - fixes[first].y) >= fixes[k].radius_m:
            stays.append((first, k, fixes[k].t, k))
            first = k
    if fixes:
        last = fixes[-1]
        silent = now_ms - last.t > last.gap_ms
        stays.append((first, len(fixes), last.t if silent else None, None))
    return stays


def night_onset(anchor_ms: int, t_ms: int, need_ms: int, windows: list[tuple[int, int]]) -> int | None:
    """Onset of a night stay proved at ``t_ms`` by the stay from ``anchor_ms``, or None."""
    for ws, we in windows:
        if ws <= t_ms and we > anchor_ms and min(t_ms, we) - max(anchor_ms, ws) >= need_ms:
            return max(anchor_ms, ws)
    return None


def stay_records(s: int, fixes: list[Fix], first: int, stop: int, end: int | None, closer: int | None,
                 windows: list[list[tuple[int, int]]]) -> list[tuple]:
    members = fixes[first:stop]
    anchor = members[0]
    a = anchor.t
    out = []

    def rec(kind, onset, confirmed, end_ms, upto, tset):
        return (s, kind, anchor.place, onset, confirmed, end_ms, upto, tset, a, *_mean(members[:upto]))

    if anchor.place >= 0:
        for m, f in enumerate(members):
            if f.t - a >= f.dwell_ms:
                out.append(rec(KIND_DWELL, a, f.t, -1, m + 1, f.tset))
                if end is not None:
                    out.append(rec(KIND_DWELL, a, f.t, end, len(members), f.tset))
                break
    if anchor.place < 0:
        judged = [(m + 1, f) for m, f in enumerate(members)]
        if closer is not None:
            judged.append((len(members), fixes[closer]))
        for upto, f in judged:
            if not any(g.away for g in members[:upto]):   # away: the anchor or a member so far
                continue
            onset = night_onset(a, f.t, f.night_ms, windows[f.pair])
            if onset is not None:
                out.append(rec(KIND_NIGHT, onset, f.t, -1, upto, f.tset))
                if end is not None:
                    out.append(rec(KIND_NIGHT, onset, f.t, end, len(members), f.tset))
                break
    if end is not None:
        at_end = fixes[closer] if closer is not None else members[-1]
        if end - a >= at_end.stay_ms:
            out.append(rec(KIND_STAY, a, end, end, len(members), at_end.tset))
    return out


def reference_records(tracks: list[list[Fix]], windows: list[list[tuple[int, int]]], now_ms: int) -> list[tuple]:
    """Every record of ``tracks`` (one time-sorted list per subject) once the watermark is ``now_ms``, sorted."""
    out = []
    for s, track in enumerate(tracks):
        fixes = [f for f in track if math.isfinite(f.x) and math.isfinite(f.y)]
        for first, stop, end, closer in cut_stays(fixes, now_ms):
            out += stay_records(s, fixes, first, stop, end, closer, windows)
    return sorted(out)
