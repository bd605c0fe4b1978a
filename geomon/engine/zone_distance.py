"""Distance from each fix to its own subject's zone (a home, a work place) on the zone index's numba kernel.

The night and stay detectors ask, for every fix, how far the subject is from its home zone (and its work
zone). GEOS answered that one fix at a time; :class:`SubjectZoneDistance` indexes every subject's zone once,
when the Monitor starts, and measures a batch of fixes in one call of
:func:`geomon.kernels.boundary_distance.pair_signed_distance` (the same grid of edges the geofence reads).
"""

from __future__ import annotations

import numpy as np
import shapely

from geomon.geo.geometry import ZoneIndex
from geomon.kernels import boundary_distance as _dist
from geomon.kernels._pool import split

__all__ = ["SubjectZoneDistance", "ZonesWithin", "pair_signed_distance"]

#: Farther than this the distance is reported as this (m): beyond any rule's distance, and a far point only
#: costs a search of its zone's small grid.
FAR_M = 1e9


def pair_signed_distance(index: ZoneIndex, x_m: np.ndarray, y_m: np.ndarray, point: np.ndarray, zone: np.ndarray,
                         cap: float = FAR_M) -> np.ndarray:
    """Signed distance (m; positive inside, magnitudes above ``cap`` as ``cap``) of point ``point[m]`` to the
    boundary of zone ``zone[m]`` of ``index``, for every pair ``m``."""
    out = np.empty(np.size(point))
    x = np.ascontiguousarray(x_m, dtype=np.float64)
    y = np.ascontiguousarray(y_m, dtype=np.float64)
    point, zone = np.ascontiguousarray(point, dtype=np.int64), np.ascontiguousarray(zone, dtype=np.int64)
    cells = index._cells.arrays()
    split(out.size, lambda lo, hi: _dist.pair_signed_distance(x, y, point[lo:hi], zone[lo:hi], index._zone_grid,
                                                              index._zone_dims, index._zone_cbase, *cells, cap,
                                                              out[lo:hi]), min_units=1_024)
    return out


class SubjectZoneDistance:
    """Each subject's zone (shapely geometry in metres, or None), indexed for :meth:`distance`.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> zd = SubjectZoneDistance([shapely.box(0, 0, 10, 10), None])
    >>> zd.distance(np.array([0, 0, 1]), np.array([5.0, 13.0, 5.0]), np.array([5.0, 14.0, 5.0])).round(6).tolist()
    [0.0, 5.0, nan]
    """

    def __init__(self, geometries):
        geoms = np.asarray(list(geometries), dtype=object).reshape(-1)
        has = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
        #: Local zone of each subject code, -1 without one.
        self.local = np.full(geoms.size, -1, np.int64)
        self.local[has] = np.arange(int(has.sum()))
        self.index = ZoneIndex(geoms[has]) if has.any() else None

    def distance(self, code: np.ndarray, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Distance (m) of each position to its subject's zone: 0 inside or on its edge, NaN without a zone
        or a position (as ``shapely.distance`` gives it)."""
        code = np.asarray(code, np.int64)
        out = np.full(code.size, np.nan)
        zone = self.local[code] if code.size else np.zeros(0, np.int64)
        pi = np.flatnonzero(zone >= 0)
        if pi.size == 0:
            return out
        signed = pair_signed_distance(self.index, x_m, y_m, pi, zone[pi])
        out[pi] = np.maximum(-signed, 0.0)
        out[pi[np.isnan(signed)]] = np.nan
        return out


class ZonesWithin:
    """Zones (shapely geometries in metres) indexed to find, for many points, every zone within a distance.

    Candidates come from the zones grown by ``reach_m`` (plus a metre, so that the polygonal buffer's chords
    lose none), and each candidate's exact distance from the zone index's kernel decides.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> zw = ZonesWithin([shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)], reach_m=50.0)
    >>> fi, zi, dist = zw.within(np.array([5.0, 60.0]), np.array([5.0, 5.0]), np.array([50.0, 45.0]))
    >>> fi.tolist(), zi.tolist(), dist.round(6).tolist()
    ([0, 1], [0, 1], [0.0, 40.0])
    """

    def __init__(self, geometries, reach_m: float):
        geoms = np.asarray(list(geometries), dtype=object).reshape(-1)
        self.reach_m = float(reach_m)
        self.index = ZoneIndex(geoms) if geoms.size else None
        grown = [g.buffer(self.reach_m + 1.0) if g is not None and not shapely.is_empty(g) else None for g in geoms]
        self._grown = ZoneIndex(np.asarray(grown, dtype=object)) if geoms.size else None

    def within(self, x_m: np.ndarray, y_m: np.ndarray, radius_m: np.ndarray):
        """Pairs (point, zone) with the point within ``radius_m`` of the zone (per point, at most ``reach_m``),
        sorted by point, and their distances (m; 0 inside)."""
        empty = np.zeros(0, np.int64)
        if self.index is None or np.size(x_m) == 0:
            return empty, empty, np.zeros(0)
        fi, zi = self._grown.query_xy(x_m, y_m, predicate="intersects")
        dist = np.maximum(-pair_signed_distance(self.index, x_m, y_m, fi, zi), 0.0)
        keep = dist <= np.minimum(np.asarray(radius_m, dtype=np.float64)[fi], self.reach_m)
        return fi[keep], zi[keep], dist[keep]
