"""The Monitor: the stateful engine that turns batches of fixes into alerts.

``Monitor(zones, subjects, rules).process(batch)`` validates, admits and projects a batch of fixes, fuses
them into the causal track (one filter per person, state carried), and hands one typed
:class:`~geomon.engine.contract.Batch` to each detector it runs (:mod:`geomon.engine.contract`): the
geofence always, the others by name. It knows no detector by name beyond that list: the registry finds
them, and each declares its rules, its state and its alert kinds. State lives in named arrays (the
Monitor's own :class:`MonitorState` and each detector's ``state``), so any split of a stream into
consecutive batches yields the same alerts, and a checkpoint saves exactly what is declared.

Alerts come out as a pyarrow Table in :data:`geomon.schema.ALERT_SCHEMA`. An alert appears when it is
confirmed and again, with ``ended_ts`` set, when it ends; the store keeps one row per ``alert_id``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from geomon.engine.alert_ids import alert_id  # noqa: F401  (re-exported: geomon.engine.monitor.alert_id)
from geomon.engine.contract import (
    AdmittedFixes,
    Batch,
    EngineContext,
    FusedFixes,
    TrackPoints,
    add_seconds,
    global_state,
    subject_state,
)
from geomon.engine.detectors import DEFAULT_DETECTORS, resolve_detectors
from geomon.engine.fusion_stage import FusionStage
from geomon.engine.geofence import GeofenceDetector, permitted_zone_of_subjects
from geomon.engine.geofence_rows import location_office
from geomon.engine.meetings import MeetingWatch
from geomon.engine.zones import CompiledZones, compile_zones
from geomon.io.accuracy import check_accuracy
from geomon.io.cameras import CameraLayer, load_cameras
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.io.load import load_fixes, load_rules, load_subjects, load_zones
from geomon.io.ordering import codes_in, stable_order
from geomon.kernels import fusion as _kf
from geomon.rules.load import Rules, default_rules
from geomon.rules.periods import ThresholdSets
from geomon.schema import ALERT_SCHEMA, QUARANTINE_SCHEMA, STAY_SCHEMA, TRACK_SCHEMA, TS_TYPE
from geomon.tracks.fusion import SOURCE_CODE

__all__ = ["Monitor", "MonitorState", "fold_alerts"]

_SOURCES = pa.array(list(SOURCE_CODE))


@dataclass
class MonitorState:
    """What the Monitor itself carries: each subject's filter row and its latest admitted time, the run of
    correlated-source fixes it ends, the watermark and the counts (quarantined = read - accepted)."""

    fusion: np.ndarray = subject_state()
    seen_t: np.ndarray = subject_state()
    run_source: np.ndarray = subject_state()
    run_length: np.ndarray = subject_state()
    watermark_ms: int = global_state()
    n_read: int = global_state()
    n_accepted: int = global_state()
    n_vague: int = global_state()

    @classmethod
    def new(cls, n: int) -> MonitorState:
        return cls(fusion=_kf.new_state(n), seen_t=np.full(n, -1, np.int64), run_source=np.full(n, -1, np.int64),
                   run_length=np.zeros(n, np.int64), watermark_ms=-1, n_read=0, n_accepted=0, n_vague=0)


def _as_zones(zones) -> ZoneLoad:
    return zones if isinstance(zones, ZoneLoad) else load_zones(zones)


def _as_subjects(subjects) -> SubjectLoad:
    return subjects if isinstance(subjects, SubjectLoad) else load_subjects(subjects)


def _as_rules(rules) -> Rules:
    if rules is None:
        return default_rules()
    return rules if isinstance(rules, Rules) else load_rules(rules)


class Monitor(FusionStage):
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
    detectors : iterable of str or Detector classes
        Detectors to run beside geofencing (always on): names in
        :data:`geomon.engine.contract.REGISTRY` (built in: :data:`geomon.engine.detectors.DETECTORS`), or
        detector classes (:class:`geomon.engine.contract.Detector`). By default ``lost_contact`` (lost
        contact, stuck device, location degraded), ``stays`` (stays at places of concern, unexplained
        night stays, and the stays table of :meth:`take_stays`) and ``night`` (curfew, night activity);
        ``checkins`` on request, for deployments that use app check-ins. The former names ``contact``
        and ``dwell`` are accepted.
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
    accuracy, uere_m
        What ``accuracy_m`` reports in the batches :meth:`process` validates itself
        (:func:`geomon.io.load.load_fixes`); a FixLoad was converted when loaded.

    Notes
    -----
    Each batch goes: validate (:func:`geomon.io.load.load_fixes`) → admit (person codes, lateness,
    time order, projection: :class:`~geomon.engine.contract.AdmittedFixes`) → fuse (the causal filter:
    :class:`~geomon.engine.contract.FusedFixes`) → every detector's ``detect`` over one
    :class:`~geomon.engine.contract.Batch` → alert rows, routed to the office of the place.

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
                 protections=None, subject_pairs: bool = False, collect=None, accuracy: str = "sigma",
                 uere_m: float | None = None):
        self.accuracy, self.uere_m = check_accuracy(accuracy, uere_m)
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
        self.subject_level = np.array(table.column("level").to_pylist(), dtype=object)
        self.subject_office = np.array(table.column("office_id").to_pylist(), dtype=object)
        self.subject_code = {s: i for i, s in enumerate(self.subject_ids)}
        self.crossing_min_m = float(crossing_min_m)
        self.max_gap_ms = int(max_gap_s * 1000)
        base = [profile or level for level in self.subject_level]
        self._sets = ThresholdSets(self.rules, base, self.subject_ids, self.subject_office)
        self._max_accuracy_m = self._sets.per_set("max_accuracy_m")
        code_of_zone = {z: i for i, z in enumerate(self.zones.zone_id)}

        def geometry(ids):
            return [self.zones.geometry_m[code_of_zone[z]] if z in code_of_zone else None for z in ids]

        ctx = EngineContext(
            sets=self._sets, subject_ids=self.subject_ids, subject_level=self.subject_level,
            subject_office=self.subject_office, zones=self.zones,
            home_geometry_m=geometry(table.column("home_zone_id").to_pylist()),
            work_geometry_m=geometry(table.column("work_zone_id").to_pylist()),
            permitted_of=permitted_zone_of_subjects(self.zones, self.subject_code), tz=tz, max_gap_s=max_gap_s,
            options={"crossing_min_m": crossing_min_m, "concern": concern, "protections": protections,
                     "subject_pairs": subject_pairs, "collect": collect,
                     "profiles": [self.rules.profile(p) for p in base]})
        #: Frequent contact and victim protection (geomon/engine/meetings.py); watches nothing without a concern
        #: list or protection orders.
        self.meetings: MeetingWatch = MeetingWatch.from_context(ctx)
        #: The detectors, in the order they run: the geofence, those asked for, then the meeting watch.
        self.detectors = [GeofenceDetector.from_context(ctx)] + [cls.from_context(ctx)
                                                                 for cls in resolve_detectors(detectors)]
        if self.meetings.active:
            self.detectors.append(self.meetings)
        self.timings: dict[str, float] = {}
        for detector in self.detectors:   # one table of seconds per step, the geofence's own steps in it
            detector.timings = self.timings
        self._person_ids_arrow = pa.array(self.meetings.person_ids.tolist(), pa.string())
        self.fusion_params = dict(fusion_params or {})
        self.state = MonitorState.new(len(self.subject_ids))
        self._quarantine: list[pa.Table] = []
        #: Written into every alert; :func:`geomon.run.replay.replay` sets it to the store's run id.
        self.run_id = ""

    # ----------------------------------------------------------------- public

    @property
    def n_read(self) -> int:
        """Rows read (by the loader and by :meth:`process`)."""
        return int(self.state.n_read)

    @property
    def n_accepted(self) -> int:
        """Fixes admitted."""
        return int(self.state.n_accepted)

    @property
    def n_quarantined(self) -> int:
        """Rows refused: read less accepted."""
        return self.n_read - self.n_accepted

    @property
    def n_vague(self) -> int:
        """Accepted fixes too vague (accuracy_m > max_accuracy_m) to decide a boundary."""
        return int(self.state.n_vague)

    @property
    def watermark_ms(self) -> int:
        """Event time up to which the stream is complete (ms): the newest admitted fix, or the caller's clock."""
        return int(self.state.watermark_ms)

    def parts(self) -> dict:
        """Every holder of engine state by name: the Monitor itself, then each detector (their ``state``)."""
        return {"monitor": self, **{d.name: d for d in self.detectors}, "meetings": self.meetings}

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
            Alert events in :data:`geomon.schema.ALERT_SCHEMA`.
        """
        clock = time.perf_counter()
        load = batch if isinstance(batch, FixLoad) else load_fixes(batch, name=name, accuracy=self.accuracy,
                                                                   uere_m=self.uere_m)
        self._tick("validate", clock)
        st = self.state
        st.n_read += load.n_read
        if load.n_quarantined:
            self._quarantine.append(load.quarantine)
        fixes, others = self._admit(load)
        st.n_accepted += len(fixes) + len(others)
        newest = int(fixes.t_ms.max()) if len(fixes) else -1
        st.watermark_ms = max(st.watermark_ms, newest, -1 if now_ms is None else int(now_ms))
        fused, track = self._fuse(fixes) if len(fixes) else (FusedFixes.empty(), None)
        tracks = self._tracks_of_everyone(track, others) if self.meetings.active else TrackPoints.concat([])
        step = Batch(admitted=fixes, fused=fused, tracks=tracks, watermark_ms=st.watermark_ms, now_ms=now_ms,
                     run_id=self.run_id)
        # The geofence runs on a thread of its own beside the other detectors once a batch is large enough to
        # pay for it: detectors share nothing but the batch, and their kernels release the GIL.
        beside = (_SIDE_POOL.submit(self._detect, self.detectors[0], step)
                  if len(fixes) >= PARALLEL_DETECT_FIXES and len(self.detectors) > 1 else None)
        events = [None if beside is not None and i == 0 else self._detect(d, step)
                  for i, d in enumerate(self.detectors)]
        if beside is not None:
            events[0] = beside.result()
        events = [e for e in events if e.num_rows]
        out = self._route(pa.concat_tables(events)) if events else ALERT_SCHEMA.empty_table()
        return out if self.cameras is None else self.cameras.annotate(out)

    def _detect(self, detector, step: Batch) -> pa.Table:
        clock = time.perf_counter()
        out = detector.detect(step)
        stage = _STAGE.get(detector.name, "behaviour")
        if stage is not None:
            self._tick(stage, clock)
        return out

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
        """Fused positions of the fixes admitted since the last call (:data:`geomon.schema.TRACK_SCHEMA`).

        Kept only while :attr:`keep_tracks` is true (the replay sets it when
        it writes to a store), for the incident look-back (:mod:`geomon.office.lookback`).
        No two rows share ``(subject_id, ts)``: of a subject's fixes at one instant the first admitted is kept
        (what :meth:`geomon.store.alert_store.AlertStore.write_tracks` would keep of them).
        """
        parts, self._tracks = self._tracks, []
        if not parts:
            return TRACK_SCHEMA.empty_table()
        tr = TrackPoints.concat(parts)
        first = first_per_key(tr.code, tr.t_ms)
        if first is not None:
            tr = TrackPoints(*(getattr(tr, f.name)[first] for f in dataclasses.fields(TrackPoints)))
        lon, lat = self.zones.frame.unproject(tr.fused_x_m, tr.fused_y_m)
        return pa.table({"subject_id": self._person_ids_arrow.take(pa.array(tr.code, pa.int64())),
                         "ts": pa.array(tr.t_ms, pa.int64()).cast(TS_TYPE),
                         "lon": pa.array(np.asarray(lon, np.float64)), "lat": pa.array(np.asarray(lat, np.float64)),
                         "sigma_m": pa.array(np.nan_to_num(tr.sigma_m, nan=1e9, posinf=1e9))}, schema=TRACK_SCHEMA)

    def take_stays(self) -> pa.Table:
        """The stays that ended since the last call, in :data:`geomon.schema.STAY_SCHEMA`.

        Stays come from the causal walk of the ``stays`` detector over the fused, decidable fixes
        (:class:`geomon.engine.stays.StayDetector`), so they are the same for any batching; without it among
        the detectors the table stays empty. Take them after each :meth:`process` (the replay writes them to
        the store's ``staypoints`` table).
        """
        parts = [d.take_outputs()["stays"] for d in self.detectors if "stays" in d.outputs]
        return pa.concat_tables(parts) if parts else STAY_SCHEMA.empty_table()

    # ----------------------------------------------------------------- steps

    def _tick(self, step: str, since: float) -> float:
        return add_seconds(self.timings, step, since)

    def _admit(self, load: FixLoad) -> tuple[AdmittedFixes, AdmittedFixes]:
        """Person codes, time order and lateness, projection; refused rows go to the quarantine.

        Returns the subjects' fixes and the other people's (persons of concern, protected persons: codes
        from 0, in :attr:`meetings`' numbering less the number of subjects; their ``tset`` is 0).
        """
        clock = time.perf_counter()
        table = load.table
        rows = load.input_row if load.input_row is not None else np.arange(table.num_rows, dtype=np.int64)
        ids = table.column("subject_id")
        n = len(self.subject_ids)
        others = self.meetings.state
        if table.num_rows * 8 < len(self._person_ids_arrow):
            # A micro-batch of a large roster: looking up its few ids beats hashing the whole roster again.
            lookup = self.meetings.code_of.get
            code = np.fromiter((lookup(s, -1) for s in ids.to_pylist()), np.int64, table.num_rows)
        else:
            code = codes_in(ids, self._person_ids_arrow)
        t = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        unknown = code < 0
        subject, other = ~unknown & (code < n), code >= n
        seen = np.full(len(code), -1, np.int64)
        seen[subject] = self.state.seen_t[code[subject]]
        seen[other] = others.seen_t[code[other] - n]
        late = ~unknown & (t < seen)
        self._refuse(load, rows, unknown, "subject_id", "subject_unknown")
        self._refuse(load, rows, late, "ts", "late_fix")
        keep = np.flatnonzero(~(unknown | late))
        order = keep[stable_order(code[keep], t[keep])]
        code, t = code[order], t[order]
        if order.size:
            last = np.r_[code[1:] != code[:-1], True]
            mine = last & (code < n)
            self.state.seen_t[code[mine]] = t[mine]
            theirs = last & (code >= n)
            others.seen_t[code[theirs] - n] = t[theirs]
        lon = table.column("lon").to_numpy()[order]
        lat = table.column("lat").to_numpy()[order]
        clock = self._tick("admit", clock)
        x, y = self.zones.frame.project(lon, lat)
        self._tick("project", clock)
        acc = table.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)[order]
        # Loaded fixes have valid sources: codes into SOURCES, for cheap comparisons.
        source = codes_in(table.column("source"), _SOURCES)[order]
        split = int(np.searchsorted(code, n))   # sorted by code: the subjects' fixes come first
        tset = np.zeros(code.size, np.int64)
        tset[:split] = self._sets.set_of_fixes(code[:split], t[:split])
        code[split:] -= n                         # the other people from 0, in the meeting watch's numbering
        everyone = AdmittedFixes(code=code, t_ms=t,
                                 raw_x_m=np.ascontiguousarray(x), raw_y_m=np.ascontiguousarray(y), lon=lon, lat=lat,
                                 accuracy_m=acc, source=source, tset=tset)
        return everyone.take(slice(0, split)), everyone.take(slice(split, None))

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


#: Fewest admitted fixes in a batch for the geofence to run beside the other detectors (a thread's hand-off costs
#: tens of microseconds; a live tick of a few fixes keeps to one thread).
PARALLEL_DETECT_FIXES = 20_000
#: The one thread the geofence runs on beside the others, shared by every Monitor (a process runs batches of one
#: Monitor at a time, or of several in turn).
_SIDE_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geomon-detect")

#: Timing key of each detector's step: the geofence times its own finer steps (zones, crossings, detect, alerts),
#: the meeting watch counts as meetings, the rest as behaviour.
_STAGE = {"geofence": None, "meetings": "meetings"}


def first_per_key(code: np.ndarray, t_ms: np.ndarray) -> np.ndarray | None:
    """Positions of the first row of each ``(code, t_ms)`` in row order, ascending; None when every key is
    unique. Nearly linear when the rows are sorted by code, then time (one batch's track is)."""
    order = stable_order(code, t_ms)
    sc, st = code[order], t_ms[order]
    repeat = np.r_[False, (sc[1:] == sc[:-1]) & (st[1:] == st[:-1])]
    return np.sort(order[~repeat]) if repeat.any() else None


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
