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

prange = numba.prange
