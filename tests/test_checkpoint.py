"""Checkpoint rows: encode/decode round trip on random states (zeros, NaN, negative zero, all-zero rows)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.checkpoint import decode_rows, encode_rows


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
    # Smaller than the rows whenever most words are zero.
    if k and p_zero > 0.9:
        assert sum(map(len, blobs)) < rows.nbytes
