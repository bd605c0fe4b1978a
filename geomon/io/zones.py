"""Load zones from GeoJSON or GeoParquet, repairing geometries and reporting it.

Zones are few, so they are validated feature by feature and their geometries
repaired in bulk with shapely; every change is reported in a repairs table.
GeoJSON follows RFC 7946 (exterior rings counter-clockwise, rings closed);
GeoParquet follows the GeoParquet 1.x specification (WKB geometry column,
``geo`` file metadata). The public name is re-exported from :mod:`geomon.io.load`.

Reading the two formats is :mod:`geomon.io.zone_formats`, checking and
repairing the geometries :mod:`geomon.io.zone_repair`; this module validates
the properties and puts the :class:`geomon.io.common.ZoneLoad` together.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from geomon.errors import InputError
from geomon.io.common import (
    _PARQUET_SUFFIXES,
    ZoneLoad,
    _check_datum,
    _existing_path,
    _quarantine_table,
    _Reasons,
    _Reject,
    _to_json,
)
from geomon.io.zone_formats import MAX_PROPERTY_DEPTH, _read_geojson, _read_geoparquet
from geomon.io.zone_repair import MAX_REPAIR_CROSSINGS, _check_coordinates, _repair
from geomon.schema import REPAIR_SCHEMA, ZONE_KINDS, ZONE_PROPERTIES_SCHEMA

__all__ = ["MAX_PROPERTY_DEPTH", "MAX_REPAIR_CROSSINGS", "load_zones"]


def _zone_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise the canonical zone properties, or raise _Reject."""
    zid = props.get("zone_id")
    if isinstance(zid, bool) or not isinstance(zid, (str, int, type(None))):
        raise _Reject("zone_id", "zone_id_invalid")
    try:
        zid = None if zid is None else str(zid).strip()
    except ValueError:  # an integer of more than 4300 digits
        raise _Reject("zone_id", "zone_id_invalid") from None
    if not zid:
        raise _Reject("zone_id", "zone_id_missing")
    kind = props.get("kind")
    kind = kind.strip() if isinstance(kind, str) else kind
    if kind is None or kind == "":
        raise _Reject("kind", "kind_missing")
    if kind not in ZONE_KINDS:
        raise _Reject("kind", "kind_unknown")
    buffer_m = props.get("buffer_m")
    if buffer_m is not None:
        try:
            if isinstance(buffer_m, bool):
                raise ValueError
            buffer_m = float(buffer_m)
        except (TypeError, ValueError, OverflowError):
            raise _Reject("buffer_m", "buffer_invalid") from None
        if not math.isfinite(buffer_m):
            raise _Reject("buffer_m", "buffer_invalid")
    schedule = props.get("schedule")
    if isinstance(schedule, str):
        if schedule.strip():
            try:
                json.loads(schedule)
            except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
                raise _Reject("schedule", "schedule_invalid") from None
        else:
            schedule = None
    elif schedule is not None:
        try:
            schedule = json.dumps(schedule, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):  # not a JSON value (a set, a huge integer): only from a dict source
            raise _Reject("schedule", "schedule_invalid") from None
    subject_ids = props.get("subject_ids")
    if isinstance(subject_ids, str):
        subject_ids = subject_ids.split(",")
    if subject_ids is not None:
        if not isinstance(subject_ids, (list, tuple)) or not all(
            isinstance(s, str) or (isinstance(s, int) and not isinstance(s, bool) and s.bit_length() < 10_000)
            for s in subject_ids
        ):
            raise _Reject("subject_ids", "subject_ids_invalid")
        subject_ids = [str(s).strip() for s in subject_ids if str(s).strip()] or None
    office = props.get("office_id")
    try:
        office = None if office is None else str(office).strip()
    except ValueError:  # an integer of more than 4300 digits: keep a description, not the digits
        office = _to_json(office).strip('"')
    office = office or None
    return {
        "zone_id": zid,
        "kind": kind,
        "buffer_m": buffer_m,
        "schedule": schedule,
        "subject_ids": subject_ids,
        "office_id": office,
    }


def _extra_column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Mixed types across features: keep each value as JSON text.
        return pa.array([None if v is None else _to_json(v) for v in values], pa.string())


