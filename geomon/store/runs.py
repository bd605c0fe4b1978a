"""Runs of the alert store and the input rows each run refused (quarantine).

A run is one pass of the Monitor over its input: :meth:`_RunLog.start_run`
records what it reads, :meth:`_RunLog.finish_run` its counts and timings, and
:meth:`_RunLog.write_quarantine` every input row its loading refused. The
methods are mixed into :class:`geomon.store.alert_store.AlertStore`, which supplies the
connection (``_cursor`` and ``_transaction``); use them from there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from geomon import __version__
from geomon.schema import QUARANTINE_SCHEMA
from geomon.store.schema import _INCOMING, RUN_SCHEMA, STORED_QUARANTINE_SCHEMA, _conform, _now, _to_schema


class _RunLog:
    """The ``runs`` and ``quarantine`` tables of :class:`geomon.store.alert_store.AlertStore`."""

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
