"""geomon replay on Dask (geomon/distributed.py): on a local cluster of two workers, the alerts, stays and
quarantine equal a single-machine replay's."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.distributed import bucket_input, partition_of, replay_distributed
from geomon.replay import replay
from geomon.store import AlertStore

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The sample in three files, with a row the loader refuses and one of a subject not on the roster."""
    t = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    odd = t.slice(100, 2)
    odd = odd.set_column(0, "subject_id", pa.array(["S0001", "NOBODY"])).set_column(
        2, "lon", pa.array([float("nan"), odd.column("lon")[1].as_py()])).cast(t.schema)
    t = pa.concat_tables([t.slice(0, 200_000), odd, t.slice(200_000)])
    folder = tmp_path_factory.mktemp("parts")
    n = t.num_rows
    for i in range(3):
        pq.write_table(t.slice(i * n // 3, (i + 1) * n // 3 - i * n // 3), folder / f"f{i}.parquet")
    return folder, n


def test_partitions_are_a_stable_hash_of_the_id():
    ids = ["S0001", "S0002", None, "S0001"]
    got = partition_of(ids, 4)
    assert got[0] == got[3] and got.tolist() == partition_of(ids, 4).tolist() and set(got) <= {0, 1, 2, 3}


def test_two_workers_give_the_single_machine_replay(parts, tmp_path):
    folder, n = parts
    one = replay(folder, ZONES, SUBJECTS)
    dist = replay_distributed(folder, ZONES, SUBJECTS, scheduler="local:2", partitions=5, db=tmp_path / "d.duckdb")
    assert one.alerts.num_rows > 100 and dist.alerts.equals(one.alerts)
    assert dist.stays.num_rows == one.stays.num_rows
    assert (dist.n_read, dist.n_accepted, dist.n_quarantined) == (one.n_read, one.n_accepted, one.n_quarantined) \
        == (n, n - 2, 2)
    assert sorted((r["row"], r["reason"]) for r in dist.quarantine.to_pylist()) == \
        sorted((r["row"], r["reason"]) for r in one.quarantine.to_pylist()) == [(200_000, "lon_not_finite"),
                                                                                 (200_001, "subject_unknown")]
    with AlertStore(tmp_path / "d.duckdb", read_only=True) as store:
        assert store.list_alerts().num_rows == one.alerts.num_rows


def test_the_command_runs_on_a_local_cluster_and_refuses_contacts(parts, tmp_path):
    folder, _ = parts
    args = ["replay", str(folder), "--zones", str(ZONES), "--subjects", str(SUBJECTS), "--dask", "local:2"]
    result = CliRunner().invoke(app, [*args, "--db", str(tmp_path / "c.duckdb")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "read = accepted + quarantined" in result.output and "partitions" in result.output
    written = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "parquet")], env={"COLUMNS": "200"})
    assert written.exit_code == 0, written.output
    assert pq.read_table(tmp_path / "parquet" / "alerts").num_rows > 100
    (tmp_path / "concern.csv").write_text("person_id,subject_id\nP1,\n")
    refused = CliRunner().invoke(app, [*args, "--concern", str(tmp_path / "concern.csv")], env={"COLUMNS": "200"})
    assert refused.exit_code == 1 and "not distributed yet" in refused.output


def test_workers_write_partitioned_parquet_equal_to_the_single_machine_replay(parts, tmp_path):
    folder, n = parts
    one = replay(folder, ZONES, SUBJECTS)
    out = tmp_path / "out"
    dist = replay_distributed(folder, ZONES, SUBJECTS, scheduler="local:2", partitions=3, out=out)
    assert sorted(p.name for p in (out / "alerts").iterdir()) == [f"part-{i:05d}.parquet" for i in range(3)]
    assert dist.alerts.num_rows > 100
    assert dist.alerts.cast(one.alerts.schema).equals(one.alerts)
    assert pq.read_table(out / "stays").num_rows == one.stays.num_rows
    assert pq.read_table(out / "quarantine").num_rows == dist.n_quarantined == 2 and dist.n_read == n
    with pytest.raises(FileExistsError):
        replay_distributed(folder, ZONES, SUBJECTS, scheduler="local:1", out=out)


def test_a_larger_simulated_county_gives_the_single_machine_replay(tmp_path):
    """1.2 million fixes of 2,000 simulated subjects (visits to forbidden zones among them), in 4 files."""
    import numpy as np

    from benchmarks.huge import HugeConfig, write_fixes
    from benchmarks.latency import _world

    frame, ids, home, target = _world(2_000, 400, np.random.default_rng(3), tmp_path)
    whole = tmp_path / "whole.parquet"
    write_fixes(whole, HugeConfig(fixes=1_200_000, subjects=2_000, row_group_rows=300_000, seed=3), home, target,
                ids, frame, progress=Console(quiet=True))
    (tmp_path / "in").mkdir()
    pf = pq.ParquetFile(whole)
    for g in range(pf.metadata.num_row_groups):
        pq.write_table(pf.read_row_group(g), tmp_path / "in" / f"part-{g}.parquet")
    zones, subjects = tmp_path / "zones.geojson", tmp_path / "subjects.csv"
    one = replay(tmp_path / "in", zones, subjects)
    dist = replay_distributed(tmp_path / "in", zones, subjects, scheduler="local:2")
    assert pf.metadata.num_row_groups == 4 and one.n_read == dist.n_read == 1_200_000
    assert {"forbidden_entry"} <= set(one.alerts.column("kind").to_pylist())
    assert dist.alerts.equals(one.alerts) and dist.stays.num_rows == one.stays.num_rows


def test_a_bucketed_copy_is_read_a_bucket_per_task_with_the_same_result(parts, tmp_path):
    folder, n = parts
    one = replay(folder, ZONES, SUBJECTS)
    result = CliRunner().invoke(app, ["bucket", str(folder), str(tmp_path / "b"), "--buckets", "3"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0 and f"{n:,} fixes written into 3 buckets" in result.output
    with pytest.raises(FileExistsError):
        bucket_input(folder, tmp_path / "b", 3)        # never into an existing copy
    assert sorted(d.name for d in (tmp_path / "b").iterdir()) == ["bucket=0", "bucket=1", "bucket=2"]
    dist = replay_distributed(tmp_path / "b", ZONES, SUBJECTS, scheduler="local:2")
    assert dist.alerts.equals(one.alerts) and len(dist.partition_seconds) == 3 and dist.n_read == n
    assert sorted((r["row"], r["reason"]) for r in dist.quarantine.to_pylist()) == \
        sorted((r["row"], r["reason"]) for r in one.quarantine.to_pylist())
    with pytest.raises(ValueError, match="3 buckets"):
        replay_distributed(tmp_path / "b", ZONES, SUBJECTS, scheduler="local:1", partitions=2)
