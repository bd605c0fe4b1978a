"""The Monitor on hand-made paths whose right answers are known in advance."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.engine.monitor import Monitor, alert_id, fold_alerts
from tests import scenario as sc

X0, Y0, T0 = sc.X0, sc.Y0, sc.T0_MS


@pytest.fixture(scope="module")
def zones():
    return sc.zones()


@pytest.fixture(scope="module")
def subjects():
    return sc.subjects(3)


def _rows(table):
    return fold_alerts(table).to_pylist()


def _ms(ts):
    return int(ts.timestamp() * 1000)


def test_walk_through_bar_is_one_entry_with_its_end(zones, subjects):
    # 1.2 m/s every 30 s: 36 m steps across a 200 m wide bar: about 5 fixes inside (legacy rule's counts).
    path = sc.walk("s1", (X0 + 1500, Y0), (X0 + 2500, Y0))
    alerts = _rows(Monitor(zones, subjects, sc.legacy_rules()).process(path))
    assert len(alerts) == 1
    a = alerts[0]
    assert (a["kind"], a["subject_id"], a["zone_id"]) == ("forbidden_entry", "s1", "bar")
    t = path.column("ts").cast(pa.int64()).to_numpy()
    x = X0 + 1500 + (t - T0) / 1000 * 1.2
    depth = 100 - np.abs(x - (X0 + 2000))
    buffer = min(20.0, 0.5 * 100 * np.sqrt(np.pi * (1 - 1e-3) / np.pi))  # rules' 20 m, within half the radius
    first_deep = t[np.argmax(depth >= buffer)]
    assert _ms(a["onset_ts"]) == first_deep
    # Ordinary level: 3 fixes and 30 s after onset.
    deep = t[depth >= buffer]
    assert _ms(a["confirmed_ts"]) == deep[2]
    # Ends at the first fix back outside, after 3 fixes outside.
    assert _ms(a["ended_ts"]) == t[np.argmax((t > deep[-1]) & (depth < 0))]
    assert a["office_id"] == "office-w" and a["location_office_id"] == "office-e"
    assert a["alert_id"] == alert_id("forbidden_entry", "s1", "bar", first_deep)
    assert json.loads(a["details"])["event"] == "ended"


def test_single_outlier_inside_a_zone_raises_nothing(zones, subjects):
    path = sc.walk("s1", (X0 + 1000, Y0 + 500), (X0 + 3000, Y0 + 500))  # passes 500 m north of the bar
    x = path.column("lon").to_numpy().copy()
    y = path.column("lat").to_numpy().copy()
    lon, lat = sc.FRAME.unproject(np.array([X0 + 2000.0]), np.array([Y0]))
    k = len(x) // 2
    x[k], y[k] = lon[0], lat[0]  # one multipath jump into the bar's centre
    path = path.set_column(2, "lon", pa.array(x)).set_column(3, "lat", pa.array(y))
    assert Monitor(zones, subjects).process(path).num_rows == 0


def test_leaving_the_county_is_a_permitted_exit(zones, subjects):
    path = sc.walk("s2", (X0, Y0 + 4500), (X0, Y0 + 6000))  # s2 is strict: 2 fixes, 20 s (legacy rule)
    alerts = _rows(Monitor(zones, subjects, sc.legacy_rules()).process(path))
    assert [(a["kind"], a["zone_id"], a["severity"]) for a in alerts] == [("permitted_exit", "county", "high")]
    t = path.column("ts").cast(pa.int64()).to_numpy()
    y = Y0 + 4500 + (t - T0) / 1000 * 1.2
    outside = t[y - (Y0 + 5000) >= 20.0]
    assert _ms(alerts[0]["onset_ts"]) == outside[0]
    assert _ms(alerts[0]["confirmed_ts"]) == outside[1]
    assert alerts[0]["ended_ts"] is None


def test_crossing_between_two_fixes_is_caught(zones, subjects):
    # Driving at 15 m/s with a fix every 30 s: 450 m steps jump over the 200 m bar.
    t = T0 + np.array([0, 30_000, 60_000, 90_000])
    x = X0 + np.array([1100.0, 1550.0, 2450.0, 2900.0])
    path = sc.fixes("s3", x, np.full(4, Y0), t)
    alerts = _rows(Monitor(zones, subjects).process(path))
    assert len(alerts) == 1
    a = alerts[0]
    assert a["zone_id"] == "bar" and json.loads(a["details"])["crossing"] is True
    # Entry at x = X0 + 1900 m, exit at X0 + 2100 m along the 900 m segment.
    assert abs(_ms(a["onset_ts"]) - (T0 + 30_000 + 350 / 900 * 30_000)) <= 50
    assert abs(_ms(a["ended_ts"]) - (T0 + 30_000 + 550 / 900 * 30_000)) <= 50
    assert _ms(a["confirmed_ts"]) == T0 + 60_000


def test_a_chord_between_vague_fixes_is_no_crossing(zones, subjects):
    # Two fixes 140 m either side of the middle of the 200 m bar (X0 + 2000), 30 s apart: a crossing when the
    # fixes are 3 m sharp; no path at all when each is only known to 80 m (the chord's middle, 57 m sigma,
    # would have to lie 20 + 1.645 x 57 m deep, past the bar's 100 m radius), as with cell fixes at a bar.
    t = T0 + np.array([0, 30_000])
    x = X0 + np.array([1860.0, 2140.0])
    sharp = _rows(Monitor(zones, subjects).process(sc.fixes("s3", x, np.full(2, Y0), t)))
    assert [(a["zone_id"], json.loads(a["details"])["crossing"]) for a in sharp] == [("bar", True)]
    vague = _rows(Monitor(zones, subjects).process(sc.fixes("s3", x, np.full(2, Y0), t, accuracy_m=80.0)))
    assert vague == []


def test_zone_assigned_to_one_subject_does_not_alert_others(zones, subjects):
    s1 = sc.walk("s1", (X0, Y0 + 1700), (X0, Y0 + 2300))
    s3 = sc.walk("s3", (X0, Y0 + 1700), (X0, Y0 + 2300))
    alerts = _rows(Monitor(zones, subjects).process(pa.concat_tables([s1, s3])))
    assert [(a["subject_id"], a["zone_id"], a["severity"]) for a in alerts] == [("s1", "victim-1", "high")]


def test_unknown_subject_and_late_fix_are_quarantined_and_counted(zones, subjects):
    m = Monitor(zones, subjects)
    m.process(sc.fixes("s1", [X0, X0 + 10], [Y0, Y0], [T0 + 60_000, T0 + 90_000]))
    batch = pa.concat_tables([
        sc.fixes("nobody", [X0], [Y0], [T0 + 100_000]),
        sc.fixes("s1", [X0 + 20], [Y0], [T0 + 30_000]),  # older than s1's last fix
        sc.fixes("s1", [X0 + 30], [Y0], [T0 + 120_000]),
    ])
    m.process(batch)
    reasons = sorted(m.quarantine.column("reason").to_pylist())
    assert reasons == ["late_fix", "subject_unknown"]
    assert m.n_read == 5 and m.n_accepted == 3 and m.n_quarantined == 2


def _stream():
    """Several subjects wandering around the bar, the victim's home and the county edge, time-ordered."""
    rng = np.random.default_rng(11)
    parts = []
    targets = [(X0 + 2000, Y0), (X0, Y0 + 2000), (X0, Y0 + 5100), (X0 + 4990, Y0)]
    for i in range(3):
        pts = [np.array([X0 - 1000.0, Y0])]
        for k in range(5):
            goal = np.array(targets[rng.integers(len(targets))]) + rng.normal(0, 60, 2)
            pts.append(goal)
        pts = np.array(pts)
        seg = np.repeat(np.arange(len(pts) - 1), 25)
        frac = np.tile(np.linspace(0, 1, 25, endpoint=False), len(pts) - 1)
        xy = pts[seg] + frac[:, None] * (pts[seg + 1] - pts[seg]) + rng.normal(0, 8, (seg.size, 2))
        t = T0 + np.cumsum(rng.integers(15_000, 60_000, seg.size))
        part = sc.fixes(f"s{i + 1}", xy[:, 0], xy[:, 1], t)
        # Runs of cell fixes, whose noise grows along a run that may span batches.
        cell = (np.arange(seg.size) // 7) % 5 == 3
        part = part.set_column(4, "source", pa.array(np.where(cell, "cell", "gnss")))
        part = part.set_column(5, "accuracy_m", pa.array(np.where(cell, 120.0, 3.0).astype(np.float32)))
        parts.append(part)
    table = pa.concat_tables(parts)
    return table.take(pa.array(np.argsort(table.column("ts").cast(pa.int64()).to_numpy(), kind="stable")))


_STREAM = None


def _reference(zones, subjects):
    global _STREAM
    if _STREAM is None:
        stream = _stream()
        _STREAM = (stream, fold_alerts(Monitor(zones, subjects).process(stream)))
    return _STREAM


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 375), max_size=8))
def test_any_split_into_batches_gives_the_same_alerts(zones, subjects, cuts):
    stream, expected = _reference(zones, subjects)
    assert expected.num_rows >= 1  # the stream does violate
    bounds = [0, *sorted(set(cuts)), stream.num_rows]
    m = Monitor(zones, subjects)
    parts = [m.process(stream.slice(a, b - a)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    got = fold_alerts(pa.concat_tables(parts))
    assert got.to_pylist() == expected.to_pylist()


def _sitting_by_the_edge_with_a_multipath_run(rng, start_fix=40, run=6, offset_m=40.0):
    """s1 sits 12 m inside the county's north edge for 30 min, with a multipath run.

    ``run`` fixes from ``start_fix`` are ``offset_m`` north.
    """
    n = 120
    t = T0 + np.arange(n) * 15_000
    x = X0 + rng.normal(0, 3.0, n)
    y = Y0 + 5000 - 12 + rng.normal(0, 3.0, n)
    y[start_fix:start_fix + run] += offset_m
    return sc.fixes("s1", x, y, t, accuracy_m=3.0)


#: Fusion without its multipath defence: a jump that settles within multipath's reach is not doubted.
NAIVE_FUSION = {"run_prior_odds": 0.0}


@pytest.mark.parametrize("seed", range(5))
def test_multipath_run_beside_the_edge_is_not_a_breach(zones, subjects, seed):
    fixes = _sitting_by_the_edge_with_a_multipath_run(np.random.default_rng(seed))
    # Six raw fixes 28 m outside over 75 s: plain point in polygon calls it an
    # exit, and so does the fused track without its multipath defences under
    # the legacy rule (fixes and seconds).
    raw_y = sc.FRAME.project(fixes.column("lon").to_numpy(), fixes.column("lat").to_numpy())[1]
    assert (raw_y > Y0 + 5000 + 20).sum() >= 6
    assert _rows(Monitor(zones, subjects, sc.legacy_rules(), fusion_params=NAIVE_FUSION).process(fixes)) != []
    assert _rows(Monitor(zones, subjects, sc.legacy_rules()).process(fixes)) == []
    assert _rows(Monitor(zones, subjects).process(fixes)) == []


def test_jump_that_stays_is_confirmed_later(zones, subjects):
    # The same jump lasting the rest of the 20 minutes is a real move: it must
    # alert, once it has lasted well beyond multipath runs (mean 1 minute): with
    # the default priors a 40 m jump of a still track starts 99.5 % doubted,
    # and the doubt halves its odds every 42 s (jump_memory_s ln 2).
    fixes = _sitting_by_the_edge_with_a_multipath_run(np.random.default_rng(0), run=80)
    rows = _rows(Monitor(zones, subjects).process(fixes))
    assert [(a["kind"], a["zone_id"]) for a in rows] == [("permitted_exit", "county")]
    jump = T0 + 40 * 15_000
    onset, confirmed = _ms(rows[0]["onset_ts"]), _ms(rows[0]["confirmed_ts"])
    assert jump + 180_000 <= onset <= jump + 720_000
    assert confirmed - onset <= 60_000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), max_size=30), st.booleans())
def test_first_per_key_matches_a_dictionary(keys, presort):
    from geomon.engine.monitor import first_per_key

    if presort:
        keys = sorted(keys)
    code = np.array([k[0] for k in keys], np.int64)
    t = np.array([k[1] for k in keys], np.int64)
    seen, expected = set(), []
    for i, k in enumerate(keys):
        if k not in seen:
            seen.add(k)
            expected.append(i)
    got = first_per_key(code, t)
    assert (list(range(len(keys))) if got is None else got.tolist()) == expected
