"""Compile-time suite: what numba's compile costs a new user's first ``geomon demo``, kernel by kernel.

Every kernel is ``@njit(cache=True)`` (``kernels/_jit.py``), so a first run compiles each kernel it calls, once per
type signature it is called with, and later runs load the machine code from numba's on-disk cache. Each of
``runs`` rounds here gets a fresh, empty ``NUMBA_CACHE_DIR`` (the checkout's ``kernels/__pycache__`` is never read
nor written) and runs ``geomon demo`` in a child process twice: cold (everything compiled), then warm (the same
cache dir). The figures are medians over the rounds.

In the child, a listener on numba's event API (:mod:`numba.core.event`) times every ``"numba:compile"`` event (a
dispatcher compiling one signature; nested when a kernel's typing compiles the kernels it calls). Each event's own
time (its duration less that of the compiles nested in it) goes to the nearest ``geomon.kernels`` dispatcher at or
above it: a kernel is charged for itself and for numba's library overloads compiled for it, not for the geomon
kernels it calls. After the run the child lists every dispatcher in the ``geomon.kernels.*`` modules with its
``signatures`` (and, for a kernel with several, the arguments numba typed as literals). Before the demo it compiles
one trivial function, so numba's one-time setup is reported apart instead of being charged to whichever kernel
happens to compile first. Each compile is timed on the wall clock and in CPU seconds of the compiling thread
(``time.thread_time``): on a machine shared with other benchmarks the CPU figure is the steadier one.

``--compare-serial`` also runs the rounds with ``jit_parallel`` replaced by ``jit`` (``parallel=False``) in the
child only (``geomon.kernels._jit`` is patched before any kernel module is imported; no file changes), to show what
parfors cost to compile. Where ``_jit`` has no ``jit_parallel`` any more, the serial rounds run the same code (the
report says so).

Run ``python -m benchmarks.compile_times`` from the repository root (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import harness, report

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compile_times.json"
KERNEL_PACKAGE = "geomon.kernels"
#: Rounds run the kernels as the checkout has them, and with ``--compare-serial`` also with ``jit_parallel = jit``.
MODES = ("as_is", "serial")
MODE_TITLES = {"as_is": "as checked out", "serial": "jit_parallel = jit"}

#: The child process: ``geomon`` under :func:`_child` (this module's, with the benchmarks folder's parent as cwd).
_CHILD = "import sys\nfrom benchmarks.compile_times import _child\nsys.exit(_child(sys.argv[1:]))"


@dataclass(frozen=True)
class CompileConfig(harness.QuickRun):
    runs: int = 3
    compare_serial: bool = False
    data: str = ""
    quick: bool = False

    QUICK = {"runs": 1}


# --------------------------------------------------------------------------------------------------- the child


class _CompileListener:
    """Every ``numba:compile`` event, nested ones included, with its duration; and the top-level compiler-lock time.

    The compiler lock is taken for a cache load or save as well as for a compile: the wall time during which some
    thread was in it or waiting for it (nested acquisitions and threads waiting side by side counted once) is the
    whole cost of the compile machinery, the events only the compiles.
    """

    def __init__(self) -> None:
        from numba.core import event

        outer = self

        class _Compile(event.Listener):
            def on_start(self, ev):
                outer._start(ev)

            def on_end(self, ev):
                outer._end(ev)

        class _Lock(event.Listener):
            def on_start(self, ev):
                outer._lock(+1)

            def on_end(self, ev):
                outer._lock(-1)

        self._event = event
        self._listeners = {"numba:compile": _Compile(), "numba:compiler_lock": _Lock()}
        self._local = threading.local()
        self.events: list[dict] = []
        self.lock_spans: list[tuple[float, float]] = []

    def _stack(self) -> list[int]:
        if not hasattr(self._local, "stack"):
            self._local.stack, self._local.lock_depth, self._local.lock_t0 = [], 0, 0.0
        return self._local.stack

    def _start(self, ev) -> None:
        stack = self._stack()
        d = ev.data["dispatcher"]
        func = d.py_func
        self.events.append({"id": len(self.events), "parent": stack[-1] if stack else None,
                            "module": func.__module__, "qualname": func.__qualname__, "dispatcher": id(d),
                            "args": _signature(ev.data["args"]), "arg_types": [repr(a) for a in ev.data["args"]],
                            "t0": time.perf_counter(), "c0": time.thread_time(),
                            "s": None, "cpu_s": None})
        stack.append(len(self.events) - 1)

    def _end(self, ev) -> None:
        row = self.events[self._stack().pop()]
        row["s"] = time.perf_counter() - row["t0"]
        row["cpu_s"] = time.thread_time() - row["c0"]

    def _lock(self, step: int) -> None:
        self._stack()
        local = self._local
        if step > 0:
            if local.lock_depth == 0:
                local.lock_t0 = time.perf_counter()
            local.lock_depth += 1
        else:
            local.lock_depth -= 1
            if local.lock_depth == 0:
                self.lock_spans.append((local.lock_t0, time.perf_counter()))

    @property
    def lock_s(self) -> float:
        """Length of the union of the threads' top-level compiler-lock spans."""
        total, end = 0.0, float("-inf")
        for t0, t1 in sorted(self.lock_spans):
            if t1 > end:
                total += t1 - max(t0, end)
                end = t1
        return total

    def install(self) -> None:
        for kind, listener in self._listeners.items():
            self._event.register(kind, listener)

    def remove(self) -> None:
        for kind, listener in self._listeners.items():
            self._event.unregister(kind, listener)


