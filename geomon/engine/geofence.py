"""Geofencing: leaving the permitted area (越界) and entering a forbidden zone, on the fused track.

:class:`GeofenceDetector` asks the zone indexes which zones each fused, decidable fix violates (and by how
much, and how surely, from its covariance), which forbidden zones each segment between consecutive
reported fixes passes through, and advances the per (subject, zone) state machine of
:mod:`geomon.kernels.geofence`. Its state (each subject's last reported fix, the pending and open
entries) is carried between batches in named arrays (:class:`GeofenceState`), so any split of a stream
into consecutive batches yields the same alerts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

from geomon.engine.contract import (
    Batch,
    Detector,
    EngineContext,
    FusedFixes,
    add_seconds,
    global_state,
    register,
    subject_state,
)
from geomon.engine.geofence_rows import ALERT_KIND, geofence_alert_table
from geomon.engine.rows import csr_offsets as _csr
from geomon.engine.rows import subject_runs
from geomon.engine.zone_distance import pair_signed_distance
from geomon.engine.zones import RoleIndex
from geomon.kernels import crossing as _crossing
from geomon.kernels import evidence as _ev
from geomon.kernels import geofence as _gf
from geomon.kernels import zone_probability as _prob
from geomon.kernels._pool import split
from geomon.schema import ALERT_SCHEMA

__all__ = ["GeofenceDetector", "GeofenceState"]

#: Nearest-boundary search radius in standard deviations: beyond it the
#: probability of the other side is below 1e-23.
_N_SIGMA = 10.0


@dataclass(frozen=True)
class _Thresholds:
    """Rule values the kernels read, indexed by threshold set (see :class:`geomon.rules.periods.ThresholdSets`)."""

    confirm_fixes: np.ndarray
    confirm_ms: np.ndarray
    buffer_m: np.ndarray
    max_speed_mps: np.ndarray
    breach_p: np.ndarray
    clear_p: np.ndarray
    by_fixes: np.ndarray
    budget: np.ndarray
    depth_m: np.ndarray
    gross_p: np.ndarray
    gross_reach_m: np.ndarray
    profile: np.ndarray
    period: np.ndarray


@dataclass
class GeofenceState:
    """Each subject's last reported fix (time, metric position), and the open and pending (subject, zone)
    entries of the geofence kernel (rows of ``_gf.ENT_*`` columns, sorted by subject)."""

    last_t: np.ndarray = subject_state()
    last_x: np.ndarray = subject_state()
    last_y: np.ndarray = subject_state()
    #: The trusted 1-sigma (m) of that fix.
    last_sigma: np.ndarray = subject_state()
    entries_i: np.ndarray = global_state()
    entries_f: np.ndarray = global_state()

    @classmethod
    def new(cls, n: int) -> GeofenceState:
        return cls(last_t=np.full(n, -1, np.int64), last_x=np.full(n, np.nan), last_y=np.full(n, np.nan),
                   last_sigma=np.full(n, np.nan), entries_i=np.zeros((0, _gf.N_ENT_INT), np.int64),
                   entries_f=np.zeros((0, _gf.N_ENT_FLOAT)))


@register
class GeofenceDetector(Detector):
    """Permitted-area exits and forbidden-zone entries (and crossings) for a fixed set of subjects.

    Parameters
    ----------
    ctx : EngineContext
        Subjects, compiled zones and rules. ``ctx.options["crossing_min_m"]`` (default 5 m): a segment
        between two fixes must run at least this far inside a forbidden zone to count as a crossing;
        segments spanning a silence longer than ``ctx.max_gap_s`` are not tested (the path is unknown).

    Notes
    -----
    Each decidable fix carries, for every zone whose side it may decide, its evidence for a breach: the
    log-likelihood ratio of "at least ``breach_depth_m`` on the wrong side" against "on the boundary"
    (:mod:`geomon.kernels.evidence`), from the fused position's depth across the boundary and, along its
    normal, the larger of the fused standard deviation and the fix's own (a fix's evidence is one fix's
    worth, however many fixes the fused position averages), with gross errors of ``breach_gross_p`` within
    ``breach_gross_reach_m``. In a forbidden zone the depth of concern is at most half its equal-area radius,
    and the breach no deeper than that radius.
    A breach is confirmed when Page's CUSUM of that evidence reaches the threshold that
    ``breach_budget_per_day`` false alerts per subject-day allow (docs/alerts.md). With
    ``breach_by_fixes`` the legacy rule decides instead: a fix is a violation when on the wrong side with
    probability at least ``breach_p`` and at least the zone's buffer deep, and confirmation takes
    ``confirm_fixes`` fixes and ``confirm_s`` seconds. Each alert's ``details`` name the ``profile`` and
    ``period`` in force at its confirming fix, the rule and the evidence.
    """

    name = "geofence"
    kinds = tuple(ALERT_KIND.values())
    rule_keys = ("confirm_fixes", "confirm_s", "buffer_m", "max_speed_mps", "breach_p", "clear_p", "breach_by_fixes",
                 "breach_budget_per_day", "breach_depth_m", "breach_gross_p", "breach_gross_reach_m", "breach_delay_s",
                 "breach_delay_depth_m", "breach_delay_sigma_m", "breach_delay_interval_s")
    reads = "fused"
    selectable = False
    State = GeofenceState

    def __init__(self, ctx: EngineContext):
        self.zones = ctx.zones
        self.subject_ids, self.subject_level, self.subject_office = (ctx.subject_ids, ctx.subject_level,
                                                                     ctx.subject_office)
        self.subject_code = {s: i for i, s in enumerate(self.subject_ids)}
        self.crossing_min_m = float(ctx.options.get("crossing_min_m", 5.0))
        self.max_gap_ms = int(ctx.max_gap_s * 1000)
        sets = ctx.sets
        self._th = _Thresholds(
            confirm_fixes=sets.per_set("confirm_fixes", dtype=np.int64),
            confirm_ms=sets.per_set("confirm_s", scale=1000, dtype=np.int64),
            buffer_m=sets.per_set("buffer_m"),
            max_speed_mps=sets.per_set("max_speed_mps"),
            breach_p=sets.per_set("breach_p"),
            clear_p=sets.per_set("clear_p"),
            by_fixes=sets.per_set("breach_by_fixes", dtype=np.bool_),
            budget=sets.per_set("breach_budget_per_day"),
            depth_m=sets.per_set("breach_depth_m"),
            gross_p=sets.per_set("breach_gross_p"),
            gross_reach_m=sets.per_set("breach_gross_reach_m"),
            profile=sets.profile,
            period=sets.period,
        )
        self._check_evidence_rules(sets)
        self._z = sets.normal_quantile("breach_p")
        self._permitted_of = ctx.permitted_of
        self._assign_keys = self.zones.assignment_keys(self.subject_code)
        self._zone_half_radius = self._half_radius()
        # The depth a violation reports is measured up to the deepest buffer any zone or threshold set has, or
        # three times the deepest depth of concern (the evidence of a fix that deep is the most it can be),
        # never a batch's own (the reported depth must not depend on how the stream was cut).
        own = self.zones.buffer_m
        self._depth_cap_m = float(max(np.max(own, initial=0.0, where=np.isfinite(own)),
                                      np.max(self._th.buffer_m, initial=0.0),
                                      3.0 * np.max(self._th.depth_m, initial=0.0)))
        #: Local index in the forbidden role of each global zone code, -1 for other zones.
        self._forbidden_local = np.full(self.zones.n_zones, -1, np.int64)
        self._forbidden_local[self.zones.forbidden.codes] = np.arange(self.zones.forbidden.codes.size)
        self.state = GeofenceState.new(len(self.subject_ids))
        #: Seconds spent per step, added to by :meth:`step` (a Monitor hands it its own dict).
        self.timings: dict[str, float] = {}
        #: Written into every alert.
        self.run_id = ""

    def _check_evidence_rules(self, sets) -> None:
        """The evidence's rules must describe a model (a positive budget, a gross share in (0, 1), a reach at least
        twice the depth of concern) and its budget keep the stated longest delay
        (:func:`geomon.kernels.evidence.expected_delay_s`)."""
        th = self._th
        delay, depth, sigma, interval = (sets.per_set(k) for k in (
            "breach_delay_s", "breach_delay_depth_m", "breach_delay_sigma_m", "breach_delay_interval_s"))
        for i in np.flatnonzero(~th.by_fixes):
            where = f"threshold set {i} (profile {th.profile[i]!r}, period {th.period[i]!r})"
            if not th.budget[i] > 0:
                raise ValueError(f"{where}: breach_budget_per_day must be positive, got {th.budget[i]!r}")
            if not 0 < th.gross_p[i] < 1:
                raise ValueError(f"{where}: breach_gross_p must be within (0, 1), got {th.gross_p[i]!r}")
            if not th.depth_m[i] > 0 or not th.gross_reach_m[i] >= 2 * th.depth_m[i]:
                raise ValueError(f"{where}: breach_depth_m must be positive and breach_gross_reach_m at least "
                                 f"twice it, got {th.depth_m[i]!r} and {th.gross_reach_m[i]!r}")
            if not (sigma[i] > 0 and interval[i] > 0 and depth[i] > 0 and delay[i] > 0):
                raise ValueError(f"{where}: breach_delay_s, breach_delay_depth_m, breach_delay_sigma_m and "
                                 f"breach_delay_interval_s must be positive")
            expected = _ev.expected_delay_s(th.budget[i], interval[i], th.depth_m[i], th.gross_p[i],
                                            th.gross_reach_m[i], depth[i], sigma[i])
            if expected > delay[i]:
                raise ValueError(
                    f"{where}: breach_budget_per_day {th.budget[i]:g} confirms a breach {depth[i]:g} m deep "
                    f"(sigma {sigma[i]:g} m, a fix every {interval[i]:g} s) in about {expected:.0f} s on average, "
                    f"longer than breach_delay_s {delay[i]:g}: raise the budget or breach_delay_s, or lower "
                    f"breach_depth_m")

    @classmethod
    def from_context(cls, ctx: EngineContext) -> GeofenceDetector:
        return cls(ctx)

    def detect(self, batch: Batch) -> pa.Table:
        """The fused, decidable fixes: never a raw fix, never one vaguer than ``max_accuracy_m``."""
        self.run_id = batch.run_id
        return self.step(batch.fused) if len(batch.fused) else _EMPTY

    def _half_radius(self) -> np.ndarray:
        """Half the equal-area radius of each zone: the deepest a buffer may reach into it."""
        area = shapely.area(self.zones.geometry_m) if self.zones.n_zones else np.zeros(0)
        return 0.5 * np.sqrt(np.asarray(area, dtype=np.float64) / np.pi)

    def _tick(self, step: str, since: float) -> float:
        return add_seconds(self.timings, step, since)

    def _applies(self, fix_code: np.ndarray, zone_code: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
        """Does each pair's zone apply to the subject (assignment) at that time (schedule)?"""
        keys = fix_code * self.zones.n_zones + zone_code
        assigned = self.zones.applies_to_all[zone_code] | np.isin(keys, self._assign_keys)
        return assigned & self.zones.windows.active(t_ms, zone_code)

    def _forbidden_hits(self, f: FusedFixes, offsets: np.ndarray, runs: np.ndarray):
        role = self.zones.forbidden
        pi, zi = role.index.query_xy(f.fused_x_m, f.fused_y_m, predicate="intersects")
        pi, zi = self._with_candidates(f, offsets, runs, pi, zi)
        codes = role.codes[zi]
        ok = self._applies(f.code[pi], codes, f.t_ms[pi])
        # A fix outside every zone it is not a candidate for is compliant with no evidence: it is not listed.
        return self._wrong_side(role, f, pi[ok], zi[ok], codes[ok], outside_is_wrong=False)

    def _with_candidates(self, f: FusedFixes, offsets: np.ndarray, runs: np.ndarray, pi: np.ndarray, zi: np.ndarray):
        """The (fix, forbidden zone) pairs to judge: those inside, and every fix of a subject for each zone it
        has an entry in or is inside at some fix of the batch (the evidence needs the fixes outside too).
        ``offsets``, ``runs``: the batch's subject runs (:func:`geomon.engine.rows.subject_runs`)."""
        ent = self.state.entries_i
        local = self._forbidden_local[ent[:, _gf.ENT_ZONE]] if ent.size else np.zeros(0, np.int64)
        keep = local >= 0
        subject = np.concatenate([f.code[pi], ent[keep, _gf.ENT_SUBJECT]])
        zone = np.concatenate([zi, local[keep]])
        if subject.size == 0:
            return pi, zi
        run = np.searchsorted(runs, subject)
        here = run < runs.size
        here[here] = runs[run[here]] == subject[here]
        pairs = np.unique(np.stack([run[here], zone[here]], axis=1), axis=0)
        if pairs.size == 0:
            return pi, zi
        n = offsets[pairs[:, 0] + 1] - offsets[pairs[:, 0]]
        start = np.repeat(offsets[pairs[:, 0]] - np.r_[0, np.cumsum(n)[:-1]], n)
        fix = start + np.arange(n.sum())
        return fix.astype(np.int64), np.repeat(pairs[:, 1], n).astype(np.int64)

    def _permitted_hits(self, f: FusedFixes):
        role = self.zones.permitted
        local = self._permitted_of[f.code]
        pi = np.flatnonzero(local >= 0)
        zi = local[pi]
        return self._wrong_side(role, f, pi, zi, role.codes[zi] if pi.size else zi, outside_is_wrong=True)

    def _wrong_side(self, role: RoleIndex, f: FusedFixes, pi, zi, codes, *, outside_is_wrong: bool):
        """Hits for (fix, zone) pairs: flag, depth across, probability of the wrong side, sigma, evidence.

        A fix is a violation when it is on the wrong side with probability at
        least ``breach_p`` *and* at least the zone's buffer deep; it is
        neutral while that probability exceeds ``clear_p``; otherwise it is
        compliant. Every pair is listed, with its evidence for a breach.
        """
        tset = f.tset[pi]
        buffer = self._zone_buffer(codes, tset)
        p_in, signed, sigma = self._pair_probability(role, f, pi, zi, self._depth_cap_m)
        p_wrong = 1.0 - p_in if outside_is_wrong else p_in
        depth = -signed if outside_is_wrong else signed
        th = self._th
        violation = (p_wrong >= th.breach_p[tset]) & (depth >= buffer)
        neutral = p_wrong > np.maximum(th.clear_p[tset], 0.5)
        flag = np.where(violation, _gf.HIT_VIOLATION, np.where(neutral, _gf.HIT_NEUTRAL, _gf.HIT_COMPLIANT))
        concern, reach = th.depth_m[tset], th.gross_reach_m[tset]
        deepest = reach
        if not outside_is_wrong:
            # A zone has no point deeper than its equal-area radius: the breach's depths are those it has.
            concern = np.minimum(concern, self._zone_half_radius[codes])
            deepest = np.minimum(reach, 2.0 * self._zone_half_radius[codes])
        llr = np.empty(pi.size)
        _ev.fix_llrs(depth, np.fmax(sigma, f.sigma_m[pi]), concern, th.gross_p[tset], reach, deepest, llr)
        return pi, codes, flag, depth, p_wrong, sigma, llr

    @staticmethod
    def _pair_probability(role: RoleIndex, f: FusedFixes, pi: np.ndarray, zi: np.ndarray, min_cap_m: float):
        p, d, sigma = (np.empty(pi.size) for _ in range(3))
        ix = role.index
        cells = ix._cells.arrays()
        split(pi.size, lambda lo, hi: _prob.pair_inside_probability(
            f.fused_x_m, f.fused_y_m, f.var_x, f.var_y, f.cov_xy, pi[lo:hi], zi[lo:hi], ix._zone_grid, ix._zone_dims,
            ix._zone_cbase, *cells, _N_SIGMA, min_cap_m, p[lo:hi], d[lo:hi], sigma[lo:hi]), min_units=2_048)
        return p, d, sigma

    def _zone_buffer(self, zone_code: np.ndarray, tset: np.ndarray) -> np.ndarray:
        """Buffer of each (zone, threshold set) pair: the zone's own, else the rules'."""
        own = self.zones.buffer_m[zone_code]
        buffer = np.where(np.isnan(own), self._th.buffer_m[tset], own)
        forbidden = self.zones.kind[zone_code] == "forbidden"
        return np.where(forbidden, np.minimum(buffer, self._zone_half_radius[zone_code]), buffer)

    def _previous_fix(self, f: FusedFixes):
        """Previous reported fix of the same subject for every fix (carried across batches), NaN if unknown."""
        code, t = f.code, f.t_ms
        first = np.ones(code.size, dtype=bool)
        first[1:] = code[1:] != code[:-1]
        px = np.empty(code.size)
        py = np.empty(code.size)
        pt = np.empty(code.size, np.int64)
        px[1:], py[1:], pt[1:] = f.raw_x_m[:-1], f.raw_y_m[:-1], t[:-1]
        px[first], py[first], pt[first] = (self.state.last_x[code[first]], self.state.last_y[code[first]],
                                           self.state.last_t[code[first]])
        ps = np.empty(code.size)
        ps[1:] = f.sigma_m[:-1]
        ps[first] = self.state.last_sigma[code[first]]
        dt_ms = t - pt
        dist = np.hypot(f.raw_x_m - px, f.raw_y_m - py)
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = dist / np.maximum(dt_ms, 1) * 1000.0
        unknown = (pt < 0) | (dt_ms > self.max_gap_ms) | ~(speed <= self._th.max_speed_mps[f.tset])
        px[unknown] = np.nan
        py[unknown] = np.nan
        return px, py, ps

    def _crossings(self, f: FusedFixes):
        role = self.zones.forbidden
        if role.codes.size == 0:
            empty = np.zeros(0, np.int64)
            return np.zeros(len(f) + 1, np.int64), empty, np.zeros(0), np.zeros(0)
        px, py, ps = self._previous_fix(f)
        ix = role.index
        offsets, zone, t_in, t_out = _crossing.segment_crossings(
            px, py, f.raw_x_m, f.raw_y_m, ix._coarse, ix._gnx, ix._gny, ix._g_offsets, ix._g_zones,
            ix._zone_grid, ix._zone_dims, ix._zone_cbase, *ix._cells.arrays(),
            role.edges, role.edge_offsets, self.crossing_min_m)
        fix = np.repeat(np.arange(len(f)), np.diff(offsets))
        codes = role.codes[zone]
        ok = self._applies(f.code[fix], codes, f.t_ms[fix])
        fix, zone, codes, t_in, t_out = fix[ok], zone[ok], codes[ok], t_in[ok], t_out[ok]
        # A chord that only clips a zone's edge is what a path bending round
        # the zone (or position noise) looks like; count a crossing only when
        # the middle of its inside stretch is as deep as an entry must be, by
        # more than the chord's own uncertainty there allows (the two fixes'
        # trusted sigmas, interpolated, at the breach_p quantile): a chord
        # between two cell fixes, or from a fix an outlier threw across a
        # small zone, is not a path.
        tm = 0.5 * (t_in + t_out)
        mid_x, mid_y = px[fix] + tm * (f.raw_x_m[fix] - px[fix]), py[fix] + tm * (f.raw_y_m[fix] - py[fix])
        tset = f.tset[fix]
        buffer = self._zone_buffer(codes, tset)
        chord_sigma = np.hypot((1.0 - tm) * ps[fix], tm * f.sigma_m[fix])
        need = buffer + self._z[tset] * np.nan_to_num(chord_sigma, nan=np.inf)
        cap = float(np.max(need, initial=1.0, where=np.isfinite(need)))
        depth = pair_signed_distance(role.index, mid_x, mid_y, np.arange(fix.size), zone, cap)
        deep = depth >= need
        fix, codes, t_in, t_out = fix[deep], codes[deep], t_in[deep], t_out[deep]
        return _csr(fix, len(f)), codes, t_in, t_out

    def step(self, f: FusedFixes) -> pa.Table:
        """Advance over the fused, decidable fixes of one batch (sorted by subject code, time); alert events."""
        clock = time.perf_counter()
        _, batch_offsets, batch_subject = subject_runs(f.code)
        hits = [np.concatenate(parts) for parts in zip(self._forbidden_hits(f, batch_offsets, batch_subject),
                                                       self._permitted_hits(f))]
        fix = hits[0]
        order = np.argsort(fix, kind="stable")
        hit_zone, hit_flag = (h.astype(np.int64)[order] for h in hits[1:3])
        hit_depth, hit_p, hit_sigma, hit_llr = (h.astype(np.float64)[order] for h in hits[3:])
        hit_offsets = _csr(fix[order], len(f))
        clock = self._tick("zones", clock)
        cross_offsets, cross_zone, cross_in, cross_out = self._crossings(f)
        clock = self._tick("crossings", clock)
        ent_offsets = _csr(self.state.entries_i[:, _gf.ENT_SUBJECT], len(self.subject_ids))
        th = self._th
        new_i, new_f, rec_i, rec_f = _gf.geofence_step(
            batch_offsets, batch_subject, f.t_ms, f.fused_x_m, f.fused_y_m, f.raw_x_m, f.raw_y_m,
            hit_offsets, hit_zone, hit_flag, hit_depth, hit_p, hit_sigma, hit_llr,
            cross_offsets, cross_zone, cross_in, cross_out,
            f.tset, th.confirm_fixes, th.confirm_ms, th.by_fixes, th.budget, th.breach_p,
            self.state.entries_i, self.state.entries_f, ent_offsets,
            self.state.last_t, self.state.last_x, self.state.last_y)
        last = batch_offsets[1:] - 1
        self.state.last_sigma[batch_subject] = f.sigma_m[last]
        untouched = ~np.isin(self.state.entries_i[:, _gf.ENT_SUBJECT], batch_subject)
        ent_i = np.concatenate([self.state.entries_i[untouched], new_i])
        ent_f = np.concatenate([self.state.entries_f[untouched], new_f])
        order = np.argsort(ent_i[:, _gf.ENT_SUBJECT], kind="stable")
        self.state.entries_i, self.state.entries_f = ent_i[order], ent_f[order]
        clock = self._tick("detect", clock)
        alerts = geofence_alert_table(self, rec_i, rec_f)
        self._tick("alerts", clock)
        return alerts


def permitted_zone_of_subjects(zones, subject_code: dict) -> np.ndarray:
    """Local index (in ``zones.permitted``) of each subject's permitted area, -1 if none."""
    out = np.full(len(subject_code), -1, np.int64)
    for local, code in enumerate(zones.permitted.codes):
        if zones.applies_to_all[code]:
            out[out < 0] = local
        else:
            for s in zones.assignments.get(int(code), ()):
                if s in subject_code and out[subject_code[s]] < 0:
                    out[subject_code[s]] = local
    return out


_EMPTY = ALERT_SCHEMA.empty_table()
