"""Reading the alert store back: alerts, stays and fused tracks by filter, and alert counts by group.

The methods are mixed into :class:`geomon.store.alert_store.AlertStore`, which
supplies the connection (``_cursor``); use them from there. Every filter value
reaches SQL as a bound parameter (:func:`_in_list`), and the columns one may
group by are a fixed whitelist (:data:`GROUP_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa

from geomon.store.schema import STAY_SCHEMA, STORED_ALERT_SCHEMA, TRACK_SCHEMA, _ms, _to_schema

#: Columns :meth:`_Queries.alert_counts` may group by.
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


class _Queries:
    """The reading side of :class:`geomon.store.alert_store.AlertStore`: alerts, stays, tracks and counts."""

    def list_tracks(self, since: datetime, until: datetime, *,
                    subject_id: str | Iterable[str] | None = None) -> pa.Table:
        """Stored fused positions with ``since <= ts < until`` (timezone-aware), by subject then time."""
        params: list = [_ms(since), _ms(until)]
        where = "ts >= ? AND ts < ?"
        if subject_id is not None:
            where += " AND " + _in_list("subject_id", subject_id, params)
        sql = f"SELECT {', '.join(TRACK_SCHEMA.names)} FROM tracks WHERE {where} ORDER BY subject_id, ts"
        return _to_schema(self._cursor().sql(sql, params=params).to_arrow_table(), TRACK_SCHEMA)

    def list_stays(self, *, subject_id: str | Iterable[str] | None = None) -> pa.Table:
        """Return stored stays (all, or of some subjects), ordered by subject and start, in :data:`STAY_SCHEMA`."""
        params: list = []
        where = f" WHERE {_in_list('subject_id', subject_id, params)}" if subject_id is not None else ""
        sql = f"SELECT {', '.join(STAY_SCHEMA.names)} FROM staypoints{where} ORDER BY subject_id, started_at"
        return _to_schema(self._cursor().sql(sql, params=params).to_arrow_table(), STAY_SCHEMA)

    def list_alerts(
        self,
        *,
        kind: str | Iterable[str] | None = None,
        office_id: str | Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        subject_id: str | Iterable[str] | None = None,
        location_office_id: str | Iterable[str] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pa.Table:
        """Return stored alerts, ordered by ``onset_ts`` then ``alert_id`` (``newest_first``: the other way round,
        so that ``limit`` keeps the newest).

        Parameters
        ----------
        kind, office_id, status, subject_id, location_office_id : str or iterable of str, optional
            Keep alerts whose column equals the value (or one of the values).
            ``office_id`` is the supervising office, ``location_office_id``
            the office whose jurisdiction the alert happened in.
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
        for column, values in (("kind", kind), ("office_id", office_id), ("status", status), ("subject_id", subject_id),
                               ("location_office_id", location_office_id)):
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
        sql += " ORDER BY onset_ts DESC, alert_id DESC" if newest_first else " ORDER BY onset_ts, alert_id"
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
