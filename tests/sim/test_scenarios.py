"""Tests of geomon.sim.scenarios: determinism, clean loading, noise statistics, geometry and exact truth."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.schema import FIX_SCHEMA
from geomon.sim.scenarios import KINDS, SCENARIOS, Scenario, scenario
from geomon.sim.truth import TRUTH_SCHEMA

SMALL = dict(n_subjects=7, hours=6.0)
STATS = dict(n_subjects=10, hours=12.0, seed=3)  # about 29,000 fixes


@pytest.fixture(scope="module")
def mixed() -> Scenario:
    return scenario("mixed", seed=2)


def errors_m(sc: Scenario):
    """Reported minus true position per axis, metres, in the scenario's frame."""
    x, y = sc.frame.project(sc.fixes["lon"].to_numpy(), sc.fixes["lat"].to_numpy())
    return x - sc.true_x_m, y - sc.true_y_m


def per_subject(sc: Scenario):
    ids = sc.fixes["subject_id"].to_numpy(zero_copy_only=False)
    for sid in sc.kind_of_subject:
        yield sid, ids == sid


def boundary_distance_m(sc: Scenario, x, y):
    return shapely.distance(sc.zone_geometry_m["county"].exterior, shapely.points(x, y))


# --------------------------------------------------------------------------- shape and determinism


def test_same_seed_same_scenario_and_another_seed_differs():
    a, b = scenario("mixed", seed=5, **SMALL), scenario("mixed", seed=5, **SMALL)
    assert a.fixes.equals(b.fixes) and a.truth.equals(b.truth) and a.subjects.equals(b.subjects)
    np.testing.assert_array_equal(a.true_x_m, b.true_x_m)
    np.testing.assert_array_equal(a.true_y_m, b.true_y_m)
    assert a.zones == b.zones and a.kind_of_subject == b.kind_of_subject
    c = scenario("mixed", seed=6, **SMALL)
    assert not np.array_equal(a.true_x_m[:100], c.true_x_m[:100])


def test_noise_regimes_share_paths_and_geography():
    a, b = scenario("open_sky", seed=4, **SMALL), scenario("urban", seed=4, **SMALL)
    assert a.zones == b.zones
    assert a.noise_of_subject == dict.fromkeys(a.kind_of_subject, "open_sky")
    assert b.noise_of_subject == dict.fromkeys(b.kind_of_subject, "urban")
    # Same routine paths with their own schedules: the first fix of each subject is at the same home.
    first_a = np.unique(a.fixes["subject_id"].to_numpy(zero_copy_only=False), return_index=True)[1]
    first_b = np.unique(b.fixes["subject_id"].to_numpy(zero_copy_only=False), return_index=True)[1]
    np.testing.assert_array_equal(a.true_x_m[first_a], b.true_x_m[first_b])
    assert not np.array_equal(a.fixes["ts"].to_numpy()[first_a], b.fixes["ts"].to_numpy()[first_b])


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_loads_cleanly(name):
    sc = scenario(name, **SMALL)
    assert sc.fixes.schema.equals(FIX_SCHEMA)
    n = sc.fixes.num_rows
    assert n > 0 and sc.true_x_m.shape == sc.true_y_m.shape == sc.true_multipath.shape == (n,)
    fixes = load_fixes(sc.fixes)
    assert fixes.n_quarantined == 0 and fixes.n_accepted == n
    assert fixes.table.select(FIX_SCHEMA.names).equals(sc.fixes)  # already sorted by (subject_id, ts)
    ts = sc.fixes["ts"].cast("int64").to_numpy()
    assert ts.min() >= sc.start_ms and ts.max() < sc.end_ms
    zones = load_zones(sc.zones)
    assert zones.n_quarantined == 0 and zones.repairs.num_rows == 0
    assert sorted(set(zones.kind)) == ["forbidden", "permitted"] and list(zones.kind).count("permitted") == 1
    subjects = load_subjects(sc.subjects)
    assert subjects.n_quarantined == 0 and subjects.n_accepted == SMALL["n_subjects"]
    assert set(sc.kind_of_subject) == set(sc.subjects["subject_id"].to_pylist())
    assert sc.truth.schema.equals(TRUTH_SCHEMA)
    if name != "mixed":
        assert set(sc.kind_of_subject.values()) == {name} and sc.truth.num_rows == 0


