"""Fast point-in-polygon for integrators: drop-in ``contains_xy``/``intersects_xy`` and ``ZoneIndex``.

``contains_xy(geom, x, y)`` and ``intersects_xy(geom, x, y)`` return what
shapely's functions of the same names return, boundary rules included, but
answer from a per-polygon grid index (see :mod:`geomon.kernels.pip`) built on
first use and cached for that geometry object. ``ZoneIndex`` answers many zones
at once with the pairs shapely's ``STRtree.query`` would give.

Examples
--------
>>> import numpy as np, shapely, geomon
>>> square = shapely.box(0, 0, 10, 10)
>>> geomon.contains_xy(square, np.array([5.0, 10.0, 11.0]), np.array([5.0, 5.0, 5.0]))
array([ True, False, False])
>>> geomon.intersects_xy(square, np.array([5.0, 10.0, 11.0]), np.array([5.0, 5.0, 5.0]))
array([ True,  True, False])
>>> zones = geomon.ZoneIndex([square, shapely.box(8, 8, 20, 20)])
>>> point_index, zone_index = zones.query_xy(np.array([9.0, 15.0]), np.array([9.0, 15.0]))
>>> point_index, zone_index
(array([0, 0, 1]), array([0, 1, 1]))
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely

from geomon.kernels import boundary_distance as _dist
from geomon.kernels import pip as _pip
from geomon.kernels import pip_build as _pip_build
from geomon.kernels import zone_index as _zi
from geomon.kernels._pool import split

_EPS = np.finfo(np.float64).eps
_AREAL = (shapely.Polygon, shapely.MultiPolygon)



@dataclass(frozen=True)
class _Edges:
    """All directed edges of a set of polygons, grouped by polygon."""

    edges: np.ndarray  # (n, 4) float64: x1, y1, x2, y2
    prev_edge: np.ndarray  # (n,) int64, global ids
    next_edge: np.ndarray  # (n,) int64, global ids
    offsets: np.ndarray  # (n_geoms + 1,) int64: edges of geom g are offsets[g]:offsets[g+1]


def _edges_of(geoms: np.ndarray) -> _Edges:
    """Edges of every ring of every (multi)polygon in ``geoms``, in the ragged layout."""
    n_geoms = len(geoms)
    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    n_rings = len(rings)
    ring_len = np.bincount(coord_ring, minlength=n_rings).astype(np.int64)
    ring_start = np.concatenate([[0], np.cumsum(ring_len)[:-1]]).astype(np.int64)
    # Rings are closed (last coordinate repeats the first): edge k joins k and k+1.
    edge_len = np.maximum(ring_len - 1, 0)
    edge_ring = np.repeat(np.arange(n_rings), edge_len)
    edge_start = np.concatenate([[0], np.cumsum(edge_len)[:-1]]).astype(np.int64)
    pos = np.arange(edge_len.sum(), dtype=np.int64) - edge_start[edge_ring]
    src = ring_start[edge_ring] + pos
    edges = np.ascontiguousarray(np.column_stack([coords[src], coords[src + 1]]), dtype=np.float64)
    length = edge_len[edge_ring]
    next_edge = edge_start[edge_ring] + (pos + 1) % np.maximum(length, 1)
    prev_edge = edge_start[edge_ring] + (pos - 1) % np.maximum(length, 1)
    edge_geom = part_geom[ring_part[edge_ring]]
    offsets = np.zeros(n_geoms + 1, np.int64)
    np.cumsum(np.bincount(edge_geom, minlength=n_geoms), out=offsets[1:])
    return _Edges(edges, prev_edge.astype(np.int64), next_edge.astype(np.int64), offsets)


@dataclass(frozen=True)
class _Grid:
    """One polygon's classified grid, as :func:`geomon.kernels.pip.locate` reads it."""

    grid: np.ndarray  # (6,) xmin, ymin, xmax, ymax, 1/cw, 1/ch
    nx: int
    ny: int
    codes: np.ndarray  # uint8 CELL_* per cell, padded to a multiple of 32 cells
    cell_start: np.ndarray  # int64 per padded cell + 1: stream range of each cell
    stream: np.ndarray

    def packed(self) -> _Packed:
        return _Packed(*_pip_build.pack_cells(self.codes, self.cell_start), self.stream)


