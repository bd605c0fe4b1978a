"""Live operation: checkpoints that hold every piece of state, resume equal to an uninterrupted run, SIGKILL at
random moments, late and out-of-order fixes, JSON lines, the wall-clock watermark."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.engine.monitor import Monitor
from geomon.errors import GeomonError
from geomon.run.checkpoint import STATE_LAYOUT_VERSION, encode_rows
from geomon.run.live import LOG_MB, DirectorySource, LineSource, LiveMonitor, run
from geomon.store.alert_store import AlertStore
from tests.scenario import companion

ZONES, SUBJECTS = SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv"
ALL_DETECTORS = ("lost_contact", "checkins", "stays", "night")
#: Alert columns decided by the fixes (emitted_at and run_id say when and by which process).
DECIDED = ["alert_id", "kind", "severity", "subject_id", "zone_id", "office_id", "location_office_id", "onset_ts",
           "confirmed_ts", "ended_ts", "lon", "lat", "accuracy_m", "probability", "details"]


@pytest.fixture(scope="module")
def fixes():
    """The sample's first 60 subjects over the day, in arrival (time) order."""
    t = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    keep = pc.is_in(t.column("subject_id"), pa.array([f"S{i:04d}" for i in range(1, 61)]))
    return t.filter(keep).sort_by("ts")


