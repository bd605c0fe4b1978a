"""Contact alerts from the Monitor: lost contact on the event-time watermark, stuck device, any batching."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.engine.monitor import Monitor, fold_alerts
from tests import scenario as sc

X0, Y0, T0 = sc.X0, sc.Y0, sc.T0_MS
MIN = 60_000


def _contact(table):
    rows = fold_alerts(table).to_pylist()
    return [r for r in rows if r["kind"] in ("lost_contact", "location_degraded", "device_stuck")]


def _ms(ts):
    return int(ts.timestamp() * 1000)


def _still(subject, t_ms, jitter=True, seed=0):
    rng = np.random.default_rng(seed)
    n = len(t_ms)
    dx = rng.normal(0, 3, n) if jitter else np.zeros(n)
    return sc.fixes(subject, X0 - 1000 + dx, np.full(n, Y0), np.asarray(t_ms, np.int64))


def _stream():
    """s1 (ordinary, 30 min) goes silent 40 min; s2 (strict, 10 min) 12 min; s3 repeats one place 15 min."""
    every = np.arange(0, 120 * MIN, 15_000)
    s1 = _still("s1", T0 + every[(every < 20 * MIN) | (every >= 60 * MIN)], seed=1)
    s2 = _still("s2", T0 + every[(every < 30 * MIN) | (every >= 42 * MIN)], seed=2)
    stuck = (every >= 50 * MIN) & (every < 65 * MIN)
    s3 = _still("s3", T0 + every, seed=3)
    lon = s3.column("lon").to_numpy().copy()
    lat = s3.column("lat").to_numpy().copy()
    lon[stuck], lat[stuck] = lon[stuck][0], lat[stuck][0]
    s3 = s3.set_column(2, "lon", pa.array(lon)).set_column(3, "lat", pa.array(lat))
    table = pa.concat_tables([s1, s2, s3])
    return table.take(pa.array(np.argsort(table.column("ts").cast(pa.int64()).to_numpy(), kind="stable")))


def test_lost_contact_per_level_and_stuck_device():
    zones, subjects = sc.zones(), sc.subjects(3)   # s1 ordinary, s2 strict, s3 ordinary
    rows = _contact(Monitor(zones, subjects).process(_stream()))
    got = {(r["kind"], r["subject_id"]): r for r in rows}
    assert set(got) == {("lost_contact", "s1"), ("lost_contact", "s2"), ("device_stuck", "s3")}
    last1, back1 = T0 + 20 * MIN - 15_000, T0 + 60 * MIN
    lost1 = got[("lost_contact", "s1")]
    assert (_ms(lost1["onset_ts"]), _ms(lost1["ended_ts"])) == (last1 + 30 * MIN, back1)
    assert json.loads(lost1["details"])["gap_s"] == (back1 - last1) / 1000
    lost2 = got[("lost_contact", "s2")]
    assert _ms(lost2["onset_ts"]) == T0 + 30 * MIN - 15_000 + 10 * MIN   # strict: 10 minutes
    stuck = got[("device_stuck", "s3")]
    # 20 identical fixes and 10 minutes (ordinary): confirmed at the later of the two.
    assert _ms(stuck["onset_ts"]) == T0 + 50 * MIN
    assert _ms(stuck["confirmed_ts"]) == T0 + 50 * MIN + max(19 * 15_000, 10 * MIN)
    assert _ms(stuck["ended_ts"]) == T0 + 65 * MIN
    # Placed where the subject was: lost contact at the fix that ended it.
    assert abs(lost1["lon"] - 116.0) < 5 and stuck["lat"] > 0


def test_silence_is_noticed_by_the_watermark_without_a_fix_from_the_silent_subject():
    zones, subjects = sc.zones(), sc.subjects(3)
    monitor = Monitor(zones, subjects)
    monitor.process(_still("s1", [T0, T0 + 15_000]))
    # Only s2 reports; once the stream's time passes s1's last fix + 30 min, s1 is lost.
    early = _contact(monitor.process(_still("s2", [T0 + 29 * MIN])))
    assert early == []
    late = _contact(monitor.process(_still("s2", [T0 + 31 * MIN])))
    assert [(r["kind"], r["subject_id"], _ms(r["onset_ts"]), r["ended_ts"]) for r in late] == [
        ("lost_contact", "s1", T0 + 15_000 + 30 * MIN, None)]
    # Live operation: the clock moves the watermark even when nobody reports.
    quiet = _contact(monitor.process(_still("s1", [])[:0], now_ms=T0 + 31 * MIN + 11 * MIN))
    assert [(r["kind"], r["subject_id"]) for r in quiet] == [("lost_contact", "s2")]


_REFERENCE = None


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 1400), max_size=6))
def test_any_batching_gives_the_same_contact_alerts(cuts):
    global _REFERENCE
    zones, subjects = sc.zones(), sc.subjects(3)
    stream = _stream()
    if _REFERENCE is None:
        _REFERENCE = _contact(Monitor(zones, subjects).process(stream))
    bounds = [0, *sorted(set(min(c, stream.num_rows) for c in cuts)), stream.num_rows]
    monitor = Monitor(zones, subjects)
    parts = [monitor.process(stream.slice(a, b - a)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    assert _contact(pa.concat_tables(parts)) == _REFERENCE


def test_default_and_opt_in_detectors_are_wired_into_the_monitor():
    import pytest

    zones, subjects = sc.zones(), sc.subjects(3)
    # s1 sits in the bar (a forbidden zone, so a place of concern) for 40 minutes, reporting no check-in.
    t = T0 + np.arange(0, 40 * MIN, 15_000)
    rng = np.random.default_rng(0)
    bar = sc.fixes("s1", X0 + 2000 + rng.normal(0, 2, t.size), Y0 + rng.normal(0, 2, t.size), t)
    kinds = {r["kind"] for r in fold_alerts(Monitor(zones, subjects).process(bar,
                                                                            now_ms=T0 + 13 * 3600_000)).to_pylist()}
    assert "dwell_concern" in kinds and "missed_checkin" not in kinds   # dwell is on by default, check-ins opt-in
    kinds = {r["kind"] for r in fold_alerts(Monitor(zones, subjects,
                                                    detectors=("lost_contact",)).process(bar)).to_pylist()}
    assert "dwell_concern" not in kinds
    full = Monitor(zones, subjects, detectors=("lost_contact", "checkins", "stays", "night"))
    # A check-in is due daily at 20:00 local (12:00 UTC); the watermark passes the first one.
    rows = fold_alerts(full.process(bar, now_ms=T0 + 13 * 3600_000)).to_pylist()
    got = {r["kind"]: r for r in rows}
    assert {"dwell_concern", "missed_checkin", "forbidden_entry"} <= set(got)
    assert got["dwell_concern"]["zone_id"] == "bar"
    assert _ms(got["missed_checkin"]["onset_ts"]) == T0 + 12 * 3600_000
    with pytest.raises(ValueError, match="unknown detectors"):
        Monitor(zones, subjects, detectors=("tea_leaves",))


def test_every_alert_is_routed_to_the_office_whose_jurisdiction_it_happened_in():
    # s1 sits in the bar (+2 km east: office-e's half of the county) until lost contact; s2 goes silent at the west.
    zones, subjects = sc.zones(), sc.subjects(3)
    t = T0 + np.arange(0, 40 * MIN, 15_000)
    rows = [sc.fixes("s1", np.full(t.size, X0 + 2000.0), np.full(t.size, Y0), t),
            sc.fixes("s2", np.full(8, X0 - 2000.0), np.full(8, Y0), t[:8])]
    import pyarrow as pa

    alerts = fold_alerts(Monitor(zones, subjects).process(pa.concat_tables(rows), now_ms=T0 + 3 * 3600_000))
    routed = {(r["kind"], r["subject_id"]): (r["office_id"], r["location_office_id"]) for r in alerts.to_pylist()}
    assert routed[("forbidden_entry", "s1")] == ("office-w", "office-e")
    assert routed[("dwell_concern", "s1")] == ("office-w", "office-e")      # a behaviour alert, routed too
    assert routed[("lost_contact", "s2")] == ("office-w", "office-w")
