"""Building the point-in-polygon grid: cells that know their answer.

A polygon (or multipolygon, holes included) is a set of directed edges. Its
bounding box is cut into a uniform grid. Each cell is classified once:

* a cell that no edge touches is wholly interior or wholly exterior: a point
  falling there is answered by one byte;
* a boundary cell keeps the list of edges that touch it, one parity bit and a
  few "toggle" heights. A point there runs the ray-crossing test of GEOS
  (shapely) against that short list only; the parity bit and the toggles below
  the point stand for every other edge of the polygon.

So a query touches one byte for most points and a handful of edges otherwise,
whatever the vertex count, and the boundary decisions (a point on an edge or a
vertex is on the boundary, the half-open vertex rule, exact orientation) are
those of GEOS's ``RayCrossingCounter``, which is what shapely's ``contains_xy``
and ``intersects_xy`` use.

Why this is exact. Cast the ray from query point p to +x. An edge that does
not touch the (slightly inflated) cell meets the cell's row band either wholly
left of the cell (never crossed), wholly right of it, or not at all. Those
right of it cross the ray exactly when ``y_lo <= p.y < y_hi`` (GEOS's half-open
rule), so as p.y sweeps the band their parity changes only at their end points
inside the band. At a vertex where both edges are off the list the two changes
cancel; what remains are the ends of the chains of off-list edges that hang
off the cell's own edges to the right, found by walking those chains once at
build time: the toggles. The parity at one height (the band's centre line) is
counted once with a sorted sweep of the row's crossings. The cell is inflated
by a margin larger than the rounding error of the cell lookup, and edges are
rasterised with twice that margin, so float rounding can only add edges to a
list, never lose one.

Notes
-----
Grid cell classification for point-in-polygon follows Zalik and Kolingerova,
"A cell-based point-in-polygon algorithm suitable for large sets of points",
Computers & Geosciences 27 (2001); the crossing rule is GEOS's
``algorithm::RayCrossingCounter`` (after O'Rourke, Computational Geometry in
C, 2nd ed., section 7.4).
"""

from __future__ import annotations

import numpy as np

from geomon.kernels._jit import jit

#: Cell states.
CELL_EXTERIOR = 0
CELL_INTERIOR = 1
CELL_BOUNDARY_EVEN = 2  # boundary cell whose off-list parity is even
CELL_BOUNDARY_ODD = 3

#: Point locations, ordered so that ``loc >= LOC_BOUNDARY`` means "intersects".
LOC_EXTERIOR = 0
LOC_BOUNDARY = 1
LOC_INTERIOR = 2


@jit
def _row_span(x1, y1, x2, y2, j, xmin, ymin, cw, ch, nx, mx, my):
    """Cells [ilo, ihi] of row j that the segment may touch, inflated by (mx, my)."""
    lo = ymin + j * ch - my
    hi = ymin + (j + 1) * ch + my
    if y1 == y2:
        xa = x1
        xb = x2
    else:
        dy = y2 - y1
        ta = min(max((lo - y1) / dy, 0.0), 1.0)
        tb = min(max((hi - y1) / dy, 0.0), 1.0)
        xa = x1 + ta * (x2 - x1)
        xb = x1 + tb * (x2 - x1)
    xlo = min(xa, xb) - mx
    xhi = max(xa, xb) + mx
    ilo = int(np.floor((xlo - xmin) / cw))
    ihi = int(np.floor((xhi - xmin) / cw))
    return max(ilo, 0), min(ihi, nx - 1)


@jit
def _row_range(ya, yb, ymin, ch, ny, my):
    jlo = int(np.floor((min(ya, yb) - my - ymin) / ch))
    jhi = int(np.floor((max(ya, yb) + my - ymin) / ch))
    return max(jlo, 0), min(jhi, ny - 1)


@jit
def _rasterise_pass(edges, xmin, ymin, cw, ch, nx, ny, mx, my, slot, cell_edges, write):
    """One pass over the cells each edge may touch: count into ``slot[c + 1]``, or fill.

    Counting (``write=False``) adds one to ``slot[c + 1]`` per (edge, cell);
    filling writes edge ids at ``cell_edges[slot[c]]`` and advances ``slot[c]``.
    Both passes walk the same cells, so the counts and the fill agree.
    """
    for e in range(edges.shape[0]):
        x1, y1, x2, y2 = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
        jlo, jhi = _row_range(y1, y2, ymin, ch, ny, my)
        for j in range(jlo, jhi + 1):
            ilo, ihi = _row_span(x1, y1, x2, y2, j, xmin, ymin, cw, ch, nx, mx, my)
            for i in range(ilo, ihi + 1):
                c = j * nx + i
                if write:
                    cell_edges[slot[c]] = e
                    slot[c] += 1
                else:
                    slot[c + 1] += 1


