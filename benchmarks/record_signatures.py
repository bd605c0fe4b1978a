"""Rewrite ``kernels/first_run_signatures.json``: the numba signatures a replay compiles, in the order it compiles
them, which a first run's second process compiles backwards (:mod:`geomon.kernels._warm`).

Run it with an empty cache after changing a kernel's arguments (``tests/kernels/test_warm.py`` fails until then)::

    NUMBA_CACHE_DIR=$(mktemp -d) python -m benchmarks.record_signatures
"""

from __future__ import annotations

import importlib
import json
import tempfile
import threading
from pathlib import Path

from geomon.kernels._warm import MANIFEST


def record(out: Path = MANIFEST) -> int:
    """Run the demo in this process with numba's compile events recorded, and write the kernels' signatures in the
    order they were compiled; return how many."""
    from numba.core import event

    seen: list[tuple] = []
    local = threading.local()

    class Listener(event.Listener):
        def on_start(self, ev):
            local.depth = getattr(local, "depth", 0) + 1

        def on_end(self, ev):
            local.depth -= 1
            d = ev.data["dispatcher"]
            module = d.py_func.__module__
            if module.startswith("geomon.kernels.") and hasattr(importlib.import_module(module), d.py_func.__name__):
                # top: compiled for a call from Python, not while typing another kernel
                seen.append((module, d.py_func.__name__, tuple(repr(a) for a in ev.data["args"]), local.depth == 0))

    from geomon.cli.main import SAMPLE_DIR
    from geomon.run.replay import replay

    listener = Listener()
    event.register("numba:compile", listener)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv",
                   db=Path(tmp) / "demo.duckdb")
    finally:
        event.unregister("numba:compile", listener)
    kernels, keys = [], set()
    for module, name, args, top in seen:
        if (module, name, args) not in keys:
            keys.add((module, name, args))
            kernels.append({"module": module, "name": name, "args": list(args), "top": top})
    out.write_text(json.dumps({"about": "numba signatures a replay compiles, in order (geomon.kernels._warm)",
                               "kernels": kernels}, indent=1) + "\n")
    return len(kernels)



if __name__ == "__main__":
    print(f"{record()} signatures written to {MANIFEST}")
