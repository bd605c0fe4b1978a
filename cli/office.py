"""The office's commands: alerts and their lifecycle, service levels, reports, pictures, look-back, exports
and purges, all over a geomon DuckDB store. Commands only parse, delegate and print (:mod:`geomon.cli.main`
registers them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from geomon.cli import report
from geomon.cli.errors import one_line_errors as _one_line_errors

__all__ = ["alerts_app", "plot_app", "register", "report_app"]

alerts_app = typer.Typer(help="Read alerts from a geomon DuckDB store.", no_args_is_help=True)
report_app = typer.Typer(help="Office reports from a geomon DuckDB store.", no_args_is_help=True)
plot_app = typer.Typer(help="Pictures from a geomon DuckDB store: risk heat map, alert curves.", no_args_is_help=True)


@_one_line_errors
def near(
    db: Annotated[Path, typer.Option(help="DuckDB store a replay wrote (its fused tracks).")],
    lon: Annotated[float, typer.Option(help="Longitude of the place (WGS84 degrees).")],
    lat: Annotated[float, typer.Option(help="Latitude of the place (WGS84 degrees).")],
    at: Annotated[str, typer.Option(help="The moment, ISO 8601 with offset, e.g. 2026-11-02T10:00:00+08:00.")],
    window: Annotated[float, typer.Option(
        min=1.0, help="Half-width of the time window around --at, seconds.")] = 1800.0,
    radius: Annotated[float, typer.Option(min=0.1, help="How near counts, metres.")] = 200.0,
    speed: Annotated[float, typer.Option(min=0.1, help="Fastest a silent subject is assumed to move, m/s.")] = 15.0,
) -> None:
    """Incident look-back: who was, or could have been, within --radius of a place around --at; who is ruled out."""
    from datetime import datetime

    from geomon.office.lookback import near as look_back

    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError(f"--at {at!r} has no UTC offset; add one, e.g. +08:00")
    table = look_back(db, lon, lat, moment, window_s=window, radius_m=radius, speed_mps=speed)
    report.print_near(table, title=f"Within {radius:g} m of ({lon:.6f}, {lat:.6f}), {at} +/- {window:g} s")


@_one_line_errors
def purge(
    subject: Annotated[Optional[str], typer.Argument(
        help="Subject (or other tracked person) whose data to remove.")] = None,
    db: Annotated[Path, typer.Option(help="DuckDB store.")] = ...,
    older_than: Annotated[Optional[float], typer.Option(min=0, help="Instead: remove tracks, stays and quarantined "
                                                        "input older than this many days.")] = None,
    alerts: Annotated[bool, typer.Option("--alerts", help="With --older-than: alerts too (kept by default).")] = False,
    key_file: Annotated[Optional[Path], typer.Option(help="Pseudonym key file (default: $GEOMON_PSEUDONYM_KEY): the "
                                                     "purge record names the subject by its pseudonym.")] = None,
    by: Annotated[Optional[str], typer.Option(help="Who asked for it (recorded).")] = None,
    reason: Annotated[Optional[str], typer.Option(
        help="Why, e.g. a court order or the end of supervision (recorded).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a subject's data, or everything older than N days; the removal is recorded in the store."""
    import os

    from geomon.io.export import KEY_ENV, load_key
    from geomon.store.alert_store import AlertStore
    from geomon.store.purge import purge_older, purge_subject

    if (subject is None) == (older_than is None):
        raise ValueError("give a SUBJECT, or --older-than DAYS")
    if not db.exists():
        raise FileNotFoundError(f"{db}: no such database")
    what = "this subject's data" if subject is not None else f"data older than {older_than:g} days"
    if not yes and not typer.confirm(f"Remove {what} from {db}? This cannot be undone", default=False):
        raise typer.Exit(code=1)
    with AlertStore(db) as store:
        if subject is not None:
            key = load_key(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None
            counts = purge_subject(store, subject, key=key, by=by, reason=reason)
        else:
            counts = purge_older(store, older_than, alerts=alerts, by=by, reason=reason)
    report.print_purge(counts, what)


@_one_line_errors
def sla(
    db: Annotated[Path, typer.Option(help="DuckDB store.")],
    period: Annotated[str, typer.Option(help="day, month or quarter (China Standard Time).")] = "day",
    office: Annotated[Optional[str], typer.Option(help="Only this supervising office.")] = None,
) -> None:
    """Service levels per office and period: received (acknowledged) within 30 s, dispatched within 5 minutes."""
    from geomon.store.alert_store import AlertStore

    with AlertStore(db, read_only=True) as store:
        table = store.service_levels(period, office)
    report.print_sla(table, period)


@_one_line_errors
def export(
    what: Annotated[str, typer.Argument(help="alerts, stays or tracks.")],
    db: Annotated[Path, typer.Option(help="DuckDB store.")],
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .geojson.")],
    key_file: Annotated[Optional[Path], typer.Option(
        help="Pseudonym key file (default: $GEOMON_PSEUDONYM_KEY).")] = None,
    clear_ids: Annotated[bool, typer.Option(
        "--clear-ids", help="Write subject ids in clear (still needs the key).")] = False,
) -> None:
    """Export alerts, stay points or fused tracks with subject ids replaced by keyed pseudonyms."""
    from geomon.io.export import export_table, load_key, store_table
    from geomon.store.alert_store import AlertStore

    key = load_key(key_file)
    with AlertStore(db, read_only=True) as store:
        table = store_table(store, what)
    export_table(table, out, key=key, clear_ids=clear_ids)
    report.console.print(f"{table.num_rows} {what} rows written to {out}"
                         f"{' with clear ids' if clear_ids else ', subject ids pseudonymised'}")


@alerts_app.command("list")
@_one_line_errors
def alerts_list(
    db: Annotated[Path, typer.Option(help="DuckDB file written by `geomon replay` or `geomon demo`.")],
    kind: Annotated[Optional[str], typer.Option(
        help="Only this alert kind, e.g. permitted_exit or forbidden_entry.")] = None,
    office: Annotated[Optional[str], typer.Option(help="Only alerts of subjects supervised by this office.")] = None,
    status: Annotated[Optional[str], typer.Option(
        help="Only this status: open, acknowledged, dispatched or closed.")] = None,
    subject: Annotated[Optional[str], typer.Option(help="Only this subject.")] = None,
    where_office: Annotated[Optional[str], typer.Option(
        help="Only alerts that happened in this office's jurisdiction.")] = None,
    since: Annotated[Optional[datetime], typer.Option(
        help="Only alerts with onset at or after this time (ISO 8601, UTC if no offset).")] = None,
    until: Annotated[Optional[datetime], typer.Option(
        help="Only alerts with onset before this time (ISO 8601, UTC if no offset).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows, newest first.")] = 50,
    tz: Annotated[str, typer.Option(
        help="Time zone of the times shown: a zone name or an offset such as +08:00.")] = "Asia/Shanghai",
    format: Annotated[str, typer.Option(
        "--format", help="table (for people), csv or json (every column, for pipes and scripts).")] = "table",
) -> None:
    """List stored alerts, newest first, with optional filters.

    The table shows each alert's short id, which `alerts ack/dispatch/close` take (any unique prefix of 6 or
    more characters), and its times in the centre's local time.
    """
    report.print_alerts(db, kind=kind, office_id=office, status=status, subject_id=subject,
                        location_office_id=where_office, since=since, until=until, limit=limit, tz=tz, fmt=format)


def _lifecycle(target: str, ids, db, by, note, at, kind, office, status, subject):
    """One lifecycle step on the alerts named, or on every alert matching the filters."""
    from datetime import timezone

    from geomon.store.alert_store import AlertStore

    if not db.exists():
        raise FileNotFoundError(f"{db}: no such database")
    when = at or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    filters = {"kind": kind, "office_id": office, "status": status, "subject_id": subject}
    with AlertStore(db) as store:
        if ids:
            if any(v is not None for v in filters.values()):
                raise ValueError("give alert ids or filters, not both")
            step = {"acknowledged": store.acknowledge, "dispatched": store.dispatch, "closed": store.close_alert}
            ids = [store.resolve_alert_id(alert_id) for alert_id in ids]    # listings show short ids
            for alert_id in ids:
                step[target](alert_id, when, by=by, note=note)
            moved, refused = list(ids), []
        else:
            moved, refused = store.transition_many(target, when, by=by, note=note, **filters)
    report.print_lifecycle(target, moved, refused)
    if refused and not moved:
        raise typer.Exit(code=1)


_Ids = Annotated[Optional[list[str]], typer.Argument(
    help="Alert ids, or the short ids `alerts list` shows (any unique prefix of 6+ characters); none: every "
         "alert matching the filters.")]
_Db = Annotated[Path, typer.Option(help="DuckDB store.")]
_By = Annotated[Optional[str], typer.Option(help="Who takes the step (recorded in the audit log).")]
_Note = Annotated[Optional[str], typer.Option(help="A note for the audit log.")]
_At = Annotated[Optional[datetime], typer.Option(help="When the step was taken (ISO 8601; default now, UTC).")]
_Kind = Annotated[Optional[str], typer.Option(help="Bulk: only this alert kind.")]
_Office = Annotated[Optional[str], typer.Option(help="Bulk: only alerts of this supervising office.")]
_Status = Annotated[Optional[str], typer.Option(help="Bulk: only alerts in this status.")]
_Subject = Annotated[Optional[str], typer.Option(help="Bulk: only this subject's alerts.")]


def _lifecycle_command(target: str, doc: str):
    def command(ids: _Ids = None, db: _Db = Path("geomon-demo.duckdb"), by: _By = None, note: _Note = None,
                at: _At = None, kind: _Kind = None, office: _Office = None, status: _Status = None,
                subject: _Subject = None) -> None:
        _lifecycle(target, ids, db, by, note, at, kind, office, status, subject)

    command.__doc__ = doc
    return _one_line_errors(command)


for _name, _target, _doc in (
        ("ack", "acknowledged", "Acknowledge open alerts (received by the office)."),
        ("dispatch", "dispatched", "Dispatch acknowledged alerts (someone sent out)."),
        ("close", "closed", "Close acknowledged or dispatched alerts (handled: 处置即闭环).")):
    alerts_app.command(_name)(_lifecycle_command(_target, _doc))


_Fmt = Annotated[str, typer.Option("--format", help="md, html or json.")]
_Out = Annotated[Optional[Path], typer.Option(help="Write here instead of printing.")]
_KeyFile = Annotated[Optional[Path], typer.Option(help="Pseudonym key file (default: $GEOMON_PSEUDONYM_KEY).")]


def _emit(text: str, out: Optional[Path]) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        report.console.print(f"written to {out}")


@report_app.command("daily")
@_one_line_errors
def report_daily(db: _Db, office: Annotated[str, typer.Option(help="Supervising office.")],
                 date: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="The day (China Standard Time).")],
                 fmt: _Fmt = "md", out: _Out = None, key_file: _KeyFile = None,
                 clear_ids: Annotated[bool, typer.Option("--clear-ids", help="Subject ids in clear.")] = False,
                 subjects: Annotated[Optional[Path], typer.Option(
                     help="The roster (subjects CSV/Parquet): lists the check-ins due today.")] = None,
                 rules: Annotated[Optional[Path], typer.Option(
                     help="Rules TOML for the check-in deadlines (default: the bundled rules).")] = None) -> None:
    """The day's morning reminder, noon review and evening summary for one office."""
    from geomon.io.export import load_key
    from geomon.office.reports import daily_report, render
    from geomon.rules.load import load_rules
    from geomon.store.alert_store import AlertStore

    key = load_key(key_file)
    with AlertStore(db, read_only=True) as store:
        data = daily_report(store, office, date.date(), key=key, clear_ids=clear_ids, subjects=subjects,
                            rules=load_rules(rules) if rules is not None else None)
    _emit(render(data, fmt), out)


