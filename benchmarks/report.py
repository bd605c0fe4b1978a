"""Pieces every suite's report shares: target verdicts, quantiles, the machine line, progress messages.

A target is a dict ``{name, measured, op, threshold, unit, status}``; ``op`` is
``">="``, ``"<="``, ``"<"`` or ``"in"`` (``threshold`` is then ``[low, high]``,
both included). A target whose measurement is missing (the case was not run, or
there was nothing to measure) is SKIP, never PASS.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "SKIP": "yellow"}


def judge(measured: float | None, op: str, threshold) -> str:
    """PASS, FAIL or SKIP (nothing measured) of one measurement against its threshold."""
    if measured is None or not math.isfinite(measured):
        return "SKIP"
    if op == ">=":
        ok = measured >= threshold
    elif op == "<=":
        ok = measured <= threshold
    elif op == "<":
        ok = measured < threshold
    elif op == "in":
        ok = threshold[0] <= measured <= threshold[1]
    else:
        raise ValueError(f"unknown target operator {op!r}")
    return "PASS" if ok else "FAIL"


def target(name: str, measured: float | None, op: str, threshold, *, key: str, unit: str = "", void: str = "",
           **extra) -> dict:
    """One target row; a non-empty ``void`` (why the measurement cannot be trusted) makes it FAIL.

    ``key`` names the metric in ``benchmarks/targets.toml`` and in ``geomon bench --compare``: a base name, and
    after ``@`` the size or variant it was measured at (``cpu_pct@100000``).
    """
    status = "FAIL" if void else judge(measured, op, threshold)
    threshold = list(threshold) if op == "in" else threshold
    return {"key": key, "name": name, "measured": measured, "unit": unit, "op": op, "threshold": threshold,
            "status": status, "void": void, **extra}


def quantiles(values: np.ndarray, percents: Sequence[float]) -> dict[str, float | None]:
    """``{"p50": ..., ...}`` of the finite values (``"max"`` for 100); None for each when there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    out = {}
    for p in percents:
        key = "max" if p == 100 else f"p{p:g}"
        out[key] = float(np.percentile(values, p)) if values.size else None
    return out


def fmt(value: float | None, spec: str = ",.2f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def fmt_threshold(t: dict) -> str:
    if t["op"] == "in":
        low, high = t["threshold"]
        return f"in [{low:g}, {high:g}]{t['unit']}"
    return f"{t['op']} {t['threshold']:g}{t['unit']}"


def styled_status(status: str, note: str = "") -> str:
    return f"[{STATUS_STYLE[status]}]{status}{note}[/]"


def load_text(machine: dict) -> str:
    load = machine.get("load_average_1_5_15")
    return "n/a" if load is None else " ".join(f"{v:.2f}" for v in load)


def machine_line(machine: dict) -> str:
    """CPU, cores, threads and versions in one line, under a report's title."""
    return (
        f"{machine['cpu']}, nproc {machine['nproc']}, numba threads {machine['numba_threads']}; "
        f"numpy {machine['numpy']}, numba {machine['numba']}, shapely {machine['shapely']} (GEOS {machine['geos']}), "
        f"geomon {machine['geomon']}; {machine['date_utc']}; load average {load_text(machine)}"
    )


def warn_if_loaded(machine: dict, console: Console) -> None:
    load = machine.get("load_average_1_5_15")
    if load is not None and load[0] > 0.25 * machine["nproc"]:
        console.print(
            f"[bold yellow]warning:[/] load average {load[0]:.2f} on {machine['nproc']} cores when the run started: "
            "parallel timings suffer when a worker thread is descheduled; take published numbers on an idle machine."
        )


def targets_table(targets: list[dict], *, peer: str | None = None) -> Table:
    """The Targets table; with ``peer``, a column of the peer's value of each measurement (``peer_measured``)."""
    table = Table(title="Targets")
    columns = [("target", "left"), ("measured", "right")]
    if peer:
        columns.append((peer, "right"))
    columns += [("required", "right"), ("result", "center")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for t in targets:
        cells = [t["name"], "n/a" if t["measured"] is None else f"{t['measured']:,.3g}{t['unit']}"]
        if peer:
            other = t.get("peer_measured")
            cells.append("n/a" if other is None else f"{other:,.3g}{t['unit']}")
        note = f" ({t['void']})" if t["void"] else ""
        cells += [fmt_threshold(t), styled_status(t["status"], note)]
        table.add_row(*cells)
    return table


def progress_console(console: Console | None) -> Console:
    """Where progress goes: stderr, silent when the caller prints nothing."""
    return Console(stderr=True, quiet=console is None)


@contextmanager
def step(progress: Console, message: str) -> Iterator[None]:
    """A spinner with ``message`` on a terminal; one line in a log (where a spinner would print nothing)."""
    if progress.is_terminal:
        with progress.status(message):
            yield
    else:
        progress.print(f"[dim]{message}[/]")
        yield
