"""Contact detectors against injected, labelled events: every one found, nothing else, at the right time."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.io.load import load_subjects, load_zones
from geomon.office.evaluate import score
from geomon.rules.load import default_rules
from geomon.sim.lost_contact import ContactEvent, inject, random_plan
from geomon.sim.scenarios import scenario

CONTACT = ["lost_contact", "device_stuck", "location_degraded"]


def _rules(**over):
    return default_rules().with_values(**over)


@pytest.fixture(scope="module")
def injected():
    sc = scenario("open_sky", n_subjects=12, hours=8.0, seed=4)
    rules = _rules(degraded_s=1800)
    plan = random_plan(sc.fixes, np.random.default_rng(4), per_kind=4)
    fixes, truth = inject(sc.fixes, sc.subjects, plan, rules=rules, seed=4)
    monitor = Monitor(load_zones(sc.zones), load_subjects(sc.subjects), rules, frame=sc.frame)
    alerts = fold_alerts(monitor.process(fixes))
    return plan, truth, alerts.filter(pc.is_in(alerts.column("kind"), pa.array(CONTACT)))


def test_every_injected_event_and_nothing_else(injected):
    plan, truth, alerts = injected
    assert truth.num_rows == len(plan) == 12  # the plan's windows are long enough to be true events
    for s in score(alerts, truth, slack_s=0):
        assert s.true_positives == s.n_truth == s.n_alerts == 4, s


def test_detection_delays(injected):
    _, truth, alerts = injected
    delays = {s.kind: s.delays_s for s in score(alerts, truth, slack_s=0)}
    # Lost contact is dated by the watermark: confirmed the moment the silence is too long.
    assert (delays["lost_contact"] == 0).all()
    # Degraded: the first cell fix after the threshold, fixes every 13.5-16.5 s.
    assert ((delays["location_degraded"] > 0) & (delays["location_degraded"] <= 16.5)).all()
    # Stuck: 20 fixes and 600 s (ordinary) or 300 s (strict) after the run began, to the next fix.
    assert ((delays["device_stuck"] >= 285) & (delays["device_stuck"] <= 616.5)).all()


def test_short_events_are_not_alerts():
    sc = scenario("open_sky", n_subjects=3, hours=3.0, seed=5)
    t0 = sc.start_ms + 3_600_000
    plan = [ContactEvent("outage", "S0001", t0, 5 * 60_000), ContactEvent("stuck", "S0002", t0, 3 * 60_000),
            ContactEvent("shield", "S0003", t0, 10 * 60_000)]
    fixes, truth = inject(sc.fixes, sc.subjects, plan, rules=_rules(degraded_s=1800))
    assert truth.num_rows == 0
    monitor = Monitor(load_zones(sc.zones), load_subjects(sc.subjects), _rules(degraded_s=1800), frame=sc.frame)
    kinds = set(fold_alerts(monitor.process(fixes)).column("kind").to_pylist())
    assert not kinds & set(CONTACT)
