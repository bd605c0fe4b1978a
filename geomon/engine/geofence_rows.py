"""Alert rows of the geofence records: kinds, ids, severity, place, routing and details.

Part of :mod:`geomon.engine.geofence`: :func:`geofence_alert_table` turns the records
of :func:`geomon.kernels.geofence.geofence_step` into rows of
:data:`geomon.schema.ALERT_SCHEMA`, routed to the supervising office and tagged
with the office whose jurisdiction the position lies in.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa

from geomon.engine.alert_ids import alert_id
from geomon.kernels import geofence as _gf
from geomon.schema import ALERT_SCHEMA, TS_TYPE

__all__ = ["ALERT_KIND", "geofence_alert_table", "location_office"]

ALERT_KIND = {_gf.ZONE_PERMITTED: "permitted_exit", _gf.ZONE_FORBIDDEN: "forbidden_entry"}
_EVENT_NAME = {_gf.EVENT_CONFIRMED: "confirmed", _gf.EVENT_ENDED: "ended", _gf.EVENT_CROSSING: "crossing"}


def geofence_alert_table(self, rec_i: np.ndarray, rec_f: np.ndarray) -> pa.Table:
    """Alert events of the geofence records ``rec_i``/``rec_f`` of :func:`geomon.kernels.geofence.geofence_step`.

    ``self`` is the :class:`geomon.engine.geofence.GeofenceDetector` (its subjects, zones, thresholds, run id).
    """
    n = rec_i.shape[0]
    if n == 0:
        return ALERT_SCHEMA.empty_table()
    z = self.zones
    subj = rec_i[:, _gf.REC_SUBJECT]
    zone = rec_i[:, _gf.REC_ZONE]
    event = rec_i[:, _gf.REC_EVENT]
    onset = rec_i[:, _gf.REC_ONSET_T]
    zone_kind = np.where(z.kind[zone] == "permitted", _gf.ZONE_PERMITTED, _gf.ZONE_FORBIDDEN)
    kinds = np.array([ALERT_KIND[k] for k in zone_kind], dtype=object)
    subject_id = self.subject_ids[subj]
    zone_id = z.zone_id[zone]
    ids = [alert_id(k, s, zz, o) for k, s, zz, o in zip(kinds, subject_id, zone_id, onset)]
    level = self.subject_level[subj]
    category = z.category[zone]
    high = (zone_kind == _gf.ZONE_PERMITTED) | (level == "strict") | (category == "victim_home")
    severity = np.where(high, "high", "medium")
    x, y = rec_f[:, _gf.REC_X], rec_f[:, _gf.REC_Y]
    lon, lat = z.frame.unproject(x, y)
    end = rec_i[:, _gf.REC_END_T]
    th = self._th
    details = [json.dumps({
        "event": _EVENT_NAME[int(e)],
        "crossing": bool(e == _gf.EVENT_CROSSING),
        "n_fixes": int(c),
        "depth_m": round(float(d), 2),
        "level": lv,
        "profile": str(th.profile[ts]),
        "period": th.period[ts],
        "zone_category": cat,
        "rule": "fixes" if th.by_fixes[ts] else "evidence",
        "evidence": None if np.isnan(ev) else round(float(ev), 2),
    }, sort_keys=True) for e, c, d, lv, ts, cat, ev in zip(event, rec_i[:, _gf.REC_COUNT], rec_f[:, _gf.REC_DEPTH],
                                                          level, rec_i[:, _gf.REC_SET], category, rec_f[:, _gf.REC_S])]
    emitted = np.full(n, int(time.time() * 1000), np.int64)
    return pa.table({
        "alert_id": pa.array(ids, pa.string()),
        "kind": pa.array(kinds, pa.string()),
        "severity": pa.array(severity, pa.string()),
        "subject_id": pa.array(subject_id, pa.string()),
        "zone_id": pa.array(zone_id, pa.string()),
        "office_id": pa.array(self.subject_office[subj], pa.string()),
        "location_office_id": pa.nulls(n, pa.string()),   # filled for every kind by Monitor._route
        "onset_ts": pa.array(onset, pa.int64()).cast(TS_TYPE),
        "confirmed_ts": pa.array(rec_i[:, _gf.REC_CONFIRM_T], pa.int64()).cast(TS_TYPE),
        "ended_ts": pa.array(np.where(end >= 0, end, 0), pa.int64(), mask=end < 0).cast(TS_TYPE),
        "emitted_at": pa.array(emitted, pa.int64()).cast(TS_TYPE),
        "lon": pa.array(lon, pa.float64()),
        "lat": pa.array(lat, pa.float64()),
        "accuracy_m": pa.array(rec_f[:, _gf.REC_SIGMA], pa.float32(), from_pandas=True),
        "probability": pa.array(rec_f[:, _gf.REC_P], pa.float64(), from_pandas=True),
        "details": pa.array(details, pa.string()),
        "run_id": pa.array([self.run_id] * n, pa.string()),
    }).cast(ALERT_SCHEMA)

def location_office(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Office whose jurisdiction each position (Monitor frame, m) lies in; None outside every one."""
    role = self.zones.jurisdiction
    out = np.full(x.size, None, dtype=object)
    if role.codes.size == 0:
        return out
    pi, zi = role.index.query_xy(x, y, predicate="intersects")
    first = np.r_[True, pi[1:] != pi[:-1]] if pi.size else np.zeros(0, bool)
    out[pi[first]] = self.zones.office_id[role.codes[zi[first]]]
    return out
