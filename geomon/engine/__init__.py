"""The Monitor and its detectors: typed batches in, alert rows out, state in named arrays. Every
detector follows one contract (geomon.engine.contract) and is found in one registry.
May import: geomon.tracks, geomon.rules, geomon.geo, geomon.io, geomon.schema, geomon.errors, geomon.kernels;
never the store.
"""

from geomon.engine.monitor import Monitor, fold_alerts

__all__ = ["Monitor", "fold_alerts"]
