"""Replay on a Dask cluster (``geomon replay --dask local:N|ADDRESS``): subjects partitioned over workers.

Every detector of the Monitor but the meeting watch judges one subject at a
time, so a replay splits by subject: partition ``p`` of ``P`` holds the
subjects whose id hashes (CRC-32) to ``p``, and a worker runs a Monitor over
them alone, reading only their rows of the input. What the subjects share is
the clock: a replay's watermark is the newest fix admitted so far, of anyone.
A first pass over the input (a task per file) finds, per hour of event time,
the newest accepted fix of a supervised subject; each partition then feeds its
fixes hour by hour with that global watermark, and ends with the input's
newest fix, so that silence, deadlines and night windows are noticed as in a
single-machine replay. The alerts, stays and quarantine are gathered on the
client and written by it alone into DuckDB.

A worker's memory is that of its partition: choose ``partitions`` so that
the input divided by them fits a worker (docs/scale.md).

Frequent contact and victim protection pair people across partitions, so they
are split by time instead. The subject partitions fuse everyone in a pair of
interest (persons of concern and protected persons too, each in the partition
of its id) and hand over the fused positions, cut into event-time windows
(``encounter_window_s``, a day by default). A task per window searches every
pair over that window, reading the window's positions and, as overlap, those
of the previous windows from ``2 * max_gap_s`` before their watermark (what a
track segment crossing into the window can start from). The windows' searches
are exactly the searches of a single-machine meeting watch batched by window
(its search of a pair covers only what it has not searched yet, cut at fix
times: geomon/engine/meetings.py), so one last task joins their stretches into
meetings in time order, counts them over ``meeting_window_s`` and raises the
alerts, with the same result. That task holds stretches, not positions.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geomon.engine.detectors import DEFAULT_DETECTORS
from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.engine.meetings import meeting_config
from geomon.engine.monitor import Monitor, _as_rules, fold_alerts
from geomon.schema import QUARANTINE_SCHEMA
from geomon.schema import ALERT_SCHEMA, STAY_SCHEMA
from geomon.io.stream_parquet import file_offsets, ordered_batches, parquet_files, renumbered

__all__ = ["bucket_input", "partition_of", "replay_distributed"]

#: Event-time step (ms) at which the partitions' watermark advances.
WINDOW_MS = 3_600_000
#: Overlap of an encounter window, in ``max_gap_s``, before the previous window's watermark: a pair's search starts
#: at the earlier of its two frontiers, no more than ``max_gap_s`` before that watermark, on a track segment of at
#: most ``max_gap_s`` that began up to ``max_gap_s`` earlier.
OVERLAP_GAPS = 2


def partition_of(ids, n_parts: int) -> np.ndarray:
    """Partition of each subject id: CRC-32 of its UTF-8 bytes modulo ``n_parts`` (None: partition of "")."""
    return np.array([zlib.crc32(("" if s is None else str(s)).encode()) % n_parts for s in ids], np.int64)


def _newest_by_window(t: np.ndarray, window_ms: int) -> dict:
    """The newest of the times ``t`` (ms) in each event-time window (key: time // window_ms)."""
    if t.size == 0:
        return {}
    uniq, inverse = np.unique(t // window_ms, return_inverse=True)
    newest = np.full(uniq.size, np.iinfo(np.int64).min)
    np.maximum.at(newest, inverse, t)
    return dict(zip(uniq.tolist(), newest.tolist()))


def _merge_newest(maps) -> dict:
    """Several :func:`_newest_by_window` results as one (the newest per window over all)."""
    out: dict = {}
    for m in maps:
        for k, v in m.items():
            out[k] = max(out.get(k, v), v)
    return out


def _clock(maps) -> list[tuple[int, int]]:
    """The watermark at the end of each window: (window, newest time in it or any earlier one), in window order."""
    newest = _merge_newest(maps)
    keys = sorted(newest)
    running = np.maximum.accumulate(np.array([newest[k] for k in keys], np.int64)).tolist() if keys else []
    return list(zip(keys, running))


#: Name of the column holding each row's number in the original input, in a bucketed copy.
ROW_COLUMN = "_input_row"


def _buckets(path: Path) -> int | None:
    """Number of buckets of an input written by :func:`bucket_input` (directories ``bucket=K``), else None."""
    if not path.is_dir():
        return None
    found = sorted(int(d.name.split("=", 1)[1]) for d in path.iterdir()
                   if d.is_dir() and d.name.startswith("bucket=") and d.name.split("=", 1)[1].isdigit())
    return len(found) if found and found == list(range(len(found))) else None


def bucket_input(source, target, buckets: int) -> int:
    """Copy a Parquet input into ``target/bucket=K/`` by the partition of each row's subject (CRC-32 modulo
    ``buckets``), a row group at a time, each row keeping its input number (:data:`ROW_COLUMN`).

    A distributed replay of the copy with ``buckets`` partitions then reads in
    each task only its own bucket. Returns the rows written.
    """
    files = parquet_files(source)
    target = Path(target)
    for k in range(buckets):
        (target / f"bucket={k}").mkdir(parents=True, exist_ok=False)
    written, first = 0, 0
    for i, file in enumerate(files):
        pf = pq.ParquetFile(file)
        for g in range(pf.metadata.num_row_groups):
            raw = pf.read_row_group(g)
            raw = raw.append_column(ROW_COLUMN, pa.array(np.arange(first, first + raw.num_rows, dtype=np.int64)))
            first += raw.num_rows
            owner = _owner(raw, buckets)
            for k in np.unique(owner):
                part = raw.filter(pa.array(owner == k))
                pq.write_table(part, target / f"bucket={k}" / f"part-{i:05d}-{g:05d}.parquet")
                written += part.num_rows
    return written


def _owner(raw: pa.Table, n_parts: int) -> np.ndarray:
    """Partition of each row of a table (by its subject id; a table without the column: all in partition 0)."""
    if "subject_id" not in raw.column_names:
        return np.zeros(raw.num_rows, np.int64)
    ids = raw.column("subject_id").cast(pa.string())
    uniq = pc.unique(ids)
    at = pc.index_in(ids, value_set=uniq, skip_nulls=False).to_numpy(zero_copy_only=False)
    return partition_of(uniq.to_pylist(), n_parts)[at]


def _watermarks(file: str, subjects: SubjectLoad, datum: str) -> dict:
    """Newest accepted fix of a supervised subject per event-time window of one file (the first pass)."""
    out: dict = {}
    pf = pq.ParquetFile(file)
    for g in range(pf.metadata.num_row_groups):   # a row group at a time: memory of a group, not of the file
        load = load_fixes(pf.read_row_group(g), datum=datum, name=file)
        known = pc.is_in(load.table.column("subject_id"), value_set=subjects.table.column("subject_id"))
        t = load.table.column("ts").cast(pa.int64()).filter(known).to_numpy(zero_copy_only=False)
        out = _merge_newest([out, _newest_by_window(t, WINDOW_MS)])
    return out


def _rows_of_partition(file: str, part: int, n_parts: int) -> tuple[pa.Table, np.ndarray]:
    """The rows of ``file`` whose subject falls in ``part``, and their row numbers in the file; read a row group at
    a time, so that a worker holds its partition, not the file."""
    pf = pq.ParquetFile(file)
    tables, numbers, first = [], [], 0
    for g in range(pf.metadata.num_row_groups):
        raw = pf.read_row_group(g)
        idx = np.flatnonzero(_owner(raw, n_parts) == part)   # without subject_id the loader refuses it in part 0
        tables.append(raw.take(pa.array(idx)))
        numbers.append(idx + first)
        first += raw.num_rows
    if not tables:
        return pf.schema_arrow.empty_table(), np.zeros(0, np.int64)
    return pa.concat_tables(tables), np.concatenate(numbers)


@dataclass
class _Part:
    events: pa.Table
    stays: pa.Table
    quarantine: pa.Table
    n_read: int
    seconds: float
    n_quarantined: int = 0
    #: Fused positions of the people in pairs of interest, per encounter window (key: event time // window).
    positions: dict | None = None
    #: Newest fused position of anyone per encounter window (the window's watermark reads it).
    newest: dict | None = None


def _run_partition(part: int, n_parts: int, files: list[str], offsets: list[int], zones: ZoneLoad,
                   subjects: SubjectLoad, rules, options: dict, clock: list, out: str | None = None) -> _Part:
    """One partition's replay: its rows of every file, validated, fed window by window under the global clock."""
    started = time.perf_counter()
    mine_subjects = subjects.table.filter(pa.array(partition_of(subjects.table.column("subject_id").to_pylist(),
                                                                 n_parts) == part))
    meetings = options.get("meetings")
    monitor = Monitor(zones, load_subjects(mine_subjects), rules, profile=options["profile"],
                      detectors=options["detectors"], collect=meetings["collect"] if meetings else None)
    positions, newest = [], {}
    raws, numbers = [], []
    bucket = f"bucket={part}"
    for file, offset in zip(files, offsets):
        if options.get("bucketed"):   # a bucketed copy: only this partition's files, numbered by the original input
            if Path(file).parent.name != bucket:
                continue
            raw = pq.read_table(file)
            idx = raw.column(ROW_COLUMN).to_numpy(zero_copy_only=False) - offset
            raw = raw.drop_columns([ROW_COLUMN])
        else:
            raw, idx = _rows_of_partition(file, part, n_parts)
        raws.append(raw)
        numbers.append(idx + offset)
    # One validation over the partition, as one machine validates the whole input: a subject's rows are all here,
    # so duplicates across files are found too.
    raw = pa.concat_tables(raws, promote_options="default") if raws else None
    number = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    quarantine, n_read, table = [], 0, None
    if raw is not None:
        load = load_fixes(raw, datum=options["datum"], name=options["name"])
        n_read = load.n_read
        if load.quarantine.num_rows:
            quarantine.append(renumbered(load.quarantine, number).cast(QUARANTINE_SCHEMA))
        table = load.table
        number = number[load.input_row if load.input_row is not None else np.arange(table.num_rows)]
    events, stays = [], []
    if table is not None and table.num_rows:
        windows = dict(clock)
        # Time order, cut where the hour changes (a batch never spans two watermarks).
        for batch in ordered_batches(table, number, table.num_rows, source_name=str(files[0]),
                                     datum=options["datum"]):
            k = batch.table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False) // WINDOW_MS
            cuts = np.flatnonzero(np.r_[True, k[1:] != k[:-1], True])
            for a, b in zip(cuts[:-1], cuts[1:]):
                piece = FixLoad(table=batch.table.slice(a, b - a), quarantine=QUARANTINE_SCHEMA.empty_table(),
                                n_read=b - a, n_accepted=b - a, n_quarantined=0, source_name=batch.source_name,
                                datum=batch.datum, input_row=batch.input_row[a:b])
                events.append(monitor.process(piece, now_ms=windows.get(int(k[a]))))
                stays.append(monitor.take_stays())
                if meetings:
                    table, every = monitor.meetings.take_positions()
                    positions.append(table)
                    newest = _merge_newest([newest, _newest_by_window(every, meetings["window_ms"])])
    if clock:
        events.append(monitor.process(_empty_load(options["datum"]), now_ms=int(clock[-1][1])))
        stays.append(monitor.take_stays())
    quarantine.append(monitor.quarantine.cast(QUARANTINE_SCHEMA))
    events = [e for e in events if e.num_rows]
    stays = [s for s in stays if s.num_rows]
    result = _Part(pa.concat_tables(events) if events else ALERT_SCHEMA.empty_table(),
                   pa.concat_tables(stays) if stays else STAY_SCHEMA.empty_table(),
                   pa.concat_tables(quarantine), n_read, 0.0)
    result.n_quarantined = result.quarantine.num_rows
    if meetings:
        result.positions, result.newest = _by_window(positions, meetings["window_ms"]), newest
    if out is not None:
        # The worker writes its own part of each output (partitioned Parquet); only counts go back to the client.
        for what, table in (("alerts", fold_alerts(result.events)), ("stays", result.stays),
                            ("quarantine", result.quarantine)):
            folder = Path(out) / what
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"part-{part:05d}.parquet")
        result.events, result.stays = ALERT_SCHEMA.empty_table(), STAY_SCHEMA.empty_table()
        result.quarantine = QUARANTINE_SCHEMA.empty_table()
    result.seconds = time.perf_counter() - started
    return result


