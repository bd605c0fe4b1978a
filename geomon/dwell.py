"""Dwell alerts: a stay at a place of concern beyond its limit (``dwell_concern``).

:class:`DwellDetector` walks every subject's fixes through the causal
sliding-method stay of :func:`geomon.kernels.dwell.dwell_step` (the open
stay — anchor, running centroid, member count — carried per subject), and
raises an alert as soon as a stay *so far* lasts ``dwell_s`` while its first
fix (the anchor) lies at a place of concern, without waiting for the stay to
end. Rows are in :data:`geomon.store.ALERT_SCHEMA`.

A *place of concern* is a zone of kind ``place_of_concern`` or ``forbidden``
(bars, schools, a victim's home; :func:`places_of_concern`), applying to the
subjects it is assigned to (all when it names none). Zone schedules are not
read: lingering at a bar is of concern whenever it happens. A stay is at a
place when its anchor lies in it or within ``dwell_radius_m`` of it; the
nearest such place is the alert's zone.

Thresholds come from the rules per fix (``dwell_s``, ``dwell_radius_m``;
docs/rules.md). A silence longer than ``lost_contact_s`` breaks a stay (what
the subject did in between is unknown): it ends at the last fix before the
silence. The stay rule follows Li et al. (2008), sec. 3.1, as
:mod:`geomon.kernels.staypoints` does for the stay-point table.

Not covered yet: the "long unexplained stay away from home and work at night"
alert of issue 5, and keeping the stays as a table for reports.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from geomon.detector_rows import SubjectDetector, alert_table, details_json, subject_runs
from geomon.kernels import dwell as _dw
from geomon.periods import ThresholdSets

__all__ = ["CONCERN_KINDS", "DwellDetector", "places_of_concern"]

#: Zone kinds that are places of concern.
CONCERN_KINDS = ("place_of_concern", "forbidden")


def places_of_concern(zones) -> dict:
    """The places of concern of compiled zones, as keyword arguments of :class:`DwellDetector`.

    Parameters
    ----------
    zones : geomon.zones.CompiledZones

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


class DwellDetector(SubjectDetector):
    """Stays at places of concern beyond ``dwell_s``, for a fixed set of subjects.

    Parameters
    ----------
    sets : ThresholdSets
        The rules resolved per subject and period (:class:`geomon.periods.ThresholdSets`).
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
    frame : geomon.crs.LocalFrame, optional
        Frame of the coordinates, to place alerts in lon/lat (NaN without it).

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
    """

    def __init__(self, sets: ThresholdSets, subject_ids, subject_level, subject_office, concern_geometry_m,
                 concern_ids, *, concern_subjects=None, concern_category=None, frame=None):
        super().__init__(sets, subject_ids, subject_level, subject_office)
        self.concern_ids = np.asarray(concern_ids, dtype=object)
        self._geoms = np.asarray(concern_geometry_m, dtype=object)
        n_places = len(self.concern_ids)
        self.concern_category = (np.full(n_places, None, dtype=object) if concern_category is None
                                 else np.asarray(concern_category, dtype=object))
        code = {s: i for i, s in enumerate(self.subject_ids)}
        self._applies = np.ones((len(self.subject_ids), n_places), bool)
        for p, subjects in enumerate(concern_subjects or [None] * n_places):
            if subjects is not None:
                self._applies[:, p] = False
                self._applies[[code[s] for s in subjects if s in code], p] = True
        self._tree = shapely.STRtree(self._geoms)
        self.frame = frame
        self._dwell_ms = sets.per_set("dwell_s", 900, 1000, dtype=np.int64)
        self._radius_m = sets.per_set("dwell_radius_m", 50.0)
        self._gap_ms = sets.per_set("lost_contact_s", 1800, 1000, dtype=np.int64)
        self._state = np.zeros((len(self.subject_ids), _dw.N_DWELL_STATE))

    def place_of_fixes(self, code: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
        """Nearest place of concern applying to each fix's subject within ``radius_m`` of it (-1: none)."""
        out = np.full(code.size, -1, np.int64)
        if code.size == 0 or self.concern_ids.size == 0:
            return out
        points = shapely.points(x_m, y_m)
        fi, pi = self._tree.query(points, predicate="dwithin", distance=radius_m)
        keep = self._applies[code[fi], pi]
        fi, pi = fi[keep], pi[keep]
        distance = shapely.distance(points[fi], self._geoms[pi])
        order = np.lexsort((pi, distance, fi))   # per fix, nearest first (ties: first place)
        fi, pi = fi[order], pi[order]
        first = np.r_[True, fi[1:] != fi[:-1]] if fi.size else np.zeros(0, bool)
        out[fi[first]] = pi[first]
        return out

    def step(self, code: np.ndarray, t_ms: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, tset: np.ndarray,
             now_ms: int | None = None) -> pa.Table:
        """Advance over one batch of fixes, sorted by (subject code, time); return alert events.

        ``x_m``/``y_m`` are positions in the places' frame (m); the Monitor
        should pass its fused positions of decidable fixes (a vague cell fix
        hundreds of metres off would end any stay). ``now_ms`` raises the
        watermark beyond the batch's newest fix; by default the watermark is
        the newest fix seen so far.
        """
        code = np.asarray(code, np.int64)
        t_ms = np.asarray(t_ms, np.int64)
        tset = np.asarray(tset, np.int64)
        x_m = np.ascontiguousarray(x_m, dtype=np.float64)
        y_m = np.ascontiguousarray(y_m, dtype=np.float64)
        self._advance(t_ms, now_ms)
        _, offsets, subjects = subject_runs(code)
        radius = self._radius_m[tset]
        finite = np.isfinite(x_m) & np.isfinite(y_m)
        place = np.full(code.size, -1, np.int64)
        place[finite] = self.place_of_fixes(code[finite], x_m[finite], y_m[finite], radius[finite])
        rec_i, rec_f = _dw.dwell_step(offsets, subjects, t_ms, x_m, y_m, place, radius, self._dwell_ms[tset],
                                      self._gap_ms[tset], tset, self.watermark_ms, self._state)
        return self._alerts(rec_i, rec_f)

    def _alerts(self, rec_i: np.ndarray, rec_f: np.ndarray) -> pa.Table:
        subj = rec_i[:, _dw.REC_SUBJECT]
        place = rec_i[:, _dw.REC_PLACE]
        onset = rec_i[:, _dw.REC_ONSET]
        confirm = rec_i[:, _dw.REC_CONFIRM]
        end = rec_i[:, _dw.REC_END]
        sets = rec_i[:, _dw.REC_SET]
        level = self.subject_level[subj]
        category = self.concern_category[place]
        severity = np.where((level == "strict") | (category == "victim_home"), "high", "medium")
        if self.frame is not None and rec_f.shape[0]:
            lon, lat = self.frame.unproject(rec_f[:, 0], rec_f[:, 1])
        else:
            lon = lat = np.full(rec_f.shape[0], np.nan)
        details = [details_json("ended" if e >= 0 else "confirmed", lv, self._sets.profile[s], self._sets.period[s],
                                zone_category=cat, duration_s=((e if e >= 0 else c) - o) / 1000.0, n_fixes=int(k))
                   for e, c, o, k, lv, s, cat in zip(end, confirm, onset, rec_i[:, _dw.REC_COUNT], level, sets,
                                                     category)]
        return alert_table(["dwell_concern"] * len(onset), severity, self.subject_ids[subj], self.concern_ids[place],
                           self.subject_office[subj], onset, confirm, end, lon, lat, details, self.run_id)
