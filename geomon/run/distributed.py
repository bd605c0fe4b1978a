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

This module is the client: it submits the tasks, gathers their results and
writes the store. The tasks themselves are in :mod:`geomon.run.partitions`
(the first pass and the subject partitions, :func:`bucket_input`) and
:mod:`geomon.run.encounter_windows` (the windows' searches and the judging).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from geomon.engine.detectors import DEFAULT_DETECTORS
from geomon.engine.meetings import meeting_config
from geomon.engine.monitor import _as_rules, fold_alerts
from geomon.io.accuracy import check_accuracy
from geomon.io.common import SubjectLoad, ZoneLoad
from geomon.io.load import load_subjects, load_zones
from geomon.io.stream_parquet import file_offsets, parquet_files
from geomon.run.encounter_windows import (
    _judge_windows,
    _meeting_monitor,
    _piece,
    _search_window,
    _window_index,
    _without_positions,
)
from geomon.run.partitions import (
    ROW_COLUMN,
    WINDOW_MS,
    _buckets,
    _clock,
    _run_partition,
    _watermarks,
    bucket_input,
    partition_of,
)
from geomon.schema import ALERT_SCHEMA

__all__ = ["ROW_COLUMN", "WINDOW_MS", "bucket_input", "partition_of", "replay_distributed"]

#: Overlap of an encounter window, in ``max_gap_s``, before the previous window's watermark: a pair's search starts
#: at the earlier of its two frontiers, no more than ``max_gap_s`` before that watermark, on a track segment of at
#: most ``max_gap_s`` that began up to ``max_gap_s`` earlier.
OVERLAP_GAPS = 2


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
                       encounter_window_s: float = 86_400.0, accuracy: str = "sigma",
                       uere_m: float | None = None) -> DistributedResult:
    """Replay a (partitioned) Parquet input on a Dask cluster; the alerts equal a single-machine replay's.

    Parameters
    ----------
    fixes : path
        A Parquet file or a directory of them.
    zones, subjects, rules, profile, datum, detectors, accuracy, uere_m
        As :func:`geomon.run.replay.replay` (each partition converts its fixes' accuracy on load).
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
    accuracy, uere_m = check_accuracy(accuracy, uere_m)
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
               "name": str(fixes), "meetings": None, "accuracy": accuracy, "uere_m": uere_m}
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
                                                 run_params(profile, detectors, meeting_params,
                                                            accuracy=accuracy, uere_m=uere_m)))
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
                             n_quarantined=quarantine.num_rows,
                             n_alerts=len(set(events.column("alert_id").to_pylist())),
                             timings={"total": time.perf_counter() - started},
                             fixes_per_s=n_read / (time.perf_counter() - started))
    alerts = fold_alerts(events)
    if out is not None:
        alerts = pq.read_table(Path(out) / "alerts").sort_by("alert_id")
    seconds = time.perf_counter() - started
    return DistributedResult(alerts, stays, quarantine, n_read, n_read - n_quarantined, n_quarantined, seconds,
                             [p.seconds for p in parts], run_id)
