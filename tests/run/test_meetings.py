"""geomon contacts: persons of concern and protection orders from files, alerts into a store."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.errors import InputError
from geomon.run.meetings import load_concern, load_protections
from geomon.sim.meetings import add_meetings
from geomon.sim.scenarios import scenario
from geomon.store.alert_store import AlertStore

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


def test_concern_lists_map_people_to_subjects(tmp_path):
    path = tmp_path / "concern.csv"
    path.write_text("person_id,subject_id\nP1,S0001\nP1,S0002\nP2,\nP3,S0004\nP3,\n")
    assert load_concern(path) == {"P1": ["S0001", "S0002"], "P2": None, "P3": None}
    path.write_text("person_id,subject_id\nP1,\n,S0001\n")
    with pytest.raises(InputError, match="person_id is empty") as info:
        load_concern(path)
    assert info.value.row == 1


def test_protection_orders_are_checked_row_by_row(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("subject_id,victim_id,warning_m,alert_m\nS0001,V1,500,200\n")
    assert load_protections(path) == [{"subject_id": "S0001", "victim_id": "V1", "warning_m": 500.0,
                                       "alert_m": 200.0}]
    path.write_text("subject_id,victim_id,warning_m,alert_m\nS0001,V1,500,200\nS0002,V2,100,300\n")
    with pytest.raises(InputError, match="larger than warning_m") as info:
        load_protections(path)
    assert (info.value.row, info.value.field) == (1, "alert_m")
    path.write_text("subject_id,victim_id,warning_m,alert_m\nS0001,V1,-5,1\n")
    with pytest.raises(InputError, match="positive"):
        load_protections(path)


def _case(tmp_path):
    sc = scenario("open_sky", n_subjects=6, hours=60.0, seed=9)
    t = lambda day, hour: sc.start_ms + day * DAY + hour * HOUR   # noqa: E731
    plan = [*[("meet", "S0006", "S0001", t(d, 10), 20 * MIN) for d in range(2)],   # S0006: a person of concern
            ("meet", "S0005", "S0002", t(1, 15), 10 * MIN)]                         # S0005: S0002's victim
    fixes, _, _ = add_meetings(sc, plan, seed=9)
    pq.write_table(fixes, tmp_path / "fixes.parquet")
    supervised = sc.subjects.filter(pc.is_in(sc.subjects.column("subject_id"),
                                             value_set=pa.array(["S0001", "S0002", "S0003", "S0004"])))
    supervised = supervised.set_column(1, "level", pa.array(["strict"] * 4))   # 2 meetings alert
    pq.write_table(supervised, tmp_path / "subjects.parquet")
    (tmp_path / "concern.csv").write_text("person_id,subject_id\nS0006,\n")
    (tmp_path / "orders.csv").write_text("subject_id,victim_id,warning_m,alert_m\nS0002,S0005,300,50\n")
    (tmp_path / "zones.geojson").write_text(json.dumps(sc.zones))


def test_the_command_writes_frequent_contact_and_victim_alerts(tmp_path):
    _case(tmp_path)
    db = tmp_path / "store.duckdb"
    args = ["meetings", str(tmp_path / "fixes.parquet"), "--subjects", str(tmp_path / "subjects.parquet"),
            "--concern", str(tmp_path / "concern.csv"), "--protections", str(tmp_path / "orders.csv"), "--db", str(db)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with AlertStore(db, read_only=True) as store:
        got = sorted((r["kind"], r["subject_id"]) for r in store.list_alerts().to_pylist())
    assert got == [("frequent_contact", "S0001"), ("victim_breach", "S0002"), ("victim_warning", "S0002")]
    bad = CliRunner().invoke(app, ["contacts", str(tmp_path / "fixes.parquet"), "--subjects",
                                   str(tmp_path / "subjects.parquet")])
    assert bad.exit_code == 1 and "give --concern" in bad.output


def test_replay_and_watch_raise_the_same_contact_alerts_as_the_batch_command(tmp_path):
    """The live engine (replay's batches, watch's micro-batches) finds what ``geomon meetings`` finds."""
    _case(tmp_path)
    common = ["--zones", str(tmp_path / "zones.geojson"), "--subjects", str(tmp_path / "subjects.parquet"),
              "--concern", str(tmp_path / "concern.csv"), "--protections", str(tmp_path / "orders.csv")]
    (tmp_path / "in").mkdir()
    fixes = pq.read_table(tmp_path / "fixes.parquet").sort_by("ts")
    for i in range(9):               # a file every 6 hours or so
        pq.write_table(fixes.slice(i * 10_000, 10_000), tmp_path / "in" / f"f{i}.parquet")
    runs = {"contacts": ["contacts", str(tmp_path / "fixes.parquet"), *common[2:]],
            "replay": ["replay", str(tmp_path / "fixes.parquet"), *common, "--batch-rows", "7000"],
            "watch": ["watch", str(tmp_path / "in"), *common, "--once", "--clock", "event"]}
    got = {}
    for name, args in runs.items():
        db = tmp_path / f"{name}.duckdb"
        result = CliRunner().invoke(app, [*args, "--db", str(db)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        with AlertStore(db, read_only=True) as store:
            rows = store.list_alerts().to_pylist()
        got[name] = sorted((r["kind"], r["subject_id"], round(r["onset_ts"].timestamp(), 1)) for r in rows
                           if r["kind"] in ("frequent_contact", "victim_warning", "victim_breach"))
    assert fixes.num_rows < 90_000 and len(got["contacts"]) == 3
    assert got["replay"] == got["watch"] == got["contacts"]
