"""Zone schedules: when a zone applies, in local time.

A zone's ``schedule`` property (JSON) is one window or a list of windows::

    {"start": "22:00", "end": "06:00", "days": ["fri", "sat"], "utc_offset": "+08:00"}

``start``/``end`` are local times of day; a window whose end is not after its
start runs past midnight. ``days`` (optional, default every day) are the days
a window *starts* on; ``utc_offset`` (optional) defaults to China Standard
Time, +08:00. A zone without a schedule always applies.

The detector asks "does zone z apply at time t" for every (fix, zone) pair;
because its decisions follow states, not transitions, a schedule that starts
while the subject is already inside a zone makes the next fixes violations,
and the alert follows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from geomon.errors import InputError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")
_MS_PER_MIN = 60_000
_MIN_PER_DAY = 1440
#: 1970-01-01, day 0 of the epoch, was a Thursday (index 3 with Monday = 0).
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class Windows:
    """Schedule windows of many zones as flat arrays (one row per window)."""

    zone: np.ndarray  # int64 zone code
    start_min: np.ndarray  # local minute of day
    end_min: np.ndarray
    days_mask: np.ndarray  # bit d set: the window starts on weekday d (Monday = 0)
    offset_min: np.ndarray  # local time minus UTC, minutes
    scheduled: np.ndarray  # bool per zone: has a schedule at all

    def active(self, t_ms: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """Does each zone apply at each time? (pairs, element-wise)"""
        t_ms = np.asarray(t_ms, dtype=np.int64)
        zone = np.asarray(zone, dtype=np.int64)
        out = ~self.scheduled[zone]
        todo = np.flatnonzero(~out)
        if todo.size == 0 or self.zone.size == 0:
            return out
        for w in range(self.zone.size):
            mine = todo[zone[todo] == self.zone[w]]
            if mine.size == 0:
                continue
            local_min = t_ms[mine] // _MS_PER_MIN + self.offset_min[w]
            minute = local_min % _MIN_PER_DAY
            weekday = (local_min // _MIN_PER_DAY + _EPOCH_WEEKDAY) % 7
            start, end = self.start_min[w], self.end_min[w]
            if start < end:
                inside = (minute >= start) & (minute < end)
                start_day = weekday
            else:  # runs past midnight: after midnight it belongs to the previous day's window
                inside = (minute >= start) | (minute < end)
                start_day = np.where(minute < end, (weekday + 6) % 7, weekday)
            inside &= ((self.days_mask[w] >> start_day) & 1).astype(bool)
            out[mine] |= inside
        return out


def _minutes(value, zone_id: str, key: str) -> int:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise InputError(f"zone {zone_id}", f"schedule {key} must be \"HH:MM\", got {value!r}", field="schedule")
    return int(m.group(1)) * 60 + int(m.group(2))


def _offset(value, zone_id: str) -> int:
    m = _OFFSET.match(value) if isinstance(value, str) else None
    if m is None:
        raise InputError(f"zone {zone_id}", f"schedule utc_offset must be like \"+08:00\", got {value!r}",
                         field="schedule")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return minutes if m.group(1) == "+" else -minutes


def parse_schedules(schedules, zone_ids) -> Windows:
    """Parse every zone's ``schedule`` JSON (None = always applies) into :class:`Windows`."""
    rows = []
    scheduled = np.zeros(len(schedules), dtype=bool)
    for z, (text, zid) in enumerate(zip(schedules, zone_ids)):
        if text is None:
            continue
        spec = json.loads(text) if isinstance(text, str) else text
        windows = spec if isinstance(spec, list) else [spec]
        if not windows or not all(isinstance(w, dict) for w in windows):
            raise InputError(f"zone {zid}", "schedule must be a window object or a list of them", field="schedule")
        scheduled[z] = True
        for w in windows:
            days = w.get("days", list(DAYS))
            if not isinstance(days, list) or any(d not in DAYS for d in days):
                raise InputError(f"zone {zid}", f"schedule days must be a list of {DAYS}, got {days!r}",
                                 field="schedule")
            mask = sum(1 << DAYS.index(d) for d in set(days))
            rows.append((z, _minutes(w.get("start"), zid, "start"), _minutes(w.get("end"), zid, "end"), mask,
                         _offset(w.get("utc_offset", "+08:00"), zid)))
    cols = list(zip(*rows)) if rows else [[], [], [], [], []]
    return Windows(*(np.asarray(c, dtype=np.int64) for c in cols), scheduled=scheduled)