def _files(table: pa.Table, folder, k: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // k)
    paths = []
    for i in range(k):
        path = folder / f"fixes-{i:03d}.parquet"
        pq.write_table(table.slice(i * step, step), path)
        paths.append(path)
    return paths


def _decided(db) -> list:
    with AlertStore(db, read_only=True) as store:
        return store.list_alerts().select(DECIDED).to_pylist()


@pytest.fixture(scope="module")
def uninterrupted(fixes, tmp_path_factory):
    """The alerts of one uninterrupted live run over 12 files, and of a plain replay: they must agree."""
    from geomon.run.replay import replay

    root = tmp_path_factory.mktemp("live")
    _files(fixes, root / "in", 12)
    live = LiveMonitor(ZONES, SUBJECTS, db=root / "live.duckdb", clock="event")
    run(live, [DirectorySource(root / "in")], once=True)
    live.close()
    replay(fixes, ZONES, SUBJECTS, db=root / "replay.duckdb")
    assert _decided(root / "live.duckdb") == _decided(root / "replay.duckdb")
    return root, _decided(root / "live.duckdb")


def test_every_state_the_fixes_change_is_checkpointed(fixes):
    """Process fixes with every detector on: outside each part's declared state, nothing may change but the
    buffers a caller drains and the timings; inside it, the fixes must change something (the test has teeth)."""
    m = Monitor(ZONES, SUBJECTS, detectors=ALL_DETECTORS, concern={"S0002": None},
                protections=[{"subject_id": "S0003", "victim_id": "S0004", "warning_m": 500.0, "alert_m": 100.0}])
    parts = m.parts()
    assert set(parts) == {"monitor", "geofence", "lost_contact", "checkins", "stays", "night", "meetings"}
    m.keep_tracks = True
    plain = (np.ndarray, int, float, list, dict, tuple, str, type(None))

    def snapshot():
        undeclared = {(p, k): copy.deepcopy(v) for p, o in parts.items() for k, v in vars(o).items()
                      if isinstance(v, plain) and k != "detectors"}   # the parts themselves, checked one by one
        declared = {(p, k): copy.deepcopy(v) for p, o in parts.items() for k, v in vars(o.state).items()}
        return undeclared, declared

    def changed(before, after):
        out = set()
        for key, old in before.items():
            new = after[key]
            same = (np.array_equal(old, new, equal_nan=old.dtype.kind == "f") and old.dtype == new.dtype
                    if isinstance(old, np.ndarray) else old == new)
            if not same:
                out.add(key)
        return out

    undeclared, declared = snapshot()
    m.process(fixes.slice(0, 40_000))
    m.process(fixes.slice(40_000, 40_000))
    undeclared_after, declared_after = snapshot()
    drained = {("monitor", "_tracks"), ("monitor", "_quarantine"), ("stays", "_stays"),
               *((p, k) for p in parts for k in ("run_id", "timings"))}   # timings: one dict, the Monitor's
    assert changed(undeclared, undeclared_after) - drained == set(), "state outside the declared State"
    assert {("monitor", "fusion"), ("night", "nights"), ("meetings", "hist"), ("geofence", "last_t"),
            ("lost_contact", "gaps"), ("checkins", "windows"), ("stays", "stays")} <= changed(declared, declared_after)


def test_a_checkpoint_of_another_state_layout_is_refused_by_name(fixes):
    """A checkpoint of the old layout (before the detector contract) or of another detector set is refused."""
    import io

    from geomon.run.checkpoint import CheckpointLayoutError, StateTracker, capture_global

    m = Monitor(ZONES, SUBJECTS, detectors=ALL_DETECTORS)
    m.process(fixes.slice(0, 5_000))
    m.take_stays()
    tracker = StateTracker(m)
    codes, rows = tracker.changes()
    blob = capture_global(m)
    fresh = Monitor(ZONES, SUBJECTS, detectors=ALL_DETECTORS)
    StateTracker(fresh).restore(codes, encode_rows(rows), blob)      # the same layout: accepted
    assert fresh.parts()["geofence"].state.entries_i.shape == m.parts()["geofence"].state.entries_i.shape
    with np.load(io.BytesIO(blob)) as saved:                           # layout 1 had no layout entry
        old = {k: saved[k] for k in saved.files if k != "__layout__"}
    buffer = io.BytesIO()
    np.savez(buffer, **old)
    with pytest.raises(CheckpointLayoutError, match=f"state layout 1.*reads state layout {STATE_LAYOUT_VERSION}"):
        StateTracker(Monitor(ZONES, SUBJECTS, detectors=ALL_DETECTORS)).restore(codes, encode_rows(rows),
                                                                                  buffer.getvalue())
    # Layout 2 held the single-model fusion filter's state row: its checkpoints are refused by version.
    layout = str(np.load(io.BytesIO(blob))["__layout__"]).splitlines()
    older = {**old, "__layout__": np.array("\n".join(["version 2"] + layout[1:]))}
    buffer = io.BytesIO()
    np.savez(buffer, **older)
    with pytest.raises(CheckpointLayoutError, match=f"layout 'version 2'.*'version {STATE_LAYOUT_VERSION}'"):
        StateTracker(Monitor(ZONES, SUBJECTS, detectors=ALL_DETECTORS)).restore(codes, encode_rows(rows),
                                                                                  buffer.getvalue())
    with pytest.raises(CheckpointLayoutError, match="differ in: .*checkins"):
        StateTracker(Monitor(ZONES, SUBJECTS)).restore(codes, encode_rows(rows), blob)


def test_the_watch_refuses_a_checkpoint_of_the_old_layout_naming_both(uninterrupted, tmp_path):
    """A stream checkpointed before the detector contract (no layout in its state) is refused as such by the
    watch, before the configuration is compared, and nothing is written."""
    import io

    import duckdb

    root, _ = uninterrupted
    db = tmp_path / "old.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=0)
    DirectorySource(root / "in").poll(live, limit=1)
    live.tick()
    live.close()
    con = duckdb.connect(str(db))
    blob = bytes(con.execute("SELECT global_state FROM checkpoints").fetchone()[0])
    with np.load(io.BytesIO(blob)) as saved:         # as geomon wrote it before: the arrays, no layout
        old = {k: saved[k] for k in saved.files if k != "__layout__"}
    buffer = io.BytesIO()
    np.savez(buffer, **old)
    con.execute("UPDATE checkpoints SET global_state = ?", [buffer.getvalue()])
    con.close()
    refused = f"stream 'live' was checkpointed with state layout 1.*state layout {STATE_LAYOUT_VERSION}"
    with pytest.raises(GeomonError, match=refused):
        LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=0)