def _by_window(positions: list, window_ms: int) -> dict:
    """Collected positions cut by encounter window (key: time // window_ms)."""
    table = pa.concat_tables(positions) if positions else None
    if table is None or table.num_rows == 0:
        return {}
    key = table.column("t").to_numpy() // window_ms
    return {k: table.filter(pa.array(key == k)) for k in np.unique(key).tolist()}


def _window_index(part: _Part) -> tuple[dict, dict]:
    """A partition's positions per window (rows), and its newest position per window: all the client reads."""
    return {k: v.num_rows for k, v in part.positions.items()}, part.newest


def _piece(part: _Part, key: int, since_ms: int | None = None) -> pa.Table:
    """A partition's positions of one window (from ``since_ms`` on, for an overlap)."""
    table = part.positions[key]
    return table if since_ms is None else table.filter(pc.greater_equal(table.column("t"), since_ms))


def _without_positions(part: _Part) -> _Part:
    """A copy of a partition's result without its positions (the windows' tasks still read the original)."""
    return replace(part, positions=None, newest=None)


def _meeting_monitor(zones: ZoneLoad, subjects: SubjectLoad, rules, options: dict) -> Monitor:
    """The single-machine Monitor's meeting watch: every subject, the concern list and protection orders."""
    m = options["meetings"]
    return Monitor(zones, subjects, rules, profile=options["profile"], detectors=options["detectors"],
                   concern=m["concern"], protections=m["protections"])


