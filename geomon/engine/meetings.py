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
import math
from dataclasses import dataclass
from statistics import NormalDist

import numba
import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, Detector, EngineContext, global_state, register
from geomon.engine.frequent_contact import JOIN_S, _concern_map
from geomon.engine.rows import alert_table
from geomon.kernels import encounters as _enc
from geomon.kernels import fusion as _kf
from geomon.schema import ALERT_SCHEMA

__all__ = ["MeetingState", "MeetingWatch", "meeting_config"]

#: Columns of an open stretch or meeting (float64): channel, persons a < b, start and end (s), closest distance,
#: its time and place (x, y), the place where it began (x0, y0), and the state of each direction (a judged for
#: meeting b, b for meeting a): 0 nothing yet, 1 counted (contact) or confirmed (victim), 2 completed an alert.
O_CH, O_A, O_B, O_START, O_END, O_DMIN, O_TMIN, O_X, O_Y, O_X0, O_Y0, O_QAB, O_QBA = range(13)
N_OPEN = 13
#: Columns of a counted meeting (float64): channel, subject, person, start and end (s), closest distance and its
#: place, and the onset (ms) of the alert it belongs to (-1: none yet).
C_CH, C_ME, C_OTHER, C_START, C_END, C_DMIN, C_X, C_Y, C_ALERT = range(9)
N_COUNTED = 9
#: Columns of a kept position (float64): person, time (ms), x, y (m), trusted 1-sigma (m).
H_PERSON, H_T, H_X, H_Y, H_SIGMA = range(5)
#: Columns of a stretch found by a search: the encounter kernel's, then the place where it began (x0, y0).
F_X0, F_Y0 = _enc.N_ENC, _enc.N_ENC + 1
N_FOUND = _enc.N_ENC + 2

_NEVER_MS = -(2 ** 62)
_JOIN_MS = int(JOIN_S * 1000)


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


