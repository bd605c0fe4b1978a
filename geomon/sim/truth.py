"""Exact ground truth of a simulation: when each true path crossed into and out of a violation.

Part of :mod:`geomon.sim.simulate`. Every straight moving piece of every true path
is intersected with the boundaries of the county and of the forbidden zones
that apply to its subject; the crossing times are interpolated along the piece
and the state between crossings is checked at the midpoint. The times are exact
up to rounding to the millisecond.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from geomon.schema import TS_TYPE
from geomon.sim.geography import forbidden_id

__all__ = ["TRUTH_SCHEMA", "event_truth", "truth_table"]

#: Ground truth: one row per violation, times exact to the millisecond.
TRUTH_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=False),
        pa.field("true_start", TS_TYPE, nullable=False),
        pa.field("true_end", TS_TYPE, nullable=False),
        pa.field("crossing_only", pa.bool_(), nullable=False),
    ]
)


def truth_table(geo, subjects, paths, fix_ts, start_ms, end_s):
    """Violation intervals of the true paths: exits from the county and entries into applicable forbidden zones."""
    seg_sub, a, b, ta, tb = [], [], [], [], []
    for i, (t, x, y, _) in enumerate(paths):
        moving = (np.diff(x) != 0) | (np.diff(y) != 0)
        j = np.flatnonzero(moving)
        seg_sub.append(np.full(j.size, i))
        a.append(np.column_stack([x[j], y[j]]))
        b.append(np.column_stack([x[j + 1], y[j + 1]]))
        ta.append(t[j])
        tb.append(t[j + 1])
    seg_sub, a, b, ta, tb = (np.concatenate(v) for v in (seg_sub, a, b, ta, tb))
    bounds = np.concatenate([[geo.county.exterior], shapely.get_exterior_ring(geo.zone_poly)])
    polys = np.concatenate([[geo.county], geo.zone_poly])
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    si, zi = shapely.STRtree(bounds).query(lines, predicate="intersects")
    owner = np.concatenate([[-1], geo.zone_owner])
    keep = (owner[zi] < 0) | (owner[zi] == seg_sub[si])
    si, zi = si[keep], zi[keep]
    pts, which = shapely.get_coordinates(shapely.intersection(lines[si], bounds[zi]), return_index=True)
    s = si[which]
    d = b[s] - a[s]
    frac = ((pts - a[s]) * d).sum(1) / (d * d).sum(1)
    t_cross = ta[s] + frac * (tb[s] - ta[s])
    rows = []
    for sub, z in sorted(set(zip(seg_sub[s].tolist(), zi[which].tolist()))):
        t, x, y, _ = paths[sub]
        events = np.unique(t_cross[(seg_sub[s] == sub) & (zi[which] == z)])
        edges = np.concatenate([[t[0]], events, [t[-1]]])
        mid = 0.5 * (edges[:-1] + edges[1:])
        inside = shapely.contains_xy(polys[z], np.interp(mid, t, x), np.interp(mid, t, y))
        bad = ~inside if z == 0 else inside
        if bad[0] or bad[-1]:
            raise RuntimeError(f"violation of {subjects[sub].sid} open at the ends of the simulated path")
        starts = np.flatnonzero(bad & ~np.concatenate([[False], bad[:-1]]))
        ends = np.flatnonzero(bad & ~np.concatenate([bad[1:], [False]]))
        for i0, i1 in zip(starts, ends):
            t0, t1 = edges[i0], edges[i1 + 1]
            if t0 < 0.0 or t1 > end_s:
                raise RuntimeError(f"violation of {subjects[sub].sid} outside the simulated span")
            ms0, ms1 = start_ms + round(t0 * 1_000.0), start_ms + round(t1 * 1_000.0)
            ts = fix_ts[sub]
            n_inside = np.searchsorted(ts, ms1, side="right") - np.searchsorted(ts, ms0, side="left")
            zone_id = "county" if z == 0 else forbidden_id(z - 1)
            kind = "permitted_exit" if z == 0 else "forbidden_entry"
            rows.append((subjects[sub].sid, kind, zone_id, ms0, ms1, bool(n_inside == 0)))
    rows.sort(key=lambda r: (r[0], r[3], r[2]))
    cols = list(zip(*rows)) if rows else [[]] * 6
    return pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.int64()).cast(TS_TYPE),
            pa.array(cols[4], pa.int64()).cast(TS_TYPE),
            pa.array(cols[5], pa.bool_()),
        ],
        schema=TRUTH_SCHEMA,
    )


def event_truth(rows, zone_ids=None) -> pa.Table:
    """Truth of events: ``rows`` of ``(subject_id, kind, start_ms, end_ms)``, and each row's zone ("" when None)."""
    rows = list(rows)
    cols = list(zip(*rows)) if rows else [[], [], [], []]
    zones = [""] * len(rows) if zone_ids is None else [z or "" for z in zone_ids]
    return pa.table({
        "subject_id": pa.array(cols[0], pa.string()),
        "kind": pa.array(cols[1], pa.string()),
        "zone_id": pa.array(zones, pa.string()),
        "true_start": pa.array(np.asarray(cols[2], np.int64), pa.int64()).cast(TS_TYPE),
        "true_end": pa.array(np.asarray(cols[3], np.int64), pa.int64()).cast(TS_TYPE),
        "crossing_only": pa.array([False] * len(rows), pa.bool_()),
    }, schema=TRUTH_SCHEMA)
