"""Special periods: per-fix threshold sets (geomon.rules.periods) and the Monitor judging fixes by them.

The Monitor tests ride three subjects along a road through a row of 100 m
bars at 5 m/s with a fix every 20 s, so that every pass puts exactly two fixes
50 m deep in a bar, 20 s apart. The ordinary profile (3 fixes and 30 s) never
confirms such a pass; the strict profile (2 fixes, 20 s) confirms every pass;
a period with ``confirm_fixes = 2`` and ``confirm_s = 15`` confirms the passes
whose second deep fix (the confirming one) lies inside it. Which alerts a
period adds is therefore known before running anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
import shapely

from geomon.engine.monitor import Monitor, alert_id, fold_alerts
from geomon.io.load import load_rules, load_subjects, load_zones
from geomon.rules.periods import ThresholdSets
from tests import scenario as sc

X0, Y0, T0 = sc.X0, sc.Y0, sc.T0_MS
STEP_MS = 20_000
N_BARS = 8
N_FIXES = 10 * N_BARS + 15
SUBJECTS = {"s1": ("ordinary", "office-w"), "s2": ("strict", "office-w"), "s3": ("ordinary", "office-e")}

# The legacy breach rule, whose counts of deep fixes make each period's effect exact (the evidence rule's
# periods: tests/engine/test_breach_evidence.py).
PROFILES = """
[profiles.ordinary]
breach_by_fixes = true
confirm_fixes = 3
confirm_s = 30
buffer_m = 20
max_speed_mps = 70

[profiles.strict]
inherits = "ordinary"
confirm_fixes = 2
confirm_s = 20

