"""Which rows of a state array changed since it was last saved, and saving them: one pass, no temporaries.

The live path (:mod:`geomon.run.checkpoint`) keeps a copy of every per-subject
state array as last saved and asks, at every checkpoint, which subjects' rows
differ. ``(current != saved).any(axis=1)`` in numpy builds a boolean array as
large as the state (22 M entries at 100,000 subjects) before reducing it; this
kernel compares row by row as 64-bit words, stops a row at its first
difference, and can skip columns saved another way.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

__all__ = ["rows_changed"]


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
