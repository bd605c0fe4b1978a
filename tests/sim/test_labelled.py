"""Every behaviour detector against its labelled simulation, and the behaviour benchmark suite's plumbing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from geomon.sim.labelled import FAMILIES, FAMILY_KINDS, labelled_run


@pytest.mark.parametrize("family", FAMILIES)
def test_noise_off_every_label_is_found_and_nothing_else(family):
    run = labelled_run(family, "augmented", n_subjects=9, hours=54.0, seed=2)
    assert [s.kind for s in run.scores] == list(FAMILY_KINDS[family])
    for s in run.scores:
        assert s.n_truth >= 2, s   # something to find, of every kind
        assert s.true_positives == s.n_truth == s.n_alerts, s


def test_shielding_and_a_phone_indoors_for_hours_are_both_degraded():
    # Indoors, most fixes at a stay are cell fixes: long runs without a satellite fix are labelled as well as
    # the shielded windows, and the detector raises exactly those.
    run = labelled_run("contact", "indoor", n_subjects=12, hours=30.0, seed=1)
    (degraded,) = [s for s in run.scores if s.kind == "location_degraded"]
    assert degraded.n_truth > 12 // 3   # more than the four shielded windows the plan made
    assert degraded.true_positives == degraded.n_truth == degraded.n_alerts, degraded


def test_unknown_family_or_noise_is_refused():
    with pytest.raises(ValueError, match="unknown family"):
        labelled_run("camera", "augmented")
    with pytest.raises(ValueError, match="noise must be"):
        labelled_run("night", "mixed")


def test_behaviour_suite_quick_run(tmp_path):
    out = tmp_path / "behaviour.json"
    result = CliRunner().invoke(app, ["behaviour", "--quick", "--subjects", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    kinds = {r["kind"] for r in payload["scores"]}
    assert kinds == {k for ks in FAMILY_KINDS.values() for k in ks}
    assert {r["noise"] for r in payload["scores"]} == {"augmented", "open_sky", "urban", "indoor"}
    quiet = [t for t in payload["targets"] if t["name"].endswith("augmented")]
    assert [t["status"] for t in quiet] == ["PASS", "PASS"]