def load_zones(source: str | Path | Mapping[str, Any], *, datum: str = "wgs84", name: str | None = None) -> ZoneLoad:
    """Load zones from GeoJSON or GeoParquet, repairing geometries and reporting it.

    Parameters
    ----------
    source : str, pathlib.Path or dict
        A GeoJSON FeatureCollection file (``.geojson``, ``.json``), a
        GeoParquet file (``.parquet``: WKB geometry column and ``geo``
        metadata), or an already parsed GeoJSON dict. Properties: ``zone_id``
        (required, unique), ``kind`` (one of :data:`geomon.schema.ZONE_KINDS`),
        optional ``buffer_m`` (metres, negative shrinks), ``schedule`` (kept as
        JSON text), ``subject_ids`` (list or comma-separated text; empty means
        every subject), ``office_id``; other properties are kept.
    datum : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        Datum of the input coordinates; output is WGS84 lon/lat degrees.
    name : str, optional
        Name used in messages and the quarantine.

    Returns
    -------
    ZoneLoad
        Accepted zones, the geometry repairs made, and the quarantine.

    Raises
    ------
    geomon.errors.InputError
        If the file is not GeoJSON/GeoParquet, or declares a CRS that is not
        geographic lon/lat on WGS84/CGCS2000.

    Notes
    -----
    Features are quarantined with the first reason found, tested in this
    order: ``feature_invalid`` (not a GeoJSON Feature), ``zone_id_invalid``,
    ``zone_id_missing``, ``kind_missing``, ``kind_unknown``,
    ``buffer_invalid``, ``schedule_invalid``, ``subject_ids_invalid``,
    ``geometry_missing``, ``geometry_unparseable``, ``geometry_not_polygonal``,
    ``ring_too_short``, ``geometry_not_finite``, ``geometry_out_of_range``
    (checked in the input datum), ``geometry_empty``,
    ``geometry_unrepairable`` (invalid, with more than
    :data:`MAX_REPAIR_CROSSINGS` edge crossings, or GEOS failed to repair it),
    ``geometry_empty_after_repair``, ``zone_id_duplicate`` (first kept).

    Geometries are never changed silently: each change is a row of
    ``repairs``: ``ring_closed`` (a ring's first and last positions differed),
    ``made_valid`` (``shapely.make_valid``, keeping only polygonal parts;
    ``detail`` is ``shapely.is_valid_reason``), ``winding_reoriented`` (a valid
    polygon whose exterior was clockwise or a hole counter-clockwise, against
    RFC 7946 section 3.1.6). Z values are dropped.
    """
    _check_datum(datum)
    props_table = None
    if isinstance(source, Mapping):
        src = name or "<geojson>"
        records = _read_geojson(src, None, source)
    else:
        path = _existing_path(source)
        src = name or str(source)
        lower = path.name.lower()
        if path.is_dir():
            raise InputError(src, "is a directory; expected a .geojson, .json or GeoParquet file")
        if lower.endswith((".geojson", ".json")):
            records = _read_geojson(src, path, None)
        elif lower.endswith(_PARQUET_SUFFIXES):
            records, props_table = _read_geoparquet(src, path)
        else:
            raise InputError(src, "unsupported file type; expected .geojson, .json or .parquet (GeoParquet)")

    n = len(records)
    reasons = _Reasons(n)
    reject_names: dict[tuple[str | None, str], int] = {}
    rejected = np.full(n, -1, dtype=np.int64)
    canon: list[dict[str, Any] | None] = [None] * n
    geoms = np.empty(n, dtype=object)
    for row, props, geom, _, _ in records:
        try:
            if isinstance(geom, _Reject) and geom.field is None:
                raise geom  # not a Feature at all: nothing else to check
            canon[row] = _zone_properties(props)
            if isinstance(geom, _Reject):
                raise geom
            _check_coordinates(geom)
            geoms[row] = geom
        except _Reject as rej:
            rejected[row] = reject_names.setdefault((rej.field, rej.reason), len(reject_names))
    for (field_name, reason), k in reject_names.items():
        reasons.add(field_name, reason, rejected == k)

    repairs: list[tuple[int, str, str]] = [r for rec in records for r in rec[4]]
    ok = np.flatnonzero(reasons.ok)
    if len(ok):
        _repair(geoms, ok, datum, reasons, repairs)
    ok = np.flatnonzero(reasons.ok)
    seen: set[str] = set()
    dup = np.zeros(n, dtype=bool)
    for row in ok:
        zid = canon[row]["zone_id"]
        dup[row] = zid in seen
        seen.add(zid)
    reasons.add("zone_id", "zone_id_duplicate", dup)
    ok = np.flatnonzero(reasons.ok)

    accepted = [canon[i] for i in ok]
    columns = {f.name: pa.array([a[f.name] for a in accepted], f.type) for f in ZONE_PROPERTIES_SCHEMA}
    if props_table is not None:
        for c in props_table.column_names:
            if c not in columns:
                columns[c] = props_table.column(c).take(pa.array(ok, pa.int64()))
    else:
        extra_keys = list(dict.fromkeys(k for i in ok for k in records[i][1] if k not in columns))
        for k in extra_keys:
            columns[k] = _extra_column([records[i][1].get(k) for i in ok])
    properties = pa.table(columns)
    properties = properties.cast(pa.schema(list(ZONE_PROPERTIES_SCHEMA)
                                           + list(properties.schema)[len(ZONE_PROPERTIES_SCHEMA) :]))

    ok_set = set(ok.tolist())
    repair_rows = sorted((r for r in repairs if r[0] in ok_set), key=lambda r: r[0])
    repairs_table = pa.table(
        {
            "source_name": pa.array([src] * len(repair_rows), pa.string()),
            "row": pa.array([r[0] for r in repair_rows], pa.int64()),
            "zone_id": pa.array([canon[r[0]]["zone_id"] for r in repair_rows], pa.string()),
            "repair": pa.array([r[1] for r in repair_rows], pa.string()),
            "detail": pa.array([r[2] for r in repair_rows], pa.string()),
        },
        schema=REPAIR_SCHEMA,
    )
    raws = [_to_json(records[i][3]) for i in np.flatnonzero(~reasons.ok)]
    quarantine = _quarantine_table(src, raws, reasons, np.arange(n, dtype=np.int64))
    return ZoneLoad(
        quarantine=quarantine,
        n_read=n,
        n_accepted=len(ok),
        n_quarantined=quarantine.num_rows,
        source_name=src,
        zone_id=np.array([a["zone_id"] for a in accepted], dtype=object),
        kind=np.array([a["kind"] for a in accepted], dtype=object),
        geometry=np.array(list(geoms[ok]), dtype=object) if len(ok) else np.empty(0, dtype=object),
        properties=properties,
        repairs=repairs_table,
        datum=datum,
    )
