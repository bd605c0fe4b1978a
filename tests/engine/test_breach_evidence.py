"""The evidence rule for breaches (the default): Page's CUSUM of each fix's likelihood ratio, on the Monitor.

The right answers are derived from the rule's definition (docs/alerts.md): a threshold of
``log(86400 / (budget x seconds between fixes))``, a deep fix's evidence of about ``log(1 + 2 (1 - eps) /
eps)``, one outlier's evidence bounded below the threshold.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from geomon.engine.monitor import Monitor
from geomon.rules.load import default_rules
from tests import scenario as sc
from tests.engine.test_monitor import _ms, _rows

X0, Y0, T0 = sc.X0, sc.Y0, sc.T0_MS
EDGE_Y = Y0 + 5000.0      # the county's northern edge
STEP_S = 15
#: The county, its zones and three subjects of tests/engine/test_monitor.py (s1 ordinary, s2 strict).
ZONES, SUBJECTS = sc.zones(), sc.subjects(3)


def _noisy(subject, y_true, sigma_m, rng, x=X0 - 2000.0):
    n = y_true.size
    t = T0 + np.arange(n) * STEP_S * 1000
    return sc.fixes(subject, x + rng.normal(0, sigma_m, n), y_true + rng.normal(0, sigma_m, n), t,
                    accuracy_m=sigma_m), t


def _threshold(budget, dt_s=STEP_S):
    return math.log(86400 / (budget * dt_s))


def test_walking_out_of_the_county_is_confirmed_by_the_third_fix_fifty_metres_out():
    # s1 (ordinary: 0.02 a day, depth of concern 20 m) walks north across the edge at 1.2 m/s, sigma 4 m.
    rng = np.random.default_rng(1)
    y = EDGE_Y - 300 + 1.2 * STEP_S * np.arange(60)
    fixes, t = _noisy("s1", y, 4.0, rng)
    alerts = _rows(Monitor(ZONES, SUBJECTS).process(fixes))
    assert [(a["kind"], a["zone_id"]) for a in alerts] == [("permitted_exit", "county")]
    a = alerts[0]
    fifty_out = t[np.argmax(y - EDGE_Y >= 50)]
    assert _ms(a["onset_ts"]) < _ms(a["confirmed_ts"]) <= fifty_out + 2 * STEP_S * 1000
    # Onset: where the evidence began to count, after the subject crossed (never before it was out).
    assert _ms(a["onset_ts"]) >= t[np.argmax(y >= EDGE_Y)]
    details = json.loads(a["details"])
    # (Details carry the evidence to 0.01.)
    assert details["rule"] == "evidence" and details["evidence"] >= _threshold(0.02) - 0.005


def test_walking_through_a_bar_is_one_entry_decided_inside_it():
    # 1.2 m/s every 30 s across the 200 m bar: the entry is confirmed while the subject is inside and ends after.
    path = sc.walk("s1", (X0 + 1500, Y0), (X0 + 2500, Y0))
    alerts = _rows(Monitor(ZONES, SUBJECTS).process(path))
    assert [(a["kind"], a["zone_id"]) for a in alerts] == [("forbidden_entry", "bar")]
    a = alerts[0]
    t = path.column("ts").cast(pa.int64()).to_numpy()
    x = X0 + 1500 + (t - T0) / 1000 * 1.2
    inside = t[np.abs(x - (X0 + 2000)) < 100]
    assert inside[0] <= _ms(a["onset_ts"]) < _ms(a["confirmed_ts"]) <= inside[-1]
    assert _ms(a["ended_ts"]) > inside[-1]
    # The threshold of the confirming fix's own interval (about 30 s), to the 0.01 the details carry.
    gap_s = (_ms(a["confirmed_ts"]) - t[t < _ms(a["confirmed_ts"])].max()) / 1000
    assert json.loads(a["details"])["evidence"] >= _threshold(0.02, gap_s) - 0.005


def test_ten_metres_inside_all_day_never_alerts():
    # A subject living 10 m inside the edge, sigma 6 m, 8 % gross errors of 15-60 m either way: one day at 15 s.
    rng = np.random.default_rng(2)
    n = 5760
    y = np.full(n, EDGE_Y - 10.0)
    fixes, _ = _noisy("s1", y, 6.0, rng)
    lon = fixes.column("lon").to_numpy().copy()
    lat = fixes.column("lat").to_numpy().copy()
    gross = np.flatnonzero(rng.random(n) < 0.08)
    gx, gy = sc.FRAME.project(lon[gross], lat[gross])
    angle = rng.uniform(0, 2 * np.pi, gross.size)
    reach = rng.uniform(15, 60, gross.size)
    lon[gross], lat[gross] = sc.FRAME.unproject(gx + reach * np.cos(angle), gy + reach * np.sin(angle))
    fixes = fixes.set_column(2, "lon", pa.array(lon)).set_column(3, "lat", pa.array(lat))
    assert _rows(Monitor(ZONES, SUBJECTS).process(fixes)) == []


def test_one_outlier_neither_makes_a_breach_nor_undoes_one():
    rng = np.random.default_rng(3)
    # Makes: a still subject 50 m inside, one fix 200 m out.
    y = np.full(120, EDGE_Y - 50.0)
    fixes, _ = _noisy("s1", y, 3.0, rng)
    lon = fixes.column("lon").to_numpy().copy()
    lat = fixes.column("lat").to_numpy().copy()
    lon[60:61], lat[60:61] = sc.FRAME.unproject(np.array([X0 - 2000.0]), np.array([EDGE_Y + 200.0]))
    one_out = fixes.set_column(2, "lon", pa.array(lon)).set_column(3, "lat", pa.array(lat))
    assert _rows(Monitor(ZONES, SUBJECTS).process(one_out)) == []
    # Undoes: a subject 80 m out for 15 minutes, its second fix out thrown 300 m back inside.
    y = np.r_[np.full(20, EDGE_Y - 100.0), np.full(60, EDGE_Y + 80.0), np.full(40, EDGE_Y - 100.0)]
    fixes, t = _noisy("s1", y, 3.0, rng)
    clean = _rows(Monitor(ZONES, SUBJECTS).process(fixes))
    lon = fixes.column("lon").to_numpy().copy()
    lat = fixes.column("lat").to_numpy().copy()
    lon[21:22], lat[21:22] = sc.FRAME.unproject(np.array([X0 - 2000.0]), np.array([EDGE_Y - 300.0]))
    thrown = _rows(Monitor(ZONES, SUBJECTS).process(
        fixes.set_column(2, "lon", pa.array(lon)).set_column(3, "lat", pa.array(lat))))
    assert len(clean) == len(thrown) == 1
    # The breach is confirmed by the fourth fix out either way (three fixes' evidence, one more for the outlier).
    assert _ms(clean[0]["confirmed_ts"]) <= t[22]
    assert _ms(thrown[0]["confirmed_ts"]) <= t[23]


def test_a_bigger_budget_decides_no_later_and_the_alert_names_it():
    # Special periods and strict supervision trade false alarms for speed: the same walk out, every subject on
    # the special_period profile (0.1 a day, 15 m of concern), confirms no later than on ordinary.
    rng = np.random.default_rng(4)
    y = EDGE_Y - 300 + 0.5 * STEP_S * np.arange(80)
    fixes, _ = _noisy("s1", y, 5.0, rng)
    ordinary = _rows(Monitor(ZONES, SUBJECTS, profile="ordinary").process(fixes))
    special = _rows(Monitor(ZONES, SUBJECTS, profile="special_period").process(fixes))
    assert len(ordinary) == len(special) == 1
    assert _ms(special[0]["confirmed_ts"]) <= _ms(ordinary[0]["confirmed_ts"])
    assert json.loads(special[0]["details"])["profile"] == "special_period"


def test_rules_that_describe_no_model_are_refused():
    rules = default_rules()
    for bad in ({"breach_budget_per_day": 0.0}, {"breach_gross_p": 0.0}, {"breach_gross_reach_m": 30.0}):
        broken = rules.with_values(**bad)
        with pytest.raises(ValueError, match=next(iter(bad)).replace("_reach_m", "")):
            Monitor(ZONES, SUBJECTS, broken)


def test_a_budget_that_cannot_keep_the_stated_delay_is_refused():
    # At 1e-9 false alerts a day (h about 32) a breach 30 m out under 6 m takes about four fixes, a minute.
    rules = default_rules().with_values(breach_budget_per_day=1e-9)
    with pytest.raises(ValueError, match=r"breach_budget_per_day 1e-09 .* longer than breach_delay_s 45"):
        Monitor(ZONES, SUBJECTS, rules)
    Monitor(ZONES, SUBJECTS, rules.with_values(breach_delay_s=120))       # a delay it keeps
    Monitor(ZONES, SUBJECTS, rules.with_values(breach_by_fixes=True))     # the legacy rule states none
