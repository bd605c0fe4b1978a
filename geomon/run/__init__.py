"""Drivers that feed the engine and write the store: batch replay, the live watch with its checkpoints,
the meeting alerts of recorded files, and the replay on Dask.
May import: every wing but geomon.sim (and never geomon.cli).
"""

from geomon.run.replay import ReplayResult, replay

__all__ = ["ReplayResult", "replay"]
