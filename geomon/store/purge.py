"""Removing data on request: one subject's everything (``geomon purge SUBJECT``), or all that is older than a cutoff.

:func:`purge_subject` deletes, in one transaction, a subject's alerts (with
their audit trail and latency rows), stays, fused tracks and the quarantined
input rows that name it, and writes a row to the ``purges`` table saying when,
by whom, why and how many rows of each table went. The subject is recorded
there only as its keyed pseudonym (:func:`geomon.io.export.pseudonym`), or not at
all without a key: the record must not undo the removal.

:func:`purge_older` is the retention policy: tracks, stays and quarantined
input older than a cutoff go (the positions), alerts only when asked (they are
the centre's record of its work, kept per its own policy).

Live checkpoints (``checkpoint_rows``) hold each subject's filter state by
roster position, not by id; a subject leaves them when the stream is restarted
without it (docs/privacy.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from geomon.io.export import pseudonym

__all__ = ["purge_older", "purge_subject"]

#: Tables holding a subject's data, and how their rows are chosen (parameter: the subject id).
_SUBJECT_ROWS = {
    "alert_audit": "alert_id IN (SELECT alert_id FROM alerts WHERE subject_id = ?)",
    "alert_latency": "alert_id IN (SELECT alert_id FROM alerts WHERE subject_id = ?)",
    "alerts": "subject_id = ?",
    "staypoints": "subject_id = ?",
    "tracks": "subject_id = ?",
    "quarantine": "json_extract_string(raw, '$.subject_id') = ?",
}

#: Retention: the time column of each table whose rows age out, and whether it goes by default.
_AGED = {"tracks": ("ts", True), "staypoints": ("finished_at", True), "quarantine": (None, True),
         "alerts": ("confirmed_ts", False)}


def _record(cur, what: str, counts: dict, *, subject_ref=None, cutoff=None, by=None, reason=None) -> None:
    cur.execute("INSERT INTO purges VALUES (?, ?, ?, ?, ?, ?, ?)",
                [datetime.now(timezone.utc), what, subject_ref, cutoff, json.dumps(counts, sort_keys=True), by,
                 reason]).fetchall()


def purge_subject(store, subject_id: str, *, key: bytes | None = None, by: str | None = None,
                  reason: str | None = None) -> dict:
    """Delete everything the store holds about ``subject_id``; return the rows removed per table.

    Parameters
    ----------
    store : AlertStore
        Opened for writing.
    subject_id : str
        The subject (or other tracked person) to remove.
    key : bytes, optional
        The pseudonym key: the ``purges`` record then names the subject by
        its pseudonym (without one it names nobody).
    by, reason : str, optional
        Who asked, and why (a court order, end of supervision).
    """
    counts = {}
    with store.atomic():
        cur = store._cursor()
        for table, where in _SUBJECT_ROWS.items():   # audit and latency first: they find their rows via alerts
            n = cur.execute(f"SELECT count(*) FROM {table} WHERE {where}", [subject_id]).fetchone()[0]
            cur.execute(f"DELETE FROM {table} WHERE {where}", [subject_id]).fetchall()
            counts[table] = int(n)
        _record(cur, "subject", counts, subject_ref=pseudonym(subject_id, key) if key else None, by=by, reason=reason)
    return counts


def purge_older(store, days: float, *, now: datetime | None = None, alerts: bool = False, by: str | None = None,
                reason: str | None = None) -> dict:
    """Delete tracks, stays and quarantined input older than ``days`` (and alerts too with ``alerts``).

    Quarantined rows age with the run that wrote them (``runs.started_at``).
    An alert goes with its audit and latency rows. Returns the rows removed
    per table; the purge is recorded in ``purges``.
    """
    if not days >= 0:
        raise ValueError(f"days must be a number >= 0, not {days!r}")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=float(days))
    counts = {}
    with store.atomic():
        cur = store._cursor()
        for table, (column, default) in _AGED.items():
            if not (default or alerts):
                continue
            if table == "quarantine":
                where = "run_id IN (SELECT run_id FROM runs WHERE started_at < ?)"
            else:
                where = f"{column} < ?"
            if table == "alerts":
                for child in ("alert_audit", "alert_latency"):
                    sub = f"alert_id IN (SELECT alert_id FROM alerts WHERE {where})"
                    counts[child] = int(
                        cur.execute(f"SELECT count(*) FROM {child} WHERE {sub}", [cutoff]).fetchone()[0]
                    )
                    cur.execute(f"DELETE FROM {child} WHERE {sub}", [cutoff]).fetchall()
            counts[table] = int(cur.execute(f"SELECT count(*) FROM {table} WHERE {where}", [cutoff]).fetchone()[0])
            cur.execute(f"DELETE FROM {table} WHERE {where}", [cutoff]).fetchall()
        _record(cur, "older_than", counts, cutoff=cutoff, by=by, reason=reason)
    return counts
