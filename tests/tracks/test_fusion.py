"""geomon.fuse: one row per fix in the input order, accuracy floors, frames, smoothing, errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import geomon
from geomon.errors import InputError
from geomon.geo.crs import LocalFrame, choose_frame
from geomon.io.load import load_fixes
from geomon.kernels.fusion import ACCEPTED, PREDICTED, REINITIALISED, REJECTED
from geomon.schema import FIX_SCHEMA
from geomon.tracks.fusion import (
    AUGMENTED_GNSS_FLOOR_M,
    FUSED_COLUMNS,
    SOURCE_DEFAULT_M,
    SOURCE_FLOOR_M,
    STATUS_NAMES,
    fix_sigma_m,
    fuse,
)

FRAME = LocalFrame(32650)  # UTM 50N, around Beijing


def _walks(n_subjects=5, n=80, sigma_m=2.5, seed=0, shuffle=True):
    """Straight walks at 1.4 m/s around Beijing, 15 s reporting; returns the fixes and the true x, y (m)."""
    rng = np.random.default_rng(seed)
    x0, y0 = FRAME.project([116.40], [39.90])
    rows = {"subject_id": [], "t": [], "x": [], "y": [], "tx": [], "ty": []}
    for s in range(n_subjects):
        t_ms = 1_790_000_000_000 + np.cumsum(rng.integers(13_500, 16_500, n))
        heading = rng.uniform(0, 2 * np.pi)
        along = 1.4 * (t_ms - t_ms[0]) * 1e-3
        tx = x0[0] + 3000.0 * s + along * np.cos(heading)
        ty = y0[0] + along * np.sin(heading)
        rows["subject_id"] += [f"S{s:03d}"] * n
        rows["t"].append(t_ms)
        rows["tx"].append(tx)
        rows["ty"].append(ty)
        rows["x"].append(tx + rng.normal(size=n) * sigma_m)
        rows["y"].append(ty + rng.normal(size=n) * sigma_m)
    t_ms, x, y, tx, ty = (np.concatenate(rows[k]) for k in ("t", "x", "y", "tx", "ty"))
    subject = np.array(rows["subject_id"], dtype=object)
    order = rng.permutation(t_ms.size) if shuffle else np.arange(t_ms.size)
    lon, lat = FRAME.unproject(x, y)
    table = pa.table({
        "subject_id": pa.array(subject[order], pa.string()),
        "ts": pa.array(t_ms[order], pa.timestamp("ms", tz="UTC")),
        "lon": lon[order], "lat": lat[order],
        "source": pa.array(["gnss"] * t_ms.size, pa.string()),
        "accuracy_m": pa.array(np.full(t_ms.size, sigma_m, np.float32)),
    }, schema=FIX_SCHEMA)
    return table, tx[order], ty[order]


def test_one_row_per_fix_in_input_order_with_the_input_columns():
    fixes, _, _ = _walks()
    fixes = fixes.append_column("device", pa.array([f"d{i}" for i in range(fixes.num_rows)]))
    fused = fuse(fixes, frame=FRAME)
    assert fused.num_rows == fixes.num_rows
    assert fused.column_names == fixes.column_names + list(FUSED_COLUMNS)
    assert fused.select(fixes.column_names).equals(fixes)
    assert fused.schema.field("status").type == pa.int8()
    assert all(fused.schema.field(c).type == pa.float64() for c in FUSED_COLUMNS if c != "status")
    p_outlier = fused.column("p_outlier").to_numpy()
    assert ((p_outlier >= 0) & (p_outlier <= 1)).all()
    # The noise the filter used is the fix's own sigma times a learnt scale within the documented bounds.
    ratio = fused.column("noise_m").to_numpy() / fused.column("sigma_m").to_numpy()
    assert ((ratio >= 0.5 - 1e-9) & (ratio <= 5.0 + 1e-9)).all()


def test_nan_free_and_better_than_raw_on_valid_input():
    fixes, tx, ty = _walks()
    fused = fuse(fixes, frame=FRAME)
    values = np.column_stack([fused.column(c).to_numpy() for c in FUSED_COLUMNS if c != "status"])
    assert np.isfinite(values).all()
    assert set(fused.column("status").to_numpy()) <= {ACCEPTED, REJECTED, REINITIALISED}
    x, y = FRAME.project(fixes.column("lon").to_numpy(), fixes.column("lat").to_numpy())
    raw = np.hypot(x - tx, y - ty)
    err = np.hypot(fused.column("x_m").to_numpy() - tx, fused.column("y_m").to_numpy() - ty)
    assert np.percentile(err, 90) < 0.8 * np.percentile(raw, 90)
    fx, fy = FRAME.project(fused.column("fused_lon").to_numpy(), fused.column("fused_lat").to_numpy())
    np.testing.assert_allclose(fx, fused.column("x_m").to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fy, fused.column("y_m").to_numpy(), atol=1e-6)
    # The covariance is a full 2x2 (the motions' spread is kept per axis), positive definite.
    vx, vy, cxy = (fused.column(c).to_numpy() for c in ("var_x_m2", "var_y_m2", "cov_xy_m2"))
    assert (vx > 0).all() and (vy > 0).all() and (vx * vy - cxy * cxy > 0).all()


def test_input_order_does_not_change_the_result():
    sorted_fixes, _, _ = _walks(shuffle=False)
    shuffled, _, _ = _walks(shuffle=True)
    a = fuse(sorted_fixes, frame=FRAME).sort_by([("subject_id", "ascending"), ("ts", "ascending")])
    b = fuse(shuffled, frame=FRAME).sort_by([("subject_id", "ascending"), ("ts", "ascending")])
    assert a.equals(b)


@pytest.mark.parametrize("source, accuracy, expected", [
    ("gnss", 0.1, AUGMENTED_GNSS_FLOOR_M),
    ("gnss", 0.6, 0.6),
    ("gnss", 1.2, SOURCE_FLOOR_M["gnss"]),
    ("gnss", 6.0, 6.0),
    ("gnss", None, SOURCE_DEFAULT_M["gnss"]),
    ("wifi", 5.0, SOURCE_FLOOR_M["wifi"]),
    ("wifi", None, SOURCE_DEFAULT_M["wifi"]),
    ("cell", 40.0, SOURCE_FLOOR_M["cell"]),
    ("cell", 700.0, 700.0),
    ("checkin", 10.0, SOURCE_FLOOR_M["checkin"]),
    ("checkin", None, SOURCE_DEFAULT_M["checkin"]),
])
def test_accuracy_floors_and_defaults(source, accuracy, expected):
    fixes = pa.table({
        "subject_id": ["a", "a"], "ts": pa.array([0, 15_000], pa.timestamp("ms", tz="UTC")),
        "lon": [116.4, 116.4], "lat": [39.9, 39.9], "source": ["gnss", source],
        "accuracy_m": pa.array([3.0, accuracy], pa.float32()),
    }, schema=FIX_SCHEMA)
    fused = fuse(fixes)
    assert fused.column("sigma_m").to_pylist() == [3.0, pytest.approx(expected)]
    # The first fix initialises the state with its own floored variance.
    assert fused.column("var_x_m2")[0].as_py() == pytest.approx(9.0)


def test_consecutive_cell_fixes_share_their_error():
    sources = ["gnss", "cell", "cell", "cell", "gnss", "cell", "wifi", "wifi"]
    n = len(sources)
    fixes = pa.table({
        "subject_id": ["a"] * 6 + ["b"] * 2, "ts": pa.array(np.arange(n) * 15_000, pa.timestamp("ms", tz="UTC")),
        "lon": [116.4] * n, "lat": [39.9] * n, "source": sources,
        "accuracy_m": pa.array([3.0, 200.0, 200.0, 200.0, 3.0, 200.0, 20.0, 20.0], pa.float32()),
    }, schema=FIX_SCHEMA)
    sigma = fuse(fixes, frame=FRAME).column("sigma_m").to_numpy()
    root = np.sqrt
    np.testing.assert_allclose(sigma, [3.0, 200.0, 200.0 * root(2), 200.0 * root(3), 3.0, 200.0, 20.0, 20.0 * root(2)])


def test_fix_sigma_m_rejects_unknown_sources():
    with pytest.raises(InputError, match="unknown source"):
        fix_sigma_m([1.0], ["glonass"])


def test_read_only_arrays_and_fix_load_input():
    fixes, _, _ = _walks(n_subjects=2, n=30)
    arrays = {name: fixes.column(name).to_numpy(zero_copy_only=False) for name in ("lon", "lat", "accuracy_m")}
    for a in arrays.values():
        a.setflags(write=False)
    table = fixes.set_column(2, "lon", pa.array(arrays["lon"])).set_column(3, "lat", pa.array(arrays["lat"]))
    loaded = load_fixes(table)
    via_load = fuse(loaded, frame=FRAME)
    direct = fuse(loaded.table, frame=FRAME)
    assert via_load.equals(direct)
    assert via_load.num_rows == loaded.n_accepted


def test_missing_positions_are_predicted_and_nan_before_the_first_fix():
    fixes = pa.table({
        "subject_id": ["a", "a", "a", "a"],
        "ts": pa.array([0, 15_000, 30_000, 45_000], pa.timestamp("ms", tz="UTC")),
        "lon": [None, 116.4, None, 116.4], "lat": [None, 39.9, None, 39.9],
        "source": ["gnss"] * 4, "accuracy_m": pa.array([3.0] * 4, pa.float32()),
    })
    fused = fuse(fixes, frame=FRAME)
    status = fused.column("status").to_pylist()
    assert status == [PREDICTED, REINITIALISED, PREDICTED, ACCEPTED]
    assert fused.column("fused_lon")[0].as_py() is None or np.isnan(fused.column("fused_lon")[0].as_py())
    assert np.isfinite(fused.column("fused_lon").to_numpy()[1:]).all()
    assert STATUS_NAMES[status[2]] == "predicted"


def test_frame_choice_and_configured_frame():
    fixes, _, _ = _walks(n_subjects=1, n=10)
    chosen = fuse(fixes)
    lon, lat = fixes.column("lon").to_numpy(), fixes.column("lat").to_numpy()
    auto = choose_frame(lon, lat)
    first = int(np.argmin(fixes.column("ts").cast(pa.int64()).to_numpy()))
    x, _ = auto.project(lon, lat)
    assert chosen.column("x_m")[first].as_py() == pytest.approx(x[first])
    by_code = fuse(fixes, frame=4547)  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    x4547, _ = LocalFrame(4547).project(lon, lat)
    assert by_code.column("x_m")[first].as_py() == pytest.approx(x4547[first])
    np.testing.assert_allclose(by_code.column("fused_lon").to_numpy(), chosen.column("fused_lon").to_numpy(),
                               atol=1e-6)


def test_smoothing_is_offline_and_better():
    fixes, tx, ty = _walks(n_subjects=8, n=100)
    filtered = fuse(fixes, frame=FRAME)
    smoothed = fuse(fixes, frame=FRAME, smooth=True)
    assert smoothed.column("status").equals(filtered.column("status"))
    values = np.column_stack([smoothed.column(c).to_numpy() for c in FUSED_COLUMNS[:-1]])
    assert np.isfinite(values).all()

    def error(t):
        return np.hypot(t.column("x_m").to_numpy() - tx, t.column("y_m").to_numpy() - ty).mean()

    assert error(smoothed) < 0.8 * error(filtered)


def test_empty_input():
    empty = FIX_SCHEMA.empty_table()
    fused = fuse(empty)
    assert fused.num_rows == 0
    assert fused.column_names == FIX_SCHEMA.names + list(FUSED_COLUMNS)


def test_filter_parameters_pass_through():
    fixes, _, _ = _walks(n_subjects=1, n=40)
    # With no multipath and no gross errors in the model, every fix is clean.
    loose = fuse(fixes, frame=FRAME, outlier_p=0.0, gross_p=0.0)
    assert set(loose.column("status").to_pylist()) <= {ACCEPTED, REINITIALISED}
    np.testing.assert_allclose(loose.column("p_outlier").to_numpy(), 0.0, atol=1e-12)
    with pytest.raises(TypeError):
        fuse(fixes, frame=FRAME, no_such_parameter=1.0)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop_columns(["lat"]), "missing column"),
    (lambda t: t.set_column(1, "ts", pa.array([None] + [0] * (t.num_rows - 1), pa.timestamp("ms", tz="UTC"))),
     "ts has nulls"),
    (lambda t: t.set_column(1, "ts", pa.array(np.arange(t.num_rows))), "timestamp"),
    (lambda t: t.set_column(4, "source", pa.array(["gps"] * t.num_rows)), "unknown source"),
])
def test_bad_input_is_an_input_error(change, message):
    fixes, _, _ = _walks(n_subjects=1, n=5)
    with pytest.raises(InputError, match=message):
        fuse(change(fixes), frame=FRAME)


def test_public_lazy_name():
    assert geomon.fuse is fuse
    assert "fuse" in dir(geomon)


def test_every_filter_parameter_is_documented():
    # A parameter users can pass is one they can read about: fuse_tracks documents each by name.
    from geomon.kernels.fusion import DEFAULT_PARAMS, fuse_tracks

    missing = [name for name in DEFAULT_PARAMS if f"``{name}``" not in fuse_tracks.__doc__]
    assert missing == []
