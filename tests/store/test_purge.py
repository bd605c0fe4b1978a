"""geomon purge: a subject's data goes from every table and the removal is recorded without its id; retention
removes positions older than a cutoff and keeps alerts unless asked."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.io.export import pseudonym
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore

KEY = b"a key of at least sixteen bytes"


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "store.duckdb"
    replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv", db=path)
    return path


def _text_everywhere(store, needle: str) -> list[str]:
    """Tables and columns (text) in which ``needle`` occurs anywhere."""
    cur = store._cursor()
    hits = []
    for table, column in cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE data_type = 'VARCHAR' AND table_schema = 'main'").fetchall():
        if table.startswith("sla_"):
            continue
        n = cur.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [needle]).fetchone()[0]
        if n:
            hits.append(f"{table}.{column}")
    return hits


def test_a_subject_is_removed_from_every_table_and_the_removal_recorded(db):
    with AlertStore(db) as store:
        subject = store.list_alerts().column("subject_id")[0].as_py()
        ids = [a for a, s in zip(store.list_alerts().column("alert_id").to_pylist(),
                                 store.list_alerts().column("subject_id").to_pylist()) if s == subject]
        store.acknowledge(ids[0], at=datetime.now(timezone.utc), by="officer-7")
        cur = store._cursor()
        before = {t: cur.execute(f"SELECT count(*) FROM {t} WHERE subject_id = ?", [subject]).fetchone()[0]
                  for t in ("alerts", "tracks", "staypoints")}
        assert min(before.values()) > 0 and _text_everywhere(store, subject)
        others = cur.execute("SELECT count(*) FROM tracks WHERE subject_id <> ?", [subject]).fetchone()[0]
    result = CliRunner().invoke(app, ["purge", subject, "--db", str(db), "--by", "clerk-2", "--reason", "order 17",
                                      "--yes"], env={"COLUMNS": "200", "GEOMON_PSEUDONYM_KEY": KEY.decode()})
    assert result.exit_code == 0, result.output
    assert subject not in result.output
    with AlertStore(db, read_only=True) as store:
        assert _text_everywhere(store, subject) == []                  # nowhere, in any text column
        cur = store._cursor()
        assert cur.execute("SELECT count(*) FROM tracks").fetchone()[0] == others   # nobody else's
        (row,) = cur.execute("SELECT what, subject_ref, rows_removed, by_whom, reason FROM purges").fetchall()
    counts = json.loads(row[2])
    assert row[0] == "subject" and row[1] == pseudonym(subject, KEY) and row[3:] == ("clerk-2", "order 17")
    assert {t: counts[t] for t in before} == before and counts["alert_audit"] == 1


def test_retention_removes_old_positions_and_keeps_alerts(db):
    with AlertStore(db) as store:
        cur = store._cursor()
        n_alerts = cur.execute("SELECT count(*) FROM alerts").fetchone()[0]
        midday = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
        old = cur.execute("SELECT count(*) FROM tracks WHERE ts < ?", [midday]).fetchone()[0]
        total = cur.execute("SELECT count(*) FROM tracks").fetchone()[0]
        assert 0 < old < total
    from geomon.store.purge import purge_older

    with AlertStore(db) as store:
        counts = purge_older(store, 1.0, now=datetime(2026, 11, 3, 12, tzinfo=timezone.utc))
        cur = store._cursor()
        assert counts["tracks"] == old and cur.execute("SELECT count(*) FROM tracks").fetchone()[0] == total - old
        assert cur.execute("SELECT min(ts) FROM tracks").fetchone()[0] >= midday
        assert cur.execute("SELECT count(*) FROM alerts").fetchone()[0] == n_alerts and "alerts" not in counts
    result = CliRunner().invoke(app, ["purge", "--older-than", "0", "--alerts", "--db", str(db), "--yes"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with AlertStore(db, read_only=True) as store:
        cur = store._cursor()
        assert [cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("alerts", "tracks", "staypoints")] \
            == [0, 0, 0]
        assert [r[0] for r in cur.execute("SELECT what FROM purges ORDER BY purged_at").fetchall()] == \
            ["older_than", "older_than"]


def test_purge_needs_a_subject_or_an_age_and_confirmation(db):
    assert CliRunner().invoke(app, ["purge", "--db", str(db), "--yes"]).exit_code == 1
    no = CliRunner().invoke(app, ["purge", "S0001", "--db", str(db)], input="n\n")
    assert no.exit_code == 1
    with AlertStore(db, read_only=True) as store:
        assert store._cursor().execute("SELECT count(*) FROM purges").fetchone()[0] == 0
