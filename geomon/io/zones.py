"""Load zones from GeoJSON or GeoParquet, repairing geometries and reporting it.

Zones are few, so they are validated feature by feature and their geometries
repaired in bulk with shapely; every change is reported in a repairs table.
GeoJSON follows RFC 7946 (exterior rings counter-clockwise, rings closed);
GeoParquet follows the GeoParquet 1.x specification (WKB geometry column,
``geo`` file metadata). The public name is re-exported from :mod:`geomon.io.load`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import shapely

from geomon.errors import InputError
from geomon.io.common import (
    _PARQUET_SUFFIXES,
    ZoneLoad,
    _check_datum,
    _existing_path,
    _first_line,
    _lonlat_to_wgs84,
    _plain,
    _quarantine_table,
    _read_parquet,
    _Reasons,
    _table_pylist,
    _to_json,
)
from geomon.schema import REPAIR_SCHEMA, ZONE_KINDS, ZONE_PROPERTIES_SCHEMA

__all__ = ["load_zones"]


_POLYGONAL = ("Polygon", "MultiPolygon")
#: Deepest nesting of lists and objects allowed in a feature's properties (a schedule needs a few).
MAX_PROPERTY_DEPTH = 32
#: An invalid geometry whose edges cross more often than this is not repaired: ``make_valid`` time
#: grows with the crossings (minutes for a few thousand random vertices), so it is quarantined.
MAX_REPAIR_CROSSINGS = 1_000
#: Segment pairs with overlapping bounding boxes examined when counting crossings, at most.
_MAX_REPAIR_CANDIDATES = 2_000_000
#: Geometries with more vertices have their crossings counted before the (slower) validity test.
_PRECHECK_VERTICES = 100_000
_LONLAT_CRS = {("OGC", "CRS84"), ("EPSG", "4326"), ("EPSG", "4490")}  # 4490: CGCS2000


class _Reject(Exception):
    """A zone feature refused, with its field and reason code."""

    def __init__(self, field_name: str | None, reason: str):
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _deeper_than(value: Any, limit: int) -> bool:
    """True if lists/dicts nest more than ``limit`` levels in ``value`` (iterative: no recursion limit)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, tuple, dict)):
            if depth >= limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


_SEQUENCES = (list, tuple, np.ndarray)


def _is_position(p: Any) -> bool:
    # A position is an array of numbers (RFC 7946 section 3.1.1): not text, whose
    # characters would index as digits, and not true/false, which float() accepts.
    return isinstance(p, _SEQUENCES) and type(p[0]) is not bool and type(p[1]) is not bool


