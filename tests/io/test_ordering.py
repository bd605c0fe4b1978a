"""The loader's ordering helpers against their plain references: numpy's lexsort, Python's sort of the text,
Arrow's take, and the loader's two orders against a sort of the accepted rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomon.io.ordering import codes_in, stable_order, take_rows, text_rank
from geomon.io.tables import load_fixes

_INTS = st.integers(-(2**62), 2**62)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-5, 5)), max_size=40),
       st.sampled_from(["small", "huge"]))
@example([], "small")
@example([(0, 0)], "small")
@example([(1, 2), (1, 2), (0, 5)], "huge")
def test_stable_order_is_lexsort(pairs, scale):
    major = np.array([p[0] for p in pairs], np.int64)
    minor = np.array([p[1] for p in pairs], np.int64)
    if scale == "huge":   # ranges whose product overflows one key: the lexsort path
        minor = minor * 2**59
    np.testing.assert_array_equal(stable_order(major, minor), np.lexsort((minor, major)))


@given(st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=30))
@example([])
@example([None, None])
@example(["b", "a", "b", "ä", "A", ""])
def test_text_rank_orders_as_the_text(values):
    rank = text_rank(pa.array(values, pa.string()))
    distinct = sorted({v.encode() for v in values if v is not None})
    expected = [-1 if v is None else distinct.index(v.encode()) for v in values]
    assert rank.tolist() == expected


def test_text_rank_of_a_chunked_column():
    col = pa.chunked_array([pa.array(["s2", "s1"]), pa.array(["s1", None, "s0"])])
    assert text_rank(col).tolist() == [2, 1, 1, -1, 0]
    assert text_rank(pa.chunked_array([], pa.string())).tolist() == []


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "zz"])), max_size=20),
       st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=4), st.booleans())
@example([], [], False)
@example(["a", None], ["a"], True)
def test_codes_in_is_index_in(values, value_set, chunked):
    arr = pa.array(values, pa.string())
    if chunked:
        arr = pa.chunked_array([arr[:len(values) // 2], arr[len(values) // 2:]], pa.string())
    expected = pc.fill_null(pc.index_in(arr, value_set=pa.array(value_set, pa.string())), -1)
    assert codes_in(arr, pa.array(value_set, pa.string())).tolist() == expected.to_pylist()


@given(st.lists(st.integers(0, 9), max_size=10))
@example([3, 4, 5])
@example([5])
def test_take_rows_is_take(idx):
    table = pa.table({"a": pa.array(range(10)), "s": pa.array([str(i) for i in range(10)])})
    idx = np.array(idx, np.int64)
    assert take_rows(table, idx).equals(table.take(pa.array(idx, pa.int64())))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "s10", " s1"]), st.integers(0, 3), st.integers(0, 2)),
                min_size=1, max_size=25))
def test_the_loaders_two_orders_are_sorts_of_the_accepted_rows(rows):
    table = pa.table({"subject_id": [r[0] for r in rows], "ts": pa.array([r[1] * 1000 for r in rows], pa.int64()),
                      "lon": [116.0 + r[2] * 1e-3 for r in rows], "lat": [39.0] * len(rows),
                      "source": ["gnss"] * len(rows)})
    by_subject = load_fixes(table, order="subject")
    by_time = load_fixes(table, order="time")
    assert by_subject.n_accepted == by_time.n_accepted
    # Same rows, same input numbers; each order a stable sort of the input (trimmed ids, input order for ties).
    for load, key in ((by_subject, lambda i: (rows[i][0].strip(), rows[i][1], i)),
                      (by_time, lambda i: (rows[i][1], rows[i][0].strip(), i))):
        assert load.input_row.tolist() == sorted(load.input_row.tolist(), key=key)
    assert sorted(by_subject.input_row.tolist()) == sorted(by_time.input_row.tolist())
    ids = pc.utf8_trim_whitespace(by_time.table.column("subject_id")).to_pylist()
    assert ids == [rows[i][0].strip() for i in by_time.input_row]
