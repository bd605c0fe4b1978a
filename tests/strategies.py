"""Hypothesis strategies for polygons and points that stress boundary rules.

Shapes: star-shaped polygons (always simple) with optional star holes,
multipolygons of disjoint stars, rectilinear unions of integer boxes (collinear
edges, holes, shared vertices), all under random scale and offset from tiny to
huge coordinates. Points: uniform in the box, exactly on vertices, on edge
midpoints, on the horizontal and vertical lines through vertices.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from hypothesis import strategies as st

SCALES = st.sampled_from([1e-3, 1.0, 37.5, 1e4, 1e6])
OFFSETS = st.sampled_from([0.0, -250.0, 5e5, 4.2e6, 1e9])


@st.composite
def star(draw, cx=0.0, cy=0.0, r_min=0.6, r_max=1.0, max_vertices=40):
    n = draw(st.integers(3, max_vertices))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * math.pi, exclude_max=True), min_size=n,
                                            max_size=n, unique=True))))
    radii = np.array(draw(st.lists(st.floats(r_min, r_max), min_size=n, max_size=n)))
    ring = np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])
    # Subnormal coordinates (sin of a tiny angle) make products underflow, where
    # no predicate in floating point (GEOS's included) is exact.
    ring[np.abs(ring) < 1e-9] = 0.0
    return ring


@st.composite
def star_polygon(draw):
    outer = draw(star())
    holes = []
    if draw(st.booleans()):
        holes.append(draw(star(r_min=0.1, r_max=0.5)))
    return shapely.Polygon(outer, holes)


@st.composite
def star_multipolygon(draw):
    k = draw(st.integers(2, 4))
    parts = []
    for i in range(k):
        ring = draw(star(cx=3.0 * i, cy=(i % 2) * 2.5, max_vertices=16))
        holes = [draw(star(cx=3.0 * i, cy=(i % 2) * 2.5, r_min=0.1, r_max=0.5, max_vertices=8))] if draw(
            st.booleans()) else []
        parts.append(shapely.Polygon(ring, holes))
    return shapely.MultiPolygon(parts)


@st.composite
def rectilinear(draw):
    """Union of integer boxes: collinear edges, holes, vertices shared by rings."""
    boxes = draw(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 4), st.integers(1, 4)),
                          min_size=1, max_size=8))
    geom = shapely.union_all([shapely.box(x, y, x + w, y + h) for x, y, w, h in boxes])
    return geom


def _areal(geom):
    try:
        geom = shapely.make_valid(geom)
    except shapely.errors.GEOSException:
        return None  # e.g. a part collapsed to one repeated point: mixed-dimension overlay
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon) and not g.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


@st.composite
def polygons(draw):
    """A valid non-empty Polygon or MultiPolygon under a random scale and offset."""
    kind = draw(st.sampled_from(["star", "multi", "rect"]))
    base = {"star": star_polygon, "multi": star_multipolygon, "rect": rectilinear}[kind]()
    geom = draw(base)
    scale = draw(SCALES)
    ox = draw(OFFSETS)
    oy = draw(OFFSETS)
    if kind == "rect" and draw(st.booleans()):
        # Keep integer-like coordinates exact: only power-of-two scales and integer offsets.
        scale, ox, oy = 0.5, 1024.0, -64.0
    geom = shapely.transform(geom, lambda c: c * scale + np.array([ox, oy]))
    geom = _areal(geom)
    from hypothesis import assume

    assume(geom is not None)
    return geom


@st.composite
def points_for(draw, geom, n_random=60):
    """Points that stress the boundary rules of ``geom``: (x, y) float64 arrays."""
    xmin, ymin, xmax, ymax = geom.bounds
    w = (xmax - xmin) or 1.0
    h = (ymax - ymin) or 1.0
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    coords = shapely.get_coordinates(geom)
    xs = [rng.uniform(xmin - 0.1 * w, xmax + 0.1 * w, n_random)]
    ys = [rng.uniform(ymin - 0.1 * h, ymax + 0.1 * h, n_random)]
    # Vertices exactly.
    xs.append(coords[:, 0])
    ys.append(coords[:, 1])
    # Edge midpoints (exactly on the edge when representable, else within an ulp).
    mid = (coords[:-1] + coords[1:]) / 2
    xs.append(mid[:, 0])
    ys.append(mid[:, 1])
    # Horizontal lines through vertices (the ray passes exactly through a vertex).
    k = rng.integers(0, len(coords), 30)
    xs.append(rng.uniform(xmin - 0.1 * w, xmax + 0.1 * w, 30))
    ys.append(coords[k, 1])
    # Vertical lines through vertices.
    k = rng.integers(0, len(coords), 30)
    xs.append(coords[k, 0])
    ys.append(rng.uniform(ymin - 0.1 * h, ymax + 0.1 * h, 30))
    return np.concatenate(xs), np.concatenate(ys)


def _in_frame(geom, size):
    """``geom`` after a transform, with the tiny residues of cancellation snapped to zero.

    Like :func:`star`: coordinates 30 orders of magnitude apart (1e-198 next to
    1e-3) are beyond GEOS's double-double predicates, so shapely is no reference there.
    """
    coords = shapely.get_coordinates(geom)
    coords[np.abs(coords) < 1e-9 * size] = 0.0
    try:
        return _areal(shapely.set_coordinates(geom, coords))
    except shapely.errors.GEOSException:
        return None


@st.composite
def zone_sets(draw, max_zones=8):
    """Zones for ``ZoneIndex`` in one frame: a list of Polygon/MultiPolygon/None/empty.

    Built around one ``polygons()`` base: copies of it translated by a
    vertex-to-vertex vector (overlapping, sharing vertices), its convex hull and
    envelope (nested, sharing boundary), the envelope cut at a vertex into two
    boxes with a shared edge, other ``polygons()`` fitted over the base's box,
    exact duplicates, ``None`` and empty geometries, in any order.
    """
    base = draw(polygons())
    xmin, ymin, xmax, ymax = base.bounds
    size = max(xmax - xmin, ymax - ymin)
    coords = shapely.get_coordinates(base)
    kinds = draw(st.lists(st.sampled_from(["shifted", "hull", "envelope", "halves", "other", "same", "none",
                                           "empty", "empty_multi"]), max_size=max_zones - 1))
    zones = [base]
    for kind in kinds:
        if kind == "shifted":
            i, j = draw(st.integers(0, len(coords) - 1)), draw(st.integers(0, len(coords) - 1))
            zones.append(_in_frame(shapely.transform(base, lambda c, t=coords[i] - coords[j]: c + t), size))
        elif kind == "hull":
            zones.append(_areal(shapely.convex_hull(base)))
        elif kind == "envelope":
            zones.append(shapely.box(xmin, ymin, xmax, ymax))
        elif kind == "halves":
            xv = coords[draw(st.integers(0, len(coords) - 1)), 0]
            if xmin < xv < xmax:
                zones += [shapely.box(xmin, ymin, xv, ymax), shapely.box(xv, ymin, xmax, ymax)]
        elif kind == "other":
            other = draw(polygons())
            oxmin, oymin, oxmax, oymax = other.bounds
            fx, fy = draw(st.floats(-0.5, 0.5)), draw(st.floats(-0.5, 0.5))
            k = size / max(oxmax - oxmin, oymax - oymin)
            origin = np.array([xmin + fx * (xmax - xmin), ymin + fy * (ymax - ymin)])
            zones.append(_in_frame(shapely.transform(
                other, lambda c, o=np.array([oxmin, oymin]): (c - o) * k + origin), size))
        elif kind == "same":
            zones.append(zones[draw(st.integers(0, len(zones) - 1))])
        elif kind == "none":
            zones.append(None)
        elif kind == "empty":
            zones.append(shapely.Polygon())
        else:
            zones.append(shapely.MultiPolygon())
    return draw(st.permutations(zones))


@st.composite
def with_gaps(draw, x, y):
    """Copies of ``x, y`` with NaN, +inf or -inf in x, y or both at a few drawn positions."""
    x = np.array(x, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    if x.size == 0:
        return x, y
    for _ in range(draw(st.integers(0, 4))):
        k = draw(st.integers(0, x.size - 1))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        where = draw(st.sampled_from(["x", "y", "both"]))
        if where != "y":
            x[k] = value
        if where != "x":
            y[k] = value
    return x, y
