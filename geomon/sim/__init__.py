"""The simulator of a supervised county with exact ground truth, and the small labelled scenarios that
tests and benchmarks judge the detectors on. Never imported by the library's other wings.
May import: every wing but geomon.run (and never geomon.cli).
"""

from geomon.sim.simulate import simulate

__all__ = ["simulate"]
