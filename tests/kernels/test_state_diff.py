"""rows_changed against numpy's (current != saved)[:, kept].any(axis=1), on random states and edge cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels.state_diff import copy_rows, put_rows, rows_changed


def _reference(current, saved, skip, out):
    return out | (current[:, ~skip] != saved[:, ~skip]).any(axis=1)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 40), m=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), p_change=st.floats(0, 1),
       p_skip=st.floats(0, 1), p_out=st.floats(0, 1))
def test_rows_changed_matches_numpy(n, m, seed, p_change, p_skip, p_out):
    rng = np.random.default_rng(seed)
    saved = rng.integers(0, 4, (n, m)).astype(np.uint64)          # small values: equal words are common
    current = saved.copy()
    flip = rng.random((n, m)) < p_change
    current[flip] += rng.integers(1, 3, int(flip.sum())).astype(np.uint64)
    skip = rng.random(m) < p_skip
    out = rng.random(n) < p_out
    want = _reference(current, saved, skip, out)
    rows_changed(current, saved, skip, out)
    assert np.array_equal(out, want)


def test_nan_rows_equal_as_bits_and_a_sign_change_counts():
    saved = np.array([[np.nan, 0.0], [1.0, -0.0]]).view(np.uint64)
    current = np.array([[np.nan, 0.0], [1.0, 0.0]]).view(np.uint64)     # -0.0 -> 0.0 is a change of state bits
    out = np.zeros(2, bool)
    rows_changed(current, saved, np.zeros(2, bool), out)
    assert out.tolist() == [False, True]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 30), widths=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       p_pick=st.floats(0, 1))
def test_copy_rows_and_put_rows_match_numpy_indexing(n, widths, seed, p_pick):
    """Rows of several arrays gathered side by side into one block, and scattered back into other arrays."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 2**63, (n, w), dtype=np.int64).astype(np.uint64) for w in widths]
    codes = np.flatnonzero(rng.random(n) < p_pick).astype(np.int64)
    block = np.zeros((codes.size, sum(widths)), np.uint64)
    col = 0
    for a in arrays:
        copy_rows(a, codes, block, np.int64(col))
        col += a.shape[1]
    assert np.array_equal(block, np.concatenate([a[codes] for a in arrays], axis=1))
    targets = [np.zeros_like(a) for a in arrays]
    col = 0
    for t in targets:
        put_rows(block, np.int64(col), codes, t)
        col += t.shape[1]
    for a, t in zip(arrays, targets):
        want = np.zeros_like(a)
        want[codes] = a[codes]
        assert np.array_equal(t, want)
