"""Load fixes and subjects from CSV, Parquet or Arrow tables, with a quarantine.

Validation is vectorised with ``pyarrow.compute`` and numpy; only refused rows
are touched one by one (to write their JSON). Column parsing here fixes the
timestamp, number and text conventions described in :mod:`geomon.io.load`
(ISO-8601 or epoch-ms timestamps, trimmed text); public names are re-exported
from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.errors import InputError
from geomon.io.accuracy import check_accuracy, sigma_from_accuracy
from geomon.io.common import (
    FixLoad,
    SubjectLoad,
    _check_datum,
    _duplicates,
    _lonlat_to_wgs84,
    _malformed_extras,
    _plain,
    _quarantine_table,
    _read_tabular,
    _Reasons,
    _require_columns,
    _row_numbers,
    _rows_json,
    _TableLoad,
)
from geomon.io.ordering import _filled, rows_sharing_key, stable_order, take_rows, text_rank
from geomon.schema import FIX_REQUIRED, FIX_SCHEMA, LEVELS, SOURCES, SUBJECT_REQUIRED, SUBJECT_SCHEMA, TS_TYPE

__all__ = ["load_fixes", "load_subjects"]


# --------------------------------------------------------------------------- column parsing


_FLOAT_TEXT = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$"
_EPOCH_TEXT = r"^[+-]?\d{1,18}$"
_ZONE_TEXT = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_ISO_TEXT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}[0-9:.]*(Z|[+-]\d{2}(:?\d{2})?)$"
_TS_NS = pa.timestamp("ns", tz="UTC")
#: Accepted ``ts`` range in epoch ms: that of int64 nanoseconds (1677-09-21 to 2262-04-11), the
#: range ISO text is parsed in, so every accepted time also fits a Python datetime.
TS_MIN_MS, TS_MAX_MS = -(2**63 // 10**6), 2**63 // 10**6
_UNIT_PER_MS = {"s": None, "ms": 1, "us": 10**3, "ns": 10**6}


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


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


#: Supervision levels as people write them (any case is folded first), to the level the rules know.
LEVEL_NAMES = {"严管": "strict", "普管": "ordinary"}


def _level_names(level: pa.Array) -> pa.Array:
    """Levels in lower case, the Chinese names (:data:`LEVEL_NAMES`) mapped to the rules' own."""
    level = pc.utf8_lower(level)
    for name, meaning in LEVEL_NAMES.items():
        level = pc.if_else(pc.equal(level, name), pa.scalar(meaning), level)
    return level


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
        # Unsafe for integers: beyond 2**53 they round (and are out of any range) instead of failing the cast.
        values = pc.cast(arr, pa.float64(), safe=not pa.types.is_integer(t))
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


