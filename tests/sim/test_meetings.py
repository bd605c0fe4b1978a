"""Encounters against labelled meetings: long meetings found, brief ones and near misses not, in open sky
and indoors.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import geomon
from geomon.sim.meetings import add_meetings, encounter_truth
from geomon.sim.scenarios import scenario

MIN = 60_000
HOUR = 3_600_000


def _pairs(table):
    return {(r["subject_a"], r["subject_b"]) for r in table.to_pylist()}


def _matched(got, truth):  # noqa: D401
    """Truth rows with an encounter of the same pair overlapping them (each encounter used once)."""
    free = [(r["subject_a"], r["subject_b"], r["started_at"], r["ended_at"]) for r in got.to_pylist()]
    hit = 0
    for r in truth.to_pylist():
        for i, (a, b, s, e) in enumerate(free):
            if (a, b) == (r["subject_a"], r["subject_b"]) and s <= r["ended_at"] and e >= r["started_at"]:
                free.pop(i)
                hit += 1
                break
    return hit


@pytest.fixture(scope="module", params=["open_sky", "indoor"])
def met(request):
    sc = scenario(request.param, n_subjects=18, hours=24.0, seed=3)
    ids = sc.subjects.column("subject_id").to_pylist()
    kinds = [("meet", 20 * MIN), ("meet", 2 * MIN), ("near_miss", 30 * MIN)]
    plan = [(kinds[k % 3][0], ids[2 * k], ids[2 * k + 1], sc.start_ms + (10 + k) * HOUR, kinds[k % 3][1])
            for k in range(9)]
    fixes, true_x, true_y = add_meetings(sc, plan, seed=1)
    truth = encounter_truth(sc, fixes, true_x, true_y, 30.0, 300.0)
    return request.param, sc, plan, fixes, truth


def test_the_labels_hold_the_long_meetings_and_not_the_brief_ones_or_near_misses(met):
    _, _, plan, _, truth = met
    pairs = _pairs(truth)
    for kind, a, b, _, duration in plan:
        assert ((a, b) in pairs) == (kind == "meet" and duration >= 5 * MIN), (kind, a, b)


def test_encounters_of_the_fused_tracks_match_the_labels(met):
    name, _, _, fixes, truth = met
    fused = geomon.fuse(fixes).select(["subject_id", "ts", "fused_lon", "fused_lat"])
    got = geomon.encounters(fused.rename_columns(["subject_id", "ts", "lon", "lat"]), 30.0, 300.0)
    assert _matched(got, truth) == truth.num_rows, (got.to_pylist(), truth.to_pylist())   # every meeting found
    if name == "open_sky":
        assert got.num_rows == truth.num_rows   # and nothing else
    # Indoors, fused tracks resting on cell fixes can bring a near miss 90 m apart within 30 m, or cut a meeting in
    # two: encounters must weigh the positions' uncertainty before they feed an alert (next step of issue 6).


def test_raw_cell_fixes_indoors_hide_meetings_that_fused_tracks_show(met):
    name, _, _, fixes, truth = met
    raw = geomon.encounters(fixes, 30.0, 300.0)
    if name == "open_sky":
        assert _matched(raw, truth) == truth.num_rows == raw.num_rows
    else:   # cell fixes hundreds of metres off during the stays: the raw positions rarely agree for 5 minutes
        assert _matched(raw, truth) < truth.num_rows
    assert np.isfinite(pa.compute.min(raw.column("min_distance_m")).as_py() or 0.0)


def test_sure_encounters_raise_no_false_meeting(met):
    # Within only when sure at 95 % (the fused sigmas as margin): no near miss or noise becomes a meeting, indoors
    # included; in open sky every meeting is still found.
    name, _, _, fixes, truth = met
    got = geomon.encounters(geomon.fuse(fixes), 30.0, 300.0, sure_p=0.95)
    assert _matched(got, truth) == got.num_rows, got.to_pylist()
    if name == "open_sky":
        assert got.num_rows == truth.num_rows
    with pytest.raises(ValueError, match="sure_p needs"):
        geomon.encounters(fixes, 30.0, 300.0, sure_p=0.95)
