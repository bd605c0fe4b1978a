"""The --accuracy option of the commands that load fixes: a bad value is one line naming the option, and a replay
or a watch of 68 % radii stores what the same fixes given as per-axis sigma store."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.store.alert_store import AlertStore
from tests import scenario as sc

#: Radius of 68 % of a circular 2-D Gaussian in per-axis sigmas (Rayleigh quantile).
R68_PER_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.68))
REPORTED_M = 15.0
EVER = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


def _with_accuracy(table: pa.Table, accuracy_m: float) -> pa.Table:
    i = table.schema.get_field_index("accuracy_m")
    return table.set_column(i, "accuracy_m", pa.array(np.full(table.num_rows, accuracy_m, np.float32)))


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """Zones, subjects, and two walks as a phone reports them (68 % radius) and as per-axis sigma."""
    d = tmp_path_factory.mktemp("accuracy")
    sc.write_county(d)
    walks = pa.concat_tables([sc.walk("s1", (sc.X0 + 1500, sc.Y0), (sc.X0 + 2500, sc.Y0)),    # through the bar
                              sc.walk("s2", (sc.X0, sc.Y0 + 4500), (sc.X0, sc.Y0 + 6000))])   # out of the county
    pq.write_table(_with_accuracy(walks, REPORTED_M), d / "reported.parquet")
    pq.write_table(_with_accuracy(walks, REPORTED_M / R68_PER_SIGMA), d / "converted.parquet")
    return d


def _files(d) -> list[str]:
    return ["--zones", str(d / "zones.geojson"), "--subjects", str(d / "subjects.csv")]


def _tracks(db) -> pa.Table:
    with AlertStore(db, read_only=True) as store:
        return store.list_tracks(*EVER).select(["subject_id", "ts", "sigma_m"])


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _commands(d, db):
    return {
        "replay": ["replay", d / "reported.parquet", *_files(d), "--db", db],
        "watch": ["watch", d, *_files(d), "--db", db, "--once"],
        "meetings": ["meetings", d / "reported.parquet", "--subjects", d / "subjects.csv", "--concern",
                     d / "subjects.csv"],
    }


@pytest.mark.parametrize("command", ["replay", "watch", "meetings"])
def test_a_bad_accuracy_is_one_line_naming_the_option_before_anything_is_done(county, tmp_path, command):
    db = tmp_path / "never.duckdb"
    result = CliRunner().invoke(app, [str(a) for a in _commands(county, db)[command]] + ["--accuracy", "bogus"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "--accuracy" in lines[0] and "'bogus'" in lines[0] and "r68" in lines[0] and "hdop" in lines[0]
    assert not db.exists()


def test_a_uere_without_hdop_is_one_line_naming_it(county, tmp_path):
    args = [str(a) for a in _commands(county, tmp_path / "x.duckdb")["replay"]]
    result = CliRunner().invoke(app, args + ["--accuracy", "r68", "--uere-m", "4"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "--uere-m" in result.output


def test_the_help_lists_every_kind():
    for command in ("replay", "watch", "meetings"):
        text = " ".join(CliRunner().invoke(app, [command, "--help"]).output.split())
        assert "--accuracy" in text and "--uere-m" in text
        for kind in ("sigma", "r68", "cep", "r50", "r95", "hdop"):
            assert kind in text, (command, kind)


def test_replay_with_r68_stores_the_sigma_of_the_converted_fixes(county, tmp_path):
    _invoke(["replay", county / "reported.parquet", *_files(county), "--db", tmp_path / "r68.duckdb",
             "--accuracy", "r68"])
    _invoke(["replay", county / "converted.parquet", *_files(county), "--db", tmp_path / "sigma.duckdb"])
    _invoke(["replay", county / "reported.parquet", *_files(county), "--db", tmp_path / "as-sigma.duckdb"])
    r68, sigma, unconverted = (_tracks(tmp_path / f"{n}.duckdb") for n in ("r68", "sigma", "as-sigma"))
    assert r68.num_rows == sigma.num_rows > 20
    assert r68.column("ts").equals(sigma.column("ts"))
    np.testing.assert_allclose(r68.column("sigma_m").to_numpy(), sigma.column("sigma_m").to_numpy(), rtol=1e-5)
    # Read as sigma the same numbers give another, vaguer, track: the option is what made the difference.
    assert unconverted.column("sigma_m").to_numpy().mean() > 1.2 * r68.column("sigma_m").to_numpy().mean()


def _json_lines(table: pa.Table) -> str:
    rows = table.to_pylist()
    for r in rows:
        r["ts"] = int(r["ts"].timestamp() * 1000)
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def test_watch_with_r68_converts_files_and_json_lines_once(county, tmp_path):
    dbs = {}
    for name, kind in (("reported", "r68"), ("converted", "sigma")):
        folder = tmp_path / name
        folder.mkdir()
        table = pq.read_table(county / f"{name}.parquet").sort_by("ts")
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), folder / "a.parquet")
        (folder / "b.jsonl").write_text(_json_lines(table.slice(half)))
        dbs[name] = tmp_path / f"{name}.duckdb"
        _invoke(["watch", folder, *_files(county), "--db", dbs[name], "--once", "--clock", "event",
                 "--accuracy", kind])
    r68, sigma = _tracks(dbs["reported"]), _tracks(dbs["converted"])
    assert r68.num_rows == sigma.num_rows > 20
    np.testing.assert_allclose(r68.column("sigma_m").to_numpy(), sigma.column("sigma_m").to_numpy(), rtol=1e-5)
    # A stream checkpointed with r68 is not resumed as sigma: that would mix two meanings of accuracy_m.
    again = CliRunner().invoke(app, ["watch", str(tmp_path / "reported"), *map(str, _files(county)), "--db",
                                     str(dbs["reported"]), "--once", "--clock", "event"])
    assert again.exit_code == 1 and "another configuration" in again.output
