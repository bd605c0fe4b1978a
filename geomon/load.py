"""Load fixes, zones, subjects and rules, validating them into a quarantine.

Every loader returns the rows it accepted, in a canonical schema
(:mod:`geomon.schema`), and a quarantine table holding each refused input row
with the first reason found, so that ``n_read == n_accepted + n_quarantined``
always holds and nothing is dropped unseen. A file that is not what it claims
to be (wrong format, missing columns, column types that cannot be read) raises
one :class:`geomon.errors.InputError` naming the file and the problem.

Validation of fixes and subjects is vectorised with ``pyarrow.compute`` and
numpy; only refused rows are touched one by one (to write their JSON). Zones are
few, so they are validated feature by feature and their geometries repaired in
bulk with shapely.

Conventions (decided here, relied on downstream):

- Timestamps: ``timestamp`` columns of any unit or time zone are converted to
  ``timestamp[ms, tz=UTC]``, truncating sub-millisecond digits; time-zone-naive
  timestamps and ISO-8601 text without an offset are taken as UTC. Integers
  (and all-digit text) are epoch milliseconds. Floats and dates are refused.
- Text: surrounding whitespace is not part of a value; ``source`` and ``level``
  must match their vocabulary exactly (lower case).
- Exact duplicates are rows whose parsed values are all equal, extra columns
  included; the first is kept.
- Coordinates are range-checked in the input datum, then converted to WGS84.

GeoJSON follows RFC 7946 (exterior rings counter-clockwise, rings closed);
GeoParquet follows the GeoParquet 1.x specification (WKB geometry column,
``geo`` file metadata).
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import json
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely

from geomon.errors import InputError
from geomon.schema import (
    FIX_REQUIRED,
    FIX_SCHEMA,
    LEVELS,
    QUARANTINE_SCHEMA,
    REPAIR_SCHEMA,
    SOURCES,
    SUBJECT_REQUIRED,
    SUBJECT_SCHEMA,
    TS_TYPE,
    ZONE_KINDS,
    ZONE_PROPERTIES_SCHEMA,
)

__all__ = [
    "FixLoad",
    "Rules",
    "SubjectLoad",
    "UNITLESS_KEYS",
    "UNIT_SUFFIXES",
    "ZoneLoad",
    "default_rules",
    "load_fixes",
    "load_rules",
    "load_subjects",
    "load_zones",
]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class _Load:
    """Counts and quarantine common to every load result."""

    quarantine: pa.Table
    n_read: int
    n_accepted: int
    n_quarantined: int
    source_name: str

    def __post_init__(self) -> None:
        # Raised, not asserted: the guarantee must hold under ``python -O`` too.
        if self.n_read != self.n_accepted + self.n_quarantined:
            raise RuntimeError(
                f"{self.source_name}: read {self.n_read} != accepted {self.n_accepted}"
                f" + quarantined {self.n_quarantined}"
            )
        if self.quarantine.num_rows != self.n_quarantined:
            raise RuntimeError(f"{self.source_name}: quarantine table length disagrees with its count")

    @property
    def balanced(self) -> bool:
        """True when ``n_read == n_accepted + n_quarantined`` (always, by construction)."""
        return self.n_read == self.n_accepted + self.n_quarantined

    def reason_counts(self) -> dict[str, int]:
        """Return the number of quarantined rows per reason code."""
        counts = pc.value_counts(self.quarantine.column("reason")).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


@dataclass(frozen=True, kw_only=True)
class FixLoad(_Load):
    """Result of :func:`load_fixes`.

    Attributes
    ----------
    table : pyarrow.Table
        Accepted fixes in :data:`geomon.schema.FIX_SCHEMA` (extra input columns
        follow), lon/lat in WGS84 degrees, sorted stably by ``(subject_id, ts)``.
    quarantine : pyarrow.Table
        Refused rows in :data:`geomon.schema.QUARANTINE_SCHEMA`, by input row.
    n_read, n_accepted, n_quarantined : int
        Row counts; ``n_read == n_accepted + n_quarantined``.
    source_name : str
        File path or table name used in messages and in the quarantine.
    datum : str
        Datum the input coordinates were given in.
    """

    table: pa.Table
    datum: str = "wgs84"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.table.num_rows != self.n_accepted:
            raise RuntimeError(f"{self.source_name}: accepted table length disagrees with its count")


@dataclass(frozen=True, kw_only=True)
class SubjectLoad(_Load):
    """Result of :func:`load_subjects`.

    Attributes
    ----------
    table : pyarrow.Table
        Accepted subjects in :data:`geomon.schema.SUBJECT_SCHEMA` (extra input
        columns follow), in input order.
    """

    table: pa.Table

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.table.num_rows != self.n_accepted:
            raise RuntimeError(f"{self.source_name}: accepted table length disagrees with its count")


@dataclass(frozen=True, kw_only=True)
class ZoneLoad(_Load):
    """Result of :func:`load_zones`.

    Attributes
    ----------
    zone_id, kind : numpy.ndarray of str (object dtype)
        One entry per accepted zone, in input order.
    geometry : numpy.ndarray of shapely Polygon or MultiPolygon (object dtype)
        Valid, exterior rings counter-clockwise, lon/lat degrees in WGS84.
    properties : pyarrow.Table
        :data:`geomon.schema.ZONE_PROPERTIES_SCHEMA` columns, then extra
        properties, one row per accepted zone.
    repairs : pyarrow.Table
        Geometry changes in :data:`geomon.schema.REPAIR_SCHEMA`, for accepted
        zones only.
    """

    zone_id: np.ndarray
    kind: np.ndarray
    geometry: np.ndarray
    properties: pa.Table
    repairs: pa.Table
    datum: str = "wgs84"


# --------------------------------------------------------------------------- reading

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 1 << 16


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _existing_path(source: str | Path) -> Path:
    path = Path(source)
    if not path.exists():
        raise InputError(str(source), "no such file")
    return path


def _csv_header(path: Path) -> list[str]:
    """Read the header of a CSV file, refusing files that are not text."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        kind = "gzip-compressed CSV" if opener is gzip.open else "CSV"
        raise InputError(str(path), f"cannot read as {kind}: {_first_line(exc)}") from None
    if not head.strip():
        raise InputError(str(path), "empty file, no CSV header")
    if b"\x00" in head:
        raise InputError(str(path), "binary content, not CSV text")
    line = head.split(b"\n", 1)[0]
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(str(path), "CSV header is not UTF-8 text") from None
    names = next(csv.reader([text.rstrip("\r")]))
    return [n.strip() for n in names]