[profiles.special_period]
inherits = "strict"
confirm_fixes = 2
confirm_s = 15
buffer_m = 15
"""


def t_fix(i: int) -> int:
    """Event time of the i-th fix of the ride."""
    return T0 + i * STEP_MS


def deep_fixes(bar: int) -> tuple[int, int]:
    """Indices of the two fixes 50 m inside bar ``bar`` (1-based): x = 1000 bar -/+ 50."""
    return 10 * bar + 5, 10 * bar + 6


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat()


@pytest.fixture(scope="module")
def zones():
    feats = [sc.feature("county", "permitted", shapely.box(X0 - 10_000, Y0 - 10_000, X0 + 10_000, Y0 + 10_000))]
    feats += [sc.feature(f"bar-{k}", "forbidden", shapely.Point(X0 + 1000 * k, Y0).buffer(100, 32), category="bar")
              for k in range(1, N_BARS + 1)]
    return load_zones({"type": "FeatureCollection", "features": feats})


@pytest.fixture(scope="module")
def subjects():
    return load_subjects(pa.table({"subject_id": list(SUBJECTS), "level": [v[0] for v in SUBJECTS.values()],
                                   "office_id": [v[1] for v in SUBJECTS.values()]}))


@pytest.fixture(scope="module")
def ride():
    """Every subject rides east along y = Y0 from x = X0 - 550 m, 100 m per fix; time-ordered."""
    i = np.arange(N_FIXES)
    parts = [sc.fixes(s, X0 - 550.0 + 100.0 * i, np.full(i.size, Y0), t_fix(0) + i * STEP_MS) for s in SUBJECTS]
    table = pa.concat_tables(parts)
    return table.take(pa.array(np.argsort(table.column("ts").cast(pa.int64()).to_numpy(), kind="stable")))


def rules_with(tmp_path, periods: str = ""):
    path = tmp_path / "rules.toml"
    path.write_text(PROFILES + periods)
    return load_rules(path)


def period(start_ms: int, end_ms: int, body: str, name: str = "holiday") -> str:
    return f'\n[[periods]]\nname = "{name}"\nstart = "{iso(start_ms)}"\nend = "{iso(end_ms)}"\n{body}\n'


def run(zones, subjects, rules, stream, cuts=()):
    monitor = Monitor(zones, subjects, rules)
    bounds = [0, *sorted(set(cuts)), stream.num_rows]
    parts = [monitor.process(stream.slice(a, b - a)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return {(r["subject_id"], r["zone_id"]): r for r in fold_alerts(pa.concat_tables(parts)).to_pylist()}


def ms(ts) -> int:
    return int(ts.timestamp() * 1000)


def expected_pass(subject: str, bar: int) -> dict:
    """What a confirmed pass of ``subject`` through ``bar`` must look like."""
    first, second = deep_fixes(bar)
    return {"alert_id": alert_id("forbidden_entry", subject, f"bar-{bar}", t_fix(first)),
            "onset": t_fix(first), "confirmed": t_fix(second), "ended": t_fix(second + 1)}


def check_pass(row: dict, subject: str, bar: int, *, profile: str, period_name: str | None) -> None:
    want = expected_pass(subject, bar)
    assert row["alert_id"] == want["alert_id"]
    assert (ms(row["onset_ts"]), ms(row["confirmed_ts"]), ms(row["ended_ts"])) == (
        want["onset"], want["confirmed"], want["ended"])
    details = json.loads(row["details"])
    assert (details["profile"], details["period"]) == (profile, period_name)


# ----------------------------------------------------------- threshold sets


def test_sets_resolve_level_then_period_profile_then_overrides(tmp_path):
    rules = rules_with(tmp_path, period(T0, T0 + 3_600_000,
                                        'profile = "special_period"\noverrides = { confirm_fixes = 4 }'))
    sets = ThresholdSets(rules, ["ordinary", "strict"], ["a", "b"], ["o", "o"])
    code = np.array([0, 1, 0, 1])
    t = np.array([T0 - 1, T0 - 1, T0, T0])
    tset = sets.set_of_fixes(code, t)
    confirm_fixes = sets.per_set("confirm_fixes", dtype=np.int64)[tset]
    confirm_s = sets.per_set("confirm_s")[tset]
    buffer_m = sets.per_set("buffer_m")[tset]
    # Outside: each level's own values. Inside: special_period's (confirm_s 15,
    # buffer_m 15) over either level, and the inline override over both.
    assert confirm_fixes.tolist() == [3, 2, 4, 4]
    assert confirm_s.tolist() == [30, 20, 15, 15]
    assert buffer_m.tolist() == [20, 20, 15, 15]
    assert sets.profile[tset].tolist() == ["ordinary", "strict", "special_period", "special_period"]
    assert sets.period[tset].tolist() == [None, None, "holiday", "holiday"]


def test_overrides_alone_keep_the_level_profile_for_other_keys(tmp_path):
    rules = rules_with(tmp_path, period(T0, T0 + 1000, "overrides = { buffer_m = 5 }"))
    sets = ThresholdSets(rules, ["strict"], ["a"], ["o"])
    tset = sets.set_of_fixes(np.array([0]), np.array([T0]))
    assert sets.values[tset[0]]["confirm_s"] == 20 and sets.values[tset[0]]["buffer_m"] == 5
    assert (sets.profile[tset[0]], sets.period[tset[0]]) == ("strict", "holiday")


def test_period_covers_start_but_not_end(tmp_path):
    start, end = T0 + 60_000, T0 + 120_000
    rules = rules_with(tmp_path, period(start, end, "overrides = { confirm_fixes = 1 }"))
    sets = ThresholdSets(rules, ["ordinary"], ["a"], ["o"])
    t = np.array([start - 1, start, end - 1, end])
    inside = sets.period[sets.set_of_fixes(np.zeros(4, np.int64), t)]
    assert inside.tolist() == [None, "holiday", "holiday", None]


def test_naive_period_times_are_local_time_of_utc_offset(tmp_path):
    # T0 is 2025-11-02T00:00Z, i.e. 08:00 in China Standard Time (the default) and 09:00 at +09:00.
    body = 'name = "p"\nstart = "2025-11-02T08:00"\nend = 2025-11-02T09:00:00\noverrides = { confirm_fixes = 1 }\n'
    rules = rules_with(tmp_path, "\n[[periods]]\n" + body)
    assert (rules.periods[0].start_ms, rules.periods[0].end_ms) == (T0, T0 + 3_600_000)
    path = tmp_path / "tokyo.toml"
    path.write_text('utc_offset = "+09:00"\n' + PROFILES + "\n[[periods]]\n" + body)
    assert load_rules(path).periods[0].start_ms == T0 - 3_600_000


@pytest.mark.parametrize(
    ("scope", "inside"),
    [
        ("", [True, True, True]),
        ('offices = ["office-w"]', [True, True, False]),
        ('subjects = ["s3"]', [False, False, True]),
        ('offices = ["office-w"]\nsubjects = ["s1", "s3"]', [True, False, False]),  # both: a subject must pass both
        ('offices = ["elsewhere"]', [False, False, False]),
    ],
)
def test_scope_by_office_and_subject(tmp_path, scope, inside):
    rules = rules_with(tmp_path, period(T0, T0 + 1000, 'profile = "special_period"\n' + scope))
    sets = ThresholdSets(rules, ["ordinary", "strict", "ordinary"], ["s1", "s2", "s3"],
                         ["office-w", "office-w", "office-e"])
    tset = sets.set_of_fixes(np.arange(3), np.full(3, T0))
    assert (sets.period[tset] == "holiday").tolist() == inside


def test_periods_with_disjoint_scopes_may_overlap_in_time(tmp_path):
    west = period(T0, T0 + 2000, 'overrides = { confirm_fixes = 1 }\noffices = ["office-w"]', "west")
    east = period(T0 + 1000, T0 + 3000, 'overrides = { confirm_fixes = 4 }\noffices = ["office-e"]', "east")
    rules = rules_with(tmp_path, west + east)
    sets = ThresholdSets(rules, ["ordinary", "ordinary"], ["s1", "s3"], ["office-w", "office-e"])
    tset = sets.set_of_fixes(np.array([0, 1, 0, 1]), np.array([T0 + 1500, T0 + 1500, T0 + 2500, T0 + 2500]))
    assert sets.period[tset].tolist() == ["west", "east", None, "east"]
    assert sets.per_set("confirm_fixes", dtype=np.int64)[tset].tolist() == [1, 4, 3, 4]


def test_per_set_reads_every_key_from_the_rules_and_scales(tmp_path):
    sets = ThresholdSets(rules_with(tmp_path), ["ordinary", "strict"], ["a", "b"], ["o", "o"])
    confirm_ms = sets.per_set("confirm_s", scale=1000, dtype=np.int64)
    assert confirm_ms.dtype == np.int64 and confirm_ms.tolist() == [30_000, 20_000]
    # Keys the file does not set have the packaged defaults (the packaged ordinary profile's).
    assert sets.per_set("max_accuracy_m").tolist() == [150.0, 150.0]
    assert sets.per_set("lost_contact_s", scale=1000, dtype=np.int64).tolist() == [1_800_000, 1_800_000]


def test_per_set_takes_no_default(tmp_path):
    """Defaults live once, in the packaged rules file: a fallback value cannot be passed."""
    sets = ThresholdSets(rules_with(tmp_path), ["ordinary", "strict"], ["a", "b"], ["o", "o"])
    with pytest.raises(TypeError):
        sets.per_set("confirm_s", 30)
    with pytest.raises(TypeError):
        sets.per_set("confirm_s", default=30)


def test_per_set_of_a_key_no_set_has_raises_key_error_naming_it(tmp_path):
    rules = rules_with(tmp_path)
    sets = ThresholdSets(rules, ["ordinary"], ["a"], ["o"])
    with pytest.raises(KeyError, match="no_such_s"):
        sets.per_set("no_such_s")
    bare = dataclasses.replace(rules, profiles={"ordinary": {"confirm_s": 30}})  # not from load_rules
    with pytest.raises(KeyError, match="buffer_m.*ordinary"):
        ThresholdSets(bare, ["ordinary"], ["a"], ["o"]).per_set("buffer_m")


def test_a_period_profile_overrides_only_what_the_file_sets_not_the_packaged_defaults(tmp_path):
    """The packaged defaults lie under the subject's profile, not under a period's profile."""
    path = tmp_path / "rules.toml"
    path.write_text('[profiles.ordinary]\nlost_contact_s = 1000\n[profiles.strict]\ninherits = "ordinary"\n'
                    "[profiles.holiday]\nconfirm_s = 10\n" + period(T0, T0 + 1000, 'profile = "holiday"'))
    rules = load_rules(path)
    assert rules.profile("holiday")["lost_contact_s"] == 1800  # the holiday profile alone: packaged default
    assert rules.file_values("holiday") == {"confirm_s": 10}
    sets = ThresholdSets(rules, ["ordinary"], ["a"], ["o"])
    tset = sets.set_of_fixes(np.array([0, 0]), np.array([T0 - 1, T0]))
    assert sets.per_set("lost_contact_s")[tset].tolist() == [1000, 1000]  # the subject's own value, in the period too
    assert sets.per_set("confirm_s")[tset].tolist() == [30, 10]


# ----------------------------------------------------------------- Monitor


def test_without_periods_only_the_strict_subject_alerts(zones, subjects, ride, tmp_path):
    got = run(zones, subjects, rules_with(tmp_path), ride)
    assert sorted(got) == [("s2", f"bar-{k}") for k in range(1, N_BARS + 1)]
    for k in range(1, N_BARS + 1):
        check_pass(got[("s2", f"bar-{k}")], "s2", k, profile="strict", period_name=None)


def test_period_adds_exactly_the_alerts_its_tighter_thresholds_imply(zones, subjects, ride, tmp_path):
    # From bar 3's confirming fix (bar 3's first deep fix is before the start)
    # to bar 6's confirming fix, excluded: bars 3, 4 and 5 confirm inside.
    start, end = t_fix(deep_fixes(3)[1]), t_fix(deep_fixes(6)[1])
    assert t_fix(deep_fixes(3)[0]) < start and t_fix(deep_fixes(6)[0]) < end
    in_period = {3, 4, 5}
    body = 'overrides = { confirm_fixes = 2, confirm_s = 15 }\noffices = ["office-w"]'
    without = run(zones, subjects, rules_with(tmp_path), ride)
    with_period = run(zones, subjects, rules_with(tmp_path, period(start, end, body)), ride)

    # The ordinary subject of office-w gains exactly the passes confirmed in
    # the period; office-e's ordinary subject (out of scope) gains nothing.
    assert set(with_period) - set(without) == {("s1", f"bar-{k}") for k in in_period}
    assert set(without) - set(with_period) == set()
    for k in in_period:
        check_pass(with_period[("s1", f"bar-{k}")], "s1", k, profile="ordinary", period_name="holiday")
    # The strict subject's alerts are the same alerts (its 2 fixes and 20 s
    # already meet the period's 2 and 15 s); those confirmed inside the period
    # name it.
    for k in range(1, N_BARS + 1):
        key = ("s2", f"bar-{k}")
        named = "holiday" if k in in_period else None
        check_pass(with_period[key], "s2", k, profile="strict", period_name=named)
        a, b = dict(with_period[key]), dict(without[key])
        a.pop("details"), b.pop("details")
        assert a == b


def test_overrides_beat_the_period_profile_in_the_monitor(zones, subjects, ride, tmp_path):
    start, end = t_fix(deep_fixes(3)[1]), t_fix(deep_fixes(6)[1])
    by_profile = run(zones, subjects, rules_with(tmp_path, period(start, end, 'profile = "special_period"')), ride)
    # special_period (2 fixes, 15 s) for everyone: both ordinary subjects gain bars 3-5.
    assert set(by_profile) == ({("s2", f"bar-{k}") for k in range(1, N_BARS + 1)}
                               | {(s, f"bar-{k}") for s in ("s1", "s3") for k in (3, 4, 5)})
    check_pass(by_profile[("s3", "bar-4")], "s3", 4, profile="special_period", period_name="holiday")
    # An inline confirm_fixes = 3 over that profile: nobody confirms a
    # two-fix pass inside the period, not even the strict subject.
    body = 'profile = "special_period"\noverrides = { confirm_fixes = 3 }'
    overridden = run(zones, subjects, rules_with(tmp_path, period(start, end, body)), ride)
    assert set(overridden) == {("s2", f"bar-{k}") for k in (1, 2, 6, 7, 8)}


def test_subject_scope_in_the_monitor(zones, subjects, ride, tmp_path):
    start, end = t_fix(0), t_fix(N_FIXES)
    body = 'overrides = { confirm_fixes = 2, confirm_s = 15 }\nsubjects = ["s3"]'
    got = run(zones, subjects, rules_with(tmp_path, period(start, end, body)), ride)
    assert {key for key in got if key[0] != "s2"} == {("s3", f"bar-{k}") for k in range(1, N_BARS + 1)}


@pytest.mark.parametrize("cuts", [(1,), (17, 18, 19), (50, 121, 122, 200), tuple(range(0, 285, 7))])
def test_periods_keep_any_split_into_batches_equal(zones, subjects, ride, tmp_path, cuts):
    start, end = t_fix(deep_fixes(3)[1]), t_fix(deep_fixes(6)[1])
    rules = rules_with(tmp_path, period(start, end, 'overrides = { confirm_fixes = 2, confirm_s = 15 }'))
    whole = run(zones, subjects, rules, ride)
    assert len(whole) == N_BARS + 6  # s2's passes, and bars 3-5 of s1 and s3
    assert run(zones, subjects, rules, ride, cuts) == whole


def test_periods_are_part_of_the_replay_configuration_hash(zones, subjects, tmp_path):
    from geomon.run.replay import config_hash

    plain = config_hash(zones, subjects, rules_with(tmp_path), {})
    assert config_hash(zones, subjects, rules_with(tmp_path), {}) == plain
    one = rules_with(tmp_path, period(T0, T0 + 1000, 'profile = "strict"'))
    other = rules_with(tmp_path, period(T0, T0 + 2000, 'profile = "strict"'))
    assert len({plain, config_hash(zones, subjects, one, {}), config_hash(zones, subjects, other, {})}) == 3