def _add_positions(watch, tables: list) -> None:
    """Feed positions (any partitions) to a meeting watch, as its step would (sorted by person, then time)."""
    table = pa.concat_tables(tables) if tables else None
    if table is None or table.num_rows == 0:
        return
    code = pc.index_in(table.column("person_id"), value_set=pa.array(watch.person_ids.tolist(), pa.string()))
    code = code.to_numpy(zero_copy_only=False).astype(np.int64)
    t = table.column("t").to_numpy()
    order = np.lexsort((t, code))
    watch.add(code[order], t[order], table.column("x").to_numpy()[order], table.column("y").to_numpy()[order],
              table.column("sigma").to_numpy()[order])


def _search_window(zones: ZoneLoad, subjects: SubjectLoad, rules, options: dict, before: list, now: list,
                   w_prev: int | None, w_now: int) -> tuple[list, np.ndarray]:
    """One encounter window: the stretches a single-machine meeting watch would find in its batch of this window,
    and every involved person's frontier after it."""
    watch = _meeting_monitor(zones, subjects, rules, options).meetings
    if w_prev is not None:
        # The overlap: where the single-machine watch stood after the previous window.
        _add_positions(watch, before)
        watch.resume_at(w_prev)
    _add_positions(watch, now)
    watch.watermark_ms = w_now
    until = watch.frontiers(w_now)
    return watch.search(until), until[watch.involved]