def _read_csv(path: Path, text_columns: tuple[str, ...]) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    names = _csv_header(path)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in text_columns if c in names},
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(path, convert_options=convert), []
    except pa.ArrowInvalid as exc:
        if "Expected" not in str(exc) or "columns" not in str(exc):
            raise InputError(str(path), f"not a readable CSV file: {_first_line(exc)}") from None
    # Rows with the wrong number of fields: read again, single-threaded so that
    # pyarrow reports their line numbers, and quarantine them.
    malformed: list[tuple[int | None, str]] = []

    def keep_aside(row: Any) -> str:
        malformed.append((None if row.number is None else row.number - 2, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_aside),
            convert_options=convert,
        )
    except pa.ArrowException as exc:
        raise InputError(str(path), f"not a readable CSV file: {_first_line(exc)}") from None
    return table, malformed


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(str(path), f"not a readable Parquet file: {_first_line(exc)}") from None


def _read_tabular(
    source: str | Path | pa.Table, name: str | None, text_columns: tuple[str, ...]
) -> tuple[pa.Table, str, list[tuple[int | None, str]]]:
    """Read a table from an Arrow table, Parquet file or dataset, or CSV file.

    Returns the table, the name used in messages, and the CSV records that had
    the wrong number of fields as ``(0-based record number or None, text)``.
    """
    if isinstance(source, pa.Table):
        table, src, malformed = source, name or "<table>", []
    elif isinstance(source, (str, Path)):
        path = _existing_path(source)
        src = name or str(source)
        lower = path.name.lower()
        if path.is_dir() or lower.endswith(_PARQUET_SUFFIXES):
            table, malformed = _read_parquet(path), []
        elif lower.endswith(_CSV_SUFFIXES):
            table, malformed = _read_csv(path, text_columns)
        else:
            raise InputError(src, f"unsupported file type; expected one of {_CSV_SUFFIXES + _PARQUET_SUFFIXES}")
    else:
        raise TypeError(f"source must be a path or a pyarrow.Table, not {type(source).__name__}")
    dupes = sorted({c for c in table.column_names if table.column_names.count(c) > 1})
    if dupes:
        raise InputError(src, f"duplicate column names {dupes}")
    # Several compute kernels (take, group_by) lack view-type support.
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    if any(f.type in views for f in table.schema):
        table = table.cast(pa.schema([f.with_type(views.get(f.type, f.type)) for f in table.schema]))
    return table, src, malformed


def _require_columns(table: pa.Table, required: tuple[str, ...], src: str) -> None:
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise InputError(src, f"missing required column(s) {missing}; found {table.column_names}")


