"""Ordering and lookup on Arrow columns without string sorts: int64 keys, stable orders, codes by dictionary.

The loader orders fixes by subject and time, the Parquet feed finds the rows that share a key across
batches, and the Monitor looks subject ids up in its roster. Text is ranked once through a dictionary
(:func:`text_rank`) and everything after that works on int64 keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["codes_in", "rows_sharing_key", "stable_order", "take_rows", "text_rank"]


def stable_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Indices sorting rows by ``(major, minor)`` (integers), ties in row order: ``np.lexsort((minor, major))``.

    When both ranges fit one int64 key the sort is a stable argsort of it, which finds the runs of input already
    in order (a feed's fixes in time order: some fifty times faster than ``lexsort`` on a million rows).
    """
    if major.size < 2:
        return np.arange(major.size)
    lo_a, lo_b = int(major.min()), int(minor.min())
    span_a, span_b = int(major.max()) - lo_a + 1, int(minor.max()) - lo_b + 1
    if span_a * span_b >= 2**62:
        return np.lexsort((minor, major))
    key = (major.astype(np.int64) - lo_a) * span_b + (minor.astype(np.int64) - lo_b)
    return np.argsort(key, kind="stable")


def rows_sharing_key(major: np.ndarray, minor: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Of the rows ``order`` lists, sorted so that equal ``(major, minor)`` keys lie together, those whose key
    another row shares, in ascending row order (the only candidates for exact duplicates)."""
    a, b = major[order], minor[order]
    same = (a[1:] == a[:-1]) & (b[1:] == b[:-1])
    run = np.zeros(order.size, dtype=bool)
    run[1:] |= same
    run[:-1] |= same
    return np.sort(order[run])


def take_rows(table: pa.Table, idx: np.ndarray) -> pa.Table:
    """``table.take(idx)``, as a zero-copy slice when ``idx`` is a run of consecutive rows (a clean feed's rows
    in the order they came)."""
    if idx.size and int(idx[-1]) - int(idx[0]) + 1 == idx.size and (idx.size == 1 or np.all(np.diff(idx) == 1)):
        return table.slice(int(idx[0]), idx.size)
    return table.take(pa.array(idx, pa.int64()))


def _filled(arr: pa.Array | pa.ChunkedArray, value) -> np.ndarray:
    """The values as numpy, nulls replaced by ``value`` (no copy through Arrow when there are none)."""
    return (arr if arr.null_count == 0 else pc.fill_null(arr, value)).to_numpy(zero_copy_only=False)


def _encoded(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    enc = pc.dictionary_encode(values)
    if isinstance(enc, pa.ChunkedArray):
        if enc.num_chunks == 0:
            return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], values.type))
        enc = enc.unify_dictionaries().combine_chunks()
    return enc


def codes_in(values: pa.Array | pa.ChunkedArray, value_set: pa.Array) -> np.ndarray:
    """Each value's position in ``value_set`` (int64), -1 where absent or null: ``pc.index_in``, hashing only the
    distinct values (a batch of a few thousand subjects' fixes has a few thousand)."""
    enc = _encoded(values)
    at = pc.fill_null(pc.index_in(enc.dictionary, value_set=value_set), -1).to_numpy(zero_copy_only=False)
    at = np.append(at.astype(np.int64), -1)
    return at[pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)]


def text_rank(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each value's rank among the distinct values in Arrow's (byte-wise) sort order; -1 for null.

    Sorting rows by rank equals sorting them by the text, at the cost of hashing it once: with few distinct
    values (subject ids, sources) a sort on ranks is several times faster than on strings.
    """
    enc = _encoded(text)
    order = pc.sort_indices(enc.dictionary).to_numpy()
    rank = np.empty(order.size + 1, np.int64)
    rank[order] = np.arange(order.size)
    rank[-1] = -1
    return rank[pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)]
