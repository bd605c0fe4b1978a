"""Check-in alerts (签到): a missed daily check-in, and a check-in from outside the permitted area.

:class:`CheckinDetector` keeps, per subject, the open check-in window of
:func:`geomon.kernels.checkins.checkin_step` and turns its event records into
alert rows in :data:`geomon.schema.ALERT_SCHEMA`. Check-ins are fixes whose
source is ``checkin`` (the app's face-recognition check-in). The caller drives
it with every admitted fix (any fix starts a subject's checking and carries its
position and threshold set) and an event-time watermark, so a deadline passes
even when the subject sends nothing, and a replay gives what live operation
gives.

The deadline is the rules' ``checkin_due`` (local time of day, "HH:MM";
docs/rules.md), per fix, so profiles and special periods apply. Semantics:
docs/alerts.md and the kernel's docstring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, EngineContext, global_state, register, subject_state
from geomon.engine.rows import SubjectDetector, alert_table, details_json, subject_runs
from geomon.kernels import checkins as _ck
from geomon.rules.periods import ThresholdSets
from geomon.tracks.fusion import SOURCE_CODE

__all__ = ["CHECKIN_KINDS", "CheckinDetector", "CheckinState", "minute_of_day"]

#: Alert kind of each event of :mod:`geomon.kernels.checkins`.
CHECKIN_KINDS = {_ck.EVENT_MISSED: "missed_checkin", _ck.EVENT_OUTSIDE: "checkin_outside"}

_OFFSET_RE = re.compile(r"^([+-])(\d\d):([0-5]\d)$")


def _offset_ms(utc_offset: str) -> int:
    m = _OFFSET_RE.match(utc_offset) if isinstance(utc_offset, str) else None
    if m is None:
        raise ValueError(f"utc_offset must be like \"+08:00\", got {utc_offset!r}")
    ms = (int(m.group(2)) * 60 + int(m.group(3))) * 60_000
    return -ms if m.group(1) == "-" else ms


def minute_of_day(hhmm: str) -> int:
    """Minutes after midnight of a local time of day "HH:MM"."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass
class CheckinState:
    """Per subject: the check-in kernel's row (the open window)."""

    windows: np.ndarray = subject_state()
    watermark_ms: int = global_state()


