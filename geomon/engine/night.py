"""Night alerts: curfew breach (宵禁) and night activity, on the local calendar.

:class:`NightDetector` keeps, per subject, what :func:`geomon.kernels.night.night_step`
remembers and turns its event records into alert rows in
:data:`geomon.schema.ALERT_SCHEMA`. It follows :class:`geomon.engine.lost_contact.LostContactDetector`:
fixes sorted by (subject code, time), batch after batch, with an event-time
watermark, so the same stream gives the same alerts in any batching.

Night windows are ``[night_start, night_end)`` in local time (a window whose
end is not after its start runs past midnight and belongs to the day it
starts). They are computed per local calendar date with :mod:`zoneinfo`
(default ``Asia/Shanghai``), so on a daylight-saving change elsewhere the
window is still 22:00-06:00 on the wall clock (7 or 9 hours long that night).
A window with ``night_start == night_end`` is no window (night alerts off).

Semantics (see docs/alerts.md):

- *Away* is decided as a geofence breach is (docs/alerts.md): the home disc's edge is ``night_away_m`` from
  the subject's home zone (0 inside it), and Page's CUSUM of each fused position's evidence of being
  beyond it by any depth (at least :data:`HOME_DEPTH_M`: ``night_away_m`` is itself the margin, unlike a
  zone's edge; :mod:`geomon.kernels.evidence`, ``sigma`` the fix's trusted 1-sigma, gross errors of
  ``breach_gross_p`` within ``breach_gross_reach_m``) must reach the threshold of
  ``breach_budget_per_day`` false decisions per subject-day. *Home* means nearer than ``night_away_m``
  by more than ``z * sigma`` (``z`` the ``breach_p`` quantile of the normal, 1.645 at 0.95); it
  restarts the evidence. A fix in between is undecided and changes nothing, so a phone indoors on cell
  fixes hundreds of metres off never fakes a night out, one outlier neither makes a night out nor ends
  one, and a multipath fix near the away distance does not cut a breach in two. Under the legacy rule
  (``breach_by_fixes``) one fix farther than ``night_away_m`` by ``z * sigma`` is away.
  Between fixes the subject is where its last fix put it.
- ``curfew_breach``: away inside a window for longer than ``curfew_grace_s``,
  counted from the first fix decided away or, when already away as the window opens,
  from the window start; onset = that moment + grace (= confirmed), emitted as
  soon as a fix or the watermark passes it; ends at the first fix at home or
  at the window end. Subjects without a home zone never breach.
- ``night_activity``: within a window, the travel (anchor-gated sum of fused
  steps: a step counts once the position is :data:`geomon.kernels.night.TRAVEL_GATE_M`
  or three times its trusted 1-sigma, whichever is more, from the last counted one) or the time away exceeds
  both its floor (``night_travel_m``, ``night_away_s``) and the subject's own
  baseline, the nearest-rank p95 of the same value over the last 28 completed
  nights with a fix in the window (the max while fewer than 20; none yet: the
  floor alone). Raised once per night, as soon as it happens (causal); ends at
  the window end with the night's totals. Without a home zone only travel counts.

Thresholds are those of the fix being judged (between fixes, of the last fix),
so profiles and special periods apply.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, EngineContext, global_state, register, subject_state
from geomon.engine.rows import SubjectDetector, alert_table, subject_runs
from geomon.engine.zone_distance import SubjectZoneDistance
from geomon.kernels import evidence as _ev
from geomon.kernels import night as _night
from geomon.rules.periods import ThresholdSets
from geomon.schema import ALERT_SCHEMA

__all__ = ["HOME_DEPTH_M", "NIGHT_KINDS", "NightDetector", "NightWindows", "as_tzinfo", "night_windows"]

#: The least depth beyond ``night_away_m`` the evidence of being away weighs (m): any depth, since the away
#: distance is already the margin (a strict subject 160 m from home at 150 m is away; a fix of 0.3 m says so
#: at the second fix, one of 6 m never 10 m out).
HOME_DEPTH_M = 1.0

#: Alert kind of each event of :mod:`geomon.kernels.night`, and its severity.
NIGHT_KINDS = {_night.EVENT_CURFEW: ("curfew_breach", "high"),
               _night.EVENT_ACTIVITY: ("night_activity", "medium")}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_PAD = np.iinfo(np.int64).max
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


def as_tzinfo(tz) -> _dt.tzinfo:
    """A tzinfo from a zoneinfo name ("Asia/Shanghai"), a fixed offset ("+08:00") or a tzinfo."""
    if isinstance(tz, _dt.tzinfo):
        return tz
    m = _OFFSET.match(tz)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return _dt.timezone(_dt.timedelta(minutes=minutes if m.group(1) == "+" else -minutes))
    return ZoneInfo(tz)


def _minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@lru_cache(maxsize=65536)
def _window(tz: _dt.tzinfo, day: _dt.date, start_min: int, end_min: int) -> tuple[int, int]:
    ws = _dt.datetime.combine(day, _dt.time(start_min // 60, start_min % 60), tzinfo=tz)
    end_day = day if end_min > start_min else day + _dt.timedelta(days=1)
    we = _dt.datetime.combine(end_day, _dt.time(end_min // 60, end_min % 60), tzinfo=tz)
    return (ws - _EPOCH) // _MS, (we - _EPOCH) // _MS


def night_windows(lo_ms: int, hi_ms: int, start: str, end: str, tz="Asia/Shanghai") -> np.ndarray:
    """UTC bounds (ms) of the night windows starting on the local dates from ``lo_ms`` to ``hi_ms``.

    Parameters
    ----------
    lo_ms, hi_ms : int
        Event times (ms since the epoch, UTC); windows start on every local
        date from the day before ``lo_ms``'s to ``hi_ms``'s, so every window
        that contains a time in ``[lo_ms, hi_ms]`` is there.
    start, end : str
        Local times of day, "HH:MM"; ``end <= start`` runs past midnight,
        ``end == start`` means no window.
    tz : str or tzinfo
        Time zone name (zoneinfo), fixed offset "+08:00", or a tzinfo.

    Returns
    -------
    int64 (n_windows, 2)
        Start and end of each window, sorted.

    Examples
    --------
    >>> w = night_windows(1_711_839_600_000, 1_711_839_600_000, "22:00", "06:00", "Europe/Berlin")
    >>> ((w[:, 1] - w[:, 0]) / 3_600_000).tolist()   # the night of 30-31 March 2024 loses an hour
    [7.0, 8.0]
    """
    tzi = as_tzinfo(tz)
    s, e = _minute(start), _minute(end)
    if s == e:
        return np.zeros((0, 2), np.int64)
    first = _dt.datetime.fromtimestamp(lo_ms / 1000, tzi).date() - _dt.timedelta(days=1)
    last = _dt.datetime.fromtimestamp(hi_ms / 1000, tzi).date()
    days = [first + _dt.timedelta(days=k) for k in range((last - first).days + 1)]
    return np.array([_window(tzi, d, s, e) for d in days], np.int64).reshape(-1, 2)


class NightWindows:
    """The night windows of every threshold set, as the kernels read them.

    Sets with the same ``(night_start, night_end)`` share a window *pair*;
    :attr:`pair_of_set` maps each set to its pair and :meth:`table` gives
    every pair's windows over a span of event time.

    Parameters
    ----------
    sets : ThresholdSets
        Reads ``night_start`` and ``night_end`` (local "HH:MM"; defaults in the packaged rules file).
    tz : str or tzinfo
        Local time of the windows.
    """

    def __init__(self, sets: ThresholdSets, tz="Asia/Shanghai"):
        self.tz = as_tzinfo(tz)
        starts = [v["night_start"] for v in sets.values]
        ends = [v["night_end"] for v in sets.values]
        self.pairs = sorted(set(zip(starts, ends)))
        #: Row of :meth:`table` of each threshold set.
        self.pair_of_set = np.array([self.pairs.index(p) for p in zip(starts, ends)], np.int64)

    def table(self, lo_ms: int, hi_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends (int64 ms, ``(n_pairs, n_windows)``) of every window meeting ``[lo_ms, hi_ms]``.

        Rows are sorted and padded at the end with int64 max.
        """
        rows = [night_windows(lo_ms, hi_ms, s, e, self.tz) for s, e in self.pairs]
        width = max(1, max(r.shape[0] for r in rows))
        ws = np.full((len(rows), width), _PAD, np.int64)
        we = np.full((len(rows), width), _PAD, np.int64)
        for p, r in enumerate(rows):
            ws[p, :r.shape[0]] = r[:, 0]
            we[p, :r.shape[0]] = r[:, 1]
        return ws, we


