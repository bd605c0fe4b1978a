"""Tests of geomon.sim.simulate: determinism, clean loading, geography, exact ground truth and noise."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from geomon.geo.crs import LocalFrame
from geomon.io.load import load_fixes, load_subjects, load_zones
from geomon.schema import FIX_SCHEMA
from geomon.sim.simulate import TRUTH_SCHEMA, simulate

FILES = ("fixes.parquet", "zones.geojson", "subjects.csv", "truth.parquet")
SMALL = dict(n_subjects=10, days=0.25)
# Enough subjects for every kind of violation several times and for noise statistics.
MEDIUM = dict(n_subjects=40, days=0.5, seed=11)
TOL_M = 0.01  # fixes are never this close to a boundary by chance


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("small"), seed=3, **SMALL)


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("exact"), noise=False, **MEDIUM)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("noisy"), noise=True, **MEDIUM)


def local(result):
    """Zones (loaded, projected to the simulation frame) and fixes as local x, y arrays."""
    frame = LocalFrame(result.frame_crs)
    zones = load_zones(result.zones_path)
    geoms = shapely.transform(zones.geometry, lambda c: np.column_stack(frame.project(c[:, 0], c[:, 1])))
    fixes = load_fixes(result.fixes_path).table
    x, y = frame.project(fixes.column("lon").to_numpy(), fixes.column("lat").to_numpy())
    return zones, geoms, fixes, x, y


def truth_rows(result):
    table = pq.read_table(result.truth_path)
    assert table.schema.equals(TRUTH_SCHEMA)
    rows = table.to_pylist()
    for r in rows:
        r["start_ms"] = int(r["true_start"].timestamp() * 1000)
        r["end_ms"] = int(r["true_end"].timestamp() * 1000)
    return rows


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(small, tmp_path):
    again = simulate(tmp_path, seed=3, **SMALL)
    for name in FILES:
        assert (small.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name


def test_different_seed_gives_different_files(small, tmp_path):
    other = simulate(tmp_path, seed=4, **SMALL)
    for name in ("fixes.parquet", "zones.geojson"):
        assert (small.out_dir / name).read_bytes() != (other.out_dir / name).read_bytes(), name
    assert not pq.read_table(small.fixes_path).equals(pq.read_table(other.fixes_path))


def test_noise_changes_fixes_not_truth(exact, noisy):
    assert pq.read_table(exact.truth_path).equals(pq.read_table(noisy.truth_path))
    assert exact.zones_path.read_bytes() == noisy.zones_path.read_bytes()
    assert exact.subjects_path.read_bytes() == noisy.subjects_path.read_bytes()


# --------------------------------------------------------------------------- loading and geography


@pytest.mark.parametrize("which", ["small", "exact"])
def test_outputs_load_without_quarantine_or_repairs(which, request):
    result = request.getfixturevalue(which)
    fixes = load_fixes(result.fixes_path)
    zones = load_zones(result.zones_path)
    subjects = load_subjects(result.subjects_path)
    assert (fixes.n_quarantined, zones.n_quarantined, subjects.n_quarantined) == (0, 0, 0)
    assert zones.repairs.num_rows == 0
    assert fixes.n_accepted == result.n_fixes and pq.read_table(result.fixes_path).schema.equals(FIX_SCHEMA)
    assert zones.n_accepted == result.n_zones and subjects.n_accepted == result.n_subjects
    kinds = dict(zip(*np.unique(zones.kind, return_counts=True)))
    assert kinds == {"permitted": 1, "jurisdiction": 14, "forbidden": result.n_forbidden, "home": result.n_subjects}
    assert 150 <= result.n_forbidden <= 400
    ts = fixes.table.column("ts").cast("int64").to_numpy()
    assert ts.min() >= result.start_ms and ts.max() < result.end_ms


def test_zone_properties_and_subjects_are_consistent(exact):
    zones, geoms, _, _, _ = local(exact)
    props = zones.properties.to_pylist()
    subjects = load_subjects(exact.subjects_path).table.to_pylist()
    sids = {s["subject_id"] for s in subjects}
    assert {s["level"] for s in subjects} == {"strict", "ordinary"}
    by_id = {p["zone_id"]: (p, g) for p, g in zip(props, geoms)}
    offices = {p["office_id"]: g for p, g in zip(props, geoms) if p["kind"] == "jurisdiction"}
    assert len(offices) == 14
    for s in subjects:
        home, home_geom = by_id[s["home_zone_id"]]
        assert home["kind"] == "home" and home["subject_ids"] == [s["subject_id"]]
        assert offices[s["office_id"]].contains(home_geom.centroid)
    categories = {}
    for p in props:
        if p["kind"] == "forbidden":
            categories.setdefault(p["category"], []).append(p)
    assert set(categories) == {"bar", "school", "victim_home"}
    assert all(p["subject_ids"] is None for c in ("bar", "school") for p in categories[c])
    assert all(len(p["subject_ids"]) == 1 and p["subject_ids"][0] in sids for p in categories["victim_home"])
    for p, g in zip(props, geoms):
        if p["kind"] == "forbidden":
            radius_m = shapely.minimum_bounding_radius(g)
            assert 29.0 <= radius_m <= 301.0


def test_county_is_valid_rough_and_about_50_km_across(small):
    _, geoms, _, _, _ = local(small)
    county = geoms[0]
    assert county.is_valid and county.geom_type == "Polygon"
    assert 3_000 <= len(county.exterior.coords) - 1 <= 6_000
    diameter_km = 2 * np.sqrt(county.area / np.pi) / 1_000
    assert 45 <= diameter_km <= 55


def test_jurisdictions_tile_the_county(small):
    zones, geoms, _, _, _ = local(small)
    county = geoms[0]
    cells = geoms[zones.kind == "jurisdiction"]
    assert len(cells) == 14
    assert all(c.is_valid and c.geom_type == "Polygon" for c in cells)
    assert abs(shapely.union_all(cells).area / county.area - 1) < 1e-6
    assert abs(sum(c.area for c in cells) / county.area - 1) < 1e-6  # so overlaps are ~0
    overlap = shapely.intersection(cells[:, None], cells[None, :])
    areas = shapely.area(overlap)
    np.fill_diagonal(areas, 0.0)
    assert areas.max() < 1e-6 * county.area


# --------------------------------------------------------------------------- ground truth


def test_truth_lists_every_injected_violation(exact):
    rows = truth_rows(exact)
    assert len(rows) == exact.n_injected
    assert exact.n_permitted_exits >= 2 and exact.n_crossings >= 1
    assert exact.n_forbidden_entries - exact.n_crossings >= 2
    assert {r["kind"] for r in rows} == {"permitted_exit", "forbidden_entry"}
    assert all(r["zone_id"] == "county" for r in rows if r["kind"] == "permitted_exit")
    assert all(r["start_ms"] < r["end_ms"] for r in rows)
    assert all(exact.start_ms < r["start_ms"] and r["end_ms"] < exact.end_ms for r in rows)


def test_exact_fixes_agree_with_truth(exact):
    """Without noise, fixes in a truth interval violate it and every other fix violates nothing."""
    zones, geoms, fixes, x, y = local(exact)
    assert set(fixes.column("source").to_pylist()) == {"gnss"}
    assert np.all(fixes.column("accuracy_m").to_numpy() == np.float32(0.3))
    county = geoms[0]
    zone_of = dict(zip(zones.zone_id, geoms))
    forbidden = np.flatnonzero(zones.kind == "forbidden")
    applies = zones.properties.column("subject_ids").to_pylist()
    sid = fixes.column("subject_id").to_numpy(zero_copy_only=False)
    ts = fixes.column("ts").cast("int64").to_numpy()
    rows = truth_rows(exact)
    for s in np.unique(sid):
        m = sid == s
        xs, ys, tt = x[m], y[m], ts[m]
        gaps_s = np.diff(tt) / 1000
        assert gaps_s.min() >= 13.5 and gaps_s.max() <= 66.0  # no losses without noise
        covered = np.zeros(tt.size, dtype=bool)
        for r in (r for r in rows if r["subject_id"] == s):
            during = (tt >= r["start_ms"]) & (tt <= r["end_ms"])
            covered |= during
            zone = zone_of[r["zone_id"]]
            if r["kind"] == "permitted_exit":
                assert not shapely.contains_xy(zone.buffer(-TOL_M), xs[during], ys[during]).any()
            else:
                assert shapely.contains_xy(zone.buffer(TOL_M), xs[during], ys[during]).all()
            # The fixes either side of the interval are in the normal state, and those
            # inside it (if any) in the violating one: they bracket the true crossings.
            before, after = np.flatnonzero(tt < r["start_ms"])[-1], np.flatnonzero(tt > r["end_ms"])[0]
            inside_before = zone.contains(shapely.Point(xs[before], ys[before]))
            inside_after = zone.contains(shapely.Point(xs[after], ys[after]))
            assert inside_before == inside_after == (r["kind"] == "permitted_exit")
            assert r["crossing_only"] == (not during.any())
        rest_x, rest_y = xs[~covered], ys[~covered]
        assert shapely.contains_xy(county.buffer(-TOL_M), rest_x, rest_y).all()
        for i in forbidden:
            if applies[i] is None or s in applies[i]:
                assert not shapely.contains_xy(geoms[i].buffer(TOL_M), rest_x, rest_y).any(), zones.zone_id[i]


def test_crossings_fall_between_two_fixes(exact):
    rows = [r for r in truth_rows(exact) if r["crossing_only"]]
    assert rows
    fixes = load_fixes(exact.fixes_path).table
    sid = fixes.column("subject_id").to_numpy(zero_copy_only=False)
    ts = fixes.column("ts").cast("int64").to_numpy()
    for r in rows:
        tt = ts[sid == r["subject_id"]]
        k = np.searchsorted(tt, r["start_ms"])
        assert tt[k - 1] < r["start_ms"] and r["end_ms"] < tt[k]
        assert r["end_ms"] - r["start_ms"] < 15_000  # a drive through a small zone


# --------------------------------------------------------------------------- noise


def test_noise_statistics_match_the_modes(exact, noisy):
    _, _, f0, x0, y0 = local(exact)
    _, _, f1, x1, y1 = local(noisy)

    def keys(f):
        sid = f.column("subject_id").to_numpy(zero_copy_only=False).astype(str)
        return np.char.add(sid, f.column("ts").cast("int64").to_numpy().astype(str))

    k0, k1 = keys(f0), keys(f1)
    at = np.searchsorted(k0, k1)
    assert np.array_equal(k0[at], k1), "noisy fixes are a subset of the scheduled ones"
    assert 0.3 < len(k1) / len(k0) < 0.95, "indoor fixes are lost"
    ex, ey = x1 - x0[at], y1 - y0[at]
    acc = f1.column("accuracy_m").to_numpy()
    source = f1.column("source").to_numpy(zero_copy_only=False)
    gnss = source == "gnss"
    for sigma_m in (0.3, 2.5):
        m = gnss & (acc == np.float32(sigma_m))
        assert m.sum() > 200
        for e in (ex[m], ey[m]):
            assert abs(e.std() / sigma_m - 1) < 0.3
    urban = gnss & (acc == np.float32(6.0))
    assert urban.sum() > 500
    core_m = 1.4826 * np.median(np.abs(np.concatenate([ex[urban], ey[urban]])))  # robust to outliers
    assert abs(core_m / 6.0 - 1) < 0.3
    outliers = np.hypot(ex[urban], ey[urban]) > 25.0  # a 6 m Gaussian alone almost never does this
    assert 0.02 < outliers.mean() < 0.15
    cell = source == "cell"
    assert cell.sum() > 200 and acc[cell].min() >= 100 and acc[cell].max() <= 800
    for e in (ex[cell], ey[cell]):
        assert abs((e / acc[cell]).std() - 1) < 0.4


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_subjects=0),
        dict(n_subjects=2.5),
        dict(days=0),
        dict(days=float("nan")),
        dict(seed=-1),
        dict(start="not a date"),
        dict(centre_lat_deg=85.0),
    ],
)
def test_bad_parameters_raise(kwargs, tmp_path):
    with pytest.raises(ValueError):
        simulate(tmp_path, **kwargs)
