"""First-run suite: the README's demo command in a fresh process with an empty numba cache (cold) and again with
the cache it filled (warm), as a new user meets it; what compiling costs, kernel by kernel, is in
:mod:`benchmarks.compile_times`, which this suite runs.

Target (the fast-whole issue): a cold first run in 15 s or less on 2 cores, install excluded.

The ci scenario checks the harness without compiling everything again (a cold demo takes half a minute): it runs
no cold demo and reports the target unmeasured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import compile_times, harness, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "firstrun.json"
COLD_TARGET_S = 15.0


@dataclass(frozen=True)
class FirstRunConfig(harness.QuickRun):
    runs: int = 3
    quick: bool = False

    QUICK = {"runs": 0}


def run_firstrun(config: FirstRunConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    summary = {}
    if config.runs > 0:
        timed = compile_times.run_compile_times(compile_times.CompileConfig(runs=config.runs), out=None, console=None)
        summary = timed["summary"]["as_is"]
    cold, warm = summary.get("cold_wall_s"), summary.get("warm_wall_s")
    row = {"runs": config.runs, "cold_s": cold, "warm_s": warm, "compile_s": summary.get("compile_s"),
           "signatures": summary.get("signatures"), "cold_runs": summary.get("cold_wall_s_runs", []),
           "warm_runs": summary.get("warm_wall_s_runs", []),
           "top_kernels": [{k: r[k] for k in ("full_name", "n_signatures", "compile_s")}
                           for r in summary.get("kernels", [])[:15]]}
    targets = [report.target("geomon demo, empty numba cache: wall seconds (install excluded)", cold, "<=",
                             COLD_TARGET_S, unit=" s", key="cold_first_run_s")]
    payload = {"suite": "firstrun", "config": asdict(config), "machine": harness.machine_info(), "runs": [row],
               "targets": targets}
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    r = payload["runs"][0]
    table = Table(title=f"geomon demo in a fresh process (median of {r['runs']})", title_justify="left")
    for name in ("cold s", "of which compiling s", "signatures compiled", "warm s"):
        table.add_column(name, justify="right")

    def s(v, fmt="{:.1f}"):
        return "-" if v is None else fmt.format(v)

    table.add_row(s(r["cold_s"]), s(r["compile_s"]), s(r["signatures"], "{:d}"), s(r["warm_s"]))
    console.print(report.machine_line(payload["machine"]))
    console.print(table)
    if r["top_kernels"]:
        top = Table(title="Slowest kernels to compile", title_justify="left")
        for name in ("kernel", "signatures", "compile s"):
            top.add_column(name, justify="left" if name == "kernel" else "right")
        for k in r["top_kernels"]:
            top.add_row(k["full_name"].removeprefix("geomon.kernels."), str(k["n_signatures"] or "-"),
                        f"{k['compile_s']:.2f}")
        console.print(top)
    console.print(report.targets_table(payload["targets"]))
    if out is not None:
        console.print(f"JSON: {out}")
