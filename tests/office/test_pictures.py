"""Risk heat map and alert curves: counts against a plain-Python reference, and k-anonymity suppression."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.geo.crs import LocalFrame
from geomon.io.export import pseudonym
from geomon.office.pictures import alert_curves, plot_curves, plot_risk_map, risk_grid, risk_map_array

CST = timezone(timedelta(hours=8))
FRAME = LocalFrame(32650)
KEY = b"a pictures key of at least sixteen bytes"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _alerts(subjects, lons, lats, onsets=None, offices=None) -> pa.Table:
    n = len(subjects)
    onsets = onsets or [datetime(2026, 11, 2, 8, tzinfo=CST)] * n
    offices = offices or ["office-01"] * n
    return pa.table({"subject_id": subjects, "office_id": offices, "onset_ts": onsets,
                     "lon": pa.array(lons, pa.float64()), "lat": pa.array(lats, pa.float64())})


def _reference_cells(alerts: pa.Table, frame: LocalFrame, cell_m: float) -> dict:
    """Plain Python: per cell, the alert count and the set of subjects."""
    cells: dict = {}
    for r in alerts.to_pylist():
        x, y = frame.project([r["lon"]], [r["lat"]])
        cell = (math.floor(float(x[0]) / cell_m), math.floor(float(y[0]) / cell_m))
        n, who = cells.get(cell, (0, frozenset()))
        cells[cell] = (n + 1, who | {r["subject_id"]})
    return cells


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(117.5, 117.9), st.floats(37.3, 37.7)), max_size=60),
       st.sampled_from([250.0, 1000.0, 3000.0]), st.integers(1, 4))
def test_grid_matches_reference_and_suppresses_small_cells(points, cell_m, k):
    alerts = _alerts([f"S{s}" for s, _, _ in points], [p[1] for p in points], [p[2] for p in points])
    grid = risk_grid(alerts, cell_m=cell_m, k=k, frame=FRAME)
    want = _reference_cells(alerts, FRAME, cell_m)
    got = {(r["ix"], r["iy"]): r for r in grid.cells.to_pylist()}
    assert set(got) == set(want)
    for cell, (n, who) in want.items():
        assert (got[cell]["n_alerts"], got[cell]["n_subjects"]) == (n, len(who))
        assert got[cell]["suppressed"] == (len(who) < k)
    # Counts add up: everything is either shown or counted as suppressed.
    shown = grid.shown().to_pylist()
    assert sum(r["n_alerts"] for r in shown) + grid.n_suppressed_alerts == alerts.num_rows
    assert all(r["n_subjects"] >= k for r in shown)
    # Nothing exported points at fewer than k persons: not the GeoJSON, not the picture's cells.
    doc = grid.to_geojson()
    assert all(f["properties"]["n_subjects"] >= k for f in doc["features"])
    assert len(doc["features"]) == len(shown)
    assert doc["suppressed"] == {"cells": grid.n_suppressed_cells, "alerts": grid.n_suppressed_alerts}
    image, _ = risk_map_array(grid)
    assert image.count() == len(shown) and int(image.sum() or 0) == sum(r["n_alerts"] for r in shown)


def test_hand_computed_grid_and_polygons():
    """Three subjects in one 1 km cell, one subject alone in another: k=3 shows the first only."""
    x0, y0 = 560_000.0, 4_150_000.0
    xs = [x0 + 100, x0 + 900, x0 + 500, x0 + 10, x0 + 5_500]
    ys = [y0 + 100, y0 + 900, y0 + 20, y0 + 10, y0 + 5_500]
    lon, lat = FRAME.unproject(xs, ys)
    alerts = _alerts(["A", "B", "C", "A", "D"], list(lon), list(lat))
    grid = risk_grid(alerts, cell_m=1000.0, k=3, frame=FRAME)
    assert grid.shown().to_pylist()[0] | {"lon": 0, "lat": 0} == {
        "ix": 560, "iy": 4150, "lon": 0, "lat": 0, "n_alerts": 4, "n_subjects": 3, "suppressed": False}
    assert (grid.n_suppressed_cells, grid.n_suppressed_alerts) == (1, 1)
    doc = grid.to_geojson()
    polygon = shapely.geometry.shape(doc["features"][0]["geometry"])
    inside = [polygon.contains(shapely.Point(a, b)) for a, b in zip(lon, lat)]
    assert inside == [True, True, True, True, False]
    assert "A" not in json.dumps(doc) and "D" not in json.dumps(doc).replace("FeatureCollection", "")
    assert abs(shapely.area(shapely.transform(polygon, lambda c: np.column_stack(FRAME.project(c[:, 0], c[:, 1]))))
               - 1e6) < 1.0
    with pytest.raises(ValueError, match="k must be"):
        risk_grid(alerts, k=0)
    with pytest.raises(ValueError, match="cell_m"):
        risk_grid(alerts, cell_m=0)
    empty = risk_grid(alerts.slice(0, 0), frame=FRAME)
    assert empty.cells.num_rows == 0 and empty.to_geojson()["features"] == []


def test_curves_hand_computed():
    """Two offices over three weeks; week 2 of office-02 has one subject only and is suppressed at k=2."""
    def at(d, h=9):
        return datetime(2026, 11, d, h, tzinfo=CST)

    onsets = [at(2), at(3), at(4), at(17), at(18),   # office-01: weeks of Nov 2 (3 alerts, 2 subjects), Nov 16 (2)
              at(2), at(10), at(11, 23)]              # office-02: Nov 2 (1 alert), Nov 9 (2 alerts, one subject)
    subjects = ["A", "B", "A", "A", "C", "D", "E", "E"]
    offices = ["office-01"] * 5 + ["office-02"] * 3
    alerts = _alerts(subjects, [117.7] * 8, [37.5] * 8, onsets, offices)
    curves = alert_curves(alerts, by="office", bin="week", k=2).to_pylist()
    got = [(r["group"], r["period"], r["n_alerts"], r["suppressed"]) for r in curves]
    assert got == [("office-01", date(2026, 11, 2), 3, False), ("office-01", date(2026, 11, 9), 0, False),
                   ("office-01", date(2026, 11, 16), 2, False),
                   ("office-02", date(2026, 11, 2), None, True), ("office-02", date(2026, 11, 9), None, True),
                   ("office-02", date(2026, 11, 16), 0, False)]
    roster = pa.table({"subject_id": list("ABCDEFGH"), "office_id": ["office-01"] * 4 + ["office-02"] * 4})
    per = alert_curves(alerts, k=1, roster=roster).to_pylist()
    assert [r["alerts_per_subject"] for r in per] == [0.75, 0.0, 0.5, 0.25, 0.5, 0.0]
    daily = alert_curves(alerts, by="subject", bin="day", key=KEY).to_pylist()
    e = [r for r in daily if r["group"] == pseudonym("E", KEY)]
    assert [(r["period"], r["n_alerts"]) for r in e if r["n_alerts"]] == [(date(2026, 11, 10), 1),
                                                                         (date(2026, 11, 11), 1)]
    assert len(e) == 17   # Nov 2 .. Nov 18, zero-filled
    with pytest.raises(ValueError, match="pseudonym key"):
        alert_curves(alerts, by="subject")
    with pytest.raises(ValueError, match="bin must be"):
        alert_curves(alerts, bin="month")


def test_pictures_are_written(tmp_path):
    lon, lat = FRAME.unproject([560_100.0] * 6, [4_150_100.0] * 6)
    alerts = _alerts(list("ABCABC"), list(lon), list(lat))
    out = plot_risk_map(risk_grid(alerts, k=3, frame=FRAME), tmp_path / "heat.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    out = plot_curves(alert_curves(alerts, k=3), tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_commands_on_the_sample(tmp_path, monkeypatch):
    from geomon.run.replay import replay
    from geomon.store.alert_store import AlertStore

    db = tmp_path / "store.duckdb"
    replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv", db=db)
    with AlertStore(db, read_only=True) as store:
        alerts = store.list_alerts()
    runner = CliRunner()
    heat, cells = tmp_path / "heat.png", tmp_path / "heat.geojson"
    result = runner.invoke(app, ["plot", "heatmap", "--db", str(db), "--zones", str(SAMPLE_DIR / "zones.geojson"),
                                 "--out", str(heat), "--geojson", str(cells), "--cell-m", "3000", "--k", "3"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert heat.read_bytes()[:8] == PNG_MAGIC
    doc = json.loads(cells.read_text())
    shown = sum(f["properties"]["n_alerts"] for f in doc["features"])
    assert shown + doc["suppressed"]["alerts"] == alerts.num_rows
    assert all(f["properties"]["n_subjects"] >= 3 for f in doc["features"])
    assert not any(s in cells.read_text() for s in set(alerts.column("subject_id").to_pylist()))
    curve, points = tmp_path / "curves.png", tmp_path / "curves.csv"
    result = runner.invoke(app, ["plot", "curves", "--db", str(db), "--out", str(curve), "--bin", "day",
                                 "--csv", str(points), "--subjects", str(SAMPLE_DIR / "subjects.csv")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert curve.read_bytes()[:8] == PNG_MAGIC
    monkeypatch.delenv("GEOMON_PSEUDONYM_KEY", raising=False)
    result = runner.invoke(app, ["plot", "curves", "--db", str(db), "--out", str(curve), "--by", "subject"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "pseudonym key" in result.output
