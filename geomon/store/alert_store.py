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

This module holds the connection (opening, cursors, transactions) and the
writes. The table layout (Arrow schemas, DDL, input checks) lives in
:mod:`geomon.store.schema`; the methods that read alerts, stays and tracks back
in :mod:`geomon.store.queries`; the lifecycle steps, audit log and service
levels in :mod:`geomon.store.lifecycle`; the runs and quarantine methods in
:mod:`geomon.store.runs`; the live checkpoints and latency in
:mod:`geomon.store.live`. Import every name from here.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.errors import GeomonError, StoreError
from geomon.store.lifecycle import LifecycleError, _Lifecycle
from geomon.store.live import _LiveLog
from geomon.store.queries import GROUP_COLUMNS, _Queries
from geomon.store.runs import _RunLog
from geomon.store.schema import (
    _DDL,
    _INCOMING,
    ALERT_SCHEMA,
    AUDIT_SCHEMA,
    LIFECYCLE_SCHEMA,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    SEVERITIES,
    STATUSES,
    STAY_ENDINGS,
    STAY_SCHEMA,
    STORED_ALERT_SCHEMA,
    STORED_QUARANTINE_SCHEMA,
    TRACK_SCHEMA,
    _conform,
    _now,
)

__all__ = [
    "ALERT_SCHEMA",
    "AUDIT_SCHEMA",
    "GROUP_COLUMNS",
    "LIFECYCLE_SCHEMA",
    "RUN_SCHEMA",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "STATUSES",
    "STAY_ENDINGS",
    "STAY_SCHEMA",
    "STORED_ALERT_SCHEMA",
    "STORED_QUARANTINE_SCHEMA",
    "TRACK_SCHEMA",
    "AlertStore",
    "LifecycleError",
]

_ALERT_COLS = ", ".join(ALERT_SCHEMA.names)

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

_VIEW = "CREATE OR REPLACE VIEW"

#: Seconds an opening waits while another process holds the file (``$GEOMON_STORE_WAIT_S``; default 10).
WAIT_ENV = "GEOMON_STORE_WAIT_S"


