"""The one place that spells numba options for geomon's kernels.

Every kernel module imports its decorators from here (numbagg and datashader keep
the same discipline). No blanket ``fastmath``: gaps and missing fixes are NaN, and
fastmath lets the compiler assume they never occur.
"""

from __future__ import annotations

import numba

#: Serial kernel: compiled once, cached on disk, releases the GIL.
jit = numba.njit(cache=True, nogil=True)

#: Driver that may use ``numba.prange`` over independent units (points, tracks,
#: polygons). Only use it where each iteration writes its own output slot.
jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)

#: Small per-point function inlined into its callers at numba IR level, so a
#: branchy fast path is compiled inside the caller's loop instead of called.
jit_inline = numba.njit(cache=True, nogil=True, inline="always")

prange = numba.prange
