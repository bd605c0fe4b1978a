"""Smoke test of the latency suite: a few seconds of the live path in real time, through its command."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from benchmarks.__main__ import app


def test_latency_quick_run_measures_alerts_batches_and_cpu(tmp_path):
    out = tmp_path / "latency.json"
    result = CliRunner().invoke(app, ["latency", "--quick", "--duration", "10", "--warmup", "2", "--out", str(out)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    (run,) = payload["runs"]
    assert run["subjects"] == 500 and run["ticks"] > 10
    assert run["alerts"] >= 1 and run["alert_latency_s"]["p99"] is not None
    assert 0 < run["alert_latency_s"]["p50"] <= run["alert_latency_s"]["max"]
    assert run["batch_s"]["p50"] > 0 and run["cpu_pct"] > 0
    assert {t["name"].split(": ")[1] for t in payload["targets"]} == {"p99 fix arrival -> committed alert",
                                                                       "engine CPU, % of one core"}
    assert "alert latency" in result.output
