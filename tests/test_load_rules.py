"""Tests of geomon.load.load_rules and default_rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from geomon.errors import InputError
from geomon.load import default_rules, load_rules

REPO = Path(__file__).resolve().parents[1]

BASE = """
[profiles.ordinary]
confirm_fixes = 3
confirm_s = 30
lost_contact_s = 1800
night_start = "22:00"
night_end = "06:00"

[profiles.strict]
inherits = "ordinary"
lost_contact_s = 600
"""


def write(tmp_path, text, name="rules.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_inheritance_resolves_and_reports_origins(tmp_path):
    rules = load_rules(
        write(tmp_path, BASE + '[profiles.special_period]\ninherits = "strict"\nconfirm_s = 15\nnight_start = 20:30:00\n')
    )
    strict = rules.profile("strict")
    assert strict["lost_contact_s"] == 600 and strict["confirm_fixes"] == 3 and "inherits" not in strict
    special = rules.profile("special_period")
    assert (special["confirm_s"], special["lost_contact_s"], special["night_end"]) == (15, 600, "06:00")
    assert special["night_start"] == "20:30"  # a TOML local time becomes "HH:MM"
    assert rules.origin["special_period"]["lost_contact_s"] == "strict"
    assert rules.origin["special_period"]["confirm_fixes"] == "ordinary"
    text = rules.describe("special_period")
    assert "lost_contact_s = 600  # from strict" in text
    with pytest.raises(KeyError, match="special_period"):
        rules.profile("holiday")


def test_default_rules_load_and_tighten(tmp_path):
    rules = default_rules()
    assert {"ordinary", "strict", "special_period"} <= set(rules.profiles)
    ordinary, strict, special = (rules.profile(p) for p in ("ordinary", "strict", "special_period"))
    for key in ("confirm_s", "lost_contact_s", "dwell_s"):
        assert special[key] <= strict[key] <= ordinary[key]
    assert ordinary["night_start"] == "22:00"
    assert (REPO / "data" / "rules.toml").read_bytes() == (REPO / "geomon" / "rules_default.toml").read_bytes()


BAD_RULES = [
    ("[profiles.ordinary]\nlost_contact = 600\n[profiles.strict]\n", "profiles.ordinary.lost_contact", "unit suffix"),
    ("[profiles.ordinary]\nlost_contact_s = -1\n[profiles.strict]\n", "profiles.ordinary.lost_contact_s", "non-negative"),
    ("[profiles.ordinary]\nbuffer_m = nan\n[profiles.strict]\n", "profiles.ordinary.buffer_m", "finite"),
    ("[profiles.ordinary]\nbuffer_m = inf\n[profiles.strict]\n", "profiles.ordinary.buffer_m", "finite"),
    ("[profiles.ordinary]\nconfirm_fixes = 2.5\n[profiles.strict]\n", "profiles.ordinary.confirm_fixes", "integer"),
    ("[profiles.ordinary]\nconfirm_s = true\n[profiles.strict]\n", "profiles.ordinary.confirm_s", "number"),
    ('[profiles.ordinary]\nnight_start = "25:00"\n[profiles.strict]\n', "profiles.ordinary.night_start", "HH:MM"),
    ('[profiles.ordinary]\nmode = "loud"\n[profiles.strict]\n', "profiles.ordinary.mode", "text is only allowed"),
    ("[profiles.ordinary]\nzones_m = [1, 2]\n[profiles.strict]\n", "profiles.ordinary.zones_m", "unsupported value type"),
    ("[profiles.ordinary]\nLostContact_s = 1\n[profiles.strict]\n", "profiles.ordinary.LostContact_s", "snake_case"),
    ('[profiles.ordinary]\n[profiles.strict]\ninherits = "lenient"\n', "profiles.strict.inherits", "unknown profile"),
    ('[profiles.ordinary]\ninherits = "strict"\n[profiles.strict]\ninherits = "ordinary"\n', "inherits", "cycle"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD_RULES)
def test_bad_keys_raise_input_error_naming_file_and_key(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message and key in message and problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[profiles.ordinary\n", "not valid TOML"),
        ("[profiles.ordinary]\n", "missing required profile [profiles.strict]"),
        ("[thresholds]\nx_s = 1\n", "unknown top-level key"),
        ("title = 'x'\n", "unknown top-level key"),
    ],
)
def test_malformed_rule_files(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_rules(path)
    assert str(path) in str(info.value) and problem in str(info.value)
    assert info.value.__cause__ is None


def test_missing_and_binary_rule_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_rules(tmp_path / "absent.toml")
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match="not UTF-8"):
        load_rules(path)


def test_directory_instead_of_rules_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_rules(tmp_path)


def test_probability_keys_must_lie_in_the_unit_interval(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[profiles.ordinary]\nbreach_p = 1.5\n[profiles.strict]\ninherits = \"ordinary\"\n")
    with pytest.raises(InputError, match="probability"):
        load_rules(path)
    path.write_text("[profiles.ordinary]\nbreach_p = 0.9\n[profiles.strict]\ninherits = \"ordinary\"\n")
    assert load_rules(path).profile("strict")["breach_p"] == 0.9
