"""Alert lifecycle from the command line: ack, dispatch, close, by whom and with what note, in an audit log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from geomon.cli.main import app
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore, LifecycleError
from tests import scenario as sc

MIN = 60_000


@pytest.fixture()
def store_path(tmp_path):
    # s1 (office-w) stays in the bar 20 minutes; s2 (office-w) goes silent: a forbidden entry, a dwell, a lost contact.
    t = sc.T0_MS + np.arange(0, 20 * MIN, 15_000)
    fixes = pa.concat_tables([sc.fixes("s1", np.full(t.size, sc.X0 + 2000.0), np.full(t.size, sc.Y0), t),
                              sc.fixes("s2", np.full(8, sc.X0 - 2000.0), np.full(8, sc.Y0), t[:8])])
    db = tmp_path / "store.duckdb"
    replay(fixes, sc.zones(), sc.subjects(3), db=db)
    return db


def _run(*args):
    return CliRunner().invoke(app, ["alerts", *args], env={"COLUMNS": "200"})


def test_ack_dispatch_close_with_audit(store_path):
    with AlertStore(store_path, read_only=True) as store:
        alert = store.list_alerts(kind="forbidden_entry").to_pylist()[0]
    onset = alert["onset_ts"]
    at = lambda m: (onset + timedelta(minutes=m)).isoformat()   # noqa: E731
    assert _run("ack", alert["alert_id"], "--db", str(store_path), "--by", "officer Li", "--at", at(1)).exit_code == 0
    assert _run("dispatch", alert["alert_id"], "--db", str(store_path), "--by", "officer Li",
                "--note", "patrol sent", "--at", at(3)).exit_code == 0
    assert _run("close", alert["alert_id"], "--db", str(store_path), "--by", "officer Wang",
                "--note", "left the bar", "--at", at(30)).exit_code == 0
    with AlertStore(store_path, read_only=True) as store:
        row = store.list_alerts(kind="forbidden_entry").to_pylist()[0]
        log = store.audit_log(alert["alert_id"]).to_pylist()
    assert row["status"] == "closed"
    assert row["dispatched_at"] - row["acknowledged_at"] == timedelta(minutes=2)
    assert [(e["action"], e["from_status"], e["to_status"], e["by_whom"], e["note"]) for e in log] == [
        ("ack", "open", "acknowledged", "officer Li", None),
        ("dispatch", "acknowledged", "dispatched", "officer Li", "patrol sent"),
        ("close", "dispatched", "closed", "officer Wang", "left the bar")]
    assert log[2]["step_at"] == onset + timedelta(minutes=30)


def test_illegal_steps_are_refused_and_leave_no_trace(store_path):
    with AlertStore(store_path, read_only=True) as store:
        alert_id = store.list_alerts(kind="forbidden_entry").column("alert_id")[0].as_py()
    result = _run("close", alert_id, "--db", str(store_path))
    assert result.exit_code == 1 and "is open; it can become closed only from acknowledged or dispatched" \
        in result.output.replace("\n", "")
    assert _run("ack", "no-such-id", "--db", str(store_path)).exit_code == 1
    with AlertStore(store_path) as store:
        assert store.audit_log().num_rows == 0
        with pytest.raises(LifecycleError):
            store.dispatch(alert_id, datetime.now(timezone.utc))


def test_bulk_ack_by_filter(store_path):
    result = _run("ack", "--db", str(store_path), "--office", "office-w", "--status", "open", "--by", "duty desk")
    assert result.exit_code == 0, result.output
    with AlertStore(store_path, read_only=True) as store:
        alerts = store.list_alerts().to_pylist()
        log = store.audit_log().to_pylist()
    assert alerts and all(a["status"] == "acknowledged" for a in alerts)
    assert sorted(e["alert_id"] for e in log) == sorted(a["alert_id"] for a in alerts)
    assert {e["by_whom"] for e in log} == {"duty desk"}
    # Again: nothing open is left, so every one is refused and the command says so.
    again = _run("ack", "--db", str(store_path), "--office", "office-w", "--by", "duty desk")
    assert again.exit_code == 1 and "refused" in again.output
    assert _run("ack", "--db", str(store_path)).exit_code == 1   # no ids and no filter: refused