class _Channel:
    """One search: a distance, a margin (z sigmas) and the directed pairs it judges."""

    def __init__(self, index: int, kind: str, distance_m: float, z: float, directions: dict, n_persons: int):
        self.index, self.kind, self.distance_m, self.z = index, kind, float(distance_m), float(z)
        #: (me, other) person codes -> what that direction needs (contact: need, window_ms, least_ms, level).
        self.directions = directions
        self.pairs = {(min(me, other), max(me, other)) for me, other in directions}
        self.persons = np.array(sorted({p for pair in self.pairs for p in pair}), np.int64)
        #: The pairs as keys a * n_persons + b, to filter the search's rows in one vectorised step.
        self.n_persons = n_persons
        self.keys = np.array(sorted(a * n_persons + b for a, b in self.pairs), np.int64)

    def __eq__(self, other) -> bool:   # configuration, compared as such (tests/test_live.py)
        return isinstance(other, _Channel) and (self.index, self.kind, self.distance_m, self.z, self.directions) \
            == (other.index, other.kind, other.distance_m, other.z, other.directions)


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
class MeetingWatch(Detector):
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

    def _channels(self, ids, profiles, concern_of, orders, contact_sure_p, breach_sure_p) -> list[_Channel]:
        code = self.code_of
        by_distance: dict = {}
        for s, people in concern_of.items():
            p = profiles[code[s]]
            for person in people:
                by_distance.setdefault(float(p["meeting_distance_m"]), {})[(code[s], code[person])] = (
                    int(p["meeting_repeat_count"]), int(round(float(p["meeting_window_s"]) * 1000)),
                    int(round(float(p["meeting_s"]) * 1000)), float(p["meeting_window_s"]))
        n_persons = len(self.person_ids)
        out = [_Channel(i, "frequent_contact", d, NormalDist().inv_cdf(contact_sure_p), directions, n_persons)
               for i, (d, directions) in enumerate(sorted(by_distance.items()))]
        for kind, key, z in (("victim_warning", "warning_m", 0.0),
                             ("victim_breach", "alert_m", NormalDist().inv_cdf(breach_sure_p))):
            radii: dict = {}
            for i, o in enumerate(orders):
                if str(o["subject_id"]) not in code:
                    raise ValueError(f"protection order {i} names a subject_id that is not a supervised subject")
                radii.setdefault(float(o[key]), {})[(code[str(o["subject_id"])], code[str(o["victim_id"])])] = ()
            out += [_Channel(len(out) + i, kind, r, z, directions, n_persons)
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

    def _tracks(self, ch: _Channel):
        h = self.state.hist
        rows = np.flatnonzero(np.isin(h[:, H_PERSON].astype(np.int64), ch.persons))
        pid = h[rows, H_PERSON].astype(np.int64)
        people, starts = np.unique(pid, return_index=True)
        offsets = np.r_[starts, rows.size].astype(np.int64)
        sub = h[rows]
        return people, offsets, np.ascontiguousarray(sub[:, H_T] / 1000.0), np.ascontiguousarray(sub[:, H_X]), \
            np.ascontiguousarray(sub[:, H_Y]), np.ascontiguousarray(sub[:, H_SIGMA])

    def _search(self, ch: _Channel, until: np.ndarray) -> np.ndarray:
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

    def _channel_step(self, ch: _Channel, iv: np.ndarray, until: np.ndarray) -> list[pa.Table]:
        mine = self.state.open[:, O_CH] == ch.index
        old = {(int(r[O_A]), int(r[O_B])): r.copy() for r in self.state.open[mine]}
        new: dict = {}
        for r in iv:
            new.setdefault((int(r[_enc.E_A]), int(r[_enc.E_B])), []).append(r)
        still_open = []
        events: list[pa.Table] = []
        for pair in sorted(set(old) | set(new)):
            cur = old.get(pair)
            for r in new.get(pair, ()):
                if cur is not None and self._joins(ch, cur, r):
                    cur[O_END] = max(cur[O_END], r[_enc.E_END])
                    if r[_enc.E_DMIN] < cur[O_DMIN]:
                        cur[[O_DMIN, O_TMIN, O_X, O_Y]] = r[[_enc.E_DMIN, _enc.E_TMIN, _enc.E_X, _enc.E_Y]]
                else:
                    if cur is not None:
                        events += self._judge(ch, cur, final=True)
                    cur = self._opened(ch, r)
                events += self._judge(ch, cur, final=False)
            front_ms = int(min(until[pair[0]], until[pair[1]]))
            if self._final(ch, cur, front_ms):
                events += self._judge(ch, cur, final=True)
            else:
                events += self._judge(ch, cur, final=False)
                still_open.append(cur)
        rest = self.state.open[~mine]
        self.state.open = np.concatenate([rest, np.array(still_open).reshape(-1, N_OPEN)])
        return events

    @staticmethod
    def _ms(s: float) -> int:
        return int(round(s * 1000.0))

    def _joins(self, ch: _Channel, cur: np.ndarray, r: np.ndarray) -> bool:
        if ch.kind == "frequent_contact":
            return self._ms(r[_enc.E_START]) - self._ms(cur[O_END]) < _JOIN_MS
        return r[_enc.E_START] <= cur[O_END]   # touching stretches, as geomon.kernels.encounters.merge_intervals

    def _final(self, ch: _Channel, cur: np.ndarray, front_ms: int) -> bool:
        """No later stretch can join ``cur``: its pair is complete past its end (by JOIN_S for meetings)."""
        if ch.kind == "frequent_contact":
            return front_ms - self._ms(cur[O_END]) >= _JOIN_MS
        return cur[O_END] < front_ms / 1000.0

    def _opened(self, ch: _Channel, r: np.ndarray) -> np.ndarray:
        cur = np.zeros(N_OPEN)
        cur[O_CH] = ch.index
        cur[[O_A, O_B, O_START, O_END, O_DMIN, O_TMIN, O_X, O_Y, O_X0, O_Y0]] = r[
            [_enc.E_A, _enc.E_B, _enc.E_START, _enc.E_END, _enc.E_DMIN, _enc.E_TMIN, _enc.E_X, _enc.E_Y, F_X0, F_Y0]]
        return cur

    # ----------------------------------------------------------------- judging

    def _judge(self, ch: _Channel, cur: np.ndarray, *, final: bool) -> list[pa.Table]:
        """Advance each wanted direction of ``cur``; when ``final``, close it."""
        out = []
        a, b = int(cur[O_A]), int(cur[O_B])
        for me, other, q in ((a, b, O_QAB), (b, a, O_QBA)):
            if (me, other) not in ch.directions:
                continue
            if ch.kind == "frequent_contact":
                out += self._judge_meeting(ch, cur, me, other, q, final)
            else:
                if cur[q] == 0 and self._ms(cur[O_END]) - self._ms(cur[O_START]) >= self.confirm_ms:
                    cur[q] = 1
                    out.append(self._victim_rows(ch, cur, me, other, ended=False))
                if final and cur[q] == 1:
                    out.append(self._victim_rows(ch, cur, me, other, ended=True))
        return out

    def _judge_meeting(self, ch: _Channel, cur: np.ndarray, me: int, other: int, q: int, final: bool) -> list:
        need, window_ms, least_ms, _ = ch.directions[(me, other)]
        start_ms = self._ms(cur[O_START])
        out = []
        if cur[q] == 0 and self._ms(cur[O_END]) - start_ms >= least_ms:
            c = self.state.counted
            mine = (c[:, C_CH] == ch.index) & (c[:, C_ME] == me) & (c[:, C_OTHER] == other)
            waiting = mine & (c[:, C_ALERT] < 0)
            stale = waiting & ~(start_ms - np.round(c[:, C_START] * 1000.0) < window_ms)
            prior = waiting & ~stale
            if np.count_nonzero(prior) + 1 >= need:
                c[prior, C_ALERT] = start_ms
                cur[q] = 2
            else:
                cur[q] = 1
            self.state.counted = c[~stale]
            if cur[q] == 2:
                out.append(self._contact_rows(ch, cur, me, other, ended=False))
        if final and cur[q] == 1:
            row = np.array([ch.index, me, other, cur[O_START], cur[O_END], cur[O_DMIN], cur[O_X], cur[O_Y], -1.0])
            self.state.counted = np.concatenate([self.state.counted, row[None, :]])
        elif final and cur[q] == 2:
            out.append(self._contact_rows(ch, cur, me, other, ended=True))
            c = self.state.counted
            done = (c[:, C_CH] == ch.index) & (c[:, C_ME] == me) & (c[:, C_OTHER] == other) & (c[:, C_ALERT] == start_ms)
            self.state.counted = c[~done]
        return out

    def _lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.frame.unproject(np.array([x]), np.array([y]))
        return float(np.asarray(lon)[0]), float(np.asarray(lat)[0])

    def _meeting(self, start_s, end_s, dmin, x, y, *, ended: bool = True) -> dict:
        out = {"started_ms": self._ms(start_s)}
        if ended:
            lon, lat = self._lonlat(x, y)
            out.update(ended_ms=self._ms(end_s), min_distance_m=round(float(dmin), 1), lon=round(lon, 6),
                       lat=round(lat, 6))
        return out

    def _contact_rows(self, ch: _Channel, cur: np.ndarray, me: int, other: int, *, ended: bool) -> pa.Table:
        _, _, least_ms, window_s = ch.directions[(me, other)]
        start_ms = self._ms(cur[O_START])
        c = self.state.counted
        prior = c[(c[:, C_CH] == ch.index) & (c[:, C_ME] == me) & (c[:, C_OTHER] == other)
                  & (c[:, C_ALERT] == start_ms)]
        prior = prior[np.argsort(prior[:, C_START], kind="stable")]
        meetings = [self._meeting(r[C_START], r[C_END], r[C_DMIN], r[C_X], r[C_Y]) for r in prior]
        meetings.append(self._meeting(cur[O_START], cur[O_END], cur[O_DMIN], cur[O_X], cur[O_Y], ended=ended))
        level = self.subject_level[me]
        details = json.dumps({"event": "ended" if ended else "confirmed", "level": level,
                              "person_id": str(self.person_ids[other]), "meeting_count": len(meetings),
                              "window_s": window_s, "meetings": meetings}, sort_keys=True)
        return self._rows("frequent_contact", "high" if level == "strict" else "medium", cur, me,
                          start_ms + least_ms, ended, details)

    def _victim_rows(self, ch: _Channel, cur: np.ndarray, me: int, other: int, *, ended: bool) -> pa.Table:
        info = {"event": "ended" if ended else "confirmed", "victim_id": str(self.person_ids[other]),
                "radius_m": ch.distance_m}
        if ended:
            lon, lat = self._lonlat(cur[O_X], cur[O_Y])
            info.update(min_distance_m=round(float(cur[O_DMIN]), 1), closest_lon=round(lon, 6),
                        closest_lat=round(lat, 6))
        return self._rows(ch.kind, "medium" if ch.kind == "victim_warning" else "high", cur, me,
                          self._ms(cur[O_START]) + self.confirm_ms, ended, json.dumps(info, sort_keys=True))

    def _rows(self, kind, severity, cur, me, confirmed_ms, ended, details) -> pa.Table:
        lon, lat = self._lonlat(cur[O_X0], cur[O_Y0])
        return alert_table([kind], [severity], [str(self.person_ids[me])], [None], [self.subject_office[me]],
                           np.array([self._ms(cur[O_START])]), np.array([confirmed_ms]),
                           np.array([self._ms(cur[O_END]) if ended else -1]), np.array([lon]), np.array([lat]),
                           [details], self.run_id)

    # ----------------------------------------------------------------- memory

    def _prune_history(self, front_ms: int) -> None:
        """Drop positions no window will reach again (each person's last one before ``front_ms`` is kept)."""
        h = self.state.hist
        if h.shape[0]:
            pid = h[:, H_PERSON]
            nxt_same = np.r_[pid[1:] == pid[:-1], False]
            nxt_t = np.r_[h[1:, H_T], np.inf]
            keep = (h[:, H_T] >= front_ms) | ~nxt_same | (nxt_same & (nxt_t >= front_ms))
            self.state.hist = h[keep]

    def _prune_counted(self, front_ms: int) -> None:
        """Drop counted meetings no later one can count with."""
        c = self.state.counted
        if c.shape[0]:
            # A waiting meeting counts only for one that starts within the window; none can start before the front.
            old = (c[:, C_ALERT] < 0) & (np.round(c[:, C_START] * 1000.0)
                                         <= front_ms - self._keep_ms[c[:, C_CH].astype(np.int64)])
            self.state.counted = c[~old]


def _position_at(t: np.ndarray, x: np.ndarray, y: np.ndarray, tau: float) -> tuple[float, float]:
    """A track's interpolated position at ``tau`` (within its span): on the last segment starting at or before."""
    i = int(np.searchsorted(t, tau, side="right")) - 1
    i = min(max(i, 0), t.size - 2) if t.size > 1 else 0
    if t.size == 1 or t[i + 1] == t[i]:
        return float(x[i]), float(y[i])
    f = (tau - t[i]) / (t[i + 1] - t[i])
    return float(x[i] + f * (x[i + 1] - x[i])), float(y[i] + f * (y[i + 1] - y[i]))
