"""Victim protection: a moving exclusion zone around a protected person's device.

A protection order names a supervised subject, the protected person (a
tracked device) and two radii. :func:`victim_alerts` raises

- ``victim_warning`` while the subject *may* be within ``warning_m`` of the
  protected person (plain distance between the fused positions: for a
  victim's safety a warning errs on the side of telling), and
- ``victim_breach`` while the subject is *sure* to be within ``alert_m``
  (by the margin of both positions' trusted sigmas at ``sure_p``, as
  :func:`geomon.encounters` counts it),

each once it has lasted ``confirm_s``: onset at the start of the stretch,
confirmed ``confirm_s`` later, ended when it ends, placed at the closest
approach, with the distance in ``details``. Both are computed on the
tracks between fixes, so two people reporting out of step are still compared.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from geomon.engine.rows import alert_table
from geomon.schema import ALERT_SCHEMA
from geomon.tracks.encounters import encounters

__all__ = ["victim_alerts"]


def victim_alerts(fixes: pa.Table, protections, *, office_of=None, sure_p: float = 0.95, confirm_s: float = 30.0,
                  run_id: str = "") -> pa.Table:
    """``victim_warning`` and ``victim_breach`` alerts of protection orders over a batch of tracks.

    Parameters
    ----------
    fixes : pyarrow.Table
        Fixes of the subjects and of the protected persons; a table from
        :func:`geomon.fuse` (fused positions and their uncertainty), or raw
        fixes (then both kinds use the plain distance).
    protections : iterable of dict
        ``subject_id``, ``victim_id``, ``warning_m`` and ``alert_m``
        (``alert_m <= warning_m``).
    office_of : dict, optional
        Subject id -> supervising office, for routing.
    sure_p : float
        Certainty a breach needs (fused input).
    confirm_s : float
        How long a stretch must last before it is raised (s).
    run_id : str
        Written into each alert.

    Returns
    -------
    pyarrow.Table
        Alerts in :data:`geomon.schema.ALERT_SCHEMA`.
    """
    orders = list(protections)
    for i, o in enumerate(orders):   # named by position: error messages carry no subject id in clear
        if not 0 < float(o["alert_m"]) <= float(o["warning_m"]):
            raise ValueError(f"protection order {i}: need 0 < alert_m <= warning_m, got "
                             f"alert_m={o['alert_m']!r}, warning_m={o['warning_m']!r}")
    fused = "var_x_m2" in fixes.column_names
    office_of = office_of or {}
    rows = []
    for kind, radius_key, sure in (("victim_warning", "warning_m", None), ("victim_breach", "alert_m", sure_p)):
        for radius in sorted({float(o[radius_key]) for o in orders}):
            wanted = {(o["subject_id"], o["victim_id"]) for o in orders if float(o[radius_key]) == radius}
            found = encounters(fixes, radius, confirm_s, sure_p=sure if fused else None).to_pylist()
            for e in found:
                for me, other in ((e["subject_a"], e["subject_b"]), (e["subject_b"], e["subject_a"])):
                    if (me, other) in wanted:
                        rows.append((kind, me, other, radius, e))
    if not rows:
        return ALERT_SCHEMA.empty_table()
    ms = lambda ts: int(ts.timestamp() * 1000)   # noqa: E731
    onset = np.array([ms(e["started_at"]) for *_, e in rows], np.int64)
    return alert_table(
        [r[0] for r in rows], ["medium" if r[0] == "victim_warning" else "high" for r in rows],
        [r[1] for r in rows], [None] * len(rows), [office_of.get(r[1]) for r in rows], onset,
        onset + int(round(confirm_s * 1000)), np.array([ms(e["ended_at"]) for *_, e in rows], np.int64),
        np.array([e["lon"] for *_, e in rows]), np.array([e["lat"] for *_, e in rows]),
        [json.dumps({"event": "ended", "victim_id": other, "radius_m": radius,
                     "min_distance_m": round(e["min_distance_m"], 1)}, sort_keys=True)
         for _, _, other, radius, e in rows], run_id)
