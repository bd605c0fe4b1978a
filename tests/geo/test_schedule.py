"""Zone schedules: a reference in datetime arithmetic, and an alert when a schedule starts on a subject
already inside.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.engine.monitor import Monitor, fold_alerts
from geomon.errors import InputError
from geomon.geo.schedule import DAYS, parse_schedules
from geomon.io.load import load_zones
from tests import scenario as sc


def active_reference(t_ms, window):
    offset = window.get("utc_offset", "+08:00")
    sign = -1 if offset[0] == "-" else 1
    tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:])))
    local = datetime.fromtimestamp(t_ms / 1000, tz)
    minute = local.hour * 60 + local.minute
    start = int(window["start"][:2]) * 60 + int(window["start"][3:])
    end = int(window["end"][:2]) * 60 + int(window["end"][3:])
    days = window.get("days", list(DAYS))
    if start < end:
        return start <= minute < end and DAYS[local.weekday()] in days
    if minute >= start:
        return DAYS[local.weekday()] in days
    if minute < end:
        return DAYS[(local - timedelta(days=1)).weekday()] in days
    return False


hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
windows = st.fixed_dictionaries(
    {"start": hhmm, "end": hhmm},
    optional={"days": st.lists(st.sampled_from(DAYS), unique=True),
              "utc_offset": st.sampled_from(["+08:00", "+00:00", "-05:30", "+05:45"])})


@settings(max_examples=150, deadline=None)
@given(windows, st.lists(st.integers(0, 4_000_000_000_000), min_size=1, max_size=30))
def test_active_matches_datetime_reference(window, times):
    w = parse_schedules([json.dumps(window), None], ["z", "always"])
    t = np.array(times, dtype=np.int64)
    got = w.active(t, np.zeros(t.size, dtype=np.int64))
    want = np.array([active_reference(int(x), window) for x in times])
    assert (got == want).all()
    assert w.active(t, np.ones(t.size, dtype=np.int64)).all()  # no schedule: always


def test_bad_schedule_is_an_input_error_naming_the_zone():
    with pytest.raises(InputError, match="zone bar-7.*start"):
        parse_schedules([json.dumps({"start": "25:00", "end": "06:00"})], ["bar-7"])


def test_schedule_starting_while_inside_raises_an_alert():
    # A bar closed to the subject from 22:00 local (14:00 UTC); the subject sits
    # inside it from 21:30 to 23:00 local: popular trackers only alert on an
    # entry transition and stay silent.
    bar = shapely.Point(sc.X0 + 2000, sc.Y0).buffer(100, 32)
    fc = {"type": "FeatureCollection", "features": [
        sc.feature("county", "permitted", shapely.box(sc.X0 - 5000, sc.Y0 - 5000, sc.X0 + 5000, sc.Y0 + 5000)),
        sc.feature("bar", "forbidden", bar, schedule=json.dumps({"start": "22:00", "end": "06:00"})),
    ]}
    zones = load_zones(fc)
    t = sc.T0_MS + int(13.5 * 3600_000) + np.arange(0, 90 * 60_000, 30_000)  # 21:30 .. 23:00 local
    fixes = sc.fixes("s1", np.full(t.size, sc.X0 + 2000.0), np.full(t.size, sc.Y0), t)
    alerts = fold_alerts(Monitor(zones, sc.subjects(1)).process(fixes)).to_pylist()
    # Sitting 90 min in a bar at one exact point is also a dwell and a stuck
    # device: other detectors' business, not the point here.
    alerts = [a for a in alerts if a["kind"] in ("forbidden_entry", "permitted_exit")]
    assert [(a["kind"], a["zone_id"]) for a in alerts] == [("forbidden_entry", "bar")]
    onset = int(alerts[0]["onset_ts"].timestamp() * 1000)
    assert onset == sc.T0_MS + 14 * 3600_000  # the first fix once the schedule applies
