"""Exports with keyed pseudonyms: nothing in clear without the key, and a round trip back to the store's rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.errors import GeomonError
from geomon.io.export import export_table, load_key, pseudonym, reidentify, store_table
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore
from tests import scenario as sc

KEY = b"a test key of more than sixteen bytes"
MIN = 60_000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    t = sc.T0_MS + np.arange(0, 40 * MIN, 15_000)
    fixes = pa.concat_tables([sc.fixes("s1", np.full(t.size, sc.X0 + 2000.0), np.full(t.size, sc.Y0), t),
                              # s2 stays 20 minutes, then moves 500 m: a closed stay.
                              sc.fixes("s2", np.where(t < t[0] + 20 * MIN, sc.X0 - 2000.0, sc.X0 - 1500.0),
                                       np.full(t.size, sc.Y0), t)])
    db = tmp_path_factory.mktemp("export") / "store.duckdb"
    replay(fixes, sc.zones(), sc.subjects(3), db=db)
    return db


@pytest.mark.parametrize("what", ["alerts", "stays", "tracks"])
def test_parquet_round_trip_equals_the_store(store, tmp_path, what):
    with AlertStore(store, read_only=True) as s:
        table = store_table(s, what)
    assert table.num_rows > 0
    out = export_table(table, tmp_path / f"{what}.parquet", key=KEY)
    back = pq.read_table(out)
    assert "s1" not in set(back.column("subject_id").to_pylist())            # no clear id left
    assert set(back.column("subject_id").to_pylist()) <= {pseudonym(s, KEY) for s in ("s1", "s2", "s3")}
    assert reidentify(back, ["s1", "s2", "s3"], KEY).equals(table)


def test_csv_and_geojson_round_trip(store, tmp_path):
    with AlertStore(store, read_only=True) as s:
        alerts = store_table(s, "alerts")
    csv = pcsv.read_csv(export_table(alerts, tmp_path / "alerts.csv", key=KEY))
    assert (reidentify(csv, ["s1", "s2"], KEY).column("subject_id").to_pylist()
            == alerts.column("subject_id").to_pylist())
    geo = json.loads(export_table(alerts, tmp_path / "alerts.geojson", key=KEY).read_text())
    assert len(geo["features"]) == alerts.num_rows
    assert [f["geometry"]["coordinates"] for f in geo["features"]] == [
        [lo, la] for lo, la in zip(alerts.column("lon").to_pylist(), alerts.column("lat").to_pylist())]
    assert all(f["properties"]["subject_id"].startswith("p_") for f in geo["features"])


def test_clear_ids_need_the_key_and_the_key_is_never_written(store, tmp_path, monkeypatch):
    with AlertStore(store, read_only=True) as s:
        alerts = store_table(s, "alerts")
    with pytest.raises(GeomonError, match="needs the pseudonym key"):
        export_table(alerts, tmp_path / "a.parquet", clear_ids=True)
    clear = pq.read_table(export_table(alerts, tmp_path / "a.parquet", key=KEY, clear_ids=True))
    assert clear.equals(alerts)
    monkeypatch.delenv("GEOMON_PSEUDONYM_KEY", raising=False)
    with pytest.raises(GeomonError, match="no pseudonym key.*GEOMON_PSEUDONYM_KEY="):
        load_key()
    (tmp_path / "key").write_bytes(KEY + b"\n")
    assert load_key(tmp_path / "key") == KEY
    result = CliRunner().invoke(app, ["export", "alerts", "--db", str(store), "--out", str(tmp_path / "x.csv"),
                                      "--key-file", str(tmp_path / "key")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "x.csv").read_text()
    assert KEY.decode() not in text and '"s1"' not in text and pseudonym("s1", KEY) in text
    with AlertStore(store, read_only=True) as s:
        tables = s._cursor().sql("SELECT table_name FROM information_schema.tables").fetchall()
        for (name,) in tables:
            dump = s._cursor().sql(f'SELECT * FROM "{name}"').fetchall()
            assert KEY.decode() not in repr(dump)
