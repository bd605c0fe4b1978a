"""Frequent contact with persons of concern (频繁接触不良人员): repeated encounters in a rolling window.

:func:`frequent_contacts` finds the encounters (:func:`geomon.encounters`)
between supervised subjects and the persons of concern that apply to them
(other tracked people, supervised or not; optionally between subjects too),
and raises a ``frequent_contact`` alert when one subject has met one person
``meeting_repeat_count`` times within ``meeting_window_s``, each meeting
within ``meeting_distance_m`` for at least ``meeting_s`` (the subject's level
profile, :mod:`geomon.rules.load`).

A meeting is a stretch within, joined with the next one of the same pair when
they are less than :data:`JOIN_S` apart (noise and gaps cut meetings in two),
lasting ``meeting_s`` from its start to its end.

An alert is raised at the meeting that completes the count: onset is its
start, confirmation the moment it had lasted ``meeting_s``, end its end, place
its closest approach. The count then starts again, so a pair that keeps
meeting raises one alert per ``meeting_repeat_count`` meetings, not one per
meeting. ``details`` names the person and lists the meetings counted.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from geomon.engine.meeting_judge import JOIN_S, _concern_map
from geomon.engine.rows import alert_table
from geomon.io.load import load_subjects
from geomon.rules.load import Rules, default_rules
from geomon.schema import ALERT_SCHEMA
from geomon.tracks.encounters import encounters

__all__ = ["JOIN_S", "frequent_contacts"]


def frequent_contacts(fixes, subjects, persons_of_concern, rules: Rules | None = None, *,
                      subject_pairs: bool = False, sure_p: float | None = 0.9, run_id: str = "") -> pa.Table:
    """``frequent_contact`` alerts of supervised subjects meeting persons of concern too often.

    Parameters
    ----------
    fixes : pyarrow.Table
        Fixes of the subjects and of the persons of concern, as for
        :func:`geomon.encounters`; a table from :func:`geomon.fuse` is read at
        its fused positions, and ``sure_p`` then counts only meetings the
        positions are sure of.
    subjects : path or table
        Supervised subjects (``subject_id``, ``level``, ``office_id``), as
        :func:`geomon.io.load.load_subjects` reads them.
    persons_of_concern : iterable of str, or dict of str to (iterable of str or None)
        Ids (in ``fixes``) of persons of concern to every subject, or a map
        from each person to the subjects it concerns (None: every subject).
    rules : Rules, optional
        Alert rules (default: the packaged ones); reads ``meeting_distance_m``,
        ``meeting_s``, ``meeting_repeat_count`` and ``meeting_window_s`` of
        each subject's level profile.
    subject_pairs : bool
        Also count meetings between two supervised subjects (each raises its own).
    sure_p : float or None
        Passed to :func:`geomon.encounters` for fused input (ignored otherwise).
        0.9 by default, below the 0.95 of a single alert: an alert here needs
        several meetings, each of which would have to be wrong. On the
        labelled town days of the encounters suite 0.95 missed one alert in
        five and the plain distance raised a false one; 0.9 neither.
    run_id : str
        Written into each alert.

    Returns
    -------
    pyarrow.Table
        Alerts in :data:`geomon.schema.ALERT_SCHEMA`, kind ``frequent_contact``.
    """
    rules = rules or default_rules()
    table = load_subjects(subjects).table
    ids = table.column("subject_id").to_pylist()
    level = dict(zip(ids, table.column("level").to_pylist()))
    office = dict(zip(ids, table.column("office_id").to_pylist()))
    concern = _concern_map(persons_of_concern, ids)
    if subject_pairs:
        for s in ids:
            concern[s] |= set(ids) - {s}
    profile = {s: rules.profile(level[s]) for s in ids}
    fused = "var_x_m2" in fixes.column_names
    rows = []
    for distance in sorted({p["meeting_distance_m"] for p in profile.values()}):
        found = _join(encounters(fixes, distance, 0.0, sure_p=sure_p if fused else None).to_pylist())
        for e in found:
            for me, other in ((e["subject_a"], e["subject_b"]), (e["subject_b"], e["subject_a"])):
                if me in profile and profile[me]["meeting_distance_m"] == distance and other in concern[me]:
                    rows.append((me, other, e))
    alerts = []
    for (me, other), meetings in _by_pair(rows).items():
        p = profile[me]
        need, window_ms, least_ms = int(p["meeting_repeat_count"]), p["meeting_window_s"] * 1000, p["meeting_s"] * 1000
        counted = []
        for e in meetings:
            start = _ms(e["started_at"])
            if _ms(e["ended_at"]) - start < least_ms:
                continue
            counted = [c for c in counted if start - _ms(c["started_at"]) < window_ms] + [e]
            if len(counted) >= need:
                alerts.append((me, other, counted))
                counted = []
    return _alert_rows(alerts, level, office, profile, run_id)




def _join(found: list[dict]) -> list[dict]:
    """Encounters of each pair (sorted by pair, start) joined across gaps shorter than :data:`JOIN_S`."""
    out: list[dict] = []
    for e in found:
        last = out[-1] if out else None
        if (last is not None and (last["subject_a"], last["subject_b"]) == (e["subject_a"], e["subject_b"])
                and _ms(e["started_at"]) - _ms(last["ended_at"]) < JOIN_S * 1000):
            nearer = e if e["min_distance_m"] < last["min_distance_m"] else last
            out[-1] = {**last, "ended_at": max(last["ended_at"], e["ended_at"]),
                       **{k: nearer[k] for k in ("min_distance_m", "lon", "lat")}}
        else:
            out.append(dict(e))
    return out


def _ms(ts) -> int:
    return int(ts.timestamp() * 1000)


def _by_pair(rows) -> dict:
    out: dict = {}
    for me, other, e in sorted(rows, key=lambda r: (r[0], r[1], r[2]["started_at"])):
        out.setdefault((me, other), []).append(e)
    return out


def _alert_rows(alerts, level, office, profile, run_id) -> pa.Table:
    if not alerts:
        return ALERT_SCHEMA.empty_table()
    onset, confirm, end, lon, lat, details = [], [], [], [], [], []
    for me, other, meetings in alerts:
        last = meetings[-1]
        onset.append(_ms(last["started_at"]))
        confirm.append(_ms(last["started_at"]) + int(profile[me]["meeting_s"] * 1000))
        end.append(_ms(last["ended_at"]))
        lon.append(last["lon"])
        lat.append(last["lat"])
        details.append(json.dumps({
            "event": "ended", "level": level[me], "person_id": other, "meeting_count": len(meetings),
            "window_s": profile[me]["meeting_window_s"],
            "meetings": [{"started_ms": _ms(m["started_at"]), "ended_ms": _ms(m["ended_at"]),
                          "min_distance_m": round(m["min_distance_m"], 1), "lon": round(m["lon"], 6),
                          "lat": round(m["lat"], 6)} for m in meetings]}, sort_keys=True))
    subject = [a[0] for a in alerts]
    severity = ["high" if level[s] == "strict" else "medium" for s in subject]
    return alert_table(["frequent_contact"] * len(alerts), severity, subject, [None] * len(alerts),
                       [office[s] for s in subject], np.array(onset), np.array(confirm), np.array(end),
                       np.array(lon), np.array(lat), details, run_id)
