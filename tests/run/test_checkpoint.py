"""Checkpoint rows: encode/decode round trip on random states (zeros, NaN, negative zero, all-zero rows)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.run.checkpoint import decode_rows, encode_rows


@settings(max_examples=200, deadline=None)
@given(k=st.integers(0, 30), words=st.integers(1, 70), seed=st.integers(0, 2**32 - 1), p_zero=st.floats(0, 1))
def test_rows_round_trip(k, words, seed, p_zero):
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([np.nan, -0.0, 1.0, -3.5, 1e300, 1793577600000.0]), (k, words))
    values[rng.random((k, words)) < p_zero] = 0.0
    rows = values.view(np.uint8).reshape(k, words * 8)
    blobs = encode_rows(rows)
    assert len(blobs) == k
    assert np.array_equal(decode_rows(blobs, words * 8), rows)
    blobs = blobs.to_pylist()
    assert np.array_equal(decode_rows(blobs, words * 8), rows)
    # A blob is its bitmap and its non-zero words, nothing more: mostly-zero rows shrink.
    nonzero = (rows.view(np.uint64).reshape(k, words) != 0).sum(axis=1)
    assert [len(b) for b in blobs] == [(words + 7) // 8 + 8 * int(c) for c in nonzero]