def _signature(types) -> str:
    """``(array(float64, 1d, C), int64, Literal[int](0))``: numba's short names of the argument types."""
    return "(" + ", ".join(str(t) for t in types) + ")"


def _literal_args(dispatcher) -> tuple[dict[str, list], int]:
    """Why a dispatcher has several signatures: ``{parameter: [literal values]}`` of the arguments numba typed as
    literals (a constant at the call site, or a loop-carried accumulator seen first as its initial constant),
    and how many signatures are left once literals are widened (more than one: dtypes or layouts differ)."""
    import inspect

    from numba.core import types

    params = list(inspect.signature(dispatcher.py_func).parameters)
    literal: dict[str, set] = {}
    for sig in dispatcher.signatures:
        for name, t in zip(params, sig):
            if isinstance(t, types.Literal):
                literal.setdefault(name, set()).add(repr(t.literal_value))
    widened = {tuple(types.unliteral(t) for t in sig) for sig in dispatcher.signatures}
    return {k: sorted(v) for k, v in literal.items()}, len(widened)


def _kernel_dispatchers() -> list:
    """Every numba dispatcher defined in a ``geomon.kernels.*`` module (each once, wherever it is imported)."""
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    import geomon.kernels

    found: dict[int, Dispatcher] = {}
    for info in pkgutil.iter_modules(geomon.kernels.__path__, KERNEL_PACKAGE + "."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__.startswith(KERNEL_PACKAGE):
                found[id(obj)] = obj
    return list(found.values())


def _kind(targetoptions: dict) -> str:
    if targetoptions.get("parallel"):
        return "parallel"
    if targetoptions.get("inline", "never") != "never":
        return "inline"
    return "serial"


def _attribute(events: list[dict]) -> dict[str, dict]:
    """Each compile event's own time charged to the nearest geomon kernel at or above it (see module docstring)."""
    nested = [0.0] * len(events)
    nested_cpu = [0.0] * len(events)
    for e in events:
        if e["parent"] is not None and e["s"] is not None:
            nested[e["parent"]] += e["s"]
            nested_cpu[e["parent"]] += e["cpu_s"]
    owners: dict[str, dict] = {}
    owner_of: list[str] = []
    for e in events:
        name = f"{e['module']}.{e['qualname']}"
        if not e["module"].startswith(KERNEL_PACKAGE) and e["parent"] is not None:
            name = owner_of[e["parent"]]
        owner_of.append(name)
        own = max(0.0, (e["s"] or 0.0) - nested[e["id"]])
        row = owners.setdefault(name, {"self_s": 0.0, "self_cpu_s": 0.0, "inclusive_s": 0.0, "compiles": 0,
                                       "library_compiles": 0, "library_s": 0.0, "args": []})
        row["self_s"] += own
        row["self_cpu_s"] += max(0.0, (e["cpu_s"] or 0.0) - nested_cpu[e["id"]])
        if name == f"{e['module']}.{e['qualname']}":
            row["compiles"] += 1
            row["inclusive_s"] += e["s"] or 0.0
            row["args"].append(e["args"])
        else:
            row["library_compiles"] += 1
            row["library_s"] += own
            lib = f"{e['module']}.{e['qualname']}"
            row.setdefault("library", {})[lib] = row.get("library", {}).get(lib, 0.0) + own
    return owners


def _child(argv: list[str]) -> int:
    """``_child OUT.json MODE geomon-args...``: run geomon with the listener on, write what it saw to OUT.json.

    MODE is ``as_is`` or ``serial`` (``jit_parallel`` replaced by ``jit`` before any kernel module is imported).
    """
    out, mode, cli_args = Path(argv[0]), argv[1], argv[2:]
    clock = time.perf_counter()
    import numba

    listener = _CompileListener()
    # numba's one-time setup (target contexts, typing registries), paid by the first compile of the process.
    prime_clock = time.perf_counter()
    numba.njit(lambda x: x + 1)(1)
    prime_s = time.perf_counter() - prime_clock
    patched = False
    if mode == "serial":
        import geomon.kernels._jit as jit_options

        patched = hasattr(jit_options, "jit_parallel")
        if patched:
            jit_options.jit_parallel = jit_options.jit
    listener.install()
    code = 0
    app_clock = time.perf_counter()
    try:
        from geomon.cli.main import app

        sys.argv = ["geomon", *cli_args]
        try:
            app()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        app_s = time.perf_counter() - app_clock
        listener.remove()
        kernels = []
        for d in _kernel_dispatchers():
            func = d.py_func
            literal, widened = _literal_args(d)
            kernels.append({"kernel": f"{func.__module__}.{func.__qualname__}", "module": func.__module__,
                            "name": func.__qualname__, "kind": _kind(d.targetoptions),
                            "signatures": [_signature(s) for s in d.signatures], "literal_args": literal,
                            "signatures_without_literals": widened,
                            "cache_hits": sum(d.stats.cache_hits.values()),
                            "cache_misses": sum(d.stats.cache_misses.values())})
        events = listener.events
        top = [e for e in events if e["parent"] is None]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        payload = {"mode": mode, "serial_patch": patched, "exit_code": code, "child_s": time.perf_counter() - clock,
                   "app_s": app_s, "cpu_s": usage.ru_utime + usage.ru_stime, "prime_s": prime_s,
                   "compile_s": sum(e["s"] or 0.0 for e in top), "compile_cpu_s": sum(e["cpu_s"] or 0.0 for e in top),
                   "compiler_lock_s": listener.lock_s,
                   "compile_events": len(events), "owners": _attribute(events), "kernels": kernels}
        out.write_text(json.dumps(payload))
    return code


# -------------------------------------------------------------------------------------------------- the parent


def _run_child(mode: str, cache: Path, db: Path, data: Path) -> dict:
    """One ``geomon demo`` in a child with ``cache`` as its numba cache; its wall time and what the child saw."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    seen = db.parent / f"{db.stem}.json"
    args = [sys.executable, "-c", _CHILD, str(seen), mode, "demo", "--db", str(db), "--data", str(data)]
    clock = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - clock
    if done.returncode != 0 or not seen.exists():
        raise RuntimeError(f"geomon demo failed ({mode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    row = json.loads(seen.read_text())
    alerts = re.findall(r"([\d,]+) alerts in this replay", done.stdout)
    row.update(wall_s=wall, alerts=int(alerts[-1].replace(",", "")) if alerts else None)
    return row


def _dirty_files() -> list[str] | None:
    """``git status --porcelain`` of the checkout (read only: no optional locks, the index is not refreshed)."""
    try:
        out = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], capture_output=True, text=True,
                             timeout=10, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.splitlines() if out.returncode == 0 else None


def _source_digest() -> str:
    """A digest of the Python sources the demo runs (kernels, geomon, cli): other people's edits during a run show."""
    h = hashlib.sha1()
    for folder in ("kernels", "geomon", "cli"):
        for path in sorted((REPO / folder).rglob("*.py")):
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _library(per_run: list[dict], keep: int = 5) -> dict[str, float]:
    """The numba library overloads compiled for a kernel that cost it most: {overload: median s}."""
    names = {k for o in per_run for k in o.get("library", {})}
    medians = {k: _median([o.get("library", {}).get(k, 0.0) for o in per_run]) for k in names}
    return dict(sorted(medians.items(), key=lambda kv: -kv[1])[:keep])


def _summarise(rounds: list[dict], mode: str) -> dict:
    """Medians over the rounds of one mode: the walls, the compile totals and each kernel's compile time."""
    cold = [r["cold"] for r in rounds if r["mode"] == mode]
    warm = [r["warm"] for r in rounds if r["mode"] == mode]
    if not cold:
        return {}
    names = sorted({k for c in cold for k in c["owners"]})
    kernels_info = {k["kernel"]: k for k in cold[0]["kernels"]}
    rows = []
    for name in names:
        per_run = [c["owners"].get(name, {}) for c in cold]
        info = kernels_info.get(name)
        module, _, short = name.rpartition(".") if info is None else (info["module"], "", info["name"])
        rows.append({"kernel": short, "module": module, "full_name": name,
                     "kind": info["kind"] if info else "not geomon",
                     "signatures": info["signatures"] if info else [],
                     "n_signatures": len(info["signatures"]) if info else None,
                     "literal_args": info["literal_args"] if info else {},
                     "signatures_without_literals": info["signatures_without_literals"] if info else None,
                     "compile_s": _median([o.get("self_s", 0.0) for o in per_run]),
                     "compile_cpu_s": _median([o.get("self_cpu_s", 0.0) for o in per_run]),
                     "inclusive_s": _median([o.get("inclusive_s", 0.0) for o in per_run]),
                     "library_s": _median([o.get("library_s", 0.0) for o in per_run]),
                     "compiles": _median([o.get("compiles", 0) for o in per_run]),
                     "library": _library(per_run),
                     "compile_s_runs": [o.get("self_s", 0.0) for o in per_run]})
    rows.sort(key=lambda r: -r["compile_s"])
    uncompiled = sorted(k["kernel"] for k in cold[0]["kernels"] if not k["signatures"])
    recompiled_warm = sorted({k for w in warm for k, o in w["owners"].items() if o["compiles"]})
    return {"cold_wall_s": _median([c["wall_s"] for c in cold]), "warm_wall_s": _median([w["wall_s"] for w in warm]),
            "cold_wall_s_runs": [c["wall_s"] for c in cold], "warm_wall_s_runs": [w["wall_s"] for w in warm],
            "compile_s": _median([c["compile_s"] for c in cold]),
            "compile_cpu_s": _median([c["compile_cpu_s"] for c in cold]),
            "cold_cpu_s": _median([c["cpu_s"] for c in cold]), "warm_cpu_s": _median([w["cpu_s"] for w in warm]),
            "compiler_lock_cold_s": _median([c["compiler_lock_s"] for c in cold]),
            "compiler_lock_warm_s": _median([w["compiler_lock_s"] for w in warm]),
            "prime_s": _median([c["prime_s"] for c in cold]),
            "signatures": sum(r["n_signatures"] or 0 for r in rows),
            "alerts": sorted({c["alerts"] for c in cold + warm}),
            "kernels": rows, "never_compiled": uncompiled, "compiled_again_when_warm": recompiled_warm}


def run_compile_times(config: CompileConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None,
                      top: int = 0) -> dict:
    progress = report.progress_console(console)
    machine = harness.machine_info()
    data = Path(config.data) if config.data else REPO / "data" / "sample"
    modes = MODES if config.compare_serial else MODES[:1]
    digest = _source_digest()
    rounds = []
    for i in range(config.runs):
        for mode in modes:
            cache = Path(tempfile.mkdtemp(prefix="geomon-numba-cache-"))
            work = Path(tempfile.mkdtemp(prefix="geomon-compile-times-"))
            try:
                with report.step(progress, f"round {i + 1}/{config.runs}, {mode}: cold demo (empty numba cache)"):
                    cold = _run_child(mode, cache, work / "cold.duckdb", data)
                with report.step(progress, f"round {i + 1}/{config.runs}, {mode}: warm demo (same cache)"):
                    warm = _run_child(mode, cache, work / "warm.duckdb", data)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
                shutil.rmtree(work, ignore_errors=True)
            progress.print(f"[dim]  {mode}: cold {cold['wall_s']:.1f} s (compile {cold['compile_s']:.1f} s), "
                           f"warm {warm['wall_s']:.1f} s[/]")
            rounds.append({"round": i, "mode": mode, "cold": cold, "warm": warm})
    summary = {mode: _summarise(rounds, mode) for mode in modes}
    for r in rounds:   # the per-run kernel lists are in the summary; keep the raw rows small
        for key in ("cold", "warm"):
            r[key].pop("kernels", None)
    sources = {"digest_start": digest, "digest_end": _source_digest(), "uncommitted": _dirty_files()}
    sources["changed_during_run"] = sources["digest_start"] != sources["digest_end"]
    payload = {"suite": "compile_times", "config": asdict(config), "machine": machine, "sources": sources,
               "summary": summary, "rounds": rounds}
    if out is not None:
        harness.write_json(out, payload)
    if console is not None:
        print_report(payload, console, out=out, top=top)
    return payload


def _why(r: dict) -> str:
    """One line on where a kernel's extra signatures come from."""
    parts = [f"{name} = {' | '.join(values)}" for name, values in r["literal_args"].items()]
    why = f"literal {'; '.join(parts)}" if parts else ""
    if (r["signatures_without_literals"] or 0) > 1:
        why += f"{'; ' if why else ''}{r['signatures_without_literals']} dtype/layout variants"
    return why


def print_report(payload: dict, console: Console, *, out: Path | None = None, top: int = 0) -> None:
    summary = payload["summary"]
    par, ser = summary["as_is"], summary.get("serial")
    n = payload["config"]["runs"]
    console.print(report.machine_line(payload["machine"]))
    report.warn_if_loaded(payload["machine"], console)
    table = Table(title=f"numba compile of a cold `geomon demo`, by kernel (median of {n}; a kernel's own time, "
                        "the geomon kernels it calls charged to themselves; CPU: the compiling thread's)",
                  title_justify="left")
    columns = [("#", "right"), ("kernel", "left"), ("module", "left"), ("kind", "left"), ("signatures", "right"),
               ("compile s", "right"), ("CPU s", "right"), ("share", "right")]
    if ser:
        columns += [("serial CPU s", "right"), ("parfors CPU s", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    serial_rows = {r["full_name"]: r for r in ser["kernels"]} if ser else {}
    rows = par["kernels"][:top] if top else par["kernels"]
    total = sum(r["compile_s"] for r in par["kernels"])
    for i, r in enumerate(rows, 1):
        cells = [str(i), r["kernel"], r["module"].removeprefix(KERNEL_PACKAGE + "."), r["kind"],
                 report.fmt(r["n_signatures"], "d"), f"{r['compile_s']:.3f}", f"{r['compile_cpu_s']:.3f}",
                 f"{100 * r['compile_s'] / total:.1f} %" if total else "-"]
        if ser:
            s = serial_rows.get(r["full_name"])
            cells += ["-", "-"] if s is None else [f"{s['compile_cpu_s']:.3f}",
                                                   f"{r['compile_cpu_s'] - s['compile_cpu_s']:+.3f}"]
        table.add_row(*cells)
    if top and len(par["kernels"]) > top:
        rest = par["kernels"][top:]
        table.add_row("", f"({len(rest)} more)", "", "", str(sum(r["n_signatures"] or 0 for r in rest)),
                      f"{sum(r['compile_s'] for r in rest):.3f}", f"{sum(r['compile_cpu_s'] for r in rest):.3f}",
                      f"{100 * sum(r['compile_s'] for r in rest) / total:.1f} %" if total else "-",
                      *(["", ""] if ser else []))
    table.add_section()
    cells = ["", f"total ({len(par['kernels'])} kernels)", "", "", str(par["signatures"]), f"{total:.3f}",
             f"{sum(r['compile_cpu_s'] for r in par['kernels']):.3f}", ""]
    if ser:
        ser_cpu = sum(r["compile_cpu_s"] for r in ser["kernels"])
        cells += [f"{ser_cpu:.3f}", f"{sum(r['compile_cpu_s'] for r in par['kernels']) - ser_cpu:+.3f}"]
    table.add_row(*cells)
    console.print(table)
    if ser and not any(r["kind"] == "parallel" for r in par["kernels"]):
        console.print("No parallel kernel was compiled: the serial rounds ran the same code.")
    elif ser:
        par_k = [r for r in par["kernels"] if r["kind"] == "parallel"]
        p_cpu = sum(r["compile_cpu_s"] for r in par_k)
        s_cpu = sum(serial_rows[r["full_name"]]["compile_cpu_s"] for r in par_k if r["full_name"] in serial_rows)
        console.print(f"The {len(par_k)} parallel kernels compiled: {p_cpu:.2f} CPU s with parfors, {s_cpu:.2f} "
                      f"compiled serial (jit_parallel = jit in the child only).")

    walls = Table(title=f"`geomon demo`, cold and warm numba cache (median of {n})", title_justify="left")
    walls.add_column("figure")
    for mode in summary:
        walls.add_column(MODE_TITLES[mode] if ser else "seconds", justify="right")
    figures = [("cold demo: wall s (child process)", "cold_wall_s"), ("cold demo: CPU s", "cold_cpu_s"),
               ("warm demo: wall s (same cache)", "warm_wall_s"), ("warm demo: CPU s", "warm_cpu_s"),
               ("cold: compiling (numba:compile events), wall s", "compile_s"),
               ("cold: compiling, CPU s", "compile_cpu_s"),
               ("cold: in numba's compiler lock (compile, cache save), s", "compiler_lock_cold_s"),
               ("warm: in numba's compiler lock (cache loads), s", "compiler_lock_warm_s"),
               ("numba setup (first trivial compile), s", "prime_s")]
    for label, key in figures:
        walls.add_row(label, *[report.fmt(summary[m][key], ",.2f") for m in summary])
    walls.add_row("signatures compiled", *[str(summary[m]["signatures"]) for m in summary])
    walls.add_row("alerts (every run)", *[", ".join(map(str, summary[m]["alerts"])) for m in summary])
    console.print(walls)
    multi = [r for r in par["kernels"] if (r["n_signatures"] or 0) > 1]
    if multi:
        sigs = Table(title="Kernels compiled for more than one signature", title_justify="left")
        for name, justify in (("kernel", "left"), ("signatures", "right"), ("compile s", "right"),
                              ("why (argument types that differ)", "left")):
            sigs.add_column(name, justify=justify)
        for r in multi:
            sigs.add_row(f"{r['module'].removeprefix(KERNEL_PACKAGE + '.')}.{r['kernel']}", str(r["n_signatures"]),
                         f"{r['compile_s']:.3f}", _why(r))
        console.print(sigs)
    if payload.get("sources", {}).get("changed_during_run"):
        console.print("[bold yellow]warning:[/] the sources (kernels, geomon, cli) changed during the run: the rounds "
                      "may not have run the same code.")
    again = par["compiled_again_when_warm"]
    if again:
        console.print(f"[bold yellow]compiled again on the warm run (not cached):[/] {', '.join(again)}")
    if out is not None:
        console.print(f"JSON: {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_times", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="Rounds (cold + warm, a fresh cache each); default 3.")
    parser.add_argument("--compare-serial", action="store_true",
                        help="Also run every round with jit_parallel compiled as jit (parallel=False).")
    parser.add_argument("--data", default=None, help="Sample folder for `geomon demo --data` (default data/sample).")
    parser.add_argument("--top", type=int, default=0, help="Rows of the kernel table (default: every kernel).")
    parser.add_argument("--quick", action="store_true", help="One round.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output.")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"runs": args.runs, "data": args.data}.items() if v is not None}
    config = (CompileConfig.quick_run if args.quick else CompileConfig)(compare_serial=args.compare_serial,
                                                                         **overrides)
    console = Console() if sys.stdout.isatty() else Console(width=180)
    run_compile_times(config, out=args.out, console=console, top=args.top)


if __name__ == "__main__":   # pragma: no cover
    main()
