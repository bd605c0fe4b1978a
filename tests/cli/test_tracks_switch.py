"""`geomon replay --no-tracks`: the same alerts and stays, and no fused track in the store."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.store.alert_store import AlertStore
from tests import scenario as sc

EVER = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


def _stored(db):
    with AlertStore(db, read_only=True) as store:
        alerts = store.list_alerts(limit=None).select(["alert_id", "kind", "subject_id", "onset_ts"])
        tracks = store.list_tracks(*EVER)
    return alerts.sort_by("alert_id"), tracks


def test_no_tracks_stores_the_same_alerts_and_no_track(tmp_path):
    sc.write_county(tmp_path)
    walks = pa.concat_tables([sc.walk("s1", (sc.X0 + 1500, sc.Y0), (sc.X0 + 2500, sc.Y0)),
                              sc.walk("s2", (sc.X0, sc.Y0 + 4500), (sc.X0, sc.Y0 + 6000))])
    pq.write_table(walks, tmp_path / "fixes.parquet")
    files = ["--zones", str(tmp_path / "zones.geojson"), "--subjects", str(tmp_path / "subjects.csv")]
    for name, flag in (("with", "--tracks"), ("without", "--no-tracks")):
        result = CliRunner().invoke(app, ["replay", str(tmp_path / "fixes.parquet"), *files,
                                          "--db", str(tmp_path / f"{name}.duckdb"), flag])
        assert result.exit_code == 0, result.output
    with_alerts, with_tracks = _stored(tmp_path / "with.duckdb")
    without_alerts, without_tracks = _stored(tmp_path / "without.duckdb")
    assert with_alerts.num_rows > 0 and with_alerts.equals(without_alerts)
    assert with_tracks.num_rows == walks.num_rows and without_tracks.num_rows == 0