def _judge_windows(zones: ZoneLoad, subjects: SubjectLoad, rules, options: dict, found: list, marks: list,
                   out: str | None) -> pa.Table:
    """Join the windows' stretches in time order into meetings and raise the alerts (one task: stretches only)."""
    monitor = _meeting_monitor(zones, subjects, rules, options)
    watch = monitor.meetings
    events = []
    for (stretches, frontier), w in zip(found, marks):
        until = np.full(watch.person_ids.size, w, np.int64)
        until[watch.involved] = frontier
        watch.watermark_ms = w
        events.append(watch.judge(stretches, until))
    events = [e for e in events if e.num_rows]
    table = monitor._route(pa.concat_tables(events)) if events else ALERT_SCHEMA.empty_table()
    if out is not None:
        folder = Path(out) / "alerts"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(fold_alerts(table), folder / "part-meetings.parquet")
        return ALERT_SCHEMA.empty_table()
    return table


def _meeting_stage(client, parts: list, zones_f, subjects_f, rules, options: dict, out: str | None):
    """Submit the encounter windows' searches and the judging over the partitions' positions; a future of the
    meeting alert events."""
    window_ms, gap_ms = options["meetings"]["window_ms"], options["meetings"]["max_gap_ms"]
    index = client.gather([client.submit(_window_index, f, pure=False) for f in parts])
    clock = _clock(top for _, top in index)
    keys, marks = [k for k, _ in clock], [w for _, w in clock]
    found = []
    for i, key in enumerate(keys):
        now = [client.submit(_piece, f, key, pure=False) for f, (rows, _) in zip(parts, index) if rows.get(key)]
        before, w_prev = [], None
        if i:
            w_prev = marks[i - 1]
            since = w_prev - OVERLAP_GAPS * gap_ms   # a segment crossing into this window starts no earlier
            for j in range(i - 1, -1, -1):
                if (keys[j] + 1) * window_ms <= since:
                    break
                before += [client.submit(_piece, f, keys[j], since, pure=False)
                           for f, (rows, _) in zip(parts, index) if rows.get(keys[j])]
        found.append(client.submit(_search_window, zones_f, subjects_f, rules, options, before, now, w_prev,
                                   marks[i], pure=False))
    return client.submit(_judge_windows, zones_f, subjects_f, rules, options, found, marks, out, pure=False)