def _ring_coords(ring: Any) -> np.ndarray:
    """The first two numbers of each position of ``ring`` as an (n, 2) array; TypeError/ValueError if unreadable."""
    if not isinstance(ring, _SEQUENCES):
        raise TypeError
    try:  # fast path for a ring of equal-length numeric positions (a million vertices in a fraction of a second)
        arr = np.array(ring, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if arr is not None and arr.ndim == 2 and arr.shape[1] >= 2 and all(_is_position(p) for p in ring):
        return arr[:, :2]
    if not all(_is_position(p) for p in ring):
        raise TypeError
    return np.array([[float(p[0]), float(p[1])] for p in ring], dtype=np.float64).reshape(-1, 2)


def _geojson_ring(ring: Any, row: int, repairs: list[tuple[int, str, str]]) -> np.ndarray:
    try:
        coords = _ring_coords(ring)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: an integer beyond float range
        raise _Reject("geometry", "geometry_unparseable") from None
    if not np.isfinite(coords).all():
        raise _Reject("geometry", "geometry_not_finite")
    if len(coords) and not np.array_equal(coords[0], coords[-1], equal_nan=True):
        coords = np.vstack([coords, coords[:1]])
        repairs.append((row, "ring_closed", "first and last positions differ (RFC 7946 section 3.1.6)"))
    if len(coords) < 4:
        raise _Reject("geometry", "ring_too_short")
    return coords


def _geojson_geometry(geom: Any, row: int, repairs: list[tuple[int, str, str]]) -> shapely.Geometry:
    if geom is None:
        raise _Reject("geometry", "geometry_missing")
    if not isinstance(geom, dict) or "type" not in geom:
        raise _Reject("geometry", "geometry_unparseable")
    if geom["type"] not in _POLYGONAL:
        raise _Reject("geometry", "geometry_not_polygonal")
    coords = geom.get("coordinates")
    polys = [coords] if geom["type"] == "Polygon" else coords
    if not isinstance(polys, (list, tuple)) or not all(isinstance(p, (list, tuple)) and p for p in polys):
        raise _Reject("geometry", "geometry_unparseable")
    parts = []
    for rings in polys:
        shell, *holes = [_geojson_ring(r, row, repairs) for r in rings]
        parts.append(shapely.Polygon(shell, holes))
    return parts[0] if geom["type"] == "Polygon" else shapely.MultiPolygon(parts)


def _crs_ident(text: str) -> tuple[str, str] | None:
    text = text.strip().upper()
    if text.endswith("CRS84"):
        return ("OGC", "CRS84")
    m = re.search(r"EPSG\D*(\d+)$", text)
    return ("EPSG", m.group(1)) if m else None


def _check_crs_name(src: str, crs: Any) -> None:
    """Refuse a declared CRS that is not geographic lon/lat on WGS84/CGCS2000."""
    if crs is None:
        return
    ident = None
    if isinstance(crs, dict) and isinstance(crs.get("id"), dict):  # PROJJSON
        ident = (str(crs["id"].get("authority")).upper(), str(crs["id"].get("code")).upper())
    elif isinstance(crs, dict) and isinstance(crs.get("properties"), dict):  # GeoJSON 2008 "crs" member
        ident = _crs_ident(str(crs["properties"].get("name", "")))
    elif isinstance(crs, str):
        ident = _crs_ident(crs)
    if ident not in _LONLAT_CRS:
        shown = _to_json(crs)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        raise InputError(src, f"unsupported CRS {shown}; expected lon/lat (OGC:CRS84, EPSG:4326 or EPSG:4490)")


def _read_geojson(src: str, path: Path | None, doc: Any):
    """Yield ``(row, properties, geometry or _Reject, raw json, repairs)`` per feature."""
    if path is not None:
        try:
            doc = json.loads(path.read_bytes())  # a UTF-8 byte-order mark is skipped
        except ValueError as exc:  # not JSON, not UTF-8, or an integer of more than 4300 digits
            raise InputError(src, f"not a GeoJSON file: {_first_line(exc)}") from None
        except RecursionError:
            raise InputError(src, "not a GeoJSON file: lists or objects nested too deeply to parse") from None
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature"):
        raise InputError(src, "not a GeoJSON FeatureCollection")
    _check_crs_name(src, doc.get("crs"))
    features = doc.get("features") if doc["type"] == "FeatureCollection" else [doc]
    if not isinstance(features, list):
        raise InputError(src, "GeoJSON 'features' is not a list")
    out = []
    for row, feat in enumerate(features):
        repairs: list[tuple[int, str, str]] = []
        props = feat.get("properties") if isinstance(feat, dict) else None
        try:
            if not isinstance(feat, dict) or feat.get("type") != "Feature" or not isinstance(props, (dict, type(None))):
                raise _Reject(None, "feature_invalid")
            if props and (not all(isinstance(k, str) for k in props) or _deeper_than(props, MAX_PROPERTY_DEPTH)):
                raise _Reject(None, "feature_invalid")  # not a JSON object, or hostile nesting
            geom: Any = _geojson_geometry(feat.get("geometry"), row, repairs)
        except _Reject as rej:
            geom = rej
        out.append((row, props if isinstance(props, dict) else {}, geom, feat, repairs))
    return out


def _read_geoparquet(src: str, path: Path):
    table = _read_parquet(path)
    meta = (table.schema.metadata or {}).get(b"geo")
    if meta is None:
        raise InputError(src, "not GeoParquet: no 'geo' metadata in the Parquet schema")
    try:
        geo = json.loads(meta)
        column = geo["primary_column"]
        info = geo["columns"][column]
        if not isinstance(info, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InputError(src, "GeoParquet 'geo' metadata lacks primary_column or its columns entry") from None
    if str(info.get("encoding", "")).upper() != "WKB":
        raise InputError(src, f"GeoParquet encoding {info.get('encoding')!r} not supported; expected WKB")
    _check_crs_name(src, info.get("crs"))
    if column not in table.column_names:
        raise InputError(src, f"GeoParquet primary column {column!r} not in the table")
    wkb = _plain(table.column(column))
    if isinstance(wkb, pa.ExtensionArray):  # e.g. geoarrow.wkb
        wkb = wkb.storage
    if not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type) or pa.types.is_binary_view(wkb.type)):
        raise InputError(src, f"geometry column type {wkb.type} is not WKB binary", field=column)
    wkb_values = wkb.to_pylist()
    geoms = shapely.from_wkb(np.array(wkb_values, dtype=object), on_invalid="ignore")
    covering = info.get("covering") if isinstance(info.get("covering"), dict) else {}
    bbox = covering.get("bbox") if isinstance(covering.get("bbox"), dict) else {}
    bbox_columns = {v[0] for v in bbox.values() if isinstance(v, list) and v and isinstance(v[0], str)}
    # Covering columns describe the input geometry, which datum conversion and repair change.
    props_table = table.drop_columns([column] + sorted((bbox_columns - {column}) & set(table.column_names)))
    out = []
    for row, (blob, geom, props) in enumerate(zip(wkb_values, geoms, _table_pylist(props_table))):
        repairs: list[tuple[int, str, str]] = []
        if blob is None:
            geom = _Reject("geometry", "geometry_missing")
        elif geom is None:
            try:
                fixed = shapely.from_wkb(blob, on_invalid="fix")
            except shapely.errors.GEOSException:  # e.g. a NaN vertex: the ring cannot be closed
                fixed = None
            if fixed is None:
                geom = _Reject("geometry", "geometry_unparseable")
            else:
                geom = fixed
                repairs.append((row, "ring_closed", "WKB was not readable as is (unclosed ring); fixed by GEOS"))
        elif shapely.get_type_id(geom) not in (3, 6):
            geom = _Reject("geometry", "geometry_not_polygonal")
        out.append((row, props, geom, {"properties": props, "geometry": None if blob is None else blob.hex()}, repairs))
    return out, props_table


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