@dataclass(frozen=True)
class _Packed:
    """Cell codes 32 to a word with rank-indexed boundary blocks (see :func:`geomon.kernels.pip.cell_block`)."""

    words: np.ndarray
    ranks: np.ndarray
    starts: np.ndarray
    stream: np.ndarray

    def arrays(self):
        return self.words, self.ranks, self.starts, self.stream


@dataclass(frozen=True)
class _Indexed:
    """A lone polygon's grid, packed for queries, with a coarse summary for the first look."""

    grid: np.ndarray
    nx: int
    ny: int
    cells: _Packed
    coarse_words: np.ndarray  # 2-bit codes of 2**shift x 2**shift blocks of cells
    ncx: int
    shift: int


#: Side of a coarse block of the first look, as a power of two (8 x 8 cells).
_COARSE_SHIFT = 3


def _pack_codes(codes: np.ndarray) -> np.ndarray:
    """2-bit codes, 32 to a uint64 word (the layout of :func:`geomon.kernels.pip.cell_code`)."""
    padded = np.zeros(codes.size + (-codes.size % 32), np.uint64)
    padded[: codes.size] = codes
    fields = padded.reshape(-1, 32) << (2 * np.arange(32, dtype=np.uint64))
    return np.bitwise_or.reduce(fields, axis=1)


def _coarse_codes(codes: np.ndarray, nx: int, ny: int, shift: int):
    """Code of each 2**shift-square block: its cells' common code if interior or exterior, else boundary."""
    k = 1 << shift
    ncx, ncy = -(-nx // k), -(-ny // k)
    blocks = np.full((ncy * k, ncx * k), _pip_build.CELL_BOUNDARY_EVEN, np.uint8)
    blocks[:ny, :nx] = codes[: nx * ny].reshape(ny, nx)
    blocks = blocks.reshape(ncy, k, ncx, k)
    low, high = blocks.min(axis=(1, 3)), blocks.max(axis=(1, 3))
    uniform = (low == high) & (low < _pip_build.CELL_BOUNDARY_EVEN)
    return np.where(uniform, low, _pip_build.CELL_BOUNDARY_EVEN).astype(np.uint8).reshape(-1), ncx


@dataclass(frozen=True)
class _Density:
    """How many grid cells a polygon gets: per edge, clamped to [min_cells, max_cells]."""

    cells_per_edge: int
    min_cells: int
    max_cells: int


#: A lone polygon is usually asked about many points: a fine grid (2 bits a
#: cell, 1 MiB at most) leaves few points in boundary cells, and the query's
#: first pass streams through it without branching.
_SINGLE = _Density(cells_per_edge=1024, min_cells=1 << 16, max_cells=1 << 22)
#: Zones of a ZoneIndex are many and mostly small: a few cells per edge.
_ZONE = _Density(cells_per_edge=16, min_cells=64, max_cells=1 << 16)


def _grid_shape(bounds, n_edges, density: _Density):
    xmin, ymin, xmax, ymax = bounds
    width = xmax - xmin
    height = ymax - ymin
    target = int(min(max(density.cells_per_edge * n_edges, density.min_cells), density.max_cells))
    if width > 0 and height > 0:
        nx = int(np.clip(round(np.sqrt(target * width / height)), 1, target))
        ny = int(np.clip(round(target / nx), 1, target))
    elif width > 0:
        nx, ny = min(target, max(n_edges, 1)), 1
    elif height > 0:
        nx, ny = 1, min(target, max(n_edges, 1))
    else:
        nx = ny = 1
    return nx, ny


def _margins(bounds, cw, ch):
    """Cell inflation larger than any rounding error of the lookup int((x - xmin) / cw)."""
    xmin, ymin, xmax, ymax = bounds
    mx = 1e-6 * cw + 64 * _EPS * (abs(xmin) + abs(xmax))
    my = 1e-6 * ch + 64 * _EPS * (abs(ymin) + abs(ymax))
    return mx, my


def _build(edges, prev_edge, next_edge, density: _Density) -> _Grid:
    """Grid for one polygon given its edges (local edge ids)."""
    if edges.shape[0] == 0:
        return _Grid(np.array([np.inf, np.inf, -np.inf, -np.inf, 1.0, 1.0]), 1, 1,
                     np.zeros(32, np.uint8), np.zeros(33, np.int64), np.zeros(0))
    xs = edges[:, [0, 2]]
    ys = edges[:, [1, 3]]
    bounds = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    nx, ny = _grid_shape(bounds, edges.shape[0], density)
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    cw = width / nx if width > 0 else 1.0
    ch = height / ny if height > 0 else 1.0
    mx, my = _margins(bounds, cw, ch)
    state, cell_start, stream = _pip_build.build_grid(
        edges, prev_edge, next_edge, bounds[0], bounds[1], cw, ch, nx, ny, mx, my
    )
    grid = np.array([*bounds, 1.0 / cw, 1.0 / ch])
    pad = -state.size % 32
    codes = np.concatenate([state, np.zeros(pad, np.uint8)])
    cell_start = np.concatenate([cell_start, np.full(pad, cell_start[-1])])
    return _Grid(grid, nx, ny, codes, cell_start, stream)


def _build_single(geom) -> _Indexed:
    e = _edges_of(np.array([geom], dtype=object))
    g = _build(e.edges, e.prev_edge, e.next_edge, _SINGLE)
    shift = _COARSE_SHIFT if min(g.nx, g.ny) >= 4 << _COARSE_SHIFT else 0
    coarse, ncx = _coarse_codes(g.codes, g.nx, g.ny, shift)
    return _Indexed(g.grid, g.nx, g.ny, g.packed(), _pack_codes(coarse), ncx, shift)


class _GridCache:
    """Grids of recently used geometries, keyed by object identity.

    The geometry is held with its grid, so its ``id`` cannot be reused while
    the entry lives; shapely geometries are immutable, so a grid never goes
    stale.
    """

    def __init__(self, max_entries: int = 64):
        self._entries: OrderedDict[int, tuple[object, _Indexed]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, geom) -> _Indexed:
        key = id(geom)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] is geom:
                self._entries.move_to_end(key)
                return hit[1]
        grid = _build_single(geom)
        with self._lock:
            self._entries[key] = (geom, grid)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return grid

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _GridCache()


