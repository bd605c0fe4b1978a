"""Chunk invariance across every detector at once: any batching, one fix at a time included, gives the alerts
and stays of a single batch (geofencing on the fused track, lost contact, check-ins, dwell, night, frequent contact
and victim protection)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.cli.main import SAMPLE_DIR
from geomon.engine.monitor import Monitor, fold_alerts
from tests.scenario import companion

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"
ALL = ("lost_contact", "checkins", "stays", "night")
#: Subjects whose day raises every kind the sample has: night kinds, forbidden entries and dwells, permitted exits.
CHOSEN = ["S0168", "S0146", "S0235", "S0150", "S0281", "S0001"]
#: P1, a person of concern to S0001, walks with it three times; V1, protected from S0168, is 20 m from it once.
CONCERN = {"P1": ["S0001"]}
ORDERS = [{"subject_id": "S0168", "victim_id": "V1", "warning_m": 300.0, "alert_m": 50.0}]


def _at(hour: int) -> int:
    """Ten past ``hour`` on the sample's day (ms)."""
    return int((datetime(2026, 11, 2, tzinfo=timezone.utc) + timedelta(hours=hour, minutes=10)).timestamp() * 1000)


def _stream() -> pa.Table:
    """The chosen subjects' day, with three hours of S0001 silent (lost contact) and S0146 checking in twice."""
    t = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    t = t.filter(pc.is_in(t.column("subject_id"), pa.array(CHOSEN)))
    t = pa.concat_tables([t, companion(t, "S0001", "P1", [_at(0), _at(6), _at(8)], 5.0),
                          companion(t, "S0168", "V1", [_at(12)], 20.0)]).sort_by([("ts", "ascending")])
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    start = int(datetime(2026, 11, 2, 2, tzinfo=timezone.utc).timestamp() * 1000)
    silent = (pc.equal(t.column("subject_id"), "S0001").to_numpy(zero_copy_only=False)
              & (ts >= start) & (ts < start + 3 * 3_600_000))
    t = t.filter(pa.array(~silent))
    source = np.array(t.column("source").to_pylist(), dtype=object)
    s146 = np.flatnonzero(pc.equal(t.column("subject_id"), "S0146").to_numpy(zero_copy_only=False))
    source[s146[[100, 900]]] = "checkin"
    return t.set_column(t.schema.get_field_index("source"), "source", pa.array(source.tolist(), pa.string()))


def _run(stream: pa.Table, bounds: list[int]):
    m = Monitor(ZONES, SUBJECTS, detectors=ALL, concern=CONCERN, protections=ORDERS)
    events, stays = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            events.append(m.process(stream.slice(a, b - a)))
            stays.append(m.take_stays())
    stays = pa.concat_tables(stays).sort_by([("subject_id", "ascending"), ("started_at", "ascending")])
    return fold_alerts(pa.concat_tables(events)).to_pylist(), stays.to_pylist()   # stays: a set, in order


@pytest.fixture(scope="module")
def reference():
    stream = _stream()
    alerts, stays = _run(stream, [0, stream.num_rows])
    kinds = {a["kind"] for a in alerts}
    assert {"forbidden_entry", "permitted_exit", "dwell_concern", "curfew_breach", "night_activity",
            "lost_contact", "missed_checkin", "frequent_contact", "victim_warning", "victim_breach"} <= kinds, kinds
    assert stays
    return stream, alerts, stays


@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_any_batching_gives_the_alerts_and_stays_of_one_batch(reference, cuts):
    stream, alerts, stays = reference
    bounds = sorted({0, stream.num_rows, *(int(c * stream.num_rows) for c in cuts)})
    assert _run(stream, bounds) == (alerts, stays)


def test_one_fix_at_a_time_gives_the_alerts_of_one_batch(reference):
    """Every fix its own batch, over two hours around S0146's forbidden entry, S0168's curfew breach and victim
    alerts, and S0001's third meeting with P1 (alone in this window: no frequent contact, but a meeting carried)."""
    stream, alerts, _ = reference
    ts = stream.column("ts").cast(pa.int64()).to_numpy()
    subject = np.array(stream.column("subject_id").to_pylist(), dtype=object)
    keep = np.zeros(stream.num_rows, bool)
    for who, kind, with_ in (("S0146", "forbidden_entry", ()), ("S0168", "curfew_breach", ()),
                             ("S0168", "victim_breach", ("V1",)), ("S0001", "frequent_contact", ("P1",))):
        onset = min(int(a["onset_ts"].timestamp() * 1000) for a in alerts
                    if (a["subject_id"], a["kind"]) == (who, kind))
        keep |= np.isin(subject, [who, *with_]) & (ts >= onset - 3_600_000) & (ts < onset + 3_600_000)
    window = stream.filter(pa.array(keep))
    whole = _run(window, [0, window.num_rows])
    assert {"forbidden_entry", "curfew_breach", "victim_warning", "victim_breach"} <= {a["kind"] for a in whole[0]}
    assert _run(window, list(range(window.num_rows + 1))) == whole


def test_the_geofence_beside_the_other_detectors_gives_the_same_alerts_and_stays(reference, monkeypatch):
    """Every batch large enough for the geofence to run on its own thread beside the other detectors."""
    import geomon.engine.monitor as monitor_module

    stream, alerts, stays = reference
    monkeypatch.setattr(monitor_module, "PARALLEL_DETECT_FIXES", 1)
    calls = []
    real = monitor_module._SIDE_POOL.submit
    monkeypatch.setattr(monitor_module._SIDE_POOL, "submit", lambda *a, **k: calls.append(1) or real(*a, **k))
    bounds = [0, stream.num_rows // 3, stream.num_rows // 2, stream.num_rows]
    assert _run(stream, bounds) == (alerts, stays)
    assert len(calls) == 3
