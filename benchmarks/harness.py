"""Timing, machine description and JSON output shared by every benchmark suite.

Timing policy: the setup (prepare, build a tree or an index) is timed once and
reported apart; the first call is the warm-up (JIT compile, lazy index build)
and is reported apart too; then the call is repeated at least ``repeat`` times
and until ``min_time_s`` has passed (capped at ``max_repeat``), with the garbage
collector off as ``timeit`` does, and the median is the figure of merit.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Measurement:
    """Timings of one implementation on one input; results kept for the comparison."""

    label: str
    stand_in: bool
    setup_s: float
    first_call_s: float
    times_s: list[float]
    first_result: Any = field(repr=False, default=None)
    last_result: Any = field(repr=False, default=None)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    def to_json(self, n_items: int) -> dict:
        return {
            "label": self.label,
            "stand_in": self.stand_in,
            "setup_s": self.setup_s,
            "first_call_s": self.first_call_s,
            "median_s": self.median_s,
            "min_s": self.min_s,
            "repeats": len(self.times_s),
            "times_s": self.times_s,
            "points_per_s": n_items / self.median_s,
            "ns_per_point": 1e9 * self.median_s / n_items,
        }


def measure(
    label: str,
    setup: Callable[[], Callable[[], Any]],
    *,
    stand_in: bool = False,
    repeat: int = 5,
    min_time_s: float = 1.0,
    max_repeat: int = 100,
) -> Measurement:
    """Run ``setup`` once, warm the returned call up once, then time it (see module docstring)."""
    start = time.perf_counter()
    call = setup()
    setup_s = time.perf_counter() - start

    start = time.perf_counter()
    first_result = call()
    first_call_s = time.perf_counter() - start

    times: list[float] = []
    repeat = max(1, repeat)
    result = None
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(times) < repeat or (sum(times) < min_time_s and len(times) < max_repeat):
            result = None  # free the previous result outside the timed region
            start = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(label, stand_in, setup_s, first_call_s, times, first_result, result)


def measure_fresh(
    label: str,
    prepare: Callable[[], Any],
    run: Callable[[Any], Any],
    *,
    repeat: int = 5,
    min_time_s: float = 1.0,
    max_repeat: int = 100,
) -> Measurement:
    """:func:`measure` for a stateful engine: ``state = prepare()`` (untimed) before every timed ``run(state)``.

    A Monitor carries each subject's last fix from call to call, so feeding it
    the same fixes twice is not the same work; each run gets a fresh one.
    ``setup_s`` is the first ``prepare``.
    """
    start = time.perf_counter()
    state = prepare()
    setup_s = time.perf_counter() - start

    start = time.perf_counter()
    first_result = run(state)
    first_call_s = time.perf_counter() - start

    times: list[float] = []
    repeat = max(1, repeat)
    result = None
    while len(times) < repeat or (sum(times) < min_time_s and len(times) < max_repeat):
        result = state = None
        state = prepare()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            result = run(state)
            times.append(time.perf_counter() - start)
        finally:
            if gc_was_enabled:
                gc.enable()
    return Measurement(label, False, setup_s, first_call_s, times, first_result, result)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict:
    """Where and with what the numbers were taken."""
    import numba
    import numpy
    import shapely

    import geomon

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "geomon": geomon.__version__,
        "git_commit": _git_commit(),
        # Other work on the machine skews parallel timings most; this says how busy it was.
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def publish(payload: dict, targets: list[dict], *, out: Path | None, console, print_report) -> dict:
    """Finish a suite's payload: its targets held to ``benchmarks/targets.toml``, whether every one was met, the
    JSON at ``out`` and the report on ``console``."""
    from benchmarks import targets as thresholds

    thresholds.apply(targets, payload["suite"], thresholds.load())
    payload["targets_met"] = all(t["status"] != "FAIL" for t in targets)
    if out is not None:
        write_json(out, payload)
    if console is not None:
        print_report(payload, console, out=out)
    return payload


class QuickRun:
    """Mixin for a suite's config dataclass: ``quick_run`` builds it at the class's ``QUICK`` smoke-run sizes."""

    QUICK: dict = {}

    @classmethod
    def quick_run(cls, **overrides):
        """The config at smoke-run sizes (``QUICK``, then ``overrides``)."""
        return cls(**{**cls.QUICK, "quick": True, **overrides})
