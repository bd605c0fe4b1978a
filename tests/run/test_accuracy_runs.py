"""Every way fixes enter a run converts their accuracy kind once: the Monitor fed raw tables, a distributed replay
(each partition loads its own rows), the meeting watch over recorded fixes."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geomon.engine.monitor import Monitor
from geomon.errors import InputError
from geomon.run.meetings import meeting_alerts
from geomon.run.replay import replay
from tests import scenario as sc

#: Radius of 95 % of a circular 2-D Gaussian in per-axis sigmas (Rayleigh quantile).
R95_PER_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.95))
REPORTED_M = 24.0


def _walks(accuracy_m: float) -> pa.Table:
    walks = pa.concat_tables([sc.walk("s1", (sc.X0 + 1500, sc.Y0), (sc.X0 + 2500, sc.Y0)),
                              sc.walk("s2", (sc.X0, sc.Y0 + 4500), (sc.X0, sc.Y0 + 6000))])
    i = walks.schema.get_field_index("accuracy_m")
    return walks.set_column(i, "accuracy_m", pa.array(np.full(walks.num_rows, accuracy_m, np.float32)))


def _monitor_tracks(fixes: pa.Table, **accuracy) -> np.ndarray:
    monitor = Monitor(sc.zones(), sc.subjects(3), **accuracy)
    monitor.keep_tracks = True
    monitor.process(fixes)
    return monitor.take_tracks().column("sigma_m").to_numpy()


def test_the_monitor_converts_the_raw_tables_it_validates():
    r95 = _monitor_tracks(_walks(REPORTED_M), accuracy="r95")
    sigma = _monitor_tracks(_walks(REPORTED_M / R95_PER_SIGMA))
    np.testing.assert_allclose(r95, sigma, rtol=1e-5)
    assert _monitor_tracks(_walks(REPORTED_M)).mean() > 1.5 * r95.mean()
    with pytest.raises(InputError, match="accuracy"):
        Monitor(sc.zones(), sc.subjects(3), accuracy="r100")


def test_a_distributed_replay_converts_in_every_partition(tmp_path):
    from geomon.run.distributed import replay_distributed

    zones, subjects = sc.write_county(tmp_path)
    (tmp_path / "in").mkdir()
    pq.write_table(_walks(REPORTED_M), tmp_path / "in" / "fixes.parquet")
    dist = replay_distributed(tmp_path / "in", zones, subjects, scheduler="local:1", partitions=2, accuracy="r95")
    one = replay(_walks(REPORTED_M / R95_PER_SIGMA), zones, subjects)
    plain = replay(_walks(REPORTED_M), zones, subjects)
    def alerts(result):
        table = result.alerts.sort_by("kind")
        return table.select(["kind", "subject_id"]).to_pylist(), table.column("accuracy_m").to_numpy()

    kinds, accuracy_m = alerts(dist)
    assert len(kinds) == 2 and kinds == alerts(one)[0]
    np.testing.assert_allclose(accuracy_m, alerts(one)[1], rtol=1e-5)
    # Read as 1-sigma, the 24 m fixes are vaguer: the county exit is still found, and every alert found both
    # ways carries the vaguer accuracy (whether the 200 m bar's crossing is decided on evidence that vague
    # depends on the evidence rule, not on the conversion).
    plain_kinds, plain_accuracy = alerts(plain)
    assert {"kind": "permitted_exit", "subject_id": "s2"} in plain_kinds
    for kind, accuracy in zip(plain_kinds, plain_accuracy):
        if kind in kinds:
            assert accuracy > 1.5 * accuracy_m[kinds.index(kind)]

def test_the_meeting_watch_takes_the_option_to_its_loader():
    fixes = _walks(REPORTED_M)
    assert meeting_alerts(fixes, sc.subjects(3).table, concern={"s2": ["s1"]}, accuracy="r95").num_rows >= 0
    with pytest.raises(InputError, match="unknown accuracy kind 'r100'"):
        meeting_alerts(fixes, sc.subjects(3).table, concern={"s2": ["s1"]}, accuracy="r100")
