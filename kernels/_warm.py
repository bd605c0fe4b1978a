"""A first run compiles the kernels on two cores: a second process compiles them from the end of the order a replay
meets them in, while the replay compiles from the start, and each finds in numba's on-disk cache what the other
has done.

numba compiles one kernel at a time in a process (a process-wide lock), so on a first run one core waits while
the other compiles for half a minute. The kernels' argument types do not depend on the data (the engine fixes
every dtype), so the signatures a replay compiles are listed once, in the order it compiles them, in
``first_run_signatures.json`` beside this module (``python -m benchmarks.record_signatures`` rewrites it from a
demo run). :func:`start` launches ``python -m geomon.kernels._warm``, which compiles that list backwards; a
kernel the replay reaches first is compiled twice, and nothing else changes. numba writes its cache files
atomically, so two processes may share it.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

MANIFEST = Path(__file__).with_name("first_run_signatures.json")


def _entries() -> list[dict]:
    try:
        return json.loads(MANIFEST.read_text())["kernels"]
    except (OSError, ValueError, KeyError):
        return []


def _dispatcher(entry: dict):
    return getattr(importlib.import_module(entry["module"]), entry["name"])


def _types(entry: dict) -> tuple:
    from numba.core import types

    return tuple(eval(spec, {"__builtins__": {}}, vars(types)) for spec in entry["args"])   # our own file


def cold() -> bool:
    """Whether the kernels a replay compiles last are not in numba's on-disk cache yet (a first run)."""
    entries = _entries()
    if not entries:
        return False
    try:
        index = _dispatcher(entries[-1])._cache._cache_file._index_path
    except (AttributeError, ImportError):
        return False
    return not os.path.exists(index)


def start() -> subprocess.Popen | None:
    """On a first run, a process compiling the listed kernels backwards; None when the cache is warm."""
    if not cold():
        return None
    return subprocess.Popen([sys.executable, "-m", "geomon.kernels._warm"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen | None) -> None:
    """End the compiling process (what it cached stays cached)."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def compile_backwards() -> int:
    """Compile the listed signatures, last first; return how many compiled (a stale entry is skipped)."""
    done = 0
    for entry in reversed(_entries()):
        try:
            dispatcher = _dispatcher(entry)
            sig = _types(entry)
            if sig not in dispatcher.overloads:
                dispatcher.compile(sig)
            done += 1
        except Exception:   # a kernel changed since the list was made: the replay compiles it itself
            continue
    return done


if __name__ == "__main__":   # pragma: no cover (a process of its own)
    compile_backwards()
