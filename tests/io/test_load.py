"""Tests of geomon.io.load: fixes and subjects (zones and rules have their own files)."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomon.errors import InputError
from geomon.io.load import FixLoad, load_fixes, load_subjects
from geomon.schema import FIX_SCHEMA, QUARANTINE_SCHEMA, SOURCES, SUBJECT_SCHEMA

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def text_fixes(rows: list[dict]) -> pa.Table:
    """Fix rows as an all-text Arrow table, the way a CSV file arrives."""
    names = ["subject_id", "ts", "lon", "lat", "source", "accuracy_m"]
    return pa.table({n: pa.array([r.get(n) for r in rows], pa.string()) for n in names})


def good_row(i: int = 0, **over) -> dict:
    row = {
        "subject_id": "s1",
        "ts": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        "lon": "116.3",
        "lat": "39.9",
        "source": "gnss",
        "accuracy_m": "5",
    }
    row.update(over)
    return row


def typed_fixes(n: int = 6) -> pa.Table:
    return pa.table(
        {
            "subject_id": pa.array([f"s{i % 2}" for i in range(n)], pa.string()),
            "ts": pa.array([BASE_MS + 1000 * (n - i) for i in range(n)], pa.timestamp("ms", tz="UTC")),
            "lon": pa.array([116.0 + 0.01 * i for i in range(n)], pa.float64()),
            "lat": pa.array([39.0 + 0.01 * i for i in range(n)], pa.float64()),
            "source": pa.array([SOURCES[i % 4] for i in range(n)], pa.string()),
            "accuracy_m": pa.array([None if i == 0 else 2.5 * i for i in range(n)], pa.float32()),
            "device": pa.array([f"dev{i}" for i in range(n)], pa.string()),
            "battery_count": pa.array(list(range(n)), pa.int64()),
        }
    )


# --------------------------------------------------------------------------- reasons

REASON_CASES = [
    ("subject_missing", "subject_id", {"subject_id": None}),
    ("subject_missing", "subject_id", {"subject_id": "   "}),
    ("ts_missing", "ts", {"ts": None}),
    ("ts_missing", "ts", {"ts": ""}),
    ("ts_unparseable", "ts", {"ts": "yesterday"}),
    ("ts_unparseable", "ts", {"ts": "2024-02-30T00:00:00Z"}),
    ("ts_unparseable", "ts", {"ts": "2024-01-01"}),
    ("lon_missing", "lon", {"lon": None}),
    ("lon_unparseable", "lon", {"lon": "116,3"}),
    ("lon_not_finite", "lon", {"lon": "nan"}),
    ("lon_not_finite", "lon", {"lon": "-inf"}),
    ("lon_out_of_range", "lon", {"lon": "180.0001"}),
    ("lon_out_of_range", "lon", {"lon": "-200"}),
    ("lat_missing", "lat", {"lat": ""}),
    ("lat_unparseable", "lat", {"lat": "N39.9"}),
    ("lat_not_finite", "lat", {"lat": "Infinity"}),
    ("lat_out_of_range", "lat", {"lat": "90.5"}),
    ("source_missing", "source", {"source": None}),
    ("source_unknown", "source", {"source": "gps"}),
    ("source_unknown", "source", {"source": "GNSS"}),
    ("accuracy_unparseable", "accuracy_m", {"accuracy_m": "n/a"}),
    ("accuracy_not_finite", "accuracy_m", {"accuracy_m": "nan"}),
    ("accuracy_not_finite", "accuracy_m", {"accuracy_m": "1e300"}),  # beyond float32
    ("accuracy_negative", "accuracy_m", {"accuracy_m": "-0.5"}),
]


@pytest.mark.parametrize(("reason", "field", "change"), REASON_CASES)
def test_each_reason_is_quarantined_with_its_field(reason, field, change):
    rows = [good_row(0), good_row(1, **change), good_row(2)]
    result = load_fixes(text_fixes(rows), name="t")
    assert (result.n_read, result.n_accepted, result.n_quarantined) == (3, 2, 1)
    q = result.quarantine.to_pylist()[0]
    assert (q["source_name"], q["row"], q["field"], q["reason"]) == ("t", 1, field, reason)


def test_first_reason_wins():
    rows = [good_row(0, subject_id=None, lon="999", source="x")]
    assert load_fixes(text_fixes(rows)).quarantine.column("reason").to_pylist() == ["subject_missing"]


def test_typed_columns_are_validated_too():
    t = typed_fixes(6)
    lon = t.column("lon").to_pylist()
    lon[1], lon[2] = math.nan, math.inf
    acc = t.column("accuracy_m").to_pylist()
    acc[3] = -1.0
    ts = t.column("ts").to_pylist()
    ts[4] = None
    t = t.set_column(2, "lon", pa.array(lon)).set_column(5, "accuracy_m", pa.array(acc, pa.float32()))
    t = t.set_column(1, "ts", pa.array(ts, pa.timestamp("ms", tz="UTC")))
    q = load_fixes(t).quarantine
    assert q.column("row").to_pylist() == [1, 2, 3, 4]
    assert q.column("reason").to_pylist() == ["lon_not_finite", "lon_not_finite", "accuracy_negative", "ts_missing"]


def test_exact_duplicates_keep_the_first():
    t = typed_fixes(4)
    dup = pa.concat_tables([t, t.slice(1, 2), t.slice(1, 1)])
    result = load_fixes(dup)
    assert result.n_accepted == 4
    assert result.quarantine.column("row").to_pylist() == [4, 5, 6]
    assert set(result.quarantine.column("reason").to_pylist()) == {"duplicate"}
    assert result.table.equals(load_fixes(t).table)


def test_duplicates_are_found_among_rows_sharing_subject_and_time():
    rows = [good_row(0), good_row(0, lon="1"), good_row(1), good_row(0, lon="1"), good_row(0)]
    result = load_fixes(text_fixes(rows))
    assert result.quarantine.column("row").to_pylist() == [3, 4]
    assert result.table.column("lon").to_pylist() == [116.3, 1.0, 116.3]


def test_rows_differing_only_in_an_extra_column_are_not_duplicates():
    t = typed_fixes(2)
    twin = t.slice(0, 1).set_column(6, "device", pa.array(["other"]))
    assert load_fixes(pa.concat_tables([t, twin])).n_accepted == 3


def test_same_instant_written_differently_is_a_duplicate():
    rows = [good_row(0, ts="2024-01-01T08:00:00+08:00"), good_row(0, ts="2024-01-01T00:00:00Z")]
    result = load_fixes(text_fixes(rows))
    assert result.quarantine.column("reason").to_pylist() == ["duplicate"]


def test_quarantine_keeps_the_raw_row_as_read():
    rows = [good_row(0), good_row(1, lon="nan", accuracy_m=None)]
    q = load_fixes(text_fixes(rows)).quarantine
    assert q.schema.equals(QUARANTINE_SCHEMA)
    assert q.column("raw")[0].as_py() == (
        '{"subject_id": "s1", "ts": "2024-01-01T00:00:01Z", "lon": "nan", "lat": "39.9",'
        ' "source": "gnss", "accuracy_m": null}'
    )


def test_null_accuracy_and_missing_accuracy_column_are_accepted():
    t = typed_fixes(3)
    assert load_fixes(t).table.column("accuracy_m").null_count == 1
    result = load_fixes(t.drop_columns(["accuracy_m"]))
    assert result.n_accepted == 3
    assert result.table.column("accuracy_m").null_count == 3
    assert result.table.schema.field("accuracy_m").type == pa.float32()


# --------------------------------------------------------------------------- timestamps and order


def test_timestamp_forms_agree():
    forms = [
        "2024-01-01T08:00:00+08:00",
        "2024-01-01T08:00:00+0800",
        "2024-01-01T00:00:00Z",
        "2024-01-01 00:00:00.000Z",
        "2024-01-01T00:00:00",  # naive: UTC
        " 2024-01-01T00:00:00.000999Z ",  # sub-millisecond digits truncated
        str(BASE_MS),
    ]
    rows = [good_row(0, ts=f, subject_id=f"s{i}") for i, f in enumerate(forms)]
    result = load_fixes(text_fixes(rows))
    assert result.n_quarantined == 0
    assert set(result.table.column("ts").cast(pa.int64()).to_pylist()) == {BASE_MS}


def test_typed_timestamps_of_other_units_and_zones_agree():
    for ts in (
        pa.array([BASE_MS * 1000 + 999], pa.timestamp("us")),
        pa.array([BASE_MS * 1_000_000], pa.timestamp("ns", tz="Asia/Shanghai")),
        pa.array([BASE_MS], pa.int64()),
    ):
        t = typed_fixes(1).set_column(1, "ts", ts)
        assert load_fixes(t).table.column("ts").cast(pa.int64()).to_pylist() == [BASE_MS]


def test_sorted_by_subject_then_time_stably():
    rows = [
        good_row(5, subject_id="b"),
        good_row(3, subject_id="a", lon="1"),
        good_row(3, subject_id="a", lon="2"),
        good_row(1, subject_id="b"),
        good_row(3, subject_id="a", lon="0"),
    ]
    table = load_fixes(text_fixes(rows)).table
    assert table.column("subject_id").to_pylist() == ["a", "a", "a", "b", "b"]
    assert table.column("lon").to_pylist()[:3] == [1.0, 2.0, 0.0]
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    assert ts[3] < ts[4]


# --------------------------------------------------------------------------- formats


def write_csv(table: pa.Table, path) -> None:
    iso = pa.array(
        [f"{np.datetime64(v, 'ms')}Z" for v in table.column("ts").cast(pa.int64()).to_pylist()], pa.string()
    )
    pacsv.write_csv(table.set_column(1, "ts", iso), path)


def test_csv_parquet_and_arrow_give_the_same_accepted_table(tmp_path):
    t = typed_fixes(8)
    pq.write_table(t, tmp_path / "f.parquet")
    write_csv(t, tmp_path / "f.csv")
    with open(tmp_path / "f.csv", "rb") as src, gzip.open(tmp_path / "f.csv.gz", "wb") as dst:
        dst.write(src.read())
    reference = load_fixes(t).table
    assert reference.schema.names == FIX_SCHEMA.names + ["device", "battery_count"]
    assert reference.schema.field("battery_count").type == pa.int64()
    assert reference.select(FIX_SCHEMA.names).schema.equals(FIX_SCHEMA)
    for path in ("f.parquet", "f.csv", "f.csv.gz"):
        result = load_fixes(tmp_path / path)
        assert result.table.equals(reference), path
        assert result.source_name == str(tmp_path / path)


def test_malformed_csv_records_are_quarantined_with_their_row(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(
        "subject_id,ts,lon,lat,source,accuracy_m\n"
        "a,2024-01-01T00:00:00Z,1,2,gnss,3\n"
        "a,2024-01-01T00:00:01Z,1,2,gnss,3,extra\n"
        "a,2024-01-01T00:00:02Z,1,2,gnss\n"
        "a,2024-01-01T00:00:03Z,1,2,bogus,3\n"
    )
    result = load_fixes(path)
    assert (result.n_read, result.n_accepted, result.n_quarantined) == (4, 1, 3)
    q = result.quarantine
    assert q.column("row").to_pylist() == [1, 2, 3]
    assert q.column("reason").to_pylist() == ["csv_malformed_row", "csv_malformed_row", "source_unknown"]


@pytest.mark.parametrize(
    ("filename", "content", "problem"),
    [
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary content"),
        ("latin1.csv", "subject_id,ts,lon,lat,source,accuracy_m,r\xe9gion\n".encode("latin-1"), "not UTF-8"),
        ("empty.csv", b"", "empty file"),
        ("notgzip.csv.gz", b"subject_id,ts\n", "gzip"),
        ("text.parquet", b"subject_id,ts,lon,lat,source\n", "not a readable Parquet file"),
        ("cols.csv", b"subject,time,x,y\n", "missing required column"),
        ("fixes.xlsx", b"PK\x03\x04", "unsupported file type"),
    ],
)
def test_files_that_are_not_what_they_claim_raise_one_clear_error(tmp_path, filename, content, problem):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_fixes(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    assert "\n" not in message
    # No chained pyarrow/OS traceback behind the one-line message.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_file_and_uncastable_column_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_fixes(tmp_path / "nope.parquet")
    t = typed_fixes(2).set_column(2, "lon", pa.array([[1.0], [2.0]]))
    pq.write_table(t, tmp_path / "listlon.parquet")
    with pytest.raises(InputError) as info:
        load_fixes(tmp_path / "listlon.parquet")
    assert info.value.field == "lon" and "listlon.parquet" in str(info.value)
    with pytest.raises(InputError, match="field 'ts'"):
        load_fixes(typed_fixes(2).set_column(1, "ts", pa.array([1.5, 2.5])))


# --------------------------------------------------------------------------- datum


def haversine_m(lon1, lat1, lon2, lat2):
    r = 6_371_008.8
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(a))


def test_gcj02_input_is_shifted_to_wgs84_by_a_few_hundred_metres():
    t = typed_fixes(1)
    wgs = load_fixes(t).table
    gcj = load_fixes(t, datum="gcj02").table
    assert gcj.column("subject_id").equals(wgs.column("subject_id"))
    d = haversine_m(wgs["lon"][0].as_py(), wgs["lat"][0].as_py(), gcj["lon"][0].as_py(), gcj["lat"][0].as_py())
    assert 100 < d < 700


def test_unknown_datum_is_refused():
    with pytest.raises(ValueError):
        load_fixes(typed_fixes(1), datum="tokyo")


# --------------------------------------------------------------------------- property test

CORRUPTIONS = {
    "subject_missing": ("subject_id", st.sampled_from([None, "", " "])),
    "ts_missing": ("ts", st.sampled_from([None, ""])),
    "ts_unparseable": ("ts", st.sampled_from(["soon", "2024-13-01T00:00:00Z", "12:00", "2024-01-01"])),
    "lon_unparseable": ("lon", st.sampled_from(["1,5", "east", "--1"])),
    "lon_not_finite": ("lon", st.sampled_from(["nan", "inf", "-inf"])),
    "lon_out_of_range": ("lon", st.floats(180.0, 1e9, exclude_min=True).map(lambda v: repr(-v))),
    "lat_missing": ("lat", st.just(None)),
    "lat_not_finite": ("lat", st.sampled_from(["NaN", "-Infinity"])),
    "lat_out_of_range": ("lat", st.floats(90.0, 1e9, exclude_min=True).map(repr)),
    "source_unknown": ("source", st.sampled_from(["gps", "Cell", "bluetooth"])),
    "accuracy_negative": ("accuracy_m", st.floats(-1e6, 0.0, exclude_max=True).map(repr)),
    "accuracy_not_finite": ("accuracy_m", st.sampled_from(["inf", "nan"])),
}


@st.composite
def mixed_tables(draw):
    """Good rows (unique by time), corrupted rows with their reason, and duplicates."""
    rows, expected = [], []
    for i in range(draw(st.integers(0, 25))):
        acc = draw(st.one_of(st.none(), st.floats(0.0, 1e4, width=32)))
        ts_ms = BASE_MS + 1000 * i + draw(st.integers(0, 999))
        ts = str(ts_ms) if draw(st.booleans()) else f"{np.datetime64(ts_ms, 'ms')}Z"
        rows.append(
            {
                "subject_id": draw(st.sampled_from(["a", "b", "c"])),
                "ts": ts,
                "lon": repr(draw(st.floats(-180.0, 180.0))),
                "lat": repr(draw(st.floats(-90.0, 90.0))),
                "source": draw(st.sampled_from(SOURCES)),
                "accuracy_m": None if acc is None else repr(acc),
            }
        )
        expected.append(None)
    n_good = len(rows)
    for j, reason in enumerate(draw(st.lists(st.sampled_from(sorted(CORRUPTIONS)), max_size=12))):
        col, values = CORRUPTIONS[reason]
        rows.append(good_row(0, **{"ts": str(BASE_MS - 1000 * (j + 1)), col: draw(values)}))
        expected.append(reason)
    for _ in range(draw(st.integers(0, 5)) if n_good else 0):
        rows.append(dict(rows[draw(st.integers(0, n_good - 1))]))
        expected.append("duplicate?")
    order = draw(st.permutations(range(len(rows))))
    rows, expected = [rows[k] for k in order], [expected[k] for k in order]
    # Of identical good rows, whichever comes first is the one kept.
    seen = set()
    for k, (row, reason) in enumerate(zip(rows, expected)):
        if reason in (None, "duplicate?"):
            key = tuple(sorted(row.items()))
            expected[k] = "duplicate" if key in seen else None
            seen.add(key)
    return rows, expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_tables())
def test_counts_add_up_and_every_bad_row_is_quarantined_for_its_reason(case):
    rows, expected = case
    result = load_fixes(text_fixes(rows))
    assert isinstance(result, FixLoad) and result.balanced
    assert result.n_read == len(rows) == result.n_accepted + result.n_quarantined
    got = dict(zip(result.quarantine.column("row").to_pylist(), result.quarantine.column("reason").to_pylist()))
    assert got == {k: r for k, r in enumerate(expected) if r is not None}
    good = [r for r, e in zip(rows, expected) if e is None]
    assert result.n_accepted == len(good)
    want = load_fixes(text_fixes(good)).table  # loading only the good rows loses nothing
    assert result.table.equals(want)
    keys = list(zip(want.column("subject_id").to_pylist(), want.column("ts").cast(pa.int64()).to_pylist()))
    assert keys == sorted(keys)
    assert sorted(want.column("lon").to_pylist()) == sorted(float(r["lon"]) for r in good)


# --------------------------------------------------------------------------- subjects


def subjects_table() -> pa.Table:
    return pa.table(
        {
            "subject_id": ["p1", "p2", None, "p4", "p5", "p1", "p7"],
            "level": ["strict", "ordinary", "strict", "lenient", None, "ordinary", "ordinary"],
            "office_id": ["o1", "o2", "o1", "o1", "o2", "o3", " "],
            "home_zone_id": ["h1", None, "h3", "h4", "h5", "h6", "h7"],
            "curfew_flag": [True, False, True, False, True, False, True],
        }
    )


def test_subject_quarantine_reasons_and_extras():
    result = load_subjects(subjects_table(), name="subjects")
    assert (result.n_read, result.n_accepted, result.n_quarantined) == (7, 2, 5)
    assert result.quarantine.column("reason").to_pylist() == [
        "subject_missing",
        "level_unknown",
        "level_missing",
        "subject_duplicate",
        "office_missing",
    ]
    assert result.table.column("subject_id").to_pylist() == ["p1", "p2"]
    assert result.table.schema.names == SUBJECT_SCHEMA.names + ["curfew_flag"]
    assert result.table.column("home_zone_id").to_pylist() == ["h1", None]


def test_subjects_from_csv_and_parquet_agree(tmp_path):
    t = subjects_table()
    pacsv.write_csv(t, tmp_path / "s.csv")
    pq.write_table(t, tmp_path / "s.parquet")
    a, b = load_subjects(tmp_path / "s.csv"), load_subjects(tmp_path / "s.parquet")
    assert a.table.equals(b.table)
    assert a.quarantine.column("reason").equals(b.quarantine.column("reason"))


def test_subjects_without_home_zone_and_with_missing_columns(tmp_path):
    result = load_subjects(subjects_table().drop_columns(["home_zone_id"]))
    assert result.table.column("home_zone_id").null_count == result.n_accepted
    with pytest.raises(InputError, match="office_id"):
        load_subjects(subjects_table().drop_columns(["office_id"]), name="subjects.csv")


def test_levels_are_read_in_any_case_and_in_chinese():
    """A roster that says Strict, ORDINARY, 严管 or 普管 means the rules' strict and ordinary (issue 24: Strict was
    refused, and its subject's fixes showed only as subject_unknown); anything else is still refused."""
    t = pa.table({"subject_id": ["a", "b", "c", "d", "e"], "level": ["Strict", "ORDINARY", "严管", " 普管 ", "medium"],
                  "office_id": ["o"] * 5})
    result = load_subjects(t, name="subjects")
    assert result.table.column("level").to_pylist() == ["strict", "ordinary", "strict", "ordinary"]
    assert result.quarantine.column("reason").to_pylist() == ["level_unknown"]
    assert result.quarantine.column("row").to_pylist() == [4]
