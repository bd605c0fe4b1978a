"""Large Parquet inputs read a row group at a time (geomon/io/stream_parquet.py): a file in time order replays exactly
as if read whole; one in another order is replayed with its late fixes counted, every row accounted for."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from geomon.cli.main import SAMPLE_DIR
from geomon.engine.monitor import Monitor
from geomon.io.stream_parquet import ParquetFeed, parquet_rows
from geomon.run.replay import replay

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"


@pytest.fixture(scope="module")
def sample():
    return pq.read_table(SAMPLE_DIR / "fixes.parquet")


def test_a_time_ordered_file_replays_streamed_exactly_as_read_whole(sample, tmp_path):
    t = sample.sort_by("ts")
    # Row 40,000 (the first of the third row group) repeats row 39,999 exactly: a duplicate across row groups.
    # Two rows the loader refuses go into the second group.
    bad = t.slice(25_000, 2)
    bad = bad.set_column(2, "lon", pa.array([float("nan"), 500.0])).cast(t.schema)
    t = pa.concat_tables([t.slice(0, 25_000), bad, t.slice(25_000, 14_997), t.slice(39_997, 1), t.slice(39_997)])
    path = tmp_path / "ordered.parquet"
    pq.write_table(t, path, row_group_size=20_000)
    assert parquet_rows(path) == t.num_rows == sample.num_rows + 3
    whole = replay(path, ZONES, SUBJECTS, stream_rows=None)
    streamed = replay(path, ZONES, SUBJECTS, stream_rows=0, batch_rows=7_000)
    assert streamed.alerts.num_rows > 100 and streamed.alerts.equals(whole.alerts)
    assert (streamed.n_read, streamed.n_accepted, streamed.n_quarantined) == \
        (whole.n_read, whole.n_accepted, whole.n_quarantined) == (t.num_rows, t.num_rows - 3, 3)
    got = sorted((r["row"], r["reason"]) for r in streamed.quarantine.to_pylist())
    assert got == sorted((r["row"], r["reason"]) for r in whole.quarantine.to_pylist())
    assert got == [(25_000, "lon_not_finite"), (25_001, "lon_out_of_range"), (40_000, "duplicate")]


def test_a_file_out_of_time_order_is_sorted_first_and_replays_as_read_whole(sample, tmp_path):
    path = tmp_path / "by_subject.parquet"
    t = pa.concat_tables([sample.slice(0, 1_000), sample.slice(999, 1), sample.slice(1_000)])   # row 1,000 repeats 999
    t = t.set_column(2, "lon", pc.if_else(pc.equal(pa.array(np.arange(t.num_rows)), 5), float("inf"), t.column("lon")))
    pq.write_table(t, path, row_group_size=10_000)      # the sample is sorted by subject, then time
    feed = ParquetFeed(path, hold_rows=30_000)
    assert feed.sorted_first and feed.total_rows == t.num_rows
    whole = replay(path, ZONES, SUBJECTS, stream_rows=None)
    streamed = replay(path, ZONES, SUBJECTS, stream_rows=0)
    assert streamed.alerts.num_rows > 100 and streamed.alerts.equals(whole.alerts)
    assert sorted((r["row"], r["reason"]) for r in streamed.quarantine.to_pylist()) == \
        sorted((r["row"], r["reason"]) for r in whole.quarantine.to_pylist()) == [(5, "lon_not_finite"),
                                                                                   (1_000, "duplicate")]


def test_without_sorting_every_row_is_still_accounted_for(sample, tmp_path):
    path = tmp_path / "by_subject.parquet"
    pq.write_table(sample, path, row_group_size=10_000)
    feed = ParquetFeed(path, batch_rows=5_000, hold_rows=30_000, sort=False)
    m = Monitor(ZONES, SUBJECTS)
    run = []
    for batch in feed:
        m.process(batch)
        run.append(batch.input_row)
    assert not feed.sorted_first and feed.n_released_early > 0   # it could not hold the whole file
    # Every input row either ran or was refused, exactly once: nothing dropped silently.
    rows = np.concatenate(run)
    assert rows.size == np.unique(rows).size == sample.num_rows == feed.n_read
    assert m.n_read == m.n_accepted + m.n_quarantined == sample.num_rows
    assert set(m.quarantine.column("reason").to_pylist()) <= {"late_fix"}


def test_a_directory_of_files_is_one_input_in_name_order(sample, tmp_path):
    t = sample.sort_by("ts")
    (tmp_path / "in").mkdir()
    half = t.num_rows // 2
    pq.write_table(t.slice(0, half), tmp_path / "in" / "a.parquet", row_group_size=50_000)
    pq.write_table(t.slice(half), tmp_path / "in" / "b.parquet", row_group_size=50_000)
    streamed = replay(tmp_path / "in", ZONES, SUBJECTS, stream_rows=0)
    whole = replay(tmp_path / "in", ZONES, SUBJECTS, stream_rows=None)
    assert streamed.n_read == t.num_rows and streamed.alerts.equals(whole.alerts)
    assert pc.sum(pc.is_null(streamed.alerts.column("alert_id"))).as_py() == 0
