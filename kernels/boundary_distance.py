"""Signed distance from points to a polygon's boundary, capped, on the point-in-polygon grid.

Positive inside, negative outside, zero on the boundary; magnitudes above
``cap`` come back as ``cap``. The nearest edge is searched in rings of grid
cells around the point's cell, stopping as soon as a ring cannot hold anything
nearer than what was found (or than the cap), so the cost depends on the cap
and the local edge density, not on the vertex count.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit
from geomon.kernels.pip import LOC_BOUNDARY, LOC_INTERIOR, cell_block, cell_code, locate
from geomon.kernels.pip_build import CELL_BOUNDARY_EVEN

_TINY = 5e-324  # smallest positive double


@jit
def segment_nearest(px, py, x1, y1, x2, y2):
    """Squared distance from (px, py) to the segment and the nearest point on it."""
    dx = x2 - x1
    dy = y2 - y1
    len_sq = dx * dx + dy * dy
    t = 0.0
    if len_sq > 0.0:
        t = ((px - x1) * dx + (py - y1) * dy) / len_sq
        t = min(max(t, 0.0), 1.0)
    qx = x1 + t * dx
    qy = y1 + t * dy
    return (qx - px) * (qx - px) + (qy - py) * (qy - py), qx, qy


@jit
def nearest_boundary_point(px, py, grid, nx, ny, cbase, words, ranks, starts, stream, cap):
    """Squared distance to the nearest boundary point within ``cap`` and that point (NaN if none)."""
    cw = 1.0 / grid[4]
    ch = 1.0 / grid[5]
    best = cap * cap
    best_x = math.nan
    best_y = math.nan
    ci = min(max(int(math.floor((px - grid[0]) * grid[4])), 0), nx - 1)
    cj = min(max(int(math.floor((py - grid[1]) * grid[5])), 0), ny - 1)
    step = min(cw, ch)
    for r in range(max(nx, ny)):
        if r >= 1:
            lower = (r - 1) * step
            if lower * lower >= best:
                break
        for j in range(max(cj - r, 0), min(cj + r, ny - 1) + 1):
            on_edge_row = j == cj - r or j == cj + r
            i = ci - r
            while i <= ci + r:
                if 0 <= i < nx:
                    c = cbase + j * nx + i
                    if cell_code(words, c) >= CELL_BOUNDARY_EVEN:
                        a, _ = cell_block(words, ranks, starts, c)
                        for k in range(a + 1, a + 1 + 4 * int(stream[a]), 4):
                            d, qx, qy = segment_nearest(px, py, stream[k], stream[k + 1], stream[k + 2], stream[k + 3])
                            if d < best:
                                best = d
                                best_x = qx
                                best_y = qy
                # Inner rows of a ring only visit its two side columns.
                i += 1 if (on_edge_row or r == 0) else 2 * r
    return best, best_x, best_y


@jit
def signed_distance(x, y, grid, nx, ny, words, ranks, starts, stream, cap, out):
    """Signed, capped distance of each point to the boundary of one polygon.

    Parameters
    ----------
    x, y : float64 arrays
        Points in the polygon's planar CRS (metres for a projected frame).
    grid, nx, ny, words, ranks, starts, stream
        The polygon's grid (see :func:`geomon.kernels.pip.locate`).
    cap : float
        Largest magnitude returned, > 0.
    out : float64 array
        Result: > 0 inside, < 0 outside, 0 on the boundary, NaN for NaN input.
    """
    for k in range(x.size):
        out[k] = _signed(x[k], y[k], grid, nx, ny, np.int64(0), words, ranks, starts, stream, cap)


@jit
def _signed(px, py, grid, nx, ny, cbase, words, ranks, starts, stream, cap):
    if math.isnan(px) or math.isnan(py):
        return math.nan
    loc = locate(px, py, grid, nx, ny, cbase, words, ranks, starts, stream)
    if loc == LOC_BOUNDARY:
        return 0.0
    d = math.sqrt(nearest_boundary_point(px, py, grid, nx, ny, cbase, words, ranks, starts, stream, cap)[0])
    # A point off the boundary by less than the rounding of the distance
    # still gets its side's sign: the smallest positive double.
    d = min(max(d, _TINY), cap)
    return d if loc == LOC_INTERIOR else -d


@jit
def pair_signed_distance(x, y, point_index, zone_index, zone_grid, zone_dims, zone_cbase,
                         words, ranks, starts, stream, cap, out):
    """Signed, capped distance for (point, zone) pairs of a :class:`geomon.ZoneIndex`.

    ``out[m]`` is the signed distance of point ``point_index[m]`` to the
    boundary of zone ``zone_index[m]``, as :func:`signed_distance` defines it.
    """
    for m in range(point_index.size):
        k = point_index[m]
        z = zone_index[m]
        out[m] = _signed(x[k], y[k], zone_grid[z], zone_dims[z, 0], zone_dims[z, 1], zone_cbase[z],
                         words, ranks, starts, stream, cap)
