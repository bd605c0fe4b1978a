"""The DuckDB store: alerts and their lifecycle, the audit log, quarantine, runs, checkpoints, stays,
tracks, purges. The only wing that imports duckdb for the engine's outputs.
May import: geomon.io (pseudonyms), geomon.schema, geomon.errors. Imported only by geomon.run and geomon.office.
"""

from geomon.store.alert_store import AlertStore, LifecycleError

__all__ = ["AlertStore", "LifecycleError"]
