"""Point-in-polygon queries on the two-level grid built by :mod:`geomon.kernels.pip_build`.

A point reads one byte of the coarse grid; a refined coarse cell sends it to one
byte of a fine block; a fine boundary cell runs GEOS's ray-crossing test
(shapely's ``RayCrossingCounter``) against the few edges touching that cell plus
the cell's parity bit and toggles. See :mod:`geomon.kernels.pip_build` for why
that answer is exact.
"""

from __future__ import annotations

from geomon.kernels._jit import jit, jit_inline, jit_parallel, prange
from geomon.kernels.pip_build import (
    CELL_BOUNDARY_EVEN,
    CELL_INTERIOR,
    CELL_REFINED,
    LOC_BOUNDARY,
    LOC_EXTERIOR,
    LOC_INTERIOR,
)
from geomon.kernels.robust import orientation_index

__all__ = ["LOC_BOUNDARY", "LOC_EXTERIOR", "LOC_INTERIOR", "CELL_INTERIOR", "locate", "locate_in_cell",
           "locate_points", "fine_cell_block"]


@jit
def locate_in_cell(px, py, s, stream, a, b):
    """GEOS ray-crossing test of (px, py) against one boundary cell's block ``stream[a:b]``."""
    crossings = s - CELL_BOUNDARY_EVEN
    n = int(stream[a])
    for t in range(a + 1 + 4 * n, b):
        if stream[t] > py:
            break
        crossings += 1
    for k in range(a + 1, a + 1 + 4 * n, 4):
        x1 = stream[k]
        y1 = stream[k + 1]
        x2 = stream[k + 2]
        y2 = stream[k + 3]
        if x1 < px and x2 < px:
            continue
        if px == x2 and py == y2:
            return LOC_BOUNDARY
        if y1 == py and y2 == py:
            if min(x1, x2) <= px <= max(x1, x2):
                return LOC_BOUNDARY
            continue
        if (y1 > py and y2 <= py) or (y2 > py and y1 <= py):
            sign = orientation_index(x1, y1, x2, y2, px, py)
            if sign == 0:
                return LOC_BOUNDARY
            if y2 < y1:
                sign = -sign
            if sign > 0:
                crossings += 1
    return LOC_INTERIOR if crossings % 2 == 1 else LOC_EXTERIOR


@jit_inline
def fine_cell_block(fi, fj, dims, cbase, state, block_of, fine_start):
    """Stream range ``(a, b)`` of fine cell (fi, fj), empty unless it is a boundary cell.

    ``dims`` is ``(nx_fine, ny_fine, nx_coarse, shift)``; ``cbase`` the first
    coarse cell of this polygon in ``state``/``block_of``.
    """
    sh = dims[3]
    c = cbase + (fj >> sh) * dims[2] + (fi >> sh)
    if state[c] != CELL_REFINED:
        return 0, 0
    m = (1 << sh) - 1
    f = (block_of[c] << (2 * sh)) + ((fj & m) << sh) + (fi & m)
    return fine_start[f], fine_start[f + 1]


@jit_inline
def locate(px, py, grid, dims, cbase, state, block_of, fine_state, fine_start, stream):
    """Location of one point (``LOC_*``) in one polygon's two-level grid.

    Parameters
    ----------
    px, py : float
        The point; NaN is exterior.
    grid : float64 array (6,)
        ``(xmin, ymin, xmax, ymax, 1/cw, 1/ch)``: bounding box and inverse
        fine-cell size.
    dims : int64 array (4,)
        ``(nx_fine, ny_fine, nx_coarse, shift)``, ``2**shift`` fine cells per
        coarse cell side.
    cbase : int
        Index of the polygon's first coarse cell in ``state``/``block_of`` (0
        for a lone polygon; block ids and stream offsets are global).
    state, block_of, fine_state, fine_start, stream
        Arrays from :func:`geomon.kernels.pip_build.compress_grid`.

    Notes
    -----
    Inlined into callers: the common case is two multiplications and one byte.
    """
    if not (px >= grid[0] and px <= grid[2] and py >= grid[1] and py <= grid[3]):
        return LOC_EXTERIOR
    fi = min(int((px - grid[0]) * grid[4]), dims[0] - 1)
    fj = min(int((py - grid[1]) * grid[5]), dims[1] - 1)
    sh = dims[3]
    c = cbase + (fj >> sh) * dims[2] + (fi >> sh)
    s = state[c]
    if s == CELL_REFINED:
        m = (1 << sh) - 1
        f = (block_of[c] << (2 * sh)) + ((fj & m) << sh) + (fi & m)
        s = fine_state[f]
        if s >= CELL_BOUNDARY_EVEN:
            return locate_in_cell(px, py, s, stream, fine_start[f], fine_start[f + 1])
    # CELL_EXTERIOR (0) -> LOC_EXTERIOR (0), CELL_INTERIOR (1) -> LOC_INTERIOR (2)
    return 2 * s


@jit_parallel
def locate_points(x, y, grid, dims, state, block_of, fine_state, fine_start, stream, threshold, out):
    """``out[k] = locate(x[k], y[k]) >= threshold`` for every point, in parallel.

    ``threshold`` is ``LOC_INTERIOR`` for *contains* and ``LOC_BOUNDARY`` for
    *intersects*.
    """
    for k in prange(x.size):
        out[k] = locate(x[k], y[k], grid, dims, 0, state, block_of, fine_state, fine_start, stream) >= threshold
