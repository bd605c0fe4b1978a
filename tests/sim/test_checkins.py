"""Check-in alerts against labelled simulated check-ins: every missed day and outside check-in, nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.io.load import load_subjects, load_zones
from geomon.office.evaluate import score
from geomon.sim.checkins import add_checkins
from geomon.sim.scenarios import scenario

KINDS = ["missed_checkin", "checkin_outside"]


def test_every_missed_and_outside_checkin_and_nothing_else():
    sc = scenario("open_sky", n_subjects=12, hours=72.0, interval_s=60.0, seed=6)
    permitted = sc.zone_geometry_m["county"]
    fixes, truth = add_checkins(sc.fixes, sc.subjects, permitted, sc.frame, seed=6, p_miss=0.25, p_outside=0.2)
    kinds = truth.column("kind").to_pylist()
    assert kinds.count("missed_checkin") >= 3 and kinds.count("checkin_outside") >= 3  # something to find
    monitor = Monitor(load_zones(sc.zones), load_subjects(sc.subjects), frame=sc.frame,
                      detectors=("lost_contact", "checkins"))
    alerts = fold_alerts(monitor.process(fixes))
    alerts = alerts.filter(pc.is_in(alerts.column("kind"), pa.array(KINDS)))
    for s in score(alerts, truth, slack_s=0):
        assert s.true_positives == s.n_truth == s.n_alerts, s
        assert (s.delays_s == 0).all()  # both are dated at their moment: the deadline, the check-in
    # A deadline is noticed once event time passes it: here by the next fixes, a minute apart.
    emitted = {r["alert_id"]: r for r in alerts.to_pylist()}
    assert all(r["ended_ts"] == r["onset_ts"] for r in emitted.values())
    assert np.isin(KINDS, alerts.column("kind").to_pylist()).all()
