"""Shared pieces of the loaders: file reading and the quarantine (the result types are in :mod:`geomon.io.loads`).

Used by :mod:`geomon.io.tables` (fixes, subjects) and :mod:`geomon.io.zones`;
the public entry point is :mod:`geomon.io.load`, whose docstring states the
conventions every loader follows. Readers turn a path or an Arrow table into a
table plus the CSV records that could not be split into fields; a
:class:`_Reasons` collects the first reason each row is refused, and
:func:`_quarantine_table` turns it into a table in
:data:`geomon.schema.QUARANTINE_SCHEMA`.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geomon.errors import InputError
from geomon.io.loads import FixLoad, SubjectLoad, ZoneLoad, _Load, _TableLoad  # noqa: F401  (re-exported)
from geomon.schema import QUARANTINE_SCHEMA

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 1 << 16
_CSV_BLOCK_BYTES = 1 << 20  # pyarrow's default block size: the longest record it can read
#: Deepest nesting of lists and objects written into a quarantine ``raw`` (deeper parts become "...").
MAX_RAW_DEPTH = 64


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
    line = re.split(rb"\r\n|\n|\r", head, maxsplit=1)[0]  # pyarrow also ends a line at a lone CR
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(str(path), "CSV header is not UTF-8 text") from None
    try:
        names = next(csv.reader([text]))
    except csv.Error as exc:
        raise InputError(str(path), f"CSV header cannot be read: {_first_line(exc)}") from None
    return [n.strip() for n in names]


def _csv_input(path: Path) -> Path | pa.BufferReader:
    """The file, or its text plus a line end when the whole file is a header without one.

    pyarrow cannot infer the columns of a header with no line end; with one it
    reads a header-only file as zero rows, which is what the file means.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES + 1)
    if len(head) <= _SNIFF_BYTES and not re.search(rb"[\r\n]", head.rstrip(b" \t")):
        return pa.BufferReader(head + b"\n")
    return path


def _csv_problem(exc: BaseException) -> str:
    text = _first_line(exc)
    if "straddl" in text:  # pyarrow's wording for a record longer than a block
        return f"a record is longer than {_CSV_BLOCK_BYTES} bytes (or a quote is never closed)"
    return text


def _read_csv(path: Path, text_columns: tuple[str, ...]) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    names = _csv_header(path)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in text_columns if c in names},
        null_values=[""],
        strings_can_be_null=True,
    )
    source = _csv_input(path)
    if not isinstance(source, Path):
        try:
            return pacsv.read_csv(source, convert_options=convert), []
        except pa.ArrowException as exc:
            raise InputError(str(path), f"not a readable CSV file: {_csv_problem(exc)}") from None
    try:
        return pacsv.read_csv(path, convert_options=convert), []
    except pa.ArrowInvalid as exc:
        if "Expected" not in str(exc) or "columns" not in str(exc):
            raise InputError(str(path), f"not a readable CSV file: {_csv_problem(exc)}") from None
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
        raise InputError(str(path), f"not a readable CSV file: {_csv_problem(exc)}") from None
    return table, malformed


