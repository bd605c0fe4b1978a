"""Array copies written as loops inside kernels.

An array-to-array assignment in a kernel (``a[:n] = b[:n]``, ``a[i] = b[j]`` on rows) makes numba compile the
code that formats its shape-mismatch error, about a second and a half the first time in a process and more in
every kernel that has one: on a first run these few copies cost a fifth of all compiling. The loops below are
inlined where they are called and compile to the same copy.
"""

from __future__ import annotations

from geomon.kernels._jit import jit_inline

__all__ = ["copy_head", "copy_row"]


@jit_inline
def copy_head(dst, src, n):
    """``dst[:n] = src[:n]`` for 2-D arrays of the same width."""
    for r in range(n):
        for c in range(src.shape[1]):
            dst[r, c] = src[r, c]


@jit_inline
def copy_row(dst, i, src, j):
    """``dst[i] = src[j]`` for rows of 2-D arrays of the same width."""
    for c in range(src.shape[1]):
        dst[i, c] = src[j, c]
