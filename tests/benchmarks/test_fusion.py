"""Smoke tests of the fusion and alerts suites at toy sizes, and of the raw point-in-polygon baseline.

The suites run in seconds here; the tests check the JSON's structure, that its
numbers are finite and add up, and that the raw baseline gives the answers a
plain loop (and a hand count) gives.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from benchmarks import alerts, fusion, report, targets
from benchmarks.__main__ import app

TINY_FUSION = {"n_subjects": 2, "hours": 0.5, "throughput_fixes": 20_000, "filterpy_fixes": 300, "repeat": 1}
TINY_ALERTS = {"n_subjects": 7, "hours": 3.0}


@pytest.fixture(scope="module")
def fusion_payload(tmp_path_factory):
    out = tmp_path_factory.mktemp("fusion") / "fusion.json"
    returned = fusion.run_fusion(fusion.FusionConfig.quick_run(**TINY_FUSION), out=out, console=None)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    return written


@pytest.fixture(scope="module")
def alerts_payload(tmp_path_factory):
    out = tmp_path_factory.mktemp("alerts") / "alerts.json"
    returned = alerts.run_alerts(alerts.AlertsConfig.quick_run(**TINY_ALERTS), out=out, console=None)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    return written


def _ordered(q: dict, keys) -> bool:
    values = [q[k] for k in keys]
    return all(math.isfinite(v) for v in values) and values == sorted(values)


def _check_targets(targets: list[dict]) -> None:
    for t in targets:
        expected = "FAIL" if t["void"] else report.judge(t["measured"], t["op"], t["threshold"])
        assert t["status"] == expected, t


# --- fusion -----------------------------------------------------------------------


def test_fusion_accuracy_rows_are_finite_and_consistent(fusion_payload):
    assert {"suite", "machine", "config", "accuracy", "throughput", "targets", "targets_met"} <= fusion_payload.keys()
    assert {"nproc", "numba_threads", "numpy", "numba", "geomon", "date_utc"} <= fusion_payload["machine"].keys()
    rows = {r["label"]: r for r in fusion_payload["accuracy"]}
    assert list(rows) == [label for label, _, _ in fusion.ROWS]
    for r in rows.values():
        assert _ordered(r["raw_error_m"], ("p50", "p90", "p99")), r
        assert _ordered(r["fused_error_m"], ("p50", "p90", "p99")), r
        assert r["raw_error_m"]["p50"] > 0
        assert r["p90_ratio"] == pytest.approx(r["fused_error_m"]["p90"] / r["raw_error_m"]["p90"])
        assert r["fused_p90_m"] == r["fused_error_m"]["p90"]
        assert r["n_finite"] == r["n_fixes"] > 0  # every simulated fix has a position
        assert sum(r["status_counts"].values()) == r["n_fixes"]
        assert 0 < r["n_nees"] <= r["n_finite"]
        assert math.isfinite(r["nees_mean"]) and r["nees_mean"] > 0
        assert 0.0 <= r["nees_over_chi2_99"] <= 1.0
    # Same paths, noisier device: the sigma_m option must reach the simulator.
    assert rows["open_sky_4.7m"]["raw_error_m"]["p50"] > 1.3 * rows["open_sky"]["raw_error_m"]["p50"]
    assert rows["augmented"]["raw_error_m"]["p90"] < rows["open_sky"]["raw_error_m"]["p90"]


def test_fusion_throughput_and_targets(fusion_payload):
    tp = fusion_payload["throughput"]
    assert tp["n_fixes"] == tp["copies"] * tp["base_fixes"] >= TINY_FUSION["throughput_fixes"]
    assert tp["n_tracks"] == tp["copies"] * TINY_FUSION["n_subjects"]
    assert tp["nonfinite"] == 0
    assert tp["geomon"]["fixes_per_s"] == pytest.approx(tp["n_fixes"] / tp["geomon"]["median_s"])
    assert tp["numba_threads"] >= 1
    if tp["filterpy"] is None:
        assert "filterpy" in tp["filterpy_skipped"] and tp["ratio"] is None
    else:
        assert tp["filterpy"]["n_fixes"] == TINY_FUSION["filterpy_fixes"]
        assert tp["ratio"] == pytest.approx(tp["geomon"]["fixes_per_s"] / tp["filterpy"]["fixes_per_s"])
    targets = fusion_payload["targets"]
    assert len(targets) == len(fusion.ACCURACY_TARGETS) + 1
    _check_targets(targets)
    assert fusion_payload["targets_met"] == all(t["status"] != "FAIL" for t in targets)


def test_nees_matches_solving_the_covariance():
    assert fusion.nees_2d(*(np.array([v]) for v in (1.0, 0.0, 4.0, 1.0, 0.0)))[0] == 0.25
    # P = [[2, 1], [1, 2]], e = (1, 1): P^-1 = [[2, -1], [-1, 2]] / 3, so 2/3.
    value = fusion.nees_2d(*(np.array([v]) for v in (1.0, 1.0, 2.0, 2.0, 1.0)))[0]
    assert value == pytest.approx(2.0 / 3.0)
    rng = np.random.default_rng(5)
    a = rng.normal(size=(50, 2, 2))
    p = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(2)
    e = rng.normal(size=(50, 2))
    expected = np.einsum("ni,ni->n", e, np.linalg.solve(p, e[:, :, None])[:, :, 0])
    got = fusion.nees_2d(e[:, 0], e[:, 1], p[:, 0, 0], p[:, 1, 1], p[:, 0, 1])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert np.isnan(fusion.nees_2d(*(np.array([v]) for v in (1.0, 1.0, 1.0, 1.0, 1.0)))[0])  # singular


def test_filterpy_peer_tracks_a_straight_walk():
    t_ms = np.arange(40, dtype=np.int64) * 15_000
    true_x = 1.2 * t_ms / 1000.0
    rng = np.random.default_rng(0)
    x = true_x + rng.normal(0.0, 2.0, t_ms.size)
    y = rng.normal(0.0, 2.0, t_ms.size)
    fx, fy = fusion.filterpy_fuse(np.array([0, 20, 40]), t_ms, x, y, np.full(t_ms.size, 2.0))
    late = np.r_[10:20, 30:40]  # after each track's start-up
    assert np.sqrt(np.mean((fx[late] - true_x[late]) ** 2 + fy[late] ** 2)) < 2.0 * np.sqrt(2.0)
    assert fx[20] == x[20]  # the second track restarts at its first fix


# --- alerts -----------------------------------------------------------------------


def _check_counts(c: dict, subject_days: float) -> None:
    assert 0 <= c["true_positives"] <= min(c["n_alerts"], c["n_truth"])
    assert c["false_alerts"] == c["n_alerts"] - c["true_positives"]
    assert c["false_per_subject_day"] == pytest.approx(c["false_alerts"] / subject_days)
    if c["n_truth"]:
        assert c["recall"] == pytest.approx(c["true_positives"] / c["n_truth"])
    if c["true_positives"]:
        assert _ordered(c["delay_s"], ("p50", "p95", "max"))
    else:
        assert c["delay_s"]["p50"] is None


def test_alerts_payload_counts_add_up(alerts_payload):
    config, sc = alerts_payload["config"], alerts_payload["scenario"]
    assert config["subject_days"] == pytest.approx(TINY_ALERTS["n_subjects"] * TINY_ALERTS["hours"] / 24)
    assert sc["n_truth"] > 0 and sc["n_fixes"] > 0
    assert sum(sc["subject_kinds"].values()) == TINY_ALERTS["n_subjects"]
    assert set(alerts_payload["methods"]) == {"geomon", "raw_pip"}
    for m in alerts_payload["methods"].values():
        kinds, total = m["kinds"], m["total"]
        assert set(alerts.KINDS) <= kinds.keys()
        for c in [*kinds.values(), total]:
            _check_counts(c, config["subject_days"])
        for key in ("n_truth", "n_alerts", "true_positives", "false_alerts"):
            assert total[key] == sum(c[key] for c in kinds.values()), key
        assert total["n_truth"] == sc["n_truth"]
        assert sum(f["false_alerts"] for f in m["false_by_subject_kind"].values()) == total["false_alerts"]
        assert sum(f["n_subjects"] for f in m["false_by_subject_kind"].values()) == TINY_ALERTS["n_subjects"]
        assert 0 <= m["long_breaches_confirmed"] <= sc["n_long_breaches"] <= sc["n_truth"]
        assert m["timing"]["fixes_per_s"] > 0
    _check_targets(alerts_payload["targets"])


# --- the raw point-in-polygon baseline --------------------------------------------

SQUARE = shapely.box(0.0, 0.0, 10.0, 10.0)


def _rows(table):
    return table.to_pylist()


def _ms(rows, key):
    return [None if r[key] is None else int(r[key].timestamp() * 1000) for r in rows]


def test_raw_pip_one_exit_and_back():
    x = np.array([5.0, 5.0, 15.0, 15.0, 5.0])
    t = np.arange(5, dtype=np.int64) * 1000 + 1_700_000_000_000
    table = alerts.raw_pip_alerts(["a"] * 5, t, x, np.full(5, 5.0), {"home": ("permitted", SQUARE)})
    rows = _rows(table)
    assert len(rows) == 1
    assert rows[0]["kind"] == "permitted_exit" and rows[0]["zone_id"] == "home" and rows[0]["subject_id"] == "a"
    assert _ms(rows, "onset_ts") == _ms(rows, "confirmed_ts") == [t[2]]
    assert _ms(rows, "ended_ts") == [t[4]]


def test_raw_pip_forbidden_first_fix_and_open_alert_per_track():
    # Subject "a": inside the forbidden square at its first fix, out, in again until its track ends.
    # Subject "b": starts inside too; its alert must not merge with a's open one. Input order shuffled.
    sid = ["a"] * 5 + ["b"] * 2
    x = np.array([5.0, 20.0, 20.0, 5.0, 6.0, 5.0, 20.0])
    t = np.array([0, 1, 2, 3, 4, 0, 1], dtype=np.int64) * 15_000
    zones = {"pub": ("forbidden", SQUARE), "office": ("jurisdiction", shapely.box(-100, -100, 100, 100))}
    order = np.random.default_rng(3).permutation(len(sid))
    table = alerts.raw_pip_alerts(np.array(sid, object)[order], t[order], x[order], np.full(7, 5.0)[order], zones)
    rows = _rows(table)
    assert [(r["subject_id"], r["kind"], r["zone_id"]) for r in rows] == [("a", "forbidden_entry", "pub")] * 2 + [
        ("b", "forbidden_entry", "pub")]
    assert _ms(rows, "onset_ts") == [0, 45_000, 0]
    assert _ms(rows, "ended_ts") == [15_000, None, 15_000]


def _reference_raw_pip(sid, t, x, y, zones):
    """Plain loop: per subject and zone, walk the fixes in time order."""
    out = []
    for subject in sorted(set(sid)):
        idx = sorted((i for i in range(len(sid)) if sid[i] == subject), key=lambda i: t[i])
        for zone_id, (kind, geometry) in zones.items():
            open_onset = None
            for i in idx:
                inside = geometry.contains(shapely.Point(x[i], y[i]))
                wrong = not inside if kind == "permitted" else inside
                if wrong and open_onset is None:
                    open_onset = int(t[i])
                elif not wrong and open_onset is not None:
                    out.append((subject, zone_id, open_onset, int(t[i])))
                    open_onset = None
            if open_onset is not None:
                out.append((subject, zone_id, open_onset, None))
    return sorted(out, key=lambda r: (r[0], r[2], r[1]))


def test_raw_pip_matches_a_plain_loop_on_random_walks():
    rng = np.random.default_rng(11)
    n = 600
    sid = rng.choice(["s1", "s2", "s3"], n).tolist()
    t = rng.permutation(n).astype(np.int64) * 1000
    x, y = rng.uniform(-3.0, 13.0, n), rng.uniform(-3.0, 13.0, n)
    zones = {"county": ("permitted", SQUARE), "bar": ("forbidden", shapely.Point(4.0, 4.0).buffer(2.5))}
    rows = _rows(alerts.raw_pip_alerts(sid, t, x, y, zones))
    got = [(r["subject_id"], r["zone_id"], *_ms([r], "onset_ts"), *_ms([r], "ended_ts")) for r in rows]
    expected = _reference_raw_pip(sid, t, x, y, zones)
    assert len(expected) > 20
    assert got == expected


def test_raw_pip_on_no_fixes_is_an_empty_table():
    table = alerts.raw_pip_alerts([], np.zeros(0, np.int64), np.zeros(0), np.zeros(0), {"c": ("permitted", SQUARE)})
    assert table.num_rows == 0 and table.schema == alerts.RAW_ALERT_SCHEMA


def test_scenario_zones_refuse_a_frame_mismatch():
    from geomon.sim.scenarios import scenario

    sc = scenario("augmented", n_subjects=2, hours=0.25, seed=1)  # no breaches
    zones = alerts.scenario_zones(sc)
    assert zones["county"][0] == "permitted" and shapely.contains_xy(zones["county"][1], sc.true_x_m, sc.true_y_m).all()
    shifted = {k: shapely.transform(g, lambda c: c + 5.0) for k, g in sc.zone_geometry_m.items()}
    with pytest.raises(RuntimeError, match="wrong outline"):
        alerts.scenario_zones(SimpleNamespace(zones=sc.zones, frame=sc.frame, zone_geometry_m=shifted))


# --- command line -----------------------------------------------------------------


def test_cli_fusion_quick(tmp_path):
    out = tmp_path / "fusion.json"
    result = CliRunner().invoke(app, ["fusion", "--quick", "--subjects", "1", "--hours", "0.25", "--throughput-fixes",
                                      "5000", "--filterpy-fixes", "100", "--repeat", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output and "open_sky_4.7m" in result.output
    assert json.loads(out.read_text())["config"]["n_subjects"] == 1


def test_cli_alerts_strict_exits_1_on_a_missed_target(tmp_path, monkeypatch):
    args = ["alerts", "--quick", "--subjects", "7", "--hours", "1", "--out", str(tmp_path / "alerts.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "raw PIP" in result.output and "Targets" in result.output
    strict = tmp_path / "targets.toml"   # no run can meet it
    strict.write_text('[alerts]\nfalse_alerts_per_subject_day = { op = "<=", value = -1.0 }\n')
    monkeypatch.setattr(targets, "DEFAULT_PATH", strict)
    result = CliRunner().invoke(app, [*args, "--strict"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
