"""The judging half of the meeting watch (:mod:`geomon.engine.meetings`): stretches into meetings, meetings
counted in their window (frequent contact) or confirmed (victim protection), and their alert rows.

:class:`MeetingJudge` is mixed into :class:`geomon.engine.meetings.MeetingWatch`; it reads the watch's
channels and its declared state (``open``, ``counted``) and keeps nothing of its own. The column layouts
of the state's tables are here, with the one search (:class:`Channel`) they are judged by.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from geomon.engine.rows import alert_table
from geomon.kernels import encounters as _enc

__all__ = ["JOIN_S", "Channel", "MeetingJudge"]

#: Encounters of one pair less than this apart are one meeting (noise can cut a meeting in two), s.
JOIN_S = 900.0


def _concern_map(persons_of_concern, subject_ids) -> dict:
    """Subject id -> set of person ids of concern to it."""
    if isinstance(persons_of_concern, dict):
        out = {s: set() for s in subject_ids}
        for person, subjects in persons_of_concern.items():
            for s in (subject_ids if subjects is None else subjects):
                if s in out:
                    out[s].add(person)
        return out
    everyone = set(persons_of_concern)
    return {s: everyone - {s} for s in subject_ids}


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


class Channel:
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

    def __eq__(self, other) -> bool:   # configuration, compared as such (tests/run/test_live.py)
        return isinstance(other, Channel) and (self.index, self.kind, self.distance_m, self.z, self.directions) \
            == (other.index, other.kind, other.distance_m, other.z, other.directions)


class MeetingJudge:
    """Judging methods of :class:`geomon.engine.meetings.MeetingWatch` (a mixin: the watch holds the state)."""

    def _channel_step(self, ch: Channel, iv: np.ndarray, until: np.ndarray) -> list[pa.Table]:
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

    def _joins(self, ch: Channel, cur: np.ndarray, r: np.ndarray) -> bool:
        if ch.kind == "frequent_contact":
            return self._ms(r[_enc.E_START]) - self._ms(cur[O_END]) < _JOIN_MS
        return r[_enc.E_START] <= cur[O_END]   # touching stretches, as geomon.kernels.encounters.merge_intervals

    def _final(self, ch: Channel, cur: np.ndarray, front_ms: int) -> bool:
        """No later stretch can join ``cur``: its pair is complete past its end (by JOIN_S for meetings)."""
        if ch.kind == "frequent_contact":
            return front_ms - self._ms(cur[O_END]) >= _JOIN_MS
        return cur[O_END] < front_ms / 1000.0

    def _opened(self, ch: Channel, r: np.ndarray) -> np.ndarray:
        cur = np.zeros(N_OPEN)
        cur[O_CH] = ch.index
        cur[[O_A, O_B, O_START, O_END, O_DMIN, O_TMIN, O_X, O_Y, O_X0, O_Y0]] = r[
            [_enc.E_A, _enc.E_B, _enc.E_START, _enc.E_END, _enc.E_DMIN, _enc.E_TMIN, _enc.E_X, _enc.E_Y, F_X0, F_Y0]]
        return cur

    # ----------------------------------------------------------------- judging

    def _judge(self, ch: Channel, cur: np.ndarray, *, final: bool) -> list[pa.Table]:
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

    def _judge_meeting(self, ch: Channel, cur: np.ndarray, me: int, other: int, q: int, final: bool) -> list:
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
            done = ((c[:, C_CH] == ch.index) & (c[:, C_ME] == me) & (c[:, C_OTHER] == other)
                    & (c[:, C_ALERT] == start_ms))
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

    def _contact_rows(self, ch: Channel, cur: np.ndarray, me: int, other: int, *, ended: bool) -> pa.Table:
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

    def _victim_rows(self, ch: Channel, cur: np.ndarray, me: int, other: int, *, ended: bool) -> pa.Table:
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
