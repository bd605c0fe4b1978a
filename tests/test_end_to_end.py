"""Simulator to alerts: with exact positions, every injected violation is alerted and nothing else."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from geomon.evaluate import score
from geomon.replay import replay
from geomon.simulate import simulate


@pytest.mark.parametrize("seed", [3, 8])
def test_noise_off_every_violation_and_nothing_else(tmp_path, seed):
    sim = simulate(tmp_path, n_subjects=40, days=0.5, seed=seed, noise=False)
    truth = pq.read_table(tmp_path / "truth.parquet")
    assert truth.num_rows >= 2  # the simulator injected something to find
    result = replay(tmp_path / "fixes.parquet", tmp_path / "zones.geojson", tmp_path / "subjects.csv",
                    db=tmp_path / "alerts.duckdb", batch_rows=5000)
    assert result.n_quarantined == 0
    for s in score(result.alerts, truth, slack_s=0):
        assert s.true_positives == s.n_truth == s.n_alerts, s
        # Confirmation comes after the true start, within the hysteresis (3 fixes, <= 60 s apart, + 30 s).
        assert (s.delays_s >= 0).all() and (s.delays_s <= 300).all(), s.delays_s
