"""Replaying a Parquet file too large to hold: row groups read one at a time, fed in event-time order.

:class:`ParquetFeed` reads a Parquet file (or a directory of them, in name
order) row group by row group, validates each with
:func:`geomon.io.load.load_fixes` (quarantined rows keep their row number in the
whole input), and hands the accepted fixes to the Monitor in event-time order,
``batch_rows`` at a time, with memory bounded by a few row groups.

**Order.** A replay feeds fixes in event-time order. The feed holds back every
accepted fix at or after the *low watermark*, the smallest ``ts`` any row group
not yet read may hold (from the Parquet statistics), and releases the rest,
sorted. A file written in time order (as a feed records it), or nearly so,
therefore replays exactly as if read whole. For a file in another order (by
subject, say) the statistics show that more than ``hold_rows`` fixes would
have to be held; the feed then first sorts it by time into a temporary
Parquet file with DuckDB, whose sort spills to disk within a memory limit,
keeping each row's number in the input for the quarantine. Should the order
still be out (no statistics, or ``sort=False``), the feed releases the oldest
fixes beyond ``hold_rows`` anyway: a fix older than one its subject already had
is then quarantined as ``late_fix`` by the Monitor, counted, never dropped.

**Duplicates.** A fix equal in every column to an earlier accepted one is
quarantined as ``duplicate``, as by the loader, also when the two come in
different row groups: the earlier one is still held then (same ``ts``, at or
after the low watermark).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geomon.errors import InputError
from geomon.io.accuracy import check_accuracy
from geomon.io.common import FixLoad, _duplicates
from geomon.io.load import load_fixes
from geomon.io.ordering import rows_sharing_key, stable_order, take_rows, text_rank
from geomon.schema import QUARANTINE_SCHEMA

__all__ = ["ParquetFeed", "file_offsets", "ordered_batches", "parquet_files", "parquet_rows", "renumbered"]

_NO_LIMIT = np.iinfo(np.int64).max


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of an input: the file itself, or a directory's ``*.parquet`` (recursively) in name order."""
    return _files(Path(path))


def file_offsets(files: list[Path]) -> list[int]:
    """Row number, in the whole input, of each file's first row (files in the order given)."""
    out, first = [], 0
    for f in files:
        out.append(first)
        first += pq.ParquetFile(f).metadata.num_rows
    return out


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(str(path), "no .parquet files in the directory")
        return files
    return [path]


def parquet_rows(path: str | Path) -> int | None:
    """Rows of a Parquet file or directory from its metadata, or None when it is not one (or not readable)."""
    p = Path(path)
    if not (p.is_dir() or p.suffix.lower() == ".parquet") or not p.exists():
        return None
    try:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in _files(p))
    except (pa.ArrowException, OSError, InputError):
        return None


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ts_stat_ms(meta, group: int, which: str) -> int | None:
    """Smallest or largest ``ts`` of a row group from its statistics (ms), or None when unknown."""
    rg = meta.row_group(group)
    for j in range(rg.num_columns):
        col = rg.column(j)
        if col.path_in_schema != "ts":
            continue
        stats = col.statistics
        if stats is None or not stats.has_min_max:
            return None
        value = stats.min if which == "min" else stats.max
        if hasattr(value, "timestamp"):
            ms = value.timestamp() * 1000
            return int(np.floor(ms) if which == "min" else np.ceil(ms))
        return None   # text or numbers: the loader decides what they mean
    return None


