"""Without a pseudonym key, `export` and `report daily` say in one line what the key is for and the ways to give
one (issue 24: the README's examples failed with a bare "missing or shorter than 16 bytes")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from tests.cli.test_alerts_list import alert_store


@pytest.fixture()
def db(tmp_path):
    return alert_store(tmp_path / "a.duckdb", 3)


@pytest.mark.parametrize("command", [["export", "alerts", "--out", "{tmp}/a.csv"],
                                     ["export", "alerts", "--out", "{tmp}/a.csv", "--clear-ids"],
                                     ["report", "daily", "--office", "office-01", "--date", "2025-11-01"]])
def test_no_key_is_one_line_naming_how_to_give_one(db, tmp_path, command, monkeypatch):
    monkeypatch.delenv("GEOMON_PSEUDONYM_KEY", raising=False)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--db", str(db)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "no pseudonym key" in lines[0] and "GEOMON_PSEUDONYM_KEY=" in lines[0] and "--key-file" in lines[0]
    assert "--clear-ids needs the key too" in lines[0]


def test_a_short_key_says_how_short_and_a_good_one_works(db, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMON_PSEUDONYM_KEY", "tooshort")
    out = tmp_path / "a.csv"
    short = CliRunner().invoke(app, ["export", "alerts", "--db", str(db), "--out", str(out)])
    assert short.exit_code == 1 and "is 8 bytes, fewer than 16" in short.output
    monkeypatch.setenv("GEOMON_PSEUDONYM_KEY", "0123456789abcdef0123")
    done = CliRunner().invoke(app, ["export", "alerts", "--db", str(db), "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "subject-000" not in text and "p_" in text
