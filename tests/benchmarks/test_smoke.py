"""Smoke test of the benchmark harness: the pip suite at toy sizes, its JSON, its CLI.

Sizes are tiny so this runs in seconds; it checks the plumbing and that geomon
agrees with shapely on every registry row, not the speed.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import geomon
from benchmarks import registry, shapes
from benchmarks.__main__ import app
from benchmarks.pip import PipConfig, run_pip

TINY = {"n_points": 2_000, "vertex_counts": (16, 256), "n_zones": 20, "zone_points": 2_000, "repeat": 1}

CASE_KEYS = {
    "case",
    "outline",
    "n_vertices",
    "mid_line_crossings",
    "n_points",
    "n_zones",
    "n_true",
    "geomon",
    "reference",
    "ratio",
    "mismatches",
    "target",
}
IMPL_KEYS = {"label", "stand_in", "setup_s", "first_call_s", "median_s", "min_s", "repeats", "times_s", "points_per_s"}


def _check_payload(payload: dict, *, expect_stand_in: bool) -> None:
    assert {"suite", "machine", "config", "stand_in", "cases", "targets", "mismatches", "targets_met"} <= payload.keys()
    assert {"nproc", "numpy", "numba", "shapely", "date_utc"} <= payload["machine"].keys()
    assert payload["stand_in"] is expect_stand_in
    # 2 outlines x 2 vertex counts + the zone case
    assert len(payload["cases"]) == 5
    for case in payload["cases"]:
        assert CASE_KEYS <= case.keys()
        assert IMPL_KEYS <= case["geomon"].keys()
        assert IMPL_KEYS <= case["reference"].keys()
        assert case["mismatches"] == 0, case
        assert case["ratio"] > 0
    assert payload["mismatches"] == 0
    statuses = {t["name"]: t["status"] for t in payload["targets"]}
    assert len(statuses) == 3  # smooth 16 vertices, zones, the spread (no 4,096-vertex targets at these sizes)
    assert all(s in {"PASS", "FAIL", "SKIP"} for s in statuses.values())
    spread = payload["targets"][-1]
    assert spread["status"] == "SKIP" and spread["measured"] is None  # 65,536 not run


def test_pip_suite_quick_writes_json_with_zero_mismatches(tmp_path):
    out = tmp_path / "pip.json"
    returned = run_pip(PipConfig.quick_run(**TINY), out=out, console=None)
    written = json.loads(out.read_text())
    assert written["cases"][0]["case"] == "contains_xy"
    _check_payload(written, expect_stand_in=False)
    assert written["mismatches"] == returned["mismatches"] == 0


@pytest.fixture
def geomon_missing(monkeypatch):
    """Make ``geomon.geo.geometry`` unimportable, as before the fast path existed."""
    for name in ("contains_xy", "intersects_xy", "ZoneIndex"):
        monkeypatch.delattr(geomon, name, raising=False)  # drop what the lazy loader cached
    monkeypatch.setitem(sys.modules, "geomon.geo.geometry", None)


def test_missing_geomon_fails_with_a_clear_message(geomon_missing):
    with pytest.raises(registry.GeomonMissing, match=r"geomon\.contains_xy is not available.*--stand-in"):
        run_pip(PipConfig.quick_run(**TINY), out=None, console=None)


def test_stand_in_runs_the_harness_and_is_flagged(geomon_missing, tmp_path):
    payload = run_pip(PipConfig.quick_run(**TINY, stand_in=True), out=tmp_path / "pip.json", console=None)
    _check_payload(payload, expect_stand_in=True)


@pytest.mark.parametrize("name", sorted(registry.CASES))
def test_every_registry_row_agrees_with_its_peers(name):
    case = registry.CASES[name]
    if case.inputs is registry.PolygonPoints:
        polygon = shapes.spiky_outline(256)
        x, y = shapes.uniform_points(polygon.bounds, 3_000, seed=1, expand=0.1)
        data = registry.PolygonPoints(polygon, x, y)
    else:
        x, y = shapes.uniform_points(shapes.zone_square(), 3_000, seed=1)
        data = registry.ZonePoints.build(shapes.zone_field(30, seed=1), x, y)
    calls = {label: setup(data) for label, (setup, _) in registry.setups(case).items()}
    results = {label: registry.normalise(case, call(), data) for label, call in calls.items()}
    reference = results[case.reference]
    assert np.count_nonzero(reference) > 0
    for label, result in results.items():
        assert registry.mismatches(case, result, reference) == 0, label


def test_shapes_are_valid_and_the_comb_crosses_dozens_of_edges():
    import shapely

    for n in (16, 256, 4_096):
        for kind in shapes.OUTLINES:
            polygon = shapes.outline(kind, n)
            assert shapes.n_vertices(polygon) == n
            assert shapely.is_valid(polygon)
    assert shapes.mid_line_crossings(shapes.smooth_outline(4_096)) == 2
    assert shapes.mid_line_crossings(shapes.spiky_outline(4_096)) == 64
    assert shapely.is_valid(shapes.zone_field(200)).all()


def test_cli_quick_run(tmp_path):
    out = tmp_path / "cli.json"
    result = CliRunner().invoke(
        app,
        ["pip", "--quick", "--points", "2000", "--vertices", "16", "--zones", "20", "--zone-points", "2000",
         "--repeat", "1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "Targets" in result.output
    assert json.loads(out.read_text())["mismatches"] == 0
