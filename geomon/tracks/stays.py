"""Stay points (dwells) of each subject, by the sliding method of Li et al. (2008) as trackintel reads it.

:func:`staypoints` (exported as ``geomon.staypoints``) takes fixes as
:func:`geomon.io.load.load_fixes` returns them, puts each subject's fixes in time
order, drops exact duplicates and fixes without a position, and runs
:func:`geomon.kernels.staypoints.find_staypoints` over the subjects' tracks.
Distances are ellipsoidal (WGS84) and need no local frame, so a dataset may
span several UTM zones. The rules are in the kernel's docstring and in
docs/staypoints.md.

The module is not called ``geomon.staypoints`` because importing a submodule
of that name would replace the function ``geomon.staypoints`` on the package.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.errors import InputError
from geomon.io.common import _duplicates, _plain, fix_table
from geomon.kernels.staypoints import NO_GAP_MS, find_staypoints
from geomon.schema import STAYPOINT_SCHEMA, TS_TYPE

__all__ = ["STAYPOINT_SCHEMA", "TRACK_COLUMNS", "fix_tracks", "positive_number", "staypoints", "track_table"]

#: Columns a track-reading function (stays, encounters) needs.
TRACK_COLUMNS = ("subject_id", "ts", "lon", "lat")


def positive_number(name: str, value, *, none_ok: bool = False) -> float | None:
    """``value`` as a positive finite float (``none_ok``: None or inf give None), else an error naming ``name``."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or value <= 0.0 or (math.isinf(value) and not none_ok):
        raise ValueError(f"{name} must be a positive{'' if none_ok else ' finite'} number, got {value!r}")
    return None if math.isinf(value) else value


def track_table(fixes) -> pa.Table:
    """The fixes as an Arrow table with :data:`TRACK_COLUMNS` (a FixLoad's table, or checked)."""
    return fix_table(fixes, TRACK_COLUMNS)


