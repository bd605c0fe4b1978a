"""geomon replay on Dask (geomon/run/distributed.py): on a local cluster of two workers, the alerts, stays and
quarantine equal a single-machine replay's."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.run.distributed import bucket_input, partition_of, replay_distributed
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore

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


def test_the_command_runs_on_a_local_cluster(parts, tmp_path):
    folder, _ = parts
    args = ["replay", str(folder), "--zones", str(ZONES), "--subjects", str(SUBJECTS), "--dask", "local:2"]
    result = CliRunner().invoke(app, [*args, "--db", str(tmp_path / "c.duckdb")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "read = accepted + quarantined" in result.output and "partitions" in result.output
    written = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "parquet")], env={"COLUMNS": "200"})
    assert written.exit_code == 0, written.output
    assert pq.read_table(tmp_path / "parquet" / "alerts").num_rows > 100


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


# ---------------------------------------------------------------- encounters, by time window

#: The chunk-invariance stream (tests/engine/test_chunk_invariance.py): six subjects' day raising every kind,
#: with P1 walking three times beside S0001 (frequent contact) and V1, protected from S0168, 20 m from it once
#: (both victim kinds).
MEET_DETECTORS = ("lost_contact", "checkins", "stays", "night")


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def meetings(tmp_path_factory):
    """The stream in three files, and its single-machine replay."""
    from tests.engine.test_chunk_invariance import CONCERN, ORDERS, _stream

    t = _stream()
    folder = tmp_path_factory.mktemp("meet")
    n = t.num_rows
    for i in range(3):
        pq.write_table(t.slice(i * n // 3, (i + 1) * n // 3 - i * n // 3), folder / f"f{i}.parquet")
    one = replay(folder, ZONES, SUBJECTS, concern=CONCERN, protections=ORDERS, detectors=MEET_DETECTORS)
    return folder, one, CONCERN, ORDERS


def test_encounters_split_by_time_window_give_the_single_machine_alerts(meetings, cluster, tmp_path):
    folder, one, concern, orders = meetings
    kinds = set(one.alerts.column("kind").to_pylist())
    assert {"frequent_contact", "victim_warning", "victim_breach"} <= kinds and len(kinds) == 11
    # A day per window (one), ten minutes (a meeting spans windows), and 150 s: shorter than the overlap a window
    # reads (2 * max_gap_s), which then reaches back over several windows.
    for window_s, partitions in ((86_400.0, 3), (600.0, 2), (150.0, 4)):
        dist = replay_distributed(folder, ZONES, SUBJECTS, scheduler=cluster, partitions=partitions,
                                  concern=concern, protections=orders, detectors=MEET_DETECTORS,
                                  encounter_window_s=window_s)
        assert dist.alerts.equals(one.alerts), window_s
    out = tmp_path / "out"
    dist = replay_distributed(folder, ZONES, SUBJECTS, scheduler=cluster, partitions=2, concern=concern,
                              protections=orders, detectors=MEET_DETECTORS, encounter_window_s=3_600.0, out=out,
                              db=None)
    assert (out / "alerts" / "part-meetings.parquet").exists()
    assert dist.alerts.cast(one.alerts.schema).equals(one.alerts)


def test_encounter_windows_need_their_overlap(meetings, cluster, monkeypatch):
    """Without the overlap (positions before the window) a window misses stretches crossing into it: the test
    above can fail."""
    import geomon.run.distributed as gd

    folder, one, concern, orders = meetings
    monkeypatch.setattr(gd, "OVERLAP_GAPS", 0)
    dist = replay_distributed(folder, ZONES, SUBJECTS, scheduler=cluster, partitions=2, concern=concern,
                              protections=orders, detectors=MEET_DETECTORS, encounter_window_s=600.0)
    assert not dist.alerts.equals(one.alerts)


def test_the_whole_sample_with_persons_of_concern_and_protection_orders(cluster, tmp_path):
    """The sample county (300 subjects) with eight persons of concern (two of concern to every subject) and four
    protection orders; in four files, over two workers, a window of six hours."""
    import numpy as np

    from tests.scenario import companion

    t = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    rng = np.random.default_rng(11)
    ids = sorted(set(t.column("subject_id").to_pylist()))
    t0 = int(t.column("ts").cast(pa.int64()).to_numpy().min())
    walks, concern, orders = [t], {}, []
    for i in range(8):
        s = ids[rng.integers(len(ids))]
        starts = sorted(t0 + rng.integers(0, 22 * 3_600_000, size=4 if i % 2 else 2))
        walks.append(companion(t, s, f"P{i}", starts, float(rng.uniform(2, 20))))
        concern[f"P{i}"] = None if i < 2 else [s]
    for i in range(4):
        s = ids[rng.integers(len(ids))]
        walks.append(companion(t, s, f"V{i}", [t0 + int(rng.integers(0, 22 * 3_600_000))], 15.0 if i < 2 else 150.0))
        orders.append({"subject_id": s, "victim_id": f"V{i}", "warning_m": 300.0, "alert_m": 50.0})
    t = pa.concat_tables(walks).sort_by([("ts", "ascending")])
    n = t.num_rows
    for i in range(4):
        pq.write_table(t.slice(i * n // 4, (i + 1) * n // 4 - i * n // 4), tmp_path / f"f{i}.parquet")
    one = replay(tmp_path, ZONES, SUBJECTS, concern=concern, protections=orders)
    dist = replay_distributed(tmp_path, ZONES, SUBJECTS, scheduler=cluster, partitions=4, concern=concern,
                              protections=orders, encounter_window_s=6 * 3_600.0, db=tmp_path / "d.duckdb")
    kinds = one.alerts.column("kind").to_pylist()
    assert kinds.count("frequent_contact") >= 1 and kinds.count("victim_warning") >= 2 and "victim_breach" in kinds
    assert dist.alerts.equals(one.alerts) and dist.n_read == one.n_read == n
    assert dist.quarantine.num_rows == one.quarantine.num_rows


def test_the_command_replays_encounters_on_dask(meetings, cluster, tmp_path):
    folder, one, _, _ = meetings
    (tmp_path / "concern.csv").write_text("person_id,subject_id\nP1,S0001\n")
    (tmp_path / "orders.csv").write_text("subject_id,victim_id,warning_m,alert_m\nS0168,V1,300,50\n")
    result = CliRunner().invoke(app, ["replay", str(folder), "--zones", str(ZONES), "--subjects", str(SUBJECTS),
                                      "--dask", cluster, "--concern", str(tmp_path / "concern.csv"),
                                      "--protections", str(tmp_path / "orders.csv"), "--encounter-window", "2",
                                      "--detectors", ",".join(MEET_DETECTORS), "--db", str(tmp_path / "m.duckdb")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(k in result.output for k in ("frequent_contact", "victim_warning", "victim_breach"))
    with AlertStore(tmp_path / "m.duckdb", read_only=True) as store:
        assert store.list_alerts().num_rows == one.alerts.num_rows
