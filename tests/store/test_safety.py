"""Storage safety: one writer at a time with a clear message, readers between a replay's batches, and a failed write
(a full disk) that leaves the store as it was before the batch."""

from __future__ import annotations

import functools
import subprocess
import sys
import time

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.errors import StoreError
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"


@functools.cache
def _uninterrupted() -> int:
    """Alerts of the sample replayed in one go, without a store: what any complete store must end up holding."""
    return replay(SAMPLE_DIR / "fixes.parquet", ZONES, SUBJECTS).alerts.num_rows


def _holder(db, seconds: float) -> subprocess.Popen:
    """Another process with the store open for writing for ``seconds``; returns once it holds it."""
    code = (f"import sys, time; from geomon.store.alert_store import AlertStore\n"
            f"s = AlertStore({str(db)!r}); print('open', flush=True); time.sleep({seconds}); s.close()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_a_second_writer_is_told_plainly_and_a_reader_waits_its_turn(tmp_path):
    db = tmp_path / "store.duckdb"
    AlertStore(db).close()
    proc = _holder(db, 3.0)
    try:
        with pytest.raises(StoreError, match=r"in use by process \d+; it takes one writer at a time"):
            AlertStore(db, wait_s=0.2)
        result = CliRunner().invoke(app, ["alerts", "list", "--db", str(db)],
                                    env={"COLUMNS": "200", "GEOMON_STORE_WAIT_S": "0.2"})
        assert result.exit_code == 1 and "is writing the store" in result.output
        assert "Traceback" not in result.output
        with AlertStore(db, read_only=True, wait_s=30) as store:   # waits until the writer lets go
            assert store.list_alerts().num_rows == 0
    finally:
        proc.wait(timeout=30)


def test_readers_open_the_store_between_the_batches_of_a_replay(tmp_path):
    path = tmp_path / "sorted.parquet"
    pq.write_table(pq.read_table(SAMPLE_DIR / "fixes.parquet").sort_by("ts"), path)
    db = tmp_path / "store.duckdb"
    AlertStore(db).close()
    code = (f"from geomon.run.replay import replay\n"
            f"replay({str(path)!r}, {str(ZONES)!r}, {str(SUBJECTS)!r}, db={str(db)!r}, batch_rows=15_000)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    seen = []
    try:
        while proc.poll() is None:
            with AlertStore(db, read_only=True, wait_s=30) as store:
                seen.append(store.list_alerts().num_rows)
            time.sleep(0.05)
    finally:
        assert proc.wait(timeout=300) == 0
    with AlertStore(db, read_only=True) as store:
        final = store.list_alerts().num_rows
    # read while it wrote, and ended with all of it
    assert final == _uninterrupted() > 0 and len(seen) >= 3 and seen == sorted(seen) and seen[0] < final


def test_a_failed_write_leaves_the_store_as_before_the_batch(tmp_path, monkeypatch):
    db = tmp_path / "store.duckdb"
    calls = {"n": 0}
    real = AlertStore.write_tracks

    def full_disk(self, table, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:    # the third batch: its alerts and stays are already in the transaction
            raise duckdb.IOException('Could not write file "store.duckdb.wal": No space left on device')
        return real(self, table, **kwargs)

    monkeypatch.setattr(AlertStore, "write_tracks", full_disk)
    fixes = pq.read_table(SAMPLE_DIR / "fixes.parquet").sort_by("ts")
    result = CliRunner().invoke(app, ["replay", str(SAMPLE_DIR / "fixes.parquet"), "--zones", str(ZONES),
                                      "--subjects", str(SUBJECTS), "--db", str(db), "--batch-rows", "150000"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert "nothing of this batch was stored, everything committed before it is intact" in result.output
    two = fixes.slice(0, 300_000)      # what the first two batches held
    end = two.column("ts")[-1].as_py()
    with AlertStore(db, read_only=True) as store:
        stored = store.list_alerts()
        (tracks,) = store._cursor().execute("SELECT count(*), max(ts) FROM tracks").fetchall()
        runs = store.runs().to_pylist()
    assert stored.num_rows > 0 and max(stored.column("emitted_at").to_pylist()) is not None
    assert all(t <= end for t in stored.column("confirmed_ts").to_pylist())   # nothing from the third batch
    assert 0 < tracks[0] <= 300_000 and tracks[1] <= end
    assert [r["status"] for r in runs] == ["running"]                         # the run says it did not finish
    monkeypatch.setattr(AlertStore, "write_tracks", real)
    again = replay(SAMPLE_DIR / "fixes.parquet", ZONES, SUBJECTS, db=db, batch_rows=150_000)
    assert again.alerts.num_rows == _uninterrupted()      # a rerun completes the store
