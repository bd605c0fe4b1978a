"""The second progress bar of a first run: numba compiling kernels is shown, named and timed."""

from __future__ import annotations

import numba
import numpy as np
from rich.console import Console
from rich.progress import Progress

from geomon.cli.report import _CompileProgress


def test_a_compile_adds_a_bar_naming_the_kernel_and_times_it():
    @numba.njit   # not cached: it compiles here
    def doubled(a):
        return a * 2.0

    seen = []
    with Progress(console=Console(file=open("/dev/null", "w"))) as bar:
        with _CompileProgress(bar) as compiling:
            real_update = bar.update

            def update(task, **kw):
                seen.append(kw.get("description"))
                real_update(task, **kw)

            bar.update = update
            assert doubled(np.ones(3)).tolist() == [2.0, 2.0, 2.0]
            assert compiling.compiled >= 1 and compiling.seconds > 0.0
        task = bar.tasks[compiling.task]
    assert any(d and d.endswith("doubled") and "first run only" in d for d in seen)
    assert task.completed == task.total == compiling.compiled and "compiled (first run only)" in task.description


def test_nothing_is_shown_when_nothing_compiles():
    with Progress(console=Console(file=open("/dev/null", "w"))) as bar:
        with _CompileProgress(bar) as compiling:
            np.ones(3).sum()
    assert compiling.task is None and compiling.seconds == 0.0 and not bar.tasks
