"""docs/rules.md's table of threshold keys against the one source of defaults, geomon/rules/default.toml.

The table's ``ordinary`` column is each key's default (the packaged ordinary
profile's value); its ``strict`` and ``special_period`` columns are the packaged
profiles' resolved values. If this test fails, fix the docs, not the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geomon.rules.load import THRESHOLD_KEYS, default_rules

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "rules.md"
HEADER = ("key", "unit", "ordinary", "strict", "special_period")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def docs_table() -> tuple[list[str], dict[str, dict[str, str]]]:
    """The profile columns of the threshold table and, per documented key, its cell in each of them."""
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    at = lines.index('<a id="threshold-table"></a>')
    start = next(i for i in range(at, len(lines)) if lines[i].startswith("|"))
    header = _cells(lines[start])
    assert tuple(header[:2]) == HEADER[:2], header
    profiles = [h for h in header[2:] if h in HEADER[2:]]
    assert profiles and profiles[0] == "ordinary", header
    assert set(_cells(lines[start + 1])) == {"---"}
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        assert len(cells) == len(header), line
        key = cells[0].strip("`")
        assert key not in rows, f"{key} documented twice"
        rows[key] = {p: cells[header.index(p)] for p in profiles}
    return profiles, rows


def _same(documented: str, value) -> bool:
    """Does the table cell show ``value`` (a number, true/false, or an "HH:MM" text)?"""
    documented = documented.strip("`")
    if isinstance(value, bool):
        return documented == str(value).lower()
    if isinstance(value, str):
        return documented.strip('"') == value
    try:
        return float(documented) == float(value)
    except ValueError:
        return False


def test_the_table_is_found_with_every_shipped_profile():
    profiles, rows = docs_table()
    assert profiles == ["ordinary", "strict", "special_period"]
    assert rows


def test_every_default_is_documented_with_its_value():
    _, rows = docs_table()
    ordinary = default_rules().profile("ordinary")
    missing = sorted(set(ordinary) - {"description"} - set(rows))
    assert not missing, f"keys of the packaged ordinary profile not in docs/rules.md: {missing}"
    wrong = {k: (rows[k]["ordinary"], ordinary[k]) for k in rows if k in ordinary and not _same(rows[k]["ordinary"],
                                                                                                 ordinary[k])}
    assert not wrong, f"docs/rules.md's ordinary column differs from the packaged defaults: {wrong}"


def test_no_documented_key_is_missing_from_the_packaged_file():
    _, rows = docs_table()
    ordinary = default_rules().profile("ordinary")
    assert sorted(set(rows) - set(ordinary)) == []
    assert set(rows) == set(THRESHOLD_KEYS)


@pytest.mark.parametrize("profile", ["strict", "special_period"])
def test_documented_profile_values_are_the_packaged_ones(profile):
    profiles, rows = docs_table()
    if profile not in profiles:
        pytest.skip(f"the table lists no {profile} column")
    resolved = default_rules().profile(profile)
    wrong = {k: (cells[profile], resolved[k]) for k, cells in rows.items() if not _same(cells[profile], resolved[k])}
    assert not wrong, f"docs/rules.md's {profile} column differs from the packaged file: {wrong}"