@jit
def _rasterise(edges, xmin, ymin, cw, ch, nx, ny, mx, my):
    """Raw edge lists per cell (CSR), counted then filled."""
    counts = np.zeros(nx * ny + 1, np.int64)
    _rasterise_pass(edges, xmin, ymin, cw, ch, nx, ny, mx, my, counts, counts, np.bool_(False))
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    cell_edges = np.empty(offsets[-1], np.int64)
    _rasterise_pass(edges, xmin, ymin, cw, ch, nx, ny, mx, my, fill, cell_edges, np.bool_(True))
    return offsets, cell_edges


@jit
def _enqueue(f, mark, stamp, queue, nq):
    """Append edge f to the walk's queue unless this walk (``stamp``) has seen it; returns the new length."""
    if mark[f] != stamp:
        mark[f] = stamp
        queue[nq] = f
        nq += 1
    return nq


@jit
def _cell_toggles(raw, r0, r1, edges, prev_edge, next_edge, band_lo, band_hi, xr, mark, stamp, queue, toggles):
    """Parity toggles of the edges hanging off a boundary cell's list to its right.

    Walks from the cell's edges through vertices right of the cell inside its
    row band; every edge reached (none touches the cell) crosses the ray of a
    point in the cell exactly when ``y_lo <= p.y < y_hi``, so it contributes a
    toggle at each end that lies in the band. Equal toggles cancel. Writes the
    surviving toggles, sorted, to ``toggles`` and returns how many there are.
    """
    for k in range(r0, r1):
        mark[raw[k]] = stamp
    nq = np.int64(0)
    for k in range(r0, r1):
        e = raw[k]
        if edges[e, 0] > xr and band_lo <= edges[e, 1] <= band_hi:
            nq = _enqueue(prev_edge[e], mark, stamp, queue, nq)
        if edges[e, 2] > xr and band_lo <= edges[e, 3] <= band_hi:
            nq = _enqueue(next_edge[e], mark, stamp, queue, nq)
    nt = 0
    q = 0
    while q < nq:
        f = queue[q]
        q += 1
        y1 = edges[f, 1]
        y2 = edges[f, 3]
        in1 = band_lo <= y1 <= band_hi
        in2 = band_lo <= y2 <= band_hi
        if y1 != y2:
            if in1:
                toggles[nt] = y1
                nt += 1
            if in2:
                toggles[nt] = y2
                nt += 1
        if in1 and edges[f, 0] > xr:
            nq = _enqueue(prev_edge[f], mark, stamp, queue, nq)
        if in2 and edges[f, 2] > xr:
            nq = _enqueue(next_edge[f], mark, stamp, queue, nq)
    if nt == 0:
        return 0
    toggles[:nt].sort()
    m = 0
    k = 0
    while k < nt:
        if k + 1 < nt and toggles[k + 1] == toggles[k]:
            k += 2  # two toggles at the same height cancel
        else:
            toggles[m] = toggles[k]
            m += 1
            k += 1
    return m


@jit
def _crosses_right(edges, e, y_ref, x_ref):
    """Does edge e cross the line y = y_ref (GEOS half-open rule) right of x_ref?"""
    y1 = edges[e, 1]
    y2 = edges[e, 3]
    if not (min(y1, y2) <= y_ref < max(y1, y2)):
        return False
    x1 = edges[e, 0]
    x = x1 + (y_ref - y1) / (y2 - y1) * (edges[e, 2] - x1)
    return x > x_ref


