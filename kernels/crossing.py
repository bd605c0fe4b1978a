"""Zones that a straight segment between two consecutive fixes passes through.

A subject driving at 15 m/s and reporting every 30 s covers 450 m between
fixes, enough to cross a 100 m forbidden zone with no fix inside it; trackers
that only test fixes never see it. For each segment, the coarse grid of the
zone index proposes the zones whose boxes overlap the cells the segment's box
covers (after a cheap segment-versus-cell test), and each candidate is cut
exactly against its edges (:func:`geomon.kernels.geofence.segment_inside_span`).

Output is ragged (segment -> zones), produced in two passes.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit
from geomon.kernels._pool import split
from geomon.kernels.geofence import segment_inside_span
from geomon.kernels.pip import LOC_INTERIOR, locate


@jit
def _segment_meets_box(ax, ay, bx, by, x0, y0, x1, y1):
    """Conservative test: may the segment A-B meet the box [x0, x1] x [y0, y1]?"""
    if max(ax, bx) < x0 or min(ax, bx) > x1 or max(ay, by) < y0 or min(ay, by) > y1:
        return False
    # Separating axis along the segment's normal: all four corners on one side.
    nx_ = by - ay
    ny_ = ax - bx
    d0 = nx_ * (x0 - ax) + ny_ * (y0 - ay)
    d1 = nx_ * (x1 - ax) + ny_ * (y0 - ay)
    d2 = nx_ * (x0 - ax) + ny_ * (y1 - ay)
    d3 = nx_ * (x1 - ax) + ny_ * (y1 - ay)
    tol = 1e-9 * (abs(nx_) + abs(ny_)) * (abs(x1 - x0) + abs(y1 - y0) + 1.0)
    if d0 > tol and d1 > tol and d2 > tol and d3 > tol:
        return False
    if d0 < -tol and d1 < -tol and d2 < -tol and d3 < -tol:
        return False
    return True


@jit
def _segment_hits(ax, ay, bx, by, coarse, gnx, gny, g_offsets, g_zones,
                  zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
                  edges, edge_offsets, min_inside_m, mark, stamp, buf, out_zone, out_in, out_out, at, write):
    """Zones the segment passes through with neither end inside; returns how many (written from row ``at`` of the
    outputs when ``write``)."""
    n = 0
    if not (math.isfinite(ax) and math.isfinite(ay) and math.isfinite(bx) and math.isfinite(by)):
        return 0
    length = math.hypot(bx - ax, by - ay)
    if length == 0.0:
        return 0
    cw = 1.0 / coarse[4]
    ch = 1.0 / coarse[5]
    i0 = max(int(math.floor((min(ax, bx) - coarse[0]) * coarse[4])), 0)
    i1 = min(int(math.floor((max(ax, bx) - coarse[0]) * coarse[4])), gnx - 1)
    j0 = max(int(math.floor((min(ay, by) - coarse[1]) * coarse[5])), 0)
    j1 = min(int(math.floor((max(ay, by) - coarse[1]) * coarse[5])), gny - 1)
    for j in range(j0, j1 + 1):
        for i in range(i0, i1 + 1):
            x0 = coarse[0] + i * cw
            y0 = coarse[1] + j * ch
            if not _segment_meets_box(ax, ay, bx, by, x0 - 0.01 * cw, y0 - 0.01 * ch, x0 + 1.01 * cw, y0 + 1.01 * ch):
                continue
            c = j * gnx + i
            for m in range(g_offsets[c], g_offsets[c + 1]):
                z = g_zones[m]
                if mark[z] == stamp:
                    continue
                mark[z] = stamp
                g = zone_grid[z]
                if max(ax, bx) < g[0] or min(ax, bx) > g[2] or max(ay, by) < g[1] or min(ay, by) > g[3]:
                    continue
                nzx = zone_dims[z, 0]
                nzy = zone_dims[z, 1]
                cb = zone_cbase[z]
                if locate(ax, ay, g, nzx, nzy, cb, words, ranks, starts, stream) == LOC_INTERIOR:
                    continue
                if locate(bx, by, g, nzx, nzy, cb, words, ranks, starts, stream) == LOC_INTERIOR:
                    continue
                t_in, t_out, inside = segment_inside_span(ax, ay, bx, by, edges, edge_offsets[z], edge_offsets[z + 1],
                                                          g, nzx, nzy, cb, words, ranks, starts, stream, buf)
                if t_in < 0.0 or inside * length < min_inside_m:
                    continue
                if write:
                    out_zone[at + n] = z
                    out_in[at + n] = t_in
                    out_out[at + n] = t_out
                n += 1
    return n


def segment_crossings(ax, ay, bx, by, coarse, gnx, gny, g_offsets, g_zones,
                      zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
                      edges, edge_offsets, min_inside_m):
    """For each segment A[k] -> B[k], the zones it passes through with neither end inside.

    Parameters
    ----------
    ax, ay, bx, by : float64 (n,)
        Segment ends in the zones' metric frame; NaN skips a segment.
    coarse ... stream
        A :class:`geomon.ZoneIndex`'s arrays (see :mod:`geomon.kernels.zone_index`).
    edges : float64 (n_edges, 4)
        All zones' edges; zone z owns ``edges[edge_offsets[z]:edge_offsets[z + 1]]``.
    min_inside_m : float
        Shortest stretch inside a zone that counts, metres (grazing a corner
        by centimetres is position noise, not a visit).

    Returns
    -------
    offsets : int64 (n + 1,)
        Zones of segment k are entries ``offsets[k]:offsets[k + 1]`` of:
    zone : int64
    t_in, t_out : float64
        Entry and exit as fractions of the segment (0 at A, 1 at B).
    """
    n = ax.size
    nz = zone_grid.shape[0]
    max_edges = int(max(np.max(np.diff(edge_offsets)) + 2, 1)) if nz else 1
    index = (coarse, gnx, gny, g_offsets, g_zones, zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
             edges, edge_offsets, min_inside_m, nz, max_edges)
    counts = np.zeros(n + 1, np.int64)
    split(n, lambda lo, hi: _count_crossings(ax, ay, bx, by, *index, lo, hi, counts), min_units=4_096)
    offsets = np.cumsum(counts)
    zone = np.empty(offsets[-1], np.int64)
    t_in = np.empty(offsets[-1])
    t_out = np.empty(offsets[-1])
    split(n, lambda lo, hi: _fill_crossings(ax, ay, bx, by, *index, lo, hi, offsets, zone, t_in, t_out),
          min_units=4_096)
    return offsets, zone, t_in, t_out


@jit
def _count_crossings(ax, ay, bx, by, coarse, gnx, gny, g_offsets, g_zones, zone_grid, zone_dims, zone_cbase, words,
                     ranks, starts, stream, edges, edge_offsets, min_inside_m, nz, max_edges, lo, hi, counts):
    """``counts[k + 1]``: the zones segment k passes through, for ``lo <= k < hi``."""
    mark = np.full(nz, -1, np.int64)
    buf = np.empty(max_edges)
    dummy_i = np.empty(0, np.int64)
    dummy_f = np.empty(0)
    for k in range(lo, hi):
        counts[k + 1] = _segment_hits(ax[k], ay[k], bx[k], by[k], coarse, gnx, gny, g_offsets, g_zones,
                                      zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
                                      edges, edge_offsets, min_inside_m, mark, k, buf,
                                      dummy_i, dummy_f, dummy_f, np.int64(0), np.bool_(False))


@jit
def _fill_crossings(ax, ay, bx, by, coarse, gnx, gny, g_offsets, g_zones, zone_grid, zone_dims, zone_cbase, words,
                    ranks, starts, stream, edges, edge_offsets, min_inside_m, nz, max_edges, lo, hi, offsets,
                    zone, t_in, t_out):
    """The zones, entries and exits of segments ``lo <= k < hi``, from row ``offsets[k]`` on."""
    mark = np.full(nz, -1, np.int64)
    buf = np.empty(max_edges)
    for k in range(lo, hi):
        if offsets[k + 1] > offsets[k]:
            _segment_hits(ax[k], ay[k], bx[k], by[k], coarse, gnx, gny, g_offsets, g_zones,
                          zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream,
                          edges, edge_offsets, min_inside_m, mark, k, buf,
                          zone, t_in, t_out, offsets[k], np.bool_(True))
