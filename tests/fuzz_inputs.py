"""Hostile inputs for the loaders, and the harness that checks the loading contract.

Strategies build malformed files and tables for every loader (fixes, subjects,
zones, rules, persons of concern, protection orders, JSON lines): ragged and
badly quoted CSV, truncated or random Parquet, wrong column types, huge and
empty values, NaN/inf and swapped or projected coordinates, timestamps far in
the future or before 1970, duplicate ids, invalid polygons, deep nesting,
non-UTF-8 bytes and byte-order marks. :func:`check_outcome` asserts the
contract of docs/loading.md on whatever a loader does with them; the counts of
cases tried per loader are kept in :data:`CASES` for long runs (docs/fuzzing.md).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from hypothesis import strategies as st

from geomon.errors import GeomonError
from geomon.io.load import FixLoad, Rules, SubjectLoad, ZoneLoad
from geomon.schema import FIX_SCHEMA, QUARANTINE_SCHEMA, SUBJECT_SCHEMA, ZONE_PROPERTIES_SCHEMA

#: Examples per property test; ``GEOMON_FUZZ_EXAMPLES=2000`` for a long run.
EXAMPLES = int(os.environ.get("GEOMON_FUZZ_EXAMPLES", "40"))
#: Cases tried per loader, and outcomes per loader ("returned", "refused").
CASES: Counter = Counter()
OUTCOMES: Counter = Counter()

_GEOMON_DIR = str(Path(__import__("geomon").__file__).parent)
TS_MIN_MS, TS_MAX_MS = -(2**63 // 10**6), 2**63 // 10**6

# --------------------------------------------------------------------------- values

LONG = "x" * 100_000
texts = st.one_of(
    st.sampled_from(["", " ", "\t", "s1", " s1 ", "S0001", "p001", "a,b", 'q"uote', "line\nbreak", "\ufeffs1",
                     "中文", "\u0000", "NULL", "NA", LONG]),
    st.text(max_size=20),
)
ts_texts = st.one_of(
    st.sampled_from([
        "2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00Z", "2024-05-01 00:00:00", "2024-05-01",
        "2024-02-30T00:00:00Z", "1969-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "1677-09-21T00:12:44Z",
        "2262-04-11T23:47:16Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
        "1714521600000", "1714521600", "-1", "-62135596800000", "253402300800000", "999999999999999999",
        "-999999999999999999", "9223372036854775807", "yesterday", "", " ", "2024-05-01T00:00:00z",
    ]),
    st.integers(-(10**18), 10**18).map(str),
    st.text(max_size=12),
)
coords = st.one_of(
    st.sampled_from(["116.3975", "39.9087", "-180", "180", "180.0000001", "90", "-90.5", "563000", "4150000",
                     "nan", "NaN", "inf", "-Infinity", "1e400", "-.5", "116,3", "E116", "0x10", "", " "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-200, 200).map(lambda v: f"{v:.6f}"),
)
sources = st.sampled_from(["gnss", "cell", "wifi", "checkin", "GNSS", "gps", "", " gnss ", None])
accuracies = st.one_of(st.none(), st.sampled_from(["5", "-0.5", "nan", "inf", "1e39", "", "x", "-0"]),
                       st.floats(-10, 1e40).map(repr))


# --------------------------------------------------------------------------- tables and files


@st.composite
def fix_rows(draw, max_rows: int = 12) -> list[dict]:
    """Fix rows as text (None = missing), with exact duplicates and lat/lon swaps mixed in."""
    rows = []
    for _ in range(draw(st.integers(0, max_rows))):
        row = {
            "subject_id": draw(st.one_of(st.none(), texts)),
            "ts": draw(st.one_of(st.none(), ts_texts)),
            "lon": draw(st.one_of(st.none(), coords)),
            "lat": draw(st.one_of(st.none(), coords)),
            "source": draw(sources),
            "accuracy_m": draw(accuracies),
        }
        if draw(st.booleans()):
            row.update(subject_id="s1", ts="2024-05-01T00:00:00Z", lon="116.4", lat="39.9", source="gnss")
        if draw(st.integers(0, 5)) == 0:
            row["lon"], row["lat"] = row["lat"], row["lon"]
        rows.append(row)
        if rows and draw(st.integers(0, 4)) == 0:
            rows.append(dict(draw(st.sampled_from(rows))))
    return rows


def _column(values: list, kind: str) -> pa.Array:
    """``values`` (text or None) as an Arrow column of a drawn type; unconvertible values become null."""
    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    def integer(v):
        try:
            i = int(v)
            return i if -(2**63) <= i < 2**63 else None
        except (TypeError, ValueError):
            return None

    if kind == "string":
        return pa.array(values, pa.string())
    if kind == "large_string":
        return pa.array(values, pa.large_string())
    if kind == "dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    if kind == "float64":
        return pa.array([num(v) for v in values], pa.float64())
    if kind == "float32":
        return pa.array([num(v) for v in values], pa.float64()).cast(pa.float32(), safe=False)
    if kind == "int64":
        return pa.array([integer(v) for v in values], pa.int64())
    if kind == "uint64":
        return pa.array([None if integer(v) is None else integer(v) % 2**64 for v in values], pa.uint64())
    if kind == "bool":
        return pa.array([None if v is None else bool(v) for v in values], pa.bool_())
    if kind == "binary":
        return pa.array([None if v is None else v.encode("utf-8", "surrogatepass") + b"\xff" for v in values])
    if kind == "list":
        return pa.array([None if v is None else [v] for v in values], pa.list_(pa.string()))
    if kind == "null":
        return pa.nulls(len(values))
    if kind.startswith("timestamp"):
        unit = kind.split("_")[1]
        return pa.array([integer(v) for v in values], pa.int64()).cast(pa.timestamp(unit, tz="Asia/Shanghai"))
    if kind == "date32":
        return pa.array([None if integer(v) is None else integer(v) % 10**6 for v in values],
                        pa.int32()).cast(pa.date32())
    if kind == "decimal":
        return pa.array([None if num(v) is None or not math.isfinite(num(v)) else round(num(v), 3) for v in values],
                        pa.float64()).cast(pa.decimal128(38, 3), safe=False)
    raise AssertionError(kind)


COLUMN_KINDS = ["string", "string", "string", "large_string", "dictionary", "float64", "float32", "int64", "uint64",
                "bool", "binary", "list", "null", "timestamp_s", "timestamp_ms", "timestamp_us", "timestamp_ns",
                "date32", "decimal"]


@st.composite
def arrow_tables(draw, rows: list[dict], names: list[str]) -> pa.Table:
    """An Arrow table of ``rows`` with drawn column types, columns dropped, extra columns added."""
    cols = {}
    for name in names:
        if draw(st.integers(0, 15)) == 0:
            continue  # a missing column
        cols[name] = _column([r.get(name) for r in rows], draw(st.sampled_from(COLUMN_KINDS)))
    if draw(st.booleans()):
        kind = draw(st.sampled_from(COLUMN_KINDS))
        cols["device"] = _column([r.get("subject_id") for r in rows], kind)
    return pa.table(cols) if cols else pa.table({"x": pa.nulls(len(rows))})


def _csv_field(v: Any) -> str:
    if v is None:
        return ""
    v = str(v)
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v


@st.composite
def csv_bytes(draw, rows: list[dict], names: list[str]) -> bytes:
    """CSV text of ``rows``, then mangled: ragged rows, stray quotes, BOM, CR line ends, bad bytes, truncation."""
    header = list(names)
    if draw(st.integers(0, 10)) == 0:
        header = draw(st.permutations(header))[: draw(st.integers(0, len(header)))]
    if draw(st.integers(0, 10)) == 0:
        header.append(draw(st.sampled_from(["", "extra", header[0] if header else "a", " ts"])))
    lines = [",".join(header)]
    for r in rows:
        fields = [_csv_field(r.get(n)) for n in header]
        mangle = draw(st.integers(0, 12))
        if mangle == 0 and fields:
            fields = fields[:-1]
        elif mangle == 1:
            fields = fields + ["7"]
        elif mangle == 2 and fields:
            fields[0] = '"' + fields[0]  # unbalanced quote
        lines.append(",".join(fields))
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    text = end.join(lines) + (end if draw(st.booleans()) else "")
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 8)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 10)) == 0 and data:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"])) + data[at:]
    if draw(st.integers(0, 10)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, or replaced by random bytes."""
    how = draw(st.sampled_from(["truncate", "flip", "random", "empty", "magic"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if how == "empty":
        return b""
    if how == "magic":
        return b"PAR1" + draw(st.binary(max_size=64)) + b"PAR1"
    return draw(st.binary(max_size=300))


@st.composite
def tabular_sources(draw, rows_strategy, names: list[str], workdir: Path):
    """A source for load_fixes/load_subjects-like loaders: Arrow table, CSV, CSV.gz or Parquet, maybe corrupted."""
    rows = draw(rows_strategy)
    form = draw(st.sampled_from(["arrow", "csv", "csv", "csv.gz", "parquet", "parquet_bad", "empty_csv"]))
    path = workdir / f"input-{draw(st.integers(0, 10**9))}"
    if form == "arrow":
        return draw(arrow_tables(rows, names))
    if form == "empty_csv":
        path = path.with_suffix(".csv")
        path.write_bytes(draw(st.sampled_from([b"", b"\n", b"\xef\xbb\xbf", ",".join(names).encode(), b"  \n\n"])))
        return path
    if form in ("csv", "csv.gz"):
        data = draw(csv_bytes(rows, names))
        path = Path(f"{path}.{form}")
        path.write_bytes(gzip.compress(data) if form == "csv.gz" and draw(st.integers(0, 6)) else data)
        return path
    table = draw(arrow_tables(rows, names))
    try:
        data = _parquet_bytes(table)
    except (pa.ArrowException, ValueError):
        data = b""
    if form == "parquet_bad":
        data = draw(corrupted(data))
    path = path.with_suffix(".parquet")
    path.write_bytes(data)
    return path


@st.composite
def subject_rows(draw, max_rows: int = 10) -> list[dict]:
    rows = []
    for _ in range(draw(st.integers(0, max_rows))):
        rows.append({
            "subject_id": draw(st.one_of(st.none(), st.sampled_from(["p1", "p2", " p1 ", "p1"]), texts)),
            "level": draw(st.one_of(st.none(), st.sampled_from(["strict", "ordinary", "Strict", "", "lenient"]))),
            "office_id": draw(st.one_of(st.none(), st.sampled_from(["SFS-01", " ", ""]), texts)),
            "home_zone_id": draw(st.one_of(st.none(), texts)),
        })
    return rows


# --------------------------------------------------------------------------- zones

SQUARE = [[116.30, 39.90], [116.31, 39.90], [116.31, 39.91], [116.30, 39.91], [116.30, 39.90]]


def _deep(levels: int, kind: str) -> Any:
    """A list or object nested ``levels`` deep, built without recursion."""
    value: Any = 1
    for _ in range(levels):
        value = [value] if kind == "list" else {"a": value}
    return value


@st.composite
def rings(draw) -> list:
    """A ring: a square, a bow tie, unclosed, too short, swapped, projected, NaN, random, junk."""
    kind = draw(st.sampled_from(["square", "clockwise", "bowtie", "unclosed", "short", "swapped", "metres", "nan",
                                 "random", "collinear", "junk", "text", "bool", "huge_int", "3d", "empty"]))
    if kind == "square":
        return SQUARE
    if kind == "clockwise":
        return SQUARE[::-1]
    if kind == "bowtie":
        return [[116.30, 39.90], [116.31, 39.91], [116.31, 39.90], [116.30, 39.91], [116.30, 39.90]]
    if kind == "unclosed":
        return SQUARE[:-1]
    if kind == "short":
        return SQUARE[: draw(st.integers(0, 3))]
    if kind == "swapped":
        return [[y, x] for x, y in SQUARE]
    if kind == "metres":
        return [[563000 + 1000 * x, 4150000 + 1000 * y] for x, y in [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
    if kind == "nan":
        r = [list(p) for p in SQUARE]
        r[draw(st.integers(0, 3))][draw(st.integers(0, 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return r
    if kind == "random":
        n = draw(st.integers(3, 60))
        pts = draw(st.lists(st.tuples(st.floats(116, 116.1), st.floats(39, 39.1)), min_size=n, max_size=n))
        return [list(p) for p in pts] + [list(pts[0])]
    if kind == "collinear":
        return [[116.0, 39.0], [116.1, 39.0], [116.2, 39.0], [116.0, 39.0]]
    if kind == "junk":
        return draw(st.sampled_from([[{"x": 1}] * 4, [[1]] * 4, ["12", "34", "56", "12"], 5, "abc", [None] * 4]))
    if kind == "text":
        return [[str(x), str(y)] for x, y in SQUARE]
    if kind == "bool":
        return [[True, False], [1, 0], [1, 1], [True, False]]
    if kind == "huge_int":
        return [[10**400, 1], [2, 2], [3, 1], [10**400, 1]]
    if kind == "3d":
        return [p + [5.0] for p in SQUARE]
    return []


@st.composite
def geometries(draw) -> Any:
    kind = draw(st.sampled_from(["Polygon", "Polygon", "MultiPolygon", "Point", "none", "junk", "deep"]))
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": draw(st.lists(rings(), min_size=0, max_size=3))}
    if kind == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": draw(st.lists(st.lists(rings(), min_size=0, max_size=2),
                                                                     max_size=3))}
    if kind == "Point":
        return {"type": "Point", "coordinates": [116.3, 39.9]}
    if kind == "none":
        return None
    if kind == "deep":
        return {"type": "Polygon", "coordinates": _deep(draw(st.sampled_from([5, 100, 900])), "list")}
    return draw(st.sampled_from([{}, {"type": ["Polygon"]}, {"coordinates": []}, "POLYGON", 7,
                                 {"type": "Polygon", "coordinates": None}]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def zone_properties(draw) -> Any:
    if draw(st.integers(0, 12)) == 0:
        return draw(st.sampled_from([None, [], "props", 5]))
    props = {
        "zone_id": draw(st.one_of(st.sampled_from(["z1", "z2", " z1 ", 7, "7", "", None, 1.5, True, ["z"], 10**5000]),
                                  texts)),
        "kind": draw(st.sampled_from(["permitted", "forbidden", "home", "Home", " home ", "nightclub", "", None, 3,
                                      ["home"]])),
    }
    for key, values in (
        ("buffer_m", st.one_of(st.sampled_from([50, -20, "10", "x", True, math.nan, 10**400, "1e400"]), st.floats())),
        ("schedule", st.one_of(st.sampled_from(['{"from": "20:00"}', "{bad", "", "[" * 5000 + "]" * 5000]),
                               json_values)),
        ("subject_ids", st.one_of(st.sampled_from(["p1, p2", "", [1, "p2"], [True], [None], 5, [10**5000]]),
                                  json_values)),
        ("office_id", st.one_of(st.sampled_from(["SFS-01", " ", 10**5000]), json_values)),
        ("note", json_values),
    ):
        if draw(st.booleans()):
            props[key] = draw(values)
    if draw(st.integers(0, 15)) == 0:
        props["nested"] = _deep(draw(st.sampled_from([10, 40, 900])), draw(st.sampled_from(["list", "dict"])))
    return props


@st.composite
def geojson_docs(draw) -> Any:
    features = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 15)) == 0:
            features.append(draw(st.sampled_from([None, 5, "feature", [], {"type": "Feature"}, {"type": "Point"}])))
            continue
        features.append({"type": "Feature", "properties": draw(zone_properties()), "geometry": draw(geometries())})
        if draw(st.integers(0, 4)) == 0:
            features.append(dict(features[-1]) if draw(st.booleans()) else features[-1])  # a duplicate
    doc: Any = {"type": "FeatureCollection", "features": features}
    shape = draw(st.integers(0, 20))
    if shape == 0:
        doc = draw(st.sampled_from([[], "x", 1, {"type": "Topology"}, {"type": "FeatureCollection", "features": {}}]))
    elif shape == 1 and features:
        doc = features[0]
    elif shape == 2:
        doc["crs"] = draw(st.sampled_from([{"type": "name", "properties": {"name": "EPSG:3857"}},
                                           {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                                           "EPSG:4326", [1], {"a": 1}]))
    return doc


def _json_text(doc: Any) -> str:
    try:
        return json.dumps(doc, allow_nan=True)
    except (ValueError, RecursionError):  # huge integers, deep nesting: write them without recursion
        return _json_text_fallback(doc)


def _json_text_fallback(doc: Any) -> str:
    """JSON text of ``doc``, iteratively; integers of more than 4300 digits are written as 5000 nines."""
    out, stack = [], [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str) and v.startswith("\x00raw:"):
            out.append(v[5:])
        elif isinstance(v, dict):
            parts = ["\x00raw:{"]
            for i, (k, x) in enumerate(v.items()):
                parts += ["\x00raw:" + ("," if i else "") + json.dumps(str(k)) + ":", x]
            parts.append("\x00raw:}")
            stack.extend(reversed(parts))
        elif isinstance(v, list):
            parts = ["\x00raw:["]
            for i, x in enumerate(v):
                parts += (["\x00raw:,"] if i else []) + [x]
            parts.append("\x00raw:]")
            stack.extend(reversed(parts))
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(("-" if v < 0 else "") + "9" * 5000 if abs(v).bit_length() > 13_000 else str(v))
        else:
            out.append(json.dumps(v, allow_nan=True))
    return "".join(out)


@st.composite
def zone_sources(draw, workdir: Path):
    """A GeoJSON dict or file (maybe with a BOM, bad bytes, truncated, or 10,000 levels deep), or GeoParquet."""
    form = draw(st.sampled_from(["dict", "geojson", "geojson", "geoparquet", "deep"]))
    path = workdir / f"zones-{draw(st.integers(0, 10**9))}"
    if form == "dict":
        doc = draw(geojson_docs())
        if isinstance(doc, dict):  # another type is a TypeError by contract (docs/loading.md)
            return doc
        path.with_suffix(".json").write_text(_json_text(doc))
        return path.with_suffix(".json")
    if form == "deep":
        path = path.with_suffix(".geojson")
        levels = draw(st.sampled_from([1000, 10_000]))
        inner = "[" * levels + "]" * levels if draw(st.booleans()) else '{"a":' * levels + "1" + "}" * levels
        path.write_text('{"type": "FeatureCollection", "features": ' + inner + "}")
        return path
    if form == "geojson":
        data = _mangled(draw, _json_text(draw(geojson_docs())).encode("utf-8", "surrogatepass"), 8, b"\xff\xfe")
        path = path.with_suffix(draw(st.sampled_from([".geojson", ".json", ".GeoJSON"])))
        path.write_bytes(data)
        return path
    return draw(geoparquet_files(path.with_suffix(".parquet")))


@st.composite
def geoparquet_files(draw, path: Path) -> Path:
    n = draw(st.integers(0, 5))
    blobs = []
    for _ in range(n):
        kind = draw(st.sampled_from(["box", "bowtie", "point", "empty", "none", "random", "truncated", "metres"]))
        if kind == "box":
            blobs.append(shapely.to_wkb(shapely.box(116.3, 39.9, 116.31, 39.91)))
        elif kind == "bowtie":
            blobs.append(shapely.to_wkb(shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])))
        elif kind == "point":
            blobs.append(shapely.to_wkb(shapely.Point(116.3, 39.9)))
        elif kind == "empty":
            blobs.append(shapely.to_wkb(shapely.from_wkt("POLYGON EMPTY")))
        elif kind == "none":
            blobs.append(None)
        elif kind == "metres":
            blobs.append(shapely.to_wkb(shapely.box(563000, 4150000, 564000, 4151000)))
        elif kind == "truncated":
            wkb = shapely.to_wkb(shapely.box(116.3, 39.9, 116.31, 39.91))
            blobs.append(wkb[: draw(st.integers(0, len(wkb) - 1))])
        else:
            blobs.append(draw(st.binary(max_size=60)))
    ids = [draw(st.sampled_from(["z1", "z2", " z1 ", "", None])) for _ in range(n)]
    cols = {"zone_id": pa.array(ids, pa.string()), "kind": pa.array(["home"] * n, pa.string()),
            "geometry": pa.array(blobs, pa.binary())}
    if draw(st.booleans()):
        cols["t"] = pa.array([draw(st.integers(-(2**62), 2**62)) for _ in range(n)], pa.int64()).cast(
            pa.timestamp("ms"))
    geo = draw(st.sampled_from([
        {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB"}}},
        {"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": "EPSG:3857"}}},
        {"primary_column": "geometry", "columns": {"geometry": "WKB"}},
        {"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB",
                                                                "covering": {"bbox": {"xmin": ["geometry", "x"]}}}}},
        {"primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "covering": {"bbox": "x"}}}},
        {"primary_column": "nope", "columns": {"nope": {"encoding": "WKB"}}},
        None,
    ]))
    table = pa.table(cols)
    if geo is not None:
        table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    data = _parquet_bytes(table)
    if draw(st.integers(0, 6)) == 0:
        data = draw(corrupted(data))
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- rules

RULE_KEYS = ["confirm_s", "buffer_m", "breach_p", "confirm_fixes", "stuck_count", "night_start", "checkin_due",
             "lost_contact", "foo_s", "Confirm_S", "inherits", "description"]
rule_values = st.one_of(
    st.sampled_from(["60", "-1", "0", "1.5", "nan", "inf", "1e308", "2", "true", '"x"', '"20:00"', '"25:00"',
                     "20:00:00", "2024-01-01", "[1]", "{a = 1}", '"ordinary"', '"strict"', '"nope"',
                     "9223372036854775807"]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@st.composite
def rules_texts(draw) -> bytes:
    """TOML for load_rules: profiles with drawn keys and values, periods, unknown keys, then byte mangling."""
    lines = []
    if draw(st.booleans()):  # a valid file to start from, so that some cases load
        lines += ["[profiles.ordinary]", "confirm_s = 60", "[profiles.strict]", 'inherits = "ordinary"']
        valid_values = st.sampled_from(["0", "5", "1.5", "0.5", '"20:00"'])
        for key in draw(st.lists(st.sampled_from(RULE_KEYS), max_size=2, unique=True)):
            lines.append(f"{key} = {draw(st.one_of(valid_values, rule_values))}")
    if draw(st.integers(0, 8)) == 0:
        lines.insert(0, draw(st.sampled_from(['utc_offset = "+08:00"', 'utc_offset = "+99:00"', "utc_offset = 8",
                                           "unknown_top = 1", 'version = "1"'])))
    for name in draw(st.lists(st.sampled_from(["ordinary", "strict", "holiday", "Bad-Name"]), max_size=4,
                              unique=True)):
        lines.append(f"[profiles.{name}]")
        for key in draw(st.lists(st.sampled_from(RULE_KEYS), max_size=4, unique=True)):
            lines.append(f"{key} = {draw(rule_values)}")
    for i in range(draw(st.integers(0, 2))):
        lines.append("[[periods]]")
        lines.append(f'name = "{draw(st.sampled_from(["spring", "spring", "x"]))}"')
        starts = ["2026-02-15T00:00", '"2026-02-15T00:00"', "1", "9999-12-31T23:59:59"]
        ends = ["2026-02-20T00:00", '"2026-02-10T00:00"', "0001-01-01T00:00:00"]
        lines.append(f"start = {draw(st.sampled_from(starts))}")
        lines.append(f"end = {draw(st.sampled_from(ends))}")
        lines.append(draw(st.sampled_from(['profile = "strict"', 'profile = "nope"', "overrides = {confirm_s = 5}",
                                           "offices = []", "subjects = [1]", "surprise = 1"])))
    if draw(st.integers(0, 10)) == 0:
        lines.append("deep = " + "[" * 5000 + "]" * 5000)
    if draw(st.integers(0, 12)) == 0:
        # a long inheritance chain
        lines.append('[profiles.ordinary]\n[profiles.strict]\ninherits = "p0"')
        lines += [f'[profiles.p{i}]\ninherits = "p{i + 1}"' for i in range(1500)] + ['[profiles.p1500]']
    return _mangled(draw, "\n".join(lines).encode(), 10, b"\xff")


def _mangled(draw, data: bytes, odds: int, bad: bytes) -> bytes:
    """``data`` as it is, or (one time in ``odds`` + 1 each) behind a UTF-8 BOM, with ``bad`` bytes inserted, or cut."""
    mangle = draw(st.integers(0, odds))
    if mangle == 0:
        return b"\xef\xbb\xbf" + data
    if mangle == 1 and data:
        at = draw(st.integers(0, len(data)))
        return data[:at] + bad + data[at:]
    if mangle == 2:
        return data[: draw(st.integers(0, len(data)))]
    return data


# --------------------------------------------------------------------------- JSON lines

@st.composite
def json_lines(draw) -> list[str]:
    """Lines for geomon.run.live.read_json_lines: fixes, junk, hostile nesting, huge integers, lone surrogates."""
    lines = []
    for row in draw(fix_rows(max_rows=8)):
        kind = draw(st.integers(0, 12))
        if kind == 0:
            lines.append(draw(st.sampled_from(["", "   ", "not json", "[1, 2]", "null", '{"a":', "{}", "\ufeff{}"])))
            continue
        if kind == 11:
            lines.append(draw(st.sampled_from(["[" * 10_000 + "]" * 10_000, '{"ts": ' + "9" * 5000 + "}",
                                               '{"subject_id": "\\ud800", "ts": 0, "lon": 1, "lat": 1}'])))
            continue
        obj: dict[str, Any] = {k: v for k, v in row.items() if v is not None or draw(st.booleans())}
        if kind == 1:
            obj["lon"] = draw(st.sampled_from([float("nan"), float("inf"), 563000, True, [1], {"x": 1}]))
        lines.append(json.dumps(obj, allow_nan=True, ensure_ascii=draw(st.booleans())))
    return lines


# --------------------------------------------------------------------------- the contract


def _check_refusal(exc: BaseException) -> None:
    """A refusal must be deliberate: a GeomonError, or a plain ValueError raised by geomon itself."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = tb[-1].filename if tb else ""
    deliberate = isinstance(exc, GeomonError) or (type(exc) is ValueError and where.startswith(_GEOMON_DIR))
    if not deliberate:
        raise AssertionError(f"undeliberate {type(exc).__name__} from {where}: {exc}") from exc
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert "Traceback" not in message


def _check_quarantine(load, *, file_level_ok: bool = False) -> None:
    q = load.quarantine
    assert q.schema.equals(QUARANTINE_SCHEMA), q.schema
    assert load.n_read == load.n_accepted + load.n_quarantined, (load.n_read, load.n_accepted, load.n_quarantined)
    assert q.num_rows == load.n_quarantined
    rows = q.column("row").to_pylist()
    for row, reason, raw in zip(rows, q.column("reason").to_pylist(), q.column("raw").to_pylist()):
        assert reason, "quarantine row without a reason"
        assert row == -1 or 0 <= row < load.n_read, (row, load.n_read)
        if raw is not None:
            json.loads(raw)  # raw is JSON text
    row_level = [r for r in rows if r >= 0]
    assert len(set(row_level)) == len(row_level), "an input row quarantined twice"
    assert rows == sorted(rows)


def _check_result(name: str, result: Any) -> None:
    if isinstance(result, FixLoad):
        _check_quarantine(result)
        table = result.table
        assert table.num_rows == result.n_accepted
        assert table.schema.names[: len(FIX_SCHEMA)] == FIX_SCHEMA.names
        for field in FIX_SCHEMA:
            assert table.schema.field(field.name).type == field.type
        if table.num_rows:
            lon, lat = table.column("lon").to_numpy(), table.column("lat").to_numpy()
            assert np.isfinite(lon).all() and np.isfinite(lat).all()
            assert (np.abs(lon) <= 180).all() and (np.abs(lat) <= 90).all()
            ts = table.column("ts").cast(pa.int64()).to_numpy()
            assert ((ts >= TS_MIN_MS) & (ts <= TS_MAX_MS)).all()
            table.slice(0, 50).to_pylist()  # every accepted value is usable from Python
        assert result.input_row is None or len(result.input_row) == table.num_rows
    elif isinstance(result, SubjectLoad):
        _check_quarantine(result)
        assert result.table.schema.names[: len(SUBJECT_SCHEMA)] == SUBJECT_SCHEMA.names
        ids = result.table.column("subject_id").to_pylist()
        assert len(set(ids)) == len(ids) and all(i and i == i.strip() for i in ids)
    elif isinstance(result, ZoneLoad):
        _check_quarantine(result)
        assert len(result.zone_id) == len(result.kind) == len(result.geometry) == result.n_accepted
        assert result.properties.num_rows == result.n_accepted
        assert result.properties.schema.names[: len(ZONE_PROPERTIES_SCHEMA)] == ZONE_PROPERTIES_SCHEMA.names
        assert len(set(result.zone_id)) == len(result.zone_id)
        if result.n_accepted:
            assert shapely.is_valid(result.geometry).all()
            assert np.isin(shapely.get_type_id(result.geometry), [3, 6]).all()
            assert not shapely.is_empty(result.geometry).any()
        assert set(result.repairs.column("row").to_pylist()) <= set(range(result.n_read))
    elif isinstance(result, Rules):
        assert {"ordinary", "strict"} <= set(result.profiles)
        for values in result.profiles.values():
            for key, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    assert math.isfinite(v) and v >= 0, (key, v)
    elif name == "concern":
        assert isinstance(result, dict)
        for person, subjects in result.items():
            assert person and person == person.strip()
            assert subjects is None or all(s and s == s.strip() for s in subjects)
    elif name == "protections":
        assert isinstance(result, list)
        for order in result:
            assert order["subject_id"] and order["victim_id"]
            assert 0 < order["alert_m"] <= order["warning_m"] and math.isfinite(order["warning_m"])
    else:
        raise AssertionError(f"{name}: unexpected result {type(result).__name__}")


def check_outcome(name: str, call: Callable[[], Any]) -> Any:
    """Run one loader call and assert the loading contract on what it did.

    Parameters
    ----------
    name : str
        Loader name, the key of the case counters :data:`CASES` and :data:`OUTCOMES`.
    call : callable
        Calls the loader on one hostile input.

    Returns
    -------
    object or None
        The loader's result, or None if it refused the input.

    Raises
    ------
    AssertionError
        If the loader raised anything but a deliberate, clear refusal
        (:class:`geomon.errors.GeomonError`, or a ``ValueError`` raised by
        geomon itself), or returned a result breaking the contract: counts
        that do not add up, a quarantine row without a reason or with a row
        number outside ``[-1, n_read)``, accepted values out of range.
    """
    CASES[name] += 1
    try:
        result = call()
    except (GeomonError, ValueError) as exc:
        _check_refusal(exc)
        OUTCOMES[name, "refused"] += 1
        return None
    _check_result(name, result)
    OUTCOMES[name, "returned"] += 1
    return result


def report() -> str:
    """One line per loader: cases tried, returned, refused."""
    lines = [f"{'loader':<14}{'cases':>8}{'returned':>10}{'refused':>9}"]
    for name in sorted(CASES):
        lines.append(f"{name:<14}{CASES[name]:>8}{OUTCOMES[name, 'returned']:>10}{OUTCOMES[name, 'refused']:>9}")
    return "\n".join(lines)
