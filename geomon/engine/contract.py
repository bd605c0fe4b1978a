"""The detector contract: what every detector of the engine declares and does, and the registry that finds them.

A detector is a class that declares

- ``name``: its key in the registry and in ``Monitor(detectors=...)`` / ``geomon replay --detectors``;
- ``kinds``: the alert kinds it emits (rows of :data:`geomon.schema.ALERT_SCHEMA`);
- ``rule_keys``: the rule keys it reads, each unit-suffixed; their defaults live once, in the packaged rules
  file (``geomon/rules/default.toml``), and the detector reads them only through the loaded rules
  (:meth:`geomon.rules.periods.ThresholdSets.per_set`);
- ``reads``: which typed batch it steps over (``"admitted"``: every admitted fix, vague ones included;
  ``"fused"``: the fused, decidable fixes; ``"tracks"``: the fused tracks of subjects and other people);
- ``State``: a dataclass of named arrays (:func:`subject_state` rows per subject, :func:`global_state` the
  rest). The checkpoint saves and restores exactly these fields (:mod:`geomon.run.checkpoint`), so state
  cannot be forgotten and a renamed field changes the checkpoint's layout, which then refuses an old
  checkpoint by name instead of misreading it;

and implements ``from_context(ctx)`` (build it for the Monitor's subjects, zones and rules) and
``detect(batch)`` (advance over one :class:`Batch`, return its alert events). :func:`register` adds a class
to the registry; the Monitor loops over the detectors it was asked for and knows none by name.

Adding a detector is: its kernel (``kernels/``), its module (a :class:`Detector` subclass decorated with
:func:`register`), its rules entries (``geomon/rules/default.toml`` and ``docs/rules.md``) and its tests.
``tests/engine/test_example_detector.py`` registers one (speeding) from outside the engine.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from geomon.rules.load import declare_rule_keys

__all__ = ["AdmittedFixes", "Batch", "Detector", "EngineContext", "FusedFixes", "REGISTRY", "TrackPoints",
           "add_seconds", "global_state", "register", "state_fields", "subject_state"]

#: Every registered detector class, by name, in the order they were registered (the order the Monitor runs them).
REGISTRY: dict[str, type[Detector]] = {}

_SCOPE = "geomon_scope"
_WHOLE = "geomon_whole_columns"


def subject_state(*, whole_columns: tuple[int, ...] = ()):
    """A state field of one row per subject (first axis: subject code), 64-bit values.

    ``whole_columns``: columns that change for every subject at every tick (a clock that follows the
    watermark); the checkpoint saves them whole and leaves them out of the per-row comparison.
    """
    return dataclasses.field(metadata={_SCOPE: "subject", _WHOLE: tuple(whole_columns)})


def global_state():
    """A state field that is not per subject: an array of any shape, or an integer."""
    return dataclasses.field(metadata={_SCOPE: "global"})


def state_fields(state) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(name, scope, whole_columns)`` of each declared field of a state dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(state):
        scope = f.metadata.get(_SCOPE)
        if scope is None:
            raise TypeError(f"{type(state).__name__}.{f.name} is neither subject_state() nor global_state()")
        out.append((f.name, scope, f.metadata.get(_WHOLE, ())))
    return out


@dataclass(frozen=True)
class AdmittedFixes:
    """Fixes the Monitor admitted, sorted by (subject code, time): positions as reported.

    ``raw_x_m``/``raw_y_m`` are the reported positions in the local metric frame (m), ``lon``/``lat`` the
    same in degrees; ``source`` indexes :data:`geomon.tracks.fusion.SOURCE_CODE`; ``tset`` is the threshold
    set of each fix (:class:`geomon.rules.periods.ThresholdSets`).
    """

    code: np.ndarray
    t_ms: np.ndarray
    raw_x_m: np.ndarray
    raw_y_m: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    accuracy_m: np.ndarray
    source: np.ndarray
    tset: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ms.size)

    def take(self, index) -> AdmittedFixes:
        """The fixes at ``index`` (a slice, mask or index array)."""
        return AdmittedFixes(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class FusedFixes:
    """The decidable fixes after fusion, sorted by (subject code, time).

    ``fused_x_m``/``fused_y_m`` are the causal fused positions (m) and ``raw_x_m``/``raw_y_m`` the reported
    ones; ``var_x``/``var_y``/``cov_xy`` (m²) the fused covariance (it covers the chance that the fix is
    multipath), ``p_outlier`` that chance; ``sigma_m`` the trusted 1-sigma
    (:func:`geomon.tracks.fusion.trusted_sigma_m`).
    """

    code: np.ndarray
    t_ms: np.ndarray
    fused_x_m: np.ndarray
    fused_y_m: np.ndarray
    raw_x_m: np.ndarray
    raw_y_m: np.ndarray
    var_x: np.ndarray
    var_y: np.ndarray
    cov_xy: np.ndarray
    p_outlier: np.ndarray
    accuracy_m: np.ndarray
    tset: np.ndarray
    sigma_m: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ms.size)

    @classmethod
    def empty(cls) -> FusedFixes:
        """No decidable fix (the watermark may still move)."""
        z = np.zeros(0)
        i = np.zeros(0, np.int64)
        return cls(code=i, t_ms=i, fused_x_m=z, fused_y_m=z, raw_x_m=z, raw_y_m=z, var_x=z, var_y=z, cov_xy=z,
                   p_outlier=z, accuracy_m=z, tset=i, sigma_m=z)


@dataclass(frozen=True)
class TrackPoints:
    """Fused positions with a finite value, for the meeting detectors: ``code`` numbers subjects first, then
    the other people (persons of concern, protected persons) from the number of subjects on."""

    code: np.ndarray
    t_ms: np.ndarray
    fused_x_m: np.ndarray
    fused_y_m: np.ndarray
    sigma_m: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ms.size)

    @classmethod
    def concat(cls, parts: list[TrackPoints]) -> TrackPoints:
        if not parts:
            z, i = np.zeros(0), np.zeros(0, np.int64)
            return cls(code=i, t_ms=i, fused_x_m=z, fused_y_m=z, sigma_m=z)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))


@dataclass(frozen=True)
class Batch:
    """One micro-batch as the detectors see it.

    ``watermark_ms`` is the event time up to which the stream is complete (the newest admitted fix, or the
    caller's ``now_ms`` when live); ``now_ms`` is what the caller passed (None in a replay).
    """

    admitted: AdmittedFixes
    fused: FusedFixes
    tracks: TrackPoints
    watermark_ms: int
    now_ms: int | None
    run_id: str


@dataclass(frozen=True)
class EngineContext:
    """What a detector may know of the Monitor that builds it: subjects, zones, rules and local time.

    ``sets`` resolves the rules per subject and period; ``home_geometry_m``/``work_geometry_m`` are per
    subject code (None: none); ``permitted_of`` the local index of each subject's permitted area in
    ``zones.permitted`` (-1: none).
    """

    sets: Any
    subject_ids: np.ndarray
    subject_level: np.ndarray
    subject_office: np.ndarray
    zones: Any
    home_geometry_m: list
    work_geometry_m: list
    permitted_of: np.ndarray
    tz: str
    max_gap_s: float
    options: dict

    @property
    def subjects(self) -> tuple:
        """``(sets, subject_ids, subject_level, subject_office)``, as the subject detectors take them."""
        return self.sets, self.subject_ids, self.subject_level, self.subject_office


def add_seconds(timings: dict[str, float], step: str, since: float) -> float:
    """Add the time since ``since`` (``time.perf_counter``) to ``timings[step]``; return now."""
    now = time.perf_counter()
    timings[step] = timings.get(step, 0.0) + (now - since)
    return now


class Detector:
    """Base of every detector: the declarations (class attributes) and the two methods of the contract."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    rule_keys: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[str] = "fused"
    #: Chosen by name in ``Monitor(detectors=...)``; False for those the Monitor runs itself (the geofence
    #: always, the meeting watch when given persons of concern or protection orders).
    selectable: ClassVar[bool] = True
    #: Among the detectors a Monitor runs when none are named.
    on_by_default: ClassVar[bool] = False
    #: Names of the row tables other than alerts that :meth:`take_outputs` hands out (e.g. ``("stays",)``).
    outputs: ClassVar[tuple[str, ...]] = ()
    #: The dataclass of this detector's state; an instance lives in ``self.state``.
    State: ClassVar[type] = type(None)
    state: Any

    @classmethod
    def from_context(cls, ctx: EngineContext) -> Detector:
        """Build the detector for the Monitor's subjects, zones and rules."""
        raise NotImplementedError

    def detect(self, batch: Batch) -> pa.Table:
        """Advance over one batch; return alert events in :data:`geomon.schema.ALERT_SCHEMA`."""
        raise NotImplementedError

    def take_outputs(self) -> dict[str, pa.Table]:
        """Rows other than alerts produced since the last call, one table per name of :attr:`outputs`."""
        return {}

    def holds_outputs(self) -> bool:
        """Whether rows wait for :meth:`take_outputs` (a checkpoint must not be taken before they are stored)."""
        return False


_READS = ("admitted", "fused", "tracks")


def register(cls: type[Detector]) -> type[Detector]:
    """Add a detector class to :data:`REGISTRY` (a class decorator); checks its declarations first.

    Its rule keys become valid in rules files (:func:`geomon.rules.load.declare_rule_keys`); a key the
    packaged file does not set has no default, so the rules file a deployment loads must set it.
    """
    if not cls.name or cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} is empty or taken by {REGISTRY.get(cls.name)}")
    if cls.reads not in _READS:
        raise ValueError(f"detector {cls.name!r} reads {cls.reads!r}; expected one of {_READS}")
    if not dataclasses.is_dataclass(cls.State):
        raise TypeError(f"detector {cls.name!r} declares no State dataclass")
    bad = [k for k in cls.rule_keys if not isinstance(k, str)]
    if bad or not cls.kinds:
        raise ValueError(f"detector {cls.name!r}: rule_keys must be names and kinds must not be empty")
    declare_rule_keys(cls.rule_keys)   # a rules file may now set them
    REGISTRY[cls.name] = cls
    return cls
