"""The fusion matrix's simulator: each motion family moves as documented, each noise family has its statistics."""

from __future__ import annotations

import numpy as np
import pytest

from geomon.sim import field, field_noise
from geomon.sim.field import FAMILIES, SMOOTH_S, simulate_motion, stop_durations_s
from geomon.sim.field_noise import add_noise


@pytest.fixture(scope="module")
def long_tracks():
    """Four tracks of 8,000 s at 1 s per family: long enough for several stops each."""
    return {m: simulate_motion(m, 4, 8_000, 1.0, np.random.default_rng(10 + i)) for i, m in enumerate(field.MOTIONS)}


def _inner(truth):
    """Pairs of consecutive fixes of the same track."""
    return ~truth.new_track[1:]


@pytest.mark.parametrize("motion", [m for m in field.MOTIONS if m != "rest"])
def test_speeds_stay_in_the_family_range_and_every_track_departs(long_tracks, motion):
    truth, family = long_tracks[motion], FAMILIES[motion]
    v = truth.speed_mps
    assert v.min() >= 0.0 and v.max() <= family.cruise_mps[1] + 1e-6
    cruising = v[v > 0.95 * family.cruise_mps[0]]
    # Most moving time is spent cruising, inside the range, and the range is used.
    assert np.mean(v[v > 0] > 0.95 * family.cruise_mps[0]) > 0.6
    assert np.percentile(cruising, 5) < family.cruise_mps[0] + 0.35 * np.ptp(family.cruise_mps) + 0.05
    assert np.percentile(cruising, 95) > family.cruise_mps[1] - 0.35 * np.ptp(family.cruise_mps) - 0.05
    accel = np.abs(np.diff(v))[_inner(truth)]   # 1 s steps: m/s^2
    assert accel.max() <= max(family.accel_mps2[1], family.brake_mps2[1]) + 1e-6
    for s in range(truth.n_tracks):
        track = v[truth.offsets[s]:truth.offsets[s + 1]]
        assert track[0] == 0.0 and track.max() > 0.0   # a stand still, then a departure


@pytest.mark.parametrize("motion", ["walk", "cycle", "car_town", "bus"])
def test_stop_durations_are_in_the_family_range(long_tracks, motion):
    stops = stop_durations_s(long_tracks[motion])
    low, high = FAMILIES[motion].stop_s
    assert stops.size >= 3
    # The speed's moving average eats up to its window off a stop's length, never adds more than a step.
    assert stops.min() >= low - SMOOTH_S and stops.max() <= high + 1.0


def test_walkers_turn_and_cars_in_town_take_corners_with_bounded_lateral_acceleration(long_tracks):
    for motion, bound, turn_deg in (("walk", 1.5, 5.0), ("car_town", 4.5, 5.0), ("car_road", 3.0, 1.0)):
        truth = long_tracks[motion]
        vx, vy = np.diff(truth.x_m), np.diff(truth.y_m)
        heading = np.unwrap(np.arctan2(vy, vx))
        same = _inner(truth)[1:] & _inner(truth)[:-1]
        moving = (truth.speed_mps[1:-1] > 0.5) & same
        turned = np.abs(np.diff(heading))[moving]
        assert np.degrees(turned).max() > turn_deg, motion   # it does turn (per second)
        acc = np.hypot(np.diff(vx), np.diff(vy))[same]
        assert acc.max() < bound, motion


def test_rest_sways_by_less_than_30_cm():
    truth = simulate_motion("rest", 5, 2_000, 5.0, np.random.default_rng(3))
    assert (truth.speed_mps == 0).all()
    for s in range(truth.n_tracks):
        x, y = (a[truth.offsets[s]:truth.offsets[s + 1]] for a in (truth.x_m, truth.y_m))
        spread = np.hypot(x - x.mean(), y - y.mean())
        assert 0.01 < spread.max() < field.SWAY_MAX_M


def test_truth_is_seeded_and_sampled_at_the_interval():
    a = simulate_motion("bus", 3, 50, 15.0, np.random.default_rng(7))
    b = simulate_motion("bus", 3, 50, 15.0, np.random.default_rng(7))
    np.testing.assert_array_equal(a.x_m, b.x_m)
    assert a.offsets.tolist() == [0, 50, 100, 150]
    assert set(np.diff(a.t_ms)[_inner(a)].tolist()) == {15_000}
    with pytest.raises(ValueError, match="whole multiple"):
        simulate_motion("walk", 1, 10, 2.5, np.random.default_rng(0))


def test_departures_stand_still_then_drive_off():
    truth, depart_ms = field.departure_truth(20, 15.0, np.random.default_rng(4))
    track = np.repeat(np.arange(truth.n_tracks), np.diff(truth.offsets))
    before = truth.t_ms < depart_ms[track]
    assert (truth.speed_mps[before] == 0).all()
    assert ((depart_ms - field.T0_MS) >= 600_000).all()
    last = truth.offsets[1:] - 1
    assert ((truth.speed_mps[last] >= 10.0 - 1e-6) & (truth.speed_mps[last] <= 15.0 + 1e-6)).all()


# --- noise ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def still():
    """Many long tracks at rest, so that a fix's error is the noise alone (sway aside, under 0.3 m)."""
    return simulate_motion("rest", 60, 2_000, 5.0, np.random.default_rng(0))