def test_zones_round_trip_through_lon_lat():
    sc = scenario("open_sky", n_subjects=1, hours=1.0)
    zones = load_zones(sc.zones)
    for zone_id, g in zip(zones.zone_id, zones.geometry):
        g_m = shapely.transform(g, lambda c: np.column_stack(sc.frame.project(c[:, 0], c[:, 1])))
        assert shapely.hausdorff_distance(g_m, sc.zone_geometry_m[zone_id]) < 1e-3
    permitted = sc.zone_geometry_m["county"]
    assert 9_000.0 < 2.0 * np.sqrt(permitted.area / np.pi) < 11_000.0
    forbidden = [g for k, g in sc.zone_geometry_m.items() if k != "county"]
    assert len(forbidden) >= 3
    for g in forbidden:
        r_m = np.hypot(*(shapely.get_coordinates(g.exterior) - np.array(g.centroid.coords[0])).T)
        assert 50.0 - 1e-6 <= r_m.min() and r_m.max() <= 200.0 + 1e-6
        assert permitted.contains(g)


def test_movement_speeds_are_walking_or_driving():
    sc = scenario("open_sky", n_subjects=10, hours=24.0, seed=3)
    top_mps = []
    for _, rows in per_subject(sc):
        t_s = sc.fixes["ts"].cast("int64").to_numpy()[rows] / 1_000.0
        step = np.hypot(np.diff(sc.true_x_m[rows]), np.diff(sc.true_y_m[rows]))
        top_mps.append((step / np.diff(t_s)).max())
        assert step.sum() > 300.0  # every one goes out during the day
        assert (step == 0.0).mean() > 0.5  # and stays put most of the time
    assert max(top_mps) <= 20.0 + 1e-6
    assert min(top_mps) <= 1.5 + 1e-6 and max(top_mps) > 10.0  # some only walk, some drive


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario("desert")
    for kwargs in (dict(n_subjects=0), dict(hours=0.0), dict(interval_s=-1.0), dict(seed=-1), dict(sigma_m=0.0)):
        with pytest.raises(ValueError):
            scenario("open_sky", **kwargs)


# --------------------------------------------------------------------------- noise models


@pytest.mark.parametrize(("name", "sigma_m", "expected_m"), [("augmented", None, 0.3), ("open_sky", None, 2.5),
                                                             ("open_sky", 4.7, 4.7)])
def test_satellite_noise_matches_the_model(name, sigma_m, expected_m):
    sc = scenario(name, sigma_m=sigma_m, **STATS)
    ex, ey = errors_m(sc)
    for e in (ex, ey):
        assert abs(e.mean()) < 0.05 * expected_m
        assert e.std() == pytest.approx(expected_m, rel=0.15)
    assert set(sc.fixes["source"].to_pylist()) == {"gnss"}
    np.testing.assert_allclose(sc.fixes["accuracy_m"].to_numpy(), np.float32(expected_m))
    assert not sc.true_multipath.any()


def test_urban_has_persistent_multipath_in_5_to_10_percent_of_fixes():
    sc = scenario("urban", **STATS)
    ex, ey = errors_m(sc)
    on = sc.true_multipath
    assert 0.05 <= on.mean() <= 0.10
    for _, rows in per_subject(sc):
        assert 0.02 <= on[rows].mean() <= 0.15
    np.testing.assert_allclose(sc.fixes["accuracy_m"].to_numpy(), np.float32(6.0))  # outliers not reflected
    assert ex[~on].std() == pytest.approx(6.0, rel=0.15) and ey[~on].std() == pytest.approx(6.0, rel=0.15)
    assert np.median(np.hypot(ex[on], ey[on])) > 25.0
    # Runs of reflected fixes hold one offset: around the run mean the scatter is the plain 6 m noise.
    ids = sc.fixes["subject_id"].to_numpy(zero_copy_only=False)
    start = on & ~np.concatenate([[False], on[:-1] & (ids[1:] == ids[:-1])])
    run = np.cumsum(start)[on]
    n_runs = run.max()
    assert 2.0 <= on.sum() / n_runs <= 7.0  # mean run of 4 fixes
    count = np.bincount(run)
    for e in (ex[on], ey[on]):
        resid = e - (np.bincount(run, e) / np.maximum(count, 1))[run]
        multi = count[run] > 1
        dof = (count[count > 1] - 1).sum()
        assert np.sqrt((resid[multi] ** 2).sum() / dof) == pytest.approx(6.0, rel=0.2)
        offset = np.abs(np.bincount(run, e)[1:] / count[1:])
        assert offset.max() > 30.0


def test_indoor_is_mostly_cell_with_honest_accuracy():
    sc = scenario("indoor", **STATS)
    source = sc.fixes["source"].to_numpy(zero_copy_only=False)
    cell = source == "cell"
    assert cell.mean() > 0.7 and set(source) == {"cell", "gnss"}
    acc = sc.fixes["accuracy_m"].to_numpy()
    assert acc[cell].min() >= 100.0 and acc[cell].max() <= 800.0
    np.testing.assert_allclose(acc[~cell], np.float32(6.0))
    ex, ey = errors_m(sc)
    assert np.median(np.hypot(ex[cell], ey[cell])) > 100.0
    # Normalised errors have unit variance per axis (per-stay offsets make this a noisy estimate).
    z = np.concatenate([ex[cell] / acc[cell], ey[cell] / acc[cell]])
    assert z.std() == pytest.approx(1.0, rel=0.2)
    # Within one stay the cell offset persists: consecutive cell errors are strongly correlated.
    idx = np.flatnonzero(cell[:-1] & cell[1:])
    assert np.corrcoef(ex[idx] / acc[idx], ex[idx + 1] / acc[idx + 1])[0, 1] > 0.4


