"""Tests of geomon.io.load.load_rules and default_rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geomon.errors import InputError
from geomon.io.load import default_rules, load_rules

REPO = Path(__file__).resolve().parents[2]

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
        write(tmp_path,
              BASE + '[profiles.special_period]\ninherits = "strict"\nconfirm_s = 15\nnight_start = 20:30:00\n')
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


# ------------------------------------------------- the packaged defaults


def _own_keys(profile: str) -> set:
    """Keys the packaged file itself writes in ``[profiles.<profile>]``."""
    import tomllib

    doc = tomllib.loads((REPO / "geomon" / "rules" / "default.toml").read_text(encoding="utf-8"))
    return set(doc["profiles"][profile]) - {"inherits", "description"}


def test_the_packaged_ordinary_profile_sets_every_threshold_key():
    """The one source of defaults: a key cannot be added to the code without its default in the file."""
    from geomon.rules.load import THRESHOLD_KEYS

    assert _own_keys("ordinary") == set(THRESHOLD_KEYS)


def test_the_packaged_rules_resolve_exactly_as_written():
    from geomon.rules.load import PACKAGED_ORIGIN

    rules = default_rules()
    for name, origin in rules.origin.items():
        assert PACKAGED_ORIGIN not in origin.values(), name
        assert rules.file_values(name) == dict(rules.profile(name))
    assert {k for k, v in rules.origin["strict"].items() if v == "strict"} - {"description"} == _own_keys("strict")


def test_keys_a_file_does_not_set_have_the_packaged_ordinary_values(tmp_path):
    from geomon.rules.load import PACKAGED_ORIGIN, THRESHOLD_KEYS

    packaged = default_rules().profile("ordinary")
    text = BASE + '[profiles.lone]\nbuffer_m = 5\n[profiles.strict2]\ninherits = "strict"\n'
    rules = load_rules(write(tmp_path, text))
    for name in ("ordinary", "strict", "lone", "strict2"):
        prof = rules.profile(name)
        assert set(prof) - {"description"} == set(THRESHOLD_KEYS), name
    # Keys the file sets win; the rest are the packaged ordinary profile's, with their origin said so.
    assert rules.profile("strict")["lost_contact_s"] == 600 and rules.origin["strict"]["lost_contact_s"] == "strict"
    assert rules.profile("strict")["stuck_s"] == packaged["stuck_s"] == 600   # not the packaged strict's 300
    assert rules.origin["strict"]["stuck_s"] == PACKAGED_ORIGIN
    assert rules.profile("strict2")["confirm_s"] == 30 and rules.origin["strict2"]["confirm_s"] == "ordinary"
    assert rules.profile("lone")["confirm_s"] == packaged["confirm_s"] and rules.profile("lone")["buffer_m"] == 5
    assert rules.profile("lone")["night_start"] == "22:00"
    # The change of one source of defaults: an omitted max_accuracy_m is the packaged 150 m (it was no limit).
    assert rules.profile("ordinary")["max_accuracy_m"] == 150
    assert "max_accuracy_m = 150  # from packaged ordinary" in rules.describe("lone")
    assert rules.file_values("lone") == {"buffer_m": 5}
    assert rules.file_values("strict2") == {k: v for k, v in rules.profile("strict").items()
                                            if rules.origin["strict"][k] != PACKAGED_ORIGIN}


def test_default_rules_text_is_the_packaged_file():
    from geomon.rules import default_rules_text

    assert default_rules_text() == (REPO / "geomon" / "rules" / "default.toml").read_text(encoding="utf-8")


def test_cli_rules_default_prints_the_packaged_file(tmp_path):
    from geomon.cli.main import app

    result = CliRunner().invoke(app, ["rules", "default"])
    assert result.exit_code == 0
    assert result.output == (REPO / "geomon" / "rules" / "default.toml").read_text(encoding="utf-8")
    copy = write(tmp_path, result.output)
    assert load_rules(copy).profiles == default_rules().profiles


BAD_RULES = [
    ("[profiles.ordinary]\nlost_contact = 600\n[profiles.strict]\n", "profiles.ordinary.lost_contact", "unit suffix"),
    ("[profiles.ordinary]\nlost_contact_s = -1\n[profiles.strict]\n", "profiles.ordinary.lost_contact_s",
     "non-negative"),
    ("[profiles.ordinary]\nbuffer_m = nan\n[profiles.strict]\n", "profiles.ordinary.buffer_m", "finite"),
    ("[profiles.ordinary]\nbuffer_m = inf\n[profiles.strict]\n", "profiles.ordinary.buffer_m", "finite"),
    ("[profiles.ordinary]\nconfirm_fixes = 2.5\n[profiles.strict]\n", "profiles.ordinary.confirm_fixes", "integer"),
    ("[profiles.ordinary]\nconfirm_s = true\n[profiles.strict]\n", "profiles.ordinary.confirm_s", "number"),
    ('[profiles.ordinary]\nnight_start = "25:00"\n[profiles.strict]\n', "profiles.ordinary.night_start", "HH:MM"),
    ('[profiles.ordinary]\nmode = "loud"\n[profiles.strict]\n', "profiles.ordinary.mode", "text is only allowed"),
    ("[profiles.ordinary]\nzones_m = [1, 2]\n[profiles.strict]\n", "profiles.ordinary.zones_m",
     "unsupported value type"),
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


# ------------------------------------------------------------ known keys


def test_misspelt_threshold_is_an_unknown_key_with_a_suggestion(tmp_path):
    path = write(tmp_path, BASE + "confrim_s = 15\n")
    with pytest.raises(InputError) as info:
        load_rules(path)
    message = str(info.value)
    assert "profiles.strict.confrim_s" in message and "unknown threshold" in message
    assert "did you mean 'confirm_s'" in message


def test_every_key_of_the_default_rules_is_known():
    from geomon.rules.load import THRESHOLD_KEYS

    rules = default_rules()
    used = {k for prof in rules.profiles.values() for k in prof if k != "description"}
    assert used == set(THRESHOLD_KEYS)


# --------------------------------------------------------------- periods

PERIOD = """
[[periods]]
name = "spring_festival_2026"
start = "2026-02-15T00:00"
end = "2026-02-24T00:00"
overrides = { confirm_s = 15 }
"""


def test_a_period_loads_with_local_times_scope_and_overrides(tmp_path):
    text = BASE + '[profiles.special_period]\ninherits = "strict"\nconfirm_s = 10\n' + PERIOD.replace(
        "overrides", 'profile = "special_period"\noffices = ["office-01"]\nsubjects = ["S1", "S2"]\noverrides')
    (period,) = load_rules(write(tmp_path, text)).periods
    china = dt.timezone(dt.timedelta(hours=8))
    assert period.name == "spring_festival_2026" and period.profile == "special_period"
    assert period.start == dt.datetime(2026, 2, 15, tzinfo=china)
    assert period.end == dt.datetime(2026, 2, 24, tzinfo=china)
    assert period.start_ms == int(dt.datetime(2026, 2, 14, 16, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert dict(period.overrides) == {"confirm_s": 15}
    assert period.offices == {"office-01"} and period.subjects == {"S1", "S2"}


@pytest.mark.parametrize(
    ("value", "expected_utc"),
    [
        ('"2026-02-15T00:00"', dt.datetime(2026, 2, 14, 16)),
        ('"2026-02-15 06:30"', dt.datetime(2026, 2, 14, 22, 30)),
        ('"2026-02-15T00:00+00:00"', dt.datetime(2026, 2, 15)),
        ('"2026-02-15T00:00Z"', dt.datetime(2026, 2, 15)),
        ("2026-02-15T00:00:00", dt.datetime(2026, 2, 14, 16)),  # a TOML local date-time
        ("2026-02-15T00:00:00+01:00", dt.datetime(2026, 2, 14, 23)),  # a TOML offset date-time
        ("2026-02-15", dt.datetime(2026, 2, 14, 16)),  # a TOML date: local midnight
        ('"2026-02-15"', dt.datetime(2026, 2, 14, 16)),
    ],
)
def test_period_times_accept_text_and_toml_date_times(tmp_path, value, expected_utc):
    text = BASE + PERIOD.replace('start = "2026-02-15T00:00"', f"start = {value}")
    (period,) = load_rules(write(tmp_path, text)).periods
    assert period.start == expected_utc.replace(tzinfo=dt.timezone.utc)


def _period(body: str) -> str:
    return BASE + "\n[[periods]]\n" + body + "\n"


GOOD = 'name = "p"\nstart = "2026-02-15T00:00"\nend = "2026-02-16T00:00"\n'

BAD_PERIODS = [
    (_period(GOOD + "overrides = { confirm = 15 }"), "periods[0].overrides.confirm", "unit suffix"),
    (_period(GOOD + "overrides = { confirm_s = -15 }"), "periods[0].overrides.confirm_s", "non-negative"),
    (_period(GOOD + 'overrides = { confirm_s = "15" }'), "periods[0].overrides.confirm_s", "text is only allowed"),
    (_period(GOOD + "overrides = { confirm_fixes = 1.5 }"), "periods[0].overrides.confirm_fixes", "integer"),
    (_period(GOOD + "overrides = { breach_p = 2 }"), "periods[0].overrides.breach_p", "probability"),
    (_period(GOOD + "overrides = { bufer_m = 10 }"), "periods[0].overrides.bufer_m", "did you mean 'buffer_m'"),
    (_period(GOOD + 'overrides = { inherits = "strict" }'), "periods[0].overrides.inherits", "thresholds only"),
    (_period(GOOD + "overrides = 15"), "periods[0].overrides", "table of thresholds"),
    (_period(GOOD + 'profile = "holiday"'), "periods[0].profile", "unknown profile 'holiday'"),
    (_period(GOOD + "profile = 1"), "periods[0].profile", "expected text"),
    (_period(GOOD), "periods[0]", "changes nothing"),
    (_period(GOOD + 'profile = "strict"\nlevel = "strict"'), "periods[0].level", "unknown key(s) ['level']"),
    (_period(GOOD.replace('name = "p"\n', "") + 'profile = "strict"'), "periods[0].name", "needs 'name'"),
    (_period(GOOD.replace('end = "2026-02-16T00:00"\n', "") + 'profile = "strict"'), "periods[0].end", "needs 'end'"),
    (_period(GOOD.replace('"p"', '""') + 'profile = "strict"'), "periods[0].name", "non-empty text"),
    (_period(GOOD.replace("2026-02-16T00:00", "2026-02-15T00:00") + 'profile = "strict"'), "periods[0].end",
     "is not after start"),
    (_period(GOOD.replace("2026-02-16T00:00", "2026-02-14T00:00") + 'profile = "strict"'), "periods[0].end",
     "is not after start"),
    (_period(GOOD.replace('"2026-02-15T00:00"', '"15/02/2026"') + 'profile = "strict"'), "periods[0].start",
     "expected a date-time"),
    (_period(GOOD.replace('"2026-02-15T00:00"', "00:00:00") + 'profile = "strict"'), "periods[0].start",
     "expected a date-time"),
    (_period(GOOD + 'profile = "strict"\noffices = []'), "periods[0].offices", "empty list"),
    (_period(GOOD + 'profile = "strict"\nsubjects = "S1"'), "periods[0].subjects", "list of non-empty texts"),
    (BASE + '\n[periods]\nname = "p"\n', "periods", "[[periods]]"),
    ('utc_offset = "CST"\n' + BASE, "utc_offset", "offset from UTC"),
    ('utc_offset = "+15:00"\n' + BASE, "utc_offset", "offset from UTC"),
    (_period(GOOD + 'profile = "strict"') + "[[periods]]\n" + GOOD + 'profile = "strict"', "periods[1].name",
     "duplicate period name 'p'"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD_PERIODS)
def test_bad_periods_raise_input_error_naming_file_field_and_reason(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_rules(path)
    assert info.value.source == str(path) and info.value.field == key
    assert problem in info.value.problem


def _two_periods(first_scope: str, second_scope: str, second_start: str = "2026-02-15T12:00") -> str:
    return (BASE
            + f'\n[[periods]]\nname = "festival"\nstart = "2026-02-15T00:00"\nend = "2026-02-16T00:00"\n'
              f'profile = "strict"\n{first_scope}\n'
            + f'\n[[periods]]\nname = "congress"\nstart = "{second_start}"\nend = "2026-02-17T00:00"\n'
              f'overrides = {{ confirm_s = 10 }}\n{second_scope}\n')


@pytest.mark.parametrize(
    ("first_scope", "second_scope"),
    [
        ("", ""),
        ('offices = ["o1"]', ""),
        ('offices = ["o1", "o2"]', 'offices = ["o2"]'),
        ('subjects = ["S1"]', 'subjects = ["S1", "S2"]'),
        # Office o1 and subject S9: S9 may belong to o1, so they may share a subject.
        ('offices = ["o1"]', 'subjects = ["S9"]'),
        ('offices = ["o1"]\nsubjects = ["S1"]', 'offices = ["o1"]\nsubjects = ["S1", "S2"]'),
    ],
)
def test_overlapping_periods_that_may_share_subjects_are_an_error(tmp_path, first_scope, second_scope):
    path = write(tmp_path, _two_periods(first_scope, second_scope))
    with pytest.raises(InputError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message and "periods[1]" in message
    assert "'festival'" in message and "'congress'" in message and "overlap" in message


@pytest.mark.parametrize(
    ("first_scope", "second_scope", "second_start"),
    [
        ("", "", "2026-02-16T00:00"),  # back to back: [start, end) ranges do not overlap
        ('offices = ["o1"]', 'offices = ["o2"]', "2026-02-15T12:00"),
        ('subjects = ["S1"]', 'subjects = ["S2"]', "2026-02-15T12:00"),
        ('offices = ["o1"]\nsubjects = ["S1"]', 'offices = ["o1"]\nsubjects = ["S2"]', "2026-02-15T12:00"),
    ],
)
def test_periods_disjoint_in_time_or_scope_are_accepted(tmp_path, first_scope, second_scope, second_start):
    rules = load_rules(write(tmp_path, _two_periods(first_scope, second_scope, second_start)))
    assert [p.name for p in rules.periods] == ["festival", "congress"]


def test_the_commented_period_example_of_the_default_rules_is_valid(tmp_path):
    text = (REPO / "geomon" / "rules" / "default.toml").read_text()
    assert default_rules().periods == ()
    lines = text.splitlines()
    start = lines.index("# [[periods]]")
    example = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        example.append(line[2:])
    (period,) = load_rules(write(tmp_path, text + "\n" + "\n".join(example) + "\n")).periods
    assert period.profile == "special_period" and period.overrides and period.offices


# ------------------------------------------------------------ docs/rules.md

DOCS = (REPO / "docs" / "rules.md").read_text()


def test_docs_example_prints_what_the_docs_show(tmp_path, monkeypatch, capsys):
    import re

    blocks = re.findall(r"```python\n(.*?)```\n\nOutput:\n\n```text\n(.*?)```", DOCS, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code, output in blocks:
        exec(compile(code, "docs/rules.md", "exec"), {})
        assert capsys.readouterr().out == output


def test_with_values_sets_every_profile_and_checks_like_a_file():
    rules = default_rules()
    legacy = rules.with_values(breach_by_fixes=True, breach_budget_per_day=0.5)
    for name in rules.profiles:
        assert legacy.profile(name)["breach_by_fixes"] is True
        assert legacy.profile(name)["breach_budget_per_day"] == 0.5
        assert legacy.origin[name]["breach_by_fixes"] == name          # the profile now sets it
        # Every other value is the profile's own, untouched.
        assert {k: v for k, v in legacy.profile(name).items() if not k.startswith("breach_b")} == \
            {k: v for k, v in rules.profile(name).items() if not k.startswith("breach_b")}
    assert rules.profile("ordinary")["breach_by_fixes"] is False        # the original is not changed
    with pytest.raises(InputError, match="unknown threshold 'breach_bogus_m'"):
        rules.with_values(breach_bogus_m=3)
    with pytest.raises(InputError, match="non-negative"):
        rules.with_values(breach_depth_m=-1)