def _fast_path(geom) -> bool:
    return isinstance(geom, _AREAL) and not geom.is_empty


def _as_points(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    shape = x.shape
    return np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1), shape


def _shaped(out: np.ndarray, shape):
    out = out.reshape(shape)
    return out[()] if out.ndim == 0 else out


def _locate_xy(geom, x, y, threshold):
    grid = _CACHE.get(geom)
    xf, yf, shape = _as_points(x, y)
    out = np.empty(xf.size, dtype=np.bool_)
    cells = grid.cells.arrays()
    split(xf.size, lambda lo, hi: _pip.locate_points(xf[lo:hi], yf[lo:hi], grid.grid, grid.nx, grid.ny, *cells,
                                                     grid.coarse_words, grid.ncx, grid.shift, threshold, out[lo:hi]))
    return _shaped(out, shape)


def contains_xy(geom, x, y, **kwargs):
    """Whether ``geom`` contains each point (x, y): a drop-in for :func:`shapely.contains_xy`.

    Points on the boundary are not contained, exactly as in shapely. For a
    single non-empty Polygon or MultiPolygon the answer comes from geomon's
    grid index, built on the first call with that geometry object and cached;
    anything else (arrays of geometries, lines, points, empty or missing
    geometries, ufunc keyword arguments) is passed to shapely unchanged.

    Parameters
    ----------
    geom : shapely geometry
        Zone, in the same planar CRS as the points.
    x, y : float or array_like
        Point coordinates; broadcast against each other.

    Returns
    -------
    numpy.ndarray of bool, or numpy.bool_ for scalar input.

    Notes
    -----
    The orientation predicate is exact, GEOS's is double-double: the two can
    differ only for a point within ~1e-28 of an edge in a polygon whose
    coordinates span some 30 orders of magnitude, where geomon is right.

    Examples
    --------
    >>> import shapely, geomon
    >>> geomon.contains_xy(shapely.box(0, 0, 1, 1), [0.5, 1.0], [0.5, 0.5])
    array([ True, False])
    """
    if kwargs or not _fast_path(geom):
        return shapely.contains_xy(geom, x, y, **kwargs)
    return _locate_xy(geom, x, y, _pip.LOC_INTERIOR)