def _ts_column(table: pa.Table, name: str, src: str) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Read a column as UTC ms timestamps.

    Returns values (null where unusable), missing, unparseable and out-of-range
    (outside ``[TS_MIN_MS, TS_MAX_MS]``) masks.
    """
    arr = _plain(table.column(name))
    t = arr.type
    if _is_text(t):
        text, missing = _trimmed_text(arr)
        values = _parse_ts_text(text)
        bad = ~missing & ~_np_bool(pc.is_valid(values))
    elif pa.types.is_timestamp(t):
        # Range-check in the column's own unit: casting seconds to ms with
        # safe=False would silently wrap values beyond int64 ms.
        per_ms = _UNIT_PER_MS[t.unit]
        if per_ms is None:
            lo, hi = TS_MIN_MS // 1000 + 1, TS_MAX_MS // 1000
        else:
            lo, hi = TS_MIN_MS * per_ms, TS_MAX_MS * per_ms
        native = pc.cast(arr, pa.int64())
        out = _np_bool(pc.or_(pc.less(native, lo), pc.greater(native, hi)))
        kept = pc.if_else(pa.array(out), pa.scalar(None, t), arr)
        values = pc.cast(kept, TS_TYPE, safe=False)
        return values, ~_np_bool(pc.is_valid(arr)), np.zeros(len(arr), dtype=bool), out
    elif pa.types.is_integer(t) or pa.types.is_null(t):
        ms = _cast_or_null(arr, pa.int64())  # uint64 beyond int64: unparseable, not fatal
        values = pc.cast(ms, TS_TYPE)
        missing = ~_np_bool(pc.is_valid(arr))
        bad = ~_np_bool(pc.is_valid(ms)) & ~missing
    else:
        raise InputError(
            src,
            f"column type {t} cannot be read as a timestamp (use timestamp, epoch-ms integer or ISO-8601 text)",
            field=name,
        )
    ms_values = pc.cast(values, pa.int64())
    out = _np_bool(pc.or_(pc.less(ms_values, TS_MIN_MS), pc.greater(ms_values, TS_MAX_MS)))
    return pc.if_else(pa.array(out), pa.scalar(None, TS_TYPE), values), missing, bad, out


# --------------------------------------------------------------------------- results


def _table_result(
    result_type: type[_TableLoad],
    src: str,
    raw: pa.Table,
    accepted: pa.Table,
    reasons: _Reasons,
    row_numbers: np.ndarray,
    malformed: list[tuple[int | None, str]],
    malformed_rows: np.ndarray,
    **fields: Any,
) -> _TableLoad:
    """Build the quarantine of a tabular load and wrap it with ``accepted`` in ``result_type``.

    Malformed CSV records count as read rows, so ``n_read`` includes them.
    """
    quarantine = _quarantine_table(
        src,
        _rows_json(raw, np.flatnonzero(~reasons.ok)),
        reasons,
        row_numbers,
        _malformed_extras(malformed, malformed_rows),
    )
    return result_type(
        quarantine=quarantine,
        n_read=raw.num_rows + len(malformed),
        n_accepted=accepted.num_rows,
        n_quarantined=quarantine.num_rows,
        source_name=src,
        table=accepted,
        **fields,
    )


# --------------------------------------------------------------------------- fixes


def load_fixes(source: str | Path | pa.Table, *, datum: str = "wgs84", name: str | None = None,
               accuracy: str = "sigma", uere_m: float | None = None, order: str = "subject") -> FixLoad:
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
    accuracy : {"sigma", "r68", "cep", "r50", "r95", "hdop"}
        What the input's ``accuracy_m`` reports (:data:`geomon.io.accuracy.ACCURACY_KINDS`):
        per-axis 1-sigma (the default), the radius of 68 % confidence (Android,
        iOS, Traccar, OsmAnd), of 50 % (CEP) or 95 %, or HDOP. Accepted values
        are converted once, here, to the per-axis sigma in metres that
        ``accuracy_m`` holds downstream (:func:`geomon.io.accuracy.sigma_from_accuracy`).
    uere_m : float, optional
        With ``accuracy="hdop"``: the user-equivalent range error in metres
        (default :data:`geomon.io.accuracy.DEFAULT_UERE_M`).
    order : {"subject", "time"}
        Order of the accepted fixes: stably by ``(subject_id, ts)`` (a track after another), or by
        ``(ts, subject_id)`` (as a feed delivers them; what a replay feeds the engine).

    Returns
    -------
    FixLoad
        Accepted fixes sorted stably in ``order``, and the quarantine.

    Raises
    ------
    geomon.errors.InputError
        If the input is not a readable file of its kind, lacks a required
        column, or has a column whose type cannot be read as required.
        Also (before anything is read) if ``datum`` or ``accuracy`` is unknown
        or ``uere_m`` is not usable; it is a ``ValueError``.

    Notes
    -----
    Reason codes, in the order they are tested (the first found is recorded):
    ``csv_malformed_row``, ``subject_missing``, ``ts_missing``,
    ``ts_unparseable``, ``ts_out_of_range`` (outside 1677-09-21 to 2262-04-11,
    the range of int64 nanoseconds), ``lon_missing``, ``lon_unparseable``,
    ``lon_not_finite``, ``lon_out_of_range`` (outside [-180, 180]), the same
    four for ``lat`` ([-90, 90]), ``source_missing``, ``source_unknown``,
    ``accuracy_unparseable``, ``accuracy_not_finite``, ``accuracy_negative``,
    ``duplicate`` (equal in every column to an earlier accepted row) and
    ``datum_failed`` (conversion to WGS84 gave a non-finite value). A null
    ``accuracy_m`` is accepted and stays null. The accuracy checks judge the
    value as reported, before its conversion to sigma.

    Examples
    --------
    >>> import pyarrow as pa
    >>> phone = pa.table({"subject_id": ["s1"], "ts": pa.array([0], pa.int64()), "lon": [116.4],
    ...                   "lat": [39.9], "source": ["gnss"], "accuracy_m": [3.8]})
    >>> round(load_fixes(phone, accuracy="r68").table.column("accuracy_m")[0].as_py(), 3)   # 3.8 / 1.5096
    2.517
    """
    _check_datum(datum)
    accuracy, uere_m = check_accuracy(accuracy, uere_m)
    if order not in ("subject", "time"):
        raise ValueError(f"order must be 'subject' or 'time', got {order!r}")
    raw, src, malformed = _read_tabular(source, name, FIX_SCHEMA.names)
    _require_columns(raw, FIX_REQUIRED, src)
    n = raw.num_rows
    row_numbers, malformed_rows = _row_numbers(n, malformed)

    subject, subject_missing = _text_column(raw, "subject_id", src)
    ts, ts_missing, ts_bad, ts_out = _ts_column(raw, "ts", src)
    lon, lon_missing, lon_bad = _float_column(raw, "lon", src)
    lat, lat_missing, lat_bad = _float_column(raw, "lat", src)
    fix_source, source_missing = _text_column(raw, "source", src)
    if "accuracy_m" in raw.column_names:
        acc, _, acc_bad = _float_column(raw, "accuracy_m", src)
    else:
        acc, acc_bad = pa.nulls(n, pa.float64()), np.zeros(n, dtype=bool)
    acc32 = pc.cast(acc, pa.float32())  # finite doubles beyond float32 range become inf
    acc32_np = _filled(acc32, 0.0)
    # Sign from the double: tiny negatives round to -0.0 in float32 but are still negative.
    acc64_np = _filled(acc, 0.0)
    lon_np = _filled(lon, 0.0)
    lat_np = _filled(lat, 0.0)

    reasons = _Reasons(n)
    reasons.add("subject_id", "subject_missing", subject_missing)
    reasons.add("ts", "ts_missing", ts_missing)
    reasons.add("ts", "ts_unparseable", ts_bad)
    reasons.add("ts", "ts_out_of_range", ts_out)
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
    rank = text_rank(subject)
    t_all = _filled(pc.cast(ts, pa.int64()), 0)
    keys = (rank[valid], t_all[valid]) if order == "subject" else (t_all[valid], rank[valid])
    kept = valid[stable_order(*keys)]   # input order breaks ties; equal (subject, ts) lie together either way
    duplicate = np.zeros(n, dtype=bool)
    duplicate[_duplicates(parsed, rows_sharing_key(rank, t_all, kept))] = True
    reasons.add(None, "duplicate", duplicate)
    kept = kept[~duplicate[kept]]

    wgs_lon, wgs_lat = _lonlat_to_wgs84(lon_np[kept], lat_np[kept], datum)
    failed = ~(np.isfinite(wgs_lon) & np.isfinite(wgs_lat))
    if failed.any():
        mask = np.zeros(n, dtype=bool)
        mask[kept[failed]] = True
        reasons.add("lon", "datum_failed", mask)
        wgs_lon, wgs_lat, kept = wgs_lon[~failed], wgs_lat[~failed], kept[~failed]

    accepted = take_rows(parsed, kept)
    accepted = accepted.set_column(2, "lon", pa.array(wgs_lon, pa.float64()))
    accepted = accepted.set_column(3, "lat", pa.array(wgs_lat, pa.float64()))
    accepted = accepted.cast(pa.schema(list(FIX_SCHEMA) + [accepted.schema.field(c) for c in extras]))
    if accuracy != "sigma":
        accepted = accepted.set_column(5, "accuracy_m", _sigma_column(acc, kept, accuracy, uere_m))
    return _table_result(FixLoad, src, raw, accepted, reasons, row_numbers, malformed, malformed_rows, datum=datum,
                         input_row=row_numbers[kept])


