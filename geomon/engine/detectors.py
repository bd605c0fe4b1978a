"""The built-in detectors, found and registered, and how the Monitor turns names into detector classes.

Importing this module imports every module of :mod:`geomon.engine`, and each detector module registers
its detector (:func:`geomon.engine.contract.register`), so a new built-in detector is its own module and
nothing here changes. The built-in ones:

- ``geofence`` (:mod:`geomon.engine.geofence`): permitted-area exits, forbidden-zone entries; always on;
- ``lost_contact`` (:mod:`geomon.engine.lost_contact`): lost contact (失联), stuck device, location
  degraded, on every admitted fix (a vague cell fix is contact);
- ``checkins`` (:mod:`geomon.engine.checkins`): missed daily check-ins and check-ins from outside the
  permitted area, on every admitted fix; on request (a deployment without app check-ins would get a
  missed check-in per subject per day);
- ``stays`` (:mod:`geomon.engine.stays`): stays (kept for reports), stays at places of concern and
  unexplained night stays, on the fused positions of decidable fixes;
- ``night`` (:mod:`geomon.engine.night`): curfew and night activity, on the same fused positions;
- ``meetings`` (:mod:`geomon.engine.meetings`): frequent contact with persons of concern and victim
  protection, on everyone's fused tracks; on when a concern list or protection orders are given.

All share the Monitor's threshold sets (profiles and special periods, per fix) and one event-time
watermark: the newest admitted fix, or the caller's ``now_ms`` when live, so events that need no fix
(silence, a deadline, a night window opening) are noticed in a replay exactly as in live operation.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from geomon.engine.contract import REGISTRY, Detector

__all__ = ["ALIASES", "DEFAULT_DETECTORS", "DETECTORS", "canonical_names", "detector_names", "resolve_detectors"]

for _module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if _module.name not in ("detectors", "monitor"):   # this module, and the Monitor that imports it
        importlib.import_module(f"geomon.engine.{_module.name}")

#: The built-in detectors a Monitor runs on request, beside the geofence (always on) and the meeting watch (on
#: with a concern list or protection orders), in the order they run.
DETECTORS = tuple(name for name, cls in REGISTRY.items() if cls.selectable and cls.__module__.startswith("geomon."))
#: Those it runs when none are named. Stays and night are on since their labelled simulations score precision
#: >= 0.95 in every noise regime (docs/performance.md, "Behaviour detectors"); they need places of concern and
#: home zones.
DEFAULT_DETECTORS = tuple(name for name in DETECTORS if REGISTRY[name].on_by_default)
#: Former names, still accepted: ``contact`` said both device silence and meeting people; ``dwell`` was a
#: third word for stays.
ALIASES = {"contact": "lost_contact", "dwell": "stays"}


def canonical_names(names) -> tuple[str, ...]:
    """Detector names with the former names replaced (``contact`` -> ``lost_contact``, ``dwell`` -> ``stays``)."""
    return tuple(ALIASES.get(n, n) if isinstance(n, str) else n for n in names)


def detector_names(detectors) -> list[str]:
    """The canonical names of detectors given by name or class, sorted (what a run's configuration hash covers)."""
    return sorted(canonical_names(d if isinstance(d, str) else d.name for d in detectors))


def resolve_detectors(detectors) -> list[type[Detector]]:
    """Detector classes for names (or classes), in registry order (the order they run); an unknown name is an
    error that lists the known ones."""
    chosen: list[type[Detector]] = []
    for item in canonical_names(detectors):
        if isinstance(item, type) and issubclass(item, Detector):
            cls = item
        elif item in REGISTRY and REGISTRY[item].selectable:
            cls = REGISTRY[item]
        else:
            known = [n for n, c in REGISTRY.items() if c.selectable]
            raise ValueError(f"unknown detectors [{item!r}]; expected some of {known}")
        if cls not in chosen:
            chosen.append(cls)
    order = {cls: i for i, cls in enumerate(REGISTRY.values())}
    return sorted(chosen, key=lambda c: order.get(c, len(order)))
