"""The huge-input and scale-out suites at smoke-test sizes: their harness works (timings are not tested)."""

from __future__ import annotations

from benchmarks.huge import HugeConfig, run_huge
from benchmarks.scale import ScaleConfig, run_scale


def test_huge_suite_replays_its_file_and_reports_memory(tmp_path):
    import numpy as np

    # The replay's own memory, not its parent's: with 1.5 GB held here, a child that reported the parent's
    # (ru_maxrss is carried across fork and exec) or the largest earlier child would pass 1.5 GB.
    held = np.ones(int(1.5e9 / 8))
    payload = run_huge(HugeConfig.quick_run(fixes=60_000, subjects=500, row_group_rows=10_000),
                       out=tmp_path / "huge.json", console=None)
    (row,) = payload["runs"]
    assert row["fixes"] == 60_000 and 0.05 < row["peak_rss_gb"] < 1.2 and (tmp_path / "huge.json").exists()
    assert held[-1] == 1.0
    assert "60,000 = 60,000 + 0" in row["output_tail"]     # the replay read every fix and refused none


def test_scale_suite_finds_the_distributed_alerts_equal(tmp_path):
    payload = run_scale(ScaleConfig.quick_run(fixes=80_000, subjects=400, files=2, workers=(1,)),
                        out=tmp_path / "scale.json", console=None)
    assert [r.get("equal") for r in payload["runs"]] == [None, True] and payload["targets_met"]
