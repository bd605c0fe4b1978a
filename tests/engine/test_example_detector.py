"""The example detector (speeding), registered from outside the engine: kernel against its reference, in the
Monitor by name, any batching, a checkpoint round trip, and its rules entry."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomon.cli.main import SAMPLE_DIR
from geomon.engine.contract import REGISTRY
from geomon.engine.monitor import Monitor, fold_alerts
from geomon.engine.rows import subject_runs
from geomon.rules.load import default_rules_text, load_rules
from geomon.run.checkpoint import StateTracker, capture_global, encode_rows, state_layout
from tests.engine.example_speeding import N_STATE, SpeedingDetector, speeding_reference, speeding_step

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "rules.toml"
    ordinary = "[profiles.ordinary]\n"
    path.write_text(default_rules_text().replace(ordinary, ordinary + "speeding_mps = 12\n", 1))
    return load_rules(path)


@pytest.fixture(scope="module")
def fixes():
    table = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    keep = pc.is_in(table.column("subject_id"), value_set=pa.array([f"S{i:04d}" for i in range(1, 41)]))
    return table.filter(keep).sort_by([("ts", "ascending")])


def test_it_is_registered_by_its_own_module():
    assert REGISTRY["speeding"] is SpeedingDetector


@st.composite
def streams(draw):
    n = draw(st.integers(0, 40))
    code = np.sort(np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int64))
    steps = np.array(draw(st.lists(st.integers(0, 60_000), min_size=n, max_size=n)), np.int64)
    t = np.zeros(n, np.int64)
    for s in np.unique(code):       # time increases (or repeats) within each subject
        i = np.flatnonzero(code == s)
        t[i] = 1_700_000_000_000 + np.cumsum(steps[i])
    x = np.array(draw(st.lists(st.floats(-5e3, 5e3), min_size=n, max_size=n)))
    y = np.array(draw(st.lists(st.floats(-5e3, 5e3), min_size=n, max_size=n)))
    satellite = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    limit = np.array(draw(st.lists(st.sampled_from([0.0, 5.0, 30.0]), min_size=n, max_size=n)))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return code, t, x, y, satellite, limit, cuts


@settings(max_examples=150, deadline=None)
@given(streams())
def test_kernel_equals_its_reference_for_any_batching(stream):
    code, t, x, y, satellite, limit, cuts = stream
    state = np.full((4, N_STATE), np.nan)
    found = []
    for lo, hi in zip([0, *cuts], [*cuts, code.size]):   # batches cut between subjects' runs or inside them
        part = slice(lo, hi)
        order = np.argsort(code[part], kind="stable")
        c = code[part][order]
        _, offsets, subjects = subject_runs(c)
        rec = speeding_step(offsets, subjects, t[part][order], x[part][order], y[part][order],
                            satellite[part][order], limit[part][order], state)
        found += [(int(s), int(t[part][order][i])) for s, i in rec]
    # A batch cut inside a run keeps each subject's order, so the reference over the whole stream agrees.
    assert sorted(found) == sorted(speeding_reference(code, t, x, y, satellite, limit))


def test_the_monitor_runs_it_by_name_and_alerts_where_the_reference_does(rules, fixes):
    monitor = Monitor(ZONES, SUBJECTS, rules, detectors=("lost_contact", "speeding"))
    assert [d.name for d in monitor.detectors] == ["geofence", "lost_contact", "speeding"]
    alerts = fold_alerts(monitor.process(fixes))
    got = sorted((r["subject_id"], int(r["onset_ts"].timestamp() * 1000))
                 for r in alerts.to_pylist() if r["kind"] == "speeding")
    ordered = fixes.sort_by([("subject_id", "ascending"), ("ts", "ascending")])
    ids = ordered.column("subject_id").to_pylist()
    code = np.array([monitor.subject_code[s] for s in ids])
    x, y = monitor.zones.frame.project(ordered.column("lon").to_numpy(), ordered.column("lat").to_numpy())
    t = ordered.column("ts").cast(pa.int64()).to_numpy()
    satellite = np.array([s == "gnss" for s in ordered.column("source").to_pylist()])
    want = sorted((monitor.subject_ids[s], t_) for s, t_ in
                  speeding_reference(code, t, np.asarray(x), np.asarray(y), satellite, np.full(t.size, 12.0)))
    assert got == want and len(got) > 0     # the sample's drivers do speed past 12 m/s


def test_any_batching_and_a_checkpoint_round_trip_give_the_same_alerts(rules, fixes):
    whole = fold_alerts(Monitor(ZONES, SUBJECTS, rules, detectors=("speeding",)).process(fixes))
    first = Monitor(ZONES, SUBJECTS, rules, detectors=("speeding",))
    tracker = StateTracker(first)          # as live operation keeps one from the start
    half = fixes.num_rows // 2
    events = [first.process(fixes.slice(0, half))]
    first.take_stays()
    assert "speeding.last_fix subject" in state_layout(first)       # its declared state is in the layout
    codes, rows = tracker.changes()
    resumed = Monitor(ZONES, SUBJECTS, rules, detectors=("speeding",))
    StateTracker(resumed).restore(codes, encode_rows(rows), capture_global(first))
    events.append(resumed.process(fixes.slice(half)))
    assert fold_alerts(pa.concat_tables(events)).equals(whole)
    forgetful = Monitor(ZONES, SUBJECTS, rules, detectors=("speeding",))    # resumed without the checkpoint
    assert not fold_alerts(pa.concat_tables([events[0], forgetful.process(fixes.slice(half))])).equals(whole)
    assert whole.filter(pc.equal(whole.column("kind"), "speeding")).num_rows > 0


def test_without_its_rules_entry_the_monitor_says_which_key_is_missing():
    with pytest.raises(KeyError, match="speeding_mps"):
        Monitor(ZONES, SUBJECTS, detectors=("speeding",))
