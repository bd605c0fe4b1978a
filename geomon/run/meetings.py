"""Contact alerts over a batch of recorded fixes: frequent contact with persons of concern and victim protection.

:func:`meeting_alerts` fuses the fixes (:func:`geomon.fuse`), then runs
:func:`geomon.frequent_contacts` and :func:`geomon.victim_alerts` on the
fused tracks; ``geomon meetings`` is its command, writing the alerts into a
store. :func:`load_concern` and :func:`load_protections` read the two lists
(CSV, Parquet or Arrow) with errors naming the row and field.

Persons of concern who are places rather than people are zones of kind
``place_of_concern`` (``dwell_concern``, docs/alerts.md).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from geomon.engine.frequent_contact import frequent_contacts
from geomon.engine.victims import victim_alerts
from geomon.errors import InputError
from geomon.io.common import _read_tabular, _require_columns
from geomon.io.load import load_fixes, load_subjects
from geomon.io.tables import _float_column, _text_column
from geomon.schema import ALERT_SCHEMA
from geomon.tracks.fusion import fuse

__all__ = ["meeting_alerts", "load_concern", "load_protections"]


def _text(table: pa.Table, field: str, src: str, *, required: bool = True) -> list:
    """Column ``field`` as trimmed text, blank as None (text or integer columns, as for the loaders)."""
    values, missing = _text_column(table, field, src)
    if required and missing.any():
        raise InputError(src, f"{field} is empty", row=int(np.argmax(missing)), field=field)
    return values.to_pylist()


def _metres(table: pa.Table, field: str, src: str) -> list:
    """Column ``field`` as float metres (numbers or numeric text); the first row that is not one is an error."""
    values, missing, unparseable = _float_column(table, field, src)
    if unparseable.any():
        r = int(np.argmax(unparseable))
        raise InputError(src, f"{table.column(field)[r].as_py()!r} is not a number", row=r, field=field)
    return values.to_pylist()


def load_concern(source, *, name: str | None = None) -> dict:
    """Persons of concern: ``person_id`` and optionally ``subject_id`` (the subject it concerns; empty: all).

    A person listed with several subjects concerns each of them; listed once
    with an empty ``subject_id``, every subject. Returns the mapping
    :func:`geomon.frequent_contacts` takes.
    """
    table, src, malformed = _read_tabular(source, name, ("person_id", "subject_id"))
    if malformed:
        raise InputError(src, f"malformed CSV record {malformed[0][1]!r}", row=malformed[0][0])
    _require_columns(table, ("person_id",), src)
    people = _text(table, "person_id", src)
    subjects = _text(table, "subject_id", src, required=False) if "subject_id" in table.column_names \
        else [None] * len(people)
    out: dict = {}
    for person, subject in zip(people, subjects):
        if subject is None or out.get(person, ()) is None:
            out[person] = None
        else:
            out.setdefault(person, []).append(subject)
    return out


def load_protections(source, *, name: str | None = None) -> list[dict]:
    """Protection orders: ``subject_id``, ``victim_id``, ``warning_m``, ``alert_m`` (0 < alert_m <= warning_m)."""
    table, src, malformed = _read_tabular(source, name, ("subject_id", "victim_id"))
    if malformed:
        raise InputError(src, f"malformed CSV record {malformed[0][1]!r}", row=malformed[0][0])
    _require_columns(table, ("subject_id", "victim_id", "warning_m", "alert_m"), src)
    subjects, victims = _text(table, "subject_id", src), _text(table, "victim_id", src)
    radii = {field: _metres(table, field, src) for field in ("warning_m", "alert_m")}
    orders = []
    for r, (s, v, w, a) in enumerate(zip(subjects, victims, radii["warning_m"], radii["alert_m"])):
        for field, value in (("warning_m", w), ("alert_m", a)):
            if value is None or not math.isfinite(value) or value <= 0:
                raise InputError(src, f"{value!r} is not a positive number of metres", row=r, field=field)
        if a > w:
            raise InputError(src, f"alert_m {a:g} is larger than warning_m {w:g}", row=r, field="alert_m")
        orders.append({"subject_id": s, "victim_id": v, "warning_m": w, "alert_m": a})
    return orders


def meeting_alerts(fixes, subjects, *, concern=None, protections=None, rules=None, run_id: str = "",
                   accuracy: str = "sigma", uere_m: float | None = None) -> pa.Table:
    """``frequent_contact`` and victim alerts of a batch of fixes (subjects' and the other people's).

    Parameters
    ----------
    fixes : path, table or FixLoad
        All the fixes: of the supervised subjects, the persons of concern and
        the protected persons.
    subjects : path or table
        Supervised subjects (their levels and offices).
    concern : iterable, dict or None
        Persons of concern (see :func:`geomon.frequent_contacts`), or None.
    protections : iterable of dict or None
        Protection orders (see :func:`geomon.victim_alerts`), or None.
    accuracy, uere_m
        What ``accuracy_m`` reports, as :func:`geomon.io.load.load_fixes` takes it
        (unused for a FixLoad, converted when it was loaded).
    """
    load = fixes if hasattr(fixes, "table") else load_fixes(fixes, accuracy=accuracy, uere_m=uere_m)
    fused = fuse(load)
    parts = []
    if concern:
        parts.append(frequent_contacts(fused, subjects, concern, rules, run_id=run_id))
    if protections:
        table = load_subjects(subjects).table
        office = dict(zip(table.column("subject_id").to_pylist(), table.column("office_id").to_pylist()))
        parts.append(victim_alerts(fused, protections, office_of=office, run_id=run_id))
    parts = [p for p in parts if p.num_rows]
    return pa.concat_tables(parts) if parts else ALERT_SCHEMA.empty_table()