@report_app.command("period")
@_one_line_errors
def report_period(db: _Db, office: Annotated[str, typer.Option(help="Supervising office.")],
                  start: Annotated[datetime, typer.Option(
                      formats=["%Y-%m-%d"], help="First day of the month or quarter.")],
                  period: Annotated[str, typer.Option(help="month or quarter.")] = "month",
                  fmt: _Fmt = "md", out: _Out = None) -> None:
    """The monthly or quarterly review of one office."""
    from geomon.office.reports import period_report, render
    from geomon.store.alert_store import AlertStore

    with AlertStore(db, read_only=True) as store:
        data = period_report(store, office, period, start.date())
    _emit(render(data, fmt), out)


_Since = Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="First day (China Standard Time).")]
_Until = Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="Day after the last (CST).")]
_K = Annotated[int, typer.Option(help="Suppress cells or points with fewer than k distinct subjects.")]


def _alerts_between(db: Path, since, until, **filters):
    from geomon.office.pictures import CST
    from geomon.store.alert_store import AlertStore

    with AlertStore(db, read_only=True) as store:
        return store.list_alerts(since=since.replace(tzinfo=CST) if since else None,
                                 until=until.replace(tzinfo=CST) if until else None, **filters)


@plot_app.command("heatmap")
@_one_line_errors
def plot_heatmap(db: _Db, out: Annotated[Path, typer.Option(help="PNG to write.")],
                 zones: Annotated[Optional[Path], typer.Option(
                     help="Zones file: its jurisdictions are drawn, and fix the map's frame.")] = None,
                 geojson: Annotated[Optional[Path], typer.Option(help="Also write the shown cells here.")] = None,
                 cell_m: Annotated[float, typer.Option(help="Cell side in metres.")] = 1000.0, k: _K = 5,
                 kind: Annotated[Optional[list[str]], typer.Option(help="Only these alert kinds.")] = None,
                 since: _Since = None, until: _Until = None) -> None:
    """Risk heat map: alerts per square cell, office boundaries drawn, small cells suppressed (PNG, GeoJSON)."""
    import json

    from geomon.engine.zones import zones_frame
    from geomon.io.load import load_zones
    from geomon.office.pictures import plot_risk_map, risk_grid

    alerts = _alerts_between(db, since, until, kind=kind or None)
    zone_load = load_zones(zones) if zones is not None else None
    grid = risk_grid(alerts, cell_m=cell_m, k=k, frame=zones_frame(zone_load) if zone_load is not None else None)
    plot_risk_map(grid, out, zones=zone_load)
    if geojson is not None:
        geojson.write_text(json.dumps(grid.to_geojson()), encoding="utf-8")
    report.console.print(f"{grid.n_alerts} alerts in {grid.cells.num_rows} cells of {cell_m:g} m; "
                         f"{grid.n_suppressed_cells} cells ({grid.n_suppressed_alerts} alerts) with fewer than "
                         f"{k} subjects suppressed; written to {out}" + (f" and {geojson}" if geojson else ""))


