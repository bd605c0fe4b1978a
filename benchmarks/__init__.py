"""geomon's benchmark suites: geomon timed beside its peers, from one registry.

Run ``python -m benchmarks --help`` from the repository root. Each suite is a
subcommand: ``pip`` (point-in-polygon) reads the cases it times from
:mod:`benchmarks.registry`, the same table the tests compare against;
``fusion`` and ``alerts`` score geomon against a simulator's truth, beside the
peers their modules name (filterpy, raw point-in-polygon).
"""
