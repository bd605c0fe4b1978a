"""Table layout of the alert store, and the checks that hold Arrow tables to it.

The Arrow schemas here are the contract between the Monitor, the store and its
readers; the DDL creates the matching DuckDB tables. Timestamps are
``timestamp[ms, tz=UTC]`` in Arrow and ``TIMESTAMPTZ`` in DuckDB, so values
read back are cast to the schema (:func:`_to_schema`) and wall-clock times are
truncated to milliseconds (:func:`_ms`) before they are stored.

Import these names from :mod:`geomon.store.alert_store`, which re-exports them.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from geomon.schema import (  # noqa: F401  (the alert, stay and track schemas are the store's too)
    ALERT_SCHEMA,
    QUARANTINE_SCHEMA,
    SEVERITIES,
    STAY_ENDINGS,
    STAY_SCHEMA,
    TRACK_SCHEMA,
    TS_TYPE,
)

#: Version of the table layout below; stored in ``meta.schema_version``.
SCHEMA_VERSION = 1

#: Lifecycle states of a stored alert, in the order they are reached.
STATUSES: tuple[str, ...] = ("open", "acknowledged", "dispatched", "closed")

#: The append-only audit log of lifecycle steps (:meth:`geomon.store.alert_store.AlertStore.acknowledge` and
#: the others): one row per step taken, never updated or deleted; ``step_at`` is when the step happened (as the
#: caller says), ``recorded_at`` when the store wrote it.
AUDIT_SCHEMA = pa.schema(
    [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("from_status", pa.string(), nullable=False),
        pa.field("to_status", pa.string(), nullable=False),
        pa.field("step_at", TS_TYPE, nullable=False),
        pa.field("by_whom", pa.string(), nullable=True),
        pa.field("note", pa.string(), nullable=True),
        pa.field("recorded_at", TS_TYPE, nullable=False),
    ]
)

#: Lifecycle columns that exist only in the ``alerts`` table. Times are wall
#: clock, truncated to milliseconds; ``updated_at`` is the last time the store
#: changed the row.
LIFECYCLE_SCHEMA = pa.schema(
    [
        pa.field("status", pa.string(), nullable=False),
        pa.field("acknowledged_at", TS_TYPE, nullable=True),
        pa.field("dispatched_at", TS_TYPE, nullable=True),
        pa.field("closed_at", TS_TYPE, nullable=True),
        pa.field("updated_at", TS_TYPE, nullable=False),
    ]
)

#: Rows of :meth:`AlertStore.list_alerts`: the alert followed by its lifecycle.
STORED_ALERT_SCHEMA = pa.schema(list(ALERT_SCHEMA) + list(LIFECYCLE_SCHEMA))

#: Rows of the ``quarantine`` table: the run, then :data:`geomon.schema.QUARANTINE_SCHEMA`.
STORED_QUARANTINE_SCHEMA = pa.schema([pa.field("run_id", pa.string(), nullable=False), *QUARANTINE_SCHEMA])

#: Rows of :meth:`AlertStore.runs`. ``input`` and ``timings_s`` are JSON text;
#: ``timings_s`` maps a stage name to seconds.
RUN_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("started_at", TS_TYPE, nullable=False),
        pa.field("finished_at", TS_TYPE, nullable=True),
        pa.field("input", pa.string(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
        pa.field("geomon_version", pa.string(), nullable=False),
        pa.field("n_read", pa.int64(), nullable=True),
        pa.field("n_accepted", pa.int64(), nullable=True),
        pa.field("n_quarantined", pa.int64(), nullable=True),
        pa.field("n_alerts", pa.int64(), nullable=True),
        pa.field("timings_s", pa.string(), nullable=True),
        pa.field("fixes_per_s", pa.float64(), nullable=True),
    ]
)

_DDL = (
    """CREATE TABLE IF NOT EXISTS meta (
        schema_version INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        severity VARCHAR NOT NULL CHECK (severity IN {SEVERITIES!r}),
        subject_id VARCHAR NOT NULL,
        zone_id VARCHAR,
        office_id VARCHAR,
        location_office_id VARCHAR,
        onset_ts TIMESTAMPTZ NOT NULL,
        confirmed_ts TIMESTAMPTZ NOT NULL,
        ended_ts TIMESTAMPTZ,
        emitted_at TIMESTAMPTZ NOT NULL,
        lon DOUBLE NOT NULL,
        lat DOUBLE NOT NULL,
        accuracy_m REAL,
        probability DOUBLE,
        details VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        status VARCHAR NOT NULL DEFAULT 'open' CHECK (status IN {STATUSES!r}),
        acknowledged_at TIMESTAMPTZ,
        dispatched_at TIMESTAMPTZ,
        closed_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        run_id VARCHAR NOT NULL,
        source_name VARCHAR NOT NULL,
        "row" BIGINT NOT NULL,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR,
        PRIMARY KEY (run_id, source_name, "row"))""",
    # Service levels per supervising office and period (day, month, quarter; China Standard Time): an alert is
    # received when acknowledged, counted from the moment it was confirmed; the centre's targets are receipt within
    # 30 s and dispatch within 5 minutes (docs/store.md).
    *[f"""CREATE OR REPLACE VIEW sla_{name} AS
    SELECT office_id,
           CAST(date_trunc('{unit}', confirmed_ts AT TIME ZONE 'Asia/Shanghai') AS DATE) AS period,
           count(*) AS n_alerts,
           count(acknowledged_at) AS n_received,
           count(*) FILTER (WHERE acknowledged_at - confirmed_ts <= INTERVAL 30 SECOND) AS n_received_30s,
           count(dispatched_at) AS n_dispatched,
           count(*) FILTER (WHERE dispatched_at - confirmed_ts <= INTERVAL 5 MINUTE) AS n_dispatched_5min,
           count(*) FILTER (WHERE status = 'open') AS n_open,
           count(*) FILTER (WHERE status = 'closed') AS n_closed,
           round(count(*) FILTER (WHERE acknowledged_at - confirmed_ts <= INTERVAL 30 SECOND) / count(*), 4)
               AS share_received_30s,
           round(count(*) FILTER (WHERE dispatched_at - confirmed_ts <= INTERVAL 5 MINUTE)
                 / nullif(count(dispatched_at), 0), 4) AS share_dispatched_5min,
           median(epoch(acknowledged_at - confirmed_ts)) AS median_receipt_s,
           median(epoch(dispatched_at - confirmed_ts)) AS median_dispatch_s
    FROM alerts GROUP BY ALL ORDER BY office_id, period""" for name, unit in (
        ("daily", "day"), ("monthly", "month"), ("quarterly", "quarter"))],
    """CREATE TABLE IF NOT EXISTS alert_audit (
        alert_id VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        from_status VARCHAR NOT NULL,
        to_status VARCHAR NOT NULL,
        step_at TIMESTAMPTZ NOT NULL,
        by_whom VARCHAR,
        note VARCHAR,
        recorded_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tracks (
        subject_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        lon DOUBLE NOT NULL,
        lat DOUBLE NOT NULL,
        sigma_m DOUBLE NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS staypoints (
        subject_id VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ NOT NULL,
        lon DOUBLE NOT NULL,
        lat DOUBLE NOT NULL,
        n_fixes BIGINT NOT NULL,
        office_id VARCHAR,
        concern_zone_id VARCHAR,
        home_distance_m DOUBLE,
        work_distance_m DOUBLE,
        ended_by VARCHAR NOT NULL CHECK (ended_by IN {STAY_ENDINGS!r}),
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (subject_id, started_at))""",
    # Live operation (geomon/run/live.py): per stream, the Monitor's global state, the fixes held back and the input
    # consumed; per stream, checkpoint and subject, the state rows that changed, appended (the newest seq of a
    # subject is its state; superseded rows are deleted now and then). ``checkpoint_subjects`` (one row per
    # subject, rewritten in place) is the table of checkpoint layouts before 6, kept in stores that have it.
    """CREATE TABLE IF NOT EXISTS checkpoints (
        stream_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        config_hash VARCHAR NOT NULL,
        watermark_ms BIGINT NOT NULL,
        positions VARCHAR NOT NULL,
        global_state BLOB NOT NULL,
        pending BLOB NOT NULL,
        saved_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS checkpoint_rows (
        stream_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        subject_code INTEGER NOT NULL,
        state BLOB NOT NULL)""",
    # When each alert's confirming fix arrived and when the alert was committed (live operation only).
    """CREATE TABLE IF NOT EXISTS alert_latency (
        alert_id VARCHAR PRIMARY KEY,
        stream_id VARCHAR NOT NULL,
        fix_arrived_at TIMESTAMPTZ NOT NULL,
        committed_at TIMESTAMPTZ NOT NULL)""",
    # What was removed on request (geomon purge): a subject's data, or everything older than a cutoff. The subject
    # is recorded only as its keyed pseudonym (null without a key); never in clear.
    """CREATE TABLE IF NOT EXISTS purges (
        purged_at TIMESTAMPTZ NOT NULL,
        what VARCHAR NOT NULL CHECK (what IN ('subject', 'older_than')),
        subject_ref VARCHAR,
        cutoff TIMESTAMPTZ,
        rows_removed VARCHAR NOT NULL,
        by_whom VARCHAR,
        reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        status VARCHAR NOT NULL CHECK (status IN ('running', 'finished')),
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        input VARCHAR NOT NULL,
        config_hash VARCHAR NOT NULL,
        geomon_version VARCHAR NOT NULL,
        n_read BIGINT,
        n_accepted BIGINT,
        n_quarantined BIGINT,
        n_alerts BIGINT,
        timings_s VARCHAR,
        fixes_per_s DOUBLE)""",
)

# Name under which an incoming Arrow table is registered on a cursor, as a
# view, for one bulk ``INSERT INTO ... SELECT``.
_INCOMING = "_geomon_incoming"


def _ms(at: datetime) -> datetime:
    """Return *at* truncated to milliseconds; refuse naive datetimes."""
    if not isinstance(at, datetime):
        raise TypeError(f"expected a timezone-aware datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime {at.isoformat()} has no timezone; pass an aware datetime (UTC)")
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _now() -> datetime:
    return _ms(datetime.now(timezone.utc))


def _castable(got: pa.DataType, expected: pa.DataType, nullable: bool) -> bool:
    """Whether *got* may stand for *expected* with a lossless cast."""
    if got == expected:
        return True
    if pa.types.is_null(got):
        return nullable
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(expected):
        return got.unit == expected.unit and got.tz in ("UTC", "Etc/UTC", "+00:00", "Z")
    if pa.types.is_string(expected):
        return pa.types.is_large_string(got) or pa.types.is_string_view(got)
    return False


def _conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema, what: str) -> pa.Table:
    """Check *table* against *schema* and return it with exactly that schema.

    Raises
    ------
    ValueError
        Naming the first missing, unexpected, mistyped or wrongly null column.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TypeError(f"{what}: expected a pyarrow.Table, got {type(table).__name__}")
    names = set(table.column_names)
    for field in schema:
        if field.name not in names:
            raise ValueError(f"{what}: missing column {field.name!r} ({field.type})")
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise ValueError(f"{what}: unexpected column(s) {', '.join(map(repr, extra))}")
    columns = []
    for field in schema:
        col = table.column(field.name)
        if not _castable(col.type, field.type, field.nullable):
            raise ValueError(f"{what}: column {field.name!r} has type {col.type}, expected {field.type}")
        if not field.nullable and col.null_count:
            raise ValueError(f"{what}: column {field.name!r} has {col.null_count} null value(s); it must not be null")
        columns.append(col.cast(field.type) if col.type != field.type else col)
    return pa.Table.from_arrays(columns, schema=schema)


def _to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a DuckDB result (µs timestamps, session time zone) to *schema*."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)
