"""Smoke tests of the fusion and alerts suites at toy sizes, and of the raw point-in-polygon baseline.

The suites run in seconds here; the tests check the JSON's structure, that its
numbers are finite and add up, that the fusion matrix's judging can fail (an
overconfident filter misses the NEES bars), picks the worst cells and tunes on
the training cells alone, and that the raw baseline gives the answers a plain
loop (and a hand count) gives.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from benchmarks import alerts, fusion, fusion_matrix, report, targets
from benchmarks.__main__ import app
from geomon.sim.field import MOTIONS
from geomon.sim.field_noise import NOISES

TINY_FUSION = {"n_tracks": 2, "fixes_per_cell": 60, "departure_trials": 4, "n_subjects": 2, "hours": 0.5,
               "throughput_fixes": 20_000, "filterpy_fixes": 300, "repeat": 1}
TINY_ALERTS = {"n_subjects": 7, "hours": 3.0}


@pytest.fixture(scope="module")
def fusion_payload(tmp_path_factory):
    out = tmp_path_factory.mktemp("fusion") / "fusion.json"
    returned = fusion.run_fusion(fusion.FusionConfig.quick_run(**TINY_FUSION), out=out, console=None)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    return out, written


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


def test_the_matrix_has_every_cell_and_metric(fusion_payload):
    out, payload = fusion_payload
    assert {"suite", "machine", "config", "matrix", "throughput", "targets", "targets_met"} <= payload.keys()
    matrix = payload["matrix"]
    cells = fusion_matrix.matrix_cells(MOTIONS, NOISES, fusion_matrix.INTERVALS_S)
    assert [r["label"] for r in matrix["cells"]] == [c.label for c in cells]
    assert len(cells) == 6 * 7 * 4
    bars = {name for name, _, _ in fusion_matrix.BARS}
    for r in matrix["cells"]:
        assert _ordered(r["raw_error_m"], ("p50", "p90", "p95", "p99")), r["label"]
        assert _ordered(r["fused_error_m"], ("p50", "p90", "p95", "p99")), r["label"]
        assert r["p90_ratio"] == pytest.approx(r["fused_error_m"]["p90"] / r["raw_error_m"]["p90"])
        assert r["p99_ratio"] == pytest.approx(r["fused_error_m"]["p99"] / r["raw_error_m"]["p99"])
        assert r["n_fixes"] == TINY_FUSION["fixes_per_cell"] and r["n_nonfinite"] == 0
        assert sum(r["status_counts"].values()) == r["n_fixes"]
        assert math.isfinite(r["nees_mean"]) and r["nees_mean"] > 0 and 0.0 <= r["outside95"] <= 1.0
        assert set(r["missed"]) <= bars
        assert r["missed"] == fusion_matrix.missed_bars(fusion_matrix._cell_of(r), r)
    scopes = [r["scope"] for r in matrix["cells"]]
    assert scopes.count("training") == 5 * 6 * 4 and scopes.count("held_out_both") == 4
    s = matrix["summaries"]
    assert s["all"]["n_cells"] == 168 and s["held_out_motion"]["n_cells"] == 28 and s["held_out_noise"]["n_cells"] == 24
    assert s["all"]["n_cells_missing"] == sum(1 for r in matrix["cells"] if r["missed"])
    dep = matrix["departure"]
    assert dep["n_trials"] == TINY_FUSION["departure_trials"] and math.isfinite(dep["error_sigma_max"])
    # The pictures and the docs table beside the JSON.
    assert (out.parent / "fusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out.parent / "fusion_matrix.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) == 1 + 168 + 1 + 4  # headers, cells, scopes


def test_fusion_targets_gate_the_worst_cells(fusion_payload):
    _, payload = fusion_payload
    targets = payload["targets"]
    _check_targets(targets)
    unnamed = [t["key"] for t in targets if t["source"] != "targets.toml"]
    assert not unnamed
    keys = {t["key"] for t in targets}
    assert {"p90_ratio_max", "nees_mean_min", "nees_mean_max", "outside95_max", "p90_ratio_max@white_moving_15s",
            "fused_p90_m_max@augmented_moving", "p90_ratio_max@held_out_motion", "nees_mean_max@held_out_noise",
            "p90_ratio_max@white_moving_15s_held_out_motion", "departure_error_sigma_max",
            "fuse_tracks_mfixes_per_s"} <= keys
    # No white cell in the multipath column: that bar is not reported for it.
    assert "p90_ratio_max@white_moving_15s_held_out_noise" not in keys
    by_key = {t["key"]: t for t in targets}
    rows = payload["matrix"]["cells"]
    assert by_key["p90_ratio_max"]["measured"] == max(r["p90_ratio"] for r in rows)
    assert by_key["nees_mean_min"]["measured"] == min(r["nees_mean"] for r in rows)
    assert payload["targets_met"] == all(t["status"] != "FAIL" for t in targets)


def test_fusion_throughput(fusion_payload):
    tp = fusion_payload[1]["throughput"]
    assert tp["n_fixes"] == tp["copies"] * tp["base_fixes"] >= TINY_FUSION["throughput_fixes"]
    assert tp["n_tracks"] == tp["copies"] * TINY_FUSION["n_subjects"]
    assert tp["nonfinite"] == 0
    assert tp["geomon"]["fixes_per_s"] == pytest.approx(tp["n_fixes"] / tp["geomon"]["median_s"])
    if tp["filterpy"] is None:
        assert "filterpy" in tp["filterpy_skipped"] and tp["ratio"] is None
    else:
        assert tp["filterpy"]["n_fixes"] == TINY_FUSION["filterpy_fixes"]
        assert tp["ratio"] == pytest.approx(tp["geomon"]["fixes_per_s"] / tp["filterpy"]["fixes_per_s"])


def test_an_overconfident_filter_fails_the_nees_bars_and_an_honest_one_meets_them():
    cell = fusion_matrix.Cell("rest", "white", 5)
    [(_, truth, fixes)] = fusion_matrix.simulate_cells([cell], seed=1, n_tracks=20, fixes_per_cell=20_000)
    rng = np.random.default_rng(0)
    # An honest "filter": the truth plus noise of exactly its reported covariance, a little tighter than raw.
    sigma = 0.5 * fixes.true_sigma_m
    var = sigma**2
    honest = (truth.x_m + sigma * rng.normal(size=sigma.size), truth.y_m + sigma * rng.normal(size=sigma.size),
              var, var, np.zeros_like(var), None, None, np.zeros(sigma.size, np.int8))
    row = fusion_matrix.cell_metrics(cell, truth, fixes, honest)
    assert row["nees_mean"] == pytest.approx(2.0, rel=0.05) and row["outside95"] == pytest.approx(0.05, abs=0.01)
    assert fusion_matrix.missed_bars(cell, row) == []
    # The same positions claiming a covariance 100 times too small.
    bad = honest[:2] + tuple(v / 100.0 for v in honest[2:5]) + honest[5:]
    row = fusion_matrix.cell_metrics(cell, truth, fixes, bad)
    assert row["nees_mean"] > 100 and {"NEES", "out95"} <= set(fusion_matrix.missed_bars(cell, row))
    # And the real filter with the same cell runs through the same judging.
    real = fusion_matrix.cell_metrics(cell, truth, fixes, fusion_matrix.run_filter(truth, fixes, {}))
    assert math.isfinite(real["nees_mean"])


def _row(label: str, **values) -> dict:
    motion, noise, interval = label.split("/")
    row = {"motion": motion, "noise": noise, "interval_s": int(interval.rstrip("s")), "label": label,
           "p90_ratio": 0.5, "p99_ratio": 0.5, "nees_mean": 2.0, "outside95": 0.05, "fused_p90_m": 0.5} | values
    row["missed"] = fusion_matrix.missed_bars(fusion_matrix._cell_of(row), row)
    return row


def test_the_worst_cell_is_picked_per_metric():
    rows = [_row("walk/white/5s", p90_ratio=0.9, nees_mean=1.2), _row("rest/white/60s", p90_ratio=1.3),
            _row("car_road/augmented/15s", fused_p90_m=1.7, nees_mean=3.5), _row("bus/white/15s", p90_ratio=0.8),
            _row("cycle/white/1s", p90_ratio=0.95, outside95=0.01)]
    w = fusion_matrix.worst(rows)
    assert w["p90_ratio_max"] == {"value": 1.3, "cell": "rest/white/60s"}
    assert w["nees_mean_min"] == {"value": 1.2, "cell": "walk/white/5s"}
    assert w["nees_mean_max"] == {"value": 3.5, "cell": "car_road/augmented/15s"}
    assert w["outside95_min"] == {"value": 0.01, "cell": "cycle/white/1s"}
    # Walking and driving in white at <= 15 s only: rest and cycling are not covered.
    assert w["p90_ratio_max@white_moving_15s"] == {"value": 0.9, "cell": "walk/white/5s"}
    assert w["fused_p90_m_max@augmented_moving"] == {"value": 1.7, "cell": "car_road/augmented/15s"}
    missing = fusion_matrix.worst([*rows, _row("bus/cell/60s", nees_mean=None)])
    assert missing["nees_mean_max"] == {"value": None, "cell": "bus/cell/60s"}
    assert fusion_matrix.worst([_row("rest/cell/5s")])["fused_p90_m_max@augmented_moving"]["cell"] is None
    assert fusion_matrix.misses_by_bar(rows) == {"p90>raw": 1, "p99>raw": 0, "NEES": 2, "out95": 1,
                                                 "p90>0.7raw": 2, "p90>=1m": 1}


def test_tuning_picks_fewest_violations_then_honest_nees_then_smallest_ratio():
    few_violations = [_row("walk/white/60s", nees_mean=2.9), _row("rest/cell/60s", nees_mean=1.5)]
    one_violation = [_row("walk/white/60s", nees_mean=2.0), _row("rest/cell/60s", nees_mean=3.1)]
    honest = [_row("walk/white/60s", nees_mean=2.1, p90_ratio=0.9)] * 2
    honest_smaller = [_row("walk/white/60s", nees_mean=1.95, p90_ratio=0.6)] * 2  # |ln 0.975| < |ln 1.05|
    near_but_worse = [_row("walk/white/60s", nees_mean=2.1, p90_ratio=0.8)] * 2
    scores = [fusion_matrix.tuning_score(r) for r in (one_violation, few_violations)]
    assert scores[0][0] == 1 and scores[1][0] == 0
    assert fusion_matrix.choose(scores) == 1
    scores = [fusion_matrix.tuning_score(r) for r in (near_but_worse, honest_smaller, honest)]
    assert fusion_matrix.choose(scores) == 1
    scores = [fusion_matrix.tuning_score(r) for r in (honest, near_but_worse)]
    assert fusion_matrix.choose(scores) == 1   # same violations and NEES: the smaller p90 ratio


def test_grid_points_drop_names_the_kernel_no_longer_knows():
    points, dropped = fusion_matrix.grid_points({"a": [1, 2], "b": [3, 4], "gone": [5]}, known={"a", "b"})
    assert points == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}] and dropped == ["gone"]
    assert fusion_matrix.grid_points({"gone": [1]}, known={"a"}) == ([{}], ["gone"])
    from geomon.kernels.fusion import DEFAULT_PARAMS

    points, _ = fusion_matrix.grid_points(fusion_matrix.TUNING_GRID, DEFAULT_PARAMS)
    assert len(points) >= 2  # today's grid names parameters the kernel has


def test_held_out_cells_are_excluded_from_tuning(monkeypatch):
    calls = []

    def fake_evaluate(cells, points, **sizes):
        calls.append(([c.label for c in cells], list(points)))
        # Point 20 is honest everywhere; the others are honest on the held-out cells only.
        return [[_row(c.label, nees_mean=2.0 if p.get("outlier_sigma_m") == 20.0
                      or fusion_matrix.scope(c, ("bus", "multipath")) != "training" else 5.0) for c in cells]
                for p in points]

    monkeypatch.setattr(fusion_matrix, "evaluate", fake_evaluate)
    monkeypatch.setattr(fusion_matrix, "TUNING_GRID", {"outlier_sigma_m": [10.0, 20.0, 40.0], "no_such_param": [1]})
    monkeypatch.setattr(fusion_matrix, "departure", lambda **kw: {"params": kw["params"]})
    config = fusion.FusionConfig.quick_run(tune=True, intervals_s=(5, 60))
    matrix = fusion_matrix.run_matrix(config, report.progress_console(None))
    assert matrix["params"] == {"outlier_sigma_m": 20.0} and matrix["departure"]["params"] == matrix["params"]
    assert matrix["tuning"]["dropped"] == ["no_such_param"] and matrix["tuning"]["chosen"] == 1
    for labels, points in calls:
        if len(points) > 1:   # the grid: training cells only
            assert all("bus/" not in label and "/multipath/" not in label for label in labels)
        else:                 # the held-out cells: the chosen point only
            assert points == [{"outlier_sigma_m": 20.0}]
            assert all(label.startswith("bus/") or "/multipath/" in label for label in labels)
    trained = [label for labels, points in calls if len(points) > 1 for label in labels]
    held = [label for labels, points in calls if len(points) == 1 for label in labels]
    assert len(trained) == 5 * 6 * 2 and len(held) == (7 + 6 - 1) * 2
    assert matrix["summaries"]["held_out_motion"]["n_cells_missing"] == 0


def test_scoped_keys_name_the_held_out_sets():
    assert fusion.scoped_key("p90_ratio_max", "") == "p90_ratio_max"
    assert fusion.scoped_key("p90_ratio_max", "held_out_motion") == "p90_ratio_max@held_out_motion"
    assert (fusion.scoped_key("p90_ratio_max@white_moving_15s", "held_out_noise")
            == "p90_ratio_max@white_moving_15s_held_out_noise")


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
    assert set(alerts_payload["methods"]) == {"geomon", "legacy", "raw_pip"}
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


def test_budget_scaled_scales_every_profiles_budget_and_nothing_else():
    from geomon.rules.load import default_rules

    rules = default_rules()
    scaled = alerts.budget_scaled(rules, 3.0)
    for name, prof in rules.profiles.items():
        assert scaled.profile(name)["breach_budget_per_day"] == pytest.approx(3.0 * prof["breach_budget_per_day"])
        assert {k: v for k, v in scaled.profile(name).items() if k != "breach_budget_per_day"} == \
            {k: v for k, v in prof.items() if k != "breach_budget_per_day"}


def test_alerts_tradeoff_sweeps_the_budget_and_draws_it(alerts_payload, tmp_path):
    curve = alerts_payload["tradeoff"]
    assert [p["budget_per_day"] for p in curve] == list(alerts.AlertsConfig.QUICK["sweep"])
    # A bigger budget lowers the threshold: never fewer alerts, so never fewer false ones on the same fixes.
    falses = [p["false_per_subject_day"] for p in curve]
    assert falses == sorted(falses)
    for p in curve:
        assert 0 <= p["long_breaches_missed"] <= alerts_payload["scenario"]["n_long_breaches"]
    path = tmp_path / "tradeoff.png"
    alerts.plot_tradeoff(alerts_payload, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    args = ["fusion", "--quick", "--tracks", "1", "--fixes-per-cell", "30", "--interval", "15", "--departure-trials",
            "2", "--subjects", "1", "--hours", "0.25", "--throughput-fixes", "5000", "--filterpy-fixes", "100",
            "--repeat", "1", "--hold-out-motion", "walk", "--hold-out-noise", "phone", "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output and "car_town" in result.output and "held-out row: walk" in result.output
    payload = json.loads(out.read_text())
    assert payload["config"]["n_tracks"] == 1 and payload["matrix"]["intervals_s"] == [15]
    assert payload["matrix"]["hold_out"] == {"motion": "walk", "noise": "phone"}
    result = CliRunner().invoke(app, ["fusion", "--quick", "--hold-out-motion", "horse", "--out", str(out)])
    assert result.exit_code != 0 and "horse" in result.output


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


def test_departure_reference_is_the_raw_fix_at_the_second_moving_fix(monkeypatch):
    """With a "filter" that outputs each fix, the fused error at the second moving fix is the raw one: the worst
    over the window can only be larger, and so can the count of trials over the bar."""
    def echo(truth, fixes, params):
        return fixes.x_m, fixes.y_m

    monkeypatch.setattr(fusion_matrix, "run_filter", echo)
    dep = fusion_matrix.departure(seed=5, n_trials=30, interval_s=15.0, params={})
    assert 0.0 < dep["raw_second_sigma_max"] <= dep["error_sigma_max"]
    assert dep["raw_second_trials_over_bar"] <= dep["trials_over_bar"]
    # Recomputed here: the same draws, each trial's fixes after its departure, the second of them.
    from geomon.sim import field, field_noise

    rng = fusion_matrix._rng(5, 999)
    truth, depart_ms = field.departure_truth(30, 15.0, rng)
    fixes = field_noise.add_noise(truth, "white", rng)
    worst = 0.0
    for s in range(truth.n_tracks):
        k = np.arange(truth.offsets[s], truth.offsets[s + 1])
        i = k[truth.t_ms[k] > depart_ms[s]][1]
        worst = max(worst, math.hypot(fixes.x_m[i] - truth.x_m[i], fixes.y_m[i] - truth.y_m[i]) / fixes.true_sigma_m[i])
    assert dep["raw_second_sigma_max"] == pytest.approx(worst, rel=1e-12)
