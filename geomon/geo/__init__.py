"""Geography in metres: the local metric frame (pyproj), Chinese map datums, point-in-polygon and zone
indexes on numba kernels, and zone schedules in local time.
May import: geomon.errors, geomon.schema, geomon.kernels.
"""

from geomon.geo.crs import LocalFrame
from geomon.geo.geometry import ZoneIndex, contains_xy, intersects_xy, signed_distance_xy

__all__ = ["LocalFrame", "ZoneIndex", "contains_xy", "intersects_xy", "signed_distance_xy"]
