"""The boundary suite at toy sizes, and its scenario's truth against the paths it comes from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import boundary
from geomon.sim.field_noise import NOISES


@pytest.mark.parametrize("seed", range(5))
def test_a_breaching_path_is_outside_exactly_in_its_true_intervals(seed):
    rng = np.random.default_rng(seed)
    t_s = np.arange(0.0, 86_400.0, 1.0)
    y, outside = boundary._breach_path(rng, t_s)
    assert boundary.BREACHES_PER_DAY[0] <= len(outside) <= boundary.BREACHES_PER_DAY[1]
    marked = np.zeros(t_s.size, bool)
    for a, b in outside:
        assert b - a >= 120.0                                   # every breach lasts at least 2 minutes...
        inside_interval = (t_s > a) & (t_s < b)
        assert y[inside_interval].max() >= 30.0 - 1e-9         # ...and reaches at least 30 m out
        marked |= inside_interval
    # Out (y > 0) at every second strictly within a true interval and at no second outside all of them,
    # up to the second each crossing falls in.
    out = y > 0
    edges = np.zeros(t_s.size, bool)
    for a, b in outside:
        edges[np.abs(t_s - a) <= 1.0] = edges[np.abs(t_s - b) <= 1.0] = True
    assert np.array_equal(out[~edges], marked[~edges])


@pytest.mark.parametrize("seed", range(5))
def test_a_visit_is_inside_its_disc_exactly_in_its_true_intervals(seed):
    rng = np.random.default_rng(seed)
    t_s = np.arange(0.0, 86_400.0, 1.0)
    dx, dy, inside = boundary._visit_path(rng, t_s, 40.0)
    assert 1 <= len(inside) <= 2
    r = np.hypot(dx, dy)
    marked = np.zeros(t_s.size, bool)
    for a, b in inside:
        marked |= (t_s >= a) & (t_s < b)
    near_edge = np.abs(r - 40.0) < 2.0     # within two seconds' walk of the disc's edge
    assert np.array_equal((r < 40.0)[~near_edge], marked[~near_edge])


def test_quick_run_counts_add_up_and_draws_the_curves(tmp_path):
    out = tmp_path / "boundary.json"
    config = boundary.BoundaryConfig.quick_run()
    payload = boundary.run_boundary(config, out=out, console=None)
    assert json.loads(out.read_text()) == json.loads(json.dumps(payload))
    assert list(payload["families"]) == [*NOISES, "urban_mix"]
    for noise, f in payload["families"].items():
        assert [p["budget_per_day"] for p in f["evidence"]] == list(config.sweep)
        for p in (f["raw_pip"], f["legacy"], *f["evidence"]):
            assert p["breaches"] > 0 and 0 <= p["missed"] <= p["breaches"]
            assert p["false_per_subject_day"] >= 0
        assert f["accuracy_kind"] == ("r68" if noise == "phone" else "sigma")
    for f in payload["families"].values():
        for p in (f["raw_pip"], f["legacy"], *f["evidence"]):
            assert sum(c["breaches"] for c in p["kinds"].values()) == p["breaches"]
            assert set(p["kinds"]) == {"permitted_exit", "forbidden_entry"}
    # Every family but correlated multipath is held to the bars, as targets.toml states them.
    keys = {t["key"] for t in payload["targets"]}
    for noise in boundary.GATED_FAMILIES:
        assert {f"false_alerts_per_subject_day@{noise}", f"p95_delay_s@{noise}", f"breaches_missed@{noise}"} <= keys
    assert not any(k.endswith("@multipath") for k in keys)
    assert {t["threshold"] for t in payload["targets"] if t["key"].startswith("p95_delay_s")} == {60.0}
    assert payload["targets_met"] == all(t["status"] != "FAIL" for t in payload["targets"])
    # Raw point in polygon on white noise alerts on every true breach (an exit reaches 30-50 m out, an entry the
    # disc's centre).
    assert payload["families"]["white"]["raw_pip"]["missed"] == 0
    assert (out.parent / "alerts_families.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
