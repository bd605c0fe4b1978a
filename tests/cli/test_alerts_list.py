"""`geomon alerts list` as an operator reads it: the newest alerts, a short id that the lifecycle commands take,
local times with their zone named, readable at 80 columns, and csv/json for pipes."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.store.alert_store import ALERT_SCHEMA, AlertStore

BASE_MS = 1_761_955_200_000        # 2025-11-01T00:00:00Z, 08:00 in China
KINDS = ("location_degraded", "forbidden_entry", "night_activity", "curfew_breach")


def _row(i: int) -> dict:
    return {"alert_id": f"{i:04x}" + "ab" * 8, "kind": KINDS[i % 4], "severity": "high",
            "subject_id": f"subject-{i:03d}", "zone_id": f"forbidden-{i:04d}", "office_id": f"office-{i % 12:02d}",
            "location_office_id": f"office-{(i + 1) % 12:02d}", "onset_ts": BASE_MS + 3_600_000 * i,
            "confirmed_ts": BASE_MS + 3_600_000 * i + 30_000, "ended_ts": None,
            "emitted_at": BASE_MS + 3_600_000 * i + 31_000, "lon": 117.0, "lat": 37.5, "accuracy_m": 4.0,
            "probability": 0.99, "details": "{}", "run_id": "r"}


def alert_store(path, n: int):
    """A store at ``path`` holding alerts ``_row(0)`` .. ``_row(n - 1)``."""
    with AlertStore(path) as store:
        store.write_alerts(pa.Table.from_pylist([_row(i) for i in range(n)], schema=ALERT_SCHEMA))
    return path


@pytest.fixture()
def db(tmp_path):
    return alert_store(tmp_path / "alerts.duckdb", 60)


def _list(db, *args, columns=80):
    result = CliRunner().invoke(app, ["alerts", "list", "--db", str(db), *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_newest_alerts_come_first_even_beyond_the_limit(db):
    out = _list(db, "--limit", "5")
    shown = [line.split()[0] for line in out.splitlines() if line.strip().endswith("open")]
    assert shown == [f"{i:04x}abababab"[:10] for i in (59, 58, 57, 56, 55)]


def test_times_are_local_with_the_zone_named_and_overridable(db):
    out = _list(db, "--limit", "1")
    # Alert 59: onset 2025-11-03 11:00 UTC, 19:00 in China.
    assert "2025-11-03 19:00" in out and "Asia/Shanghai, UTC+08:00" in out
    utc = _list(db, "--limit", "1", "--tz", "+00:00")
    assert "2025-11-03 11:00" in utc and "UTC+00:00" in utc


def test_readable_at_80_columns_nothing_cut(db):
    out = _list(db, "--limit", "60", columns=80)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    for kind in KINDS:                  # whole, never office… or night_…
        assert kind in out
    assert "office-11" in out and "subject-059" in out


def test_the_short_id_shown_is_what_ack_takes(db):
    out = _list(db, "--limit", "1", "--kind", "curfew_breach")
    short = next(line.split()[0] for line in out.splitlines() if line.strip().endswith("open"))
    assert len(short) == 10
    acked = CliRunner().invoke(app, ["alerts", "ack", short, "--db", str(db), "--by", "officer Li"],
                               env={"COLUMNS": "80"})
    assert acked.exit_code == 0, acked.output
    with AlertStore(db, read_only=True) as store:
        full = [r for r in store.list_alerts(status="acknowledged").to_pylist()]
    assert [r["alert_id"][:10] for r in full] == [short]
    ambiguous = CliRunner().invoke(app, ["alerts", "ack", "abababab", "--db", str(db)])
    assert ambiguous.exit_code == 1 and "unknown alert_id" in ambiguous.output
    short_prefix = CliRunner().invoke(app, ["alerts", "ack", "003", "--db", str(db)])
    assert short_prefix.exit_code == 1 and "too short" in short_prefix.output


def test_csv_and_json_carry_every_column_with_offset_times(db):
    rows = list(csv.DictReader(io.StringIO(_list(db, "--format", "csv", "--limit", "3"))))
    assert [r["alert_id"] for r in rows] == [_row(i)["alert_id"] for i in (59, 58, 57)]
    assert rows[0]["onset_ts"] == "2025-11-03T19:00:00+08:00" and rows[0]["location_office_id"] == "office-00"
    lines = _list(db, "--format", "json", "--limit", "2", "--tz", "+00:00").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 2 and first["alert_id"] == _row(59)["alert_id"]
    assert datetime.fromisoformat(first["onset_ts"]) == datetime(2025, 11, 3, 11, tzinfo=timezone.utc)


def test_an_ambiguous_short_id_is_refused_naming_the_candidates(tmp_path):
    from geomon.store.alert_store import LifecycleError

    rows = [{**_row(i), "alert_id": f"abcdef{i:04d}" + "0" * 10} for i in range(2)]
    with AlertStore(tmp_path / "a.duckdb") as store:
        store.write_alerts(pa.Table.from_pylist(rows, schema=ALERT_SCHEMA))
        with pytest.raises(LifecycleError, match="ambiguous.*abcdef0000.*abcdef0001"):
            store.resolve_alert_id("abcdef")
        assert store.resolve_alert_id("ABCDEF0001") == rows[1]["alert_id"]


def test_every_summary_table_wraps_rather_than_cuts_at_80_columns():
    """demo, replay, sla and near print through one table helper: a cell too wide wraps, whole."""
    from rich.console import Console

    from geomon.cli.report import _table

    cells = ["location_office_id", "night_activity", "night_stay", "office-supervising-07", "permitted_exit"]
    console = Console(width=80, record=True)
    console.print(_table("t", [f"column {c}" for c in cells], [cells, cells[::-1]]))
    out = console.export_text()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    # Not a letter lost: every character of the title, the headers and the cells is on the screen.
    written = "t" + "".join(f"column {c}" for c in cells) + 2 * "".join(cells)
    assert sum(ch.isalnum() for ch in out) == sum(ch.isalnum() for ch in written)