# --------------------------------------------------------------------------- geometry of the kinds


@pytest.mark.parametrize("name", ["near_boundary", "along_boundary"])
def test_boundary_subjects_stay_5_to_20_m_inside(name):
    sc = scenario(name, n_subjects=6, hours=24.0, seed=1)
    permitted = sc.zone_geometry_m["county"]
    assert shapely.contains_xy(permitted, sc.true_x_m, sc.true_y_m).all()
    d = boundary_distance_m(sc, sc.true_x_m, sc.true_y_m)
    assert d.min() >= 5.0 and d.max() <= 20.0
    assert set(sc.noise_of_subject.values()) <= {"open_sky", "urban"}
    moved = [np.hypot(np.diff(sc.true_x_m[r]), np.diff(sc.true_y_m[r])).sum() for _, r in per_subject(sc)]
    if name == "near_boundary":
        assert max(moved) < 2_000.0  # pottering at home
    else:
        assert min(moved) > 10_000.0  # hours of walking


def test_near_boundary_noise_puts_some_fixes_outside():
    sc = scenario("near_boundary", n_subjects=6, hours=12.0, seed=1)
    x, y = sc.frame.project(sc.fixes["lon"].to_numpy(), sc.fixes["lat"].to_numpy())
    outside = ~shapely.contains_xy(sc.zone_geometry_m["county"], x, y)
    assert 0 < outside.mean() < 0.5  # the false alarms a naive tracker raises


def test_parked_subjects_do_not_move():
    sc = scenario("parked", n_subjects=6, hours=24.0, seed=1)
    for _, rows in per_subject(sc):
        assert np.ptp(sc.true_x_m[rows]) == 0.0 and np.ptp(sc.true_y_m[rows]) == 0.0
    assert set(sc.noise_of_subject.values()) <= {"augmented", "open_sky"}


# --------------------------------------------------------------------------- mixed and its truth


def test_mixed_has_every_kind_and_breaches_of_both_kinds(mixed):
    assert set(mixed.kind_of_subject.values()) == set(KINDS)
    kinds = mixed.truth["kind"].to_pylist()
    assert {"permitted_exit", "forbidden_entry"} == set(kinds) and len(kinds) >= 4
    start = mixed.truth["true_start"].cast("int64").to_numpy()
    end = mixed.truth["true_end"].cast("int64").to_numpy()
    assert ((end - start) >= 120_000).all() and ((end - start) <= 1_200_000).all()
    assert (start > mixed.start_ms).all() and (end < mixed.end_ms).all()
    assert not any(mixed.truth["crossing_only"].to_pylist())
    breachers = {mixed.kind_of_subject[s] for s in mixed.truth["subject_id"].to_pylist()}
    assert breachers <= {"augmented", "open_sky", "urban", "indoor"}


def test_mixed_truth_matches_true_positions_at_every_fix(mixed):
    ids = mixed.fixes["subject_id"].to_numpy(zero_copy_only=False)
    ts = mixed.fixes["ts"].cast("int64").to_numpy()
    x, y = mixed.true_x_m, mixed.true_y_m
    violating = {"county": ~shapely.contains_xy(mixed.zone_geometry_m["county"], x, y)}
    for zone_id, g in mixed.zone_geometry_m.items():
        if zone_id != "county":
            violating[zone_id] = shapely.contains_xy(g, x, y)
    expected = {z: np.zeros(len(ts), dtype=bool) for z in violating}
    near_edge = np.zeros(len(ts), dtype=bool)
    n_fixes_inside = 0
    for row in mixed.truth.to_pylist():
        start = int(row["true_start"].timestamp() * 1000)
        end = int(row["true_end"].timestamp() * 1000)
        mine = ids == row["subject_id"]
        expected[row["zone_id"]] |= mine & (ts > start) & (ts < end)
        near_edge |= mine & ((np.abs(ts - start) <= 1) | (np.abs(ts - end) <= 1))  # ms rounding
        n_fixes_inside += int((mine & (ts > start) & (ts < end)).sum())
    for zone_id in violating:
        np.testing.assert_array_equal(violating[zone_id] & ~near_edge, expected[zone_id] & ~near_edge, err_msg=zone_id)
    assert n_fixes_inside >= 4 * mixed.truth.num_rows  # 2-20 minutes at a 15 s interval
