"""Labelled simulations of every behaviour detector, run through the Monitor and scored.

:func:`labelled_run` builds one family's labelled simulation on a
:func:`geomon.sim.scenarios.scenario` of one noise regime, replays it through
a :class:`geomon.engine.monitor.Monitor` running that family's detector, and scores
the alerts of the family's kinds against the labels with
:func:`geomon.office.evaluate.score`:

- ``contact``: outages, stuck devices and shielded receivers
  (:mod:`geomon.sim.lost_contact`), a third of the subjects each; ``degraded_s``
  is lowered to 1800 s so the 45-90 minute shieldings are events;
- ``checkins``: one app check-in per subject and local day, 20 % missed,
  10 % from 300 m outside the permitted area (:mod:`geomon.sim.checkins`);
- ``dwell``: one stay per subject and day at a place of concern, 3-40
  minutes, so some are shorter than ``dwell_s`` (:mod:`geomon.sim.stays`);
  the subject jumps there (a device off on the way) and the filter needs
  three fixes to follow, so no stay lasts within 2 minutes above a
  ``dwell_s`` (or 30 s below): no label hinges on those fixes;
- ``night``: home zones for the routine subjects and, each night, outings by
  40 % of them, 20 minutes to 2.5 hours, 400 m to 3 km from home (clear of
  every away threshold, 180-330 m, so no label hinges on a few metres)
  (:mod:`geomon.sim.night`), so some stay within the grace or below the
  floors; routine late returns count too, and long stays away from home in
  the night window (``night_stay``, from the dwell walk).

The labels are what the rules imply for the true events (exact with
``augmented`` noise, 0.3 m); noisier regimes show what noise costs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.io.load import load_subjects, load_zones
from geomon.office.evaluate import KindScore, score
from geomon.rules.load import default_rules
from geomon.sim.checkins import add_checkins
from geomon.sim.lost_contact import inject, random_plan
from geomon.sim.night import add_night_outings, destination, night_truth, safe_area, with_homes
from geomon.sim.scenarios import scenario
from geomon.sim.stays import add_dwells

__all__ = ["FAMILIES", "FAMILY_KINDS", "LabelledRun", "labelled_run"]

#: Detector families and the alert kinds each is scored on.
FAMILY_KINDS = {
    "contact": ("lost_contact", "device_stuck", "location_degraded"),
    "checkins": ("missed_checkin", "checkin_outside"),
    "dwell": ("dwell_concern",),
    "night": ("curfew_breach", "night_activity", "night_stay"),
}
FAMILIES = tuple(FAMILY_KINDS)
_DAY_MS = 86_400_000
_MIN_MS = 60_000
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class LabelledRun:
    """One family's labelled simulation, replayed and scored."""

    family: str
    noise: str
    n_subjects: int
    hours: float
    n_fixes: int
    truth: pa.Table
    alerts: pa.Table
    scores: list[KindScore]

    @property
    def subject_days(self) -> float:
        return self.n_subjects * self.hours / 24.0


