"""Scale-out suite: the same input replayed on one machine and on Dask local clusters of 1 and 2 workers.

The input is the huge suite's synthetic county (``benchmarks/huge.py``),
written as ``files`` Parquet files in event-time order. Each run reports its
wall time and fixes per second, and the suite checks that the distributed
alerts equal the single-machine replay's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report
from benchmarks.huge import HugeConfig, write_fixes
from benchmarks.latency import _world

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scale.json"


@dataclass(frozen=True)
class ScaleConfig(harness.QuickRun):
    fixes: int = 50_000_000
    subjects: int = 20_000
    files: int = 10
    workers: tuple[int, ...] = (1, 2)
    seed: int = 0
    #: The first ``concern`` subjects are persons of concern to every subject: frequent contact between subjects,
    #: searched by encounter windows of ``encounter_window_s`` on Dask.
    concern: int = 0
    encounter_window_s: float = 3_600.0
    quick: bool = False

    QUICK = {"fixes": 300_000, "subjects": 1_000, "files": 3}


def run_scale(config: ScaleConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    from geomon.run.distributed import replay_distributed
    from geomon.run.replay import replay

    progress = report.progress_console(console)
    machine = harness.machine_info()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame, ids, home, target = _world(config.subjects, 400, np.random.default_rng(config.seed), folder)
        whole = folder / "whole.parquet"
        write_fixes(whole, HugeConfig(fixes=config.fixes, subjects=config.subjects, seed=config.seed), home, target,
                    ids, frame, progress)
        parts = folder / "parts"
        parts.mkdir()
        pf = pq.ParquetFile(whole)
        groups = np.array_split(np.arange(pf.metadata.num_row_groups), config.files)
        for i, g in enumerate(groups):
            if g.size:
                pq.write_table(pf.read_row_groups(list(g)), parts / f"part-{i:04d}.parquet")
        whole.unlink()
        zones, subjects = folder / "zones.geojson", folder / "subjects.csv"
        concern = {str(s): None for s in ids[:config.concern]} or None
        with report.step(progress, f"one machine: {config.fixes:,} fixes"):
            clock = time.perf_counter()
            single = replay(parts, zones, subjects, concern=concern)
            rows.append({"run": "one machine (geomon replay)", "seconds": time.perf_counter() - clock})
        for n in config.workers:
            with report.step(progress, f"Dask local:{n}"):
                clock = time.perf_counter()
                dist = replay_distributed(parts, zones, subjects, scheduler=f"local:{n}", concern=concern,
                                          encounter_window_s=config.encounter_window_s)
                rows.append({"run": f"Dask local:{n} ({2 * n} partitions)", "seconds": time.perf_counter() - clock,
                             "slowest_partition_s": max(dist.partition_seconds),
                             "equal": bool(dist.alerts.equals(single.alerts))})
    for r in rows:
        r["fixes_per_s"] = config.fixes / r["seconds"]
    targets = [report.target(f"{r['run']}: alerts equal the single-machine replay's", float(r["equal"]), ">=", 1.0,
                              key=f"alerts_equal@{r['run'].split()[1] if r['run'].startswith('Dask') else 'one'}")
               for r in rows if "equal" in r]
    payload = {"suite": "scale", "config": asdict(config), "machine": machine, "runs": rows,
               "alerts": single.alerts.num_rows, "targets": targets,
               "frequent_contact": single.alerts.column("kind").to_pylist().count("frequent_contact")}
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    c = payload["config"]
    contact = (f"; {c['concern']} of them persons of concern to all, encounter windows of "
               f"{c['encounter_window_s']:,.0f} s ({payload.get('frequent_contact', 0):,} frequent contacts)"
               if c.get("concern") else "")
    table = Table(title=f"Replay of {c['fixes']:,} fixes in {c['files']} Parquet files, {c['subjects']:,} subjects"
                        f"{contact} ({payload['alerts']:,} alerts)", title_justify="left")
    for name in ("run", "seconds", "fixes/s", "slowest partition s", "alerts equal"):
        table.add_column(name, justify="right")
    for r in payload["runs"]:
        table.add_row(r["run"], f"{r['seconds']:,.1f}", f"{r['fixes_per_s']:,.0f}",
                      report.fmt(r.get("slowest_partition_s"), ",.1f"),
                      {True: "yes", False: "NO"}.get(r.get("equal"), ""))
    console.print(report.machine_line(payload["machine"]))
    console.print(table)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON: {out}")

