"""Inputs and outputs as tables: loaders of fixes, subjects and zones with their quarantine, the accuracy kinds
devices report (converted on load to per-axis sigma), Parquet streaming of inputs too large to hold, the camera
layer, and pseudonymised exports.
May import: geomon.geo, geomon.rules, geomon.schema, geomon.errors, geomon.kernels (never the engine or the store).
"""

from geomon.io.load import (
    ACCURACY_KINDS,
    FixLoad,
    SubjectLoad,
    ZoneLoad,
    load_fixes,
    load_subjects,
    load_zones,
    sigma_from_accuracy,
)

__all__ = ["ACCURACY_KINDS", "FixLoad", "SubjectLoad", "ZoneLoad", "load_fixes", "load_subjects", "load_zones",
           "sigma_from_accuracy"]
