"""Inject labelled contact events into simulated fixes: outages, a stuck device, a shielded receiver.

:func:`inject` edits a fixes table (as :func:`geomon.sim.scenarios.scenario`
or :func:`geomon.sim.simulate.simulate` make them) by a plan of events and returns
the edited fixes with the ground truth of the alerts the rules imply, in
:data:`geomon.sim.truth.TRUTH_SCHEMA` (``zone_id`` empty: contact events have
no zone):

- ``outage``: the subject's fixes in ``[start, start + duration)`` are
  dropped. Lost contact is true from ``last fix before + lost_contact_s`` to
  the first fix after, if the gap exceeds the subject's threshold.
- ``stuck``: the subject's satellite fixes in the window all repeat the first
  one's coordinates exactly. A stuck device is true from that first fix to
  the first satellite fix after the window, if the run has ``stuck_count``
  fixes spanning ``stuck_s``.
- ``shield``: the subject's satellite fixes in the window become cell fixes
  (accuracy 300 m, 300 m of scatter about the true position). Location
  degraded is true from ``last satellite fix + degraded_s`` to the first
  satellite fix after the window, if a fix confirms it inside the window.

Thresholds are the subject's level profile's (no special periods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.rules.load import Rules, default_rules
from geomon.sim.truth import event_truth

__all__ = ["ContactEvent", "inject", "random_plan"]

_KIND = {"outage": "lost_contact", "stuck": "device_stuck", "shield": "location_degraded"}


@dataclass(frozen=True)
class ContactEvent:
    """One injected event: ``kind`` (outage, stuck or shield), subject, window start (ms) and length (ms)."""

    kind: str
    subject_id: str
    start_ms: int
    duration_ms: int


def _thresholds_ms(rules: Rules, level: str) -> dict:
    p = rules.profile(level)
    return {"lost": int(p["lost_contact_s"] * 1000), "degraded": int(p["degraded_s"] * 1000),
            "stuck_n": int(p["stuck_count"]), "stuck": int(p["stuck_s"] * 1000)}


def inject(fixes: pa.Table, subjects: pa.Table, plan, *, rules: Rules | None = None,
           seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Apply ``plan`` (ContactEvents, non-overlapping per subject) to ``fixes``; return ``(fixes, truth)``."""
    rules = rules or default_rules()
    rng = np.random.default_rng(seed)
    level = dict(zip(subjects.column("subject_id").to_pylist(), subjects.column("level").to_pylist()))
    sid = np.asarray(fixes.column("subject_id").to_pylist(), dtype=object)
    t = fixes.column("ts").cast(pa.int64()).to_numpy()
    lon = fixes.column("lon").to_numpy().copy()
    lat = fixes.column("lat").to_numpy().copy()
    source = np.asarray(fixes.column("source").to_pylist(), dtype=object)
    acc = fixes.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)
    keep = np.ones(t.size, bool)
    truth = []
    for ev in plan:
        th = _thresholds_ms(rules, level[ev.subject_id])
        mine = sid == ev.subject_id
        inside = mine & (t >= ev.start_ms) & (t < ev.start_ms + ev.duration_ms)
        before = np.flatnonzero(mine & (t < ev.start_ms))
        after = np.flatnonzero(mine & (t >= ev.start_ms + ev.duration_ms))
        if ev.kind == "outage":
            keep &= ~inside
            if before.size and after.size and t[after[0]] - t[before[-1]] > th["lost"]:
                truth.append((ev.subject_id, _KIND[ev.kind], t[before[-1]] + th["lost"], t[after[0]]))
        elif ev.kind == "stuck":
            run = np.flatnonzero(inside & (source == "gnss"))
            if run.size:
                lon[run], lat[run] = lon[run[0]], lat[run[0]]
                later = after[source[after] == "gnss"]
                if run.size >= th["stuck_n"] and t[run[-1]] - t[run[0]] >= th["stuck"] and later.size:
                    truth.append((ev.subject_id, _KIND[ev.kind], t[run[0]], t[later[0]]))
        elif ev.kind == "shield":
            hit = np.flatnonzero(inside & (source == "gnss"))
            source[hit] = "cell"
            acc[hit] = 300.0
            scatter = rng.normal(0.0, 300.0 / 111_000.0, (hit.size, 2))
            lon[hit] += scatter[:, 0] / np.cos(np.radians(lat[hit]))
            lat[hit] += scatter[:, 1]
        else:
            raise ValueError(f"unknown contact event kind {ev.kind!r}; expected outage, stuck or shield")
    out = fixes.set_column(fixes.schema.get_field_index("lon"), "lon", pa.array(lon))
    out = out.set_column(out.schema.get_field_index("lat"), "lat", pa.array(lat))
    out = out.set_column(out.schema.get_field_index("source"), "source", pa.array(source, pa.string()))
    out = out.set_column(out.schema.get_field_index("accuracy_m"), "accuracy_m", pa.array(acc, pa.float32()))
    out = out.filter(pa.array(keep))
    table = event_truth(truth + degraded_truth(out, level, rules))
    return out, table


def degraded_truth(fixes: pa.Table, level: dict, rules: Rules) -> list[tuple]:
    """Every ``location_degraded`` a stream implies, shielded or not, as ``(subject, kind, start, end)`` rows.

    For each subject (fixes sorted by subject, then time): from each satellite
    fix (or the first fix, when that is not one) the next satellite fix is
    more than ``degraded_s`` away and some fix comes strictly between that
    moment and it: degraded from that moment to the next satellite fix (or
    the subject's last fix). A phone indoors on cell fixes for hours counts
    as much as a shielded receiver.
    """
    sid = np.asarray(fixes.column("subject_id").to_pylist(), dtype=object)
    t = fixes.column("ts").cast(pa.int64()).to_numpy()
    sat = np.asarray(fixes.column("source").to_pylist(), dtype=object) == "gnss"
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        limit = int(rules.profile(level[sid[a]])["degraded_s"]) * 1000
        anchors = np.flatnonzero(sat[a:b]) + a
        if not sat[a]:
            anchors = np.r_[a, anchors]
        for k, i in enumerate(anchors):
            onset = int(t[i]) + limit
            end = int(t[anchors[k + 1]]) if k + 1 < anchors.size else None
            stop = b if end is None else anchors[k + 1]
            if (t[i + 1:stop] > onset).any():
                rows.append((sid[a], "location_degraded", onset, int(t[b - 1]) if end is None else end))
    return rows


def random_plan(fixes: pa.Table, rng: np.random.Generator, *, per_kind: int,
                duration_ms: tuple[int, int] = (45 * 60_000, 90 * 60_000)) -> list[ContactEvent]:
    """``per_kind`` events of each kind on distinct subjects, at random times well inside the span."""
    ids = sorted(set(fixes.column("subject_id").to_pylist()))
    t = fixes.column("ts").cast(pa.int64())
    lo, hi = pc.min(t).as_py(), pc.max(t).as_py()
    chosen = rng.permutation(len(ids))[: 3 * per_kind]
    plan = []
    for k, i in enumerate(chosen):
        kind = ("outage", "stuck", "shield")[k // per_kind]
        dur = int(rng.integers(*duration_ms))
        start = int(rng.integers(lo + 3_600_000, max(hi - dur - 3_600_000, lo + 3_600_001)))
        plan.append(ContactEvent(kind, ids[i], start, dur))
    return plan
