"""Victim protection: warnings and breaches of a moving exclusion zone, against labelled approaches."""

from __future__ import annotations

import json

import pytest

import geomon
from geomon.engine.victims import victim_alerts
from geomon.sim.meetings import add_meetings
from geomon.sim.scenarios import scenario

MIN = 60_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
def approaches():
    sc = scenario("open_sky", n_subjects=8, hours=12.0, seed=6)
    t0 = sc.start_ms
    plan = [("meet", "S0008", "S0001", t0 + 9 * HOUR, 10 * MIN),        # S0001 goes right up to its victim
            ("near_miss", "S0007", "S0002", t0 + 10 * HOUR, 10 * MIN),  # S0002 stays 90 m from its victim
            ("near_miss", "S0006", "S0003", t0 + 11 * HOUR, 20 * 1000)]   # 90 m, but only 20 s
    fixes, _, _ = add_meetings(sc, plan, seed=3)
    orders = [{"subject_id": s, "victim_id": v, "warning_m": 150.0, "alert_m": 50.0}
              for s, v in (("S0001", "S0008"), ("S0002", "S0007"), ("S0003", "S0006"), ("S0004", "S0005"))]
    return sc, plan, geomon.fuse(fixes), orders


def test_an_approach_warns_and_breaches_a_near_miss_only_warns(approaches):
    sc, plan, fused, orders = approaches
    alerts = victim_alerts(fused, orders, office_of={"S0001": "office-01"})
    got = sorted((r["kind"], r["subject_id"]) for r in alerts.to_pylist())
    assert got == [("victim_breach", "S0001"), ("victim_warning", "S0001"), ("victim_warning", "S0002")]
    by = {(r["kind"], r["subject_id"]): r for r in alerts.to_pylist()}
    breach = by[("victim_breach", "S0001")]
    assert breach["severity"] == "high" and breach["office_id"] == "office-01"
    assert json.loads(breach["details"])["victim_id"] == "S0008"
    # The approach starts when S0001 is taken to its victim (the fused track follows within three fixes).
    start = plan[0][3]
    assert start <= breach["onset_ts"].timestamp() * 1000 <= start + 60_000
    warn = json.loads(by[("victim_warning", "S0002")]["details"])
    assert 80.0 <= warn["min_distance_m"] <= 100.0   # held 90 m away


def test_bad_orders_are_refused(approaches):
    _, _, fused, _ = approaches
    with pytest.raises(ValueError, match="alert_m <= warning_m"):
        victim_alerts(fused, [{"subject_id": "S0001", "victim_id": "S0008", "warning_m": 50.0, "alert_m": 80.0}])
