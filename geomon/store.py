"""DuckDB store of alerts, quarantined input rows and replay runs.

The store is where every alert ends up and where it is acknowledged,
dispatched and closed, so that all of it can be audited with plain SQL. DuckDB
is the embedded default: one connection per process, a ``.cursor()`` per thread
(DuckDB connections are not thread-safe; cursors on one database are).

Writes go in bulk through Arrow: the incoming table is registered on the
cursor as a view and copied with ``INSERT INTO ... SELECT``, never row by row.
Every value reaches SQL as a bound parameter or through the registered table;
identifiers in generated SQL come from fixed whitelists only.

Replays are idempotent because ``alert_id`` is deterministic (the Monitor
derives it from the alert's content) and is the primary key; the upsert rule is
documented on :meth:`AlertStore.write_alerts` and in ``docs/store.md``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon import __version__
from geomon.errors import GeomonError
from geomon.schema import QUARANTINE_SCHEMA, TS_TYPE

#: Version of the table layout below; stored in ``meta.schema_version``.
SCHEMA_VERSION = 1

#: Alert severities, most urgent first.
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

#: Lifecycle states of a stored alert, in the order they are reached.
STATUSES: tuple[str, ...] = ("open", "acknowledged", "dispatched", "closed")

#: Alerts as the Monitor hands them to :meth:`AlertStore.write_alerts`.
#:
#: ``alert_id`` is deterministic, so a replay of the same input yields the same
#: ids. ``office_id`` is the subject's supervising office,
#: ``location_office_id`` the office whose jurisdiction the position lies in.
#: ``onset_ts`` / ``confirmed_ts`` / ``ended_ts`` are event times (ended is null
#: while the alert is still running), ``emitted_at`` the wall-clock time the
#: engine emitted it. ``lon``/``lat`` are degrees (WGS84), ``accuracy_m`` the
#: 1-sigma horizontal uncertainty in metres, ``probability`` the detector's
#: confidence in [0, 1], ``details`` detector-specific JSON text and ``run_id``
#: the run that produced it.
ALERT_SCHEMA = pa.schema(
    [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=True),
        pa.field("office_id", pa.string(), nullable=True),
        pa.field("location_office_id", pa.string(), nullable=True),
        pa.field("onset_ts", TS_TYPE, nullable=False),
        pa.field("confirmed_ts", TS_TYPE, nullable=False),
        pa.field("ended_ts", TS_TYPE, nullable=True),
        pa.field("emitted_at", TS_TYPE, nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("accuracy_m", pa.float32(), nullable=True),
        pa.field("probability", pa.float64(), nullable=True),
        pa.field("details", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
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

#: Columns :meth:`AlertStore.alert_counts` may group by.
GROUP_COLUMNS: tuple[str, ...] = (
    "kind",
    "severity",
    "subject_id",
    "zone_id",
    "office_id",
    "location_office_id",
    "status",
    "run_id",
)

_ALERT_COLS = ", ".join(ALERT_SCHEMA.names)
_INCOMING = "_geomon_incoming"

# An alert_id that occurs more than once in one batch (handed over open, then
# ended) is merged into one row: the first handover's values (emitted_at above
# all) with the most advanced handover's ended_ts and details. _ord is the row
# number in the batch, added before registration.
_MERGED = f"""(
    SELECT {", ".join("l." + c if c in ("ended_ts", "details") else "f." + c for c in ALERT_SCHEMA.names)}
    FROM (SELECT * FROM {_INCOMING}
          QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY emitted_at, _ord) = 1) AS f
    JOIN (SELECT alert_id, ended_ts, details FROM {_INCOMING}
          QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY ended_ts IS NULL, _ord DESC) = 1) AS l
    USING (alert_id))"""

# Existing alerts only gain an end time and newer details. An open handover
# never overwrites the details of an alert already stored as ended, and rows
# whose values would not change are not touched (updated_at stays put).
_UPDATE_ALERTS = """
    UPDATE alerts AS a
    SET ended_ts = coalesce(a.ended_ts, s.ended_ts), details = s.details, updated_at = ?
    FROM {source} AS s
    WHERE a.alert_id = s.alert_id
      AND (s.ended_ts IS NOT NULL OR a.ended_ts IS NULL)
      AND ((a.ended_ts IS NULL AND s.ended_ts IS NOT NULL) OR a.details IS DISTINCT FROM s.details)"""

# The anti-join makes a replay (all ids known) about five times faster than
# leaving every row to ON CONFLICT, which stays as the guarantee.
_INSERT_ALERTS = f"""
    INSERT INTO alerts ({_ALERT_COLS}, status, updated_at)
    SELECT {_ALERT_COLS}, 'open', ? FROM {{source}} AS s
    WHERE NOT EXISTS (SELECT 1 FROM alerts AS a WHERE a.alert_id = s.alert_id)
    ON CONFLICT (alert_id) DO NOTHING"""

# Lifecycle transitions: target status -> (statuses it may follow, column that
# records when it happened).
_TRANSITIONS = {
    "acknowledged": (("open",), "acknowledged_at"),
    "dispatched": (("acknowledged",), "dispatched_at"),
    "closed": (("acknowledged", "dispatched"), "closed_at"),
}


class LifecycleError(GeomonError, ValueError):
    """A lifecycle transition is not allowed: unknown alert, wrong order or time."""


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


def _in_list(column: str, values: str | Iterable[str], params: list) -> str:
    """Return a ``column = ?`` or ``column IN (?, ...)`` condition and extend *params*."""
    if isinstance(values, str):
        params.append(values)
        return f"{column} = ?"
    values = list(values)
    if not values:
        return "FALSE"
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"filter on {column}: values must be strings")
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


class AlertStore:
    """Alerts, quarantine and runs in one DuckDB database.

    Parameters
    ----------
    path : str or Path or None
        Database file; ``None`` or ``":memory:"`` for an in-memory store. The
        tables are created on open if they do not exist.
    read_only : bool
        Open an existing file read-only (reports, dashboards). DuckDB lets only
        one process open a file for writing.

    Notes
    -----
    One store holds one DuckDB connection; each thread that uses the store gets
    its own cursor on it. Two threads writing the same alert at once get a
    DuckDB transaction conflict, not a silent lost update.

    Examples
    --------
    >>> with AlertStore() as store:
    ...     run_id = store.start_run({"fixes": "fixes.parquet"}, config_hash="ab12")
    ...     store.write_alerts(ALERT_SCHEMA.empty_table())
    0
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False):
        self.path = ":memory:" if path is None or str(path) == ":memory:" else str(Path(path))
        if read_only and self.path == ":memory:":
            raise ValueError("an in-memory store cannot be read-only")
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(self.path, read_only=read_only)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        try:
            self._open_schema()
        except BaseException:
            self.close()
            raise

    # -- connection handling -------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise GeomonError(f"alert store {self.path} is closed")
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    @contextmanager
    def _transaction(self):
        cur = self._cursor()
        cur.begin()
        try:
            yield cur
        except BaseException:
            cur.rollback()
            raise
        cur.commit()

    def close(self) -> None:
        """Close every cursor and the connection (a file store is checkpointed)."""
        with self._lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._con is None else "open"
        return f"AlertStore({self.path!r}, {state})"

    def _open_schema(self) -> None:
        cur = self._cursor()
        if not self.read_only:
            with self._transaction() as cur:
                for ddl in _DDL:
                    cur.execute(ddl)
                if cur.execute("SELECT count(*) FROM meta").fetchall()[0][0] == 0:
                    cur.execute("INSERT INTO meta VALUES (?, ?)", [SCHEMA_VERSION, _now()]).fetchall()
        try:
            rows = cur.execute("SELECT schema_version FROM meta").fetchall()
        except duckdb.CatalogException:
            rows = []
        if len(rows) != 1:
            raise GeomonError(f"{self.path}: not a geomon store (no meta.schema_version)")
        if rows[0][0] != SCHEMA_VERSION:
            raise GeomonError(
                f"{self.path}: store has schema version {rows[0][0]}, this geomon reads version {SCHEMA_VERSION}"
            )

    # -- runs ------------------------------------------------------------------

    def start_run(self, input: Mapping, config_hash: str) -> str:  # noqa: A002 (contract name)
        """Record the start of a run and return its id.

        Parameters
        ----------
        input : Mapping
            What the run reads (paths, table names, options); stored as JSON,
            non-JSON values (paths) as their ``str``.
        config_hash : str
            Hash of the effective rules/configuration.

        Returns
        -------
        str
            A fresh ``uuid4`` hex id; runs are events, not content.
        """
        if not isinstance(input, Mapping):
            raise TypeError(f"input must be a mapping, got {type(input).__name__}")
        run_id = uuid.uuid4().hex
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO runs (run_id, status, started_at, input, config_hash, geomon_version) "
                "VALUES (?, 'running', ?, ?, ?, ?)",
                [run_id, _now(), json.dumps(dict(input), sort_keys=True, default=str), str(config_hash), __version__],
            ).fetchall()
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        n_read: int,
        n_accepted: int,
        n_quarantined: int,
        n_alerts: int,
        timings: Mapping[str, float],
        fixes_per_s: float,
    ) -> None:
        """Record the end of a run with its counts and timings.

        Parameters
        ----------
        run_id : str
            Id from :meth:`start_run`.
        n_read, n_accepted, n_quarantined, n_alerts : int
            Fixes read, accepted and quarantined; alerts emitted.
        timings : Mapping[str, float]
            Seconds per stage, stored as JSON in ``runs.timings_s``.
        fixes_per_s : float
            Throughput of the run.

        Raises
        ------
        ValueError
            If the run is unknown or already finished, or a count is negative.
        """
        counts = {"n_read": n_read, "n_accepted": n_accepted, "n_quarantined": n_quarantined, "n_alerts": n_alerts}
        for name, value in counts.items():
            if int(value) != value or value < 0:
                raise ValueError(f"finish_run: {name} must be a non-negative integer, got {value!r}")
        timings_json = json.dumps({str(k): float(v) for k, v in dict(timings).items()}, sort_keys=True)
        with self._transaction() as cur:
            done = cur.execute(
                "UPDATE runs SET status = 'finished', finished_at = ?, n_read = ?, n_accepted = ?, "
                "n_quarantined = ?, n_alerts = ?, timings_s = ?, fixes_per_s = ? "
                "WHERE run_id = ? AND status = 'running' RETURNING run_id",
                [_now(), *(int(v) for v in counts.values()), timings_json, float(fixes_per_s), run_id],
            ).fetchall()
            if not done:
                self._require_run(cur, run_id)
                raise ValueError(f"run {run_id!r} is already finished")

    @staticmethod
    def _require_run(cur, run_id: str) -> None:
        if not cur.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise ValueError(f"unknown run_id {run_id!r}")

    def runs(self) -> pa.Table:
        """Return every run, oldest first, in :data:`RUN_SCHEMA`."""
        cur = self._cursor()
        result = cur.sql(f"SELECT {', '.join(RUN_SCHEMA.names)} FROM runs ORDER BY started_at, run_id")
        return _to_schema(result.to_arrow_table(), RUN_SCHEMA)

    # -- alerts ----------------------------------------------------------------

    def write_alerts(self, table: pa.Table) -> int:
        """Upsert alerts from the Monitor and return how many are new.

        Parameters
        ----------
        table : pyarrow.Table
            Exactly the columns of :data:`ALERT_SCHEMA`.

        Returns
        -------
        int
            Number of alert rows inserted (ids not stored before).

        Raises
        ------
        ValueError
            Naming a missing, unexpected or mistyped column, a null in a
            non-null column, an unknown severity or details that are not JSON.

        Notes
        -----
        The upsert rule: a new ``alert_id`` is inserted with status ``open``.
        An existing one only gets ``ended_ts`` filled in (if it was null and the
        incoming one is not) and ``details`` replaced; ``emitted_at``,
        ``run_id``, the lifecycle columns and everything else are never
        overwritten. An open handover (``ended_ts`` null) of an alert already
        stored as ended changes nothing, and a row whose values would not change
        is not touched, so replaying the same input leaves the table exactly as
        it was. Several handovers of one id in the same batch are merged first
        (earliest ``emitted_at`` wins, ended beats open, later beats earlier).
        """
        table = _conform(table, ALERT_SCHEMA, "alerts table")
        if table.num_rows == 0:
            return 0
        bad = pc.filter(table["severity"], pc.invert(pc.is_in(table["severity"], pa.array(SEVERITIES))))
        if len(bad):
            raise ValueError(
                f"alerts table: column 'severity' has unknown value {bad[0].as_py()!r}; expected one of {SEVERITIES}"
            )
        source = _INCOMING
        if pc.count_distinct(table["alert_id"]).as_py() < table.num_rows:
            table = table.append_column("_ord", pa.array(np.arange(table.num_rows, dtype=np.int64)))
            source = _MERGED
        now = _now()
        with self._transaction() as cur:
            cur.register(_INCOMING, table)
            try:
                n_bad = cur.execute(f"SELECT count(*) FROM {_INCOMING} WHERE NOT json_valid(details)").fetchall()[0][0]
                if n_bad:
                    raise ValueError(f"alerts table: column 'details' has {n_bad} value(s) that are not valid JSON")
                cur.execute(_UPDATE_ALERTS.format(source=source), [now]).fetchall()
                return cur.execute(_INSERT_ALERTS.format(source=source), [now]).fetchall()[0][0]
            finally:
                cur.unregister(_INCOMING)

    def list_alerts(
        self,
        *,
        kind: str | Iterable[str] | None = None,
        office_id: str | Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        subject_id: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Return stored alerts, ordered by ``onset_ts`` then ``alert_id``.

        Parameters
        ----------
        kind, office_id, status, subject_id : str or iterable of str, optional
            Keep alerts whose column equals the value (or one of the values).
            ``office_id`` is the supervising office.
        since, until : datetime, optional
            Timezone-aware bounds on ``onset_ts``: ``since <= onset_ts < until``.
        limit : int, optional
            At most this many rows.

        Returns
        -------
        pyarrow.Table
            In :data:`STORED_ALERT_SCHEMA`.
        """
        conditions: list[str] = []
        params: list = []
        for column, values in (("kind", kind), ("office_id", office_id), ("status", status), ("subject_id", subject_id)):
            if values is not None:
                conditions.append(_in_list(column, values, params))
        if since is not None:
            conditions.append("onset_ts >= ?")
            params.append(_ms(since))
        if until is not None:
            conditions.append("onset_ts < ?")
            params.append(_ms(until))
        sql = f"SELECT {', '.join(STORED_ALERT_SCHEMA.names)} FROM alerts"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY onset_ts, alert_id"
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"limit must be a non-negative int, got {limit!r}")
            sql += " LIMIT ?"
            params.append(limit)
        result = self._cursor().sql(sql, params=params)
        return _to_schema(result.to_arrow_table(), STORED_ALERT_SCHEMA)

    def alert_counts(self, by: str | Iterable[str] = ("kind", "office_id")) -> pa.Table:
        """Return the number of stored alerts per group.

        Parameters
        ----------
        by : str or iterable of str
            Columns from :data:`GROUP_COLUMNS`; empty for one total.

        Returns
        -------
        pyarrow.Table
            The ``by`` columns and ``n_alerts`` (int64), ordered by ``by``.
        """
        by = (by,) if isinstance(by, str) else tuple(by)
        unknown = [c for c in by if c not in GROUP_COLUMNS]
        if unknown:
            raise ValueError(f"alert_counts: cannot group by {unknown[0]!r}; choose from {GROUP_COLUMNS}")
        if not by:
            sql = "SELECT count(*) AS n_alerts FROM alerts"
        else:
            cols = ", ".join(by)
            sql = f"SELECT {cols}, count(*) AS n_alerts FROM alerts GROUP BY {cols} ORDER BY {cols}"
        schema = pa.schema([*(STORED_ALERT_SCHEMA.field(c) for c in by), pa.field("n_alerts", pa.int64(), False)])
        return _to_schema(self._cursor().sql(sql).to_arrow_table(), schema)

    # -- lifecycle -------------------------------------------------------------

    def acknowledge(self, alert_id: str, at: datetime) -> None:
        """Mark an open alert as acknowledged by its office at wall time *at*."""
        self._transition(alert_id, "acknowledged", at)

    def dispatch(self, alert_id: str, at: datetime) -> None:
        """Mark an acknowledged alert as dispatched (someone sent out) at *at*."""
        self._transition(alert_id, "dispatched", at)

    def close_alert(self, alert_id: str, at: datetime) -> None:
        """Close an acknowledged or dispatched alert at *at*.

        An open alert cannot be closed directly: someone must acknowledge it
        first, so every closed alert shows who looked at it and when. A false
        alarm is acknowledged and then closed without dispatch.
        """
        self._transition(alert_id, "closed", at)

    def _transition(self, alert_id: str, target: str, at: datetime) -> None:
        previous, column = _TRANSITIONS[target]
        at = _ms(at)
        placeholders = ", ".join("?" * len(previous))
        with self._transaction() as cur:
            done = cur.execute(
                f"UPDATE alerts SET status = ?, {column} = ?, updated_at = ? "
                f"WHERE alert_id = ? AND status IN ({placeholders}) "
                "AND coalesce(greatest(acknowledged_at, dispatched_at) <= ?, TRUE) RETURNING alert_id",
                [target, at, _now(), alert_id, *previous, at],
            ).fetchall()
            if done:
                return
            row = cur.execute(
                "SELECT status, greatest(acknowledged_at, dispatched_at) FROM alerts WHERE alert_id = ?", [alert_id]
            ).fetchall()
        if not row:
            raise LifecycleError(f"unknown alert_id {alert_id!r}")
        status, last = row[0]
        if status not in previous:
            raise LifecycleError(
                f"alert {alert_id!r} is {status}; it can become {target} only from {' or '.join(previous)}"
            )
        raise LifecycleError(
            f"alert {alert_id!r}: {target} at {at.isoformat()} is before its previous step at {last.isoformat()}"
        )

    # -- quarantine ------------------------------------------------------------

    def write_quarantine(self, run_id: str, table: pa.Table) -> int:
        """Store the rows a run's loading refused; return how many are new.

        Parameters
        ----------
        run_id : str
            A run from :meth:`start_run`.
        table : pyarrow.Table
            Exactly :data:`geomon.schema.QUARANTINE_SCHEMA`.

        Notes
        -----
        ``(run_id, source_name, row)`` is the primary key, so writing the same
        rows for the same run again adds nothing. The first reason stored wins;
        within one table, the first row in table order.
        """
        table = _conform(table, QUARANTINE_SCHEMA, "quarantine table")
        # Rank rows so that duplicates inside the table resolve to the first one
        # rather than to whichever a parallel insert happens to meet first.
        table = table.append_column("_ord", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        with self._transaction() as cur:
            self._require_run(cur, run_id)
            if table.num_rows == 0:
                return 0
            cur.register(_INCOMING, table)
            try:
                return cur.execute(
                    'INSERT INTO quarantine (run_id, source_name, "row", field, reason, raw) '
                    f'SELECT ?, source_name, "row", field, reason, raw FROM {_INCOMING} '
                    'QUALIFY row_number() OVER (PARTITION BY source_name, "row" ORDER BY _ord) = 1 '
                    "ON CONFLICT DO NOTHING",
                    [run_id],
                ).fetchall()[0][0]
            finally:
                cur.unregister(_INCOMING)

    def quarantine_counts(self, run_id: str | None = None) -> pa.Table:
        """Return quarantined rows per reason, most frequent first.

        Parameters
        ----------
        run_id : str, optional
            Count one run only; by default all runs.

        Returns
        -------
        pyarrow.Table
            ``reason`` (string) and ``n_rows`` (int64).
        """
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        sql = f"SELECT reason, count(*) AS n_rows FROM quarantine {where} GROUP BY reason ORDER BY n_rows DESC, reason"
        schema = pa.schema([pa.field("reason", pa.string(), False), pa.field("n_rows", pa.int64(), False)])
        return _to_schema(self._cursor().sql(sql, params=params).to_arrow_table(), schema)

    def list_quarantine(self, run_id: str | None = None) -> pa.Table:
        """Return quarantined rows, ordered by run, source and row.

        Parameters
        ----------
        run_id : str, optional
            Rows of one run only; by default all runs.

        Returns
        -------
        pyarrow.Table
            In :data:`STORED_QUARANTINE_SCHEMA`.
        """
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        cols = ", ".join(f'"{c}"' for c in STORED_QUARANTINE_SCHEMA.names)
        sql = f'SELECT {cols} FROM quarantine {where} ORDER BY run_id, source_name, "row"'
        return _to_schema(self._cursor().sql(sql, params=params).to_arrow_table(), STORED_QUARANTINE_SCHEMA)
