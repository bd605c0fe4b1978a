"""The encounter-window step of a distributed replay: tasks that search and judge meetings by event-time window.

Frequent contact and victim protection pair people across subject partitions,
so the partitions (:mod:`geomon.run.partitions`) hand over the fused positions
of everyone in a pair of interest, cut by window. :func:`_search_window` (a task
per window) searches every pair over its window, with the previous windows'
positions as overlap; :func:`_judge_windows` (one task) joins the windows'
stretches in time order into meetings and raises the alerts. The client side
that submits them is :func:`geomon.run.distributed._meeting_stage`; the module
docstring of :mod:`geomon.run.distributed` explains why the result equals a
single-machine replay's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.io.common import SubjectLoad, ZoneLoad
from geomon.schema import ALERT_SCHEMA

if TYPE_CHECKING:   # annotations only: the windows run on what the partitions hand over
    from geomon.run.partitions import _Part


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
