"""Accuracy kinds: each reported radius (or HDOP) becomes the per-axis sigma a circular Gaussian would have.

The expected values come from simulation (the empirical radius quantile of 2-D Gaussian errors of a known
sigma) or from the Rayleigh quantile written out here, never from the module's own constants.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geomon.errors import InputError
from geomon.io.accuracy import ACCURACY_KINDS, DEFAULT_UERE_M, check_accuracy, sigma_from_accuracy
from geomon.io.load import load_fixes
from geomon.io.stream_parquet import ParquetFeed

SIGMA_M = 4.0
#: Probability inside the radius each kind reports.
PROBABILITY = {"r68": 0.68, "cep": 0.50, "r50": 0.50, "r95": 0.95}


def radius_per_sigma(p: float) -> float:
    """Radius holding probability p of a circular 2-D Gaussian, in per-axis sigmas: P(r <= R) = 1 - exp(-R²/2s²)."""
    return math.sqrt(-2.0 * math.log(1.0 - p))


@pytest.fixture(scope="module")
def errors_m():
    """200,000 horizontal errors of a circular Gaussian with per-axis sigma SIGMA_M."""
    return np.random.default_rng(21).normal(0.0, SIGMA_M, size=(200_000, 2))


@pytest.mark.parametrize("kind", sorted(PROBABILITY))
def test_a_reported_radius_converts_back_to_the_simulated_sigma(errors_m, kind):
    radius = np.quantile(np.hypot(errors_m[:, 0], errors_m[:, 1]), PROBABILITY[kind])
    sigma = sigma_from_accuracy([radius], kind)
    assert sigma.dtype == np.float64
    assert sigma[0] == pytest.approx(SIGMA_M, rel=0.01)


def test_sigma_is_taken_as_it_is(errors_m):
    per_axis = errors_m.std(axis=0).mean()
    assert sigma_from_accuracy([per_axis], "sigma")[0] == pytest.approx(SIGMA_M, rel=0.01)
    assert sigma_from_accuracy([2.5, 7.0]).tolist() == [2.5, 7.0]   # the default kind changes nothing


def test_hdop_times_uere_is_the_drms_of_the_simulated_errors(errors_m):
    uere_m = 3.0
    drms = np.sqrt(np.mean(np.sum(errors_m ** 2, axis=1)))      # sqrt(sx² + sy²) = sigma * sqrt(2)
    hdop = drms / uere_m
    assert sigma_from_accuracy([hdop], "hdop", uere_m=uere_m)[0] == pytest.approx(SIGMA_M, rel=0.01)


def test_hdop_follows_the_formula_with_an_explicit_and_the_default_uere():
    hdop = np.array([0.8, 1.0, 2.5])
    np.testing.assert_allclose(sigma_from_accuracy(hdop, "hdop", uere_m=6.5), hdop * 6.5 / math.sqrt(2), rtol=1e-12)
    assert DEFAULT_UERE_M == 5.0      # the documented default (docs/loading.md)
    np.testing.assert_allclose(sigma_from_accuracy(hdop, "hdop"), hdop * 5.0 / math.sqrt(2), rtol=1e-12)


def test_the_factors_are_the_rayleigh_quantiles():
    ones = np.ones(1)
    for kind, p in PROBABILITY.items():
        assert 1.0 / sigma_from_accuracy(ones, kind)[0] == pytest.approx(radius_per_sigma(p), rel=1e-12)
    # The factors the issue states, to four places.
    assert [round(1.0 / sigma_from_accuracy(ones, k)[0], 4) for k in ("cep", "r68", "r95")] == [1.1774, 1.5096, 2.4477]


def test_missing_stays_missing_and_the_input_is_not_changed():
    values = np.array([3.0, np.nan, 6.0])
    out = sigma_from_accuracy(values, "r95")
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    assert values[0] == 3.0          # a new array, not the caller's scaled in place
    assert np.isnan(sigma_from_accuracy([None, 2.0], "hdop", uere_m=2.0)[0])


def test_kind_names_aliases_and_case():
    assert set(ACCURACY_KINDS) == {"sigma", "r68", "cep", "r50", "r95", "hdop"}
    assert check_accuracy("R50") == ("cep", None)
    assert check_accuracy(" r68 ") == ("r68", None)
    np.testing.assert_array_equal(sigma_from_accuracy([5.0], "r50"), sigma_from_accuracy([5.0], "CEP"))


def test_an_unknown_kind_is_an_input_error_naming_it_and_the_kinds():
    with pytest.raises(InputError) as err:
        sigma_from_accuracy([1.0], "drms")
    message = str(err.value)
    assert "'drms'" in message and message.startswith("accuracy")
    for kind in ("sigma", "r68", "cep", "r50", "r95", "hdop"):
        assert kind in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("uere_m", [0.0, -2.0, float("nan"), float("inf"), "five"])
def test_a_bad_uere_is_refused(uere_m):
    with pytest.raises(InputError, match="uere_m"):
        sigma_from_accuracy([1.0], "hdop", uere_m=uere_m)


def test_a_uere_without_hdop_is_refused():
    with pytest.raises(InputError, match="uere_m.*hdop"):
        sigma_from_accuracy([1.0], "r68", uere_m=5.0)


# ------------------------------------------------------------------------------------------------ on load


def _fixes(accuracy) -> pa.Table:
    n = len(accuracy)
    return pa.table({"subject_id": ["s1"] * n,
                     "ts": pa.array(1_762_041_600_000 + 1000 * np.arange(n), pa.int64()),
                     "lon": [116.4] * n, "lat": [39.9] * n, "source": ["gnss"] * n,
                     "accuracy_m": pa.array(accuracy, pa.float64())})


def test_load_fixes_r68_divides_by_the_68_percent_radius():
    reported = [3.8, 12.0, None, 0.0]
    load = load_fixes(_fixes(reported), accuracy="r68")
    got = load.table.column("accuracy_m")
    assert got.type == pa.float32()
    expected = [None if v is None else v / radius_per_sigma(0.68) for v in reported]
    assert got.to_pylist()[2] is None                      # not reported stays not reported
    np.testing.assert_allclose([got[i].as_py() for i in (0, 1, 3)], [expected[i] for i in (0, 1, 3)], rtol=1e-6)


def test_load_fixes_converts_every_kind_from_csv_text(tmp_path):
    path = tmp_path / "fixes.csv"
    path.write_text("subject_id,ts,lon,lat,source,accuracy_m\n"
                    "s1,2025-11-02T00:00:00Z,116.4,39.9,gnss,1.6\n"
                    "s1,2025-11-02T00:00:10Z,116.4,39.9,gnss,\n")
    for kind, factor in (("hdop", 2.0 / math.sqrt(2)), ("r95", 1 / radius_per_sigma(0.95)), ("sigma", 1.0)):
        got = load_fixes(path, accuracy=kind, uere_m=2.0 if kind == "hdop" else None).table
        assert got.column("accuracy_m").to_pylist()[1] is None
        assert got.column("accuracy_m")[0].as_py() == pytest.approx(1.6 * factor, rel=1e-6)


def test_without_an_accuracy_column_every_kind_leaves_it_null():
    load = load_fixes(_fixes([1.0, 2.0]).drop_columns(["accuracy_m"]), accuracy="cep")
    assert load.table.column("accuracy_m").null_count == 2


def test_the_quarantine_judges_the_reported_value_whatever_the_kind():
    reported = [5.0, -1.0, float("inf"), 1e38, 4.0]
    plain = load_fixes(_fixes(reported))
    for kind in ("r68", "r95", "hdop"):
        load = load_fixes(_fixes(reported), accuracy=kind)
        assert load.n_read == load.n_accepted + load.n_quarantined == 5
        assert load.quarantine.column("reason").to_pylist() == plain.quarantine.column("reason").to_pylist()
        assert np.isfinite(load.table.column("accuracy_m").to_numpy()).all()   # 1e38 HDOP * UERE stays finite
    # The raw row in the quarantine is what the device sent, not a converted value.
    assert '"accuracy_m": -1.0' in load_fixes(_fixes(reported), accuracy="r95").quarantine.column("raw")[0].as_py()


def test_an_unknown_kind_fails_before_the_input_is_read(tmp_path):
    with pytest.raises(InputError, match="unknown accuracy kind 'bogus'"):
        load_fixes(tmp_path / "does-not-exist.csv", accuracy="bogus")


def test_a_large_parquet_fed_a_row_group_at_a_time_is_converted_once(tmp_path):
    table = _fixes(list(np.linspace(1.0, 30.0, 40)))
    pq.write_table(table, tmp_path / "fixes.parquet", row_group_size=7)
    feed = ParquetFeed(tmp_path / "fixes.parquet", accuracy="r95", batch_rows=9)
    got = pa.concat_tables([b.table for b in feed]).sort_by("ts")
    np.testing.assert_allclose(got.column("accuracy_m").to_numpy(),
                               np.linspace(1.0, 30.0, 40) / radius_per_sigma(0.95), rtol=1e-6)
    with pytest.raises(InputError, match="accuracy"):
        ParquetFeed(tmp_path / "fixes.parquet", accuracy="r99")