def _read_parquet(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
        table.schema.names  # decoded on access: a damaged file can hold names that are not UTF-8
        return table
    except (pa.ArrowException, OSError) as exc:
        raise InputError(str(path), f"not a readable Parquet file: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not a readable Parquet file: a column name is not UTF-8") from None


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
    try:
        table.schema.names  # decoded on access; the header check only saw the first line
    except UnicodeDecodeError:
        raise InputError(src, "column names are not UTF-8 text") from None
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


def _plain(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


# --------------------------------------------------------------------------- quarantine


class _Reject(Exception):
    """A zone feature refused, with its field and reason code."""

    def __init__(self, field_name: str | None, reason: str):
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


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


def _json_value(v: Any, depth: int = 0) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 10_000:
        return f"<integer of {v.bit_length()} bits>"  # str() refuses more than 4300 digits
    if isinstance(v, (dict, list, tuple)) and depth >= MAX_RAW_DEPTH:
        return "..."  # hostile nesting: json.dumps would hit the recursion limit
    if isinstance(v, dict):
        return {k if isinstance(k, str) else str(k): _json_value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x, depth + 1) for x in v]
    return v


def _to_json(v: Any) -> str:
    try:  # fast path (C encoder): plain JSON values, finite floats, not too deep
        return json.dumps(v, default=str, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(_json_value(v), default=str, ensure_ascii=False)


class _Unrepresentable:
    """A value Python cannot hold, such as a time beyond year 9999: text in ``raw``, never a valid property."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _pylist(arr: pa.Array | pa.ChunkedArray) -> list:
    """Python values of ``arr``, with :class:`_Unrepresentable` for those Python cannot hold."""
    try:
        return arr.to_pylist()
    except (pa.ArrowException, OverflowError, ValueError):
        pass
    out = []
    for scalar in arr:
        try:
            out.append(scalar.as_py())
        except (pa.ArrowException, OverflowError, ValueError):
            try:
                out.append(_Unrepresentable(f"<{scalar.type} {pc.cast(scalar, pa.int64()).as_py()}>"))
            except (pa.ArrowException, TypeError, ValueError):
                out.append(_Unrepresentable(f"<unreadable {scalar.type}>"))
    return out


def _table_pylist(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, but values Python cannot hold do not fail it (see :func:`_pylist`)."""
    columns = [_pylist(table.column(i)) for i in range(table.num_columns)]
    return [dict(zip(table.column_names, values)) for values in zip(*columns)] if columns else []


def _rows_json(raw: pa.Table, rows: np.ndarray) -> list[str]:
    return [_to_json(r) for r in _table_pylist(raw.take(pa.array(rows, pa.int64())))]


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


def _malformed_extras(
    malformed: list[tuple[int | None, str]], rows: np.ndarray
) -> list[tuple[int, str | None, str, str]]:
    return [
        (int(r), None, "csv_malformed_row", json.dumps(text, ensure_ascii=False))
        for r, (_, text) in zip(rows, malformed)
    ]


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
            col = pa.array([None if v is None else _to_json(v) for v in _pylist(col)], pa.string())
        keys[f"k{len(keys)}"] = col.take(pa.array(candidates, pa.int64()))
    keys["row"] = pa.array(candidates, pa.int64())
    grouped = pa.table(keys).group_by([k for k in keys if k != "row"]).aggregate([("row", "min")])
    first = grouped.column("row_min").to_numpy()
    return np.setdiff1d(candidates, first, assume_unique=True)


def _check_datum(datum: str) -> None:
    """Fail before reading anything if ``to_wgs84`` does not know ``datum``."""
    if datum == "wgs84":
        return
    from geomon.geo.datum import to_wgs84

    to_wgs84(np.zeros(0), np.zeros(0), datum)  # raises ValueError for an unknown datum


def _lonlat_to_wgs84(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "wgs84" or len(lon) == 0:
        return lon, lat
    from geomon.geo.datum import to_wgs84

    out_lon, out_lat = to_wgs84(lon, lat, datum)
    return np.asarray(out_lon, dtype=np.float64), np.asarray(out_lat, dtype=np.float64)


def fix_table(fixes, required) -> pa.Table:
    """The Arrow table of ``fixes`` (a FixLoad or a pyarrow.Table), checked for the columns a function needs.

    Raises :class:`geomon.errors.InputError` for another type, missing
    columns, a ``ts`` that is not a timestamp, or nulls in ``subject_id`` or ``ts``.
    """
    table = fixes.table if isinstance(fixes, FixLoad) else fixes
    if not isinstance(table, pa.Table):
        raise InputError("fixes", f"expected a FixLoad or a pyarrow.Table, got {type(fixes).__name__}")
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise InputError("fixes", f"missing column(s) {', '.join(missing)}")
    if not pa.types.is_timestamp(table.schema.field("ts").type):
        raise InputError("fixes", f"ts must be a timestamp column, not {table.schema.field('ts').type}", field="ts")
    for name in ("subject_id", "ts"):
        if table.column(name).null_count:
            raise InputError("fixes", f"{name} has nulls", field=name)
    return table
