"""Rewrite ``kernels/first_run_signatures.json``: the numba signatures a replay compiles, in the order it compiles
them, which a first run's second process compiles backwards (:mod:`geomon.kernels._warm`).

Run it with an empty cache after changing a kernel's arguments (``tests/kernels/test_warm.py`` fails until then)::

    NUMBA_CACHE_DIR=$(mktemp -d) python -m benchmarks.record_signatures
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path

from benchmarks.compile_times import _CompileListener
from geomon.kernels._warm import MANIFEST


def record(out: Path = MANIFEST) -> int:
    """Run the demo in this process with numba's compile events recorded (:class:`benchmarks.compile_times.
    _CompileListener`), and write the kernels' signatures in the order they were compiled; return how many. An entry
    is ``top`` when it was compiled for a call from Python, not while typing another kernel."""
    from geomon.cli.main import SAMPLE_DIR
    from geomon.run.replay import replay

    listener = _CompileListener()
    listener.install()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv",
                   db=Path(tmp) / "demo.duckdb")
    finally:
        listener.remove()
    kernels, keys = [], set()
    for e in listener.events:
        module, name, args = e["module"], e["qualname"], tuple(e["arg_types"])
        if not module.startswith("geomon.kernels.") or not hasattr(importlib.import_module(module), name):
            continue
        if (module, name, args) not in keys:
            keys.add((module, name, args))
            kernels.append({"module": module, "name": name, "args": list(args), "top": e["parent"] is None})
    out.write_text(json.dumps({"about": "numba signatures a replay compiles, in order (geomon.kernels._warm)",
                               "kernels": kernels}, indent=1) + "\n")
    return len(kernels)


if __name__ == "__main__":
    print(f"{record()} signatures written to {MANIFEST}")
