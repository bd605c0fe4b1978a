"""Shapely-based stand-ins for geomon's point-in-polygon API, for ``--stand-in`` runs only.

They have the signatures and results of ``geomon.contains_xy``,
``geomon.intersects_xy`` and ``geomon.ZoneIndex`` so the harness runs end to end
before (or without) the fast path. Their timings say nothing about geomon; every
result they produce is flagged ``stand_in`` in the JSON and the printed table.
"""

from __future__ import annotations

import numpy as np
import shapely


def contains_xy(geom, x, y) -> np.ndarray:
    shapely.prepare(geom)
    return shapely.contains_xy(geom, x, y)


def intersects_xy(geom, x, y) -> np.ndarray:
    shapely.prepare(geom)
    return shapely.intersects_xy(geom, x, y)


class ZoneIndex:
    """STRtree over the zones; ``query_xy`` returns ``(point_index, zone_index)``."""

    _TREE_PREDICATE = {"intersects": "intersects", "contains": "within"}

    def __init__(self, geoms):
        self._tree = shapely.STRtree(np.asarray(geoms, dtype=object))

    def query_xy(self, x, y, predicate: str = "intersects") -> tuple[np.ndarray, np.ndarray]:
        pairs = self._tree.query(shapely.points(x, y), predicate=self._TREE_PREDICATE[predicate])
        return pairs[0], pairs[1]