def intersects_xy(geom, x, y, **kwargs):
    """Whether ``geom`` intersects each point (x, y): a drop-in for :func:`shapely.intersects_xy`.

    Points on the boundary intersect. Same fast path and fallback as
    :func:`contains_xy`.

    Examples
    --------
    >>> import shapely, geomon
    >>> geomon.intersects_xy(shapely.box(0, 0, 1, 1), [0.5, 1.0, 2.0], [0.5, 0.5, 0.5])
    array([ True,  True, False])
    """
    if kwargs or not _fast_path(geom):
        return shapely.intersects_xy(geom, x, y, **kwargs)
    return _locate_xy(geom, x, y, _pip.LOC_BOUNDARY)


def signed_distance_xy(geom, x, y, cap):
    """Signed distance from each point to the boundary of a (multi)polygon, capped.

    Positive inside, negative outside, 0 on the boundary; magnitudes larger than
    ``cap`` are returned as ``cap`` (with the sign). Units are those of the
    coordinates: metres in geomon's projected frame. Detectors use it to ask
    "how far inside or outside, against the fix's uncertainty".

    Parameters
    ----------
    geom : shapely.Polygon or shapely.MultiPolygon
    x, y : float or array_like
        Points, broadcast against each other; NaN gives NaN.
    cap : float
        Largest magnitude of interest, > 0 (e.g. ``500.0`` metres).

    Examples
    --------
    >>> import shapely, geomon
    >>> geomon.signed_distance_xy(shapely.box(0, 0, 10, 10), [5.0, 12.0, 50.0], [1.0, 5.0, 5.0], cap=20.0)
    array([  1.,  -2., -20.])
    """
    if not isinstance(geom, _AREAL):
        raise TypeError(f"signed_distance_xy needs a Polygon or MultiPolygon, got {type(geom).__name__}")
    if not cap > 0:
        raise ValueError(f"cap must be > 0, got {cap!r}")
    xf, yf, shape = _as_points(x, y)
    if geom.is_empty:
        out = np.where(np.isnan(xf) | np.isnan(yf), np.nan, -float(cap))
        return _shaped(out, shape)
    grid = _CACHE.get(geom)
    out = np.empty(xf.size, dtype=np.float64)
    cells = grid.cells.arrays()
    split(xf.size, lambda lo, hi: _dist.signed_distance(xf[lo:hi], yf[lo:hi], grid.grid, grid.nx, grid.ny, *cells,
                                                        float(cap), out[lo:hi]), min_units=1_024)
    return _shaped(out, shape)


def _concat_offsets(parts):
    """Concatenate CSR offset arrays of consecutive blocks into one."""
    if not parts:
        return np.zeros(1, np.int64)
    sizes = np.array([int(p[-1]) for p in parts], dtype=np.int64)
    bases = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.concatenate([*(p[:-1].astype(np.int64) + b for p, b in zip(parts, bases)), [sizes.sum()]])


_PREDICATES = {"intersects": _pip.LOC_BOUNDARY, "contains": _pip.LOC_INTERIOR}


