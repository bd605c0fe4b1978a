"""Point-in-polygon queries on the grid built by :mod:`geomon.kernels.pip_build`.

A point reads one byte of the grid; a boundary cell runs GEOS's ray-crossing
test (shapely's ``RayCrossingCounter``) against the few edges touching that
cell plus the cell's parity bit and toggles. See :mod:`geomon.kernels.pip_build` for why
that answer is exact.
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit, jit_inline
from geomon.kernels.pip_build import (
    CELL_BOUNDARY_EVEN,
    CELL_INTERIOR,
    LOC_BOUNDARY,
    LOC_EXTERIOR,
    LOC_INTERIOR,
)
from geomon.kernels.robust import orientation_index

__all__ = ["LOC_BOUNDARY", "LOC_EXTERIOR", "LOC_INTERIOR", "CELL_INTERIOR", "cell_block", "cell_code", "locate",
           "locate_in_cell", "locate_points"]


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


#: The high bit of every 2-bit code in a word: set exactly for boundary cells.
_HIGH_BITS = np.uint64(0xAAAAAAAAAAAAAAAA)


@jit_inline
def cell_code(words, c):
    """``CELL_*`` code of cell c: 2 bits, 32 cells to a uint64 word."""
    return np.int64((words[c >> 5] >> np.uint64((c & 31) << 1)) & np.uint64(3))


@jit_inline
def _popcount64(v):
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((v * np.uint64(0x0101010101010101)) >> np.uint64(56))


@jit_inline
def cell_block(words, ranks, starts, c):
    """Stream range ``(a, b)`` of boundary cell c.

    Boundary cells are numbered in cell order; a cell's number is the count of
    boundary cells before its word (``ranks``) plus those before it in the
    word, so the per-cell offsets of a 4-million-cell grid shrink from 16 MiB
    to a few hundred KiB that stay in cache.
    """
    w = c >> 5
    below = words[w] & _HIGH_BITS & ((np.uint64(1) << np.uint64((c & 31) << 1)) - np.uint64(1))
    r = ranks[w] + _popcount64(below)
    return starts[r], starts[r + 1]


@jit_inline
def locate(px, py, grid, nx, ny, cbase, words, ranks, starts, stream):
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
        Index of the polygon's first cell (0 for a lone polygon, a multiple of
        32 in a zone index).
    words, ranks, starts, stream
        The packed grid from :func:`geomon.kernels.pip_build.pack_cells`.

    Notes
    -----
    Inlined into callers: the common case is two multiplications and one read.
    """
    if not (px >= grid[0] and px <= grid[2] and py >= grid[1] and py <= grid[3]):
        return LOC_EXTERIOR
    i = min(int((px - grid[0]) * grid[4]), nx - 1)
    j = min(int((py - grid[1]) * grid[5]), ny - 1)
    c = cbase + j * nx + i
    s = cell_code(words, c)
    if s >= CELL_BOUNDARY_EVEN:
        a, b = cell_block(words, ranks, starts, c)
        return locate_in_cell(px, py, s, stream, a, b)
    # CELL_EXTERIOR (0) -> LOC_EXTERIOR (0), CELL_INTERIOR (1) -> LOC_INTERIOR (2)
    return 2 * s


@jit_inline
def _single_edge(px, py, s, x1, y1, x2, y2):
    """Location in a boundary cell crossed by one edge and no toggle, without branching; -1 to defer.

    Same decision as :func:`locate_in_cell` for such cells (in most boundary
    cells of a fine grid one edge runs straight through): the point cannot be
    a vertex (a vertex in the cell brings both its edges), so the ray crosses
    the edge exactly when the point's height is in the edge's half-open range
    and the orientation has the edge direction's sign. Whenever the float
    determinant is not certain (GEOS's filter), the edge is horizontal at the
    point's height, or the point is on the edge, returns -1 so the exact
    general test decides.
    """
    detleft = (x1 - px) * (y2 - py)
    detright = (y1 - py) * (x2 - px)
    det = detleft - detright
    certain = abs(det) > 1e-15 * (abs(detleft) + abs(detright))
    level = (y1 == py) & (y2 == py)
    in_range = (y1 > py) != (y2 > py)
    crossing = in_range & ((det > 0.0) == (y2 > y1))
    parity = (s - CELL_BOUNDARY_EVEN + crossing) & 1
    return 2 * parity if certain & ~level else -1


