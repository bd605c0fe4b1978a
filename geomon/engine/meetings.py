"""Frequent contact and victim protection on a stream (频繁接触, 被害人保护): meetings carried across batches.

:class:`MeetingWatch` is the part of a :class:`geomon.engine.monitor.Monitor` that
judges who meets whom, batch by batch, live or in a replay. It keeps the recent
fused positions of every person in a pair of interest (supervised subjects with
persons of concern or protection orders, and the other people: persons of
concern and protected persons, fused like subjects but never judged) and, at
each batch, searches every pair only over the time it has not searched yet and
both tracks now cover (:func:`geomon.kernels.encounters.encounter_intervals`
with ``done``/``until``).

**Frontier.** After a batch with watermark W, a person whose last fix L is no
older than ``max_gap_s`` before W may still get a segment starting at L; one
silent for longer is nowhere until a fix after W. Its *frontier* is L in the
first case, W in the second, and a pair is complete up to the earlier of its
two frontiers. Fixes come in event-time order up to the watermark (live: within
the lateness; a replay: time-ordered batches), so nothing before a pair's
frontier changes later and each stretch of each pair is searched exactly once,
cut only at fix times the search cuts at anyway: any batching finds the
stretches of a single batch. Positions older than the earliest frontier (never
more than ``max_gap_s`` before W) are dropped, except each person's last one.
A fix older than its person's frontier (it came after the watermark passed it)
still feeds the filter, but the stretch before the frontier is not searched
again: it is counted in :attr:`MeetingWatch.n_late`.

**Alerts**, as :func:`geomon.frequent_contacts` and :func:`geomon.victim_alerts`
define them over a batch, raised as soon as they are confirmed:

- ``frequent_contact``: meetings (stretches within the subject's
  ``meeting_distance_m``, sure at 0.9, joined across gaps shorter than
  :data:`geomon.engine.frequent_contact.JOIN_S`) counted per subject and person;
  confirmed when the meeting that completes ``meeting_repeat_count`` within
  ``meeting_window_s`` has lasted ``meeting_s``, ended when that meeting can no
  longer be joined (its pair's frontier is ``JOIN_S`` past its end);
- ``victim_warning`` / ``victim_breach``: a stretch within ``warning_m``
  (plain distance) or ``alert_m`` (sure at 0.95), confirmed once it has lasted
  ``confirm_s``, ended when it ends.

An alert is placed where its stretch or meeting began (the midpoint of the two
positions then: known when it is confirmed, and the same for any batching);
the closest approach is in ``details`` when it ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import NormalDist

import numba
import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, Detector, EngineContext, global_state, register
from geomon.engine.meeting_judge import (
    _NEVER_MS,
    H_PERSON,
    H_SIGMA,
    H_T,
    H_X,
    H_Y,
    N_COUNTED,
    N_FOUND,
    N_OPEN,
    Channel,
    MeetingJudge,
    _concern_map,
    _position_at,
)
from geomon.kernels import encounters as _enc
from geomon.kernels import fusion as _kf
from geomon.schema import ALERT_SCHEMA

__all__ = ["MeetingState", "MeetingWatch", "meeting_config"]

def meeting_config(concern, protections) -> tuple[dict | None, list[dict], dict]:
    """Persons of concern as a dict (person -> subjects or None), protection orders as a list, and both as plain
    data for a configuration hash (empty when neither is given, so that other runs' hashes stay as they were)."""
    if concern is not None and not isinstance(concern, dict):
        concern = {str(p): None for p in concern}
    orders = [dict(o) for o in protections] if protections else []
    params = {}
    if concern:
        params["concern"] = sorted((str(p), sorted(v) if v is not None else None) for p, v in concern.items())
    if orders:
        params["protections"] = sorted(json.dumps(o, sort_keys=True, default=str) for o in orders)
    return concern, orders, params


@dataclass
class MeetingState:
    """The watch's state. The other people's filters (``fusion``, ``seen_t``, ``run_source``,
    ``run_length``: one row per person who is not a subject, as the Monitor keeps its subjects'), the recent
    positions of everyone in a pair (``hist``), each person's newest position and searched frontier, the
    open stretches and meetings and the counted ones. None of it is per subject: all global."""

    fusion: np.ndarray = global_state()
    seen_t: np.ndarray = global_state()
    run_source: np.ndarray = global_state()
    run_length: np.ndarray = global_state()
    hist: np.ndarray = global_state()
    last_t: np.ndarray = global_state()
    done_ms: np.ndarray = global_state()
    open: np.ndarray = global_state()
    counted: np.ndarray = global_state()
    watermark_ms: int = global_state()
    n_late: int = global_state()

    @classmethod
    def new(cls, n: int, m: int) -> MeetingState:
        """Empty state for ``n`` subjects and ``m`` other people."""
        return cls(fusion=_kf.new_state(m), seen_t=np.full(m, -1, np.int64), run_source=np.full(m, -1, np.int64),
                   run_length=np.zeros(m, np.int64), hist=np.zeros((0, 5)), last_t=np.full(n + m, -1, np.int64),
                   done_ms=np.full(n + m, _NEVER_MS, np.int64), open=np.zeros((0, N_OPEN)),
                   counted=np.zeros((0, N_COUNTED)), watermark_ms=-1, n_late=0)


@register
class MeetingWatch(MeetingJudge, Detector):
    """Frequent-contact and victim alerts of a stream of fused positions (see the module docstring).

    Parameters
    ----------
    subject_ids, subject_level, subject_office : sequence of str
        The Monitor's subjects, by code.
    profiles : sequence of dict
        Each subject's rule profile (``meeting_distance_m``, ``meeting_s``,
        ``meeting_repeat_count``, ``meeting_window_s``).
    concern : iterable or dict, optional
        Persons of concern, as :func:`geomon.frequent_contacts` takes them.
    protections : iterable of dict, optional
        Protection orders, as :func:`geomon.victim_alerts` takes them.
    frame : LocalFrame
        The Monitor's metric frame (alert places are unprojected with it).
    max_gap_s : float
        Longest silence a track is interpolated across.
    subject_pairs : bool
        Also count meetings between two supervised subjects.
    contact_sure_p, breach_sure_p, confirm_s : float
        As :func:`geomon.frequent_contacts` (``sure_p``) and
        :func:`geomon.victim_alerts` (``sure_p``, ``confirm_s``).
    collect : iterable of str, optional
        Instead of judging: the ids of the people whose positions to keep
        (those of them that are not subjects are admitted as other people);
        :meth:`take_positions` hands them over. ``concern``, ``protections``
        and ``subject_pairs`` are then ignored.
    """

    name = "meetings"
    kinds = ("frequent_contact", "victim_warning", "victim_breach")
    rule_keys = ("meeting_distance_m", "meeting_s", "meeting_repeat_count", "meeting_window_s")
    reads = "tracks"
    selectable = False
    State = MeetingState

    def __init__(self, subject_ids, subject_level, subject_office, profiles, *, concern=None, protections=None,
                 frame=None, max_gap_s: float = 120.0, subject_pairs: bool = False, contact_sure_p: float = 0.9,
                 breach_sure_p: float = 0.95, confirm_s: float = 30.0, collect=None):
        ids = [str(s) for s in subject_ids]
        n = len(ids)
        self.n_subjects = n
        self.subject_level = list(subject_level)
        self.subject_office = list(subject_office)
        self.frame = frame
        self.max_gap_ms = int(round(max_gap_s * 1000))
        self.confirm_ms = int(round(confirm_s * 1000))
        orders = [dict(o) for o in (protections or ())]
        for i, o in enumerate(orders):   # named by position: error messages carry no subject id in clear
            if not 0 < float(o["alert_m"]) <= float(o["warning_m"]):
                raise ValueError(f"protection order {i}: need 0 < alert_m <= warning_m, got "
                                 f"alert_m={o['alert_m']!r}, warning_m={o['warning_m']!r}")
        known = set(ids)
        if collect is None:
            concern_of = _concern_map(concern, ids) if concern else {s: set() for s in ids}
            if subject_pairs:
                for s in ids:
                    concern_of[s] |= set(ids) - {s}
            others = sorted(({p for people in concern_of.values() for p in people}
                             | {str(o["victim_id"]) for o in orders}) - known)
        else:   # positions only: every person named, nothing judged
            collect = {str(p) for p in collect}
            concern_of, orders, others = {}, [], sorted(collect - known)
        #: Persons of concern and protected persons who are not supervised subjects (codes n, n + 1, ...).
        self.other_ids = np.array(others, dtype=object)
        self.person_ids = np.array(ids + others, dtype=object)
        self.code_of = {p: i for i, p in enumerate(self.person_ids)}
        m = len(others)
        self.channels = self._channels(ids, profiles, concern_of, orders, contact_sure_p, breach_sure_p)
        involved = np.zeros(n + m, bool)
        for ch in self.channels:
            involved[ch.persons] = True
        if collect is not None:
            involved[[i for i, p in enumerate(self.person_ids) if p in collect]] = True
        #: Whether this watch only keeps its people's positions (:meth:`take_positions`), for a distributed replay
        #: that searches them elsewhere, by time window (geomon/run/distributed.py).
        self.collecting = collect is not None
        self._collected: list = []
        #: Persons in some pair: only their positions are kept.
        self.involved = involved
        # Per channel: how long a counted meeting may still count (its window, ms; victims count none).
        self._keep_ms = np.array([max(d[1] for d in ch.directions.values()) if ch.kind == "frequent_contact" else 0
                                  for ch in self.channels], np.int64)
        self.state = MeetingState.new(n, m)
        self.run_id = ""

    @classmethod
    def from_context(cls, ctx: EngineContext) -> MeetingWatch:
        o = ctx.options
        return cls(ctx.subject_ids, ctx.subject_level, ctx.subject_office, o["profiles"], concern=o.get("concern"),
                   protections=o.get("protections"), frame=ctx.zones.frame, max_gap_s=ctx.max_gap_s,
                   subject_pairs=o.get("subject_pairs", False), collect=o.get("collect"))

    def detect(self, batch: Batch) -> pa.Table:
        """The fused tracks of subjects and other people; the watermark is the caller's clock or the newest fix."""
        self.run_id = batch.run_id
        tr = batch.tracks
        return self.step(tr.code, tr.t_ms, tr.fused_x_m, tr.fused_y_m, tr.sigma_m, batch.now_ms)

    @property
    def watermark_ms(self) -> int:
        """Event time up to which the stream is complete (ms)."""
        return int(self.state.watermark_ms)

    @watermark_ms.setter
    def watermark_ms(self, value: int) -> None:
        self.state.watermark_ms = int(value)

    @property
    def n_late(self) -> int:
        """Positions that came after their person's frontier had passed them (their stretch before it is not
        searched)."""
        return int(self.state.n_late)

    def _channels(self, ids, profiles, concern_of, orders, contact_sure_p, breach_sure_p) -> list[Channel]:
        code = self.code_of
        by_distance: dict = {}
        for s, people in concern_of.items():
            p = profiles[code[s]]
            for person in people:
                by_distance.setdefault(float(p["meeting_distance_m"]), {})[(code[s], code[person])] = (
                    int(p["meeting_repeat_count"]), int(round(float(p["meeting_window_s"]) * 1000)),
                    int(round(float(p["meeting_s"]) * 1000)), float(p["meeting_window_s"]))
        n_persons = len(self.person_ids)
        out = [Channel(i, "frequent_contact", d, NormalDist().inv_cdf(contact_sure_p), directions, n_persons)
               for i, (d, directions) in enumerate(sorted(by_distance.items()))]
        for kind, key, z in (("victim_warning", "warning_m", 0.0),
                             ("victim_breach", "alert_m", NormalDist().inv_cdf(breach_sure_p))):
            radii: dict = {}
            for i, o in enumerate(orders):
                if str(o["subject_id"]) not in code:
                    raise ValueError(f"protection order {i} names a subject_id that is not a supervised subject")
                radii.setdefault(float(o[key]), {})[(code[str(o["subject_id"])], code[str(o["victim_id"])])] = ()
            out += [Channel(len(out) + i, kind, r, z, directions, n_persons)
                    for i, (r, directions) in enumerate(sorted(radii.items()))]
        return out

    @property
    def active(self) -> bool:
        """Whether any pair is watched (or positions are collected)."""
        return bool(self.channels) or self.collecting

    # ----------------------------------------------------------------- the step

    def step(self, code: np.ndarray, t_ms: np.ndarray, x: np.ndarray, y: np.ndarray, sigma: np.ndarray,
             now_ms: int | None) -> pa.Table:
        """Take a batch's fused positions (any person code, sorted by code then time) and return alert events."""
        newest = int(t_ms.max()) if t_ms.size else -1
        self.watermark_ms = w = max(self.watermark_ms, newest, -1 if now_ms is None else int(now_ms))
        if self.collecting:
            keep = self.involved[code]
            self._collected.append((code[keep], t_ms[keep], x[keep], y[keep], sigma[keep], t_ms))
            return ALERT_SCHEMA.empty_table()
        if not self.channels:
            return ALERT_SCHEMA.empty_table()
        new = self.add(code, t_ms, x, y, sigma)
        until = self.frontiers(w)
        found = self.search(until) if new else [np.zeros((0, N_FOUND))] * len(self.channels)
        events = self.judge(found, until)
        self._prune_history(int(until[self.involved].min()))
        return events

    def add(self, code, t_ms, x, y, sigma) -> int:
        """Keep the positions of people in some pair (sorted by person, then time); return how many."""
        keep = self.involved[code]
        new = np.column_stack([code[keep], t_ms[keep], x[keep], y[keep], np.nan_to_num(sigma[keep], nan=np.inf)]) \
            .astype(np.float64)
        if new.shape[0]:
            pid = new[:, H_PERSON].astype(np.int64)
            self.state.n_late += int(np.count_nonzero(new[:, H_T] < self.state.done_ms[pid]))
            hist = np.concatenate([self.state.hist, new])
            self.state.hist = hist[np.lexsort((hist[:, H_T], hist[:, H_PERSON]))]
            last = np.r_[pid[1:] != pid[:-1], True]
            self.state.last_t[pid[last]] = new[last, H_T].astype(np.int64)
        return new.shape[0]

    def frontiers(self, w: int) -> np.ndarray:
        """Each person's frontier (ms) under watermark ``w``: its last position, or ``w`` once it has been silent
        for longer than ``max_gap_s`` (never before what was searched already)."""
        present = (self.state.last_t >= 0) & (self.state.last_t >= w - self.max_gap_ms)
        return np.maximum(np.where(present, self.state.last_t, w), self.state.done_ms)

    def resume_at(self, w: int) -> None:
        """Stand where a watch that had run every batch up to watermark ``w`` would stand, given the positions
        added so far (those its searches after ``w`` can reach): everything up to the frontiers is searched."""
        self.watermark_ms = w
        self.state.done_ms = self.frontiers(w)

    def search(self, until: np.ndarray) -> list[np.ndarray]:
        """Per channel, the stretches of its pairs over their open windows (:meth:`_search`)."""
        return [self._search(ch, until) for ch in self.channels]

    def judge(self, found: list[np.ndarray], until: np.ndarray) -> pa.Table:
        """Join the stretches ``found`` per channel (:meth:`search`) into the open ones, raise and end alerts, and
        mark everything up to ``until`` searched."""
        events = []
        for ch, iv in zip(self.channels, found):
            events += self._channel_step(ch, iv, until)
        self.state.done_ms = until
        self._prune_counted(int(until[self.involved].min()))
        events = [e for e in events if e.num_rows]
        return pa.concat_tables(events) if events else ALERT_SCHEMA.empty_table()

    def take_positions(self) -> tuple[pa.Table, np.ndarray]:
        """The positions collected so far (``collect``): person id, time (ms), x, y (m) and the trusted 1-sigma;
        and the times of every position the watch was given (the watermark of a search reads them)."""
        parts, self._collected = self._collected, []
        code, t, x, y, sigma, every = (np.concatenate(c) for c in zip(*parts)) if parts else (
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
        table = pa.table({"person_id": pa.array(self.person_ids[code].tolist(), pa.string()),
                          "t": pa.array(t, pa.int64()), "x": x, "y": y, "sigma": sigma})
        return table, every

    def _tracks(self, ch: Channel):
        h = self.state.hist
        rows = np.flatnonzero(np.isin(h[:, H_PERSON].astype(np.int64), ch.persons))
        pid = h[rows, H_PERSON].astype(np.int64)
        people, starts = np.unique(pid, return_index=True)
        offsets = np.r_[starts, rows.size].astype(np.int64)
        sub = h[rows]
        return people, offsets, np.ascontiguousarray(sub[:, H_T] / 1000.0), np.ascontiguousarray(sub[:, H_X]), \
            np.ascontiguousarray(sub[:, H_Y]), np.ascontiguousarray(sub[:, H_SIGMA])

    def _search(self, ch: Channel, until: np.ndarray) -> np.ndarray:
        """Kernel rows of the channel's wanted pairs over their open windows (persons as codes), sorted, with the
        place each began (columns F_X0, F_Y0)."""
        people, offsets, t, x, y, sig = self._tracks(ch)
        if people.size < 2:
            return np.zeros((0, N_FOUND))
        threads = numba.get_num_threads() if t.size > 200_000 else 1
        iv = _enc.encounter_intervals(offsets, t, x, y, ch.distance_m, self.max_gap_ms / 1000.0, 120.0,
                                      max(5.0 * ch.distance_m, 150.0), threads=threads,
                                      sigma=sig if ch.z > 0 else np.zeros(t.size), z=ch.z,
                                      done=self.state.done_ms[people] / 1000.0, until=until[people] / 1000.0)
        if iv.shape[0]:
            iv[:, _enc.E_A] = people[iv[:, _enc.E_A].astype(np.int64)]
            iv[:, _enc.E_B] = people[iv[:, _enc.E_B].astype(np.int64)]
            key = iv[:, _enc.E_A].astype(np.int64) * ch.n_persons + iv[:, _enc.E_B].astype(np.int64)
            iv = iv[np.isin(key, ch.keys)]
            iv = iv[np.lexsort((iv[:, _enc.E_START], iv[:, _enc.E_B], iv[:, _enc.E_A]))]
        # Where each stretch began: the midpoint of the two positions then (an alert is placed there).
        began = np.zeros((iv.shape[0], 2))
        for i, r in enumerate(iv):
            where = []
            for person in (int(r[_enc.E_A]), int(r[_enc.E_B])):
                k = int(np.searchsorted(people, person))
                a, b = offsets[k], offsets[k + 1]
                where.append(_position_at(t[a:b], x[a:b], y[a:b], r[_enc.E_START]))
            began[i] = 0.5 * (where[0][0] + where[1][0]), 0.5 * (where[0][1] + where[1][1])
        return np.concatenate([iv, began], axis=1)

    def _prune_history(self, front_ms: int) -> None:
        """Drop positions no window will reach again (each person's last one before ``front_ms`` is kept)."""
        h = self.state.hist
        if h.shape[0]:
            pid = h[:, H_PERSON]
            nxt_same = np.r_[pid[1:] == pid[:-1], False]
            nxt_t = np.r_[h[1:, H_T], np.inf]
            keep = (h[:, H_T] >= front_ms) | ~nxt_same | (nxt_same & (nxt_t >= front_ms))
            self.state.hist = h[keep]
