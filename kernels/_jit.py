"""The one place that spells numba options for geomon's kernels.

Every kernel module imports its decorators from here (numbagg and datashader keep
the same discipline). No blanket ``fastmath``: gaps and missing fixes are NaN, and
fastmath lets the compiler assume they never occur.
"""

from __future__ import annotations

import numba

#: Serial kernel: compiled once, cached on disk, releases the GIL.
jit = numba.njit(cache=True, nogil=True)

#: No kernel is compiled ``parallel=True``: drivers over independent units (points, tracks, pairs) are serial
#: and :func:`geomon.kernels._pool.split` shares them out over threads (faster to compile, thread-safe).

#: Small per-point function inlined into its callers at numba IR level, so a
#: branchy fast path is compiled inside the caller's loop instead of called.
jit_inline = numba.njit(cache=True, nogil=True, inline="always")

