"""Which rows of a state array changed since it was last saved, and saving them: one pass, no temporaries.

The live path (:mod:`geomon.run.checkpoint`) keeps a copy of every per-subject
state array as last saved and asks, at every checkpoint, which subjects' rows
differ. ``(current != saved).any(axis=1)`` in numpy builds a boolean array as
large as the state (22 M entries at 100,000 subjects) before reducing it;
:func:`rows_changed` compares row by row as 64-bit words, stops a row at its first
difference, and can skip columns saved another way. :func:`copy_rows` and
:func:`put_rows` move the changed rows of each array into (and back from) one
block of a checkpoint's rows without numpy's fancy-indexing temporaries, and
:func:`encode_words` packs them as the checkpoint stores them.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

__all__ = ["copy_rows", "encode_words", "put_rows", "rows_changed"]


@jit
def rows_changed(current: np.ndarray, saved: np.ndarray, skip: np.ndarray, out: np.ndarray) -> None:
    """Or into ``out[i]`` whether row ``i`` of ``current`` differs from ``saved`` in a column not in ``skip``.

    Parameters
    ----------
    current, saved : uint64 (n_rows, n_cols)
        The state as 64-bit words (NaN payloads compare as bits: a NaN equals itself).
    skip : bool (n_cols,)
        Columns not compared.
    out : bool (n_rows,)
        Updated in place (``|=``), so several arrays can be folded into one answer.
    """
    n, m = current.shape
    for i in range(n):
        if out[i]:
            continue
        for j in range(m):
            if not skip[j] and current[i, j] != saved[i, j]:
                out[i] = True
                break


@jit
def copy_rows(src: np.ndarray, codes: np.ndarray, out: np.ndarray, col0: int) -> None:
    """``out[k, col0:col0 + m] = src[codes[k], :]`` for every ``k`` (64-bit words; ``m`` the width of ``src``)."""
    m = src.shape[1]
    for k in range(codes.size):
        row = src[codes[k]]
        dst = out[k]
        for j in range(m):
            dst[col0 + j] = row[j]


@jit
def put_rows(block: np.ndarray, col0: int, codes: np.ndarray, dst: np.ndarray) -> None:
    """``dst[codes[k], :] = block[k, col0:col0 + m]`` for every ``k``: the inverse of :func:`copy_rows`."""
    m = dst.shape[1]
    for k in range(codes.size):
        row = dst[codes[k]]
        src = block[k]
        for j in range(m):
            row[j] = src[col0 + j]


@jit
def encode_words(words: np.ndarray, raw: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> None:
    """Each row of ``words`` as a bitmap of its non-zero words (bit ``j % 8`` of byte ``j // 8``), then those
    words' bytes in machine order, one after the other in ``data``; row ``i`` is ``data[offsets[i]:offsets[i+1]]``.

    Parameters
    ----------
    words : uint64 (k, m)
        The rows as 64-bit words.
    raw : uint8 (k, 8 * m)
        The same rows as bytes (``words.view(np.uint8)``).
    data : uint8
        At least ``k * ((m + 7) // 8 + 8 * m)`` long (the worst case); written from the start.
    offsets : int64 (k + 1,)
        Written.
    """
    k, m = words.shape
    head = (m + 7) // 8
    pos = 0
    for i in range(k):
        offsets[i] = pos
        for b in range(head):
            data[pos + b] = 0
        q = pos + head
        for j in range(m):
            if words[i, j] != 0:
                data[pos + j // 8] |= np.uint8(1 << (j % 8))
                for b in range(8):
                    data[q + b] = raw[i, 8 * j + b]
                q += 8
        pos = q
    offsets[k] = pos