def _row_numbers(n_table: int, malformed: list[tuple[int | None, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Input record numbers of the table rows and of the malformed CSV records.

    Record numbers come from CSV line numbers, so they assume one line per record;
    if that does not hold the malformed records are numbered after the table.
    """
    good = np.arange(n_table, dtype=np.int64)
    if not malformed:
        return good, np.empty(0, dtype=np.int64)
    bad = np.array([-1 if m[0] is None else m[0] for m in malformed], dtype=np.int64)
    total = n_table + len(bad)
    if bad.min() >= 0 and bad.max() < total and len(np.unique(bad)) == len(bad):
        return np.setdiff1d(np.arange(total, dtype=np.int64), bad), bad
    return good, np.arange(n_table, total, dtype=np.int64)


# --------------------------------------------------------------------------- column parsing

_FLOAT_TEXT = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$"
_EPOCH_TEXT = r"^[+-]?\d{1,18}$"
_ZONE_TEXT = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_ISO_TEXT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}[0-9:.]*(Z|[+-]\d{2}(:?\d{2})?)$"
_TS_NS = pa.timestamp("ns", tz="UTC")


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _plain(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _cast_or_null(arr: pa.Array, to: pa.DataType) -> pa.Array:
    """Cast, turning the values that fail into nulls (bisects on failure)."""
    try:
        return pc.cast(arr, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) <= 1:
            return pa.nulls(len(arr), to)
        mid = len(arr) // 2
        return pa.concat_arrays([_cast_or_null(arr[:mid], to), _cast_or_null(arr[mid:], to)])


def _trimmed_text(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Trim text; return it with blanks as nulls, and the blank-or-null mask."""
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    blank = pc.equal(text, "")
    text = pc.if_else(blank, pa.scalar(None, pa.string()), text)
    return text, ~_np_bool(pc.is_valid(text))


def _text_column(table: pa.Table, name: str, src: str) -> tuple[pa.Array, np.ndarray]:
    """Read a column as trimmed text. Returns the values and the missing mask."""
    arr = _plain(table.column(name))
    if not (_is_text(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        raise InputError(src, f"column type {arr.type} cannot be read as text", field=name)
    return _trimmed_text(arr)


def _float_column(table: pa.Table, name: str, src: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Read a column as float64. Returns values, missing mask, unparseable mask."""
    arr = _plain(table.column(name))
    t = arr.type
    if _is_text(t):
        text, missing = _trimmed_text(arr)
        try:
            values = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:
            looks = pc.match_substring_regex(text, _FLOAT_TEXT)
            values = _cast_or_null(pc.if_else(looks, text, pa.scalar(None, pa.string())), pa.float64())
        return values, missing, ~missing & ~_np_bool(pc.is_valid(values))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        values = pc.cast(arr, pa.float64())
        return values, ~_np_bool(pc.is_valid(values)), np.zeros(len(values), dtype=bool)
    raise InputError(src, f"column type {t} cannot be read as a number", field=name)


def _parse_ts_text(text: pa.Array) -> pa.Array:
    """Parse trimmed text (nulls allowed) as ISO-8601 or epoch ms; failures become null."""
    try:  # common case: every value is ISO-8601 with Z or an offset
        return pc.cast(pc.cast(text, _TS_NS), TS_TYPE, safe=False)
    except pa.ArrowInvalid:
        pass
    null_text = pa.scalar(None, pa.string())
    is_epoch = pc.fill_null(pc.match_substring_regex(text, _EPOCH_TEXT), False)
    epoch = pc.cast(pc.cast(pc.if_else(is_epoch, text, null_text), pa.int64()), TS_TYPE)
    iso_text = pc.if_else(is_epoch, null_text, text)
    if iso_text.null_count == len(iso_text):
        return epoch
    has_zone = pc.match_substring_regex(iso_text, _ZONE_TEXT)
    iso_text = pc.if_else(has_zone, iso_text, pc.binary_join_element_wise(iso_text, "Z", ""))
    try:
        iso = pc.cast(iso_text, _TS_NS)
    except pa.ArrowInvalid:
        # Some values are not timestamps: drop the obvious ones by pattern so that
        # bisection only has the rare calendar errors (2024-02-30) left to find.
        iso_text = pc.if_else(pc.match_substring_regex(iso_text, _ISO_TEXT), iso_text, null_text)
        iso = _cast_or_null(iso_text, _TS_NS)
    return pc.if_else(is_epoch, epoch, pc.cast(iso, TS_TYPE, safe=False))


def _ts_column(table: pa.Table, name: str, src: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Read a column as UTC ms timestamps. Returns values, missing, unparseable masks."""
    arr = _plain(table.column(name))
    t = arr.type
    if _is_text(t):
        text, missing = _trimmed_text(arr)
        values = _parse_ts_text(text)
        return values, missing, ~missing & ~_np_bool(pc.is_valid(values))
    if pa.types.is_timestamp(t):
        values = pc.cast(arr, TS_TYPE, safe=False)
    elif pa.types.is_integer(t) or pa.types.is_null(t):
        ms = _cast_or_null(arr, pa.int64())  # uint64 beyond int64: unparseable, not fatal
        values = pc.cast(ms, TS_TYPE)
        return values, ~_np_bool(pc.is_valid(arr)), ~_np_bool(pc.is_valid(ms)) & _np_bool(pc.is_valid(arr))
    else:
        raise InputError(
            src, f"column type {t} cannot be read as a timestamp (use timestamp, epoch-ms integer or ISO-8601 text)", field=name
        )
    return values, ~_np_bool(pc.is_valid(values)), np.zeros(len(values), dtype=bool)


# --------------------------------------------------------------------------- quarantine


class _Reasons:
    """First reason found per row, with the column it concerns."""

    def __init__(self, n: int):
        self.code = np.full(n, -1, dtype=np.int16)
        self.names: list[tuple[str | None, str]] = []

    def add(self, field_name: str | None, reason: str, mask: np.ndarray) -> None:
        k = len(self.names)
        self.names.append((field_name, reason))
        self.code[(self.code < 0) & mask] = k

    @property
    def ok(self) -> np.ndarray:
        return self.code < 0


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def _to_json(v: Any) -> str:
    return json.dumps(_json_value(v), default=str, ensure_ascii=False)


def _rows_json(raw: pa.Table, rows: np.ndarray) -> list[str]:
    return [_to_json(r) for r in raw.take(pa.array(rows, pa.int64())).to_pylist()]


def _quarantine_table(
    src: str,
    raws: list[str],
    reasons: _Reasons,
    row_numbers: np.ndarray,
    extra: list[tuple[int, str | None, str, str]] = (),
) -> pa.Table:
    """Build the quarantine from per-row reasons plus ``(row, field, reason, raw)`` extras.

    ``raws`` holds the JSON text of the refused rows, in row order.
    """
    bad = np.flatnonzero(~reasons.ok)
    fields = np.array([f for f, _ in reasons.names] + [None], dtype=object)
    codes = np.array([r for _, r in reasons.names] + [""], dtype=object)
    k = reasons.code[bad]
    rows = np.concatenate([row_numbers[bad], np.array([e[0] for e in extra], dtype=np.int64)])
    order = np.argsort(rows, kind="stable")
    table = pa.table(
        {
            "source_name": pa.array([src] * len(rows), pa.string()),
            "row": pa.array(rows, pa.int64()),
            "field": pa.array(list(fields[k]) + [e[1] for e in extra], pa.string()),
            "reason": pa.array(list(codes[k]) + [e[2] for e in extra], pa.string()),
            "raw": pa.array(raws + [e[3] for e in extra], pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    return table.take(pa.array(order, pa.int64()))


def _malformed_extras(malformed: list[tuple[int | None, str]], rows: np.ndarray) -> list[tuple[int, str | None, str, str]]:
    return [(int(r), None, "csv_malformed_row", json.dumps(text, ensure_ascii=False)) for r, (_, text) in zip(rows, malformed)]


def _duplicates(table: pa.Table, candidates: np.ndarray) -> np.ndarray:
    """Rows among ``candidates`` equal in every column to an earlier candidate."""
    if len(candidates) == 0:
        return candidates
    keys = {}
    for name in table.column_names:
        col = _plain(table.column(name))
        if pa.types.is_null(col.type):
            continue  # all null: equal everywhere, no information
        if pa.types.is_nested(col.type):
            # Arrow cannot group on nested types; their JSON text compares the same way.
            col = pa.array([None if v is None else _to_json(v) for v in col.to_pylist()], pa.string())
        keys[f"k{len(keys)}"] = col.take(pa.array(candidates, pa.int64()))
    keys["row"] = pa.array(candidates, pa.int64())
    grouped = pa.table(keys).group_by([k for k in keys if k != "row"]).aggregate([("row", "min")])
    first = grouped.column("row_min").to_numpy()
    return np.setdiff1d(candidates, first, assume_unique=True)


def _check_datum(datum: str) -> None:
    """Fail before reading anything if ``to_wgs84`` does not know ``datum``."""
    if datum == "wgs84":
        return
    from geomon.datum import to_wgs84

    to_wgs84(np.zeros(0), np.zeros(0), datum)  # raises ValueError for an unknown datum


def _lonlat_to_wgs84(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "wgs84" or len(lon) == 0:
        return lon, lat
    from geomon.datum import to_wgs84

    out_lon, out_lat = to_wgs84(lon, lat, datum)
    return np.asarray(out_lon, dtype=np.float64), np.asarray(out_lat, dtype=np.float64)


# --------------------------------------------------------------------------- fixes


def load_fixes(source: str | Path | pa.Table, *, datum: str = "wgs84", name: str | None = None) -> FixLoad:
    """Load position fixes, quarantining the rows that fail validation.

    Parameters
    ----------
    source : str, pathlib.Path or pyarrow.Table
        A ``.parquet`` file or Parquet dataset directory, a ``.csv`` or
        ``.csv.gz`` file, or an Arrow table, with the columns of
        :data:`geomon.schema.FIX_SCHEMA` (``accuracy_m`` optional). Extra
        columns are kept. CSV timestamps are ISO-8601 (``Z`` or an offset;
        without one, UTC) or integer epoch milliseconds.
    datum : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        Datum of the input lon/lat; accepted coordinates are converted to WGS84.
    name : str, optional
        Name used in messages and the quarantine (default: the path, or
        ``"<table>"``).

    Returns
    -------
    FixLoad
        Accepted fixes sorted stably by ``(subject_id, ts)``, and the quarantine.

    Raises
    ------
    geomon.errors.InputError
        If the input is not a readable file of its kind, lacks a required
        column, or has a column whose type cannot be read as required.
    ValueError
        If ``datum`` is unknown.

    Notes
    -----
    Reason codes, in the order they are tested (the first found is recorded):
    ``csv_malformed_row``, ``subject_missing``, ``ts_missing``,
    ``ts_unparseable``, ``lon_missing``, ``lon_unparseable``,
    ``lon_not_finite``, ``lon_out_of_range`` (outside [-180, 180]), the same
    four for ``lat`` ([-90, 90]), ``source_missing``, ``source_unknown``,
    ``accuracy_unparseable``, ``accuracy_not_finite``, ``accuracy_negative``,
    ``duplicate`` (equal in every column to an earlier accepted row) and
    ``datum_failed`` (conversion to WGS84 gave a non-finite value). A null
    ``accuracy_m`` is accepted.
    """
    _check_datum(datum)
    raw, src, malformed = _read_tabular(source, name, FIX_SCHEMA.names)
    _require_columns(raw, FIX_REQUIRED, src)
    n = raw.num_rows
    row_numbers, malformed_rows = _row_numbers(n, malformed)

    subject, subject_missing = _text_column(raw, "subject_id", src)
    ts, ts_missing, ts_bad = _ts_column(raw, "ts", src)
    lon, lon_missing, lon_bad = _float_column(raw, "lon", src)
    lat, lat_missing, lat_bad = _float_column(raw, "lat", src)
    fix_source, source_missing = _text_column(raw, "source", src)
    if "accuracy_m" in raw.column_names:
        acc, _, acc_bad = _float_column(raw, "accuracy_m", src)
    else:
        acc, acc_bad = pa.nulls(n, pa.float64()), np.zeros(n, dtype=bool)
    acc32 = pc.cast(acc, pa.float32())  # finite doubles beyond float32 range become inf
    acc32_np = pc.fill_null(acc32, 0.0).to_numpy(zero_copy_only=False)
    # Sign from the double: tiny negatives round to -0.0 in float32 but are still negative.
    acc64_np = pc.fill_null(acc, 0.0).to_numpy(zero_copy_only=False)
    lon_np = pc.fill_null(lon, 0.0).to_numpy(zero_copy_only=False)
    lat_np = pc.fill_null(lat, 0.0).to_numpy(zero_copy_only=False)

    reasons = _Reasons(n)
    reasons.add("subject_id", "subject_missing", subject_missing)
    reasons.add("ts", "ts_missing", ts_missing)
    reasons.add("ts", "ts_unparseable", ts_bad)
    with np.errstate(invalid="ignore"):
        for axis, values, missing, bad, limit in (
            ("lon", lon_np, lon_missing, lon_bad, 180.0),
            ("lat", lat_np, lat_missing, lat_bad, 90.0),
        ):
            reasons.add(axis, f"{axis}_missing", missing)
            reasons.add(axis, f"{axis}_unparseable", bad)
            reasons.add(axis, f"{axis}_not_finite", ~np.isfinite(values))
            reasons.add(axis, f"{axis}_out_of_range", np.abs(values) > limit)
        reasons.add("source", "source_missing", source_missing)
        reasons.add("source", "source_unknown", ~_np_bool(pc.is_in(fix_source, value_set=pa.array(SOURCES))))
        reasons.add("accuracy_m", "accuracy_unparseable", acc_bad)
        reasons.add("accuracy_m", "accuracy_not_finite", ~np.isfinite(acc32_np))
        reasons.add("accuracy_m", "accuracy_negative", acc64_np < 0)

    extras = [c for c in raw.column_names if c not in FIX_SCHEMA.names]
    parsed = pa.Table.from_arrays(
        [subject, ts, lon, lat, fix_source, acc32] + [raw.column(c) for c in extras],
        names=FIX_SCHEMA.names + extras,
    )
    # Sort the valid rows once (stable, so input order breaks ties); exact
    # duplicates can then only lie in runs of equal (subject_id, ts), and only
    # those few rows need comparing in every column.
    valid = np.flatnonzero(reasons.ok)
    keys = pa.table({"s": subject.take(pa.array(valid, pa.int64())), "t": ts.take(pa.array(valid, pa.int64()))})
    kept = valid[pc.sort_indices(keys, sort_keys=[("s", "ascending"), ("t", "ascending")]).to_numpy()]
    sorted_s = subject.take(pa.array(kept, pa.int64()))
    sorted_t = pc.fill_null(pc.cast(ts, pa.int64()), 0).to_numpy()[kept]
    same = _np_bool(pc.equal(sorted_s[1:], sorted_s[:-1])) & (sorted_t[1:] == sorted_t[:-1])
    in_run = np.zeros(len(kept), dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    duplicate = np.zeros(n, dtype=bool)
    duplicate[_duplicates(parsed, np.sort(kept[in_run]))] = True
    reasons.add(None, "duplicate", duplicate)
    kept = kept[~duplicate[kept]]

    wgs_lon, wgs_lat = _lonlat_to_wgs84(lon_np[kept], lat_np[kept], datum)
    failed = ~(np.isfinite(wgs_lon) & np.isfinite(wgs_lat))
    if failed.any():
        mask = np.zeros(n, dtype=bool)
        mask[kept[failed]] = True
        reasons.add("lon", "datum_failed", mask)
        wgs_lon, wgs_lat, kept = wgs_lon[~failed], wgs_lat[~failed], kept[~failed]

    accepted = parsed.take(pa.array(kept, pa.int64()))
    accepted = accepted.set_column(2, "lon", pa.array(wgs_lon, pa.float64()))
    accepted = accepted.set_column(3, "lat", pa.array(wgs_lat, pa.float64()))
    accepted = accepted.cast(pa.schema(list(FIX_SCHEMA) + [accepted.schema.field(c) for c in extras]))

    quarantine = _quarantine_table(
        src, _rows_json(raw, np.flatnonzero(~reasons.ok)), reasons, row_numbers, _malformed_extras(malformed, malformed_rows)
    )
    return FixLoad(
        quarantine=quarantine,
        n_read=n + len(malformed),
        n_accepted=accepted.num_rows,
        n_quarantined=quarantine.num_rows,
        source_name=src,
        table=accepted,
        datum=datum,
    )


# --------------------------------------------------------------------------- subjects


def load_subjects(source: str | Path | pa.Table, *, name: str | None = None) -> SubjectLoad:
    """Load supervised subjects, quarantining the rows that fail validation.

    Parameters
    ----------
    source : str, pathlib.Path or pyarrow.Table
        A CSV (``.csv``, ``.csv.gz``) or Parquet file, or an Arrow table, with
        the columns of :data:`geomon.schema.SUBJECT_SCHEMA` (``home_zone_id``
        optional). Extra columns (flags, ...) are kept.
    name : str, optional
        Name used in messages and the quarantine.

    Returns
    -------
    SubjectLoad
        Accepted subjects in input order, and the quarantine.

    Raises
    ------
    geomon.errors.InputError
        If the input is unreadable, lacks a required column or has a column
        that cannot be read as text.

    Notes
    -----
    Reason codes, in test order: ``csv_malformed_row``, ``subject_missing``,
    ``level_missing``, ``level_unknown`` (not ``strict`` or ``ordinary``),
    ``office_missing``, ``subject_duplicate`` (the first row of an id is kept).
    """
    raw, src, malformed = _read_tabular(source, name, SUBJECT_SCHEMA.names)
    _require_columns(raw, SUBJECT_REQUIRED, src)
    n = raw.num_rows
    row_numbers, malformed_rows = _row_numbers(n, malformed)
    subject, subject_missing = _text_column(raw, "subject_id", src)
    level, level_missing = _text_column(raw, "level", src)
    office, office_missing = _text_column(raw, "office_id", src)
    if "home_zone_id" in raw.column_names:
        home, _ = _text_column(raw, "home_zone_id", src)
    else:
        home = pa.nulls(n, pa.string())

    reasons = _Reasons(n)
    reasons.add("subject_id", "subject_missing", subject_missing)
    reasons.add("level", "level_missing", level_missing)
    reasons.add("level", "level_unknown", ~_np_bool(pc.is_in(level, value_set=pa.array(LEVELS))))
    reasons.add("office_id", "office_missing", office_missing)
    ok = np.flatnonzero(reasons.ok)
    ids = pa.table({"id": subject.take(pa.array(ok, pa.int64())), "row": pa.array(ok, pa.int64())})
    first = ids.group_by("id").aggregate([("row", "min")]).column("row_min").to_numpy()
    reasons.add("subject_id", "subject_duplicate", np.isin(np.arange(n), np.setdiff1d(ok, first)))

    extras = [c for c in raw.column_names if c not in SUBJECT_SCHEMA.names]
    kept = pa.array(np.flatnonzero(reasons.ok), pa.int64())
    accepted = pa.Table.from_arrays(
        [subject, level, office, home] + [raw.column(c) for c in extras], names=SUBJECT_SCHEMA.names + extras
    ).take(kept)
    accepted = accepted.cast(pa.schema(list(SUBJECT_SCHEMA) + [accepted.schema.field(c) for c in extras]))
    quarantine = _quarantine_table(
        src, _rows_json(raw, np.flatnonzero(~reasons.ok)), reasons, row_numbers, _malformed_extras(malformed, malformed_rows)
    )
    return SubjectLoad(
        quarantine=quarantine,
        n_read=n + len(malformed),
        n_accepted=accepted.num_rows,
        n_quarantined=quarantine.num_rows,
        source_name=src,
        table=accepted,
    )


# --------------------------------------------------------------------------- zones

_POLYGONAL = ("Polygon", "MultiPolygon")
_LONLAT_CRS = {("OGC", "CRS84"), ("EPSG", "4326"), ("EPSG", "4490")}  # 4490: CGCS2000


class _Reject(Exception):
    """A zone feature refused, with its field and reason code."""

    def __init__(self, field_name: str | None, reason: str):
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _geojson_ring(ring: Any, row: int, repairs: list[tuple[int, str, str]]) -> np.ndarray:
    try:
        coords = np.array([[float(p[0]), float(p[1])] for p in ring], dtype=np.float64)
    except (TypeError, ValueError, IndexError):
        raise _Reject("geometry", "geometry_unparseable") from None
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
    if not isinstance(polys, list) or not all(isinstance(p, list) and p for p in polys):
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
        shown = json.dumps(crs)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        raise InputError(src, f"unsupported CRS {shown}; expected lon/lat (OGC:CRS84, EPSG:4326 or EPSG:4490)")


def _read_geojson(src: str, path: Path | None, doc: Any):
    """Yield ``(row, properties, geometry or _Reject, raw json, repairs)`` per feature."""
    if path is not None:
        try:
            doc = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(src, f"not a GeoJSON file: {_first_line(exc)}") from None
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
    except (ValueError, KeyError, TypeError):
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
    bbox_columns = {v[0] for v in (covering.get("bbox") or {}).values() if isinstance(v, list) and v}
    # Covering columns describe the input geometry, which datum conversion and repair change.
    props_table = table.drop_columns([column] + sorted(bbox_columns & set(table.column_names)))
    out = []
    for row, (blob, geom, props) in enumerate(zip(wkb_values, geoms, props_table.to_pylist())):
        repairs: list[tuple[int, str, str]] = []
        if blob is None:
            geom = _Reject("geometry", "geometry_missing")
        elif geom is None:
            fixed = shapely.from_wkb(blob, on_invalid="fix")
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
    zid = None if zid is None else str(zid).strip()
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
        except (TypeError, ValueError):
            raise _Reject("buffer_m", "buffer_invalid") from None
        if not math.isfinite(buffer_m):
            raise _Reject("buffer_m", "buffer_invalid")
    schedule = props.get("schedule")
    if isinstance(schedule, str):
        if schedule.strip():
            try:
                json.loads(schedule)
            except json.JSONDecodeError:
                raise _Reject("schedule", "schedule_invalid") from None
        else:
            schedule = None
    elif schedule is not None:
        schedule = json.dumps(schedule, sort_keys=True, ensure_ascii=False)
    subject_ids = props.get("subject_ids")
    if isinstance(subject_ids, str):
        subject_ids = subject_ids.split(",")
    if subject_ids is not None:
        if not isinstance(subject_ids, (list, tuple)) or not all(
            isinstance(s, (str, int)) and not isinstance(s, bool) for s in subject_ids
        ):
            raise _Reject("subject_ids", "subject_ids_invalid")
        subject_ids = [str(s).strip() for s in subject_ids if str(s).strip()] or None
    office = props.get("office_id")
    office = None if office is None or str(office).strip() == "" else str(office).strip()
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
        valid = shapely.is_valid(g)
        for i in np.flatnonzero(~valid):
            repairs.append((int(ok[i]), "made_valid", shapely.is_valid_reason(g[i])))
            g[i] = _polygonal_part(shapely.make_valid(g[i]))
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


# --------------------------------------------------------------------------- rules

#: Unit suffixes a numeric rule threshold may end in.
UNIT_SUFFIXES: tuple[str, ...] = ("_s", "_ms", "_m", "_deg", "_mps", "_count")
#: Numeric rule keys allowed without a unit suffix (they count fixes).
UNITLESS_KEYS: frozenset[str] = frozenset({"confirm_fixes"})
#: Rule keys holding a time of day, "HH:MM" local time.
_TIME_OF_DAY_SUFFIXES = ("_start", "_end")
_TEXT_KEYS = frozenset({"inherits", "description"})
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_REQUIRED_PROFILES = ("ordinary", "strict")


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Alert rule profiles, resolved through ``inherits``.

    Attributes
    ----------
    source_name : str
        File the rules came from.
    profiles : Mapping[str, Mapping[str, object]]
        Resolved profile per name: inherited values overridden by the
        profile's own (``inherits`` removed; ``description`` not inherited).
    origin : Mapping[str, Mapping[str, str]]
        For each profile and key, the profile that set the value.
    """

    source_name: str
    profiles: Mapping[str, Mapping[str, Any]]
    origin: Mapping[str, Mapping[str, str]]

    def profile(self, name: str) -> Mapping[str, Any]:
        """Return the resolved profile ``name`` (KeyError naming the profiles if absent)."""
        if name not in self.profiles:
            raise KeyError(f"no rule profile {name!r}; have {sorted(self.profiles)}")
        return self.profiles[name]

    def describe(self, name: str) -> str:
        """Return the resolved profile as text, one ``key = value  # from profile`` per line."""
        prof = self.profile(name)
        lines = [f"[profiles.{name}]  # resolved from {self.source_name}"]
        for key in sorted(prof):
            lines.append(f"{key} = {prof[key]!r}  # from {self.origin[name][key]}")
        return "\n".join(lines)


def _check_rule_value(src: str, profile: str, key: str, value: Any) -> Any:
    where = f"profiles.{profile}.{key}"
    if not _KEY_RE.match(key):
        raise InputError(src, "keys must be lower-case snake_case", field=where)
    numeric_key = key in UNITLESS_KEYS or key.endswith(UNIT_SUFFIXES)
    if key.endswith(_TIME_OF_DAY_SUFFIXES) and not numeric_key:
        if isinstance(value, _dt.time) and value.second == 0 and value.microsecond == 0:
            return value.strftime("%H:%M")
        if not (isinstance(value, str) and _HHMM_RE.match(value)):
            raise InputError(src, f"expected a time of day \"HH:MM\", got {value!r}", field=where)
        return value
    if key in _TEXT_KEYS:
        if not isinstance(value, str):
            raise InputError(src, f"expected text, got {value!r}", field=where)
        return value
    if isinstance(value, bool):
        if numeric_key:
            raise InputError(src, f"expected a number, got {value!r}", field=where)
        return value
    if isinstance(value, (int, float)):
        if not numeric_key:
            raise InputError(
                src,
                f"numeric key has no unit suffix; name it with one of {UNIT_SUFFIXES} or use one of {sorted(UNITLESS_KEYS)}",
                field=where,
            )
        if not math.isfinite(value) or value < 0:
            raise InputError(src, f"must be finite and non-negative, got {value!r}", field=where)
        if (key in UNITLESS_KEYS or key.endswith("_count")) and not isinstance(value, int):
            raise InputError(src, f"a count must be an integer, got {value!r}", field=where)
        return value
    if isinstance(value, str):
        raise InputError(
            src, "text is only allowed for 'inherits', 'description' and HH:MM keys ending in _start/_end", field=where
        )
    raise InputError(src, f"unsupported value type {type(value).__name__}", field=where)


def _parse_rules(src: str, doc: dict[str, Any]) -> Rules:
    unknown = sorted(set(doc) - {"profiles", "version", "description"})
    if unknown:
        raise InputError(src, f"unknown top-level key(s) {unknown}; expected [profiles.<name>] tables")
    raw_profiles = doc.get("profiles")
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise InputError(src, "no [profiles.<name>] tables")
    own: dict[str, dict[str, Any]] = {}
    for pname, body in raw_profiles.items():
        if not isinstance(body, dict):
            raise InputError(src, "a profile must be a table", field=f"profiles.{pname}")
        own[pname] = {k: _check_rule_value(src, pname, k, v) for k, v in body.items()}
    for pname in _REQUIRED_PROFILES:
        if pname not in own:
            raise InputError(src, f"missing required profile [profiles.{pname}]")

    resolved: dict[str, dict[str, Any]] = {}
    origin: dict[str, dict[str, str]] = {}

    def resolve(pname: str, chain: tuple[str, ...]) -> None:
        if pname in resolved:
            return
        parent = own[pname].get("inherits")
        values: dict[str, Any] = {}
        where: dict[str, str] = {}
        if parent is not None:
            if parent not in own:
                raise InputError(src, f"inherits unknown profile {parent!r}", field=f"profiles.{pname}.inherits")
            if parent in chain + (pname,):
                cycle = " -> ".join(chain + (pname, parent))
                raise InputError(src, f"inheritance cycle {cycle}", field=f"profiles.{pname}.inherits")
            resolve(parent, chain + (pname,))
            values = {k: v for k, v in resolved[parent].items() if k != "description"}
            where = {k: origin[parent][k] for k in values}
        for k, v in own[pname].items():
            if k != "inherits":
                values[k], where[k] = v, pname
        resolved[pname], origin[pname] = values, where

    for pname in own:
        resolve(pname, ())
    return Rules(
        source_name=src,
        profiles=MappingProxyType({p: MappingProxyType(v) for p, v in resolved.items()}),
        origin=MappingProxyType({p: MappingProxyType(v) for p, v in origin.items()}),
    )


def load_rules(path: str | Path) -> Rules:
    """Load and validate a TOML file of rule profiles.

    Parameters
    ----------
    path : str or pathlib.Path
        TOML with one ``[profiles.<name>]`` table per profile; ``ordinary`` and
        ``strict`` are required. A profile may name a parent with
        ``inherits = "<profile>"`` and override any of its values.

    Returns
    -------
    Rules
        The resolved profiles and where each value came from.

    Raises
    ------
    geomon.errors.InputError
        Naming the file and the key, if the file is not TOML or a value breaks
        a rule below.

    Notes
    -----
    Value rules: a number must be finite and non-negative and its key must end
    in a unit suffix (:data:`UNIT_SUFFIXES`) or be in :data:`UNITLESS_KEYS`;
    counts (``_count``, ``confirm_fixes``) are integers. Keys ending in
    ``_start``/``_end`` hold a local time of day ``"HH:MM"`` (a TOML local
    time is also accepted). Text is allowed only for ``inherits`` and
    ``description``; booleans for flags without a unit suffix.

    Inheritance only copies values: nothing checks that a special-period
    profile is stricter than its parent. Use :meth:`Rules.describe` to see the
    resolved thresholds and the profile each comes from.
    """
    path = Path(path)
    src = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(src, "no such file") from None
    except UnicodeDecodeError:
        raise InputError(src, "not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(src, f"not valid TOML: {exc}") from None
    return _parse_rules(src, doc)


def default_rules() -> Rules:
    """Load the rule profiles shipped with geomon (``geomon/rules_default.toml``)."""
    with resources.as_file(resources.files("geomon").joinpath("rules_default.toml")) as path:
        return load_rules(path)
