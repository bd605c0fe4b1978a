"""Labelled meetings between simulated subjects: meetings, repeated meetings, brief ones and near misses.

:func:`add_meetings` edits a :func:`geomon.sim.scenarios.scenario` by a plan of
``(kind, subject_a, subject_b, start_ms, duration_ms)``: during the window
subject b is taken to where subject a is (a jump there and back, as a device
off on the way would show it) and

- ``meet``: stays 2 m from a, moving with a;
- ``near_miss``: stays ``near_m`` from a (default three times the meeting
  distance, ``meeting_distance_m`` of the rules' ``ordinary`` profile unless
  ``distance_m`` is given), never within it;

a ``meet`` shorter than the minimum duration is a *brief* meeting: within,
but no encounter. Fixes in the window get noise of their own ``accuracy_m``.

:func:`encounter_truth` lists every encounter of the true positions: the
encounter search (:mod:`geomon.kernels.encounters`, itself checked against an
all-pairs brute force in ``tests/kernels/test_encounters.py``) on the
noise-free tracks, so the truth has the planned meetings and any the routines
made by themselves. Scoring the search on the noisy fixes against it measures
what noise and gaps cost.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from geomon.rules.load import Rules, default_rules
from geomon.tracks.encounters import encounters

__all__ = ["add_meetings", "encounter_truth", "frequent_contact_truth", "random_meetings"]

_OFFSET_M = 2.0


def add_meetings(sc, plan, *, distance_m: float | None = None, near_m: float | None = None, seed: int = 0,
                 rules: Rules | None = None):
    """Apply ``plan`` to scenario ``sc``; return ``(fixes, true_x_m, true_y_m)``.

    ``distance_m``: the meeting distance, by default ``meeting_distance_m`` of
    the ``ordinary`` profile of ``rules`` (the packaged rules by default).
    """
    if distance_m is None:
        distance_m = (rules or default_rules()).profile("ordinary")["meeting_distance_m"]
    near_m = 3.0 * distance_m if near_m is None else float(near_m)
    rng = np.random.default_rng(seed)
    sid = np.asarray(sc.fixes.column("subject_id").to_pylist(), dtype=object)
    t = sc.fixes.column("ts").cast(pa.int64()).to_numpy()
    true_x, true_y = sc.true_x_m.copy(), sc.true_y_m.copy()
    acc = sc.fixes.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)
    moved = np.zeros(t.size, bool)
    rows_of = {s: np.flatnonzero(sid == s) for s in dict.fromkeys(sid)}
    for kind, a, b, start, duration in plan:
        if kind not in ("meet", "near_miss"):
            raise ValueError(f"unknown meeting kind {kind!r}; expected meet or near_miss")
        ra, rb = rows_of[a], rows_of[b]
        inside = rb[(t[rb] >= start) & (t[rb] < start + duration)]
        # Where a is at b's fix times (a's true track, interpolated).
        ax = np.interp(t[inside], t[ra], sc.true_x_m[ra])
        ay = np.interp(t[inside], t[ra], sc.true_y_m[ra])
        away = _OFFSET_M if kind == "meet" else near_m
        angle = rng.uniform(0.0, 2.0 * np.pi)
        true_x[inside] = ax + away * np.cos(angle)
        true_y[inside] = ay + away * np.sin(angle)
        moved[inside] = True
    x, y = true_x.copy(), true_y.copy()
    m = np.flatnonzero(moved)
    x[m] += rng.normal(size=m.size) * acc[m]
    y[m] += rng.normal(size=m.size) * acc[m]
    lon, lat = sc.frame.unproject(x, y)
    fixes = sc.fixes
    for name, new in (("lon", np.where(moved, lon, sc.fixes.column("lon").to_numpy())),
                      ("lat", np.where(moved, lat, sc.fixes.column("lat").to_numpy()))):
        i = fixes.schema.get_field_index(name)
        fixes = fixes.set_column(i, fixes.schema.field(i), pa.array(new, pa.float64()))
    return fixes, true_x, true_y


def encounter_truth(sc, fixes: pa.Table, true_x_m: np.ndarray, true_y_m: np.ndarray, distance_m: float,
                    min_duration_s: float, max_gap_s: float = 120.0) -> pa.Table:
    """Every encounter of the noise-free tracks (:func:`geomon.encounters` on the true positions)."""
    lon, lat = sc.frame.unproject(true_x_m, true_y_m)
    exact = fixes.set_column(fixes.schema.get_field_index("lon"), "lon", pa.array(lon, pa.float64()))
    exact = exact.set_column(exact.schema.get_field_index("lat"), "lat", pa.array(lat, pa.float64()))
    return encounters(exact, distance_m, min_duration_s, max_gap_s)


def random_meetings(sc, rng, concern_ids, *, per_subject_day: float = 0.5, meeting_min=(10, 40)) -> list:
    """A plan of meetings with persons of concern and between subjects, brief meetings and near misses.

    Every subject not in ``concern_ids`` gets, each day with probability
    ``per_subject_day``, a daytime event with a person of concern (most) or
    another subject: a meeting of ``meeting_min`` minutes (60 %), a brief one of 1-2.5 minutes (20 %; clear of
    any meeting_s, as the track lags a jump by a few fixes) or a near miss of 20-40 minutes (20 %). Each subject
    sticks to one partner, so repeated meetings build up.
    """
    ids = sc.subjects.column("subject_id").to_pylist()
    subjects = [s for s in ids if s not in set(concern_ids)]
    n_days = int(np.ceil((sc.end_ms - sc.start_ms) / 86_400_000))
    plan = []
    for s in subjects:
        partner = (concern_ids[int(rng.integers(len(concern_ids)))] if rng.random() < 0.8 or len(subjects) < 2
                   else subjects[int(rng.integers(len(subjects)))])
        if partner == s:
            continue
        for day in range(n_days):
            start = sc.start_ms + day * 86_400_000 + int(rng.uniform(8.0, 18.0) * 3_600_000)
            if rng.random() >= per_subject_day or start + 3_600_000 > sc.end_ms:
                continue
            u = rng.random()
            kind, minutes = (("meet", rng.uniform(*meeting_min)) if u < 0.6 else
                             ("meet", rng.uniform(1.0, 2.5)) if u < 0.8 else ("near_miss", rng.uniform(20.0, 40.0)))
            plan.append((kind, partner, s, start, int(minutes * 60_000)))
    return plan


def frequent_contact_truth(true_encounters: pa.Table, levels: dict, rules, concern_ids, *,
                           subject_pairs: bool = False, join_s: float = 900.0) -> pa.Table:
    """What the rules imply for ``frequent_contact``, from the encounters of the noise-free tracks.

    ``true_encounters`` is :func:`encounter_truth` with no minimum duration
    (planned meetings and those the routines made by themselves). A pair's
    encounters less than ``join_s`` apart are one meeting; a meeting counts
    when it lasts the subject's ``meeting_s``; ``meeting_repeat_count``
    meetings within ``meeting_window_s`` raise one alert at the meeting that
    completes the count, after which the count starts again.
    """
    from geomon.sim.truth import event_truth

    concern = set(concern_ids)
    ms = lambda ts: int(ts.timestamp() * 1000)   # noqa: E731
    joined: dict = {}
    for r in sorted(true_encounters.to_pylist(), key=lambda r: (r["subject_a"], r["subject_b"], r["started_at"])):
        spans = joined.setdefault((r["subject_a"], r["subject_b"]), [])
        start, end = ms(r["started_at"]), ms(r["ended_at"])
        if spans and start - spans[-1][1] < join_s * 1000:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    rows = []
    for (a, b), spans in sorted(joined.items()):
        for me, other in ((a, b), (b, a)):
            if me not in levels or not (other in concern or (subject_pairs and other in levels)):
                continue
            p = rules.profile(levels[me])
            counted: list = []
            for start, end in spans:
                if end - start < p["meeting_s"] * 1000:
                    continue
                counted = [c for c in counted if start - c < p["meeting_window_s"] * 1000] + [start]
                if len(counted) >= p["meeting_repeat_count"]:
                    rows.append((me, "frequent_contact", start, end))
                    counted = []
    return event_truth(rows)