@register
class CheckinDetector(SubjectDetector):
    """Missed daily check-ins and check-ins from outside the permitted area, for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`).
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.
    utc_offset : str
        Local time of the deadlines, "+HH:MM" (China Standard Time by default).

    Notes
    -----
    - ``missed_checkin``: no check-in in the window ``(previous deadline,
      deadline]`` (the first window starts at the subject's first fix, so days
      before any data are never checked). An event at the deadline: onset,
      confirmation and end are all the deadline; it is emitted once event time
      (a later fix of the subject or the watermark) is strictly after it, and
      placed at the subject's latest fix before it. Severity high for
      ``strict`` subjects, else medium.
    - ``checkin_outside``: a check-in fix the caller marks as outside the
      subject's permitted area; onset, confirmation and end at the fix. It
      still counts as the day's check-in. Severity high.
    """

    name = "checkins"
    kinds = tuple(CHECKIN_KINDS.values())
    rule_keys = ("checkin_due",)
    reads = "admitted"
    State = CheckinState

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office, utc_offset: str = "+08:00"):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        self.offset_ms = _offset_ms(utc_offset)
        self._due_min = np.array([minute_of_day(v["checkin_due"]) for v in sets.values], dtype=np.int64)
        self.state = CheckinState(windows=np.zeros((len(self.subject_ids), _ck.N_CHECKIN_STATE)), watermark_ms=-1)
        self._zones = None
        self._permitted_of = None

    @classmethod
    def from_context(cls, ctx: EngineContext) -> CheckinDetector:
        detector = cls(*ctx.subjects)
        detector._zones, detector._permitted_of = ctx.zones, ctx.permitted_of
        return detector

    def _inside_permitted(self, f, checkin: np.ndarray) -> np.ndarray:
        local = self._permitted_of[f.code]
        inside = np.ones(checkin.size, bool)
        i = np.flatnonzero(checkin & (local >= 0))
        if i.size:
            # Each check-in against its own permitted zone on the zone index's kernel (boundary counts as in).
            point, zone = self._zones.permitted.index.query_xy(f.raw_x_m[i], f.raw_y_m[i], predicate="intersects")
            own = point[zone == local[i][point]]
            inside[i] = False
            inside[i[own]] = True
        return inside

    def detect(self, batch: Batch) -> pa.Table:
        """Every admitted fix starts or carries a subject's checking; check-ins are fixes of source ``checkin``."""
        self.run_id = batch.run_id
        f = batch.admitted
        checkin = f.source == SOURCE_CODE["checkin"]
        return self.step(f.code, f.t_ms, checkin, self._inside_permitted(f, checkin), f.tset, batch.watermark_ms,
                         lon=f.lon, lat=f.lat)

    def step(self, code: np.ndarray, t_ms: np.ndarray, source_is_checkin: np.ndarray, inside_permitted: np.ndarray,
             tset: np.ndarray, now_ms: int | None = None, *, lon: np.ndarray | None = None,
             lat: np.ndarray | None = None) -> pa.Table:
        """Advance over one batch of admitted fixes, sorted by (subject code, time); return alert events.

        Parameters
        ----------
        code, t_ms, tset : int64 arrays
            Subject code, time (ms, UTC) and threshold set of each fix.
        source_is_checkin : bool array
            Whether each fix is a check-in (source ``checkin``).
        inside_permitted : bool array
            Whether each fix lies in its subject's permitted area (True for a
            subject without one); only read for check-ins.
        now_ms : int, optional
            Raises the watermark beyond the batch's newest fix (live operation:
            the clock less the allowed lateness); by default the watermark is
            the newest fix seen so far.
        lon, lat : float arrays, optional
            Fix positions (degrees) where alerts are placed; NaN if omitted.
        """
        code = np.asarray(code, np.int64)
        t_ms = np.asarray(t_ms, np.int64)
        tset = np.asarray(tset, np.int64)
        self._advance(t_ms, now_ms)
        _, offsets, subjects = subject_runs(code)
        nan = np.full(code.size, np.nan)
        lon = nan if lon is None else np.ascontiguousarray(lon, dtype=np.float64)
        lat = nan if lat is None else np.ascontiguousarray(lat, dtype=np.float64)
        rec_i, rec_f = _ck.checkin_step(offsets, subjects, t_ms, np.asarray(source_is_checkin, bool),
                                        np.asarray(inside_permitted, bool), self._due_min[tset], tset, lon, lat,
                                        self.offset_ms, self.watermark_ms, self.state.windows)
        return self._alerts(rec_i, rec_f)

    def _alerts(self, rec_i: np.ndarray, rec_f: np.ndarray) -> pa.Table:
        subj = rec_i[:, _ck.REC_SUBJECT]
        kind = rec_i[:, _ck.REC_KIND]
        t = rec_i[:, _ck.REC_T]
        sets = rec_i[:, _ck.REC_SET]
        level = self.subject_level[subj]
        missed = kind == _ck.EVENT_MISSED
        severity = np.where(missed & (level != "strict"), "medium", "high")
        details = [details_json("missed" if k == _ck.EVENT_MISSED else "checkin", lv, self._sets.profile[s],
                                self._sets.period[s], checkin_due=f"{d // 60:02d}:{d % 60:02d}")
                   for k, lv, s, d in zip(kind, level, sets, self._due_min[sets])]
        return alert_table([CHECKIN_KINDS[int(k)] for k in kind], severity, self.subject_ids[subj],
                           [None] * len(t), self.subject_office[subj], t, t, t, rec_f[:, 0], rec_f[:, 1],
                           details, self.run_id)
