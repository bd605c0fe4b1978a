"""Reading zone files: GeoJSON (RFC 7946) and GeoParquet (1.x, WKB), feature by feature, with their CRS checked.

Each reader returns one record per feature, ``(row, properties, geometry or
_Reject, raw, repairs)``: the geometry as shapely parsed it (or why it was
refused), and the repairs parsing already made (a ring closed). Validating the
properties, checking and repairing the geometries and building the
:class:`geomon.io.common.ZoneLoad` is :func:`geomon.io.zones.load_zones`'s job
(:mod:`geomon.io.zone_repair` for the geometry); import from there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from geomon.errors import InputError
from geomon.io.common import _first_line, _plain, _read_parquet, _Reject, _table_pylist, _to_json

_POLYGONAL = ("Polygon", "MultiPolygon")
#: Deepest nesting of lists and objects allowed in a feature's properties (a schedule needs a few).
MAX_PROPERTY_DEPTH = 32
_LONLAT_CRS = {("OGC", "CRS84"), ("EPSG", "4326"), ("EPSG", "4490")}  # 4490: CGCS2000


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
