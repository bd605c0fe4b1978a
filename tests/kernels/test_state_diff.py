"""rows_changed against numpy's (current != saved)[:, kept].any(axis=1), on random states and edge cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.kernels.state_diff import rows_changed


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
