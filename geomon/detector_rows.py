"""Alert rows of the per-subject detectors (check-ins, dwell) in :data:`geomon.store.ALERT_SCHEMA`.

The detectors decide events in their kernels; this module only turns their
columns into the alert table every detector returns, with deterministic ids
(:func:`geomon.monitor.alert_id`), so a replay gives the same rows.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa

from geomon.alert_ids import alert_id
from geomon.schema import TS_TYPE
from geomon.store import ALERT_SCHEMA

__all__ = ["alert_table", "details_json"]


def details_json(event: str, level: str, profile: str, period: str | None, **extra) -> str:
    """The ``details`` text of one alert: event, level, the profile and period in force, and extras."""
    return json.dumps({"event": event, "level": level, "profile": str(profile), "period": period, **extra},
                      sort_keys=True)


def alert_table(kind, severity, subject_id, zone_id, office_id, onset_ms, confirmed_ms, ended_ms, lon, lat,
                details, run_id: str) -> pa.Table:
    """Alert events, one per element of the (equal-length) columns; ``ended_ms`` < 0 means still open.

    ``kind``, ``severity``, ``subject_id``, ``zone_id`` (None: no zone),
    ``office_id`` and ``details`` are sequences of text; times are int64 ms
    (UTC); ``lon``/``lat`` degrees (NaN when unknown).
    """
    n = len(onset_ms)
    if n == 0:
        return ALERT_SCHEMA.empty_table()
    onset = np.asarray(onset_ms, np.int64)
    end = np.asarray(ended_ms, np.int64)
    kind, subject_id, zone_id = list(kind), list(subject_id), list(zone_id)
    return pa.table({
        "alert_id": pa.array([alert_id(k, s, z, o) for k, s, z, o in zip(kind, subject_id, zone_id, onset)],
                             pa.string()),
        "kind": pa.array(kind, pa.string()),
        "severity": pa.array(list(severity), pa.string()),
        "subject_id": pa.array(subject_id, pa.string()),
        "zone_id": pa.array(zone_id, pa.string()),
        "office_id": pa.array(list(office_id), pa.string()),
        "location_office_id": pa.nulls(n, pa.string()),
        "onset_ts": pa.array(onset, pa.int64()).cast(TS_TYPE),
        "confirmed_ts": pa.array(np.asarray(confirmed_ms, np.int64), pa.int64()).cast(TS_TYPE),
        "ended_ts": pa.array(np.where(end >= 0, end, 0), pa.int64(), mask=end < 0).cast(TS_TYPE),
        "emitted_at": pa.array(np.full(n, int(time.time() * 1000), np.int64), pa.int64()).cast(TS_TYPE),
        "lon": pa.array(np.asarray(lon, np.float64), pa.float64()),
        "lat": pa.array(np.asarray(lat, np.float64), pa.float64()),
        "accuracy_m": pa.nulls(n, pa.float32()),
        "probability": pa.nulls(n, pa.float64()),
        "details": pa.array(list(details), pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
    }).cast(ALERT_SCHEMA)
