"""geomon's benchmark suites: geomon timed beside its peers, from one registry.

Run ``python -m benchmarks --help`` from the repository root. Each suite is a
subcommand (``pip`` for point-in-polygon); every suite reads the cases it times
from :mod:`benchmarks.registry`, the same table the tests compare against.
"""