class ParquetFeed:
    """Accepted fixes of a large Parquet input in event-time order, a row group at a time (see the module notes).

    Parameters
    ----------
    path : path
        A ``.parquet`` file or a directory of them.
    datum : str
        Datum of the coordinates, as :func:`geomon.io.load.load_fixes` takes it.
    accuracy, uere_m
        What ``accuracy_m`` reports, as :func:`geomon.io.load.load_fixes` takes
        it: each row group is converted to per-axis sigma as it is read.
    batch_rows : int
        Fixes per batch handed out.
    hold_rows : int
        Most accepted fixes held back for order (beyond it the oldest go out anyway).
    sort : bool
        Sort an input out of time order first (with DuckDB, on disk).
    memory_limit : str
        DuckDB's memory limit for that sort.

    Attributes
    ----------
    n_read, n_quarantined : int
        Rows read and refused by validation so far.
    n_released_early : int
        Fixes released before the low watermark passed them (the input was not in time order).
    """

    def __init__(self, path, *, datum: str = "wgs84", batch_rows: int = 250_000, hold_rows: int = 4_000_000,
                 sort: bool = True, memory_limit: str = "768MB", accuracy: str = "sigma",
                 uere_m: float | None = None):
        self.path = Path(path)
        self.files = _files(self.path)
        self.datum = datum
        self.accuracy, self.uere_m = check_accuracy(accuracy, uere_m)
        self.batch_rows = int(batch_rows)
        self.hold_rows = int(hold_rows)
        self.n_read = 0
        self.n_quarantined = 0
        self.n_released_early = 0
        self._quarantine: list[pa.Table] = []
        self.source_name = str(self.path)
        self._groups, self.total_rows = self._row_groups(self.files)
        self._tmp = None
        #: Whether the input was sorted by time first (it was out of order).
        self.sorted_first = bool(sort) and not self._in_order()
        if self.sorted_first:
            self._sort(memory_limit)

    @staticmethod
    def _row_groups(files):
        groups, total = [], 0   # (file, group index, first row in the whole input, low and high ts ms or None)
        for f in files:
            try:
                meta = pq.ParquetFile(f).metadata
            except (pa.ArrowException, OSError) as exc:
                raise InputError(str(f), f"not a readable Parquet file: {str(exc).splitlines()[0]}") from None
            for g in range(meta.num_row_groups):
                groups.append((f, g, total, _ts_stat_ms(meta, g, "min"), _ts_stat_ms(meta, g, "max"),
                               meta.row_group(g).num_rows))
                total += meta.row_group(g).num_rows
        return groups, total

    def _in_order(self) -> bool:
        """Whether holding ``hold_rows`` fixes is enough to feed the input in time order (from the statistics)."""
        if not self._groups or any(g[3] is None or g[4] is None for g in self._groups):
            return True                      # nothing to go by (or text times): read as it is
        lows, highs = self._lows(), np.array([g[4] for g in self._groups], np.int64)
        rows = np.array([g[5] for g in self._groups], np.int64)
        for i in range(len(self._groups)):   # rows of groups read so far that may reach past the low watermark
            if rows[:i + 1][highs[:i + 1] >= lows[i]].sum() > self.hold_rows:
                return False
        return True

    def _sort(self, memory_limit: str) -> None:
        """Sort the input by (ts, subject_id, input row) into a temporary file, each row's input number in ``_row``."""
        import tempfile

        import duckdb

        self._tmp = tempfile.TemporaryDirectory(prefix="geomon-sort-")
        out = Path(self._tmp.name) / "sorted.parquet"
        offsets = list(zip(map(str, self.files), file_offsets(self.files)))
        row = " ".join(f"WHEN {_sql(name)} THEN {start}" for name, start in offsets)
        files = "[" + ", ".join(_sql(name) for name, _ in offsets) + "]"
        con = duckdb.connect()
        try:
            con.execute(f"SET memory_limit = {_sql(memory_limit)}")
            con.execute(f"SET temp_directory = {_sql(str(Path(self._tmp.name) / 'spill'))}")
            con.execute(f"""COPY (SELECT * EXCLUDE (file_row_number, filename),
                                         file_row_number + CASE filename {row} END AS _row
                                  FROM read_parquet({files}, file_row_number = true, filename = true)
                                  ORDER BY ts, subject_id, _row)
                            TO {_sql(str(out))} (FORMAT parquet, ROW_GROUP_SIZE 500000)""")
        except duckdb.Error as exc:
            raise InputError(self.source_name, f"could not sort it by time: {str(exc).splitlines()[0]}") from None
        finally:
            con.close()
        self._groups, _ = self._row_groups([out])

    @property
    def quarantine(self) -> pa.Table:
        """Rows refused by validation so far (row numbers in the whole input, files in name order)."""
        return pa.concat_tables(self._quarantine) if self._quarantine else QUARANTINE_SCHEMA.empty_table()

    def _lows(self) -> np.ndarray:
        """For each row group, the smallest ts any later group may hold (ms; unknown counts as no bound)."""
        if any(g[3] is None for g in self._groups):
            return np.full(len(self._groups), _NO_LIMIT, np.int64)   # without statistics nothing is held
        lows = np.array([g[3] for g in self._groups] + [_NO_LIMIT], np.int64)
        return np.minimum.accumulate(lows[::-1])[::-1][1:]

    def __iter__(self):
        lows = self._lows()
        held = None            # accepted fixes waiting for the low watermark, with their input rows
        held_rows = np.zeros(0, np.int64)
        for (f, g, first_row, *_), low in zip(self._groups, lows):
            try:
                raw = pq.ParquetFile(f).read_row_group(g)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(str(f), f"row group {g} is not readable: {str(exc).splitlines()[0]}") from None
            if "_row" in raw.column_names:     # sorted first: each row's number in the input
                number = raw.column("_row").to_numpy(zero_copy_only=False)
                raw = raw.drop_columns(["_row"])
            else:
                number = np.arange(first_row, first_row + raw.num_rows, dtype=np.int64)
            load = load_fixes(raw, datum=self.datum, name=self.source_name, accuracy=self.accuracy,
                              uere_m=self.uere_m, order="time")
            self.n_read += load.n_read
            rows = number[load.input_row if load.input_row is not None else np.arange(load.table.num_rows)]
            quarantine = renumbered(load.quarantine, number)
            table = load.table
            if held is not None and held.num_rows and table.num_rows:
                table, rows, again = self._drop_held_duplicates(held, table, rows)
                if again.num_rows:
                    quarantine = pa.concat_tables([quarantine, again])
            if quarantine.num_rows:
                self._quarantine.append(quarantine.cast(QUARANTINE_SCHEMA))
                self.n_quarantined += quarantine.num_rows
            if held is not None and held.num_rows:
                table = pa.concat_tables([held, table])
                rows = np.concatenate([held_rows, rows])
            t = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
            wait = t >= low
            if np.count_nonzero(wait) > self.hold_rows:
                # Not in time order: let the oldest go rather than hold the file.
                cut = np.sort(t[wait])[np.count_nonzero(wait) - self.hold_rows]
                self.n_released_early += int(np.count_nonzero(wait & (t < cut)))
                wait &= t >= cut
            out = np.flatnonzero(~wait)
            held, held_rows = take_rows(table, np.flatnonzero(wait)), rows[wait]
            yield from self._batches(take_rows(table, out), rows[out])
        if held is not None and held.num_rows:
            yield from self._batches(held, held_rows)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _drop_held_duplicates(self, held: pa.Table, table: pa.Table, rows: np.ndarray):
        """New fixes equal in every column to a held one: quarantined as ``duplicate``, as the loader does."""
        both = pa.concat_tables([held.select(table.column_names), table])
        rank = text_rank(both.column("subject_id"))
        t = both.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        dup = _duplicates(both, rows_sharing_key(rank, t, stable_order(rank, t))) - held.num_rows
        dup = dup[dup >= 0]
        if dup.size == 0:
            return table, rows, QUARANTINE_SCHEMA.empty_table()
        from geomon.io.common import _rows_json

        again = pa.table({"source_name": pa.array([self.source_name] * dup.size, pa.string()),
                          "row": pa.array(rows[dup], pa.int64()), "field": pa.nulls(dup.size, pa.string()),
                          "reason": pa.array(["duplicate"] * dup.size, pa.string()),
                          "raw": pa.array(_rows_json(table, dup), pa.string())}, schema=QUARANTINE_SCHEMA)
        keep = np.setdiff1d(np.arange(table.num_rows), dup)
        return table.take(pa.array(keep)), rows[keep], again

    def _batches(self, table: pa.Table, rows: np.ndarray):
        yield from ordered_batches(table, rows, self.batch_rows, source_name=self.source_name, datum=self.datum)