def _errors(truth, fixes):
    return fixes.x_m - truth.x_m, fixes.y_m - truth.y_m


def test_white_and_augmented_sigma_ranges_are_reported_as_sigma(still):
    for noise, (low, high) in (("white", field_noise.WHITE_SIGMA_M), ("augmented", field_noise.AUGMENTED_SIGMA_M)):
        fixes = add_noise(still, noise, np.random.default_rng(1))
        assert fixes.accuracy_kind == "sigma"
        assert low <= fixes.accuracy_m.min() and fixes.accuracy_m.max() <= high
        ex, _ = _errors(still, fixes)
        if noise == "white":
            z = ex / fixes.true_sigma_m
            assert abs(z.std() - 1.0) < 0.03


def test_ar1_bias_autocorrelation_matches_its_time_constant():
    # One time constant for every track, so the lag-1 autocorrelation of the bias is one number.
    truth = simulate_motion("rest", 200, 1_000, 5.0, np.random.default_rng(2))
    new = truth.new_track
    tau = np.full(truth.t_ms.size, 60.0)
    bias = field_noise.ar1(np.random.default_rng(3), truth.t_ms, new, np.full(tau.size, 2.0), tau)
    track = np.repeat(np.arange(truth.n_tracks), np.diff(truth.offsets))
    for lag in (1, 4, 12):
        same = track[lag:] == track[:-lag]
        r = np.corrcoef(bias[lag:][same], bias[:-lag][same])[0, 1]
        assert r == pytest.approx(np.exp(-5.0 * lag / 60.0), abs=0.02), lag
    pairs = ~new[1:]
    assert bias.std() == pytest.approx(2.0, rel=0.05)
    # The family's errors: correlated fix to fix (bias 0.8 sigma), about as large as reported.
    fixes = add_noise(truth, "ar1", np.random.default_rng(4))
    z = (fixes.x_m - truth.x_m) / fixes.accuracy_m
    assert abs(z.std() - 1.0) < 0.05
    assert 0.3 < np.corrcoef(z[1:][pairs], z[:-1][pairs])[0, 1] < 0.64


def test_outliers_are_about_8_percent_and_15_to_60_m(still):
    fixes = add_noise(still, "outliers", np.random.default_rng(5))
    assert fixes.disturbed.mean() == pytest.approx(field_noise.OUTLIER_SHARE, abs=0.01)
    ex, ey = _errors(still, fixes)
    far = np.hypot(ex, ey)[fixes.disturbed]
    assert np.percentile(far, 1) > 15.0 - 3 * 5.0 and np.percentile(far, 99) < 60.0 + 3 * 5.0
    assert fixes.accuracy_m.max() <= field_noise.WHITE_SIGMA_M[1]


def test_multipath_runs_are_about_7_percent_of_the_time_in_runs_of_60_s(still):
    fixes = add_noise(still, "multipath", np.random.default_rng(6))
    on = fixes.disturbed
    assert on.mean() == pytest.approx(field_noise.MULTIPATH_SHARE, abs=0.02)
    starts = np.count_nonzero(on[1:] & ~on[:-1]) + int(on[0])
    assert on.sum() / starts * still.interval_s == pytest.approx(field_noise.MULTIPATH_MEAN_S, rel=0.15)


def test_phone_reports_a_constant_accuracy_whatever_its_error(still):
    fixes = add_noise(still, "phone", np.random.default_rng(7))
    assert fixes.accuracy_kind == "r68"
    assert np.unique(fixes.accuracy_m).tolist() == [field_noise.PHONE_REPORTED_R68_M]
    ex, ey = _errors(still, fixes)
    per_track = [np.sqrt(np.mean(ex[a:b] ** 2)) for a, b in zip(still.offsets[:-1], still.offsets[1:])]
    assert min(per_track) < 3.0 and max(per_track) > 6.5   # true sigma 2-8 m under one reported value


def test_cell_periods_take_about_15_percent_of_the_time():
    truth = simulate_motion("rest", 200, 2_000, 5.0, np.random.default_rng(8))
    fixes = add_noise(truth, "cell", np.random.default_rng(9))
    cell = fixes.source == "cell"
    assert (cell == fixes.disturbed).all()
    assert cell.mean() == pytest.approx(field_noise.CELL_SHARE, abs=0.03)
    assert (fixes.accuracy_m[cell] == field_noise.CELL_REPORTED_M).all()
    assert (fixes.accuracy_m[~cell] <= field_noise.WHITE_SIGMA_M[1]).all()
    ex, _ = _errors(truth, fixes)
    assert 150.0 < ex[cell].std() < 350.0
    # Periods of 2-10 min: runs of 24-120 fixes at 5 s (those cut by a track's ends aside).
    edges = np.diff(np.concatenate([[0], cell.astype(np.int8), [0]]))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert np.median(lengths) * 5.0 == pytest.approx(360.0, rel=0.25) and lengths.max() * 5.0 <= 600.0 + 5.0


def test_unknown_families_are_refused(still):
    with pytest.raises(ValueError, match="motion family"):
        simulate_motion("horse", 1, 10, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="noise family"):
        add_noise(still, "fog", np.random.default_rng(0))
