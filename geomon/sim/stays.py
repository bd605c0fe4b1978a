"""Add labelled stays at places of concern to simulated fixes.

:func:`add_dwells` moves a subject's fixes in a window to a place of concern
(a forbidden zone's centroid, scattered by each fix's own noise) and returns the
ground truth of the ``dwell_concern`` alerts the rules imply, in
:data:`geomon.sim.truth.TRUTH_SCHEMA`: a stay from the window's first fix to
the first fix after it, true if it lasts the subject's ``dwell_s``. The
subject is taken there and back in one jump, as a device that was off on the
way would show it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geomon.rules.load import Rules, default_rules
from geomon.sim.truth import event_truth

__all__ = ["add_dwells"]


def add_dwells(fixes: pa.Table, subjects: pa.Table, places_m: dict, frame, plan, *, seed: int = 0,
               rules: Rules | None = None) -> tuple[pa.Table, pa.Table]:
    """Apply ``plan``, ``(subject_id, zone_id, start_ms, duration_ms)`` tuples, to ``fixes``; return ``(fixes, truth)``.

    ``places_m`` maps zone ids to shapely geometries in ``frame``'s metres.
    """
    rules = rules or default_rules()
    rng = np.random.default_rng(seed)
    level = dict(zip(subjects.column("subject_id").to_pylist(), subjects.column("level").to_pylist()))
    sid = np.asarray(fixes.column("subject_id").to_pylist(), dtype=object)
    t = fixes.column("ts").cast(pa.int64()).to_numpy()
    lon = fixes.column("lon").to_numpy().copy()
    lat = fixes.column("lat").to_numpy().copy()
    sigma = fixes.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)
    truth = []
    for subject, zone, start, duration in plan:
        mine = sid == subject
        inside = np.flatnonzero(mine & (t >= start) & (t < start + duration))
        after = np.flatnonzero(mine & (t >= start + duration))
        if not inside.size or not after.size:
            continue
        c = places_m[zone].centroid
        x = c.x + rng.normal(size=inside.size) * sigma[inside]
        y = c.y + rng.normal(size=inside.size) * sigma[inside]
        lon[inside], lat[inside] = frame.unproject(x, y)
        if t[after[0]] - t[inside[0]] >= rules.profile(level[subject])["dwell_s"] * 1000:
            truth.append((subject, "dwell_concern", zone, int(t[inside[0]]), int(t[after[0]])))
    out = fixes.set_column(fixes.schema.get_field_index("lon"), "lon", pa.array(lon))
    out = out.set_column(out.schema.get_field_index("lat"), "lat", pa.array(lat))
    table = event_truth([(r[0], r[1], r[3], r[4]) for r in truth], [r[2] for r in truth])
    return out, table
