"""The lifecycle of a stored alert (acknowledged, dispatched, closed), its audit log and the service levels.

Each step is one transaction that moves the alert's ``status`` forward and
appends a row to ``alert_audit``; a step out of order, or dated before the
previous one, raises :class:`LifecycleError`. The methods are mixed into
:class:`geomon.store.alert_store.AlertStore`, which supplies the connection
(``_cursor`` and ``_transaction``) and :meth:`~geomon.store.alert_store.AlertStore.list_alerts`;
use them from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa

from geomon.errors import GeomonError
from geomon.store.queries import _in_list
from geomon.store.schema import AUDIT_SCHEMA, _ms, _now, _to_schema

# Lifecycle transitions: target status -> (statuses it may follow, column that
# records when it happened).
_TRANSITIONS = {
    "acknowledged": (("open",), "acknowledged_at"),
    "dispatched": (("acknowledged",), "dispatched_at"),
    "closed": (("acknowledged", "dispatched"), "closed_at"),
}

#: The action that takes an alert to each status, as the audit log names it.
_ACTIONS = {"acknowledged": "ack", "dispatched": "dispatch", "closed": "close"}


class LifecycleError(GeomonError, ValueError):
    """A lifecycle transition is not allowed: unknown alert, wrong order or time."""


#: The shortest alert id prefix :meth:`_Lifecycle.resolve_alert_id` takes (listings show :data:`SHORT_ID`).
MIN_ID_PREFIX = 6
#: Characters of an alert id that listings show; any unique prefix of at least MIN_ID_PREFIX names the alert.
SHORT_ID = 10


class _Lifecycle:
    """The ``alert_audit`` table and the lifecycle steps of :class:`geomon.store.alert_store.AlertStore`."""

    def resolve_alert_id(self, prefix: str) -> str:
        """The stored alert id that starts with ``prefix``: a listing's short id, or the whole id (as git takes a
        commit's). Refused, naming the candidates, when no alert or several start with it."""
        prefix = prefix.strip().lower()
        if len(prefix) < MIN_ID_PREFIX:
            raise LifecycleError(f"alert id {prefix!r} is too short: give at least {MIN_ID_PREFIX} characters")
        got = [r[0] for r in self._cursor().execute(
            "SELECT alert_id FROM alerts WHERE starts_with(alert_id, ?) ORDER BY alert_id LIMIT 4",
            [prefix]).fetchall()]
        if not got:
            raise LifecycleError(f"unknown alert_id {prefix!r}")
        if len(got) > 1:
            raise LifecycleError(f"alert id {prefix!r} is ambiguous ({', '.join(got[:3])}"
                                 f"{', ...' if len(got) > 3 else ''}): give more characters")
        return got[0]

    def acknowledge(self, alert_id: str, at: datetime, *, by: str | None = None, note: str | None = None) -> None:
        """Mark an open alert as acknowledged by its office at wall time *at* (by whom, with a note: audited)."""
        self._transition(alert_id, "acknowledged", at, by, note)

    def dispatch(self, alert_id: str, at: datetime, *, by: str | None = None, note: str | None = None) -> None:
        """Mark an acknowledged alert as dispatched (someone sent out) at *at*."""
        self._transition(alert_id, "dispatched", at, by, note)

    def close_alert(self, alert_id: str, at: datetime, *, by: str | None = None, note: str | None = None) -> None:
        """Close an acknowledged or dispatched alert at *at*.

        An open alert cannot be closed directly: someone must acknowledge it
        first, so every closed alert shows who looked at it and when. A false
        alarm is acknowledged and then closed without dispatch.
        """
        self._transition(alert_id, "closed", at, by, note)

    def transition_many(self, target: str, at: datetime, *, by: str | None = None, note: str | None = None,
                        **filters) -> tuple[list[str], list[tuple[str, str]]]:
        """Take every alert matching ``filters`` (those of :meth:`list_alerts`) to ``target``.

        Returns the ids moved and, for the others, ``(id, reason)``; each move
        is its own transaction and audit row.
        """
        if target not in _TRANSITIONS:
            raise ValueError(f"unknown target status {target!r}; expected one of {sorted(_TRANSITIONS)}")
        if not any(v is not None for v in filters.values()):
            raise ValueError("a bulk step needs at least one filter "
                             "(kind, office_id, status, subject_id, since, until)")
        moved, refused = [], []
        for alert_id in self.list_alerts(**filters).column("alert_id").to_pylist():
            try:
                self._transition(alert_id, target, at, by, note)
                moved.append(alert_id)
            except LifecycleError as exc:
                refused.append((alert_id, str(exc)))
        return moved, refused

    def service_levels(self, period: str = "day", office_id: str | Iterable[str] | None = None) -> pa.Table:
        """Service levels per supervising office and period (``day``, ``month`` or ``quarter``; China Standard Time).

        Columns of the ``sla_daily`` / ``sla_monthly`` / ``sla_quarterly``
        views: ``office_id, period, n_alerts, n_received, n_received_30s,
        n_dispatched, n_dispatched_5min, n_open, n_closed,
        share_received_30s, share_dispatched_5min, median_receipt_s,
        median_dispatch_s``. Received means acknowledged; both delays count
        from the alert's confirmation.
        """
        views = {"day": "sla_daily", "month": "sla_monthly", "quarter": "sla_quarterly"}
        if period not in views:
            raise ValueError(f"period must be one of {sorted(views)}, not {period!r}")
        params: list = []
        where = f" WHERE {_in_list('office_id', office_id, params)}" if office_id is not None else ""
        return self._cursor().sql(f"SELECT * FROM {views[period]}{where} ORDER BY office_id, period",
                                  params=params).to_arrow_table()

    def audit_log(self, alert_id: str | Iterable[str] | None = None) -> pa.Table:
        """The audit log (all, or of some alerts), in the order it was written."""
        params: list = []
        where = f" WHERE {_in_list('alert_id', alert_id, params)}" if alert_id is not None else ""
        sql = f"SELECT {', '.join(AUDIT_SCHEMA.names)} FROM alert_audit{where} ORDER BY recorded_at, step_at, alert_id"
        return _to_schema(self._cursor().sql(sql, params=params).to_arrow_table(), AUDIT_SCHEMA)

    def _transition(self, alert_id: str, target: str, at: datetime, by: str | None = None,
                    note: str | None = None) -> None:
        previous, column = _TRANSITIONS[target]
        at = _ms(at)
        placeholders = ", ".join("?" * len(previous))
        with self._transaction() as cur:
            before = cur.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert_id]).fetchall()
            done = cur.execute(
                f"UPDATE alerts SET status = ?, {column} = ?, updated_at = ? "
                f"WHERE alert_id = ? AND status IN ({placeholders}) "
                "AND coalesce(greatest(acknowledged_at, dispatched_at) <= ?, TRUE) RETURNING alert_id",
                [target, at, _now(), alert_id, *previous, at],
            ).fetchall()
            if done:
                cur.execute("INSERT INTO alert_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [alert_id, _ACTIONS[target], before[0][0], target, at, by, note, _now()]).fetchall()
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
