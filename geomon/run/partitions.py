"""The subject-partition step of a distributed replay: tasks that run on the Dask workers.

A partition is the subjects whose id hashes (CRC-32) to it. The first pass
(:func:`_watermarks`, a task per file) finds the newest accepted fix per hour
of event time, which :func:`_clock` turns into the replay's global watermark;
:func:`_run_partition` then replays one partition's rows under it and, for the
meeting watch, hands over its fused positions cut by encounter window
(:mod:`geomon.run.encounter_windows`). :func:`bucket_input` writes a copy of
the input split by partition, so that each task reads only its own files. The
client side, and the whole design, is :mod:`geomon.run.distributed`, which
re-exports the public names.
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

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.io.load import load_fixes, load_subjects
from geomon.io.stream_parquet import ordered_batches, parquet_files, renumbered
from geomon.schema import ALERT_SCHEMA, QUARANTINE_SCHEMA, STAY_SCHEMA

__all__ = ["ROW_COLUMN", "WINDOW_MS", "bucket_input", "partition_of"]

#: Event-time step (ms) at which the partitions' watermark advances.
WINDOW_MS = 3_600_000


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
        load = load_fixes(raw, datum=options["datum"], name=options["name"],
                          accuracy=options["accuracy"], uere_m=options["uere_m"])
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


def _empty_load(datum: str):
    from geomon.schema import FIX_SCHEMA

    return FixLoad(table=FIX_SCHEMA.empty_table(), quarantine=QUARANTINE_SCHEMA.empty_table(), n_read=0,
                   n_accepted=0, n_quarantined=0, source_name="<watermark>", datum=datum,
                   input_row=np.zeros(0, np.int64))