def renumbered(quarantine: pa.Table, number: np.ndarray) -> pa.Table:
    """Quarantine rows of a piece of the input, numbered in the whole input (``number``: each piece row's number;
    a file-level row, -1, stays)."""
    if quarantine.num_rows == 0:
        return quarantine
    local = quarantine.column("row").to_numpy(zero_copy_only=False)
    mapped = pa.array(np.where(local >= 0, number[np.maximum(local, 0)], local), pa.int64())
    return quarantine.set_column(quarantine.schema.get_field_index("row"), "row", mapped)


def ordered_batches(table: pa.Table, rows: np.ndarray, batch_rows: int, *, source_name: str, datum: str):
    """Accepted fixes (with their input row numbers) in event-time order, ``batch_rows`` at a time, as a feed
    delivers them: sorted by (ts, subject_id), ties in input order."""
    if table.num_rows == 0:
        return
    t = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = stable_order(t, text_rank(table.column("subject_id")))   # ties keep input order
    for start in range(0, order.size, batch_rows):
        idx = order[start:start + batch_rows]
        part = take_rows(table, idx)
        yield FixLoad(table=part, quarantine=QUARANTINE_SCHEMA.empty_table(), n_read=part.num_rows,
                      n_accepted=part.num_rows, n_quarantined=0, source_name=source_name, datum=datum,
                      input_row=rows[idx])