def _check_coordinates(geom: shapely.Geometry) -> None:
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise _Reject("geometry", "geometry_not_finite")
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise _Reject("geometry", "geometry_out_of_range")
    if shapely.is_empty(geom):
        raise _Reject("geometry", "geometry_empty")


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygons of a make_valid result (which may add lines or points)."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if shapely.get_type_id(p) in (3, 6)]
    if not polys:
        return shapely.from_wkt("MULTIPOLYGON EMPTY")
    merged = shapely.union_all(polys)
    return merged


def _too_tangled(geom: shapely.Geometry) -> bool:
    """True if the ring edges of ``geom`` cross more than :data:`MAX_REPAIR_CROSSINGS` times.

    Edges are tested in batches of doubling size against an STRtree of all
    edges, stopping as soon as the budget of crossings, or of candidate pairs
    (edges with overlapping bounding boxes), is spent; so a hostile polygon
    costs a few seconds at most, while a large polygon with a few crossings
    (a county boundary with a sliver) is counted in full and repaired. Only
    proper crossings count (the interiors of two edges meet at one point).
    """
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of[:-1] == ring_of[1:]
    start, end = xy[:-1][same_ring], xy[1:][same_ring]
    tree = shapely.STRtree(shapely.linestrings(np.stack([start, end], axis=1)))

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Sign of the turn a -> b -> c."""
        return np.sign((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    crossings = candidates = done = 0
    size = 1
    while done < len(start):
        left, right = tree.query(tree.geometries[done : done + size])
        left = left + done
        candidates += len(left)
        if candidates > _MAX_REPAIR_CANDIDATES + 4 * len(start):
            return True
        p1, p2, q1, q2 = start[left], end[left], start[right], end[right]
        crossing = (side(q1, q2, p1) * side(q1, q2, p2) < 0) & (side(p1, p2, q1) * side(p1, p2, q2) < 0)
        crossings += int(crossing.sum())
        if crossings > 2 * MAX_REPAIR_CROSSINGS:  # each crossing is seen from both edges
            return True
        done += size
        size *= 2
    return False


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
        g = shapely.force_2d(geoms[ok])
        xy = shapely.get_coordinates(g)
        lon, lat = _lonlat_to_wgs84(xy[:, 0].copy(), xy[:, 1].copy(), datum)
        g = shapely.set_coordinates(g, np.column_stack([lon, lat]))
        # GEOS validity takes seconds on a hostile million-vertex polygon: count the
        # crossings of large geometries first (a valid geometry has none).
        big = shapely.get_num_coordinates(g) > _PRECHECK_VERTICES
        tangled = np.zeros(len(g), dtype=bool)
        tangled[big] = [_too_tangled(x) for x in g[big]]
        valid = np.zeros(len(g), dtype=bool)
        valid[~tangled] = shapely.is_valid(g[~tangled])
        unrepairable = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(~valid):
            try:
                if tangled[i] or (not big[i] and _too_tangled(g[i])):
                    raise shapely.errors.GEOSException("too many crossings")
                reason = shapely.is_valid_reason(g[i])
                g[i] = _polygonal_part(shapely.make_valid(g[i]))
            except shapely.errors.GEOSException:
                unrepairable[ok[i]] = True
                g[i] = shapely.from_wkt("MULTIPOLYGON EMPTY")
                continue
            repairs.append((int(ok[i]), "made_valid", reason))
        reasons.add("geometry", "geometry_unrepairable", unrepairable)
        oriented = shapely.orient_polygons(g)
        for i in np.flatnonzero(valid & ~shapely.equals_exact(g, oriented, tolerance=0.0)):
            detail = "exterior clockwise or hole counter-clockwise (RFC 7946 section 3.1.6)"
            repairs.append((int(ok[i]), "winding_reoriented", detail))
        geoms[ok] = oriented
        empty = np.zeros(n, dtype=bool)
        empty[ok] = shapely.is_empty(oriented)
        reasons.add("geometry", "geometry_empty_after_repair", empty)
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
    properties = properties.cast(pa.schema(list(ZONE_PROPERTIES_SCHEMA) + list(properties.schema)[len(ZONE_PROPERTIES_SCHEMA) :]))

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