def _degrees(table: pa.Table, name: str, limit: float) -> np.ndarray:
    """A coordinate column as float64 degrees, NaN where null; out-of-range values are an error."""
    try:
        column = pc.cast(table.column(name), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError("fixes", f"{name} is not numeric ({table.schema.field(name).type})", field=name) from None
    values = np.asarray(column.fill_null(np.nan).to_numpy(), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.abs(values) > limit)
    if bad.size:
        raise InputError("fixes", f"{values[bad[0]]!r} is outside [-{limit:g}, {limit:g}] degrees",
                         row=int(bad[0]), field=name)
    return values


def _time_order(subject: pa.Array, t_ms: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Stable ``(subject_id, ts)`` order (None if the rows are in it already) and, in that order,
    whether each row has the subject and time of the one before."""
    n = len(t_ms)
    if n < 2:
        return None, np.zeros(n, bool)
    same_subject = pc.equal(subject[1:], subject[:-1]).to_numpy(zero_copy_only=False)
    later_subject = pc.less(subject[:-1], subject[1:]).to_numpy(zero_copy_only=False)
    dt = t_ms[1:] - t_ms[:-1]
    if np.all(later_subject | (same_subject & (dt >= 0))):
        order = None
    else:
        keys = pa.table({"s": subject, "t": t_ms})
        order = pc.sort_indices(keys, sort_keys=[("s", "ascending"), ("t", "ascending")]).to_numpy()
        sorted_subject = subject.take(pa.array(order))
        same_subject = pc.equal(sorted_subject[1:], sorted_subject[:-1]).to_numpy(zero_copy_only=False)
        dt = np.diff(t_ms[order])
    same = np.zeros(n, bool)
    same[1:] = same_subject & (dt == 0)
    return order, same


def fix_tracks(table: pa.Table, *extra: np.ndarray):
    """Tracks of a fixes table: one per subject, in time order, positionless and duplicate rows dropped.

    ``extra`` arrays (one value per row of ``table``) come back in the same order, after the five below.

    Returns
    -------
    subject : pyarrow.Array of str
        Each kept fix's subject, grouped.
    offsets : int64 (n_tracks + 1,)
        CSR offsets of each subject's fixes.
    t_ms : int64; lon, lat : float64
        Time (ms since the epoch) and position (degrees) of each kept fix.
    """
    subject = _plain(table.column("subject_id"))
    if not pa.types.is_string(subject.type):
        subject = subject.cast(pa.string())
    ts = pc.cast(table.column("ts"), pa.timestamp("ms", tz=table.schema.field("ts").type.tz), safe=False)
    t_ms = np.asarray(pc.cast(ts, pa.int64()).to_numpy(), dtype=np.int64)
    lon = _degrees(table, "lon", 180.0)
    lat = _degrees(table, "lat", 90.0)

    order, same = _time_order(subject, t_ms)
    drop = ~(np.isfinite(lon) & np.isfinite(lat))
    if same.any():
        in_run = same.copy()
        in_run[:-1] |= same[1:]
        candidates = np.flatnonzero(in_run) if order is None else np.sort(order[in_run])
        drop[_duplicates(table, candidates)] = True
    if order is None:
        rows = np.flatnonzero(~drop) if drop.any() else None  # None: every row, in the order given
    else:
        rows = order[~drop[order]]
    if rows is not None:
        subject = subject.take(pa.array(rows, pa.int64()))
        t_ms, lon, lat = t_ms[rows], lon[rows], lat[rows]
        extra = tuple(np.asarray(e)[rows] for e in extra)

    n = len(t_ms)
    if n > 1:
        changes = pc.not_equal(subject[1:], subject[:-1]).to_numpy(zero_copy_only=False)
        offsets = np.concatenate([[0], np.flatnonzero(changes) + 1, [n]]).astype(np.int64)
    else:
        offsets = np.array([0, n] if n else [0], np.int64)
    return (subject, offsets, t_ms, lon, lat, *extra)


def staypoints(fixes, dist_threshold_m: float, time_threshold_s: float, gap_threshold_s: float | None = None,
               include_last: bool = False) -> pa.Table:
    """Where each subject stayed: stay points by the sliding method, with true ground distances.

    Parameters
    ----------
    fixes : FixLoad or pyarrow.Table
        Fixes as :func:`geomon.io.load.load_fixes` returns them, or a table with
        at least ``subject_id``, ``ts`` (a timestamp column) and ``lon``/``lat``
        (WGS84/CGCS2000 degrees), as in :data:`geomon.schema.FIX_SCHEMA`; in
        any row order. Fixes with a null or NaN ``lon``/``lat`` have no
        position and are ignored; rows equal in every column to an earlier
        row are dropped.
    dist_threshold_m : float
        Ground distance (m) from a stay's first fix at which a fix is outside
        it (at least this far); positive.
    time_threshold_s : float
        Least duration (s) of a stay point; positive. Compared at millisecond
        resolution, as are the gaps.
    gap_threshold_s : float, optional
        A step between a subject's consecutive fixes longer than this (s) is
        a gap: the stay open before it is discarded and the fix after it
        starts anew. None (or inf) for no gap rule.
    include_last : bool
        Keep each subject's stay still open at its last fix when it lasted
        the time threshold (its ``finished_at`` is then the last fix's time).

    Returns
    -------
    pyarrow.Table
        :data:`STAYPOINT_SCHEMA`, one row per stay point, sorted by
        ``subject_id`` then ``started_at``: ``started_at`` is the time of the
        stay's first fix, ``finished_at`` that of the first fix outside it,
        ``lon``/``lat`` (degrees) the mean position of the ``n_fixes`` fixes in
        it (the first one up to the one before the fix outside).

    Raises
    ------
    InputError
        Not a table, missing columns, null ``subject_id`` or ``ts``, ``ts``
        not a timestamp, ``lon``/``lat`` not numeric or out of range.
    ValueError, TypeError
        A threshold that is not a positive number.

    Notes
    -----
    The rules are those of trackintel's ``generate_staypoints(method="sliding")``
    (after Li, Zheng, Xie, Chen, Liu, Ma, ACM SIGSPATIAL GIS 2008, sec. 3.1);
    docs/staypoints.md lists them and where geomon's reading differs (the
    centroid is the mean of all member fixes; thresholds are in seconds).
    Ground distances are within 2e-7 of the WGS84 geodesic up to 100 km, see
    :mod:`geomon.kernels.staypoints`.

    Examples
    --------
    Subject ``a`` spends 12 minutes within a few metres, then moves 850 m east:

    >>> import pyarrow as pa, geomon
    >>> minutes = [0, 2, 4, 6, 8, 10, 12, 14]
    >>> fixes = pa.table({
    ...     "subject_id": ["a"] * 8,
    ...     "ts": pa.array([1_700_000_000_000 + 60_000 * m for m in minutes], pa.timestamp("ms", tz="UTC")),
    ...     "lon": [116.4, 116.40002, 116.4, 116.40001, 116.4, 116.40003, 116.41, 116.42],
    ...     "lat": [39.9, 39.9, 39.90001, 39.9, 39.9, 39.9, 39.9, 39.9],
    ... })
    >>> stays = geomon.staypoints(fixes, dist_threshold_m=100, time_threshold_s=600)
    >>> row = stays.to_pylist()[0]
    >>> row["n_fixes"], str(row["started_at"]), str(row["finished_at"])
    (6, '2023-11-14 22:13:20+00:00', '2023-11-14 22:25:20+00:00')
    >>> round(row["lon"], 6), round(row["lat"], 6)
    (116.40001, 39.900002)
    """
    table = track_table(fixes)
    dist_threshold_m = positive_number("dist_threshold_m", dist_threshold_m)
    time_threshold_s = positive_number("time_threshold_s", time_threshold_s)
    gap_threshold_s = positive_number("gap_threshold_s", gap_threshold_s, none_ok=True)
    if not isinstance(include_last, (bool, np.bool_)):
        raise TypeError(f"include_last must be a bool, got {type(include_last).__name__}")
    # Times are whole milliseconds: "at least T" is at least ceil(T), "longer than G" is longer than floor(G).
    time_ms = min(NO_GAP_MS, max(1, math.ceil(round(time_threshold_s * 1000.0, 6))))
    gap_ms = NO_GAP_MS if gap_threshold_s is None else min(NO_GAP_MS, math.floor(round(gap_threshold_s * 1000.0, 6)))

    subject, offsets, t_ms, lon, lat = fix_tracks(table)
    stay_offsets, first, n_fixes, finished_ms, c_lon, c_lat = find_staypoints(
        offsets, t_ms, lon, lat, dist_threshold_m, time_ms, gap_ms, include_last)

    track = np.repeat(np.arange(offsets.size - 1), np.diff(stay_offsets))
    return pa.table(
        [
            subject.take(pa.array(offsets[:-1][track], pa.int64())),
            pa.array(t_ms[first], pa.int64()).cast(TS_TYPE),
            pa.array(finished_ms, pa.int64()).cast(TS_TYPE),
            pa.array(c_lon, pa.float64()),
            pa.array(c_lat, pa.float64()),
            pa.array(n_fixes, pa.int64()),
        ],
        schema=STAYPOINT_SCHEMA,
    )
