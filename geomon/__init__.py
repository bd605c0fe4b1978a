"""geomon: electronic monitoring for community supervision.

The names below are the public API for integrators; everything else is private
and may change. See README.md and docs/ for examples. Heavy modules load on first
use, so ``import geomon`` stays cheap.
"""

from __future__ import annotations

import importlib

from geomon.errors import GeomonError, InputError

__version__ = "0.1.0"

_LAZY = {
    "ZoneIndex": "geomon.geo.geometry",
    "contains_xy": "geomon.geo.geometry",
    "encounters": "geomon.tracks.encounters",
    "frequent_contacts": "geomon.engine.frequent_contact",
    "fuse": "geomon.tracks.fusion",
    "intersects_xy": "geomon.geo.geometry",
    "signed_distance_xy": "geomon.geo.geometry",
    "staypoints": "geomon.tracks.stays",
    "victim_alerts": "geomon.engine.victims",
}

__all__ = ["GeomonError", "InputError", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geomon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
