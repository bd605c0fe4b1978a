"""Simulator to alerts: with exact positions, every injected violation is alerted and nothing else."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from geomon.office.evaluate import score
from geomon.run.replay import replay
from geomon.sim.simulate import simulate


@pytest.mark.parametrize("seed", [3, 8])
def test_noise_off_every_violation_and_nothing_else(tmp_path, seed):
    sim = simulate(tmp_path, n_subjects=40, days=0.5, seed=seed, noise=False)
    truth = pq.read_table(tmp_path / "truth.parquet")
    assert truth.num_rows >= 2  # the simulator injected something to find
    assert truth.num_rows == sim.n_injected  # and labelled every violation it planned
    result = replay(tmp_path / "fixes.parquet", tmp_path / "zones.geojson", tmp_path / "subjects.csv",
                    db=tmp_path / "alerts.duckdb", batch_rows=5000)
    assert result.n_quarantined == 0
    # Only geofence kinds are labelled by this simulator; with noise off its
    # fixes repeat exactly at rest, which the contact detectors rightly call a
    # stuck device (tests/engine/test_lost_contact.py covers those).
    geofence = result.alerts.filter(pc.is_in(result.alerts.column("kind"),
                                             pa.array(["permitted_exit", "forbidden_entry"])))
    for s in score(geofence, truth, slack_s=0):
        assert s.true_positives == s.n_truth == s.n_alerts, s
        # Confirmation comes after the true start, within the hysteresis (3 fixes, <= 60 s apart, + 30 s).
        assert (s.delays_s >= 0).all() and (s.delays_s <= 300).all(), s.delays_s
