"""Inputs and outputs as tables: loaders of fixes, subjects and zones with their quarantine, Parquet
streaming of inputs too large to hold, the camera layer, and pseudonymised exports.
May import: geomon.geo, geomon.rules, geomon.schema, geomon.errors, geomon.kernels (never the engine or the store).
"""

from geomon.io.load import FixLoad, SubjectLoad, ZoneLoad, load_fixes, load_subjects, load_zones

__all__ = ["FixLoad", "SubjectLoad", "ZoneLoad", "load_fixes", "load_subjects", "load_zones"]
