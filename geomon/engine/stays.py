"""Stays of every subject, kept for reports, and the alerts read off them: ``dwell_concern`` and ``night_stay``.

:class:`StayDetector` walks every subject's fixes through the causal
sliding-method stay of :func:`geomon.kernels.dwell.dwell_step` (the open
stay — anchor, running centroid, member count — carried per subject), so the
same stream gives the same stays and alerts in any batching:

- **stays**: every stay that ends having lasted ``stay_min_s`` becomes a row
  of :data:`geomon.schema.STAY_SCHEMA` (:meth:`StayDetector.take_stays`),
  with the place of concern it was at and its distance to the subject's home
  and work zones; the replay writes them to the store's ``staypoints`` table;
- ``dwell_concern``: raised as soon as a stay *so far* lasts ``dwell_s`` while
  its first fix (the anchor) lies at a place of concern, without waiting for
  the stay to end;
- ``night_stay``: raised as soon as a stay whose anchor, or a fix of it so
  far, is farther than ``night_away_m`` from the subject's home zone and from
  its work zone (if it has one), and whose anchor is at no place of concern,
  has spent ``night_stay_s`` inside one night window
  (``night_start``-``night_end``, local time). Subjects without a home zone
  never raise it.

Alert rows are in :data:`geomon.schema.ALERT_SCHEMA`.

A *place of concern* is a zone of kind ``place_of_concern`` or ``forbidden``
(bars, schools, a victim's home; :func:`places_of_concern`), applying to the
subjects it is assigned to (all when it names none). Zone schedules are not
read: lingering at a bar is of concern whenever it happens. A stay is at a
place when its anchor lies in it or within ``dwell_radius_m`` of it; the
nearest such place is the alert's zone.

Thresholds come from the rules per fix (``dwell_s``, ``dwell_radius_m``,
``stay_min_s``, ``night_stay_s``, ``night_away_m``, ``night_start``,
``night_end``; docs/rules.md). A silence longer than ``lost_contact_s`` breaks
a stay (what the subject did in between is unknown): it ends at the last fix
before the silence. The stay rule follows Li et al. (2008), sec. 3.1, as
:mod:`geomon.kernels.staypoints` does for :func:`geomon.staypoints`; how the
two differ (silences, the open stay) is in docs/staypoints.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, EngineContext, global_state, register, subject_state
from geomon.engine.night import NightWindows
from geomon.engine.rows import SubjectDetector, alert_table, details_json, subject_runs
from geomon.engine.zone_distance import SubjectZoneDistance, ZonesWithin
from geomon.kernels import dwell as _dw
from geomon.rules.periods import ThresholdSets
from geomon.schema import STAY_SCHEMA, TS_TYPE

__all__ = ["CONCERN_KINDS", "StayDetector", "StayState", "places_of_concern"]

#: Zone kinds that are places of concern.
CONCERN_KINDS = ("place_of_concern", "forbidden")


def places_of_concern(zones) -> dict:
    """The places of concern of compiled zones, as keyword arguments of :class:`StayDetector`.

    Parameters
    ----------
    zones : geomon.engine.zones.CompiledZones

    Returns
    -------
    dict
        ``concern_geometry_m`` (shapely geometries in the zones' frame),
        ``concern_ids``, ``concern_subjects`` (None: every subject),
        ``concern_category`` and ``frame``.
    """
    codes = np.flatnonzero(np.isin(zones.kind.astype(str), CONCERN_KINDS))
    return {"concern_geometry_m": zones.geometry_m[codes], "concern_ids": zones.zone_id[codes],
            "concern_subjects": [None if zones.applies_to_all[c] else zones.assignments.get(int(c), frozenset())
                                 for c in codes],
            "concern_category": zones.category[codes], "frame": zones.frame}


def _geometries(geometry_m, n: int) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    if geometry_m is not None:
        out[:] = list(geometry_m)
    return out


@dataclass
class StayState:
    """Per subject: the stay kernel's row (the open stay: anchor, running centroid, members)."""

    stays: np.ndarray = subject_state()
    #: When a silence ends the subject's open stay (ms; +inf: none open), so that the watermark looks at the
    #: subjects it has passed only.
    due_ms: np.ndarray = subject_state()
    watermark_ms: int = global_state()


@register
class StayDetector(SubjectDetector):
    """Stays, stays at places of concern beyond ``dwell_s`` and unexplained night stays, for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.rules.periods.ThresholdSets`).
    subject_ids, subject_level, subject_office : sequence of str
        Per subject code, as the Monitor holds them.
    concern_geometry_m : sequence of shapely geometries
        Places of concern in the metric frame of the fixes (m).
    concern_ids : sequence of str
        Zone id of each place.
    concern_subjects : sequence of (set of str or None), optional
        Per place, the subjects it applies to; None (the default for every
        place) applies to all.
    concern_category : sequence of str or None, optional
        Per place, its category (``bar``, ``victim_home``...), for the details
        and the severity.
    frame : geomon.geo.crs.LocalFrame, optional
        Frame of the coordinates, to place alerts and stays in lon/lat (NaN
        without it).
    home_geometry_m, work_geometry_m : sequence of shapely geometry or None, optional
        Per subject code, its home and work zones in the same frame (None: none;
        without a home zone a subject raises no ``night_stay``).
    tz : str or tzinfo
        Local time of the night windows (a zoneinfo name or "+08:00").

    Notes
    -----
    ``dwell_concern`` starts at the stay's first fix (the anchor), is
    confirmed at the first fix at which the stay has lasted ``dwell_s``, and
    ends at the fix that ends the stay (the first fix ``dwell_radius_m`` or
    farther from the anchor), or at the last fix before a silence longer than
    ``lost_contact_s`` (noticed by a later fix or by the watermark). Placed at
    the centroid of the stay's fixes so far; ``details`` give the place's
    category, the stay's duration so far (s) and its number of fixes.
    Severity high for ``strict`` subjects and victims' homes, else medium.

    ``night_stay`` starts at the later of the anchor's time and the start of
    the night window in which the stay first spent ``night_stay_s``, is
    confirmed at the fix that proved it (the stay lasts until its latest fix,
    or until the fix that leaves it, which then also ends the alert) and ends
    when the stay ends. The anchor or a fix of the stay up to the proving fix
    must be surely farther than ``night_away_m`` from the home zone and from
    the work zone (the anchor is often a fix on the way in), and the anchor
    at no place of concern (that is ``dwell_concern``'s). Only fixes confirm: a silence would end the stay
    at its last fix, so the watermark never lengthens a stay. No zone;
    ``details`` give the stay's start (``stay_started_ms``), the time from
    the onset to the confirmation or end (``duration_s``), the threshold
    (``night_stay_s``) and the number of fixes. Severity high for ``strict``
    subjects, else medium.

    Stays (:meth:`take_stays`) are always computed with the alerts: they come
    from the same walk and cost one distance per stay; the Monitor runs the
    walk when its ``stays`` detector is on.
    """

    name = "stays"
    kinds = ("dwell_concern", "night_stay")
    rule_keys = ("dwell_s", "dwell_radius_m", "breach_p", "lost_contact_s", "stay_min_s", "night_stay_s",
                 "night_away_m", "night_start", "night_end")
    reads = "fused"
    on_by_default = True
    outputs = ("stays",)
    State = StayState

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office, concern_geometry_m,
                 concern_ids, *, concern_subjects=None, concern_category=None, frame=None, home_geometry_m=None,
                 work_geometry_m=None, tz="Asia/Shanghai"):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        self.concern_ids = np.asarray(concern_ids, dtype=object)
        self._geoms = np.asarray(concern_geometry_m, dtype=object)
        n_places = len(self.concern_ids)
        n_subjects = len(self.subject_ids)
        self.concern_category = (np.full(n_places, None, dtype=object) if concern_category is None
                                 else np.asarray(concern_category, dtype=object))
        code = {s: i for i, s in enumerate(self.subject_ids)}
        self._applies = np.ones((n_subjects, n_places), bool)
        for p, subjects in enumerate(concern_subjects or [None] * n_places):
            if subjects is not None:
                self._applies[:, p] = False
                self._applies[[code[s] for s in subjects if s in code], p] = True
        self.frame = frame
        self.home = _geometries(home_geometry_m, n_subjects)
        self.work = _geometries(work_geometry_m, n_subjects)
        self._home_distance = SubjectZoneDistance(self.home)
        self._work_distance = SubjectZoneDistance(self.work)
        self._windows = NightWindows(sets, tz)
        self._dwell_ms = sets.per_set("dwell_s", scale=1000, dtype=np.int64)
        self._radius_m = sets.per_set("dwell_radius_m")
        #: Places within reach of fixes, for the largest dwell radius of any threshold set (a caller asking for
        #: more rebuilds it).
        self._near = ZonesWithin(self._geoms, float(np.max(self._radius_m, initial=0.0)))
        self._z = sets.normal_quantile("breach_p")
        self._gap_ms = sets.per_set("lost_contact_s", scale=1000, dtype=np.int64)
        self._stay_ms = sets.per_set("stay_min_s", scale=1000, dtype=np.int64)
        self._night_ms = sets.per_set("night_stay_s", scale=1000, dtype=np.int64)
        self._away_m = sets.per_set("night_away_m")
        self.state = StayState(stays=np.zeros((n_subjects, _dw.N_DWELL_STATE)), due_ms=np.full(n_subjects, np.inf),
                               watermark_ms=-1)
        self._stays: list[pa.Table] = []

    @classmethod
    def from_context(cls, ctx: EngineContext) -> StayDetector:
        return cls(*ctx.subjects, **places_of_concern(ctx.zones), home_geometry_m=ctx.home_geometry_m,
                   work_geometry_m=ctx.work_geometry_m, tz=ctx.tz)

    def detect(self, batch: Batch) -> pa.Table:
        """Fused, decidable fixes only: a cell fix hundreds of metres off would end any stay."""
        self.run_id = batch.run_id
        f = batch.fused
        return self.step(f.code, f.t_ms, f.fused_x_m, f.fused_y_m, f.tset, batch.watermark_ms, sigma_m=f.sigma_m)

    def take_outputs(self) -> dict[str, pa.Table]:
        """The stays that ended since the last call (the replay writes them to the ``staypoints`` table)."""
        return {"stays": self.take_stays()}

    def holds_outputs(self) -> bool:
        return bool(self._stays)

    def place_of_fixes(self, code: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
        """Nearest place of concern applying to each fix's subject within ``radius_m`` of it (-1: none)."""
        out = np.full(code.size, -1, np.int64)
        if code.size == 0 or self.concern_ids.size == 0:
            return out
        radius_m = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), code.shape)
        reach = float(np.max(radius_m, initial=0.0))
        if reach > self._near.reach_m:
            self._near = ZonesWithin(self._geoms, reach)
        fi, pi, distance = self._near.within(x_m, y_m, radius_m)
        keep = self._applies[code[fi], pi]
        fi, pi, distance = fi[keep], pi[keep], distance[keep]
        order = np.lexsort((pi, distance, fi))   # per fix, nearest first (ties: first place)
        fi, pi = fi[order], pi[order]
        first = np.r_[True, fi[1:] != fi[:-1]] if fi.size else np.zeros(0, bool)
        out[fi[first]] = pi[first]
        return out

    def away(self, code: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, tset: np.ndarray,
             sigma_m: np.ndarray | None = None) -> np.ndarray:
        """Is each position surely farther than ``night_away_m`` from its subject's home zone and work zone?

        Surely: by more than ``z * sigma_m`` (``z`` the ``breach_p`` normal
        quantile; ``sigma_m`` default 0). False for subjects without a home
        zone; a subject without a work zone is away from work everywhere.
        """
        out = np.zeros(code.size, bool)
        i = np.flatnonzero(np.not_equal(self.home[code], None))
        if i.size:
            limit = self._away_m[tset[i]]
            if sigma_m is not None:
                limit = limit + self._z[tset[i]] * np.nan_to_num(sigma_m[i], nan=np.inf)
            near_work = self._work_distance.distance(code[i], x_m[i], y_m[i]) <= limit   # NaN (no work zone): False
            out[i] = (self._home_distance.distance(code[i], x_m[i], y_m[i]) > limit) & ~near_work
        return out

    def _window_span(self, subjects: np.ndarray, t_ms: np.ndarray) -> tuple[int, int]:
        """Event times the night windows must cover: the open stays that may still become night stays, the batch."""
        st = self.state.stays[subjects]
        pending = ((st[:, _dw.DS_STARTED] != 0) & (st[:, _dw.DS_AWAY] != 0) & (st[:, _dw.DS_PLACE] < 0)
                   & (st[:, _dw.DS_NIGHT_CONFIRM_T] < 0))
        lo = min(t_ms.min(), st[pending, _dw.DS_ANCHOR_T].min(initial=t_ms.min()))
        return int(lo), int(t_ms.max())

    def step(self, code: np.ndarray, t_ms: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, tset: np.ndarray,
             now_ms: int | None = None, sigma_m: np.ndarray | None = None) -> pa.Table:
        """Advance over one batch of fixes, sorted by (subject code, time); return alert events.

        ``x_m``/``y_m`` are positions in the places' frame (m); the Monitor
        should pass its fused positions of decidable fixes (a vague cell fix
        hundreds of metres off would end any stay), and ``sigma_m`` their
        1-sigma (default 0): a fix ends a stay only when it is farther from
        the stay's first fix than ``dwell_radius_m`` plus ``z`` sigmas (``z``
        the ``breach_p`` normal quantile, 1.645 at 0.95), so a position
        pulled off by noise does not cut a stay in two, and a stay is away
        from home only when its first fix or a later one is by as much
        (:meth:`away`). ``now_ms`` raises the watermark beyond the batch's newest fix; by default the watermark is
        the newest fix seen so far. The stays that ended are kept for
        :meth:`take_stays`.
        """
        code = np.asarray(code, np.int64)
        t_ms = np.asarray(t_ms, np.int64)
        tset = np.asarray(tset, np.int64)
        x_m = np.ascontiguousarray(x_m, dtype=np.float64)
        y_m = np.ascontiguousarray(y_m, dtype=np.float64)
        self._advance(t_ms, now_ms)
        _, offsets, subjects = subject_runs(code)
        radius = self._radius_m[tset]
        reach = radius if sigma_m is None else radius + self._z[tset] * np.nan_to_num(sigma_m, nan=0.0)
        finite = np.isfinite(x_m) & np.isfinite(y_m)
        place = np.full(code.size, -1, np.int64)
        place[finite] = self.place_of_fixes(code[finite], x_m[finite], y_m[finite], radius[finite])
        away = np.zeros(code.size, bool)
        away[finite] = self.away(code[finite], x_m[finite], y_m[finite], tset[finite],
                                 None if sigma_m is None else np.asarray(sigma_m, dtype=np.float64)[finite])
        if code.size:
            win_start, win_end = self._windows.table(*self._window_span(subjects, t_ms))
        else:
            win_start = win_end = np.zeros((len(self._windows.pairs), 1), np.int64)
        rec_i, rec_f = _dw.dwell_step(offsets, subjects, t_ms, x_m, y_m, place, away, reach, self._dwell_ms[tset],
                                      self._gap_ms[tset], self._stay_ms[tset], self._night_ms[tset],
                                      self._windows.pair_of_set[tset], tset, self.watermark_ms, win_start, win_end,
                                      self.state.stays, self.state.due_ms)
        kind = rec_i[:, _dw.REC_KIND]
        stay = kind == _dw.KIND_STAY
        if stay.any():
            self._stays.append(self._stay_rows(rec_i[stay], rec_f[stay], t_ms))
        return pa.concat_tables([self._alerts(name, rec_i[kind == code], rec_f[kind == code])
                                 for name, code in (("dwell_concern", _dw.KIND_DWELL), ("night_stay", _dw.KIND_NIGHT))])

    def take_stays(self) -> pa.Table:
        """The stays that ended since the last call, in :data:`geomon.schema.STAY_SCHEMA`, in the order they ended."""
        stays, self._stays = self._stays, []
        return pa.concat_tables(stays) if stays else STAY_SCHEMA.empty_table()

    def _lonlat(self, rec_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.frame is not None and rec_f.shape[0]:
            return self.frame.unproject(rec_f[:, 0], rec_f[:, 1])
        return np.full(rec_f.shape[0], np.nan), np.full(rec_f.shape[0], np.nan)

    def _stay_rows(self, rec_i: np.ndarray, rec_f: np.ndarray, t_ms: np.ndarray) -> pa.Table:
        subj = rec_i[:, _dw.REC_SUBJECT]
        place = rec_i[:, _dw.REC_PLACE]
        end = rec_i[:, _dw.REC_END]
        fix = rec_i[:, _dw.REC_FIX]
        # A fix that leaves the stay ends it at its own time; a silence at the last fix before it.
        moved = np.zeros(fix.size, bool)
        by_fix = fix >= 0
        moved[by_fix] = end[by_fix] == t_ms[fix[by_fix]]
        lon, lat = self._lonlat(rec_f)
        home_m = self._home_distance.distance(subj, rec_f[:, 0], rec_f[:, 1])
        work_m = self._work_distance.distance(subj, rec_f[:, 0], rec_f[:, 1])
        ids = self.concern_ids[np.maximum(place, 0)] if self.concern_ids.size else np.full(place.size, None)
        return pa.table({
            "subject_id": pa.array(self.subject_ids[subj].tolist(), pa.string()),
            "started_at": pa.array(rec_i[:, _dw.REC_ONSET], pa.int64()).cast(TS_TYPE),
            "finished_at": pa.array(end, pa.int64()).cast(TS_TYPE),
            "lon": pa.array(lon, pa.float64()),
            "lat": pa.array(lat, pa.float64()),
            "n_fixes": pa.array(rec_i[:, _dw.REC_COUNT], pa.int64()),
            "office_id": pa.array(self.subject_office[subj].tolist(), pa.string()),
            "concern_zone_id": pa.array(np.where(place >= 0, ids, None).tolist(), pa.string()),
            "home_distance_m": pa.array(home_m, pa.float64(), from_pandas=True),
            "work_distance_m": pa.array(work_m, pa.float64(), from_pandas=True),
            "ended_by": pa.array(np.where(moved, "moved", "silence").tolist(), pa.string()),
            "run_id": pa.array([self.run_id] * subj.size, pa.string()),
        }, schema=STAY_SCHEMA)

    def _alerts(self, kind: str, rec_i: np.ndarray, rec_f: np.ndarray) -> pa.Table:
        """Alert rows of ``dwell_concern`` or ``night_stay`` records."""
        subj, place, onset, confirm, end, sets, count, anchor = (rec_i[:, c] for c in (
            _dw.REC_SUBJECT, _dw.REC_PLACE, _dw.REC_ONSET, _dw.REC_CONFIRM, _dw.REC_END, _dw.REC_SET, _dw.REC_COUNT,
            _dw.REC_ANCHOR))
        level = self.subject_level[subj]
        if kind == "dwell_concern":
            category = self.concern_category[place]
            severity = np.where((level == "strict") | (category == "victim_home"), "high", "medium")
            zone = self.concern_ids[place]
            extra = [{"zone_category": cat} for cat in category]
        else:
            severity = np.where(level == "strict", "high", "medium")
            zone = [None] * len(onset)
            extra = [{"stay_started_ms": int(a), "night_stay_s": int(self._night_ms[s]) // 1000}
                     for a, s in zip(anchor, sets)]
        lon, lat = self._lonlat(rec_f)
        details = [details_json("ended" if e >= 0 else "confirmed", lv, self._sets.profile[s], self._sets.period[s],
                                duration_s=((e if e >= 0 else c) - o) / 1000.0, n_fixes=int(k), **x)
                   for e, c, o, k, lv, s, x in zip(end, confirm, onset, count, level, sets, extra)]
        return alert_table([kind] * len(onset), severity, self.subject_ids[subj], zone, self.subject_office[subj],
                           onset, confirm, end, lon, lat, details, self.run_id)