@jit
def build_grid(edges, prev_edge, next_edge, xmin, ymin, cw, ch, nx, ny, mx, my):
    """Classify the cells of one polygon's grid.

    Parameters
    ----------
    edges : float64 array (n_edges, 4)
        Directed edges ``x1, y1, x2, y2`` of every ring of the polygon.
    prev_edge, next_edge : int64 arrays (n_edges,)
        The edge before and after each edge in its (closed) ring.
    xmin, ymin : float
        Lower-left corner of the grid (the polygon's bounding box).
    cw, ch : float
        Cell width and height, > 0.
    nx, ny : int
        Grid size.
    mx, my : float
        Inflation margins of a cell, larger than the rounding error of the cell
        lookup ``int((x - xmin) / cw)``.

    Returns
    -------
    state : uint8 array (nx * ny,)
        ``CELL_*`` code of each cell, row-major (``j * nx + i``).
    cell_start : int64 array (nx * ny + 1,)
        Boundary cell c owns ``stream[cell_start[c]:cell_start[c + 1]]``; other
        cells own an empty range.
    stream : float64 array
        Per boundary cell: the number n of edges touching it, then those edges'
        ``x1, y1, x2, y2`` (4 n values, copied so a query reads one contiguous
        block), then its toggles, sorted: a point at height y flips parity once
        for each toggle <= y.
    """
    ne = edges.shape[0]
    ncell = nx * ny
    offsets, cell_edges = _rasterise(edges, xmin, ymin, cw, ch, nx, ny, 2.0 * mx, 2.0 * my)
    mark = np.full(ne, -1, np.int64)
    queue = np.empty(max(ne, 1), np.int64)
    buf = np.empty(max(2 * ne, 1))

    # Pass 1: size of each boundary cell's block.
    sizes = np.zeros(ncell + 1, np.int64)
    for j in range(ny):
        band_lo = ymin + j * ch - my
        band_hi = ymin + (j + 1) * ch + my
        for i in range(nx):
            c = j * nx + i
            n = offsets[c + 1] - offsets[c]
            if n > 0:
                xr = xmin + (i + 1) * cw + mx
                nt = _cell_toggles(cell_edges, offsets[c], offsets[c + 1], edges, prev_edge,
                                   next_edge, band_lo, band_hi, xr, mark, c, queue, buf)
                sizes[c + 1] = 1 + 4 * n + nt
    cell_start = np.cumsum(sizes)
    stream = np.empty(cell_start[-1])
    state = np.zeros(ncell, np.uint8)

    # Pass 2: fill the blocks and classify, one row band at a time.
    mark[:] = -1
    row_mark = np.full(ne, -1, np.int64)
    xs = np.empty(max(ne, 1))
    for j in range(ny):
        band_lo = ymin + j * ch - my
        band_hi = ymin + (j + 1) * ch + my
        y_ref = ymin + (j + 0.5) * ch
        # Crossings of the band's centre line by every edge of the row, sorted.
        nxs = 0
        for k in range(offsets[j * nx], offsets[(j + 1) * nx]):
            e = cell_edges[k]
            if row_mark[e] != j:
                row_mark[e] = j
                y1 = edges[e, 1]
                y2 = edges[e, 3]
                if min(y1, y2) <= y_ref < max(y1, y2):
                    x1 = edges[e, 0]
                    xs[nxs] = x1 + (y_ref - y1) / (y2 - y1) * (edges[e, 2] - x1)
                    nxs += 1
        row_xs = np.sort(xs[:nxs])
        p = 0  # row_xs[:p] <= xr, so nxs - p crossings lie right of the cell
        for i in range(nx):
            c = j * nx + i
            xr = xmin + (i + 1) * cw + mx
            while p < nxs and row_xs[p] <= xr:
                p += 1
            right = nxs - p
            n = offsets[c + 1] - offsets[c]
            if n == 0:
                state[c] = CELL_INTERIOR if right % 2 == 1 else CELL_EXTERIOR
                continue
            o = cell_start[c]
            stream[o] = n
            for k in range(n):
                e = cell_edges[offsets[c] + k]
                for q in range(4):
                    stream[o + 1 + 4 * k + q] = edges[e, q]
                if _crosses_right(edges, e, y_ref, xr):
                    right -= 1
            nt = cell_start[c + 1] - o - 1 - 4 * n
            if nt > 0:
                _cell_toggles(cell_edges, offsets[c], offsets[c + 1], edges, prev_edge, next_edge,
                              band_lo, band_hi, xr, mark, c, queue, buf)
                for k in range(nt):
                    stream[o + 1 + 4 * n + k] = buf[k]
                    if buf[k] <= y_ref:
                        right += 1
            state[c] = CELL_BOUNDARY_ODD if right % 2 == 1 else CELL_BOUNDARY_EVEN
    return state, cell_start, stream


@jit
def pack_cells(codes, cell_start):
    """Pack a grid's cell codes 32 to a uint64 word, with rank-indexed boundary blocks.

    Parameters
    ----------
    codes : uint8 array (n,)
        ``CELL_*`` code per cell, n a multiple of 32 (pad with ``CELL_EXTERIOR``).
    cell_start : int64 array (n + 1,)
        Stream range of each cell (empty for non-boundary cells).

    Returns
    -------
    words : uint64 array (n / 32,)
        Cell c's code is bits ``2 (c % 32)`` and up of ``words[c // 32]``.
    ranks : int64 array (n / 32 + 1,)
        Boundary cells before each word.
    starts : int64 array (n_boundary + 1,)
        Stream start of each boundary cell, in cell order, then the stream's end.
    """
    n = codes.size
    nw = n // 32
    words = np.zeros(nw, np.uint64)
    ranks = np.zeros(nw + 1, np.int64)
    n_boundary = 0
    for c in range(n):
        if codes[c] >= CELL_BOUNDARY_EVEN:
            n_boundary += 1
    starts = np.empty(n_boundary + 1, np.int64)
    r = 0
    for w in range(nw):
        ranks[w] = r
        acc = np.uint64(0)
        for i in range(32):
            c = w * 32 + i
            acc |= np.uint64(codes[c]) << np.uint64(2 * i)
            if codes[c] >= CELL_BOUNDARY_EVEN:
                starts[r] = cell_start[c]
                r += 1
        words[w] = acc
    ranks[nw] = r
    starts[n_boundary] = cell_start[n]
    return words, ranks, starts
