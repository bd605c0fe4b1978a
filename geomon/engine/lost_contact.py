"""Contact alerts: lost contact (失联), location degraded, stuck device.

:class:`ContactDetector` keeps, per subject, what :func:`geomon.kernels.gaps.gap_step`
remembers and turns its event records into alert rows in
:data:`geomon.store.alert_store.ALERT_SCHEMA`. :class:`geomon.engine.monitor.Monitor` drives it
with every admitted fix (vague ones included: a cell fix is contact) and an
event-time watermark, so silence is noticed when the silent subject sends
nothing, and a replay gives what live operation gives.

Thresholds come from the rules (``lost_contact_s``, ``degraded_s``,
``stuck_count``, ``stuck_s``; docs/rules.md) per fix, so profiles and special
periods apply; the values of the fix that decides apply (for silence, those of
the last fix before it).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from geomon.engine.rows import SubjectDetector, alert_table, subject_runs
from geomon.kernels import gaps as _gaps
from geomon.rules.periods import ThresholdSets
from geomon.schema import ALERT_SCHEMA

__all__ = ["CONTACT_KINDS", "ContactDetector"]

#: A threshold that never fires (100 years, in seconds).
_NEVER_S = 100 * 365 * 86400

#: Alert kind of each event of :mod:`geomon.kernels.gaps`, and its severity.
CONTACT_KINDS = {_gaps.EVENT_LOST: ("lost_contact", "high"),
                 _gaps.EVENT_DEGRADED: ("location_degraded", "medium"),
                 _gaps.EVENT_STUCK: ("device_stuck", "high")}


class ContactDetector(SubjectDetector):
    """Lost contact, degraded location and stuck device for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`).
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.
    """

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        self._lost_ms = sets.per_set("lost_contact_s", 1800, 1000, dtype=np.int64)
        # Off unless the rules set it (a day of cell fixes indoors is normal).
        self._degraded_ms = sets.per_set("degraded_s", _NEVER_S, 1000, dtype=np.int64)
        self._stuck_count = sets.per_set("stuck_count", 20, dtype=np.int64)
        self._stuck_ms = sets.per_set("stuck_s", 600, 1000, dtype=np.int64)
        self._state = np.zeros((len(self.subject_ids), _gaps.N_GAP_STATE))
        # Threshold set and position of each subject's last fix, for the details
        # and the place of silence.
        self._last_set = np.zeros(len(self.subject_ids), np.int64)
        self._last_lon = np.full(len(self.subject_ids), np.nan)
        self._last_lat = np.full(len(self.subject_ids), np.nan)

    def step(self, code: np.ndarray, t_ms: np.ndarray, satellite: np.ndarray, lon: np.ndarray, lat: np.ndarray,
             tset: np.ndarray, now_ms: int | None = None) -> pa.Table:
        """Advance over one batch of admitted fixes, sorted by (subject code, time); return alert events.

        ``lon``/``lat`` are the fixes as reported (a stuck device repeats them
        exactly). An event is placed at the fix that confirmed or ended it;
        silence at the last fix before it. ``now_ms`` raises the watermark
        beyond the batch's newest fix (live operation: the clock, less the
        allowed lateness); by default the watermark is the newest fix seen so far.
        """
        self._advance(t_ms, now_ms)
        first, offsets, subjects = subject_runs(code)
        lon = np.ascontiguousarray(lon, dtype=np.float64)
        lat = np.ascontiguousarray(lat, dtype=np.float64)
        rec = _gaps.gap_step(offsets, subjects, t_ms.astype(np.int64), satellite.astype(bool), lon, lat,
                             self._lost_ms[tset], self._degraded_ms[tset], self._stuck_count[tset],
                             self._stuck_ms[tset], self.watermark_ms, self._state)
        fix = rec[:, _gaps.REC_FIX]
        at_fix = fix >= 0
        subj = rec[:, _gaps.REC_SUBJECT]
        place = np.column_stack([self._last_lon[subj], self._last_lat[subj], self._last_set[subj]])
        place[at_fix] = np.column_stack([lon[fix[at_fix]], lat[fix[at_fix]], tset[fix[at_fix]]])
        if code.size:
            last = np.r_[first[1:], True]
            self._last_set[code[last]] = tset[last]
            self._last_lon[code[last]] = lon[last]
            self._last_lat[code[last]] = lat[last]
            # Silence noticed by this batch's watermark: the last fix is now this batch's.
            silent = ~at_fix
            place[silent] = np.column_stack([self._last_lon[subj[silent]], self._last_lat[subj[silent]],
                                             self._last_set[subj[silent]]])
        return self._alerts(rec, place)

    def _alerts(self, rec: np.ndarray, place: np.ndarray) -> pa.Table:
        n = rec.shape[0]
        if n == 0:
            return ALERT_SCHEMA.empty_table()
        subj = rec[:, _gaps.REC_SUBJECT]
        kinds = [CONTACT_KINDS[int(k)][0] for k in rec[:, _gaps.REC_KIND]]
        severity = [CONTACT_KINDS[int(k)][1] for k in rec[:, _gaps.REC_KIND]]
        subject_id = self.subject_ids[subj]
        onset = rec[:, _gaps.REC_ONSET]
        end = rec[:, _gaps.REC_END]
        detail = rec[:, _gaps.REC_DETAIL]
        sets = place[:, 2].astype(np.int64)
        details = []
        for k, e, d, s, lv in zip(rec[:, _gaps.REC_KIND], end, detail, sets, self.subject_level[subj]):
            extra = {"fixes": int(d)} if k == _gaps.EVENT_STUCK else {"gap_s": None if d < 0 else d / 1000.0}
            details.append(json.dumps({"event": "ended" if e >= 0 else "confirmed", "level": lv,
                                       "profile": str(self._sets.profile[s]), "period": self._sets.period[s],
                                       **extra}, sort_keys=True))
        lon, lat = place[:, 0], place[:, 1]
        return alert_table(kinds, severity, subject_id, [None] * n, self.subject_office[subj], onset,
                           rec[:, _gaps.REC_CONFIRM], end, lon, lat, details, self.run_id)