def test_resume_in_process_equals_uninterrupted(fixes, uninterrupted, tmp_path):
    root, want = uninterrupted
    db = tmp_path / "resumed.duckdb"
    paths = sorted((root / "in").iterdir())
    for cut in (3, 7, 12):            # several processes, each reading some files and then simply dropped
        live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=0)
        while len(live.positions.get("files", [])) < cut:
            DirectorySource(root / "in").poll(live, limit=1)
            live.tick()
        live.close(flush=False)       # as a crash leaves it
    assert _decided(db) == want
    with AlertStore(db, read_only=True) as store:
        assert store.runs().num_rows == 1                       # one run, resumed twice
        assert store.latency().num_rows == len(want)            # a latency row per alert, none twice
    assert len(paths) == 12


def test_checkpoints_between_ticks_still_lose_and_duplicate_nothing(uninterrupted, tmp_path):
    """With a checkpoint only every few ticks, a crash re-reads files after it; the alerts are still the same."""
    root, want = uninterrupted
    db = tmp_path / "sparse.duckdb"
    clock = [0.0]
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=3, now=lambda: clock[0])
    taken = []
    for i in range(8):                # checkpoints at ticks 0, 3 and 6 (later ones if the store was slow)
        clock[0] = float(i)
        DirectorySource(root / "in").poll(live, limit=1)
        taken += [i] if live.tick().checkpoint else []
    committed = len(_decided_rows(db))
    live.close(flush=False)           # a crash: the files read since the last checkpoint are read again
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=3)
    assert taken[0] == 0 and len(taken) >= 2 and all(b - a >= 3 for a, b in zip(taken, taken[1:]))
    assert len(live.positions["files"]) == taken[-1] + 1 < 8 and committed > 0
    run(live, [DirectorySource(root / "in")], once=True)
    live.close()
    assert _decided(db) == want
    with AlertStore(db, read_only=True) as got, AlertStore(root / "live.duckdb", read_only=True) as ref:
        # Stays, tracks and quarantine ride with the checkpoints: after the crash they are derived again.
        assert got.list_stays().drop_columns(["run_id"]).equals(ref.list_stays().drop_columns(["run_id"]))
        count = "SELECT count(*) FROM tracks"
        assert got._cursor().execute(count).fetchall() == ref._cursor().execute(count).fetchall() != [(0,)]


