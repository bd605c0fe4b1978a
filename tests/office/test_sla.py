"""Service levels: a replay of the sample, a scripted day of acknowledgements and dispatches, the SLA views."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta, timezone

import pytest
from typer.testing import CliRunner

from geomon.cli.main import SAMPLE_DIR, app
from geomon.run.replay import replay
from geomon.store.alert_store import AlertStore

CST = timezone(timedelta(hours=8))
ACK_AFTER_S = (10, 25, 90)          # alert i is acknowledged this long after confirmation (i % 3)
DISPATCH_AFTER_S = (120, 400)       # every second alert is dispatched (i % 4 == 0: 120 s, i % 4 == 2: 400 s)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    db = tmp_path_factory.mktemp("sla") / "store.duckdb"
    replay(SAMPLE_DIR / "fixes.parquet", SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv", db=db)
    with AlertStore(db) as store:
        alerts = sorted(store.list_alerts().to_pylist(), key=lambda r: r["alert_id"])
        for i, a in enumerate(alerts):
            if i % 5 == 4:
                continue                                   # one in five is never acknowledged
            c = a["confirmed_ts"]
            store.acknowledge(a["alert_id"], c + timedelta(seconds=ACK_AFTER_S[i % 3]), by="duty desk")
            if i % 2 == 0:
                store.dispatch(a["alert_id"], c + timedelta(seconds=DISPATCH_AFTER_S[(i // 2) % 2]), by="patrol")
            store.close_alert(a["alert_id"], c + timedelta(hours=1), by="duty desk")
    return db, alerts


def _expected(alerts):
    """The figures worked out from the script, per (office, local date)."""
    out = defaultdict(lambda: defaultdict(int))
    for i, a in enumerate(alerts):
        key = (a["office_id"], a["confirmed_ts"].astimezone(CST).date())
        e = out[key]
        e["n_alerts"] += 1
        if i % 5 == 4:
            e["n_open"] += 1
            continue
        e["n_received"] += 1
        e["n_closed"] += 1
        e["n_received_30s"] += ACK_AFTER_S[i % 3] <= 30
        if i % 2 == 0:
            e["n_dispatched"] += 1
            e["n_dispatched_5min"] += DISPATCH_AFTER_S[(i // 2) % 2] <= 300
    return out


def test_sla_views_equal_the_scripted_figures(scripted):
    db, alerts = scripted
    assert len(alerts) > 50
    with AlertStore(db, read_only=True) as store:
        rows = store.service_levels("day").to_pylist()
    want = _expected(alerts)
    assert {(r["office_id"], r["period"]) for r in rows} == set(want)
    for r in rows:
        e = want[(r["office_id"], r["period"])]
        for col in ("n_alerts", "n_received", "n_received_30s", "n_dispatched", "n_dispatched_5min", "n_open",
                    "n_closed"):
            assert r[col] == e[col], (r, col)
        assert r["share_received_30s"] == pytest.approx(e["n_received_30s"] / e["n_alerts"], abs=1e-4)


def test_monthly_totals_and_the_command(scripted):
    db, alerts = scripted
    with AlertStore(db, read_only=True) as store:
        monthly = store.service_levels("month").to_pylist()
    assert sum(r["n_alerts"] for r in monthly) == len(alerts)
    # Two thirds of the acknowledged alerts are received within 30 s (10 s and 25 s; not 90 s).
    received = sum(r["n_received"] for r in monthly)
    fast = sum(r["n_received_30s"] for r in monthly)
    assert fast == sum(1 for i in range(len(alerts)) if i % 5 != 4 and i % 3 != 2) and fast < received
    result = CliRunner().invoke(app, ["sla", "--db", str(db), "--period", "month"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "received within 30 s" in result.output and monthly[0]["office_id"] in result.output
    with AlertStore(db, read_only=True) as store:
        with pytest.raises(ValueError, match="period must be"):
            store.service_levels("week")
