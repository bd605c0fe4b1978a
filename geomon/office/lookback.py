"""Incident look-back: who was, or could have been, near a place at a time, and who can be ruled out.

:func:`near` reads the fused tracks a replay keeps (the store's ``tracks``
table, :meth:`geomon.store.alert_store.AlertStore.list_tracks`, or any table in
:data:`geomon.store.alert_store.TRACK_SCHEMA`), so a look-back over a month of history
recomputes nothing. For every subject with a position within ``horizon_s`` of
the window ``[at - window_s, at + window_s]``:

- where it reported at most ``max_gap_s`` apart, it moved in a straight line
  between its fused positions; the closest approach to the place in the window
  and the probability that it was then within ``radius_m`` (its trusted
  1-sigma, the larger of the two fixes', as a normal error along the line to
  the place) are computed exactly;
- where it was silent for longer (or before its first or after its last
  position), it could have been anywhere it can reach at ``speed_mps``: it
  *could have been there* if, leaving its last position and arriving at its
  next one in time, it could stand at the place at some moment of the window.

Each subject gets a ``status``: ``was_there`` (probability of having been
within at least ``sure_p``), ``could_have_been`` (a probability above
``1 - sure_p``, or reachable during a silence) or ``ruled_out``. Rows are
ranked by status, then closest approach, then probability.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import numpy as np
import pyarrow as pa

from geomon.geo.crs import transverse_mercator
from geomon.schema import TS_TYPE
from geomon.store.alert_store import TRACK_SCHEMA, AlertStore

__all__ = ["NEAR_SCHEMA", "STATUSES", "near"]

#: Statuses, in rank order.
STATUSES = ("was_there", "could_have_been", "ruled_out")

#: One row per subject considered.
NEAR_SCHEMA = pa.schema([
    pa.field("subject_id", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("min_distance_m", pa.float64(), nullable=True),
    pa.field("closest_at", TS_TYPE, nullable=True),
    pa.field("p_within", pa.float64(), nullable=False),
    pa.field("sigma_m", pa.float64(), nullable=True),
    pa.field("silent_s", pa.float64(), nullable=False),
    pa.field("reachable", pa.bool_(), nullable=False),
])

_NORMAL = NormalDist()


def _ms(at) -> int:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, not {at!r}")
        return int(at.timestamp() * 1000)
    return int(at)


def _subject(t, x, y, sig, lo, hi, max_gap_ms, speed, radius_m):
    """(min distance, its time, p within, its sigma, silent ms, reachable) of one subject's fixes near [lo, hi]."""
    best_d, best_t, best_p, best_s = math.inf, None, 0.0, None
    silent, reachable = 0.0, False
    d_fix = np.hypot(x, y)
    # Silences: before the first fix, between fixes farther apart than max_gap, after the last fix.
    starts = np.r_[-np.inf, t]
    ends = np.r_[t, np.inf]
    gaps = np.flatnonzero((ends - starts) > max_gap_ms)
    for g in gaps:
        a, b = max(starts[g], lo), min(ends[g], hi)
        if b < a:
            continue
        silent += b - a
        # Stand at the place at some moment in [lo, hi] between leaving the last fix and reaching the next.
        earliest = starts[g] + d_fix[g - 1] / speed * 1000 if g > 0 else -np.inf
        latest = ends[g] - d_fix[g] / speed * 1000 if g < t.size else np.inf
        if max(earliest, lo) <= min(latest, hi):
            reachable = True
    # Segments moved on in a straight line, and single fixes inside the window.
    for i in range(t.size):
        if lo <= t[i] <= hi and d_fix[i] < best_d:
            best_d, best_t, best_s = d_fix[i], t[i], sig[i]
    for i in range(t.size - 1):
        t0, t1 = t[i], t[i + 1]
        if t1 - t0 > max_gap_ms or t1 <= t0 or t1 < lo or t0 > hi:
            continue
        a, b = max(t0, lo), min(t1, hi)
        vx, vy = (x[i + 1] - x[i]) / (t1 - t0), (y[i + 1] - y[i]) / (t1 - t0)
        # Position at a: p0 + v (a - t0); closest to the origin for u in [0, b - a].
        px, py = x[i] + vx * (a - t0), y[i] + vy * (a - t0)
        vv = vx * vx + vy * vy
        u = 0.0 if vv == 0.0 else min(max(-(px * vx + py * vy) / vv, 0.0), b - a)
        d = math.hypot(px + vx * u, py + vy * u)
        if d < best_d:
            best_d, best_t, best_s = d, a + u, max(sig[i], sig[i + 1])
    if best_t is not None:
        best_p = 1.0 if best_s == 0.0 and best_d <= radius_m else (
            0.0 if best_s == 0.0 else _NORMAL.cdf((radius_m - best_d) / best_s))
    return best_d, best_t, best_p, best_s, silent, reachable


