"""Batch replay: recorded fixes fed through a Monitor in time-ordered chunks, into the store.

``replay(fixes, zones, subjects, rules, db=...)`` loads and validates the fixes
once, orders them by event time (as a live feed would deliver them), feeds them
to a :class:`geomon.engine.monitor.Monitor` in chunks, and writes alerts, the stays
the stay walk closed (with the ``stays`` detector), quarantined rows and a
``runs`` row to the DuckDB store. Replaying the same input into the
same database adds nothing: alert ids are deterministic.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from geomon.engine.detectors import DEFAULT_DETECTORS, detector_names
from geomon.engine.meetings import meeting_config
from geomon.engine.monitor import Monitor, _as_rules, fold_alerts
from geomon.io.accuracy import accuracy_settings, check_accuracy
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.io.stream_parquet import ParquetFeed, ordered_batches, parquet_rows
from geomon.schema import ALERT_SCHEMA, STAY_SCHEMA
from geomon.store.alert_store import AlertStore


@dataclass
class ReplayResult:
    """What a replay did.

    Attributes
    ----------
    alerts : pyarrow.Table
        One row per alert (its last state), without ``emitted_at``/``run_id``.
    quarantine : pyarrow.Table
        Every refused row, from loading and from the Monitor.
    n_read, n_accepted, n_quarantined : int
        ``n_read == n_accepted + n_quarantined``.
    n_events : int
        Alert events emitted (an alert that ends is emitted twice).
    new_alert_rows : int
        Rows the store did not have before (0 on a repeated replay).
    run_id : str or None
        The store's run id, or None without a store.
    seconds : dict
        Wall time per stage (load, project, zones, crossings, detect, alerts, store, total).
    stays : pyarrow.Table
        The stays the Monitor closed (:data:`geomon.store.alert_store.STAY_SCHEMA`); empty
        unless ``stays`` is among the detectors.
    new_stay_rows : int
        Stays the store did not have before.
    """

    alerts: pa.Table
    quarantine: pa.Table
    n_read: int
    n_accepted: int
    n_quarantined: int
    n_events: int
    new_alert_rows: int
    run_id: str | None
    seconds: dict = field(default_factory=dict)
    stays: pa.Table = field(default_factory=STAY_SCHEMA.empty_table)
    new_stay_rows: int = 0

    @property
    def fixes_per_s(self) -> float:
        """Fixes read per second of wall time, end to end (load, project, detect, write)."""
        total = self.seconds.get("total", 0.0)
        return self.n_read / total if total > 0 else float("nan")


def prefetched(batches, ahead: int = 2):
    """The items of ``batches``, produced on a thread of their own up to ``ahead`` in advance: Parquet decoding and
    validation (Arrow and numpy, which release the GIL) overlap the engine's work on the batch before.

    An error raised producing an item is raised here in its place; closing the generator early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:   # handed to the consumer, raised there
            put((done, exc))

    worker = threading.Thread(target=produce, name="geomon-feed", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()


#: A replay that owns its store lets go of the file between batches at most this often (s); readers wait for it.
RELEASE_EVERY_S = 2.0


class _BatchWriter:
    """Writes each batch's alerts, stays and tracks to the store on one thread of its own, in batch order, while
    the engine runs the next batches (DuckDB lets go of the GIL while it inserts).

    A batch is one transaction, stored whole or not at all. After a failed batch nothing later is written (the
    store holds exactly the batches before it), and the failure is raised in the caller's thread at its next
    :meth:`submit` or at :meth:`finish`. At most ``ahead`` batches wait, so memory stays bounded.
    """

    def __init__(self, store: AlertStore, *, release: bool, ahead: int = 2, release_every_s: float = RELEASE_EVERY_S):
        self.store, self.release, self.ahead, self.release_every_s = store, release, ahead, release_every_s
        self._released_at = time.monotonic()
        self.new_alerts = self.new_stays = 0
        self.seconds = 0.0
        self._failed: BaseException | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geomon-store")
        self._pending: deque = deque()

    def submit(self, alerts: pa.Table, stays: pa.Table, tracks: pa.Table) -> None:
        while len(self._pending) >= self.ahead:
            self._pending.popleft().result()
        self._raise()
        self._pending.append(self._pool.submit(self._write, alerts, stays, tracks))

    def _write(self, alerts: pa.Table, stays: pa.Table, tracks: pa.Table) -> None:
        if self._failed is not None:
            return
        clock = time.perf_counter()
        try:
            with self.store.atomic():   # a batch is stored whole or not at all
                self.new_alerts += self.store.write_alerts(alerts) if alerts.num_rows else 0
                self.new_stays += self.store.write_stays(stays) if stays.num_rows else 0
                self.store.write_tracks(tracks, unique=True)
            if self.release and time.monotonic() - self._released_at >= self.release_every_s:
                # Readers (`geomon alerts list`, reports) may open the store between batches; letting go of the
                # file checkpoints DuckDB's log, so not after every batch of a long replay.
                self.store.release()
                self._released_at = time.monotonic()
        except BaseException as exc:
            self._failed = exc
        finally:
            self.seconds += time.perf_counter() - clock

    def _raise(self) -> None:
        if self._failed is not None:
            raise self._failed

    def finish(self) -> None:
        """Wait for every submitted batch; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown()
        self._raise()

    def abandon(self) -> None:
        """Wait for the writes under way (the store is closed next) without raising."""
        self._pool.shutdown(wait=True)
        self._pending.clear()


def _label(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"


def config_hash(zones: ZoneLoad, subjects: SubjectLoad, rules, params: dict) -> str:
    """Hash of everything that decides the alerts: zones, subjects, rules and Monitor parameters."""
    h = hashlib.sha256()
    h.update(json.dumps(list(map(str, zones.zone_id)) + list(map(str, zones.kind))).encode())
    for blob in shapely.to_wkb(zones.geometry):
        h.update(blob)
    h.update(json.dumps(zones.properties.to_pylist(), sort_keys=True, default=str).encode())
    h.update(json.dumps(subjects.table.to_pylist(), sort_keys=True, default=str).encode())
    h.update(json.dumps({k: dict(v) for k, v in rules.profiles.items()}, sort_keys=True, default=str).encode())
    if rules.periods:  # only then, so hashes of runs without periods stay as they were
        h.update(json.dumps([p.as_dict() for p in rules.periods], sort_keys=True, default=str).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def run_params(profile, detectors, meeting_params: dict, *, crossing_min_m: float = 5.0,
               max_gap_ms: int = 120_000, accuracy: str = "sigma", uere_m: float | None = None) -> dict:
    """The parameters a run's configuration hash covers besides zones, subjects and rules (one machine or many)."""
    params = {"profile": profile, "crossing_min_m": crossing_min_m, "max_gap_ms": max_gap_ms, **meeting_params,
              **accuracy_settings(accuracy, uere_m)}
    names = detector_names(detectors)
    if names != sorted(DEFAULT_DETECTORS):  # only then, so hashes of default runs stay as they were
        params["detectors"] = names
    return params


def time_ordered_batches(load: FixLoad, batch_rows: int):
    """Split accepted fixes into consecutive chunks in event-time order, as a feed delivers them."""
    table = load.table
    rows = load.input_row if load.input_row is not None else np.arange(table.num_rows, dtype=np.int64)
    yield from ordered_batches(table, rows, batch_rows, source_name=load.source_name, datum=load.datum)


def replay(fixes, zones, subjects, rules=None, *, db=None, batch_rows: int = 250_000,
           profile: str | None = None, datum: str = "wgs84",
           progress: Callable[[int, int], None] | None = None, detectors=DEFAULT_DETECTORS,
           cameras=None, keep_tracks: bool = True, concern=None, protections=None,
           stream_rows: int | None = 1_000_000, accuracy: str = "sigma", uere_m: float | None = None) -> ReplayResult:
    """Replay recorded fixes through a Monitor, optionally into a DuckDB store.

    Parameters
    ----------
    fixes : path or pyarrow.Table
        Fixes (Parquet, CSV or Arrow) in the schema of :data:`geomon.schema.FIX_SCHEMA`.
    zones, subjects : path or loaded
        As for :class:`geomon.engine.monitor.Monitor`.
    rules : path or Rules, optional
        Alert rules; the packaged defaults when omitted.
    db : path or AlertStore, optional
        DuckDB file (created if needed) or open store to write into. Each
        batch's alerts, stays and tracks are one transaction, written on a
        thread of its own while the next batches run. A store opened here is
        let go of between batches (at most every :data:`RELEASE_EVERY_S`
        seconds), so that readers (``geomon alerts list``, reports) can open
        it while the replay runs.
    batch_rows : int
        Fixes per chunk fed to the Monitor.
    profile : str, optional
        Rules profile for every subject (e.g. ``"special_period"``).
    datum : str
        Datum of the fixes' coordinates (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``).
    accuracy : str
        What the fixes' ``accuracy_m`` reports (``sigma``, ``r68``, ``cep``/``r50``,
        ``r95``, ``hdop``; :func:`geomon.io.load.load_fixes`); converted once, on load.
    uere_m : float, optional
        With ``accuracy="hdop"``: the user-equivalent range error in metres.
    progress : callable, optional
        Called as ``progress(done_fixes, total_fixes)`` after each chunk.
    detectors : iterable of str
        Detectors of the Monitor beside the geofence (:data:`geomon.engine.detectors.DETECTORS`);
        with ``stays`` the stays it closes are written to ``staypoints``.
    cameras : path, table or CameraLayer, optional
        Camera layer: each alert's ``details`` lists the nearest cameras.
    keep_tracks : bool
        With ``db``, also write the fused track of every admitted fix to the
        store's ``tracks`` table, for the incident look-back (``geomon near``).
    concern, protections : optional
        Persons of concern and protection orders, as :class:`geomon.engine.monitor.Monitor`
        takes them: frequent-contact and victim alerts (the other people's
        fixes are in ``fixes``).
    stream_rows : int or None
        A Parquet input (file or directory) with more rows than this is read
        a row group at a time and fed in event-time order, in bounded memory
        (:class:`geomon.io.stream_parquet.ParquetFeed`); smaller inputs, and
        every input when None, are read whole.

    Returns
    -------
    ReplayResult
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    accuracy, uere_m = check_accuracy(accuracy, uere_m)
    started = time.perf_counter()
    zone_load = zones if isinstance(zones, ZoneLoad) else load_zones(zones)
    subject_load = subjects if isinstance(subjects, SubjectLoad) else load_subjects(subjects)
    rule_set = _as_rules(rules)
    concern, protections, meeting_params = meeting_config(concern, protections)
    monitor = Monitor(zone_load, subject_load, rule_set, profile=profile, detectors=detectors, cameras=cameras,
                      concern=concern, protections=protections)
    monitor.keep_tracks = db is not None and keep_tracks
    setup_s = time.perf_counter() - started
    clock = time.perf_counter()
    size = parquet_rows(fixes) if isinstance(fixes, (str, Path)) and stream_rows is not None else None
    if size is not None and size > stream_rows:
        # Too large to hold: row groups in turn, in event-time order (validation happens as they are read).
        load = ParquetFeed(fixes, datum=datum, batch_rows=batch_rows, accuracy=accuracy, uere_m=uere_m)
        batches, total = iter(load), load.total_rows
    else:
        load = load_fixes(fixes, datum=datum, name=_label(fixes) if not isinstance(fixes, (str, Path)) else None,
                          accuracy=accuracy, uere_m=uere_m)
        batches, total = time_ordered_batches(load, batch_rows), load.n_accepted
    load_s = time.perf_counter() - clock

    store = None
    own_store = False
    run_id = None
    if db is not None:
        store = db if isinstance(db, AlertStore) else AlertStore(db)
        own_store = not isinstance(db, AlertStore)
        params = run_params(profile, detectors, meeting_params, crossing_min_m=monitor.crossing_min_m,
                            max_gap_ms=monitor.max_gap_ms, accuracy=accuracy, uere_m=uere_m)
        run_id = store.start_run(
            {"fixes": _label(fixes), "zones": _label(zones), "subjects": _label(subjects),
             "rules": _label(rules) if rules is not None else "<default>", "datum": datum, "batch_rows": batch_rows,
             **accuracy_settings(accuracy, uere_m)},
            config_hash(zone_load, subject_load, rule_set, params))
        monitor.run_id = run_id

    events = []
    stays = []
    done = 0
    writer = _BatchWriter(store, release=own_store) if store is not None else None
    try:
        for batch in prefetched(batches):
            out = monitor.process(batch)
            closed = monitor.take_stays()
            track = monitor.take_tracks()
            if closed.num_rows:
                stays.append(closed)
            if writer is not None:
                writer.submit(out, closed, track)
            if out.num_rows:
                events.append(out)
            done += batch.n_read
            if progress is not None:
                progress(done + (load.n_quarantined if isinstance(load, ParquetFeed) else 0), total)
        if writer is not None:
            writer.finish()
        new_rows, new_stays, store_s = (writer.new_alerts, writer.new_stays, writer.seconds) if writer else (0, 0, 0.0)
        quarantine = pa.concat_tables([load.quarantine, monitor.quarantine])
        n_quarantined = quarantine.num_rows
        all_events = pa.concat_tables(events) if events else ALERT_SCHEMA.empty_table()
        seconds = {"setup": setup_s, "load": load_s, **monitor.timings, "store": store_s}
        seconds["total"] = time.perf_counter() - started
        if store is not None:
            clock = time.perf_counter()
            store.write_quarantine(run_id, quarantine)
            store_s += time.perf_counter() - clock
            seconds["store"] = store_s
            seconds["total"] = time.perf_counter() - started
            store.finish_run(run_id, n_read=load.n_read, n_accepted=load.n_read - n_quarantined,
                             n_quarantined=n_quarantined, n_alerts=len(set(all_events.column("alert_id").to_pylist())),
                             timings=seconds, fixes_per_s=load.n_read / seconds["total"])
    finally:
        if writer is not None:
            writer.abandon()
        if own_store:
            store.close()
    return ReplayResult(
        alerts=fold_alerts(all_events),
        quarantine=quarantine,
        n_read=load.n_read,
        n_accepted=load.n_read - n_quarantined,
        n_quarantined=n_quarantined,
        n_events=all_events.num_rows,
        new_alert_rows=new_rows,
        run_id=run_id,
        seconds=seconds,
        stays=pa.concat_tables(stays) if stays else STAY_SCHEMA.empty_table(),
        new_stay_rows=new_stays,
    )