def _empty_load(datum: str):
    from geomon.schema import FIX_SCHEMA

    return FixLoad(table=FIX_SCHEMA.empty_table(), quarantine=QUARANTINE_SCHEMA.empty_table(), n_read=0,
                   n_accepted=0, n_quarantined=0, source_name="<watermark>", datum=datum,
                   input_row=np.zeros(0, np.int64))


def _client(scheduler: str):
    from distributed import Client, LocalCluster

    if scheduler.startswith("local:"):
        n = int(scheduler.split(":", 1)[1])
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    return Client(scheduler), None


@dataclass
class DistributedResult:
    """What a distributed replay did (as :class:`geomon.run.replay.ReplayResult`, plus the partitions' times)."""

    alerts: pa.Table
    stays: pa.Table
    quarantine: pa.Table
    n_read: int
    n_accepted: int
    n_quarantined: int
    seconds: float
    partition_seconds: list
    run_id: str | None = None

    @property
    def fixes_per_s(self) -> float:
        return self.n_read / self.seconds if self.seconds > 0 else float("nan")


def replay_distributed(fixes, zones, subjects, rules=None, *, scheduler: str = "local:2", partitions: int | None = None,
                       db=None, profile: str | None = None, datum: str = "wgs84",
                       detectors=DEFAULT_DETECTORS, concern=None, protections=None, out=None,
                       encounter_window_s: float = 86_400.0) -> DistributedResult:
    """Replay a (partitioned) Parquet input on a Dask cluster; the alerts equal a single-machine replay's.

    Parameters
    ----------
    fixes : path
        A Parquet file or a directory of them.
    zones, subjects, rules, profile, datum, detectors
        As :func:`geomon.run.replay.replay`.
    scheduler : str
        ``local:N`` (a local cluster of N worker processes) or a scheduler address.
    partitions : int, optional
        Subject partitions (default: twice the workers).
    db : path, optional
        DuckDB store the client writes the alerts, stays and quarantine into.
    out : path, optional
        Instead: a directory the workers write partitioned Parquet into
        (``alerts/``, ``stays/``, ``quarantine/``, a file per partition; the
        alerts folded, one row per alert); nothing but counts goes through
        the client. The result's ``alerts`` are read back from it; its stays
        and quarantine are left in the files.
    concern, protections : optional
        Persons of concern and protection orders, as :func:`geomon.run.replay.replay`:
        their encounters are searched by time window (module docstring).
    encounter_window_s : float
        Event-time span of an encounter search task (a day by default).
    """
    if db is not None and out is not None:
        raise ValueError("give db or out, not both")
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise FileExistsError(f"{out}: the output directory is not empty")
    if encounter_window_s <= 0:
        raise ValueError(f"encounter_window_s must be > 0, got {encounter_window_s}")
    started = time.perf_counter()
    zone_load = zones if isinstance(zones, ZoneLoad) else load_zones(zones)
    subject_load = subjects if isinstance(subjects, SubjectLoad) else load_subjects(subjects)
    rule_set = _as_rules(rules)
    files = parquet_files(fixes)
    offsets = file_offsets(files)
    buckets = _buckets(Path(fixes))
    if buckets is not None:
        # Written by bucket_input: partition K reads bucket=K alone; row numbers come from the copy.
        if partitions is not None and partitions != buckets:
            raise ValueError(f"{fixes} holds {buckets} buckets: replay it with {buckets} partitions")
        partitions, offsets = buckets, [0] * len(files)
    names = [str(f) for f in files]
    options = {"profile": profile, "detectors": tuple(detectors), "datum": datum, "bucketed": buckets is not None,
               "name": str(fixes), "meetings": None}
    concern, orders, meeting_params = meeting_config(concern, protections)
    if concern or orders:
        options["meetings"] = {"concern": concern, "protections": orders,
                               "window_ms": int(round(encounter_window_s * 1000))}
        watch = _meeting_monitor(zone_load, subject_load, rule_set, options).meetings
        # Positions to collect: everyone in a pair; people to admit: every other person named (as one machine does).
        options["meetings"].update(collect=sorted(set(watch.person_ids[watch.involved]) | set(watch.other_ids)),
                                   max_gap_ms=watch.max_gap_ms)
    client, cluster = _client(scheduler)
    try:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        n_parts = partitions or 2 * n_workers
        subjects_f = client.scatter(subject_load, broadcast=True)
        clock = _clock(client.gather(client.map(_watermarks, names, subjects=subjects_f, datum=datum, pure=False)))
        zones_f = client.scatter(zone_load, broadcast=True)
        futures = [client.submit(_run_partition, p, n_parts, names, offsets, zones_f, subjects_f, rule_set, options,
                                 clock, None if out is None else str(out), pure=False) for p in range(n_parts)]
        met = None
        if options["meetings"]:
            met = _meeting_stage(client, futures, zones_f, subjects_f, rule_set, options,
                                 None if out is None else str(out))
            futures = [client.submit(_without_positions, f, pure=False) for f in futures]
        parts = client.gather(futures)
        meeting_events = client.gather(met) if met is not None else ALERT_SCHEMA.empty_table()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    events = pa.concat_tables([p.events for p in parts] + [meeting_events])
    stays = pa.concat_tables([p.stays for p in parts]).sort_by([("subject_id", "ascending"),
                                                                ("started_at", "ascending")])
    quarantine = pa.concat_tables([p.quarantine for p in parts]).sort_by([("row", "ascending")])
    n_read = sum(p.n_read for p in parts)
    n_quarantined = sum(p.n_quarantined for p in parts)
    run_id = None
    if db is not None:
        from geomon.run.replay import config_hash, run_params
        from geomon.store.alert_store import AlertStore

        with AlertStore(db) as store:
            run_id = store.start_run({"fixes": str(fixes), "scheduler": scheduler, "partitions": n_parts},
                                     config_hash(zone_load, subject_load, rule_set,
                                                 run_params(profile, detectors, meeting_params)))
            with store.atomic():
                events = events.set_column(events.schema.get_field_index("run_id"), "run_id",
                                           pa.array([run_id] * events.num_rows, pa.string()))
                if events.num_rows:
                    store.write_alerts(events)
                if stays.num_rows:
                    store.write_stays(stays.set_column(stays.schema.get_field_index("run_id"), "run_id",
                                                       pa.array([run_id] * stays.num_rows, pa.string())))
                store.write_quarantine(run_id, quarantine)
            store.finish_run(run_id, n_read=n_read, n_accepted=n_read - quarantine.num_rows,
                             n_quarantined=quarantine.num_rows, n_alerts=len(set(events.column("alert_id").to_pylist())),
                             timings={"total": time.perf_counter() - started},
                             fixes_per_s=n_read / (time.perf_counter() - started))
    alerts = fold_alerts(events)
    if out is not None:
        alerts = pq.read_table(Path(out) / "alerts").sort_by("alert_id")
    seconds = time.perf_counter() - started
    return DistributedResult(alerts, stays, quarantine, n_read, n_read - n_quarantined, n_quarantined, seconds,
                             [p.seconds for p in parts], run_id)