def near(tracks, lon: float, lat: float, at, *, window_s: float = 1800.0, radius_m: float = 200.0,
         max_gap_s: float = 120.0, speed_mps: float = 15.0, sure_p: float = 0.95,
         horizon_s: float = 6 * 3600.0) -> pa.Table:
    """Rank the subjects by how likely they were within ``radius_m`` of (lon, lat) around time ``at``.

    Parameters
    ----------
    tracks : AlertStore, path of a store, or pyarrow.Table
        Fused tracks in :data:`geomon.store.alert_store.TRACK_SCHEMA` (a replay with
        ``db=`` keeps them).
    lon, lat : float
        The place (WGS84 degrees).
    at : datetime (timezone-aware) or int
        The moment (ms since the epoch when an int).
    window_s : float
        Half-width of the time window around ``at`` (s).
    radius_m : float
        How near counts (m).
    max_gap_s : float
        Longest silence still interpolated in a straight line (s).
    speed_mps : float
        Fastest a subject is assumed to move while silent (m/s).
    sure_p : float
        Probability for ``was_there`` (and ``1 - sure_p`` for ruling out).
    horizon_s : float
        How far before and after the window positions are read, to bound the
        silences that cover it (s).

    Returns
    -------
    pyarrow.Table
        :data:`NEAR_SCHEMA`, ranked: status, closest approach, probability.
    """
    for name, v in (("window_s", window_s), ("radius_m", radius_m), ("speed_mps", speed_mps)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, not {v!r}")
    if not 0.5 < sure_p < 1.0:
        raise ValueError(f"sure_p must be in (0.5, 1), not {sure_p!r}")
    at_ms = _ms(at)
    lo, hi = at_ms - window_s * 1000, at_ms + window_s * 1000
    table = _read(tracks, lo - horizon_s * 1000, hi + horizon_s * 1000)
    frame = transverse_mercator(round(float(lon), 6))
    ox, oy = frame.project(np.array([lon]), np.array([lat]))
    sid = np.asarray(table.column("subject_id").to_pylist(), dtype=object)
    t = table.column("ts").cast(pa.int64()).to_numpy().astype(np.float64)
    x, y = frame.project(table.column("lon").to_numpy(), table.column("lat").to_numpy())
    x, y = np.asarray(x) - ox[0], np.asarray(y) - oy[0]
    sig = table.column("sigma_m").to_numpy()
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True]) if sid.size else np.array([0])
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        d, when, p, s, silent, reachable = _subject(t[a:b], x[a:b], y[a:b], sig[a:b], lo, hi, max_gap_s * 1000,
                                                      speed_mps, radius_m)
        status = ("was_there" if p >= sure_p else
                  "could_have_been" if p > 1.0 - sure_p or reachable else "ruled_out")
        rows.append((sid[a], status, None if when is None else d, when, p, s, silent / 1000.0, reachable))
    rows.sort(key=lambda r: (STATUSES.index(r[1]), math.inf if r[2] is None else r[2], -r[4], r[0]))
    cols = list(zip(*rows)) if rows else [[] for _ in NEAR_SCHEMA]
    return pa.table([
        pa.array(cols[0], pa.string()), pa.array(cols[1], pa.string()), pa.array(cols[2], pa.float64()),
        pa.array([None if v is None else int(v) for v in cols[3]], pa.int64()).cast(TS_TYPE),
        pa.array(cols[4], pa.float64()), pa.array(cols[5], pa.float64()), pa.array(cols[6], pa.float64()),
        pa.array(cols[7], pa.bool_()),
    ], schema=NEAR_SCHEMA)


def _read(tracks, lo_ms: float, hi_ms: float) -> pa.Table:
    """Track rows with ``lo_ms <= ts < hi_ms``, by subject then time."""
    if isinstance(tracks, pa.Table):
        t = tracks.column("ts").cast(pa.int64()).to_numpy()
        keep = np.flatnonzero((t >= lo_ms) & (t < hi_ms))
        part = tracks.take(pa.array(keep)).select(TRACK_SCHEMA.names)
        return part.sort_by([("subject_id", "ascending"), ("ts", "ascending")])
    since = datetime.fromtimestamp(lo_ms / 1000, timezone.utc)
    until = datetime.fromtimestamp(hi_ms / 1000, timezone.utc) + timedelta(milliseconds=1)
    if isinstance(tracks, AlertStore):
        return tracks.list_tracks(since, until)
    with AlertStore(tracks, read_only=True) as store:
        return store.list_tracks(since, until)