def _contact(sc, rng):
    rules = default_rules()
    rules = dataclasses.replace(rules, profiles={k: {**v, "degraded_s": 1800} for k, v in rules.profiles.items()})
    plan = random_plan(sc.fixes, rng, per_kind=max(1, len(sc.subjects) // 3))
    fixes, truth = inject(sc.fixes, sc.subjects, plan, rules=rules, seed=int(rng.integers(1 << 31)))
    return fixes, truth, sc.zones, sc.subjects, rules


def _checkins(sc, rng):
    fixes, truth = add_checkins(sc.fixes, sc.subjects, sc.zone_geometry_m["county"], sc.frame,
                                seed=int(rng.integers(1 << 31)), p_miss=0.2, p_outside=0.1)
    return fixes, truth, sc.zones, sc.subjects, None


def _clear_of(rng, limits_ms) -> int:
    """A stay of 3-40 minutes not within 30 s below or 2 minutes above any limit (the jump there costs fixes)."""
    while True:
        d = int(rng.uniform(3, 40) * _MIN_MS)
        if not any(-30_000 <= d - lim <= 120_000 for lim in limits_ms):
            return d


def _dwell(sc, rng):
    places = sorted(z for z in sc.zone_geometry_m if z != "county")
    rules = default_rules()
    limits_ms = [rules.profile(p)["dwell_s"] * 1000 for p in ("strict", "ordinary")]
    plan = []
    for s in sc.subjects.column("subject_id").to_pylist():
        for day in range(int(np.ceil((sc.end_ms - sc.start_ms) / _DAY_MS))):
            start = sc.start_ms + day * _DAY_MS + int(rng.uniform(9.0, 17.0) * _HOUR_MS)
            if start + 2 * _HOUR_MS < sc.end_ms:
                plan.append((s, places[int(rng.integers(len(places)))], start, _clear_of(rng, limits_ms)))
    fixes, truth = add_dwells(sc.fixes, sc.subjects, sc.zone_geometry_m, sc.frame, plan,
                              seed=int(rng.integers(1 << 31)))
    return fixes, truth, sc.zones, sc.subjects, None


def _night(sc, rng):
    homes = with_homes(sc)
    safe = safe_area(sc)
    plan = []
    for s in sorted(homes.centre_m):
        for day in range(int(np.ceil((sc.end_ms - sc.start_ms) / _DAY_MS))):
            start = sc.start_ms + day * _DAY_MS + int(rng.uniform(0.5, 3.0) * _HOUR_MS)
            duration = int(rng.uniform(20, 150) * _MIN_MS)
            distance = float(np.exp(rng.uniform(np.log(400.0), np.log(3000.0))))
            distance = min(distance, duration / 1000 * 10.0 / 2.5)   # leave time to stay between the legs
            if rng.random() >= 0.4 or start + duration > sc.end_ms:
                continue
            try:
                destination(np.random.default_rng(0), safe, homes.centre_m[s], distance)
            except ValueError:
                continue   # no clear destination that far from this home
            plan.append((s, start, duration, distance))
    fixes, true_x, true_y = add_night_outings(sc, homes, plan, seed=int(rng.integers(1 << 31)))
    concern = [g for z, g in sc.zone_geometry_m.items() if z != "county"]
    truth = night_truth(fixes, true_x, true_y, homes, concern_m=concern)
    return fixes, truth, homes.zones, homes.subjects, None


_BUILD = {"contact": _contact, "checkins": _checkins, "dwell": _dwell, "night": _night}
#: The Monitor's detectors for each family (night_stay comes from the dwell walk).
_DETECTORS = {"contact": ("lost_contact",), "checkins": ("lost_contact", "checkins"),
              "dwell": ("lost_contact", "stays"), "night": ("lost_contact", "night", "stays")}


def labelled_run(family: str, noise: str = "augmented", *, n_subjects: int = 20, hours: float = 48.0,
                 seed: int = 0, interval_s: float = 15.0, slack_s: float = 120.0) -> LabelledRun:
    """Simulate, label, replay and score one detector family.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    noise : str
        Scenario of :mod:`geomon.sim.scenarios` whose subjects all live a
        routine in one noise regime: ``augmented`` (0.3 m, noise off in
        effect), ``open_sky``, ``urban`` (multipath) or ``indoor`` (cell fixes
        during stays).
    n_subjects, hours, seed, interval_s
        Size and seed of the scenario.
    slack_s : float
        Tolerance of an alert's onset around its label (:func:`geomon.office.evaluate.score`).
    """
    if family not in _BUILD:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if noise not in ("augmented", "open_sky", "urban", "indoor"):
        raise ValueError(f"noise must be augmented, open_sky, urban or indoor, not {noise!r}")
    sc = scenario(noise, n_subjects=n_subjects, hours=hours, seed=seed, interval_s=interval_s)
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    fixes, truth, zones, subjects, rules = _BUILD[family](sc, rng)
    monitor = Monitor(load_zones(zones), load_subjects(subjects), rules, frame=sc.frame,
                      detectors=_DETECTORS[family])
    alerts = fold_alerts(monitor.process(fixes))
    kinds = pa.array(FAMILY_KINDS[family])
    alerts = alerts.filter(pc.is_in(alerts.column("kind"), kinds))
    truth = truth.filter(pc.is_in(truth.column("kind"), kinds))
    by_kind = {s.kind: s for s in score(alerts, truth, slack_s=slack_s)}
    empty = np.zeros(0)
    scores = [by_kind.get(k, KindScore(k, 0, 0, 0, empty)) for k in FAMILY_KINDS[family]]
    return LabelledRun(family, noise, n_subjects, hours, fixes.num_rows, truth, alerts, scores)