@plot_app.command("curves")
@_one_line_errors
def plot_curves_command(db: _Db, out: Annotated[Path, typer.Option(help="PNG to write.")],
                        by: Annotated[str, typer.Option(help="office or subject.")] = "office",
                        bin: Annotated[str, typer.Option(help="week or day.")] = "week",
                        office: Annotated[Optional[list[str]], typer.Option(help="Only these offices.")] = None,
                        subject: Annotated[Optional[list[str]], typer.Option(help="Only these subjects.")] = None,
                        k: _K = 5, since: _Since = None, until: _Until = None,
                        subjects: Annotated[Optional[Path], typer.Option(
                            help="Roster: plot alerts per supervised subject (office curves).")] = None,
                        csv: Annotated[Optional[Path], typer.Option(help="Also write the points as CSV.")] = None,
                        key_file: _KeyFile = None) -> None:
    """Correction-effect curves: alerts per week (or day) per office or subject (PNG)."""
    import pyarrow.csv as pcsv

    from geomon.io.export import load_key
    from geomon.io.load import load_subjects
    from geomon.office.pictures import alert_curves, plot_curves

    alerts = _alerts_between(db, since, until, office_id=office or None, subject_id=subject or None)
    key = load_key(key_file) if by == "subject" else None
    roster = load_subjects(subjects).table if subjects is not None else None
    curves = alert_curves(alerts, by=by, bin=bin, k=k, key=key, roster=roster)
    plot_curves(curves, out, bin=bin, per_subject=roster is not None,
                title=f"Alerts per {bin} per {by}" + (" and supervised subject" if roster is not None else ""))
    if csv is not None:
        pcsv.write_csv(curves, csv)
    hidden = sum(curves.column("suppressed").to_pylist())
    report.console.print(f"{alerts.num_rows} alerts, {len(set(curves.column('group').to_pylist()))} {by} curves, "
                         f"{hidden} points suppressed (fewer than {k} subjects); written to {out}")


def register(app: typer.Typer) -> None:
    """Add the office's top-level commands to the ``geomon`` app (the sub-apps are added by name there)."""
    for command in (near, sla, export, purge):
        app.command()(command)
