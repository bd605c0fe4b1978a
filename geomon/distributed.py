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

Frequent contact and victim protection pair people across partitions; they are
not distributed yet (a replay with a concern list or protection orders is
refused here).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geomon.behaviour import DEFAULT_DETECTORS
from geomon.load import load_fixes, load_subjects, load_zones
from geomon.load_common import FixLoad, SubjectLoad, ZoneLoad
from geomon.monitor import Monitor, _as_rules, fold_alerts
from geomon.schema import QUARANTINE_SCHEMA
from geomon.store import ALERT_SCHEMA, STAY_SCHEMA
from geomon.stream_parquet import file_offsets, ordered_batches, parquet_files, renumbered

__all__ = ["bucket_input", "partition_of", "replay_distributed"]

#: Event-time step (ms) at which the partitions' watermark advances.
WINDOW_MS = 3_600_000


def partition_of(ids, n_parts: int) -> np.ndarray:
    """Partition of each subject id: CRC-32 of its UTF-8 bytes modulo ``n_parts`` (None: partition of "")."""
    return np.array([zlib.crc32(("" if s is None else str(s)).encode()) % n_parts for s in ids], np.int64)




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
        if t.size == 0:
            continue
        uniq, inverse = np.unique(t // WINDOW_MS, return_inverse=True)
        newest = np.full(uniq.size, np.iinfo(np.int64).min)
        np.maximum.at(newest, inverse, t)
        for k, v in zip(uniq.tolist(), newest.tolist()):
            out[k] = max(out.get(k, v), v)
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


def _run_partition(part: int, n_parts: int, files: list[str], offsets: list[int], zones: ZoneLoad,
                   subjects: SubjectLoad, rules, options: dict, clock: list, out: str | None = None) -> _Part:
    """One partition's replay: its rows of every file, validated, fed window by window under the global clock."""
    started = time.perf_counter()
    mine_subjects = subjects.table.filter(pa.array(partition_of(subjects.table.column("subject_id").to_pylist(),
                                                                 n_parts) == part))
    monitor = Monitor(zones, load_subjects(mine_subjects), rules, profile=options["profile"],
                      detectors=options["detectors"])
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
    """What a distributed replay did (as :class:`geomon.replay.ReplayResult`, plus the partitions' times)."""

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
                       detectors=DEFAULT_DETECTORS, concern=None, protections=None, out=None) -> DistributedResult:
    """Replay a (partitioned) Parquet input on a Dask cluster; the alerts equal a single-machine replay's.

    Parameters
    ----------
    fixes : path
        A Parquet file or a directory of them.
    zones, subjects, rules, profile, datum, detectors
        As :func:`geomon.replay.replay`.
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
    """
    if db is not None and out is not None:
        raise ValueError("give db or out, not both")
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise FileExistsError(f"{out}: the output directory is not empty")
    if concern or protections:
        raise ValueError("frequent contact and victim protection are not distributed yet: replay them on one machine")
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
               "name": str(fixes)}
    client, cluster = _client(scheduler)
    try:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        n_parts = partitions or 2 * n_workers
        subjects_f = client.scatter(subject_load, broadcast=True)
        marks = client.gather(client.map(_watermarks, names, subjects=subjects_f, datum=datum, pure=False))
        newest: dict = {}
        for m in marks:
            for k, v in m.items():
                newest[k] = max(newest.get(k, v), v)
        keys = sorted(newest)
        running = np.maximum.accumulate(np.array([newest[k] for k in keys], np.int64)) if keys else []
        clock = list(zip(keys, [int(v) for v in running]))
        zones_f = client.scatter(zone_load, broadcast=True)
        futures = [client.submit(_run_partition, p, n_parts, names, offsets, zones_f, subjects_f, rule_set, options,
                                 clock, None if out is None else str(out), pure=False) for p in range(n_parts)]
        parts = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    events = pa.concat_tables([p.events for p in parts])
    stays = pa.concat_tables([p.stays for p in parts]).sort_by([("subject_id", "ascending"),
                                                                ("started_at", "ascending")])
    quarantine = pa.concat_tables([p.quarantine for p in parts]).sort_by([("row", "ascending")])
    n_read = sum(p.n_read for p in parts)
    n_quarantined = sum(p.n_quarantined for p in parts)
    run_id = None
    if db is not None:
        from geomon.replay import config_hash
        from geomon.store import AlertStore

        with AlertStore(db) as store:
            run_id = store.start_run({"fixes": str(fixes), "scheduler": scheduler, "partitions": n_parts},
                                     config_hash(zone_load, subject_load, rule_set, {"profile": profile}))
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
