"""Tests of geomon.store.alert_store: the DuckDB store of alerts, quarantine and runs."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from geomon.errors import GeomonError
from geomon.schema import QUARANTINE_SCHEMA
from geomon.store.alert_store import (
    ALERT_SCHEMA,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    STAY_SCHEMA,
    STORED_ALERT_SCHEMA,
    AlertStore,
    LifecycleError,
)

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def alert_rows(n: int = 4, *, ended: bool = False, emitted_ms: int = BASE_MS + 10_000_000, **over) -> list[dict]:
    """n alerts: kinds and offices alternate, onsets one minute apart."""
    rows = []
    for i in range(n):
        row = {
            "alert_id": f"a{i:04d}",
            "kind": ("permitted_exit", "forbidden_entry")[i % 2],
            "severity": ("high", "medium", "low")[i % 3],
            "subject_id": f"s{i % 3}",
            "zone_id": None if i % 2 == 0 else f"z{i}",
            "office_id": ("o1", "o2")[i % 2],
            "location_office_id": (None, "o1", "o2")[i % 3],   # where it happened: not always the supervisor
            "onset_ts": BASE_MS + 60_000 * i,
            "confirmed_ts": BASE_MS + 60_000 * i + 5_000,
            "ended_ts": BASE_MS + 60_000 * i + 30_000 if ended else None,
            "emitted_at": emitted_ms,
            "lon": 116.0 + 0.001 * i,
            "lat": 39.9,
            "accuracy_m": 4.5,
            "probability": 0.9,
            "details": json.dumps({"i": i, "ended": ended}),
            "run_id": "r-test",
        }
        row.update(over)
        rows.append(row)
    return rows


def alerts(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ALERT_SCHEMA)


def quarantine(n: int, reason: str = "lon_out_of_range") -> pa.Table:
    return pa.table(
        {
            "source_name": ["fixes.csv"] * n,
            "row": pa.array(range(n), pa.int64()),
            "field": ["lon"] * n,
            "reason": [reason] * n,
            "raw": ['{"lon": "999"}'] * n,
        },
        schema=QUARANTINE_SCHEMA,
    )


@pytest.fixture
def store():
    with AlertStore() as s:
        yield s


# --------------------------------------------------------------------------- schema


def test_schema_created_idempotently(tmp_path):
    path = tmp_path / "geomon.duckdb"
    with AlertStore(path) as s:
        s.write_alerts(alerts(alert_rows(2)))
    for _ in range(2):
        with AlertStore(path) as s:
            assert s.list_alerts().num_rows == 2
            cur = s._cursor()
            assert cur.execute("SELECT schema_version FROM meta").fetchall() == [(SCHEMA_VERSION,)]
            tables = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            assert {"meta", "alerts", "quarantine", "runs", "staypoints"} <= tables


def test_empty_store_returns_typed_tables(store):
    assert store.list_alerts().schema == STORED_ALERT_SCHEMA
    assert store.runs().schema == RUN_SCHEMA
    assert store.alert_counts().num_rows == 0
    assert store.quarantine_counts().num_rows == 0
    assert store.write_alerts(ALERT_SCHEMA.empty_table()) == 0


def test_closed_store_refuses_work():
    s = AlertStore()
    s.close()
    s.close()  # closing twice is harmless
    with pytest.raises(GeomonError, match="closed"):
        s.list_alerts()


# --------------------------------------------------------------------------- upsert


def test_same_alerts_twice_add_no_row_and_change_nothing(store):
    table = alerts(alert_rows(6))
    assert store.write_alerts(table) == 6
    first = store.list_alerts()
    assert store.write_alerts(table) == 0
    assert store.list_alerts().equals(first)  # updated_at included
    assert store.list_alerts().select(ALERT_SCHEMA.names).cast(ALERT_SCHEMA).equals(table)


def test_open_then_ended_fills_ended_ts_only(store):
    store.write_alerts(alerts(alert_rows(3)))
    store.acknowledge("a0001", T0 + timedelta(hours=1))
    before = {r["alert_id"]: r for r in store.list_alerts().to_pylist()}

    later = BASE_MS + 99_000_000
    ended = alert_rows(3, ended=True, emitted_ms=later, run_id="r-other", lon=0.0)
    assert store.write_alerts(alerts(ended)) == 0
    after = {r["alert_id"]: r for r in store.list_alerts().to_pylist()}
    for aid, row in after.items():
        assert row["ended_ts"] is not None
        assert json.loads(row["details"])["ended"] is True
        assert row["updated_at"] >= before[aid]["updated_at"]
        # never overwritten: emission time, run, position, lifecycle
        for col in ("emitted_at", "run_id", "lon", "status", "acknowledged_at", "onset_ts"):
            assert row[col] == before[aid][col], col
    assert after["a0001"]["status"] == "acknowledged"

    # A late or replayed open handover does not undo the end or its details.
    store.write_alerts(alerts(alert_rows(3)))
    assert store.list_alerts().equals(pa.Table.from_pylist(list(after.values()), schema=STORED_ALERT_SCHEMA))


def test_ended_ts_is_never_replaced_once_set(store):
    store.write_alerts(alerts(alert_rows(1, ended=True)))
    first_end = store.list_alerts()["ended_ts"][0].as_py()
    store.write_alerts(alerts(alert_rows(1, ended=True, ended_ts=BASE_MS + 1)))
    assert store.list_alerts()["ended_ts"][0].as_py() == first_end


def test_open_and_ended_in_one_batch_are_merged(store):
    rows = alert_rows(2) + alert_rows(2, ended=True, emitted_ms=BASE_MS + 20_000_000)
    assert store.write_alerts(alerts(rows)) == 2
    got = store.list_alerts().to_pylist()
    assert all(r["ended_ts"] is not None for r in got)
    assert all(json.loads(r["details"])["ended"] for r in got)
    assert all(r["emitted_at"] == datetime(2024, 1, 1, 2, 46, 40, tzinfo=timezone.utc) for r in got)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["zone_id"]), "missing column 'zone_id'"),
        (lambda t: t.set_column(1, "kind", pa.array([1] * t.num_rows)), "column 'kind' has type int64"),
        (
            lambda t: t.set_column(7, "onset_ts", t["onset_ts"].cast(pa.timestamp("us", tz="UTC"))),
            "column 'onset_ts' has type timestamp",
        ),
        (lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), "unexpected column"),
        (lambda t: t.set_column(3, "subject_id", pa.array([None] * t.num_rows, pa.string())), "must not be null"),
    ],
)
def test_write_alerts_rejects_bad_schema(store, change, message):
    with pytest.raises(ValueError, match=message):
        store.write_alerts(change(alerts(alert_rows(2))))
    assert store.list_alerts().num_rows == 0


def test_write_alerts_rejects_bad_values(store):
    with pytest.raises(ValueError, match="severity"):
        store.write_alerts(alerts(alert_rows(2, severity="urgent")))
    with pytest.raises(ValueError, match="not valid JSON"):
        store.write_alerts(alerts(alert_rows(2, details="{not json")))
    assert store.list_alerts().num_rows == 0  # the failed transaction left nothing


def test_write_alerts_accepts_null_typed_nullable_column(store):
    table = alerts(alert_rows(2))
    table = table.set_column(5, "office_id", pa.nulls(2))
    assert store.write_alerts(table) == 2
    assert store.list_alerts()["office_id"].null_count == 2


# --------------------------------------------------------------------------- queries


@pytest.fixture
def filled(store):
    store.write_alerts(alerts(alert_rows(12)))
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [f"a{i:04d}" for i in range(12)]),
        ({"kind": "forbidden_entry"}, [f"a{i:04d}" for i in range(1, 12, 2)]),
        ({"office_id": "o1"}, [f"a{i:04d}" for i in range(0, 12, 2)]),
        ({"office_id": ["o1", "o2"]}, [f"a{i:04d}" for i in range(12)]),
        ({"office_id": []}, []),
        ({"subject_id": "s2"}, ["a0002", "a0005", "a0008", "a0011"]),
        ({"location_office_id": "o2"}, ["a0002", "a0005", "a0008", "a0011"]),
        ({"location_office_id": "o1", "office_id": "o1"}, ["a0004", "a0010"]),
        ({"since": T0 + timedelta(minutes=10)}, ["a0010", "a0011"]),
        ({"until": T0 + timedelta(minutes=2)}, ["a0000", "a0001"]),
        ({"status": "open", "limit": 3}, ["a0000", "a0001", "a0002"]),
        ({"status": "closed"}, []),
        (
            {"kind": "permitted_exit", "subject_id": ["s0", "s1"], "since": T0 + timedelta(minutes=1), "limit": 2},
            ["a0004", "a0006"],
        ),
    ],
)
def test_list_alerts_filters(filled, filters, expected):
    got = filled.list_alerts(**filters)
    assert got.schema == STORED_ALERT_SCHEMA
    assert got["alert_id"].to_pylist() == expected


def test_list_alerts_status_filter_follows_lifecycle(filled):
    filled.acknowledge("a0003", T0 + timedelta(hours=1))
    assert filled.list_alerts(status="acknowledged")["alert_id"].to_pylist() == ["a0003"]
    assert filled.list_alerts(status=["open", "acknowledged"]).num_rows == 12


def test_list_alerts_refuses_naive_time_and_bad_limit(filled):
    with pytest.raises(ValueError, match="timezone"):
        filled.list_alerts(since=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        filled.list_alerts(limit=-1)


@pytest.mark.parametrize(
    "evil",
    [
        "o1' OR '1'='1",
        "o1'; DROP TABLE alerts; --",
        "x\"); DELETE FROM alerts; --",
    ],
)
def test_sql_injection_in_filter_is_harmless(filled, evil):
    assert filled.list_alerts(office_id=evil).num_rows == 0
    assert filled.list_alerts(kind=[evil, "nope"]).num_rows == 0
    assert filled.quarantine_counts(run_id=evil).num_rows == 0
    with pytest.raises(LifecycleError, match="unknown alert_id"):
        filled.acknowledge(evil, T0)
    assert filled.list_alerts().num_rows == 12


def test_alert_counts(filled):
    counts = filled.alert_counts()
    assert counts.column_names == ["kind", "office_id", "n_alerts"]
    assert counts.to_pylist() == [
        {"kind": "forbidden_entry", "office_id": "o2", "n_alerts": 6},
        {"kind": "permitted_exit", "office_id": "o1", "n_alerts": 6},
    ]
    assert filled.alert_counts(by="severity")["n_alerts"].to_pylist() == [4, 4, 4]
    assert filled.alert_counts(by=()).to_pylist() == [{"n_alerts": 12}]
    with pytest.raises(ValueError, match="cannot group by"):
        filled.alert_counts(by=("kind; DROP TABLE alerts",))


# --------------------------------------------------------------------------- lifecycle


def test_lifecycle_full_path(filled):
    filled.acknowledge("a0000", T0 + timedelta(hours=1))
    filled.dispatch("a0000", T0 + timedelta(hours=1, minutes=3))
    filled.close_alert("a0000", T0 + timedelta(hours=2))
    row = filled.list_alerts(status="closed").to_pylist()[0]
    assert row["alert_id"] == "a0000"
    assert row["acknowledged_at"] == T0 + timedelta(hours=1)
    assert row["dispatched_at"] == T0 + timedelta(hours=1, minutes=3)
    assert row["closed_at"] == T0 + timedelta(hours=2)


def test_lifecycle_false_alarm_closes_without_dispatch(filled):
    filled.acknowledge("a0001", T0 + timedelta(hours=1))
    filled.close_alert("a0001", T0 + timedelta(hours=1, seconds=30))
    row = filled.list_alerts(status="closed").to_pylist()[0]
    assert row["dispatched_at"] is None


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([("dispatch", 1)], "is open; it can become dispatched only from acknowledged"),
        ([("close_alert", 1)], "is open; it can become closed only from acknowledged or dispatched"),
        ([("acknowledge", 1), ("acknowledge", 2)], "is acknowledged; it can become acknowledged only from open"),
        ([("acknowledge", 5), ("dispatch", 4)], "is before its previous step"),
        ([("acknowledge", 1), ("dispatch", 5), ("close_alert", 3)], "is before its previous step"),
        ([("acknowledge", 1), ("close_alert", 2), ("dispatch", 3)], "is closed"),
    ],
)
def test_lifecycle_errors(filled, steps, message):
    *ok, (bad, minute) = steps
    for name, m in ok:
        getattr(filled, name)("a0002", T0 + timedelta(minutes=m))
    before = filled.list_alerts()
    with pytest.raises(LifecycleError, match=message):
        getattr(filled, bad)("a0002", T0 + timedelta(minutes=minute))
    assert filled.list_alerts().equals(before)


def test_lifecycle_unknown_alert_and_naive_time(filled):
    with pytest.raises(LifecycleError, match="unknown alert_id 'nope'"):
        filled.acknowledge("nope", T0)
    with pytest.raises(ValueError, match="timezone"):
        filled.acknowledge("a0000", datetime(2024, 1, 1))


# --------------------------------------------------------------------------- runs and quarantine


def test_runs_row(store):
    tmp = "data/fixes.parquet"
    run_id = store.start_run({"fixes": tmp, "chunk": 10_000}, config_hash="abc123")
    assert len(run_id) == 32
    row = store.runs().to_pylist()[0]
    assert row["status"] == "running" and row["finished_at"] is None
    assert json.loads(row["input"]) == {"chunk": 10_000, "fixes": tmp}
    store.finish_run(
        run_id, n_read=100, n_accepted=97, n_quarantined=3, n_alerts=2, timings={"load": 0.5, "detect": 1.25},
        fixes_per_s=64.7,
    )
    row = store.runs().to_pylist()[0]
    assert row["status"] == "finished"
    assert row["finished_at"] >= row["started_at"]
    assert (row["n_read"], row["n_accepted"], row["n_quarantined"], row["n_alerts"]) == (100, 97, 3, 2)
    assert json.loads(row["timings_s"]) == {"detect": 1.25, "load": 0.5}
    assert row["fixes_per_s"] == pytest.approx(64.7)
    assert row["config_hash"] == "abc123"
    kwargs = dict(n_read=1, n_accepted=1, n_quarantined=0, n_alerts=0, timings={}, fixes_per_s=1.0)
    with pytest.raises(ValueError, match="already finished"):
        store.finish_run(run_id, **kwargs)
    with pytest.raises(ValueError, match="unknown run_id"):
        store.finish_run("nope", **kwargs)
    with pytest.raises(ValueError, match="n_read"):
        store.finish_run(store.start_run({}, "h"), **{**kwargs, "n_read": -1})


def test_quarantine_idempotent(store):
    run_id = store.start_run({}, "h")
    assert store.write_quarantine(run_id, quarantine(5)) == 5
    assert store.write_quarantine(run_id, quarantine(5)) == 0
    assert store.write_quarantine(run_id, quarantine(7, reason="ts_unparseable")) == 2
    assert store.quarantine_counts(run_id).to_pylist() == [
        {"reason": "lon_out_of_range", "n_rows": 5},
        {"reason": "ts_unparseable", "n_rows": 2},
    ]
    other = store.start_run({}, "h")
    assert store.write_quarantine(other, quarantine(3)) == 3  # another run keeps its own rows
    assert store.quarantine_counts()["n_rows"].to_pylist() == [8, 2]
    assert store.write_quarantine(other, QUARANTINE_SCHEMA.empty_table()) == 0
    rows = store.list_quarantine(run_id)
    assert rows.num_rows == 7 and set(rows["run_id"].to_pylist()) == {run_id}
    assert rows.select(QUARANTINE_SCHEMA.names).slice(0, 5).cast(QUARANTINE_SCHEMA).equals(quarantine(5))
    assert store.list_quarantine().num_rows == 10
    dupes = pa.concat_tables([quarantine(2, reason="first"), quarantine(2, reason="second")])
    third = store.start_run({}, "h")
    assert store.write_quarantine(third, dupes) == 2
    assert store.quarantine_counts(third).to_pylist() == [{"reason": "first", "n_rows": 2}]
    with pytest.raises(ValueError, match="unknown run_id"):
        store.write_quarantine("nope", quarantine(1))
    with pytest.raises(ValueError, match="missing column 'reason'"):
        store.write_quarantine(run_id, quarantine(1).drop_columns(["reason"]))


# --------------------------------------------------------------------------- persistence and threads


def test_file_store_persists_across_reopen(tmp_path):
    path = tmp_path / "sub.duckdb"
    with AlertStore(str(path)) as s:
        run_id = s.start_run({"fixes": "f.csv"}, "h")
        s.write_alerts(alerts(alert_rows(3)))
        s.write_quarantine(run_id, quarantine(2))
        s.acknowledge("a0000", T0 + timedelta(hours=1))
        before = s.list_alerts()
    with AlertStore(path) as s:
        assert s.list_alerts().equals(before)
        assert s.runs()["run_id"].to_pylist() == [run_id]
        assert s.quarantine_counts(run_id)["n_rows"].to_pylist() == [2]
        assert s.write_alerts(alerts(alert_rows(3))) == 0
    with AlertStore(path, read_only=True) as s:
        assert s.list_alerts().num_rows == 3


def test_read_only_open_of_a_store_without_the_views_defines_them(tmp_path):
    """A store written before the service-level views existed still answers them when opened read-only."""
    import duckdb

    path = tmp_path / "old.duckdb"
    with AlertStore(path) as s:
        s.write_alerts(alerts(alert_rows(3)))
        want = s.service_levels("day")
    con = duckdb.connect(str(path))
    for name in ("sla_daily", "sla_monthly", "sla_quarterly"):
        con.execute(f"DROP VIEW {name}")
    con.close()
    with AlertStore(path, read_only=True) as s:
        assert s.service_levels("day").equals(want)
        assert sum(s.service_levels("quarter").column("n_alerts").to_pylist()) == 3
    con = duckdb.connect(str(path), read_only=True)   # and the file was not changed
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall() == [(0,)]
    con.close()


def test_cursor_per_thread(store):
    errors = []

    def write(k: int):
        try:
            rows = alert_rows(50)
            for r in rows:
                r["alert_id"] = f"t{k}-{r['alert_id']}"
            store.write_alerts(alerts(rows))
            store.list_alerts(limit=5)
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.list_alerts().num_rows == 200


def test_bulk_write_100k(store):
    n = 100_000
    rng = np.random.default_rng(7)
    onset = BASE_MS + np.sort(rng.integers(0, 86_400_000, n))
    table = pa.table(
        {
            "alert_id": pa.array([f"{i:032x}" for i in range(n)]),
            "kind": pa.array(np.where(rng.random(n) < 0.5, "permitted_exit", "forbidden_entry")),
            "severity": pa.array(np.array(["high", "medium", "low"])[rng.integers(0, 3, n)]),
            "subject_id": pa.array([f"s{i % 3000}" for i in range(n)]),
            "zone_id": pa.array([f"z{i % 50}" for i in range(n)]),
            "office_id": pa.array([f"o{i % 14}" for i in range(n)]),
            "location_office_id": pa.array([f"o{(i + 1) % 14}" for i in range(n)]),
            "onset_ts": pa.array(onset, pa.timestamp("ms", tz="UTC")),
            "confirmed_ts": pa.array(onset + 5_000, pa.timestamp("ms", tz="UTC")),
            "ended_ts": pa.nulls(n, pa.timestamp("ms", tz="UTC")),
            "emitted_at": pa.array(onset + 5_100, pa.timestamp("ms", tz="UTC")),
            "lon": rng.uniform(116, 117, n),
            "lat": rng.uniform(39, 40, n),
            "accuracy_m": pa.array(rng.uniform(1, 50, n).astype(np.float32)),
            "probability": rng.random(n),
            "details": pa.array(['{"margin_m": 12.5}'] * n),
            "run_id": pa.array(["r-bench"] * n),
        },
        schema=ALERT_SCHEMA,
    )
    t0 = time.perf_counter()
    assert store.write_alerts(table) == n
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert store.write_alerts(table) == 0
    replay_s = time.perf_counter() - t0
    print(f"\n100k alerts: first write {first_s:.3f} s, replay {replay_s:.3f} s")
    assert store.alert_counts(by=())["n_alerts"].to_pylist() == [n]


# --------------------------------------------------------------------------- stays


def stays(n: int = 3, **over) -> pa.Table:
    rows = [{"subject_id": f"p{i % 2}", "started_at": datetime.fromtimestamp(BASE_MS / 1000 + 3600 * i, timezone.utc),
             "finished_at": datetime.fromtimestamp(BASE_MS / 1000 + 3600 * i + 1800, timezone.utc),
             "lon": 116.0 + i / 100, "lat": 39.9, "n_fixes": 30 + i, "office_id": "o1",
             "concern_zone_id": "bar" if i == 1 else None, "home_distance_m": None if i == 2 else 12.5 * i,
             "work_distance_m": None, "ended_by": "moved" if i else "silence", "run_id": "r1", **over}
            for i in range(n)]
    return pa.Table.from_pylist(rows, schema=STAY_SCHEMA)


def test_stays_are_written_once_and_read_back(store):
    table = stays(3)
    assert store.write_stays(table) == 3
    assert store.write_stays(stays(3, run_id="r2", n_fixes=99)) == 0      # the first run's rows stay
    back = store.list_stays()
    assert back.schema == STAY_SCHEMA
    assert back.to_pylist() == sorted(table.to_pylist(), key=lambda r: (r["subject_id"], r["started_at"]))
    assert store.list_stays(subject_id="p1").column("n_fixes").to_pylist() == [31]
    assert store.write_stays(STAY_SCHEMA.empty_table()) == 0


def test_write_stays_rejects_bad_tables(store):
    with pytest.raises(ValueError, match="ended_by"):
        store.write_stays(stays(1, ended_by="teleported"))
    with pytest.raises(ValueError, match="missing column 'run_id'"):
        store.write_stays(stays(1).drop_columns(["run_id"]))
    assert store.list_stays().num_rows == 0


# --------------------------------------------------------------------------- docs


def test_docs_example_sql_runs(filled):
    """Every ```sql block of docs/store.md runs on a store with data in every table."""
    doc = (Path(__file__).parents[2] / "docs" / "store.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 5
    run_id = filled.start_run({"fixes": "f.csv"}, "h")
    filled.write_quarantine(run_id, quarantine(3))
    filled.finish_run(
        run_id, n_read=10, n_accepted=7, n_quarantined=3, n_alerts=12, timings={"detect": 0.1}, fixes_per_s=100.0
    )
    filled.write_alerts(alerts(alert_rows(2, ended=True)))
    filled.acknowledge("a0000", T0 + timedelta(hours=1))
    filled.dispatch("a0000", T0 + timedelta(hours=1, minutes=2))
    cur = filled._cursor()
    results = [cur.execute(sql).fetchall() for sql in blocks]
    assert all(results[:2])  # per-office-day counts and dispatch times have rows


def test_read_only_open_of_a_missing_file_names_it_and_creates_nothing(tmp_path):
    from typer.testing import CliRunner

    from geomon.cli.main import app

    missing = tmp_path / "nowhere.duckdb"
    with pytest.raises(FileNotFoundError, match="nowhere.duckdb: no such database"):
        AlertStore(missing, read_only=True)
    for command in (["sla"], ["alerts", "list"], ["export", "alerts", "--out", str(tmp_path / "a.csv")],
                    ["plot", "heatmap", "--out", str(tmp_path / "h.png")]):
        result = CliRunner().invoke(app, [*command, "--db", str(missing)],
                                    env={"COLUMNS": "200", "GEOMON_PSEUDONYM_KEY": "a key of sixteen bytes or more"})
        assert result.exit_code == 1 and "no such database" in result.output, (command, result.output)
    assert not missing.exists()


# --------------------------------------------------------------------------- fused tracks (no index on the key)


def _track(subjects, ms, x=0.0) -> pa.Table:
    from geomon.schema import TRACK_SCHEMA

    n = len(subjects)
    return pa.table({"subject_id": pa.array(subjects, pa.string()),
                     "ts": pa.array(np.asarray(ms, np.int64)).cast(TRACK_SCHEMA.field("ts").type),
                     "lon": np.full(n, 116.0 + x), "lat": np.full(n, 39.0), "sigma_m": np.arange(n, dtype=float)},
                    schema=TRACK_SCHEMA)


def test_tracks_keep_the_first_of_each_key_within_a_batch_and_across_batches(tmp_path):
    with AlertStore(tmp_path / "s.duckdb") as store:
        # Within one table: the first of (s1, t1) wins, as the docstring says.
        assert store.write_tracks(_track(["s1", "s1", "s2", "s1"], [BASE_MS, BASE_MS, BASE_MS, BASE_MS + 1])) == 3
        # A later batch: rows already stored are left as they were, new keys go in, even inside the old span.
        assert store.write_tracks(_track(["s1", "s2", "s3"], [BASE_MS, BASE_MS + 1, BASE_MS], x=1.0)) == 2
        # Far later (outside the stored span), nothing to compare with.
        assert store.write_tracks(_track(["s1"], [BASE_MS + 86_400_000])) == 1
        rows = store._cursor().execute(
            "SELECT subject_id, epoch_ms(ts), lon, sigma_m FROM tracks ORDER BY subject_id, ts").fetchall()
    assert rows == [("s1", BASE_MS, 116.0, 0.0), ("s1", BASE_MS + 1, 116.0, 3.0),
                    ("s1", BASE_MS + 86_400_000, 116.0, 0.0), ("s2", BASE_MS, 116.0, 2.0),
                    ("s2", BASE_MS + 1, 117.0, 1.0), ("s3", BASE_MS, 117.0, 2.0)]


def test_tracks_unique_skips_only_the_within_batch_check(tmp_path):
    with AlertStore(tmp_path / "s.duckdb") as store:
        assert store.write_tracks(_track(["s1", "s2"], [BASE_MS, BASE_MS]), unique=True) == 2
        assert store.write_tracks(_track(["s1", "s2", "s2"], [BASE_MS, BASE_MS, BASE_MS + 5]), unique=True) == 1
        assert store._cursor().execute("SELECT count(*) FROM tracks").fetchone()[0] == 3
