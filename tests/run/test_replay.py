"""Replay end to end: files in, DuckDB out, idempotent; and the CLI around it."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore
from tests import scenario as sc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("county")
    zones = sc.zones()
    feats = []
    for zid, kind, geom, props in zip(zones.zone_id, zones.kind, zones.geometry, zones.properties.to_pylist()):
        props = {k: v for k, v in props.items() if v is not None}
        feats.append({"type": "Feature", "properties": props,
                      "geometry": json.loads(__import__("shapely").to_geojson(geom))})
    (d / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    pacsv.write_csv(sc.subjects(3).table.drop_columns(["home_zone_id"]), d / "subjects.csv")
    X0, Y0 = sc.X0, sc.Y0
    fixes = pa.concat_tables([
        sc.walk("s1", (X0 + 1500, Y0), (X0 + 2500, Y0)),            # through the bar
        sc.walk("s2", (X0, Y0 + 4500), (X0, Y0 + 6000)),            # out of the county
        sc.walk("s3", (X0 - 2000, Y0), (X0 - 1000, Y0)),            # nothing
        sc.fixes("ghost", [X0], [Y0], [sc.T0_MS]),                  # unknown subject
    ])
    bad = pa.table({"subject_id": ["s3"], "ts": pa.array([sc.T0_MS], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                    "lon": [float("nan")], "lat": [37.5], "source": ["gnss"],
                    "accuracy_m": pa.array([3.0], pa.float32())})
    pq.write_table(pa.concat_tables([fixes, bad]), d / "fixes.parquet")
    return d


def test_replay_twice_into_the_same_database_adds_nothing(files, tmp_path):
    db = tmp_path / "alerts.duckdb"
    args = (files / "fixes.parquet", files / "zones.geojson", files / "subjects.csv")
    first = replay(*args, db=db, batch_rows=7)
    assert first.n_read == first.n_accepted + first.n_quarantined
    assert sorted(first.quarantine.column("reason").to_pylist()) == ["lon_not_finite", "subject_unknown"]
    assert sorted(first.alerts.column("kind").to_pylist()) == ["forbidden_entry", "permitted_exit"]
    assert first.new_alert_rows == 2
    second = replay(*args, db=db, batch_rows=1000)
    assert second.new_alert_rows == 0
    with AlertStore(db, read_only=True) as store:
        stored = store.list_alerts()
        assert stored.num_rows == 2
        assert store.runs().num_rows == 2
    assert first.alerts.drop_columns([]).to_pylist() == second.alerts.to_pylist()


def test_cli_replay_prints_summary_and_alerts_list_reads_it(files, tmp_path):
    runner = CliRunner()
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(app, ["replay", str(files / "fixes.parquet"), "--zones", str(files / "zones.geojson"),
                                 "--subjects", str(files / "subjects.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "forbidden_entry" in result.output and "permitted_exit" in result.output
    assert "fixes per second" in result.output
    listed = runner.invoke(app, ["alerts", "list", "--db", str(db), "--kind", "permitted_exit"])
    assert listed.exit_code == 0, listed.output
    assert "s2" in listed.output and "s1" not in listed.output
    nowhere = runner.invoke(app, ["alerts", "list", "--db", str(db), "--where-office", "no-such-office"])
    assert nowhere.exit_code == 0 and "0 alerts" in nowhere.output


def test_cli_errors_are_one_line_and_exit_1(files, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["replay", str(tmp_path / "missing.parquet"), "--zones", str(files / "zones.geojson"),
                                 "--subjects", str(files / "subjects.csv")])
    assert result.exit_code == 1
    assert "missing.parquet" in result.output
    assert "Traceback" not in result.output
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("hello")
    result = runner.invoke(app, ["replay", str(not_parquet), "--zones", str(files / "zones.geojson"),
                                 "--subjects", str(files / "subjects.csv")])
    assert result.exit_code == 1 and "x.parquet" in result.output and "Traceback" not in result.output


def test_every_command_has_help():
    runner = CliRunner()
    for cmd in (["--help"], ["simulate", "--help"], ["replay", "--help"], ["demo", "--help"],
                ["alerts", "list", "--help"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 0, cmd


def test_replay_with_dwell_writes_the_stays_once(tmp_path):
    X0, Y0 = sc.X0, sc.Y0
    t = sc.T0_MS + np.arange(0, 30 * 60_000, 60_000)          # 20 minutes still, then 200 m east for 10
    rng = np.random.default_rng(3)
    x = np.r_[X0 - 1000.0 + rng.uniform(-3, 3, 20), np.full(10, X0 - 800.0)]
    fixes = sc.fixes("s3", x, np.full(t.size, Y0), t)
    db = tmp_path / "stays.duckdb"
    args = (fixes, sc.zones(), sc.subjects(3))
    # Stays need the stays detector.
    assert replay(*args, db=db, batch_rows=5, detectors=("lost_contact",)).stays.num_rows == 0
    first = replay(*args, db=db, batch_rows=5, detectors=("lost_contact", "stays"))
    rows = first.stays.to_pylist()
    assert [(r["subject_id"], r["ended_by"]) for r in rows] == [("s3", "moved")]
    # Fused positions: the stay ends at the first fused fix 50 m from its start, once the filter follows the move.
    finished = int(rows[0]["finished_at"].timestamp() * 1000)
    assert rows[0]["started_at"].timestamp() * 1000 == t[0] and finished in t[20:]
    assert rows[0]["n_fixes"] == np.searchsorted(t, finished)
    lon, lat = sc.FRAME.unproject(np.array([X0 - 1000.0]), np.array([Y0]))
    assert abs(rows[0]["lon"] - lon[0]) < 1e-4 and abs(rows[0]["lat"] - lat[0]) < 1e-4
    assert first.new_stay_rows == 1 and rows[0]["run_id"] == first.run_id
    again = replay(*args, db=db, batch_rows=7, detectors=("lost_contact", "stays"))
    assert again.new_stay_rows == 0
    with AlertStore(db, read_only=True) as store:
        stored = store.list_stays()
    assert stored.drop_columns(["run_id"]).to_pylist() == first.stays.drop_columns(["run_id"]).to_pylist()
    assert stored.column("run_id").to_pylist() == [first.run_id]
