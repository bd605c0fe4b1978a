"""Checkpoints and alert latency of live operation, in the alert store.

A live stream (:mod:`geomon.run.live`) commits, per micro-batch and in one
transaction (:meth:`geomon.store.alert_store.AlertStore.atomic`): the alerts, stays, tracks
and quarantine rows it produced, the latency of its new alerts, and — when a
checkpoint is due — the Monitor's state. The state is split into the
``checkpoints`` row of the stream (global state, the fixes held back for
lateness, the input consumed) and one ``checkpoint_rows`` row per subject
whose state changed since the previous checkpoint
(:class:`geomon.run.checkpoint.StateTracker`), appended under the checkpoint's
``seq``: a subject's newest row is its state. The methods are mixed into
:class:`geomon.store.alert_store.AlertStore`; use them from there.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pyarrow as pa

from geomon.store.schema import _INCOMING, _now

#: Rows of :meth:`_LiveLog.write_latency` (times are timezone-aware UTC).
LATENCY_SCHEMA = pa.schema([
    pa.field("alert_id", pa.string(), nullable=False),
    pa.field("fix_arrived_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


#: Superseded state rows are deleted once a stream holds more than this many rows per subject of its roster:
#: the table stays within a few times one full state, and the delete runs every few checkpoints, not every one.
COMPACT_AFTER = 3


class _LiveLog:
    """The ``checkpoints``, ``checkpoint_rows`` and ``alert_latency`` tables of the alert store."""

    def save_checkpoint(self, stream_id: str, *, run_id: str, seq: int, config_hash: str, watermark_ms: int,
                        positions: dict, global_state: bytes, pending: bytes, codes: np.ndarray,
                        states, roster: int = 0) -> None:
        """Replace the stream's checkpoint; append the state of subjects ``codes`` (one blob each) under ``seq``.

        ``states`` holds one blob per code (bytes, or a pyarrow binary array), as
        :func:`geomon.run.checkpoint.encode_rows` makes them (about 5x smaller than the rows: most state is
        zeros), which keeps the DuckDB write-ahead log, and the checkpoints DuckDB makes of it, small.

        Rows are appended, never updated in place: an upsert of hundreds of thousands of keyed rows (a million
        subjects, a checkpoint every 5 s) took DuckDB seconds and grew worse with every one. A subject's newest
        row is its state; once the stream holds more than :data:`COMPACT_AFTER` rows per subject of its roster
        (``roster``: how many subjects the stream has), the superseded ones are deleted in the same transaction.
        """
        with self._transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [stream_id, run_id, int(seq), config_hash, int(watermark_ms), json.dumps(positions),
                         global_state, pending, _now()])
            if len(codes):
                table = pa.table({"stream_id": pa.array([stream_id] * len(codes), pa.string()),
                                  "seq": pa.array(np.full(len(codes), int(seq), np.int64)),
                                  "subject_code": pa.array(np.asarray(codes, np.int32)),
                                  "state": states if isinstance(states, pa.Array) else pa.array(states, pa.binary())})
                cur.register(_INCOMING, table)
                try:
                    cur.execute(f"INSERT INTO checkpoint_rows SELECT * FROM {_INCOMING}")
                finally:
                    cur.unregister(_INCOMING)
            rows = cur.execute("SELECT count(*) FROM checkpoint_rows WHERE stream_id = ?", [stream_id]).fetchone()[0]
            if rows > COMPACT_AFTER * max(roster, 1):
                cur.execute("DELETE FROM checkpoint_rows c USING (SELECT subject_code, max(seq) AS newest "
                            "FROM checkpoint_rows WHERE stream_id = $1 GROUP BY subject_code) n "
                            "WHERE c.stream_id = $1 AND c.subject_code = n.subject_code AND c.seq < n.newest",
                            [stream_id])

    def load_checkpoint(self, stream_id: str) -> dict | None:
        """The stream's checkpoint (keys as :meth:`save_checkpoint`'s arguments), or None if it has none."""
        cur = self._cursor()
        got = cur.execute("SELECT run_id, seq, config_hash, watermark_ms, positions, global_state, pending "
                          "FROM checkpoints WHERE stream_id = ?", [stream_id]).fetchall()
        if not got:
            return None
        run_id, seq, config_hash, watermark_ms, positions, global_state, pending = got[0]
        table = cur.sql("SELECT subject_code, arg_max(state, seq) AS state FROM checkpoint_rows "
                        "WHERE stream_id = ? GROUP BY subject_code ORDER BY subject_code",
                        params=[stream_id]).to_arrow_table()
        codes = table.column("subject_code").to_numpy().astype(np.int64)
        return {"run_id": run_id, "seq": seq, "config_hash": config_hash, "watermark_ms": watermark_ms,
                "positions": json.loads(positions), "global_state": bytes(global_state), "pending": bytes(pending),
                "codes": codes, "states": table.column("state").to_pylist()}

    def write_latency(self, stream_id: str, table: pa.Table, committed_at: datetime) -> int:
        """Record when each new alert's confirming fix arrived and when it was committed; return rows added.

        Ids already recorded (an alert emitted again after a restart) keep their first times.
        """
        if table.num_rows == 0:
            return 0
        with self._transaction() as cur:
            cur.register(_INCOMING, table)
            try:
                return cur.execute(
                    f"INSERT INTO alert_latency SELECT alert_id, ?, fix_arrived_at, ? FROM {_INCOMING} "
                    "ON CONFLICT DO NOTHING", [stream_id, committed_at]).fetchall()[0][0]
            finally:
                cur.unregister(_INCOMING)

    def latency(self, stream_id: str | None = None) -> pa.Table:
        """Rows of ``alert_latency`` (all streams, or one), with ``latency_s`` from arrival to commit."""
        where, params = ("WHERE stream_id = ?", [stream_id]) if stream_id is not None else ("", [])
        return self._cursor().sql(
            "SELECT alert_id, stream_id, fix_arrived_at, committed_at, "
            f"epoch(committed_at - fix_arrived_at) AS latency_s FROM alert_latency {where} ORDER BY committed_at",
            params=params).to_arrow_table()
