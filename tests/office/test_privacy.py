"""Privacy by default: error messages and the command line's summaries name no subject in clear."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.engine.meetings import MeetingWatch
from geomon.engine.victims import victim_alerts
from geomon.geo.crs import transverse_mercator
from geomon.rules.load import default_rules

SECRET = "S-7781-ZHANG"   # an id that must not be printed


def test_errors_about_protection_orders_name_the_order_not_the_subject():
    bad = [{"subject_id": SECRET, "victim_id": "V1", "warning_m": 10.0, "alert_m": 50.0}]
    with pytest.raises(ValueError) as info:
        victim_alerts(pa.table({"subject_id": [SECRET], "ts": pa.array([0], pa.timestamp("ms", "UTC")),
                                "lon": [117.0], "lat": [36.0]}), bad)
    assert "protection order 0" in str(info.value) and SECRET not in str(info.value)
    profile = default_rules().profile("ordinary")
    unknown = [{"subject_id": SECRET, "victim_id": "V1", "warning_m": 100.0, "alert_m": 50.0}]
    with pytest.raises(ValueError) as info:
        MeetingWatch(["S1"], ["ordinary"], ["o"], [profile], protections=unknown, frame=transverse_mercator(117.0))
    assert "protection order 0" in str(info.value) and SECRET not in str(info.value)


def test_a_replay_summary_names_no_subject(tmp_path):
    t = pq.read_table(SAMPLE_DIR / "fixes.parquet").slice(0, 2_000)
    ids = t.column("subject_id").to_pylist()
    ids[5] = SECRET                                        # not on the roster: quarantined as subject_unknown
    t = t.set_column(0, "subject_id", pa.array(ids, pa.string()))
    pq.write_table(t, tmp_path / "fixes.parquet")
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "fixes.parquet"), "--zones",
                                      str(SAMPLE_DIR / "zones.geojson"), "--subjects",
                                      str(SAMPLE_DIR / "subjects.csv"), "--db", str(tmp_path / "s.duckdb")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "subject_unknown" in result.output and SECRET not in result.output
