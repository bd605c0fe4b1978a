"""The detector contract: the built-in detectors' declarations, and what the registry refuses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from geomon.engine.contract import REGISTRY, Detector, global_state, register, state_fields, subject_state
from geomon.engine.detectors import ALIASES, DEFAULT_DETECTORS, DETECTORS, resolve_detectors
from geomon.rules.load import THRESHOLD_KEYS

BUILT_IN = ("geofence", "lost_contact", "checkins", "stays", "night", "meetings")
#: Rule keys read outside the detectors: which fixes may decide (the Monitor) and the service levels (the store).
READ_ELSEWHERE = {"max_accuracy_m", "acknowledge_within_s", "dispatch_within_s"}


def test_the_built_in_detectors_declare_what_they_read_and_emit():
    kinds = []
    for name in BUILT_IN:
        cls = REGISTRY[name]
        assert cls.name == name and cls.kinds and cls.reads in ("admitted", "fused", "tracks")
        assert set(cls.rule_keys) <= THRESHOLD_KEYS, f"{name} reads keys without a packaged default"
        assert state_fields(cls.State) or dataclasses.fields(cls.State)   # every field declared (raises if not)
        kinds += cls.kinds
    assert len(kinds) == len(set(kinds)), "two detectors emit the same alert kind"


def test_every_packaged_rule_key_is_read_by_a_detector_or_named_as_read_elsewhere():
    read = {k for name in BUILT_IN for k in REGISTRY[name].rule_keys} | READ_ELSEWHERE
    assert THRESHOLD_KEYS - read == set(), "a packaged key nothing declares it reads"


def test_names_resolve_in_run_order_and_former_names_still_work():
    chosen = [c.name for c in resolve_detectors(("night", "dwell", "contact"))]
    assert chosen == [n for n in DETECTORS if n in ("lost_contact", "stays", "night")]   # registry order
    assert set(DEFAULT_DETECTORS) == {"lost_contact", "stays", "night"}
    assert set(ALIASES.values()) <= set(DETECTORS) and set(DEFAULT_DETECTORS) <= set(DETECTORS)
    with pytest.raises(ValueError, match="unknown detectors.*'geofence'"):
        resolve_detectors(("geofence",))   # always on: not chosen by name
    with pytest.raises(ValueError, match="unknown detectors.*'nope'"):
        resolve_detectors(("nope",))


def test_the_registry_refuses_incomplete_declarations():
    @dataclasses.dataclass
    class ExampleState:
        rows: np.ndarray = subject_state()
        count: int = global_state()

    class NoKinds(Detector):
        name, State = "no_kinds_example", ExampleState

    with pytest.raises(ValueError, match="kinds"):
        register(NoKinds)

    class Taken(Detector):
        name, kinds, State = "night", ("x",), ExampleState

    with pytest.raises(ValueError, match="taken"):
        register(Taken)

    @dataclasses.dataclass
    class Undeclared:
        rows: np.ndarray = None

    with pytest.raises(TypeError, match="neither subject_state"):
        state_fields(Undeclared)

    class BadKey(Detector):
        name, kinds, State, rule_keys = "bad_key_example", ("y",), ExampleState, ("speed",)

    with pytest.raises(ValueError, match="unit suffix"):
        register(BadKey)
    assert "no_kinds_example" not in REGISTRY and "bad_key_example" not in REGISTRY