class ZoneIndex:
    """Which zones each point falls in, for many points and many zones.

    Parameters
    ----------
    geoms : array_like of shapely geometries
        Zones (Polygon or MultiPolygon) in the points' planar CRS. ``None`` and
        empty geometries are allowed and never match, as in ``STRtree``.

    Notes
    -----
    ``query_xy(x, y, "intersects")`` returns the pairs of
    ``shapely.STRtree(geoms).query(shapely.points(x, y), predicate="intersects")``
    and ``query_xy(x, y, "contains")`` ("the zone contains the point", as in
    :func:`contains_xy`) the pairs of STRtree's ``predicate="within"`` (the
    point is within the zone). Pairs come sorted by point, then zone.

    Examples
    --------
    >>> import numpy as np, shapely, geomon
    >>> index = geomon.ZoneIndex([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])
    >>> index.query_xy(np.array([1.5, 2.0, 9.0]), np.array([1.5, 2.0, 9.0]), predicate="contains")
    (array([0, 0, 1]), array([0, 1, 1]))
    """

    def __init__(self, geoms):
        geoms = np.asarray(geoms, dtype=object).reshape(-1)
        bad = [i for i, g in enumerate(geoms) if g is not None and not isinstance(g, _AREAL)]
        if bad:
            raise TypeError(
                f"ZoneIndex takes Polygon or MultiPolygon zones; zone {bad[0]} is "
                f"{type(geoms[bad[0]]).__name__}"
            )
        self.geometries = geoms
        present = np.array([g if g is not None else shapely.Polygon() for g in geoms], dtype=object)
        e = _edges_of(present) if len(geoms) else None
        grids = []
        for z in range(len(geoms)):
            lo, hi = e.offsets[z], e.offsets[z + 1]
            grids.append(_build(e.edges[lo:hi], e.prev_edge[lo:hi] - lo, e.next_edge[lo:hi] - lo, _ZONE))
        self._pack(grids)

    def _pack(self, grids):
        nz = len(grids)
        self._zone_grid = np.array([g.grid for g in grids], dtype=np.float64).reshape(nz, 6)
        self._zone_dims = np.array([(g.nx, g.ny) for g in grids], dtype=np.int64).reshape(nz, 2)
        n_cells = np.array([g.codes.size for g in grids], dtype=np.int64)  # multiples of 32
        self._zone_cbase = np.concatenate([[0], np.cumsum(n_cells)[:-1]]).astype(np.int64)
        if nz:
            joined = _Grid(None, 0, 0, np.concatenate([g.codes for g in grids]),
                           _concat_offsets([g.cell_start for g in grids]),
                           np.concatenate([g.stream for g in grids]))
            self._cells = joined.packed()
        else:
            self._cells = _Packed(np.zeros(0, np.uint64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0))
        self._build_coarse()

    def _build_coarse(self):
        zg = self._zone_grid
        live = zg[:, 0] <= zg[:, 2]
        if not live.any():
            self._coarse = np.array([0.0, 0.0, -1.0, -1.0, 1.0, 1.0])
            self._gnx = self._gny = 1
            self._g_offsets = np.zeros(2, np.int64)
            self._g_zones = np.zeros(0, np.int64)
            return
        bounds = (zg[live, 0].min(), zg[live, 1].min(), zg[live, 2].max(), zg[live, 3].max())
        gnx, gny = _grid_shape(bounds, int(live.sum()), _Density(4, 1, 1 << 22))
        cw = (bounds[2] - bounds[0]) / gnx if bounds[2] > bounds[0] else 1.0
        ch = (bounds[3] - bounds[1]) / gny if bounds[3] > bounds[1] else 1.0
        mx, my = _margins(bounds, cw, ch)
        self._coarse = np.array([*bounds, 1.0 / cw, 1.0 / ch])
        self._gnx, self._gny = gnx, gny
        self._g_offsets, self._g_zones = _zi.build_coarse_grid(
            zg, bounds[0], bounds[1], 1.0 / cw, 1.0 / ch, gnx, gny, max(mx, my)
        )

    def __len__(self) -> int:
        return len(self.geometries)

    def query_xy(self, x, y, predicate: Literal["intersects", "contains"] = "intersects"):
        """Pairs (point, zone) where the zone intersects / contains the point.

        Parameters
        ----------
        x, y : array_like of float
            Points, broadcast against each other and flattened.
        predicate : {"intersects", "contains"}
            "intersects" counts boundary points, "contains" does not.

        Returns
        -------
        point_index, zone_index : int64 arrays of equal length
            Sorted by point, then zone.
        """
        threshold = _PREDICATES.get(predicate)
        if threshold is None:
            raise ValueError(f"predicate must be one of {sorted(_PREDICATES)}, got {predicate!r}")
        xf, yf, _ = _as_points(x, y)
        args = (self._coarse, self._gnx, self._gny, self._g_offsets, self._g_zones,
                self._zone_grid, self._zone_dims, self._zone_cbase, *self._cells.arrays(), threshold)
        counts = np.empty(xf.size, np.int64)
        split(xf.size, lambda lo, hi: _zi.count_hits(xf[lo:hi], yf[lo:hi], *args, counts[lo:hi]))
        pair_offsets = np.zeros(xf.size + 1, np.int64)
        np.cumsum(counts, out=pair_offsets[1:])
        n = int(pair_offsets[-1])
        point_index = np.empty(n, np.int64)
        zone_index = np.empty(n, np.int64)

        def fill(lo: int, hi: int) -> None:
            # The kernel numbers a chunk's points from 0 and writes at the absolute pair offsets.
            _zi.fill_hits(xf[lo:hi], yf[lo:hi], *args, pair_offsets[lo:hi + 1], point_index, zone_index)
            point_index[pair_offsets[lo]:pair_offsets[hi]] += lo

        split(xf.size, fill)
        return point_index, zone_index