#: Points per parallel work unit of locate_points.
_CHUNK = 8192


@jit
def locate_points(x, y, grid, nx, ny, words, ranks, starts, stream, coarse_words, ncx, shift, threshold, out):
    """``out[k] = locate(x[k], y[k]) >= threshold`` for every point, in parallel.

    ``threshold`` is ``LOC_INTERIOR`` for *contains* and ``LOC_BOUNDARY`` for
    *intersects*. ``coarse_words`` packs the codes of a coarse grid whose cell
    (cx, cy) covers fine cells ``(cx << shift ..., cy << shift ...)``, ``ncx``
    coarse cells to a row: interior or exterior where all its fine cells are,
    else ``CELL_BOUNDARY_EVEN`` ("look at the fine grid").

    Notes
    -----
    Each chunk of points is answered in passes with no data-dependent branch
    until the last: (1) fine and coarse cell indices, pure arithmetic that
    LLVM vectorises; (2) the coarse code, a few KiB that stay in L1: most
    points end here; (3) for the rest, the fine code (up to 1 MiB, in L2);
    (4) for points in fine boundary cells (a few percent), their blocks'
    bounds and first values are fetched in loops of independent loads, so
    the cache misses overlap, and then the edge tests run. Without the data-
    dependent branches, loads of independent points overlap and "inside or
    outside" is never mispredicted; fusing passes (1) and (2) was 3x slower,
    as the stores to ``out`` then stall the loads.
    """
    n = x.size
    xmin, ymin, xmax, ymax, icw, ich = grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]
    for q in range((n + _CHUNK - 1) // _CHUNK):
        lo = q * _CHUNK
        hi = min(lo + _CHUNK, n)
        cell = np.empty(hi - lo, np.int32)
        coarse = np.empty(hi - lo, np.int32)
        for k in range(lo, hi):
            px = x[k]
            py = y[k]
            inside_box = (px >= xmin) & (px <= xmax) & (py >= ymin) & (py <= ymax)
            # Out-of-box (and NaN) points get cell -1.
            fx = (px - xmin) * icw if inside_box else 0.0
            fy = (py - ymin) * ich if inside_box else 0.0
            i = min(int(fx), nx - 1)
            j = min(int(fy), ny - 1)
            cell[k - lo] = j * nx + i
            coarse[k - lo] = (j >> shift) * ncx + (i >> shift) if inside_box else -1
        mixed = np.empty(hi - lo, np.int32)
        n_mixed = 0
        for m in range(hi - lo):
            c = coarse[m]
            s = cell_code(coarse_words, max(c, 0)) * (c >= 0)
            out[lo + m] = 2 * s >= threshold
            mixed[n_mixed] = m
            n_mixed += s >= CELL_BOUNDARY_EVEN
        pending = np.empty(n_mixed, np.int32)
        n_pending = 0
        for i in range(n_mixed):
            m = mixed[i]
            s = cell_code(words, cell[m])
            out[lo + m] = 2 * s >= threshold
            pending[n_pending] = m
            n_pending += s >= CELL_BOUNDARY_EVEN
        start = np.empty(n_pending, np.int64)
        stop = np.empty(n_pending, np.int64)
        for i in range(n_pending):
            start[i], stop[i] = cell_block(words, ranks, starts, cell[pending[i]])
        touched = 0.0
        for i in range(n_pending):
            touched += stream[start[i]]
        for i in range(n_pending):
            m = pending[i]
            k = lo + m
            s = cell_code(words, cell[m])
            a = start[i]
            loc = -1
            if stop[i] - a == 5:
                loc = _single_edge(x[k], y[k], s, stream[a + 1], stream[a + 2], stream[a + 3], stream[a + 4])
            if loc < 0:
                loc = locate_in_cell(x[k], y[k], s, stream, a, stop[i])
            out[k] = loc >= threshold + 0.0 * touched
