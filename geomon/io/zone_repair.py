"""Checking and repairing zone geometries: coordinates in range, validity, winding, each change reported.

:func:`_repair` takes the accepted geometries of :func:`geomon.io.zones.load_zones`
to WGS84 and repairs them in bulk with shapely: ``make_valid`` (keeping only the
polygonal parts) for invalid ones and RFC 7946 winding for valid ones, adding a
row to the repairs for every change. A geometry too tangled to repair in
reasonable time (:data:`MAX_REPAIR_CROSSINGS`) is quarantined instead, so that
a hostile file cannot stall the loader.
"""

from __future__ import annotations

import numpy as np
import shapely

from geomon.io.common import _lonlat_to_wgs84, _Reasons, _Reject

#: An invalid geometry whose edges cross more often than this is not repaired: ``make_valid`` time
#: grows with the crossings (minutes for a few thousand random vertices), so it is quarantined.
MAX_REPAIR_CROSSINGS = 1_000
#: Segment pairs with overlapping bounding boxes examined when counting crossings, at most.
_MAX_REPAIR_CANDIDATES = 2_000_000
#: Geometries with more vertices have their crossings counted before the (slower) validity test.
_PRECHECK_VERTICES = 100_000


def _check_coordinates(geom: shapely.Geometry) -> None:
    """Refuse a geometry with a coordinate not finite or out of lon/lat range (in the input datum), or empty."""
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise _Reject("geometry", "geometry_not_finite")
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise _Reject("geometry", "geometry_out_of_range")
    if shapely.is_empty(geom):
        raise _Reject("geometry", "geometry_empty")


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygons of a make_valid result (which may add lines or points)."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if shapely.get_type_id(p) in (3, 6)]
    if not polys:
        return shapely.from_wkt("MULTIPOLYGON EMPTY")
    merged = shapely.union_all(polys)
    return merged


def _too_tangled(geom: shapely.Geometry) -> bool:
    """True if the ring edges of ``geom`` cross more than :data:`MAX_REPAIR_CROSSINGS` times.

    Edges are tested in batches of doubling size against an STRtree of all
    edges, stopping as soon as the budget of crossings, or of candidate pairs
    (edges with overlapping bounding boxes), is spent; so a hostile polygon
    costs a few seconds at most, while a large polygon with a few crossings
    (a county boundary with a sliver) is counted in full and repaired. Only
    proper crossings count (the interiors of two edges meet at one point).
    """
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of[:-1] == ring_of[1:]
    start, end = xy[:-1][same_ring], xy[1:][same_ring]
    tree = shapely.STRtree(shapely.linestrings(np.stack([start, end], axis=1)))

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Sign of the turn a -> b -> c."""
        return np.sign((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    crossings = candidates = done = 0
    size = 1
    while done < len(start):
        left, right = tree.query(tree.geometries[done : done + size])
        left = left + done
        candidates += len(left)
        if candidates > _MAX_REPAIR_CANDIDATES + 4 * len(start):
            return True
        p1, p2, q1, q2 = start[left], end[left], start[right], end[right]
        crossing = (side(q1, q2, p1) * side(q1, q2, p2) < 0) & (side(p1, p2, q1) * side(p1, p2, q2) < 0)
        crossings += int(crossing.sum())
        if crossings > 2 * MAX_REPAIR_CROSSINGS:  # each crossing is seen from both edges
            return True
        done += size
        size *= 2
    return False


def _repair(geoms: np.ndarray, ok: np.ndarray, datum: str, reasons: _Reasons,
            repairs: list[tuple[int, str, str]]) -> None:
    """Convert the geometries ``geoms[ok]`` to WGS84 and repair them, in place.

    Parameters
    ----------
    geoms : numpy.ndarray
        Every feature's geometry (object array), in the input datum; the rows
        ``ok`` are replaced by their WGS84, valid, RFC 7946-wound versions.
    ok : numpy.ndarray
        Rows of the features accepted so far (at least one).
    datum : str
        Datum of the input coordinates.
    reasons : geomon.io.common._Reasons
        Gains ``geometry_unrepairable`` and ``geometry_empty_after_repair``.
    repairs : list of (row, repair, detail)
        Gains a ``made_valid`` or ``winding_reoriented`` row per change.
    """
    n = len(geoms)
    g = shapely.force_2d(geoms[ok])
    xy = shapely.get_coordinates(g)
    lon, lat = _lonlat_to_wgs84(xy[:, 0].copy(), xy[:, 1].copy(), datum)
    g = shapely.set_coordinates(g, np.column_stack([lon, lat]))
    # GEOS validity takes seconds on a hostile million-vertex polygon: count the
    # crossings of large geometries first (a valid geometry has none).
    big = shapely.get_num_coordinates(g) > _PRECHECK_VERTICES
    tangled = np.zeros(len(g), dtype=bool)
    tangled[big] = [_too_tangled(x) for x in g[big]]
    valid = np.zeros(len(g), dtype=bool)
    valid[~tangled] = shapely.is_valid(g[~tangled])
    unrepairable = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(~valid):
        try:
            if tangled[i] or (not big[i] and _too_tangled(g[i])):
                raise shapely.errors.GEOSException("too many crossings")
            reason = shapely.is_valid_reason(g[i])
            g[i] = _polygonal_part(shapely.make_valid(g[i]))
        except shapely.errors.GEOSException:
            unrepairable[ok[i]] = True
            g[i] = shapely.from_wkt("MULTIPOLYGON EMPTY")
            continue
        repairs.append((int(ok[i]), "made_valid", reason))
    reasons.add("geometry", "geometry_unrepairable", unrepairable)
    oriented = shapely.orient_polygons(g)
    for i in np.flatnonzero(valid & ~shapely.equals_exact(g, oriented, tolerance=0.0)):
        detail = "exterior clockwise or hole counter-clockwise (RFC 7946 section 3.1.6)"
        repairs.append((int(ok[i]), "winding_reoriented", detail))
    geoms[ok] = oriented
    empty = np.zeros(n, dtype=bool)
    empty[ok] = shapely.is_empty(oriented)
    reasons.add("geometry", "geometry_empty_after_repair", empty)
