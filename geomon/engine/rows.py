"""What the per-subject behaviour detectors share: batch layout, watermark, subjects, alert rows.

The detectors (contact, check-ins, dwell, night) decide events in their
kernels; :class:`SubjectDetector` holds the subjects and the event-time
watermark they all keep, :func:`subject_runs` cuts a batch sorted by subject
into per-subject runs, and :func:`alert_table` turns their columns into rows of
:data:`geomon.schema.ALERT_SCHEMA` with deterministic ids
(:func:`geomon.engine.alert_ids.alert_id`), so a replay gives the same rows.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa

from geomon.engine.alert_ids import alert_id
from geomon.engine.contract import Detector
from geomon.schema import ALERT_SCHEMA, TS_TYPE

__all__ = ["SubjectDetector", "alert_table", "csr_offsets", "details_json", "subject_runs"]


def subject_runs(code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-subject runs of a batch sorted by subject code: ``(first, offsets, subjects)``.

    ``first`` flags each run's first fix, ``offsets`` (int64, runs + 1) are its
    CSR offsets and ``subjects`` the code of each run.

    Examples
    --------
    >>> first, offsets, subjects = subject_runs(np.array([2, 2, 5]))
    >>> first.tolist(), offsets.tolist(), subjects.tolist()
    ([True, False, True], [0, 2, 3], [2, 5])
    """
    code = np.asarray(code, dtype=np.int64)
    first = np.r_[True, code[1:] != code[:-1]] if code.size else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    return first, np.r_[starts, code.size].astype(np.int64), code[starts]


def csr_offsets(owner: np.ndarray, n: int) -> np.ndarray:
    """Offsets (n + 1) of items grouped by ``owner`` (sorted, values in [0, n)).

    Examples
    --------
    >>> csr_offsets(np.array([0, 0, 2]), 3).tolist()
    [0, 2, 2, 3]
    """
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=offsets[1:])
    return offsets


class SubjectDetector(Detector):
    """Base of the per-subject detectors: the subjects, their threshold sets, the watermark and the run id.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`).
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.

    Subclasses keep their state in ``self.state`` (their declared ``State``), whose ``watermark_ms`` field
    is the event time up to which the stream is complete.
    """

    def __init__(self, sets, subject_ids, subject_level, subject_office):
        self._sets = sets
        self.subject_ids = np.asarray(subject_ids, dtype=object)
        self.subject_level = np.asarray(subject_level, dtype=object)
        self.subject_office = np.asarray(subject_office, dtype=object)
        #: Written into every alert (the Monitor sets it to its run id).
        self.run_id = ""

    @property
    def watermark_ms(self) -> int:
        """Event time up to which the stream is complete (ms); never goes back."""
        return int(self.state.watermark_ms)

    def _advance(self, t_ms: np.ndarray, now_ms: int | None) -> None:
        """Raise the watermark to the batch's newest fix, or to ``now_ms`` (live) if later."""
        newest = int(t_ms.max()) if t_ms.size else -1
        self.state.watermark_ms = max(self.watermark_ms, newest, -1 if now_ms is None else int(now_ms))


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
