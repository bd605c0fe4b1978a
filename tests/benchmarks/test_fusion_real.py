"""The real drive (data/field/gnss_benchmark_drive.csv) and its evaluation (benchmarks.fusion_real).

The file is read whole, with nothing dropped; its fixes lie near their
reference; the evaluation gives every metric at 1, 5 and 15 s with every phase
of a subsampling pooled; and its judging can fail: fixes whose sigma is 100x
too small make the filter overconfident, which misses the NEES bar.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from benchmarks import fusion_matrix, fusion_real, targets

#: What data/field/make_gnss_benchmark_drive.py printed when it wrote the file.
EPOCHS, WITH_REFERENCE, WITH_FIX, WITH_BOTH = 1201, 1158, 1193, 1150


@pytest.fixture(scope="module")
def drive():
    return fusion_real.load_drive()


@pytest.fixture(scope="module")
def rows(drive):
    return fusion_real.real_rows({}, drive)


def test_the_file_has_its_columns_and_every_epoch(drive):
    lines = fusion_real.DRIVE.read_text().splitlines()
    assert tuple(lines[0].split(",")) == fusion_real.COLUMNS
    assert drive.t_ms.size == len(lines) - 1 == EPOCHS
    # Every 1 Hz epoch of the 20 minutes, in order: none lost in the making or the reading.
    assert np.all(np.diff(drive.t_ms) == 1000)
    assert drive.t_ms[0] == np.datetime64("2020-11-29T12:39:42", "ms").astype(np.int64)  # 12:40:00 GPST
    with_fix, without = int(drive.has_fix.sum()), int((~drive.has_fix).sum())
    assert with_fix + without == drive.t_ms.size
    assert (with_fix, int(drive.has_truth.sum()), int((drive.has_fix & drive.has_truth).sum())) == \
        (WITH_FIX, WITH_REFERENCE, WITH_BOTH)
    # A fix has a sigma and satellites; an epoch without one has neither.
    assert np.all(drive.sigma_m[drive.has_fix] > 0) and np.all(drive.n_sat[drive.has_fix] >= 4)
    assert np.all(np.isnan(drive.sigma_m[~drive.has_fix])) and np.all(drive.n_sat[~drive.has_fix] == 0)


def test_the_fixes_lie_near_the_reference(drive):
    ref_x, ref_y, fix_x, fix_y = fusion_real.project(drive)
    both = drive.has_fix & drive.has_truth
    error = np.hypot(fix_x - ref_x, fix_y - ref_y)[both]
    assert 1.0 < np.median(error) < 20.0
    # The reference moves like a car in town: mostly under 20 m/s, and it does drive.
    speed = np.hypot(np.diff(ref_x), np.diff(ref_y))
    speed = speed[np.isfinite(speed)]
    assert np.percentile(speed, 99) < 20.0 and np.percentile(speed, 50) > 1.0


@pytest.mark.parametrize("interval_s", [1, 5, 15])
def test_the_phases_cover_every_fix_once(drive, interval_s):
    idx, offsets = fusion_real.phases(drive.t_ms, drive.has_fix, interval_s)
    assert offsets.size == interval_s + 1 and offsets[-1] == idx.size
    assert np.array_equal(np.sort(idx), np.flatnonzero(drive.has_fix))
    for p in range(interval_s):
        t = drive.t_ms[idx[offsets[p]:offsets[p + 1]]]
        assert np.all(np.diff(t) > 0) and np.all(np.diff(t) % (1000 * interval_s) == 0)


def test_every_interval_has_every_metric(rows):
    assert [r["interval_s"] for r in rows] == list(fusion_real.INTERVALS_S)
    for r in rows:
        assert r["n_tracks"] == r["interval_s"]          # every phase, pooled
        assert r["n_fed"] == WITH_FIX and r["n_fixes"] == WITH_BOTH and r["n_unscored"] == WITH_FIX - WITH_BOTH
        for q in ("raw_error_m", "fused_error_m"):
            values = [r[q][k] for k in ("p50", "p90", "p95", "p99")]
            assert all(math.isfinite(v) for v in values) and values == sorted(values), (r["label"], q)
        assert r["p90_ratio"] == pytest.approx(r["fused_error_m"]["p90"] / r["raw_error_m"]["p90"])
        assert r["p99_ratio"] == pytest.approx(r["fused_error_m"]["p99"] / r["raw_error_m"]["p99"])
        assert math.isfinite(r["nees_mean"]) and r["nees_mean"] > 0 and 0.0 <= r["outside95"] <= 1.0
        assert sum(r["status_counts"].values()) == r["n_fixes"]
        assert r["missed"] == fusion_matrix.missed_bars(fusion_matrix.Cell("real_drive", "spp", r["interval_s"]), r)


def test_the_targets_are_named_in_targets_toml(rows):
    table = targets.load()
    made = fusion_real.real_targets(rows)
    assert len(made) == len(rows) * len(fusion_real.REAL_BARS)
    for t in made:
        entry = targets.lookup(table, "fusion", t["key"])
        assert entry is not None and t["key"].split("@", 1)[1].startswith("real_drive_"), t["key"]
        assert (entry["op"], entry["value"]) == (t["op"], t["threshold"]), t["key"]


def test_fixes_claiming_a_sigma_100x_too_small_fail_the_nees_bar(drive, rows):
    broken = fusion_real.real_rows({}, dataclasses.replace(drive, sigma_m=drive.sigma_m / 100.0))
    for honest, r in zip(rows, broken):
        assert "NEES" in r["missed"] and r["nees_mean"] > fusion_matrix.NEES_BAR[1], r["label"]
        assert r["nees_mean"] > 10 * honest["nees_mean"]
        bad = {t["key"]: t["status"] for t in fusion_real.real_targets([r])}
        assert bad[f"nees_mean@real_drive_{r['interval_s']}s"] == "FAIL"