def test_a_periodic_checkpoint_is_written_beside_the_ticks_and_its_failure_stops_the_stream(fixes, tmp_path,
                                                                                           monkeypatch):
    """Periodic checkpoints go to the checkpoint thread: the tick returns before it is stored, the next one due
    is taken at a tick after it is stored (no tick waits), and a failed write is raised in the engine's thread,
    never lost."""
    import threading

    db = tmp_path / "behind.duckdb"
    clock = [0.0]
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", checkpoint_every_s=1, now=lambda: clock[0])
    # The store's log may grow to LOG_MB before DuckDB folds it into the file (DuckDB's default: 16 MiB).
    number, unit = live.store._cursor().execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0].split()
    assert float(number) * {"MiB": 2**20, "GiB": 2**30}[unit] >= LOG_MB * 1e6 * 0.999
    gate, writers = threading.Event(), []
    save = AlertStore.save_checkpoint

    def slow_save(store, *args, **kwargs):
        writers.append(threading.current_thread().name)
        assert gate.wait(10)
        return save(store, *args, **kwargs)

    monkeypatch.setattr(AlertStore, "save_checkpoint", slow_save)
    live.offer(fixes.slice(0, 500), source="a")
    assert live.tick().checkpoint                       # handed over; the tick did not wait for it
    assert live.store.load_checkpoint("live") is None   # not stored yet
    clock[0] = 1.0
    live.offer(fixes.slice(500, 500), source="b")
    assert not live.tick().checkpoint                   # due, but the first is under way: no wait, no second
    gate.set()
    for _ in range(400):                                # due, but taken once the first is stored
        if live.tick().checkpoint:
            break
        time.sleep(0.025)
    else:
        raise AssertionError("the second checkpoint was never taken")
    assert writers and all(name.startswith("geomon-checkpoint") for name in writers)
    for _ in range(400):                                # stored while the engine waits for input
        second = (live.store.load_checkpoint("live") or {}).get("seq", 0)
        if second > 1:
            break
        time.sleep(0.025)

    def broken(store, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(AlertStore, "save_checkpoint", broken)
    clock[0] = 2.0
    live.offer(fixes.slice(1000, 500), source="c")
    assert live.tick().checkpoint
    with pytest.raises(OSError, match="disk full"):   # at a tick once the write has failed
        for _ in range(400):
            live.tick()
            time.sleep(0.025)
    monkeypatch.setattr(AlertStore, "save_checkpoint", save)
    live.close(flush=False)
    with AlertStore(db, read_only=True) as store:
        assert store.load_checkpoint("live")["seq"] == second > 1   # the second checkpoint, not the failed third


def test_meetings_open_across_a_crash_resume_to_the_uninterrupted_alerts(fixes, tmp_path):
    """Frequent contact and victim alerts live: 50 files cut meetings in two; crashes every few files resume them."""
    at = lambda h: int((datetime(2026, 11, 2, h, 10, tzinfo=timezone.utc)).timestamp() * 1000)   # noqa: E731
    stream = pa.concat_tables([fixes, companion(fixes, "S0001", "P1", [at(0), at(6), at(8)], 5.0),
                               companion(fixes, "S0001", "V1", [at(7)], 20.0)]).sort_by("ts")
    _files(stream, tmp_path / "in", 50)
    kw = {"clock": "event", "checkpoint_every_s": 0, "concern": {"P1": None},
          "protections": [{"subject_id": "S0001", "victim_id": "V1", "warning_m": 300.0, "alert_m": 50.0}]}
    live = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / "once.duckdb", **kw)
    run(live, [DirectorySource(tmp_path / "in")], once=True)
    live.close()
    want = _decided(tmp_path / "once.duckdb")
    assert {"frequent_contact", "victim_warning", "victim_breach"} <= {r["kind"] for r in want}
    db = tmp_path / "crashed.duckdb"
    for cut in (1, 4, 13, 14, 17, 18, 50):   # meetings run across files 1-2, 13-14 and 17-18
        live = LiveMonitor(ZONES, SUBJECTS, db=db, **kw)
        while len(live.positions.get("files", [])) < cut:
            DirectorySource(tmp_path / "in").poll(live, limit=1)
            live.tick()
        live.close(flush=False)
    assert _decided(db) == want


def _decided_rows(db):
    with AlertStore(db) as store:
        return store.list_alerts().to_pylist()


def test_a_changed_configuration_is_not_resumed(uninterrupted, tmp_path):
    root, _ = uninterrupted
    db = tmp_path / "conf.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event")
    DirectorySource(root / "in").poll(live, limit=1)
    live.tick()
    live.close()
    with pytest.raises(GeomonError, match="another configuration"):
        LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", lateness_s=5)
    LiveMonitor(ZONES, SUBJECTS, db=db, clock="event", stream_id="other").close()


