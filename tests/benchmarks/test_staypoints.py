"""Smoke test of the stay-point suite at toy sizes: its JSON, its agreement checks, its command line.

The peers (trackintel, MovingPandas) come with the ``bench`` extra; without
them their rows must say skipped, with them trackintel must agree with geomon
run on trackintel's sphere.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks import report, staypoints
from benchmarks.__main__ import app

TINY = {"n_subjects": 3, "hours": 6.0, "throughput_fixes": 30_000, "public_fixes": 8_000, "peer_fixes": 1_500,
        "repeat": 1}


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    out = tmp_path_factory.mktemp("staypoints") / "staypoints.json"
    returned = staypoints.run_staypoints(staypoints.StaypointsConfig.quick_run(**TINY), out=out, console=None)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    return written


def test_kernel_and_public_rows(payload):
    k, p = payload["kernel"], payload["public"]
    assert k["n_fixes"] == k["copies"] * k["base_fixes"] >= TINY["throughput_fixes"]
    assert k["n_tracks"] == k["copies"] * TINY["n_subjects"]
    assert k["n_stays"] > 0 and k["same_as_first_call"]
    assert k["fixes_per_s"] == pytest.approx(k["n_fixes"] / k["median_s"])
    assert 0 < p["n_fixes"] <= TINY["public_fixes"] and p["n_stays"] > 0 and p["same_as_kernel"]
    for t in payload["targets"]:
        assert t["status"] == ("FAIL" if t["void"] else report.judge(t["measured"], t["op"], t["threshold"]))
    assert payload["targets_met"] == all(t["status"] != "FAIL" for t in payload["targets"])


@pytest.mark.parametrize("name", staypoints.PEERS)
def test_peer_rows(payload, name):
    row = payload["peers"][name]
    if importlib.util.find_spec(name) is None:
        assert name in row["skipped"]
        return
    assert row["skipped"] is None and row["n_fixes"] <= TINY["peer_fixes"] and row["fixes_per_s"] > 0
    if name == "trackintel":
        assert row["n_stays"] > 0 and row["mismatches_sphere"] == 0
        assert row["geomon_n_stays"] >= row["n_stays"] - row["differences_wgs84"]


def test_head_keeps_whole_tracks_and_cuts_the_last():
    data = staypoints.Tracks(np.array([0, 3, 7]), np.arange(7), np.zeros(7), np.zeros(7))
    head = data.head(5)
    assert head.offsets.tolist() == [0, 3, 5] and head.t_ms.tolist() == [0, 1, 2, 3, 4]
    table = head.table()
    assert table.column("subject_id").to_pylist() == ["track-000000"] * 3 + ["track-000001"] * 2


def test_cli_quick(tmp_path):
    out = tmp_path / "staypoints.json"
    args = ["staypoints", "--quick", "--subjects", "2", "--hours", "3", "--throughput-fixes", "5000",
            "--public-fixes", "2000", "--peer-fixes", "300", "--repeat", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output and "geomon.staypoints" in result.output
    assert json.loads(out.read_text())["config"]["n_subjects"] == 2
