"""Labelled meetings between simulated subjects: meetings, repeated meetings, brief ones and near misses.

:func:`add_meetings` edits a :func:`geomon.sim_scenarios.scenario` by a plan of
``(kind, subject_a, subject_b, start_ms, duration_ms)``: during the window
subject b is taken to where subject a is (a jump there and back, as a device
off on the way would show it) and

- ``meet``: stays 2 m from a, moving with a;
- ``near_miss``: stays ``near_m`` from a (default three times the meeting
  distance), never within it;

a ``meet`` shorter than the minimum duration is a *brief* meeting: within,
but no encounter. Fixes in the window get noise of their own ``accuracy_m``.

:func:`encounter_truth` lists every encounter of the true positions: the
encounter search (:mod:`geomon.kernels.encounters`, itself checked against an
all-pairs brute force in ``tests/kernels/test_encounters.py``) on the
noise-free tracks, so the truth has the planned meetings and any the routines
made by themselves. Scoring the search on the noisy fixes against it measures
what noise and gaps cost.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geomon.proximity import encounters

__all__ = ["add_meetings", "encounter_truth"]

_OFFSET_M = 2.0


def add_meetings(sc, plan, *, distance_m: float = 30.0, near_m: float | None = None, seed: int = 0):
    """Apply ``plan`` to scenario ``sc``; return ``(fixes, true_x_m, true_y_m)``."""
    near_m = 3.0 * distance_m if near_m is None else float(near_m)
    rng = np.random.default_rng(seed)
    sid = np.asarray(sc.fixes.column("subject_id").to_pylist(), dtype=object)
    t = sc.fixes.column("ts").cast(pa.int64()).to_numpy()
    true_x, true_y = sc.true_x_m.copy(), sc.true_y_m.copy()
    acc = sc.fixes.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)
    moved = np.zeros(t.size, bool)
    rows_of = {s: np.flatnonzero(sid == s) for s in dict.fromkeys(sid)}
    for kind, a, b, start, duration in plan:
        if kind not in ("meet", "near_miss"):
            raise ValueError(f"unknown meeting kind {kind!r}; expected meet or near_miss")
        ra, rb = rows_of[a], rows_of[b]
        inside = rb[(t[rb] >= start) & (t[rb] < start + duration)]
        # Where a is at b's fix times (a's true track, interpolated).
        ax = np.interp(t[inside], t[ra], sc.true_x_m[ra])
        ay = np.interp(t[inside], t[ra], sc.true_y_m[ra])
        away = _OFFSET_M if kind == "meet" else near_m
        angle = rng.uniform(0.0, 2.0 * np.pi)
        true_x[inside] = ax + away * np.cos(angle)
        true_y[inside] = ay + away * np.sin(angle)
        moved[inside] = True
    x, y = true_x.copy(), true_y.copy()
    m = np.flatnonzero(moved)
    x[m] += rng.normal(size=m.size) * acc[m]
    y[m] += rng.normal(size=m.size) * acc[m]
    lon, lat = sc.frame.unproject(x, y)
    fixes = sc.fixes
    for name, new in (("lon", np.where(moved, lon, sc.fixes.column("lon").to_numpy())),
                      ("lat", np.where(moved, lat, sc.fixes.column("lat").to_numpy()))):
        i = fixes.schema.get_field_index(name)
        fixes = fixes.set_column(i, fixes.schema.field(i), pa.array(new, pa.float64()))
    return fixes, true_x, true_y


def encounter_truth(sc, fixes: pa.Table, true_x_m: np.ndarray, true_y_m: np.ndarray, distance_m: float,
                    min_duration_s: float, max_gap_s: float = 120.0) -> pa.Table:
    """Every encounter of the noise-free tracks (:func:`geomon.encounters` on the true positions)."""
    lon, lat = sc.frame.unproject(true_x_m, true_y_m)
    exact = fixes.set_column(fixes.schema.get_field_index("lon"), "lon", pa.array(lon, pa.float64()))
    exact = exact.set_column(exact.schema.get_field_index("lat"), "lat", pa.array(lat, pa.float64()))
    return encounters(exact, distance_m, min_duration_s, max_gap_s)