_KILLER = """
import sys
from geomon.cli.main import app
sys.argv = ["geomon", *sys.argv[1:]]
app()
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_alerts(fixes, uninterrupted, tmp_path, seed):
    """`geomon watch` over 40 files, killed with SIGKILL at random moments and restarted until it finishes.

    The files are cut differently from the uninterrupted run's 12, so this also checks that the micro-batching
    does not change the alerts.
    """
    _, want = uninterrupted
    _files(fixes, tmp_path / "in", 40)
    db = tmp_path / "killed.duckdb"
    args = [sys.executable, "-c", _KILLER, "watch", str(tmp_path / "in"), "--zones", str(ZONES), "--subjects",
            str(SUBJECTS), "--db", str(db), "--clock", "event", "--once", "--checkpoint-every", "0"]
    rng = random.Random(seed)
    consumed_at_kill = []
    for attempt in range(30):
        # Kill a random short while after the k-th status line (a tick with alerts): anywhere in what follows,
        # mid-transaction included. After five kills, let it finish.
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        k = rng.randint(1, 4) if len(consumed_at_kill) < 5 else None
        seen = 0
        for line in proc.stdout:
            seen += line.startswith("watermark")
            if k is not None and seen >= k:
                time.sleep(rng.uniform(0.0, 0.2))
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            consumed_at_kill.append(_files_consumed(db))
            continue
        assert proc.returncode == 0, proc.stderr.read()
        break
    else:
        pytest.fail("the watch never finished")
    assert any(0 < n < 40 for n in consumed_at_kill), consumed_at_kill   # at least one kill mid-stream
    assert _decided(db) == want
    with AlertStore(db, read_only=True) as store:
        assert store.latency().num_rows == len(want)
        assert store.runs().num_rows == 1


def _files_consumed(db) -> int:
    if not db.exists():
        return 0
    with AlertStore(db) as store:
        saved = store.load_checkpoint("live")
    return len(saved["positions"].get("files", [])) if saved else 0


def _table(rows: list[tuple]) -> pa.Table:
    return pa.table({"subject_id": [r[0] for r in rows],
                     "ts": pa.array([r[1] for r in rows], pa.timestamp("ms", tz="UTC")),
                     "lon": [r[2] for r in rows], "lat": [r[3] for r in rows],
                     "source": ["gnss"] * len(rows), "accuracy_m": pa.array([3.0] * len(rows), pa.float32())})


T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


def test_out_of_order_within_lateness_is_reordered_beyond_it_is_recorded(tmp_path):
    db = tmp_path / "late.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="wall", lateness_s=10, now=lambda: 0.0)
    s = "S0001"
    at = [T0 + timedelta(seconds=k) for k in range(0, 60, 5)]
    lon, lat = 117.70, 37.50
    base = T0.timestamp()
    live.offer(_table([(s, at[2], lon, lat), (s, at[0], lon, lat)]), source="a")    # out of order, within 10 s
    r1 = live.tick(now=base + 12)       # watermark = T0 + 2 s: releases at[0] only
    assert (r1.n_released, r1.n_held) == (1, 1)
    live.offer(_table([(s, at[1], lon, lat)]), source="b")                          # still within the lateness
    r2 = live.tick(now=base + 30)
    assert r2.n_released == 2 and live.monitor.n_read - live.monitor.n_accepted == 0
    live.offer(_table([(s, at[3], lon, lat), (s, at[1] + timedelta(seconds=1), lon, lat)]), source="c")
    live.tick(now=base + 40)
    live.close()
    with AlertStore(db, read_only=True) as store:
        q = store.quarantine_counts().to_pylist()
    assert [(r["reason"], r["n_rows"]) for r in q] == [("late_fix", 1)]    # recorded, counted, not run
    assert live.counts.n_read == 5


def test_wall_clock_watermark_fires_lost_contact_and_missed_checkin_without_fixes(tmp_path):
    db = tmp_path / "wall.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="wall", now=lambda: 0.0, detectors=ALL_DETECTORS)
    live.offer(_table([("S0001", T0, 117.70, 37.50)]), source="a")      # 09:00 local, then silence
    base = T0.timestamp()
    assert live.tick(now=base + 1).alerts.num_rows == 0
    quiet = live.tick(now=base + 4 * 3600)                  # no fix for four hours
    assert quiet.alerts.column("kind").to_pylist() == ["lost_contact"]
    evening = live.tick(now=base + 11.5 * 3600)             # 20:30 local: the 20:00 check-in deadline has passed
    assert evening.alerts.column("kind").to_pylist() == ["missed_checkin"]
    live.close()


def test_json_lines_from_a_stream_with_bad_lines(tmp_path):
    import io

    lines = [json.dumps({"subject_id": "S0001", "ts": "2026-11-02T01:00:00Z", "lon": 117.7, "lat": 37.5,
                         "source": "gnss", "accuracy_m": 3}),
             "{not json", "[1, 2]", "",
             json.dumps({"subject_id": "S0002", "ts": "yesterday", "lon": 117.7, "lat": 37.5, "source": "gnss"}),
             json.dumps({"subject_id": "S0003", "ts": "2026-11-02T01:00:05Z", "lon": 117.7, "lat": 37.5,
                         "source": "gnss"})]
    source = LineSource(io.StringIO("\n".join(lines) + "\n"))
    source.closed.wait(5)
    db = tmp_path / "lines.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event")
    run(live, [source], once=True)
    live.close()
    with AlertStore(db, read_only=True) as store:
        refused = store._cursor().execute('SELECT "row", reason FROM quarantine ORDER BY "row"').fetchall()
    assert refused == [(1, "bad_json"), (2, "bad_json"), (4, "ts_unparseable")]
    assert live.counts.n_read == 5 and live.n_offered == 2      # 5 = 2 accepted + 3 refused
    assert live.positions["lines"] == 6


def test_a_late_batch_does_not_flap_a_breach(tmp_path):
    """S0146 enters a forbidden zone; a batch of older fixes placed 2 km away then arrives late: recorded, not run,
    and the alerts end exactly as without it (no exit and re-entry)."""
    t = pq.read_table(SAMPLE_DIR / "fixes.parquet")
    t = t.filter(pc.equal(t.column("subject_id"), "S0146")).sort_by("ts")
    plain = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / "plain.duckdb", clock="event")
    plain.offer(t, source="all")
    plain.tick()
    plain.close()
    want = _decided(tmp_path / "plain.duckdb")
    entry = min(a["confirmed_ts"] for a in want if a["kind"] == "forbidden_entry")
    ts = t.column("ts").to_pylist()
    cut = next(i for i, v in enumerate(ts) if v > entry + timedelta(minutes=5))
    late = t.slice(cut - 41, 40)                     # strictly older than the last fix run
    late = late.set_column(late.schema.get_field_index("lon"), late.schema.field("lon"),
                           pc.add(late.column("lon"), 0.025))                    # about 2 km east
    live = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / "late.duckdb", clock="event")
    live.offer(t.slice(0, cut), source="first")
    first = live.tick()
    assert "forbidden_entry" in first.alerts.column("kind").to_pylist()
    live.offer(late, source="late upload")
    flap = live.tick()
    assert flap.alerts.num_rows == 0 and flap.n_released == 40
    live.offer(t.slice(cut), source="rest")
    live.tick()
    live.close()
    assert _decided(tmp_path / "late.duckdb") == want
    with AlertStore(tmp_path / "late.duckdb", read_only=True) as store:
        assert [(r["reason"], r["n_rows"]) for r in store.quarantine_counts().to_pylist()] == [("late_fix", 40)]


def test_an_unreadable_file_is_quarantined_and_the_stream_goes_on(fixes, tmp_path):
    folder = tmp_path / "in"
    _files(fixes.slice(0, 2000), folder, 2)
    (folder / "fixes-000b.parquet").write_bytes(b"this is not parquet")
    (folder / "fixes-000c.csv").write_text("subject_id,ts\nS0001\n")          # malformed: missing columns
    (folder / ".fixes-009.parquet").write_bytes(b"half written")               # not complete yet: never read
    db = tmp_path / "bad.duckdb"
    live = LiveMonitor(ZONES, SUBJECTS, db=db, clock="event")
    run(live, [DirectorySource(folder)], once=True)
    live.close()
    with AlertStore(db, read_only=True) as store:
        refused = store._cursor().execute('SELECT source_name, "row", reason FROM quarantine ORDER BY 1').fetchall()
    assert [(r[0].rsplit("/", 1)[1], r[1], r[2]) for r in refused] == [
        ("fixes-000b.parquet", -1, "unreadable_file"), ("fixes-000c.csv", -1, "unreadable_file")]
    assert live.counts.n_read == 2000 + 2 and live.n_offered == 2000
    assert live.positions["files"] == ["fixes-000.parquet", "fixes-000b.parquet", "fixes-000c.csv",
                                       "fixes-001.parquet"]


def test_socket_source_and_sigterm_leave_a_checkpoint(fixes, tmp_path):
    """JSON lines sent to a Unix socket are run; SIGTERM ends `geomon watch` cleanly with its input checkpointed."""
    import socket as socketlib

    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a socket"):
        LineSource(socket_path=tmp_path / "precious.txt")
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    source = LineSource(socket_path=tmp_path / "feed.sock")
    rows = fixes.slice(0, 50).to_pylist()
    with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as client:
        client.connect(str(tmp_path / "feed.sock"))
        client.sendall("".join(json.dumps({**r, "ts": r["ts"].isoformat()}) + "\n" for r in rows).encode())
    live = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / "sock.duckdb", clock="event")
    deadline = time.monotonic() + 10
    while live.counts.n_read < 50 and time.monotonic() < deadline:
        source.poll(live)
        time.sleep(0.05)
    live.tick()
    live.close()
    source.server.shutdown()
    assert live.counts.n_read == live.n_offered == 50 and live.positions["lines"] == 50

    folder = tmp_path / "in"
    _files(fixes.slice(0, 3000), folder, 3)
    db = tmp_path / "term.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, "watch", str(folder), "--zones", str(ZONES),
                             "--subjects", str(SUBJECTS), "--db", str(db), "--clock", "event", "--tick", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "started" in line:
            break
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert _files_consumed(db) == 3


def test_the_wall_clock_refuses_a_new_stream_of_data_hours_old_naming_the_event_clock(fixes, tmp_path):
    """Recorded files on the wall clock would be judged as if it were now (a flood of lost contact and night
    alerts); `geomon watch` refuses them and names --clock event. Fresh data, a resumed stream and the event
    clock are not refused."""
    first = fixes.slice(0, 200)
    taken_s = float(np.median(first.column("ts").cast(pa.int64()).to_numpy())) / 1000
    for age_h, refused in ((3.0, True), (0.5, False)):
        live = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / f"wall{age_h}.duckdb", clock="wall",
                           refuse_stale_s=2 * 3600, now=lambda age_h=age_h: taken_s + age_h * 3600)
        if refused:
            with pytest.raises(GeomonError, match=r"3\.0 h ago.*--clock event"):
                live.offer(first, source="old.parquet")
            assert live.n_held == 0
        else:
            assert live.offer(first, source="fresh.parquet") == first.num_rows
        live.close(flush=False)
    late = LiveMonitor(ZONES, SUBJECTS, db=tmp_path / "event.duckdb", clock="event", refuse_stale_s=2 * 3600,
                       now=lambda: taken_s + 30 * 86400)
    assert late.offer(first, source="old.parquet") == first.num_rows
    late.close()
    folder = tmp_path / "recorded"
    _files(first, folder, 1)
    cli = [str(a) for a in ("watch", folder, "--zones", ZONES, "--subjects", SUBJECTS, "--db",
                            tmp_path / "cli.duckdb", "--once")]
    result = CliRunner().invoke(app, cli, env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "--clock event" in result.output and "Traceback" not in result.output
    assert CliRunner().invoke(app, [*cli, "--clock", "event"]).exit_code == 0