def default_wait_s() -> float:
    """How long opening a store waits for another process to let go of it (``$GEOMON_STORE_WAIT_S``, else 10 s)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, "10")))
    except ValueError:
        return 10.0


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _rollback(cur) -> None:
    try:
        cur.rollback()
    except duckdb.Error:
        pass   # the transaction is already gone (DuckDB aborted it)


class AlertStore(_Queries, _Lifecycle, _RunLog, _LiveLog):
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

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False, wait_s: float | None = None):
        self.path = ":memory:" if path is None or str(path) == ":memory:" else str(Path(path))
        if read_only and self.path == ":memory:":
            raise ValueError("an in-memory store cannot be read-only")
        if read_only and not Path(self.path).exists():
            raise FileNotFoundError(f"{self.path}: no such database")
        self.read_only = read_only
        self.wait_s = default_wait_s() if wait_s is None else float(wait_s)
        self._log_mb: int | None = None
        self._con: duckdb.DuckDBPyConnection | None = self._connect()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        try:
            self._open_schema()
        except BaseException:
            self.close()
            raise

    # -- connection handling -------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to ``wait_s`` while another process holds it (DuckDB: one writer, or readers)."""
        deadline = time.monotonic() + self.wait_s
        pause = 0.02
        while True:
            try:
                return duckdb.connect(self.path, read_only=self.read_only)
            except duckdb.IOException as exc:
                text = str(exc)
                if "lock" not in text.lower():
                    raise StoreError(f"{self.path}: cannot open the store: {_first(text)}") from None
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", text)
                    who = f"process {holder.group(1)}" if holder else "another process"
                    if self.read_only:
                        raise StoreError(f"{self.path}: {who} is writing the store and did not let go within "
                                         f"{self.wait_s:g} s (a live `geomon watch` keeps it); "
                                         f"try again later") from None
                    raise StoreError(f"{self.path}: the store is in use by {who}; it takes one writer at a time "
                                     f"(wait for it to finish, or write into another --db)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: cannot open the store: {_first(str(exc))}") from None

    def let_log_grow(self, megabytes: int) -> None:
        """Let DuckDB's write-ahead log grow to ``megabytes`` before it is folded into the file (DuckDB's
        ``checkpoint_threshold``; its default is 16 MB).

        Each fold rewrites the tables the log touched, so a writer that commits many small transactions on the
        same rows (the live path's checkpoints: tens of MB of subject state every few seconds) pays a rewrite
        every few commits at the default. With a larger log the rewrites are rarer and cover more commits. The
        cost: up to that much uncheckpointed data held in memory, and read back from the log when the store is
        opened after a crash. Closing the store folds the log in.
        """
        if not isinstance(megabytes, int) or megabytes < 1:
            raise ValueError(f"megabytes must be a positive integer, not {megabytes!r}")
        self._log_mb = megabytes
        self._apply_log_limit(self._cursor())

    def _apply_log_limit(self, con) -> None:
        """Set :meth:`let_log_grow`'s limit on a (re)opened connection, if one was asked for."""
        if self._log_mb is not None:
            con.execute(f"SET checkpoint_threshold = '{self._log_mb}MB'")

    def release(self) -> None:
        """Let go of the file between batches (readers may open it then); the next write opens it again."""
        self.close()
        self._local = threading.local()
        self._released = True

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._con is None and getattr(self, "_released", False):
            self._con = self._connect()
            self._released = False
            self._apply_log_limit(self._con)
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
        if getattr(self._local, "depth", 0):   # inside atomic(): part of the caller's transaction
            self._local.depth += 1
            try:
                yield cur
            finally:
                self._local.depth -= 1
            return
        cur.begin()
        self._local.depth = 1
        try:
            yield cur
        except duckdb.Error as exc:
            self._local.depth = 0
            _rollback(cur)
            raise StoreError(f"{self.path}: writing failed ({_first(str(exc))}); nothing of this batch was stored, "
                             f"everything committed before it is intact") from None
        except BaseException:
            self._local.depth = 0
            _rollback(cur)
            raise
        self._local.depth = 0
        try:
            cur.commit()
        except duckdb.Error as exc:
            _rollback(cur)
            raise StoreError(f"{self.path}: the commit failed ({_first(str(exc))}); nothing of this batch was "
                             f"stored, everything committed before it is intact") from None

    @contextmanager
    def atomic(self):
        """Everything written inside the block (alerts, stays, tracks, quarantine, checkpoints) commits together.

        An exception inside rolls all of it back. Nested blocks join the
        outer one. The live path writes each micro-batch's alerts and the
        Monitor's checkpoint this way (:mod:`geomon.run.live`).
        """
        with self._transaction():
            yield self

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
        if self.read_only:
            # Views are derived: a store written by a geomon that predates one gets it for this session only.
            have = {r[0] for r in cur.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            for ddl in _DDL:
                if ddl.startswith(_VIEW) and ddl[len(_VIEW):].split()[0] not in have:
                    cur.execute("CREATE OR REPLACE TEMP VIEW" + ddl[len(_VIEW):])

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

    # -- stays -----------------------------------------------------------------

    def write_stays(self, table: pa.Table) -> int:
        """Store stays the Monitor closed (:meth:`geomon.engine.monitor.Monitor.take_stays`); return how many are new.

        Parameters
        ----------
        table : pyarrow.Table
            Exactly the columns of :data:`STAY_SCHEMA`.

        Returns
        -------
        int
            Rows inserted. ``(subject_id, started_at)`` is the primary key: a
            stay already stored (a replay of the same input) is left as it was,
            like an alert's ``run_id``.

        Raises
        ------
        ValueError
            Naming a missing, unexpected or mistyped column, a null in a
            non-null column or an unknown ``ended_by``; nothing is written.
        """
        table = _conform(table, STAY_SCHEMA, "stays table")
        if table.num_rows == 0:
            return 0
        bad = pc.filter(table["ended_by"], pc.invert(pc.is_in(table["ended_by"], pa.array(STAY_ENDINGS))))
        if len(bad):
            raise ValueError(
                f"stays table: column 'ended_by' has unknown value {bad[0].as_py()!r}; expected one of {STAY_ENDINGS}"
            )
        return self._insert_new(table, "staypoints", "subject_id, started_at ORDER BY finished_at")

    def _insert_new(self, table: pa.Table, target: str, partition: str) -> int:
        """Insert the rows of ``table`` whose key ``target`` lacks (the first of each key in ``partition``
        order); return how many."""
        return self._insert_incoming(table, target, f"QUALIFY row_number() OVER (PARTITION BY {partition}) = 1 "
                                                    "ON CONFLICT DO NOTHING")

    def _insert_incoming(self, table: pa.Table, target: str, rest: str, params=()) -> int:
        """``INSERT INTO target SELECT ... FROM`` ``table`` (registered for the statement) followed by ``rest``;
        return how many rows went in."""
        cols = ", ".join(table.column_names)
        with self._transaction() as cur:
            cur.register(_INCOMING, table)
            try:
                return cur.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {_INCOMING} {rest}",
                                   list(params)).fetchall()[0][0]
            finally:
                cur.unregister(_INCOMING)

    # -- fused tracks ----------------------------------------------------------

    def write_tracks(self, table: pa.Table, *, unique: bool = False) -> int:
        """Store fused tracks (:meth:`geomon.engine.monitor.Monitor.take_tracks`); return how many rows are new.

        ``(subject_id, ts)`` is the key: a position already stored (a replay of the same input) is left as it
        was, and of equal keys in ``table`` the first is stored. The table has no index on the key (one costs
        seven times the insert, and twice the file, on millions of fixes): a new batch is checked against the
        stored rows of its own time span only, which DuckDB's per-row-group min/max of ``ts`` finds without
        reading the rest, so the check costs little while fixes arrive in time order.

        Parameters
        ----------
        table : pyarrow.Table
            Exactly the columns of :data:`TRACK_SCHEMA`.
        unique : bool
            The caller vouches that no two rows of ``table`` share a key (:meth:`~geomon.engine.monitor.Monitor.
            take_tracks` does), which skips finding the first of each.
        """
        table = _conform(table, TRACK_SCHEMA, "tracks table")
        if table.num_rows == 0:
            return 0
        span = pc.min_max(table.column("ts"))
        first = "" if unique else " QUALIFY row_number() OVER (PARTITION BY subject_id, ts) = 1"
        return self._insert_incoming(
            table, "tracks", "ANTI JOIN (SELECT subject_id, ts FROM tracks WHERE ts BETWEEN ? AND ?) AS stored "
                             f"USING (subject_id, ts){first}", (span["min"].as_py(), span["max"].as_py()))
