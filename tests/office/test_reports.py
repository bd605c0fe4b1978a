"""Office reports from a replay of the sample: daily (morning, noon, evening) and monthly, in three formats."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.io.export import pseudonym
from geomon.office.reports import daily_report, period_report, render
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore

CST = timezone(timedelta(hours=8))
KEY = b"a report key of at least sixteen bytes"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    db = tmp_path_factory.mktemp("reports") / "store.duckdb"
    replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv", db=db)
    return db


def _busiest(store):
    alerts = store.list_alerts().to_pylist()
    office, _ = Counter(a["office_id"] for a in alerts).most_common(1)[0]
    day = Counter(a["onset_ts"].astimezone(CST).date() for a in alerts if a["office_id"] == office).most_common(1)[0][0]
    return office, day, [a for a in alerts if a["office_id"] == office]


def test_daily_report_holds_what_the_store_holds(store_path):
    with AlertStore(store_path, read_only=True) as store:
        office, day, mine = _busiest(store)
        report = daily_report(store, office, day, key=KEY)
    today = [a for a in mine if a["onset_ts"].astimezone(CST).date() == day]
    assert report["evening"]["alerts_by_kind"] == dict(Counter(a["kind"] for a in today))
    assert sum(report["evening"]["alerts_by_status"].values()) == len(today)
    morning = datetime.combine(day, time(6), CST)
    noon = datetime.combine(day, time(12), CST)
    want = {pseudonym(a["subject_id"], KEY) for a in today if morning <= a["onset_ts"] < noon}
    assert set(report["noon"]["subjects_with_alerts"]) == want
    # Pseudonyms only: no subject id of the office in clear anywhere in the report.
    text = render(report, "json")
    assert not any(f'"{a["subject_id"]}"' in text for a in mine)
    assert report["evening"]["service_levels"]["n_alerts"] == len(today)


def test_formats_and_commands(store_path, tmp_path, monkeypatch):
    with AlertStore(store_path, read_only=True) as store:
        office, day, mine = _busiest(store)
        data = daily_report(store, office, day, key=KEY)
        month = period_report(store, office, "month", date(day.year, day.month, 1))
    md, page = render(data, "md"), render(data, "html")
    assert md.startswith("# Report:") and "## morning" in md and "## evening" in md
    assert page.startswith("<!doctype html>") and "<h2>noon</h2>" in page
    assert json.loads(render(data, "json"))["office_id"] == office
    assert sum(month["alerts_by_kind"].values()) == len(mine)   # the sample is one day of one month
    with pytest.raises(ValueError, match="format must be"):
        render(data, "pdf")
    monkeypatch.setenv("GEOMON_PSEUDONYM_KEY", KEY.decode())
    out = tmp_path / "daily.html"
    result = CliRunner().invoke(app, ["report", "daily", "--db", str(store_path), "--office", office,
                                      "--date", day.isoformat(), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "<h2>evening</h2>" in out.read_text()
    result = CliRunner().invoke(app, ["report", "period", "--db", str(store_path), "--office", office,
                                      "--start", date(day.year, day.month, 1).isoformat(), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["period"] == "month"


def test_checkins_due_follow_level_and_special_period(tmp_path):
    """The morning reminder's deadlines: the level's ``checkin_due``, replaced by a period's in force at it."""
    from geomon.office.reports import checkins_due
    from geomon.rules.load import default_rules_text, load_rules

    rules_text = default_rules_text()
    rules_text = rules_text.replace('[profiles.strict]\ninherits = "ordinary"\n',
                                    '[profiles.strict]\ninherits = "ordinary"\ncheckin_due = "18:00"\n')
    rules_text += ('\n[[periods]]\nname = "congress"\nstart = "2026-11-03T00:00"\nend = "2026-11-04T00:00"\n'
                   'overrides = { checkin_due = "12:00" }\noffices = ["office-a"]\n')
    path = tmp_path / "rules.toml"
    path.write_text(rules_text, encoding="utf-8")
    rules = load_rules(path)
    roster = tmp_path / "subjects.csv"
    roster.write_text("subject_id,level,office_id,home_zone_id\nS2,ordinary,office-a,h2\nS1,strict,office-a,h1\n"
                      "S3,strict,office-b,h3\n", encoding="utf-8")
    plain = checkins_due(roster, rules, "office-a", date(2026, 11, 2))
    assert [(r["subject_id"], r["due"], r["period"]) for r in plain] == [("S1", "18:00", None), ("S2", "20:00", None)]
    during = checkins_due(roster, rules, "office-a", date(2026, 11, 3))
    assert [(r["subject_id"], r["due"], r["period"]) for r in during] == [("S1", "12:00", "congress"),
                                                                          ("S2", "12:00", "congress")]
    assert [r["due"] for r in checkins_due(roster, rules, "office-b", date(2026, 11, 3))] == ["18:00"]
    assert checkins_due(roster, rules, "office-z", date(2026, 11, 3)) == []
    # A file that sets no checkin_due: the packaged default, read through the rules like any threshold.
    bare = tmp_path / "bare.toml"
    bare.write_text("[profiles.ordinary]\n[profiles.strict]\n", encoding="utf-8")
    assert [r["due"] for r in checkins_due(roster, load_rules(bare), "office-a", date(2026, 11, 2))] == ["20:00"] * 2


def test_morning_reminder_lists_checkins_under_pseudonyms(store_path, monkeypatch):
    with AlertStore(store_path, read_only=True) as store:
        office, day, _ = _busiest(store)
        report = daily_report(store, office, day, key=KEY, subjects=SAMPLE_DIR / "subjects.csv")
    roster = [line.split(",") for line in (SAMPLE_DIR / "subjects.csv").read_text().splitlines()[1:]]
    mine = {pseudonym(r[0], KEY) for r in roster if r[2] == office}
    assert {r["subject_id"] for r in report["morning"]["checkins_due"]} == mine
    monkeypatch.setenv("GEOMON_PSEUDONYM_KEY", KEY.decode())
    result = CliRunner().invoke(app, ["report", "daily", "--db", str(store_path), "--office", office, "--date",
                                      day.isoformat(), "--subjects", str(SAMPLE_DIR / "subjects.csv")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "### checkins due" in result.output and next(iter(mine)) in result.output