def _sigma_column(acc: pa.Array, kept: np.ndarray, accuracy: str, uere_m: float | None) -> pa.Array:
    """The accepted rows' reported accuracy (float64, nulls kept) as per-axis sigma in float32."""
    reported = acc.take(pa.array(kept, pa.int64()))
    sigma = sigma_from_accuracy(pc.fill_null(reported, np.nan).to_numpy(zero_copy_only=False), accuracy,
                                uere_m=uere_m)
    # A huge accepted HDOP times the UERE may pass float32's range: keep it finite, as validation promised.
    sigma = np.minimum(sigma, np.finfo(np.float32).max)
    return pa.array(sigma.astype(np.float32), pa.float32(), mask=~_np_bool(pc.is_valid(reported)))


# --------------------------------------------------------------------------- subjects


def load_subjects(source: str | Path | pa.Table, *, name: str | None = None) -> SubjectLoad:
    """Load supervised subjects, quarantining the rows that fail validation.

    Parameters
    ----------
    source : str, pathlib.Path or pyarrow.Table
        A CSV (``.csv``, ``.csv.gz``) or Parquet file, or an Arrow table, with
        the columns of :data:`geomon.schema.SUBJECT_SCHEMA` (``home_zone_id``
        and ``work_zone_id`` optional). Extra columns (flags, ...) are kept.
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
    Levels are read in any case (``Strict``, ``ORDINARY``) and in Chinese (严管 strict, 普管 ordinary) and
    stored as ``strict`` or ``ordinary``.

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
    level = _level_names(level)
    office, office_missing = _text_column(raw, "office_id", src)
    home, work = (_text_column(raw, c, src)[0] if c in raw.column_names else pa.nulls(n, pa.string())
                  for c in ("home_zone_id", "work_zone_id"))

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
        [subject, level, office, home, work] + [raw.column(c) for c in extras], names=SUBJECT_SCHEMA.names + extras
    ).take(kept)
    accepted = accepted.cast(pa.schema(list(SUBJECT_SCHEMA) + [accepted.schema.field(c) for c in extras]))
    return _table_result(SubjectLoad, src, raw, accepted, reasons, row_numbers, malformed, malformed_rows)
