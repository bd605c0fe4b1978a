"""Add labelled check-ins to simulated fixes: daily app check-ins, some missed, some from outside the area.

:func:`add_checkins` inserts ``checkin`` fixes (the app's face-recognition
check-ins) into a fixes table and returns the ground truth of the check-in
alerts the rules imply, in :data:`geomon.sim.truth.TRUTH_SCHEMA` (``zone_id``
empty):

- each subject checks in once a local day, at a random time between
  ``window`` hours local, at its position then (the nearest fix's), except on
  days drawn as missed (probability ``p_miss``): a ``missed_checkin`` is true at
  that day's ``checkin_due`` deadline;
- with probability ``p_outside`` a check-in is made from a point ``outside_m``
  beyond the permitted area's edge instead: a ``checkin_outside`` is true at
  its time.

Deadlines follow :class:`geomon.engine.checkins.CheckinDetector`: checking starts at
a subject's first fix, each deadline covers (previous deadline, deadline], and
only deadlines inside the span are labelled.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from geomon.rules.load import Rules, default_rules
from geomon.schema import TS_TYPE
from geomon.sim.truth import event_truth

__all__ = ["add_checkins"]

_DAY_MS = 86_400_000


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def add_checkins(fixes: pa.Table, subjects: pa.Table, permitted_m: shapely.Geometry, frame, *, seed: int = 0,
                 p_miss: float = 0.2, p_outside: float = 0.1, outside_m: float = 300.0,
                 window: tuple[float, float] = (8.0, 19.0), utc_offset_h: float = 8.0,
                 rules: Rules | None = None) -> tuple[pa.Table, pa.Table]:
    """Return ``(fixes with check-ins, truth)``; fixes stay sorted by subject, then time."""
    rules = rules or default_rules()
    rng = np.random.default_rng(seed)
    level = dict(zip(subjects.column("subject_id").to_pylist(), subjects.column("level").to_pylist()))
    sid = np.asarray(fixes.column("subject_id").to_pylist(), dtype=object)
    t = fixes.column("ts").cast(pa.int64()).to_numpy()
    lon, lat = fixes.column("lon").to_numpy(), fixes.column("lat").to_numpy()
    offset = int(utc_offset_h * 3_600_000)
    end_ms = int(t.max())
    new, truth = [], []
    centre = shapely.centroid(permitted_m)
    for s in dict.fromkeys(sid):
        mine = np.flatnonzero(sid == s)
        first = int(t[mine[0]])
        due = _minute(rules.profile(level[s])["checkin_due"]) * 60_000
        # Local days from the first fix's to the span's end.
        day = (first + offset) // _DAY_MS * _DAY_MS - offset
        while day <= end_ms:
            deadline = day + due
            lo = max(first, deadline - _DAY_MS)
            if deadline > end_ms:
                break
            if deadline >= first:
                if rng.random() < p_miss:
                    truth.append((s, "missed_checkin", deadline, deadline))
                else:
                    at = int(day + rng.uniform(*window) * 3_600_000)
                    at = min(max(at, lo + 1), deadline)
                    k = mine[np.argmin(np.abs(t[mine] - at))]
                    x, y = frame.project(np.array([lon[k]]), np.array([lat[k]]))
                    if rng.random() < p_outside:
                        # Out along the ray from the area's centre through the subject,
                        # outside_m beyond the edge (stepping out 50 m at a time).
                        u = np.array([x[0] - centre.x, y[0] - centre.y])
                        u /= np.hypot(*u) or 1.0
                        r = 0.0
                        while shapely.contains_xy(permitted_m, centre.x + r * u[0], centre.y + r * u[1]):
                            r += 50.0
                        x = np.array([centre.x + (r + outside_m) * u[0]])
                        y = np.array([centre.y + (r + outside_m) * u[1]])
                        truth.append((s, "checkin_outside", at, at))
                    clon, clat = frame.unproject(x, y)
                    new.append((s, at, float(clon[0]), float(clat[0])))
            day += _DAY_MS
    added = pa.table({
        "subject_id": pa.array([r[0] for r in new], pa.string()),
        "ts": pa.array(np.array([r[1] for r in new], np.int64), pa.int64()).cast(TS_TYPE),
        "lon": pa.array([r[2] for r in new], pa.float64()),
        "lat": pa.array([r[3] for r in new], pa.float64()),
        "source": pa.array(["checkin"] * len(new), pa.string()),
        "accuracy_m": pa.array(np.full(len(new), 50.0, np.float32)),
    }).cast(fixes.schema)
    out = pa.concat_tables([fixes, added])
    order = np.lexsort((out.column("ts").cast(pa.int64()).to_numpy(),
                        np.asarray(out.column("subject_id").to_pylist(), dtype=object).astype(str)))
    out = out.take(pa.array(order))
    table = event_truth(truth)
    return out, table
