"""Point-in-polygon queries on the grid built by :mod:`geomon.kernels.pip_build`.

A point reads one byte of the grid; a boundary cell runs GEOS's ray-crossing
test (shapely's ``RayCrossingCounter``) against the few edges touching that
cell plus the cell's parity bit and toggles. See :mod:`geomon.kernels.pip_build` for why
that answer is exact.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit, jit_inline, jit_parallel, prange
from geomon.kernels.pip_build import (
    CELL_BOUNDARY_EVEN,
    CELL_INTERIOR,
    LOC_BOUNDARY,
    LOC_EXTERIOR,
    LOC_INTERIOR,
)
from geomon.kernels.robust import orientation_index

__all__ = ["LOC_BOUNDARY", "LOC_EXTERIOR", "LOC_INTERIOR", "CELL_INTERIOR", "cell_state", "locate",
           "locate_in_cell", "locate_points", "pack_states"]


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
def cell_state(packed, c):
    """``CELL_*`` code of cell c from the 2-bit packed states (4 cells a byte)."""
    return (packed[c >> 2] >> ((c & 3) << 1)) & 3


@jit_inline
def locate(px, py, grid, nx, ny, cbase, state, cell_start, stream):
    """Location of one point (``LOC_*``) in one polygon's grid.

    Parameters
    ----------
    px, py : float
        The point; NaN is exterior.
    grid : float64 array (6,)
        ``(xmin, ymin, xmax, ymax, 1/cw, 1/ch)``: bounding box and inverse cell size.
    nx, ny : int
        Grid size.
    cbase : int
        Index of the polygon's first cell in ``state``/``cell_start`` (0 for a
        lone polygon, a multiple of 4 otherwise; stream offsets are global).
    state : uint8 array
        Cell states packed 4 to a byte by :func:`pack_states`.
    cell_start, stream
        Arrays from :func:`geomon.kernels.pip_build.build_grid`.

    Notes
    -----
    Inlined into callers: the common case is two multiplications and one byte.
    """
    if not (px >= grid[0] and px <= grid[2] and py >= grid[1] and py <= grid[3]):
        return LOC_EXTERIOR
    i = min(int((px - grid[0]) * grid[4]), nx - 1)
    j = min(int((py - grid[1]) * grid[5]), ny - 1)
    c = cbase + j * nx + i
    s = cell_state(state, c)
    if s >= CELL_BOUNDARY_EVEN:
        return locate_in_cell(px, py, s, stream, cell_start[c], cell_start[c + 1])
    # CELL_EXTERIOR (0) -> LOC_EXTERIOR (0), CELL_INTERIOR (1) -> LOC_INTERIOR (2)
    return 2 * s


def pack_states(state):
    """Pack ``CELL_*`` codes (0..3) four to a byte, padding to a multiple of 4 cells.

    A 2-bit state keeps a grid of 4 million cells in 1 MiB, inside the L2 cache
    that every query's first read hits.
    """
    n = (state.size + 3) // 4 * 4
    padded = np.zeros(n, np.uint8)
    padded[: state.size] = state
    quads = padded.reshape(-1, 4)
    return quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)


#: Points per parallel work unit of locate_points.
_CHUNK = 16384


@jit_parallel
def locate_points(x, y, grid, nx, ny, state, cell_start, stream, threshold, out):
    """``out[k] = locate(x[k], y[k]) >= threshold`` for every point, in parallel.

    ``threshold`` is ``LOC_INTERIOR`` for *contains* and ``LOC_BOUNDARY`` for
    *intersects*.

    Notes
    -----
    Each chunk of points is answered in three passes. The first computes cell
    indices (pure arithmetic, vectorised by LLVM); the second reads each
    point's 2-bit cell state and writes the answer with no data-dependent
    branch, so loads of independent points overlap and "inside or outside"
    is never mispredicted (fusing the two passes was 3x slower: the stores to
    ``out`` then stall the state loads); points in boundary cells (a few
    percent) are listed there and answered in the third pass by the edge test.
    """
    n = x.size
    xmin, ymin, xmax, ymax, icw, ich = grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]
    for q in prange((n + _CHUNK - 1) // _CHUNK):
        lo = q * _CHUNK
        hi = min(lo + _CHUNK, n)
        cell = np.empty(hi - lo, np.int64)
        for k in range(lo, hi):
            px = x[k]
            py = y[k]
            inside_box = (px >= xmin) & (px <= xmax) & (py >= ymin) & (py <= ymax)
            # Out-of-box (and NaN) points get cell -1.
            fx = (px - xmin) * icw if inside_box else 0.0
            fy = (py - ymin) * ich if inside_box else 0.0
            c = min(int(fy), ny - 1) * nx + min(int(fx), nx - 1)
            cell[k - lo] = c if inside_box else -1
        pending = np.empty(hi - lo, np.int64)
        n_pending = 0
        for m in range(hi - lo):
            c = cell[m]
            s = cell_state(state, max(c, 0)) * (c >= 0)
            out[lo + m] = 2 * s >= threshold
            pending[n_pending] = m
            n_pending += s >= CELL_BOUNDARY_EVEN
        # Boundary points: first fetch every block's bounds and first value in
        # loops of independent loads (the misses overlap), then test edges.
        start = np.empty(n_pending, np.int64)
        stop = np.empty(n_pending, np.int64)
        for i in range(n_pending):
            c = cell[pending[i]]
            start[i] = cell_start[c]
            stop[i] = cell_start[c + 1]
        touched = 0.0
        for i in range(n_pending):
            touched += stream[start[i]]
        for i in range(n_pending):
            m = pending[i]
            k = lo + m
            s = cell_state(state, cell[m])
            out[k] = locate_in_cell(x[k], y[k], s, stream, start[i], stop[i]) >= threshold + 0.0 * touched
