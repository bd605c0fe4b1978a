"""Frequent contact with persons of concern against labelled repeated meetings."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import geomon
from geomon.engine.frequent_contact import frequent_contacts
from geomon.office.evaluate import score
from geomon.rules.load import default_rules
from geomon.sim.meetings import add_meetings, encounter_truth, frequent_contact_truth
from geomon.sim.scenarios import scenario

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
CONCERN = ["S0011", "S0012"]   # tracked, not supervised


def _plan(sc):
    t = lambda day, hour: sc.start_ms + day * DAY + hour * HOUR   # noqa: E731
    return [
        # S0001 meets S0011 on three days; S0002 meets S0011 on two.
        *[("meet", "S0011", "S0001", t(d, 10), 20 * MIN) for d in range(3)],
        *[("meet", "S0011", "S0002", t(d, 12), 20 * MIN) for d in range(2)],
        # S0003 meets S0012 three times, but the second is brief (2 minutes: no meeting).
        *[("meet", "S0012", "S0003", t(d, 14), (2 if d == 1 else 20) * MIN) for d in range(3)],
        # S0004 passes S0012 at 90 m three times; S0005 and S0006 (both supervised) meet three times.
        *[("near_miss", "S0012", "S0004", t(d, 16), 30 * MIN) for d in range(3)],
        *[("meet", "S0005", "S0006", t(d, 9), 20 * MIN) for d in range(3)],
    ]


def _truth(day, rules, subject_pairs=False):
    """The rules applied to the encounters of the noise-free tracks (planned meetings and any others)."""
    sc, fixes, _, levels, true_x, true_y = day
    meetings = encounter_truth(sc, fixes, true_x, true_y, 30.0, 0.0)
    return frequent_contact_truth(meetings, levels, rules, CONCERN, subject_pairs=subject_pairs)


@pytest.fixture(scope="module")
def day():
    sc = scenario("open_sky", n_subjects=12, hours=80.0, seed=4)
    fixes, true_x, true_y = add_meetings(sc, _plan(sc), seed=2)
    supervised = sc.subjects.filter(pc.invert(pc.is_in(sc.subjects.column("subject_id"), pa.array(CONCERN))))
    levels = dict(zip(supervised.column("subject_id").to_pylist(), supervised.column("level").to_pylist()))
    return sc, fixes, supervised, levels, true_x, true_y


@pytest.mark.parametrize("subject_pairs", [False, True])
def test_frequent_contact_alerts_are_exactly_the_labelled_ones(day, subject_pairs):
    sc, fixes, supervised, levels, _, _ = day
    rules = default_rules()
    truth = _truth(day, rules, subject_pairs)
    assert truth.num_rows >= 2   # something to find
    alerts = frequent_contacts(geomon.fuse(fixes), supervised, CONCERN, rules, subject_pairs=subject_pairs)
    (s,) = score(alerts, truth, slack_s=120)
    assert s.true_positives == s.n_truth == s.n_alerts, (s, alerts.to_pylist(), truth.to_pylist())
    # Confirmed meeting_s after the meeting began, plus the fused track's catching up with the jump there.
    assert ((s.delays_s >= 300) & (s.delays_s <= 300 + 90)).all(), s.delays_s
    for r in alerts.to_pylist():
        d = json.loads(r["details"])
        assert d["meeting_count"] == rules.profile(levels[r["subject_id"]])["meeting_repeat_count"]
        assert len(d["meetings"]) == d["meeting_count"] and (subject_pairs or d["person_id"] in CONCERN)


def test_persons_of_concern_can_concern_some_subjects_only(day):
    sc, fixes, supervised, levels, _, _ = day
    everyone = frequent_contacts(geomon.fuse(fixes), supervised, CONCERN)
    only = frequent_contacts(geomon.fuse(fixes), supervised, {"S0011": ["S0002"], "S0012": None})
    assert set(only.column("subject_id").to_pylist()) == set(everyone.column("subject_id").to_pylist()) - {"S0001"}
