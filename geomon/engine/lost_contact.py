"""Contact alerts: lost contact (失联), location degraded, stuck device.

:class:`LostContactDetector` keeps, per subject, what :func:`geomon.kernels.gaps.gap_step`
remembers and turns its event records into alert rows in
:data:`geomon.schema.ALERT_SCHEMA`. :class:`geomon.engine.monitor.Monitor` drives it
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
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, EngineContext, global_state, register, subject_state
from geomon.engine.rows import SubjectDetector, alert_table, subject_runs
from geomon.kernels import gaps as _gaps
from geomon.rules.periods import ThresholdSets
from geomon.schema import ALERT_SCHEMA
from geomon.tracks.fusion import SOURCE_CODE

__all__ = ["LOST_CONTACT_KINDS", "LostContactDetector", "LostContactState"]

#: Alert kind of each event of :mod:`geomon.kernels.gaps`, and its severity.
LOST_CONTACT_KINDS = {_gaps.EVENT_LOST: ("lost_contact", "high"),
                 _gaps.EVENT_DEGRADED: ("location_degraded", "medium"),
                 _gaps.EVENT_STUCK: ("device_stuck", "high")}


@dataclass
class LostContactState:
    """Per subject: the gap kernel's row, and the threshold set and reported position of its last fix."""

    gaps: np.ndarray = subject_state()
    last_set: np.ndarray = subject_state()
    last_lon: np.ndarray = subject_state()
    last_lat: np.ndarray = subject_state()
    #: When the subject's silence becomes lost contact (ms; +inf: nothing due), so that the watermark looks at
    #: the subjects it has passed only.
    due_ms: np.ndarray = subject_state()
    watermark_ms: int = global_state()

    @classmethod
    def new(cls, n: int) -> LostContactState:
        return cls(gaps=np.zeros((n, _gaps.N_GAP_STATE)), last_set=np.zeros(n, np.int64),
                   last_lon=np.full(n, np.nan), last_lat=np.full(n, np.nan), due_ms=np.full(n, np.inf),
                   watermark_ms=-1)


@register
class LostContactDetector(SubjectDetector):
    """Lost contact (失联), degraded location and stuck device for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`).
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.
    """

    name = "lost_contact"
    kinds = tuple(kind for kind, _ in LOST_CONTACT_KINDS.values())
    rule_keys = ("lost_contact_s", "degraded_s", "stuck_count", "stuck_s")
    reads = "admitted"
    on_by_default = True
    State = LostContactState

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        self._lost_ms = sets.per_set("lost_contact_s", scale=1000, dtype=np.int64)
        self._degraded_ms = sets.per_set("degraded_s", scale=1000, dtype=np.int64)
        self._stuck_count = sets.per_set("stuck_count", dtype=np.int64)
        self._stuck_ms = sets.per_set("stuck_s", scale=1000, dtype=np.int64)
        self.state = LostContactState.new(len(self.subject_ids))

    @classmethod
    def from_context(cls, ctx: EngineContext) -> LostContactDetector:
        return cls(*ctx.subjects)

    def detect(self, batch: Batch) -> pa.Table:
        """Every admitted fix is contact (a vague cell fix too); silence is judged against the watermark."""
        self.run_id = batch.run_id
        f = batch.admitted
        satellite = f.source == SOURCE_CODE["gnss"]
        return self.step(f.code, f.t_ms, satellite, f.lon, f.lat, f.tset, batch.watermark_ms)

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
                             self._stuck_ms[tset], self.watermark_ms, self.state.gaps, self.state.due_ms)
        fix = rec[:, _gaps.REC_FIX]
        at_fix = fix >= 0
        subj = rec[:, _gaps.REC_SUBJECT]
        place = np.column_stack([self.state.last_lon[subj], self.state.last_lat[subj], self.state.last_set[subj]])
        place[at_fix] = np.column_stack([lon[fix[at_fix]], lat[fix[at_fix]], tset[fix[at_fix]]])
        if code.size:
            last = np.r_[first[1:], True]
            self.state.last_set[code[last]] = tset[last]
            self.state.last_lon[code[last]] = lon[last]
            self.state.last_lat[code[last]] = lat[last]
            # Silence noticed by this batch's watermark: the last fix is now this batch's.
            silent = ~at_fix
            place[silent] = np.column_stack([self.state.last_lon[subj[silent]], self.state.last_lat[subj[silent]],
                                             self.state.last_set[subj[silent]]])
        return self._alerts(rec, place)

    def _alerts(self, rec: np.ndarray, place: np.ndarray) -> pa.Table:
        n = rec.shape[0]
        if n == 0:
            return ALERT_SCHEMA.empty_table()
        subj = rec[:, _gaps.REC_SUBJECT]
        kinds = [LOST_CONTACT_KINDS[int(k)][0] for k in rec[:, _gaps.REC_KIND]]
        severity = [LOST_CONTACT_KINDS[int(k)][1] for k in rec[:, _gaps.REC_KIND]]
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