@dataclass
class NightState:
    """Per subject: the night kernel's row (its clock column follows the watermark where something is due) and
    the rings of past nights' travel and time away that make each subject's own baseline."""

    nights: np.ndarray = subject_state(whole_columns=(_night.NS_CLOCK,))
    ring_travel: np.ndarray = subject_state()
    ring_away: np.ndarray = subject_state()
    #: Page's sum of the evidence of being away, the time (ms) of the subject's previous fix (0: none) and when
    #: the sum last left 0.
    away_evidence: np.ndarray = subject_state()
    #: When time alone next changes the subject's row (ms; +inf: nothing due): the watermark advances only
    #: the subjects it has reached, so their clocks lag behind it harmlessly (:mod:`geomon.kernels.night`).
    due_ms: np.ndarray = subject_state()
    watermark_ms: int = global_state()


@register
class NightDetector(SubjectDetector):
    """Curfew breach and night activity for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`);
        reads ``night_start``, ``night_end``, ``night_away_m``, ``curfew_grace_s``,
        ``night_travel_m`` and ``night_away_s``.
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.
    home_geometry_m : sequence of shapely geometry or None
        Per subject code, its home zone in the same local metric frame as the
        positions given to :meth:`step` (None: no home zone, no curfew).
    frame : geomon.geo.crs.LocalFrame, optional
        That frame, to place alerts in lon/lat (NaN without it).
    tz : str or tzinfo
        Local time of the night windows: a zoneinfo name (default
        ``"Asia/Shanghai"``), a fixed offset such as ``"+08:00"``, or a tzinfo.
    """

    name = "night"
    kinds = tuple(kind for kind, _ in NIGHT_KINDS.values())
    rule_keys = ("night_start", "night_end", "night_away_m", "curfew_grace_s", "night_travel_m", "night_away_s",
                 "breach_p", "breach_by_fixes", "breach_budget_per_day", "breach_gross_p", "breach_gross_reach_m")
    reads = "fused"
    on_by_default = True
    State = NightState

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office, home_geometry_m,
                 frame=None, tz="Asia/Shanghai"):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        n = len(self.subject_ids)
        self.home = np.empty(n, dtype=object)
        self.home[:] = list(home_geometry_m)
        self._home_distance = SubjectZoneDistance(self.home)
        self.frame = frame
        self.tz = as_tzinfo(tz)
        self._windows = NightWindows(sets, self.tz)
        self._away_m = sets.per_set("night_away_m")
        self._grace_ms = sets.per_set("curfew_grace_s", scale=1000, dtype=np.int64)
        self._travel_m = sets.per_set("night_travel_m")
        self._away_floor_ms = sets.per_set("night_away_s", scale=1000, dtype=np.int64)
        self._z = sets.normal_quantile("breach_p")
        self._by_fixes = sets.per_set("breach_by_fixes", dtype=np.bool_)
        self._budget = sets.per_set("breach_budget_per_day")
        self._gross_p = sets.per_set("breach_gross_p")
        self._reach_m = sets.per_set("breach_gross_reach_m")
        nights, ring_travel, ring_away, due_ms = _night.new_state(n)
        self.state = NightState(nights=nights, ring_travel=ring_travel, ring_away=ring_away,
                                away_evidence=np.zeros((n, 3)), due_ms=due_ms, watermark_ms=-1)

    @classmethod
    def from_context(cls, ctx: EngineContext) -> NightDetector:
        return cls(*ctx.subjects, ctx.home_geometry_m, frame=ctx.zones.frame, tz=ctx.tz)

    def detect(self, batch: Batch) -> pa.Table:
        """Fused, decidable fixes only, judged against the watermark between fixes."""
        self.run_id = batch.run_id
        f = batch.fused
        return self.step(f.code, f.t_ms, f.fused_x_m, f.fused_y_m, f.tset, batch.watermark_ms, sigma_m=f.sigma_m)

    def away(self, code: np.ndarray, t_ms: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, tset: np.ndarray,
             sigma_m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Away state of each position of fixes sorted by (subject code, time) (:data:`geomon.kernels.night.AWAY`,
        ``HOME`` or ``UNSURE``; HOME without a home), the evidence carried from the subject's earlier fixes, and
        when the subject went away (ms): the first fix of the evidence that decided it (legacy: the fix).

        Home when nearer than ``night_away_m`` to the home zone by more than ``z * sigma_m`` (``z`` the
        ``breach_p`` normal quantile); away once the evidence of being beyond it by any depth
        (:data:`HOME_DEPTH_M` or more) reaches the budget's threshold (legacy rule: farther by more than
        ``z * sigma_m``); else unsure.
        """
        out = np.full(code.size, _night.HOME, np.int8)
        since = np.asarray(t_ms, np.float64).copy()
        if code.size == 0:
            return out, since
        sigma = np.zeros(code.size) if sigma_m is None else np.nan_to_num(sigma_m, nan=np.inf)
        dist = self._home_distance.distance(code, x_m, y_m)   # NaN without a home: HOME
        margin = self._z[tset] * sigma
        back = ~(dist >= self._away_m[tset] - margin)
        beyond = dist - self._away_m[tset]
        llr = np.empty(code.size)
        reach = self._reach_m[tset]
        # (An exact position, sigma 0, is evidence as a centimetre's.)
        _ev.fix_llrs(beyond, np.fmax(sigma, 0.01), np.full(code.size, HOME_DEPTH_M), self._gross_p[tset], reach, reach,
                     llr)
        decided = np.empty(code.size, np.int8)
        evidence_since = np.empty(code.size)
        _, offsets, subjects = subject_runs(code)
        _ev.side_states(offsets, subjects, t_ms, llr, back, self._budget[tset], self.state.away_evidence, decided,
                        evidence_since)
        legacy = self._by_fixes[tset]
        out[~back] = _night.UNSURE
        out[np.where(legacy, beyond > margin, decided == _ev.SIDE_WRONG)] = _night.AWAY
        return out, np.where(legacy, since, evidence_since)

    def step(self, code: np.ndarray, t_ms: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, tset: np.ndarray,
             now_ms: int | None = None, sigma_m: np.ndarray | None = None) -> pa.Table:
        """Advance over one batch of fixes, sorted by (subject code, time); return alert events.

        ``x_m``/``y_m`` are *fused* positions (the Monitor's causal track, fixes
        precise enough to decide), metres in the frame of the home zones, and
        ``sigma_m`` the 1-sigma to lean on (the Monitor's trusted sigma, never
        below the fix's own accuracy: :func:`geomon.tracks.fusion.trusted_sigma_m`;
        default 0: exact); ``tset`` is each fix's threshold set. ``now_ms`` raises the watermark
        beyond the batch's newest fix (live operation: the clock, less the
        allowed lateness); by default the watermark is the newest fix seen so far.
        An event is placed at the fix that decided it (between fixes, the last one).
        """
        code = np.asarray(code, dtype=np.int64)
        t_ms = np.asarray(t_ms, dtype=np.int64)
        tset = np.asarray(tset, dtype=np.int64)
        x_m = np.ascontiguousarray(x_m, dtype=np.float64)
        y_m = np.ascontiguousarray(y_m, dtype=np.float64)
        self._advance(t_ms, now_ms)
        _, offsets, subjects = subject_runs(code)
        # The window table must cover, up to the watermark, the clocks of the subjects the kernel will advance:
        # this batch's, and those whose due time the watermark has reached.
        moved = np.concatenate([subjects, np.flatnonzero(self.state.due_ms <= self.watermark_ms)])
        moved = moved[self.state.nights[moved, _night.NS_STARTED] != 0]
        clocks = self.state.nights[moved, _night.NS_CLOCK]
        candidates = ([int(clocks.min())] if clocks.size else []) + ([int(t_ms.min())] if t_ms.size else [])
        if not candidates:
            return ALERT_SCHEMA.empty_table()
        win_start, win_end = self._windows.table(min(candidates), self.watermark_ms)
        sigma = np.zeros(code.size) if sigma_m is None else np.asarray(sigma_m, dtype=np.float64)
        gate = np.maximum(_night.TRAVEL_GATE_M, 3.0 * np.nan_to_num(sigma, nan=np.inf))
        away, away_since = self.away(code, t_ms, x_m, y_m, tset, sigma)
        rec = _night.night_step(offsets, subjects, t_ms, x_m, y_m, away, away_since, gate,
                                self._windows.pair_of_set[tset], tset, self._grace_ms[tset], self._travel_m[tset],
                                self._away_floor_ms[tset], self.watermark_ms, win_start, win_end,
                                self.state.nights, self.state.ring_travel, self.state.ring_away,
                                self.state.due_ms)
        return self._alerts(rec)

    def _alerts(self, rec: np.ndarray) -> pa.Table:
        n = rec.shape[0]
        if n == 0:
            return ALERT_SCHEMA.empty_table()
        R = _night
        subj = rec[:, R.REC_SUBJECT].astype(np.int64)
        kind_code = rec[:, R.REC_KIND].astype(np.int64)
        kinds = [NIGHT_KINDS[int(k)][0] for k in kind_code]
        severity = [NIGHT_KINDS[int(k)][1] for k in kind_code]
        subject_id = self.subject_ids[subj]
        onset = rec[:, R.REC_ONSET].astype(np.int64)
        end = rec[:, R.REC_END].astype(np.int64)
        sets = rec[:, R.REC_TSET].astype(np.int64)
        details = []
        for r, k, e, s, lv in zip(rec, kind_code, end, sets, self.subject_level[subj]):
            d = {"event": "ended" if e >= 0 else "confirmed", "level": lv,
                 "profile": str(self._sets.profile[s]), "period": self._sets.period[s]}
            if k == R.EVENT_CURFEW:
                d.update(grace_s=int(self._grace_ms[s]) // 1000, away_m=float(self._away_m[s]),
                         away_since_ms=int(r[R.REC_AWAY_SINCE]))
            else:
                d.update(trigger="away" if r[R.REC_TRIGGER] == 1 else "travel",
                         travel_m=round(float(r[R.REC_TRAVEL]), 1), away_s=round(float(r[R.REC_AWAY]) / 1000, 3),
                         floor_travel_m=float(self._travel_m[s]), floor_away_s=int(self._away_floor_ms[s]) // 1000,
                         baseline_travel_m=round(float(r[R.REC_BASE_TRAVEL]), 1),
                         baseline_away_s=round(float(r[R.REC_BASE_AWAY]) / 1000, 3), nights=int(r[R.REC_NIGHTS]))
            details.append(json.dumps(d, sort_keys=True))
        x, y = rec[:, R.REC_X], rec[:, R.REC_Y]
        if self.frame is not None:
            lon, lat = self.frame.unproject(x, y)
        else:
            lon, lat = np.full(n, np.nan), np.full(n, np.nan)
        return alert_table(kinds, severity, subject_id, [None] * n, self.subject_office[subj], onset,
                           rec[:, R.REC_CONFIRM].astype(np.int64), end, lon, lat, details, self.run_id)
