"""Live operation: fixes as they arrive, micro-batches, a watermark, checkpoints, restarts without loss.

:class:`LiveMonitor` wraps a :class:`geomon.engine.monitor.Monitor` and an
:class:`geomon.store.alert_store.AlertStore`:

- :meth:`LiveMonitor.offer` validates arriving fixes (bad rows go to the
  quarantine with their source and row) and holds them, with their arrival time;
- :meth:`LiveMonitor.tick` advances the watermark, releases the held fixes at
  or before it to the Monitor in event-time order per subject, and commits in
  **one transaction** the alerts, stays, tracks and quarantine rows of the
  micro-batch, the latency of each new alert and, when one is due, a checkpoint
  of the Monitor's state with the input consumed and the fixes still held.

**Watermark.** With ``clock="wall"`` (live) the watermark is the clock less
``lateness_s``, so lost contact and schedules fire when no fix arrives; with
``clock="event"`` (replaying a directory of recorded files) it is the newest
event time offered less ``lateness_s``. It never goes back.

**Late fixes.** A fix is held until the watermark passes it, so fixes that
arrive out of order within ``lateness_s`` are processed in event-time order. A
fix older than one its subject already had processed (it came later than the
lateness allows) is recorded in the quarantine as ``late_fix`` with its arrival
number and counted, never dropped silently, and never moves a decision back:
no enter/exit flapping. A device that uploads fixes it buffered offline is not
late: its fixes are newer than anything processed for it.

**Exactly once.** A checkpoint (the Monitor's state, the fixes held, the input
consumed) is captured at the end of a micro-batch, after that micro-batch's
alerts, or with them. A process killed at any moment restarts from the last
stored checkpoint and reads the input after it again; alert ids are
deterministic and the store upserts, so alerts emitted again change nothing:
none lost, none duplicated (``tests/run/test_live.py`` kills a ``geomon watch``
with SIGKILL at random moments). With a checkpoint every tick
(``checkpoint_every_s=0``) it is written in the tick's transaction, before the
tick returns. Periodic checkpoints (``checkpoint_every_s > 0``) are written by a
checkpoint thread while the next micro-batches run, so a tick never waits for
one (at 100,000 subjects a checkpoint stores tens of MB); one is under way at a
time, and one that falls due while the last is still being written is taken at
the first tick after it is stored (a slow store spaces the checkpoints out).
Between checkpoints more input is read again after a crash, nothing else
changes. Input that cannot be read again (stdin, a socket) is
exactly-once only up to the last stored checkpoint.

Sources: :class:`DirectorySource` (files landing in a directory: Parquet, CSV,
JSON lines) and :class:`LineSource` (JSON lines from stdin or a socket), in
:mod:`geomon.run.live_sources` and re-exported here, with :func:`run`, which polls
them and ticks the LiveMonitor.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.engine.detectors import DEFAULT_DETECTORS, detector_names
from geomon.errors import GeomonError
from geomon.io.accuracy import accuracy_settings, check_accuracy
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.run.checkpoint import (
    CapturedCheckpoint,
    StateTracker,
    capture_global,
    check_layout,
    encode_rows,
    from_ipc,
    to_ipc,
)
from geomon.run.live_sources import DirectorySource, LineSource, StaleDataError, read_json_lines, run
from geomon.schema import FIX_SCHEMA, QUARANTINE_SCHEMA
from geomon.store.alert_store import AlertStore
from geomon.store.live import LATENCY_SCHEMA

__all__ = ["DirectorySource", "LineSource", "LiveMonitor", "StaleDataError", "TickResult", "read_json_lines", "run"]

_HELD = pa.schema(list(FIX_SCHEMA) + [pa.field("_arrived_us", pa.int64(), nullable=False),
                                      pa.field("_seq", pa.int64(), nullable=False)])
_FIX_COLUMNS = FIX_SCHEMA.names

#: How far the store's write-ahead log may grow before DuckDB folds it into the file
#: (:meth:`AlertStore.let_log_grow`). At 100,000 subjects a checkpoint every 5 s writes about 20 MB of subject
#: state; at DuckDB's 16 MB default every checkpoint's commit rewrote the state table (0.6 s a checkpoint,
#: amortised, against 0.2 s at 256 MB; docs/performance.md).
LOG_MB = 1024


@dataclass
class TickResult:
    """What one :meth:`LiveMonitor.tick` did.

    Attributes
    ----------
    watermark_ms : int
        The watermark after the tick (event time, ms).
    n_released, n_held : int
        Fixes handed to the Monitor, and fixes still held for lateness.
    alerts : pyarrow.Table
        Alert events of the micro-batch (new alerts and ended ones).
    latency_s : numpy.ndarray
        Per alert event: seconds from its confirming fix's arrival to the commit.
    checkpoint : bool
        Whether a checkpoint was taken with it: written before the tick returned (every tick's, or one asked
        for), or handed to the checkpoint thread (periodic ones).
    seconds : float
        Wall time of the tick, commit included.
    """

    watermark_ms: int
    n_released: int
    n_held: int
    alerts: pa.Table
    latency_s: np.ndarray
    checkpoint: bool
    seconds: float


@dataclass
class _Counts:
    n_read: int = 0                 # rows read from every source
    n_refused_on_load: int = 0      # quarantined by validation


class LiveMonitor:
    """A Monitor fed as fixes arrive, committing each micro-batch and its checkpoint to the alert store.

    Parameters
    ----------
    zones, subjects, rules
        As :class:`geomon.engine.monitor.Monitor` (paths or loaded).
    db : path or AlertStore
        The store; its checkpoint of ``stream_id``, if any, is resumed.
    stream_id : str
        Name of this stream (one checkpoint per stream).
    lateness_s : float
        How long a fix is held for fixes that arrive out of order (see the module notes).
    clock : {"wall", "event"}
        What drives the watermark (see the module notes).
    checkpoint_every_s : float
        Wall seconds between checkpoints; 0 checkpoints with every tick. A
        directory source is exactly-once either way (files after the last
        checkpoint are read again); a stream source (stdin, a socket) loses
        the lines since the last checkpoint in a crash, so use 0 there unless
        the sender can resend. At 10,000 subjects every tick costs about 26 %
        of a core against 10 % at the default (docs/performance.md).
    profile, detectors, keep_tracks
        As :func:`geomon.run.replay.replay`.
    accuracy, uere_m
        What the arriving fixes' ``accuracy_m`` reports, as :func:`geomon.io.load.load_fixes`
        takes it (``r68`` for phones); each input is converted once, when offered.
    concern, protections
        Persons of concern and protection orders (as :class:`geomon.engine.monitor.Monitor`
        takes them): frequent-contact and victim alerts, live (:mod:`geomon.engine.meetings`).
    now : callable
        Wall clock in seconds (``time.time``); tests pass their own.
    refuse_stale_s : float, optional
        With the wall clock, refuse a new stream whose first fixes are older than this (their median, in
        seconds before now): recorded files run on the wall clock are judged as if it were now, so every
        silence since them is lost contact and every night since them is judged at once. The error names
        ``clock="event"``. ``geomon watch`` refuses data two hours old.

    Raises
    ------
    GeomonError
        When the stream's checkpoint was made with other zones, subjects,
        rules or parameters: resuming it would mix two configurations.
    """

    def __init__(self, zones, subjects, rules=None, *, db, stream_id: str = "live", lateness_s: float = 0.0,
                 clock: str = "wall", checkpoint_every_s: float = 5.0, profile: str | None = None,
                 detectors=DEFAULT_DETECTORS, keep_tracks: bool = True, concern=None, protections=None,
                 now=time.time, accuracy: str = "sigma", uere_m: float | None = None,
                 refuse_stale_s: float | None = None):
        from geomon.engine.meetings import meeting_config
        from geomon.engine.monitor import Monitor
        from geomon.run.replay import _as_rules, config_hash

        if clock not in ("wall", "event"):
            raise ValueError(f"clock must be wall or event, not {clock!r}")
        if lateness_s < 0 or checkpoint_every_s < 0:
            raise ValueError("lateness_s and checkpoint_every_s must be >= 0")
        self.accuracy, self.uere_m = check_accuracy(accuracy, uere_m)
        zone_load = zones if isinstance(zones, ZoneLoad) else load_zones(zones)
        subject_load = subjects if isinstance(subjects, SubjectLoad) else load_subjects(subjects)
        rule_set = _as_rules(rules)
        concern, protections, meeting_params = meeting_config(concern, protections)
        self.monitor = Monitor(zone_load, subject_load, rule_set, profile=profile, detectors=detectors,
                               concern=concern, protections=protections)
        self.monitor.keep_tracks = keep_tracks
        self.store = db if isinstance(db, AlertStore) else AlertStore(db)
        self.store.let_log_grow(LOG_MB)
        self._own_store = not isinstance(db, AlertStore)
        self.stream_id = stream_id
        self.lateness_ms = int(round(lateness_s * 1000))
        self.clock = clock
        self.checkpoint_every_s = float(checkpoint_every_s)
        self._now = now
        params = {"profile": profile, "detectors": detector_names(detectors), "lateness_ms": self.lateness_ms,
                  "clock": clock, "crossing_min_m": self.monitor.crossing_min_m,
                  "max_gap_ms": self.monitor.max_gap_ms, **meeting_params,
                  **accuracy_settings(self.accuracy, self.uere_m)}
        self.config_hash = config_hash(zone_load, subject_load, rule_set, params)
        self._tracker = StateTracker(self.monitor)
        self._held = _HELD.empty_table()
        self._load_quarantine: list[pa.Table] = []
        #: Stays, tracks and quarantine rows waiting for the next checkpoint's transaction.
        self._deferred: dict[str, list[pa.Table]] = {"stays": [], "tracks": [], "quarantine": []}
        self.positions: dict = {}
        self.counts = _Counts()
        self.seq = 0
        self.watermark_ms = -1
        self._newest_ms = -1
        self._next_arrival = 0
        self._last_checkpoint = -np.inf
        self._checkpoint_seq = 0
        self._pool: ThreadPoolExecutor | None = None
        self._under_way = None
        self.refuse_stale_s = refuse_stale_s
        self.resumed = self._resume()
        self._checkpoint_seq = self.seq
        if not self.resumed:
            self.run_id = self.store.start_run({"stream": stream_id, "clock": clock, "lateness_s": lateness_s,
                                                **accuracy_settings(self.accuracy, self.uere_m)},
                                               self.config_hash)
        self.monitor.run_id = self.run_id

    @property
    def n_held(self) -> int:
        """Fixes offered and held until the watermark passes them."""
        return self._held.num_rows

    @property
    def n_offered(self) -> int:
        """Fixes accepted from the sources since the stream began: those held and those run."""
        return self.n_held + self.monitor.n_read

    # ----------------------------------------------------------------- resume

    def _resume(self) -> bool:
        saved = self.store.load_checkpoint(self.stream_id)
        if saved is None:
            return False
        # The state layout first: a checkpoint of an older geomon is named as such, not as another configuration.
        check_layout(self.monitor, saved["global_state"], what=f"stream {self.stream_id!r}")
        if saved["config_hash"] != self.config_hash:
            raise GeomonError(f"stream {self.stream_id!r} was checkpointed with another configuration (zones, "
                              "subjects, rules or watch options changed); resume it with the same ones, or start "
                              "a new stream with another --stream-id")
        self._tracker.restore(saved["codes"], saved["states"], saved["global_state"])
        self.run_id = saved["run_id"]
        self.seq = saved["seq"]
        self.watermark_ms = saved["watermark_ms"]
        self._held = from_ipc(saved["pending"])
        positions = saved["positions"]
        state = positions.pop("_live")
        self.positions = positions
        self._newest_ms = state["newest_ms"]
        self._next_arrival = state["next_arrival"]
        self.counts = _Counts(**state["counts"])
        return True

    # ----------------------------------------------------------------- input

    def load(self, fixes, *, name: str) -> FixLoad:
        """Validate arriving fixes with this stream's accuracy kind (:func:`geomon.io.load.load_fixes`)."""
        return load_fixes(fixes, name=name, accuracy=self.accuracy, uere_m=self.uere_m)

    def offer(self, fixes, *, source: str, position: tuple[str, object] | None = None,
              arrived: float | None = None) -> int:
        """Validate arriving fixes and hold them until the watermark passes them; return how many were accepted.

        Parameters
        ----------
        fixes : pyarrow.Table, path or FixLoad
            Fixes in :data:`geomon.schema.FIX_SCHEMA` (validated with :meth:`load`
            unless loaded; a FixLoad's accuracy is taken as already converted).
        source : str
            Name of the input (file, ``stdin``...), used in the quarantine.
        position : (key, value), optional
            Input consumed once these fixes are committed: ``positions[key] =
            value`` is saved with the next checkpoint (sources use it to resume).
        arrived : float or array of float, optional
            Arrival wall time (seconds), of all the fixes or of each; default now.
        """
        load = fixes if isinstance(fixes, FixLoad) else self.load(fixes, name=source)
        if load.n_quarantined:
            self._load_quarantine.append(load.quarantine)
        self.counts.n_read += load.n_read
        self.counts.n_refused_on_load += load.n_quarantined
        if position is not None:
            self.positions[position[0]] = position[1]
        n = load.table.num_rows
        if n == 0:
            return 0
        self._check_fresh(load.table, source)
        if arrived is None or np.ndim(arrived) == 0:
            arrived_us = np.full(n, round((self._now() if arrived is None else float(arrived)) * 1e6), np.int64)
        else:
            per_row = np.asarray(arrived, np.float64)
            if per_row.size != load.n_read:
                raise ValueError(f"arrived: {per_row.size} times for {load.n_read} input rows")
            rows = load.input_row if load.input_row is not None else np.arange(n)
            arrived_us = np.round(per_row[rows] * 1e6).astype(np.int64)
        table = load.table.select(_FIX_COLUMNS).cast(FIX_SCHEMA)
        table = table.append_column(_HELD.field("_arrived_us"), pa.array(arrived_us))
        table = table.append_column(_HELD.field("_seq"), pa.array(np.arange(self._next_arrival,
                                                                            self._next_arrival + n, dtype=np.int64)))
        self._next_arrival += n
        self._newest_ms = max(self._newest_ms, int(pc.max(table.column("ts").cast(pa.int64())).as_py()))
        self._held = pa.concat_tables([self._held, table])
        return n

    def _check_fresh(self, table: pa.Table, source: str) -> None:
        """Refuse, on the wall clock, a new stream that starts with data hours old (see ``refuse_stale_s``)."""
        if self.clock != "wall" or self.refuse_stale_s is None or self.resumed or self.n_offered:
            return
        median_ms = float(np.median(table.column("ts").cast(pa.int64()).to_numpy()))
        age_s = self._now() - median_ms / 1000
        if age_s > self.refuse_stale_s:
            taken = datetime.fromtimestamp(median_ms / 1000, timezone.utc).isoformat(timespec="seconds")
            raise StaleDataError(
                f"{source}: these fixes were taken {age_s / 3600:,.1f} h ago (median {taken}), but the watch runs "
                "on the wall clock, which would judge them as if it were now: every silence since then a lost "
                "contact, every night since then at once. For recorded files use --clock event (or geomon "
                "replay); for a live feed, check the devices' and this machine's clocks")

    def refuse(self, rows: pa.Table) -> None:
        """Quarantine input rows a source refused before validation (each counted as read and refused)."""
        if rows.num_rows:
            self._load_quarantine.append(rows.cast(QUARANTINE_SCHEMA))
            self.counts.n_read += rows.num_rows
            self.counts.n_refused_on_load += rows.num_rows

    def refuse_file(self, name: str, reason: str, *, position: tuple[str, object] | None = None) -> None:
        """Quarantine a whole input that cannot be read (row -1, counted as one row read and refused), and move on:
        a corrupt file must not stop the stream, nor stop it again at every restart."""
        self.refuse(pa.table({
            "source_name": pa.array([name], pa.string()), "row": pa.array([-1], pa.int64()),
            "field": pa.array([None], pa.string()), "reason": pa.array(["unreadable_file"], pa.string()),
            "raw": pa.array([reason[:1000]], pa.string())}, schema=QUARANTINE_SCHEMA))
        if position is not None:
            self.positions[position[0]] = position[1]

    # ----------------------------------------------------------------- tick

    def _watermark(self, now_s: float) -> int:
        base = int(now_s * 1000) if self.clock == "wall" else self._newest_ms
        return max(self.watermark_ms, base - self.lateness_ms)

    def tick(self, now: float | None = None, *, checkpoint: bool | None = None) -> TickResult:
        """Advance the watermark, run the fixes it releases, commit the micro-batch (and a checkpoint when due)."""
        started = time.perf_counter()
        now_s = self._now() if now is None else now
        self.watermark_ms = self._watermark(now_s)
        t = self._held.column("ts").cast(pa.int64())
        ready = pc.less_equal(t, self.watermark_ms)
        release, self._held = self._held.filter(ready), self._held.filter(pc.invert(ready))
        load = FixLoad(table=release.select(_FIX_COLUMNS), quarantine=QUARANTINE_SCHEMA.empty_table(),
                       n_read=release.num_rows, n_accepted=release.num_rows, n_quarantined=0,
                       source_name=f"{self.stream_id} (arrival number)",
                       input_row=release.column("_seq").to_numpy())
        self._collect()
        alerts = self.monitor.process(load, now_ms=self.watermark_ms if self.watermark_ms >= 0 else None)
        self._deferred["stays"].append(self.monitor.take_stays())
        if self.monitor.keep_tracks:
            self._deferred["tracks"].append(self.monitor.take_tracks())
        self._deferred["quarantine"] += [q.cast(QUARANTINE_SCHEMA) for q in self._load_quarantine]
        self._deferred["quarantine"].append(self.monitor.take_quarantine())
        self._load_quarantine = []
        arrived = self._arrivals(alerts, release, now_s)
        if checkpoint is None:
            due = self.checkpoint_every_s == 0 or now_s - self._last_checkpoint >= self.checkpoint_every_s
            # A checkpoint every tick is written before the tick returns (a stream's lines are safe then);
            # periodic ones are written by the checkpoint thread while the ticks go on.
            behind = self.checkpoint_every_s > 0
            # One under way at a time: while the last is still being written the next one waits for a later
            # tick, so a slow store stretches the checkpoints' spacing and never stalls the alerts.
            due = due and (not behind or self._under_way is None)
        else:
            due, behind = checkpoint, False
        if due:
            self._collect(wait=True)
        job = self._capture(now_s) if due else None
        if alerts.num_rows or (job is not None and not behind):
            # Alerts go out at once; stays, tracks and quarantine rows ride with the next checkpoint (a restart
            # derives them again from the input it reads again, like the state), so most ticks write nothing.
            with self.store.atomic():
                if alerts.num_rows:
                    self.store.write_alerts(alerts)
                    self.store.write_latency(self.stream_id, arrived,
                                             datetime.fromtimestamp(self._now(), timezone.utc))
                if job is not None and not behind:
                    self._write_checkpoint(job)
        done = self._now()
        self.seq += 1
        if job is not None:
            if behind:
                self._under_way = (self._writer().submit(self._write_checkpoint, job), job)
            else:
                self._tracker.saved(job.codes, job.rows)
        latency = (done - arrived.column("fix_arrived_at").cast(pa.int64()).to_numpy() / 1e6
                   if arrived.num_rows else np.zeros(0))
        return TickResult(self.watermark_ms, release.num_rows, self.n_held, alerts, latency, due,
                          time.perf_counter() - started)

    def _capture(self, now_s: float) -> CapturedCheckpoint:
        """The state after this tick, as copies the engine may go on from: the checkpoint to write."""
        codes, rows = self._tracker.changes()
        positions = dict(self.positions)
        positions["_live"] = {"newest_ms": self._newest_ms, "next_arrival": self._next_arrival,
                              "counts": dict(vars(self.counts))}
        job = CapturedCheckpoint(seq=self.seq + 1, watermark_ms=self.watermark_ms, positions=positions,
                          global_state=capture_global(self.monitor), pending=to_ipc(self._held), codes=codes,
                          rows=rows, deferred=self._deferred)
        self._deferred = {what: [] for what in self._deferred}
        self._last_checkpoint = now_s
        self._checkpoint_seq = job.seq
        return job

    def _write_checkpoint(self, job: CapturedCheckpoint) -> None:
        """Store a captured checkpoint with the stays, tracks and quarantine rows it carries, in one transaction."""
        writers = {"stays": self.store.write_stays, "tracks": self.store.write_tracks,
                   "quarantine": lambda table: self.store.write_quarantine(self.run_id, table)}
        with self.store.atomic():
            for what, tables in job.deferred.items():
                tables = [t for t in tables if t.num_rows]
                if tables:
                    writers[what](pa.concat_tables(tables))
            self.store.save_checkpoint(self.stream_id, run_id=self.run_id, seq=job.seq,
                                       config_hash=self.config_hash, watermark_ms=job.watermark_ms,
                                       positions=job.positions, global_state=job.global_state, pending=job.pending,
                                       codes=job.codes, states=encode_rows(job.rows),
                                       roster=len(self.monitor.subject_ids))

    def _writer(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geomon-checkpoint")
        return self._pool

    def _collect(self, wait: bool = False) -> None:
        """Take note of the checkpoint under way once it is stored (``wait``: wait for it); raise its failure."""
        if self._under_way is None:
            return
        future, job = self._under_way
        if not wait and not future.done():
            return
        self._under_way = None
        future.result()                  # its failure is the stream's: raised here, in the engine's thread
        self._tracker.saved(job.codes, job.rows)

    def _arrivals(self, alerts: pa.Table, release: pa.Table, now_s: float) -> pa.Table:
        """Arrival of each alert's confirming fix: the released fix of its subject at ``confirmed_ts``; for an alert
        confirmed between fixes (a meeting that has lasted long enough), the subject's latest fix released now;
        with none (confirmed by the watermark alone: lost contact, a deadline), now."""
        if alerts.num_rows == 0:
            return LATENCY_SCHEMA.empty_table()
        key, latest = {}, {}
        for s, t, a in zip(release.column("subject_id").to_pylist(), release.column("ts").cast(pa.int64()).to_pylist(),
                           release.column("_arrived_us").to_pylist()):
            key[(s, t)] = a
            latest[s] = max(latest.get(s, a), a)
        fallback = int(round(now_s * 1e6))
        subjects = alerts.column("subject_id").to_pylist()
        confirmed = alerts.column("confirmed_ts").cast(pa.int64()).to_pylist()
        arrived = [key.get((s, t), latest.get(s, fallback)) for s, t in zip(subjects, confirmed)]
        return pa.table({"alert_id": alerts.column("alert_id"),
                         "fix_arrived_at": pa.array(arrived, pa.int64()).cast(pa.timestamp("us", tz="UTC"))},
                        schema=LATENCY_SCHEMA)

    def close(self, *, flush: bool = True) -> None:
        """Checkpoint what was processed since the last checkpoint (``flush``), and close the store if this
        object opened it. ``flush=False`` leaves as a crash would: the next start resumes the last checkpoint
        (a checkpoint the checkpoint thread is writing is finished first)."""
        try:
            self._collect(wait=True)
            if flush and self.seq > self._checkpoint_seq:
                self.tick(checkpoint=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._own_store:
                self.store.close()

