"""The Monitor: the stateful engine that turns batches of fixes into geofence alerts.

``Monitor(zones, subjects, rules).process(batch)`` validates and projects a
batch of fixes, asks the zone indexes which zones each fix violates (and by how
much) and which forbidden zones each segment between consecutive fixes passes
through, and advances the per (subject, zone) state machine of
:mod:`geomon.kernels.geofence`. State (each subject's last fix, pending and open
alerts) is carried between calls in numpy arrays, so any split of a stream into
consecutive batches yields the same alerts.

Alerts come out as a pyarrow Table in :data:`geomon.store.alert_store.ALERT_SCHEMA`. An
alert appears when it is confirmed and again, with ``ended_ts`` set, when it
ends; the store keeps one row per ``alert_id``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geomon.kernels import boundary_distance as _dist
from geomon.kernels import crossing as _crossing
from geomon.kernels import fusion as _kf
from geomon.kernels import geofence as _gf
from geomon.kernels import zone_probability as _prob
from geomon.engine.alert_ids import alert_id  # noqa: F401  (re-exported: geomon.engine.monitor.alert_id)
from geomon.engine.detectors import DEFAULT_DETECTORS, Behaviour
from geomon.io.cameras import CameraLayer, load_cameras
from geomon.engine.rows import subject_runs
from geomon.engine.geofence_rows import ALERT_KIND, geofence_alert_table, location_office  # noqa: F401  (ALERT_KIND)
from geomon.tracks.fusion import CORRELATED_CODES, SOURCE_CODE, correlated_run_length, sigma_from_codes, trusted_sigma_m
from geomon.io.load import load_fixes, load_rules, load_subjects, load_zones
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.rules.load import Rules, default_rules
from geomon.engine.meetings import MeetingWatch
from geomon.rules.periods import ThresholdSets
from geomon.schema import QUARANTINE_SCHEMA, TS_TYPE
from geomon.schema import ALERT_SCHEMA, TRACK_SCHEMA
from geomon.engine.zones import CompiledZones, RoleIndex, compile_zones

_SOURCES = pa.array(list(SOURCE_CODE))

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
    max_accuracy_m: np.ndarray
    breach_p: np.ndarray
    clear_p: np.ndarray
    profile: np.ndarray
    period: np.ndarray


def _as_zones(zones) -> ZoneLoad:
    return zones if isinstance(zones, ZoneLoad) else load_zones(zones)


def _as_subjects(subjects) -> SubjectLoad:
    return subjects if isinstance(subjects, SubjectLoad) else load_subjects(subjects)


def _as_rules(rules) -> Rules:
    if rules is None:
        return default_rules()
    return rules if isinstance(rules, Rules) else load_rules(rules)


class Monitor:
    """Stateful geofence engine over batches of fixes.

    Parameters
    ----------
    zones : ZoneLoad or path
        Zones (GeoJSON or GeoParquet path, or the result of
        :func:`geomon.io.load.load_zones`): ``permitted`` areas, ``forbidden``
        zones and office ``jurisdiction`` s are used.
    subjects : SubjectLoad or path
        Subjects with their supervision level and office.
    rules : Rules or path, optional
        Alert rules; :func:`geomon.rules.load.default_rules` when omitted. Each
        subject uses the profile named by its level (``strict`` or
        ``ordinary``), or ``profile`` for everyone when given (e.g.
        ``"special_period"`` around holidays). The rules' special periods
        override those values per fix, by event time (docs/rules.md).
    profile : str, optional
        Profile that overrides the levels' profiles for every subject (special
        periods still apply on top of it).
    crossing_min_m : float
        A segment between two fixes must run at least this far inside a
        forbidden zone to count as a crossing.
    max_gap_s : float
        Segments spanning a longer silence are not tested for crossings: the
        path in between is unknown.
    frame : LocalFrame, optional
        The metric frame to work in; chosen from the zones by default.
    fusion_params : dict, optional
        Overrides of :data:`geomon.kernels.fusion.DEFAULT_PARAMS`.
    tz : str
        Local time zone of night windows (a zoneinfo name or "+08:00").
    detectors : iterable of str
        Behaviour detectors to run beside geofencing, of
        :data:`geomon.engine.detectors.DETECTORS`. By default ``contact`` (lost
        contact, stuck device, location degraded), ``dwell`` (stays at places
        of concern, unexplained night stays, and the stays table of
        :meth:`take_stays`) and ``night`` (curfew, night activity);
        ``checkins`` on request, for deployments that use app check-ins.
    cameras : path, table or geomon.io.cameras.CameraLayer, optional
        Surveillance cameras (``camera_id``, ``lon``, ``lat``); every alert's
        ``details`` then lists the nearest ones within 300 m (``cameras``).
    concern : iterable of str or dict, optional
        Persons of concern (as :func:`geomon.frequent_contacts` takes them, or
        :func:`geomon.run.meetings.load_concern` reads them): ``frequent_contact``
        alerts (:mod:`geomon.engine.meetings`). Their fixes are admitted and
        fused beside the subjects' but never judged.
    protections : iterable of dict, optional
        Protection orders (:func:`geomon.run.meetings.load_protections`):
        ``victim_warning`` and ``victim_breach`` alerts; the protected persons'
        fixes are admitted like the persons of concern's.
    subject_pairs : bool
        Also count meetings between two supervised subjects as frequent contact.
    collect : iterable of str, optional
        Instead of judging meetings here: the people (subjects or others,
        admitted like persons of concern) whose fused positions
        ``self.meetings.take_positions()`` hands over, for a distributed
        replay that searches them by time window (:mod:`geomon.run.distributed`).

    Notes
    -----
    Decisions read the causal fused track (:func:`geomon.kernels.fusion.fuse_step`,
    state carried per subject), never raw fixes: each fix's fused position and
    covariance give the probability of the wrong side of each boundary. Fixes
    vaguer than ``max_accuracy_m`` still feed the filter but neither confirm
    nor clear a breach.

    Thresholds are looked up per fix, by the fix's event time: a fix inside a
    special period that covers its subject is judged by the period's values.
    Confirmation and end use the ``confirm_fixes``/``confirm_s`` of the fix
    that confirms or ends; each alert's ``details`` name the ``profile`` and
    ``period`` (or null) in force at its confirming fix.

    Examples
    --------
    >>> monitor = Monitor("data/sample/zones.geojson", "data/sample/subjects.csv")
    >>> alerts = monitor.process("data/sample/fixes.parquet")   # from the repository root
    >>> sorted(set(alerts.column("kind").to_pylist()))
    ['curfew_breach', 'dwell_concern', 'forbidden_entry', 'night_activity', 'night_stay', 'permitted_exit']
    """

    def __init__(self, zones, subjects, rules=None, *, profile: str | None = None,
                 crossing_min_m: float = 5.0, max_gap_s: float = 120.0, frame=None, fusion_params=None,
                 tz: str = "Asia/Shanghai", detectors=DEFAULT_DETECTORS, cameras=None, concern=None,
                 protections=None, subject_pairs: bool = False, collect=None):
        self.zones: CompiledZones = compile_zones(_as_zones(zones), frame)
        #: Keep each batch's fused positions for :meth:`take_tracks` (the incident look-back reads them).
        self.keep_tracks = False
        self._tracks: list = []
        #: Camera layer whose nearest cameras every alert names (geomon/io/cameras.py), or None.
        self.cameras = cameras if cameras is None or isinstance(cameras, CameraLayer) else load_cameras(cameras)
        subject_load = _as_subjects(subjects)
        self.rules = _as_rules(rules)
        table = subject_load.table
        self.subject_ids = np.array(table.column("subject_id").to_pylist(), dtype=object)
        self._subject_ids_arrow = table.column("subject_id").combine_chunks()
        self.subject_level = np.array(table.column("level").to_pylist(), dtype=object)
        self.subject_office = np.array(table.column("office_id").to_pylist(), dtype=object)
        self.subject_code = {s: i for i, s in enumerate(self.subject_ids)}
        self.crossing_min_m = float(crossing_min_m)
        self.max_gap_ms = int(max_gap_s * 1000)
        self._sets = ThresholdSets(self.rules, [profile or level for level in self.subject_level],
                                   self.subject_ids, self.subject_office)

        self._thresholds = self._set_thresholds()
        #: Frequent contact and victim protection (geomon/engine/meetings.py); watches nothing without a concern list
        #: or protection orders.
        self.meetings = MeetingWatch(
            self.subject_ids, self.subject_level, self.subject_office,
            [self.rules.profile(profile or level) for level in self.subject_level], concern=concern,
            protections=protections, frame=self.zones.frame, max_gap_s=max_gap_s, subject_pairs=subject_pairs,
            collect=collect)
        self._person_ids_arrow = pa.array(self.meetings.person_ids.tolist(), pa.string())
        self._assign_keys = self.zones.assignment_keys(self.subject_code)
        self._permitted_of = self._permitted_zone_of_subjects()
        self._zone_half_radius = self._half_radius()
        #: Lost contact, check-ins, dwell and night detectors (geomon/engine/detectors.py).
        self.behaviour = Behaviour(self, table.column("home_zone_id").to_pylist(), tz=tz, detectors=detectors,
                                   work_zone_id=table.column("work_zone_id").to_pylist())
        n = len(self.subject_ids)
        self.fusion_params = dict(fusion_params or {})
        self._fusion_state = _kf.new_state(n)
        # Per subject: time of the latest fix admitted, and the source and
        # length of the run of correlated-source fixes it ends.
        self._seen_t = np.full(n, -1, np.int64)
        self._run_source = np.full(n, -1, np.int64)
        self._run_length = np.zeros(n, np.int64)
        self._last_t = np.full(n, -1, np.int64)
        self._last_x = np.full(n, np.nan)
        self._last_y = np.full(n, np.nan)
        self._ent_i = np.zeros((0, _gf.N_ENT_INT), np.int64)
        self._ent_f = np.zeros((0, _gf.N_ENT_FLOAT))
        self._quarantine: list[pa.Table] = []
        self.n_read = 0
        self.n_accepted = 0
        self.n_quarantined = 0
        #: Accepted fixes too vague (accuracy_m > max_accuracy_m) to decide a boundary.
        self.n_vague = 0
        self.timings: dict[str, float] = {}
        #: Written into every alert; :func:`geomon.run.replay.replay` sets it to the store's run id.
        self.run_id = ""

    # ----------------------------------------------------------------- setup

    def _set_thresholds(self) -> _Thresholds:
        per_set = self._sets.per_set
        return _Thresholds(
            confirm_fixes=per_set("confirm_fixes", 3, dtype=np.int64),
            confirm_ms=per_set("confirm_s", 30, 1000, dtype=np.int64),
            buffer_m=per_set("buffer_m", 20.0),
            max_speed_mps=per_set("max_speed_mps", 70.0),
            max_accuracy_m=per_set("max_accuracy_m", np.inf),
            breach_p=per_set("breach_p", 0.95),
            clear_p=per_set("clear_p", 0.5),
            profile=self._sets.profile,
            period=self._sets.period,
        )

    def _permitted_zone_of_subjects(self) -> np.ndarray:
        """Local index (in the permitted RoleIndex) of each subject's permitted area, -1 if none."""
        z = self.zones
        out = np.full(len(self.subject_ids), -1, np.int64)
        for local, code in enumerate(z.permitted.codes):
            if z.applies_to_all[code]:
                out[out < 0] = local
            else:
                for s in z.assignments.get(int(code), ()):
                    if s in self.subject_code and out[self.subject_code[s]] < 0:
                        out[self.subject_code[s]] = local
        return out

    def _half_radius(self) -> np.ndarray:
        """Half the equal-area radius of each zone: the deepest a buffer may reach into it."""
        area = shapely.area(self.zones.geometry_m) if self.zones.n_zones else np.zeros(0)
        return 0.5 * np.sqrt(np.asarray(area, dtype=np.float64) / np.pi)

    # ----------------------------------------------------------------- public

    @property
    def quarantine(self) -> pa.Table:
        """Every row refused (by the loader or by the Monitor) and not yet taken, in the quarantine schema."""
        if not self._quarantine:
            return QUARANTINE_SCHEMA.empty_table()
        return pa.concat_tables(self._quarantine)

    def take_quarantine(self) -> pa.Table:
        """The rows refused since the last call (live operation stores them with each micro-batch)."""
        parts, self._quarantine = self._quarantine, []
        return pa.concat_tables(parts) if parts else QUARANTINE_SCHEMA.empty_table()

    def process(self, batch, *, name: str | None = None, now_ms: int | None = None) -> pa.Table:
        """Validate, project and run one batch of fixes; return the alert events it produced.

        Parameters
        ----------
        batch : pyarrow.Table, path or FixLoad
            Fixes in the schema of :data:`geomon.schema.FIX_SCHEMA` (validated
            with :func:`geomon.io.load.load_fixes` unless already loaded). Each
            subject's fixes must come in time order across batches; a fix older
            than the subject's previous one is quarantined as ``late_fix``.
        name : str, optional
            Source name used in the quarantine.
        now_ms : int, optional
            Event-time watermark (ms): the stream is complete up to it, so a
            subject silent since before it may be lost. By default the newest
            fix seen so far (a replay); live operation passes the clock less
            the allowed lateness, so silence is noticed between fixes.

        Returns
        -------
        pyarrow.Table
            Alert events in :data:`geomon.store.alert_store.ALERT_SCHEMA`.
        """
        clock = time.perf_counter()
        load = batch if isinstance(batch, FixLoad) else load_fixes(batch, name=name)
        self._tick("validate", clock)
        self.n_read += load.n_read
        if load.n_quarantined:
            self._quarantine.append(load.quarantine)
        fixes, others = self._admit(load)
        self.n_accepted += len(fixes["t"]) + len(others["t"])
        self.n_quarantined = self.n_read - self.n_accepted
        clock = time.perf_counter()
        events = self.behaviour.admitted(fixes, now_ms, self.run_id)
        clock = self._tick("behaviour", clock)
        fused, track = self._fuse(fixes) if len(fixes["t"]) else (Behaviour.empty_fused(), None)
        clock = time.perf_counter()
        events += self.behaviour.fused(fused, self.run_id)
        clock = self._tick("behaviour", clock)
        if self.meetings.active:
            events.append(self._meet(track, others, now_ms))
            self._tick("meetings", clock)
        if len(fused["t"]):
            events.insert(0, self._run(fused))
        events = [e for e in events if e.num_rows]
        out = self._route(pa.concat_tables(events)) if events else ALERT_SCHEMA.empty_table()
        return out if self.cameras is None else self.cameras.annotate(out)

    def _route(self, alerts: pa.Table) -> pa.Table:
        """Fill ``location_office_id``, the office whose jurisdiction each alert's place lies in, for every kind."""
        office = alerts.column("location_office_id").to_numpy(zero_copy_only=False).astype(object)
        lon = alerts.column("lon").to_numpy(zero_copy_only=False)
        lat = alerts.column("lat").to_numpy(zero_copy_only=False)
        todo = np.flatnonzero(np.equal(office, None) & np.isfinite(lon) & np.isfinite(lat))
        if todo.size == 0:
            return alerts
        x, y = self.zones.frame.project(lon[todo], lat[todo])
        office[todo] = location_office(self, np.asarray(x, np.float64), np.asarray(y, np.float64))
        i = alerts.schema.get_field_index("location_office_id")
        return alerts.set_column(i, alerts.schema.field(i), pa.array(office.tolist(), pa.string()))

    def take_tracks(self) -> pa.Table:
        """Fused positions of the fixes admitted since the last call (:data:`geomon.store.alert_store.TRACK_SCHEMA`).

        Kept only while :attr:`keep_tracks` is true (the replay sets it when
        it writes to a store), for the incident look-back (:mod:`geomon.office.lookback`).
        """
        parts, self._tracks = self._tracks, []
        if not parts:
            return TRACK_SCHEMA.empty_table()
        code, t, x, y, sigma = (np.concatenate(p) for p in zip(*parts))
        lon, lat = self.zones.frame.unproject(x, y)
        return pa.table({"subject_id": pa.array(self.subject_ids[code].tolist(), pa.string()),
                         "ts": pa.array(t, pa.int64()).cast(TS_TYPE),
                         "lon": pa.array(np.asarray(lon, np.float64)), "lat": pa.array(np.asarray(lat, np.float64)),
                         "sigma_m": pa.array(np.nan_to_num(sigma, nan=1e9, posinf=1e9))}, schema=TRACK_SCHEMA)

    def take_stays(self) -> pa.Table:
        """The stays that ended since the last call, in :data:`geomon.store.alert_store.STAY_SCHEMA`.

        Stays come from the causal walk of the ``dwell`` detector over the
        fused, decidable fixes (:class:`geomon.engine.stays.DwellDetector`), so they
        are the same for any batching; without ``dwell`` among the detectors
        the table stays empty. Take them after each :meth:`process` (the
        replay writes them to the store's ``staypoints`` table).
        """
        return self.behaviour.take_stays()

    # ----------------------------------------------------------------- steps

    def _tick(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + (now - since)
        return now

    def _admit(self, load: FixLoad) -> tuple[dict, dict]:
        """Person codes, time order and lateness; refused rows go to the quarantine.

        Returns the subjects' fixes and the other people's (persons of concern,
        protected persons: codes from 0, in :attr:`meetings`' numbering less
        the number of subjects).
        """
        clock = time.perf_counter()
        table = load.table
        rows = load.input_row if load.input_row is not None else np.arange(table.num_rows, dtype=np.int64)
        ids = table.column("subject_id")
        n = len(self.subject_ids)
        others = self.meetings
        if table.num_rows * 8 < len(self._person_ids_arrow):
            # A micro-batch of a large roster: looking up its few ids beats hashing the whole roster again.
            lookup = others.code_of.get
            code = np.fromiter((lookup(s, -1) for s in ids.to_pylist()), np.int64, table.num_rows)
        else:
            code = pc.fill_null(pc.index_in(ids, value_set=self._person_ids_arrow), -1)
            code = code.to_numpy(zero_copy_only=False).astype(np.int64)
        t = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        unknown = code < 0
        subject, other = ~unknown & (code < n), code >= n
        seen = np.full(len(code), -1, np.int64)
        seen[subject] = self._seen_t[code[subject]]
        seen[other] = others._seen_t[code[other] - n]
        late = ~unknown & (t < seen)
        self._refuse(load, rows, unknown, "subject_id", "subject_unknown")
        self._refuse(load, rows, late, "ts", "late_fix")
        keep = np.flatnonzero(~(unknown | late))
        order = keep[np.lexsort((t[keep], code[keep]))]
        code, t = code[order], t[order]
        if order.size:
            last = np.r_[code[1:] != code[:-1], True]
            mine = last & (code < n)
            self._seen_t[code[mine]] = t[mine]
            theirs = last & (code >= n)
            others._seen_t[code[theirs] - n] = t[theirs]
        lon = table.column("lon").to_numpy()[order]
        lat = table.column("lat").to_numpy()[order]
        clock = self._tick("admit", clock)
        x, y = self.zones.frame.project(lon, lat)
        self._tick("project", clock)
        acc = table.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)[order]
        # Loaded fixes have valid sources: codes into SOURCES, for cheap comparisons.
        source = pc.index_in(table.column("source"), value_set=_SOURCES).to_numpy(zero_copy_only=False)[order]
        f = {"code": code, "t": t, "x": np.ascontiguousarray(x), "y": np.ascontiguousarray(y), "lon": lon,
             "lat": lat, "accuracy_m": acc, "source": source}
        split = int(np.searchsorted(code, n))   # sorted by code: the subjects' fixes come first
        mine = {k: v[:split] for k, v in f.items()}
        theirs = {k: v[split:] for k, v in f.items()}
        theirs["code"] = theirs["code"] - n
        mine["tset"] = self._sets.set_of_fixes(mine["code"], mine["t"])
        return mine, theirs

    def _noise(self, bank, f: dict, first: np.ndarray) -> np.ndarray:
        """Per-axis sigma of each fix as :func:`geomon.fuse` takes it, correlated-source runs carried across batches."""
        code, source = f["code"], f["source"].astype(np.int64)
        run = correlated_run_length(source, first, bank._run_source[code], bank._run_length[code])
        last = np.r_[first[1:], True]
        correlated = np.isin(source[last], CORRELATED_CODES)
        bank._run_source[code[last]] = np.where(correlated, source[last], -1)
        bank._run_length[code[last]] = np.where(correlated, run[last], 0)
        return sigma_from_codes(f["accuracy_m"], source) * np.sqrt(run)

    def _filter(self, bank, f: dict):
        """The causal filter over fixes sorted by code, state carried in ``bank`` (this Monitor, or the other
        people's in :attr:`meetings`): positions, covariance, doubt, jump spread and the trusted 1-sigma."""
        code = f["code"]
        first, offsets, subjects = subject_runs(code)
        sigma = self._noise(bank, f, first)
        state = np.ascontiguousarray(bank._fusion_state[subjects])
        x, y, var_x, var_y, cov_xy, _, _, _, _, doubt, jump_var = _kf.fuse_step(
            offsets, f["t"], f["x"], f["y"], sigma, state, **self.fusion_params)
        bank._fusion_state[subjects] = state
        # The 1-sigma decisions lean on (night, stays, meetings) and the stored tracks carry: the fused one (its
        # jump spread included), never below the fix's own accuracy.
        satellite = f["source"] == SOURCE_CODE["gnss"]
        trusted = trusted_sigma_m(np.sqrt(0.5 * (var_x + var_y)), f["accuracy_m"], satellite)
        return x, y, var_x, var_y, cov_xy, doubt, jump_var, trusted

    def _fuse(self, f: dict) -> tuple[dict, tuple]:
        """Replace each fix's position by the causal fused one, with its covariance; keep the decidable fixes.

        Also returns the fused track (code, t, x, y, trusted sigma) of every fix with a position.
        """
        clock = time.perf_counter()
        code = f["code"]
        x, y, var_x, var_y, cov_xy, doubt, jump_var, trusted = self._filter(self, f)
        ok = np.isfinite(x) & np.isfinite(y)
        track = (code[ok], f["t"][ok], x[ok], y[ok], trusted[ok])
        if self.keep_tracks:
            self._tracks.append(track)
        # Fixes vaguer than the profile's max_accuracy_m (cell fixes, mostly)
        # feed the filter but cannot confirm or clear a boundary decision.
        decide = np.isfinite(x) & ~(f["accuracy_m"] > self._thresholds.max_accuracy_m[f["tset"]])
        self.n_vague += int(code.size - decide.sum())
        self._tick("fuse", clock)
        # Decisions weigh two places: where the track is (its Gaussian part,
        # without the spread that covers the doubt) with probability 1 - doubt,
        # and where it jumped from, compliant, with probability doubt.
        return {"code": code[decide], "t": f["t"][decide], "x": x[decide], "y": y[decide],
                "rx": f["x"][decide], "ry": f["y"][decide],
                "var_x": (var_x - jump_var)[decide], "var_y": (var_y - jump_var)[decide], "cov_xy": cov_xy[decide],
                "doubt": doubt[decide], "jump_var": jump_var[decide], "accuracy_m": f["accuracy_m"][decide],
                "tset": f["tset"][decide], "sigma": trusted[decide]}, track

    def _meet(self, track, others: dict, now_ms: int | None) -> pa.Table:
        """Meeting alerts: the subjects' fused track and the other people's, filtered here, to the watch."""
        n = len(self.subject_ids)
        parts = [track] if track is not None else []
        if len(others["t"]):
            x, y, *_, trusted = self._filter(self.meetings, others)
            ok = np.isfinite(x) & np.isfinite(y)
            parts.append((others["code"][ok] + n, others["t"][ok], x[ok], y[ok], trusted[ok]))
        if parts:
            code, t, x, y, sigma = (np.concatenate(c) for c in zip(*parts))
        else:
            code, t, x, y, sigma = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0)
        self.meetings.run_id = self.run_id
        return self.meetings.step(code, t, x, y, sigma, now_ms)

    def _refuse(self, load: FixLoad, rows: np.ndarray, mask: np.ndarray, field: str, reason: str) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        raw = [json.dumps(r, default=str) for r in load.table.take(pa.array(idx)).to_pylist()]
        self._quarantine.append(pa.table({
            "source_name": pa.array([load.source_name] * idx.size, pa.string()),
            "row": pa.array(rows[idx], pa.int64()),
            "field": pa.array([field] * idx.size, pa.string()),
            "reason": pa.array([reason] * idx.size, pa.string()),
            "raw": pa.array(raw, pa.string()),
        }, schema=QUARANTINE_SCHEMA))

    def _applies(self, fix_code: np.ndarray, zone_code: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
        """Does each pair's zone apply to the subject (assignment) at that time (schedule)?"""
        keys = fix_code * self.zones.n_zones + zone_code
        assigned = self.zones.applies_to_all[zone_code] | np.isin(keys, self._assign_keys)
        return assigned & self.zones.windows.active(t_ms, zone_code)

    def _forbidden_hits(self, f: dict):
        role = self.zones.forbidden
        pi, zi = role.index.query_xy(f["x"], f["y"], predicate="intersects")
        codes = role.codes[zi]
        ok = self._applies(f["code"][pi], codes, f["t"][pi])
        # A fix outside a zone is at most 50 % likely inside it: compliant
        # for any clear_p >= 0.5, so only fixes inside need a probability.
        return self._wrong_side(role, f, pi[ok], zi[ok], codes[ok], outside_is_wrong=False)

    def _permitted_hits(self, f: dict):
        role = self.zones.permitted
        local = self._permitted_of[f["code"]]
        pi = np.flatnonzero(local >= 0)
        zi = local[pi]
        return self._wrong_side(role, f, pi, zi, role.codes[zi] if pi.size else zi, outside_is_wrong=True)

    def _wrong_side(self, role: RoleIndex, f: dict, pi, zi, codes, *, outside_is_wrong: bool):
        """Hits for (fix, zone) pairs: probability of the wrong side, depth across, flag.

        A fix is a violation when it is on the wrong side with probability at
        least ``breach_p`` *and* at least the zone's buffer deep; it is listed
        as neutral while that probability exceeds ``clear_p``; otherwise it is
        compliant (not listed).
        """
        tset = f["tset"][pi]
        buffer = self._zone_buffer(codes, tset)
        p_in, signed, sigma = self._pair_probability(role, f, pi, zi, float(buffer.max(initial=0.0)))
        p_wrong = (1.0 - p_in if outside_is_wrong else p_in) * (1.0 - f["doubt"][pi])
        depth = -signed if outside_is_wrong else signed
        th = self._thresholds
        violation = (p_wrong >= th.breach_p[tset]) & (depth >= buffer)
        listed = p_wrong > np.maximum(th.clear_p[tset], 0.5)
        flag = np.where(violation, _gf.HIT_VIOLATION, _gf.HIT_NEUTRAL)
        return pi[listed], codes[listed], flag[listed], depth[listed], p_wrong[listed], sigma[listed]

    @staticmethod
    def _pair_probability(role: RoleIndex, f: dict, pi: np.ndarray, zi: np.ndarray, min_cap_m: float):
        p, d, sigma = (np.empty(pi.size) for _ in range(3))
        ix = role.index
        _prob.pair_inside_probability(f["x"], f["y"], f["var_x"], f["var_y"], f["cov_xy"], pi, zi,
                                      ix._zone_grid, ix._zone_dims, ix._zone_cbase, *ix._cells.arrays(),
                                      _N_SIGMA, min_cap_m, p, d, sigma)
        return p, d, sigma

    def _zone_buffer(self, zone_code: np.ndarray, tset: np.ndarray) -> np.ndarray:
        """Buffer of each (zone, threshold set) pair: the zone's own, else the rules'."""
        own = self.zones.buffer_m[zone_code]
        buffer = np.where(np.isnan(own), self._thresholds.buffer_m[tset], own)
        forbidden = self.zones.kind[zone_code] == "forbidden"
        return np.where(forbidden, np.minimum(buffer, self._zone_half_radius[zone_code]), buffer)

    @staticmethod
    def _pair_distance(role: RoleIndex, f: dict, pi: np.ndarray, zi: np.ndarray, cap: float) -> np.ndarray:
        out = np.empty(pi.size)
        ix = role.index
        _dist.pair_signed_distance(f["x"], f["y"], pi, zi, ix._zone_grid, ix._zone_dims, ix._zone_cbase,
                                   *ix._cells.arrays(), cap, out)
        return out

    def _previous_fix(self, f: dict):
        """Previous reported fix of the same subject for every fix (carried across batches), NaN if unknown."""
        code, t = f["code"], f["t"]
        first = np.ones(code.size, dtype=bool)
        first[1:] = code[1:] != code[:-1]
        px = np.empty(code.size)
        py = np.empty(code.size)
        pt = np.empty(code.size, np.int64)
        px[1:], py[1:], pt[1:] = f["rx"][:-1], f["ry"][:-1], t[:-1]
        px[first], py[first], pt[first] = self._last_x[code[first]], self._last_y[code[first]], self._last_t[code[first]]
        dt_ms = t - pt
        dist = np.hypot(f["rx"] - px, f["ry"] - py)
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = dist / np.maximum(dt_ms, 1) * 1000.0
        unknown = (pt < 0) | (dt_ms > self.max_gap_ms) | ~(speed <= self._thresholds.max_speed_mps[f["tset"]])
        px[unknown] = np.nan
        py[unknown] = np.nan
        return px, py

    def _crossings(self, f: dict):
        role = self.zones.forbidden
        if role.codes.size == 0:
            empty = np.zeros(0, np.int64)
            return np.zeros(len(f["t"]) + 1, np.int64), empty, np.zeros(0), np.zeros(0)
        px, py = self._previous_fix(f)
        ix = role.index
        offsets, zone, t_in, t_out = _crossing.segment_crossings(
            px, py, f["rx"], f["ry"], ix._coarse, ix._gnx, ix._gny, ix._g_offsets, ix._g_zones,
            ix._zone_grid, ix._zone_dims, ix._zone_cbase, *ix._cells.arrays(),
            role.edges, role.edge_offsets, self.crossing_min_m)
        fix = np.repeat(np.arange(len(f["t"])), np.diff(offsets))
        codes = role.codes[zone]
        ok = self._applies(f["code"][fix], codes, f["t"][fix])
        fix, zone, codes, t_in, t_out = fix[ok], zone[ok], codes[ok], t_in[ok], t_out[ok]
        # A chord that only clips a zone's edge is what a path bending round
        # the zone (or position noise) looks like; count a crossing only when
        # the middle of its inside stretch is as deep as an entry must be.
        tm = 0.5 * (t_in + t_out)
        mid = {"x": px[fix] + tm * (f["rx"][fix] - px[fix]), "y": py[fix] + tm * (f["ry"][fix] - py[fix])}
        buffer = self._zone_buffer(codes, f["tset"][fix])
        depth = self._pair_distance(role, mid, np.arange(fix.size), zone, float(buffer.max(initial=1.0)))
        deep = depth >= buffer
        fix, codes, t_in, t_out = fix[deep], codes[deep], t_in[deep], t_out[deep]
        return _csr(fix, len(f["t"])), codes, t_in, t_out

    def _run(self, f: dict) -> pa.Table:
        clock = time.perf_counter()
        hits = [np.concatenate(parts) for parts in zip(self._forbidden_hits(f), self._permitted_hits(f))]
        fix = hits[0]
        order = np.argsort(fix, kind="stable")
        hit_zone, hit_flag = (h.astype(np.int64)[order] for h in hits[1:3])
        hit_depth, hit_p, hit_sigma = (h.astype(np.float64)[order] for h in hits[3:])
        hit_offsets = _csr(fix[order], len(f["t"]))
        clock = self._tick("zones", clock)
        cross_offsets, cross_zone, cross_in, cross_out = self._crossings(f)
        clock = self._tick("crossings", clock)
        _, batch_offsets, batch_subject = subject_runs(f["code"])
        ent_offsets = _csr(self._ent_i[:, _gf.ENT_SUBJECT], len(self.subject_ids))
        th = self._thresholds
        new_i, new_f, rec_i, rec_f = _gf.geofence_step(
            batch_offsets, batch_subject, f["t"], f["x"], f["y"], f["rx"], f["ry"],
            hit_offsets, hit_zone, hit_flag, hit_depth, hit_p, hit_sigma,
            cross_offsets, cross_zone, cross_in, cross_out,
            f["tset"], th.confirm_fixes, th.confirm_ms,
            self._ent_i, self._ent_f, ent_offsets,
            self._last_t, self._last_x, self._last_y)
        untouched = ~np.isin(self._ent_i[:, _gf.ENT_SUBJECT], batch_subject)
        ent_i = np.concatenate([self._ent_i[untouched], new_i])
        ent_f = np.concatenate([self._ent_f[untouched], new_f])
        order = np.argsort(ent_i[:, _gf.ENT_SUBJECT], kind="stable")
        self._ent_i, self._ent_f = ent_i[order], ent_f[order]
        clock = self._tick("detect", clock)
        alerts = geofence_alert_table(self, rec_i, rec_f)
        self._tick("alerts", clock)
        return alerts

def _csr(owner: np.ndarray, n: int) -> np.ndarray:
    """Offsets (n + 1) of items grouped by ``owner`` (sorted, values in [0, n))."""
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=offsets[1:])
    return offsets


def fold_alerts(events: pa.Table) -> pa.Table:
    """One row per alert_id, the last event winning (what the store keeps), sorted by id.

    ``emitted_at`` and ``run_id`` are dropped: they describe the run, not the event.
    """
    if events.num_rows == 0:
        return events.drop_columns(["emitted_at", "run_id"])
    ids = events.column("alert_id").to_pylist()
    last = {a: i for i, a in enumerate(ids)}
    keep = np.array(sorted(last.values(), key=lambda i: ids[i]), dtype=np.int64)
    return events.take(pa.array(keep)).drop_columns(["emitted_at", "run_id"])
