"""Tracks of one or many people, as batch functions over arrays: fusion (the causal Kalman filter), stay
points (Li et al. 2008, as trackintel) and encounters between people.
May import: geomon.geo, geomon.io, geomon.rules, geomon.schema, geomon.errors, geomon.kernels.
"""

from geomon.tracks.encounters import encounters
from geomon.tracks.fusion import fuse
from geomon.tracks.stays import staypoints

__all__ = ["encounters", "fuse", "staypoints"]
