"""geomon bench (benchmarks/bench.py): the ci scenario of every suite runs, every metric is held to
benchmarks/targets.toml, --check and --compare decide as documented, and the pictures are drawn."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from benchmarks import bench, targets
from geomon.cli.main import app

ENV = {"COLUMNS": "220"}


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = CliRunner().invoke(app, ["bench", "--scenario", "ci", "--out", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "bench-ci.json").read_text()), result.output


def test_the_ci_scenario_runs_every_suite_and_names_every_metric_in_targets_toml(ci_run):
    out, payload, output = ci_run
    assert list(payload["suites"]) == [s.name for s in bench.SUITES]
    for name, s in payload["suites"].items():
        assert s["metrics"], name
        assert (out / s["files"][0]).exists()
        for m in s["metrics"]:
            # Every metric has a key and a threshold from the file: a suite adding a metric must name it there.
            assert m["key"] and m["source"] == "targets.toml", (name, m["key"])
            assert m["status"] in ("PASS", "FAIL", "SKIP")
    assert payload["versions"]["numpy"] and payload["machine"]["nproc"] >= 1
    # The floor: every streaming kernel's rate set against the bandwidth measured at the start.
    bw = payload["memory_bandwidth"]
    assert bw["read_gbs"] > 0.1 and bw["copy_gbs"] > 0.1
    rows = {r["suite"]: r for r in payload["floor"]}
    assert set(rows) == {"pip", "fusion", "stay", "encounters", "replay"}
    for r in rows.values():
        assert r["floor_items_per_s"] == pytest.approx(
            (bw["copy_gbs"] if r["suite"] == "fusion" or r["suite"] == "pip" else bw["read_gbs"]) * 1e9
            / r["bytes_per_item"]) and r["share_of_floor"] > 0
    assert "memory-bandwidth floor" in output
    assert "geomon bench --scenario ci" in output and "Suites" in output


def test_the_pictures_are_pngs_of_throughput_and_latency(ci_run):
    out, payload, _ = ci_run
    assert payload["pictures"] == ["bench-ci-throughput.png", "bench-ci-latency.png"]
    for name in payload["pictures"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def _metric(payload, suite, key):
    return next(m for m in payload["suites"][suite]["metrics"] if m["key"] == key)


def test_compare_flags_what_moved_the_wrong_way_beyond_the_noise(ci_run):
    _, payload, _ = ci_run
    old = copy.deepcopy(payload)
    ratio = _metric(old, "zones", "zoneindex_vs_strtree")
    delay = _metric(old, "alerts", "p95_delay_s")
    rss = _metric(old, "replay", "peak_rss_gb")
    ratio["measured"] *= 2.0            # more is better: now half of it is a regression
    delay["measured"] *= 2.0            # less is better: now half of it is better
    rss["measured"] *= 1.03             # within the 5 % tolerance
    rows = {r["key"]: r for r in bench.compare(old, payload)}
    assert rows["zoneindex_vs_strtree"]["verdict"] == "regression"
    assert rows["p95_delay_s"]["verdict"] == "better"
    assert rows["peak_rss_gb"]["verdict"] == "same"
    # The spread of repeated runs widens what counts as noise.
    ratio["spread"] = ratio["measured"]
    assert {r["key"]: r for r in bench.compare(old, payload)}["zoneindex_vs_strtree"]["verdict"] == "same"
    # A verdict that went from PASS to FAIL is a regression whatever the noise.
    new = copy.deepcopy(payload)
    _metric(new, "replay", "peak_rss_gb")["status"] = "FAIL"
    _metric(old, "replay", "peak_rss_gb")["status"] = "PASS"
    assert {r["key"]: r for r in bench.compare(old, new)}["peak_rss_gb"]["verdict"] == "regression"


def test_check_exits_1_on_a_missed_target_or_a_regression(ci_run, tmp_path, monkeypatch):
    _, payload, _ = ci_run
    args = ["bench", "--scenario", "ci", "--suite", "replay", "--out", str(tmp_path / "r")]
    passed = CliRunner().invoke(app, [*args, "--check"], env=ENV)
    assert passed.exit_code == 0, passed.output
    assert "every target met" in passed.output
    old = copy.deepcopy(payload)
    _metric(old, "replay", "peak_rss_gb")["measured"] = 0.001     # the old run needed far less memory
    (tmp_path / "old.json").write_text(json.dumps(old))
    compared = CliRunner().invoke(app, [*args, "--check", "--compare", str(tmp_path / "old.json")], env=ENV)
    assert compared.exit_code == 1 and "1 regression(s)" in compared.output
    # Two results compared without running anything.
    (tmp_path / "new.json").write_text(json.dumps(payload))
    both = CliRunner().invoke(app, ["bench", "--compare", str(tmp_path / "old.json"), "--against",
                                    str(tmp_path / "new.json"), "--check"], env=ENV)
    assert both.exit_code == 1 and "1 regression(s)" in both.output and "Suites" not in both.output
    same = CliRunner().invoke(app, ["bench", "--compare", str(tmp_path / "new.json"), "--against",
                                    str(tmp_path / "new.json"), "--check"], env=ENV)
    assert same.exit_code == 0 and "0 regression(s)" in same.output
    strict = tmp_path / "targets.toml"
    strict.write_text('[replay]\npeak_rss_gb = { op = "<", value = 0.001 }\n')
    monkeypatch.setattr(targets, "DEFAULT_PATH", strict)
    missed = CliRunner().invoke(app, [*args, "--check"], env=ENV)
    assert missed.exit_code == 1 and "target(s) missed: peak_rss_gb" in missed.output
    unchecked = CliRunner().invoke(app, args, env=ENV)
    assert unchecked.exit_code == 0


def test_the_targets_file_is_checked_and_looked_up_by_exact_key_then_base(tmp_path):
    table = targets.load()
    assert targets.lookup(table, "latency", "cpu_pct@100000")["value"] == 20.0
    assert targets.lookup(table, "encounters", "encounters_fused_recall@augmented")["value"] == 1.0
    assert targets.lookup(table, "encounters", "encounters_fused_recall@urban")["value"] == 0.95
    assert targets.lookup(table, "pip", "zoneindex_vs_strtree")["value"] == 10.0      # the zones suite's table
    assert targets.lookup(table, "latency", "no_such_metric") is None
    for text, message in (('[a]\nx = { op = "=>", value = 1 }\n', "op must be"),
                          ('[a]\nx = { op = "in", value = 1 }\n', "value = \\[low, high\\]"),
                          ('[a]\nx = { op = "<", value = 1, gaol = 2 }\n', "unknown field"),
                          # No looser gate beside the product's bar: the bar is the gate.
                          ('[a]\nx = { op = "<", value = 2, goal = 1 }\n', "unknown field.*goal"),
                          ('[a]\nx = { op = "<" }\n', "needs op and value")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            targets.load(bad)


def test_unknown_scenarios_and_suites_are_refused(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--scenario", "nation", "--out", str(tmp_path)], env=ENV)
    assert result.exit_code == 1 and "unknown scenario 'nation'" in result.output
    result = CliRunner().invoke(app, ["bench", "--scenario", "ci", "--suite", "pipp", "--out", str(tmp_path)],
                                env=ENV)
    assert result.exit_code == 1 and "unknown suite(s) pipp" in result.output
