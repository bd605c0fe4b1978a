"""Many zones at once: a coarse grid of candidate zones over per-zone point-in-polygon grids.

Every zone keeps its own classified grid (see :mod:`geomon.kernels.pip`); all of
them live in shared flat arrays, zone z's cells starting at ``zone_base[z]``. A
coarse uniform grid over the union of the zones' bounding boxes lists, per
cell, the zones whose box overlaps it. A point reads its coarse cell and runs
the one-byte-mostly lookup of each listed zone, so the cost per point depends on
how many zones overlap there, not on how many zones exist.

Pairs are a ragged output and are produced in two passes (count, cumulative
sum, fill), each parallel over points.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit, jit_inline
from geomon.kernels.pip import locate


@jit
def _cell_range(lo, hi, origin, inv, n):
    a = int(math.floor((lo - origin) * inv))
    b = int(math.floor((hi - origin) * inv))
    return max(a, 0), min(b, n - 1)


@jit
def _coarse_pass(zone_grid, gxmin, gymin, gicw, gich, gnx, gny, margin, slot, zones, write):
    """Count (``slot[c + 1] += 1``) or fill (``zones[slot[c]] = z``) the coarse cells each zone box covers."""
    for z in range(zone_grid.shape[0]):
        if zone_grid[z, 0] > zone_grid[z, 2]:
            continue
        i0, i1 = _cell_range(zone_grid[z, 0] - margin, zone_grid[z, 2] + margin, gxmin, gicw, gnx)
        j0, j1 = _cell_range(zone_grid[z, 1] - margin, zone_grid[z, 3] + margin, gymin, gich, gny)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                c = j * gnx + i
                if write:
                    zones[slot[c]] = z
                    slot[c] += 1
                else:
                    slot[c + 1] += 1


@jit
def build_coarse_grid(zone_grid, gxmin, gymin, gicw, gich, gnx, gny, margin):
    """CSR lists of zone ids per coarse cell, by bounding-box overlap.

    Parameters
    ----------
    zone_grid : float64 array (n_zones, 6)
        Per zone ``(xmin, ymin, xmax, ymax, 1/cw, 1/ch)``; zones with an empty
        box (``xmin > xmax``) are never listed.
    gxmin, gymin, gicw, gich : float
        Origin and inverse cell size of the coarse grid.
    gnx, gny : int
        Coarse grid size.
    margin : float
        Boxes are grown by this much so rounding never drops a zone.

    Returns
    -------
    offsets : int64 array (gnx * gny + 1,)
    zones : int64 array
        Zone ids of coarse cell c are ``zones[offsets[c]:offsets[c + 1]]``,
        ascending.
    """
    counts = np.zeros(gnx * gny + 1, np.int64)
    _coarse_pass(zone_grid, gxmin, gymin, gicw, gich, gnx, gny, margin, counts, counts, np.bool_(False))
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    zones = np.empty(offsets[-1], np.int64)
    _coarse_pass(zone_grid, gxmin, gymin, gicw, gich, gnx, gny, margin, fill, zones, np.bool_(True))
    return offsets, zones


@jit
def _coarse_cell(px, py, coarse, gnx, gny):
    """Coarse cell of a point, or -1 outside the coarse grid (NaN included)."""
    if not (px >= coarse[0] and px <= coarse[2] and py >= coarse[1] and py <= coarse[3]):
        return -1
    i = min(int((px - coarse[0]) * coarse[4]), gnx - 1)
    j = min(int((py - coarse[1]) * coarse[5]), gny - 1)
    return j * gnx + i


@jit_inline
def _zone_hit(px, py, z, zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream, threshold):
    loc = locate(px, py, zone_grid[z], zone_dims[z, 0], zone_dims[z, 1], zone_cbase[z], words, ranks, starts, stream)
    return loc >= threshold


@jit
def count_hits(x, y, coarse, gnx, gny, g_offsets, g_zones,
               zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
               threshold, counts):
    """``counts[k]`` = number of zones that point k hits (``LOC_*`` >= threshold).

    ``coarse`` is ``(xmin, ymin, xmax, ymax, 1/cw, 1/ch)`` of the coarse grid of
    zones; ``zone_grid``, ``zone_dims`` and ``zone_cbase`` hold each zone's
    ``grid``, ``dims`` and first coarse cell for :func:`geomon.kernels.pip.locate`.
    """
    for k in range(x.size):
        c = _coarse_cell(x[k], y[k], coarse, gnx, gny)
        n = 0
        if c >= 0:
            for m in range(g_offsets[c], g_offsets[c + 1]):
                if _zone_hit(x[k], y[k], g_zones[m], zone_grid, zone_dims, zone_cbase,
                             words, ranks, starts, stream, threshold):
                    n += 1
        counts[k] = n


@jit
def fill_hits(x, y, coarse, gnx, gny, g_offsets, g_zones,
              zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
              threshold, pair_offsets, point_index, zone_index):
    """Write the (point, zone) pairs counted by :func:`count_hits`, point-major, zones ascending."""
    for k in range(x.size):
        o = pair_offsets[k]
        if pair_offsets[k + 1] == o:
            continue
        c = _coarse_cell(x[k], y[k], coarse, gnx, gny)
        for m in range(g_offsets[c], g_offsets[c + 1]):
            z = g_zones[m]
            if _zone_hit(x[k], y[k], z, zone_grid, zone_dims, zone_cbase,
                         words, ranks, starts, stream, threshold):
                point_index[o] = k
                zone_index[o] = z
                o += 1
