"""Entry point of the ``geomon`` command. Commands only parse, delegate and print."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from geomon.cli import report

app = typer.Typer(help="geomon: fused tracks and geofence alerts for community supervision.", no_args_is_help=True)
alerts_app = typer.Typer(help="Read alerts from a geomon DuckDB store.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
report_app = typer.Typer(help="Office reports from a geomon DuckDB store.", no_args_is_help=True)
app.add_typer(report_app, name="report")
plot_app = typer.Typer(help="Pictures from a geomon DuckDB store: risk heat map, alert curves.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")
rules_app = typer.Typer(help="Alert rules: the packaged defaults.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

#: The bundled sample (made by the command in data/README.md).
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def _one_line_errors(func):
    """Turn domain and input errors into one clear line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from geomon.errors import GeomonError

        try:
            return func(*args, **kwargs)
        except (GeomonError, ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=1) from None

    return wrapper


@app.callback()
def main() -> None:
    """geomon: fused tracks and geofence alerts for community supervision."""


@app.command()
def version() -> None:
    """Print geomon's version."""
    import geomon

    typer.echo(geomon.__version__)


@app.command()
@_one_line_errors
def simulate(
    out: Annotated[Path, typer.Argument(
        help="Folder to write fixes.parquet, zones.geojson, subjects.csv and truth.parquet into.")],
    subjects: Annotated[int, typer.Option("--subjects", min=1, help="Number of supervised subjects.")] = 300,
    days: Annotated[float, typer.Option(min=0.01, help="Simulated duration in days.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    noise: Annotated[bool, typer.Option(
        "--noise/--no-noise", help="Position noise (satellite, urban multipath, indoor cell fixes) or exact "
                                   "positions.")] = True,
) -> None:
    """Simulate a county, its subjects and their fixes, with injected violations and their true times."""
    from geomon.sim.simulate import simulate as run_simulation

    result = run_simulation(out, n_subjects=subjects, days=days, seed=seed, noise=noise)
    report.print_simulation(result)


def _meeting_files(concern: Optional[Path], protections: Optional[Path]) -> dict:
    """The persons of concern and protection orders files, read (errors name the row and field)."""
    from geomon.run.meetings import load_concern, load_protections

    return {"concern": load_concern(concern) if concern else None,
            "protections": load_protections(protections) if protections else None}


@app.command()
@_one_line_errors
def replay(
    fixes: Annotated[Path, typer.Argument(help="Fixes file: Parquet or CSV in geomon's fix schema.")],
    zones: Annotated[Path, typer.Option(help="Zones: GeoJSON or GeoParquet (permitted, forbidden, jurisdiction...).")],
    subjects: Annotated[Path, typer.Option(help="Subjects: CSV or Parquet (subject_id, level, office_id).")],
    rules: Annotated[Optional[Path], typer.Option(help="Rules TOML; the packaged defaults when omitted.")] = None,
    db: Annotated[Optional[Path], typer.Option(
        help="DuckDB file to write alerts, quarantine and the run into (created if missing).")] = None,
    truth: Annotated[Optional[Path], typer.Option(
        help="Ground-truth Parquet from `geomon simulate`, to print precision, recall and delay.")] = None,
    profile: Annotated[Optional[str], typer.Option(
        help="Rules profile for every subject, e.g. special_period (default: each subject's level).")] = None,
    datum: Annotated[str, typer.Option(help="Datum of the fixes: wgs84, cgcs2000, gcj02 or bd09.")] = "wgs84",
    batch_rows: Annotated[int, typer.Option(min=1, help="Fixes per chunk fed to the engine.")] = 250_000,
    cameras: Annotated[Optional[Path], typer.Option(
        help="Camera layer (camera_id, lon, lat; CSV or Parquet): each alert names the nearest cameras within "
             "300 m.")] = None,
    detectors: Annotated[Optional[str], typer.Option(
        help="Detectors beside geofencing, comma-separated, of lost_contact, checkins, stays, night "
             "(default: lost_contact,stays,night; add checkins where the app's check-ins are in the fixes; "
             "the former names contact and dwell still work).")] = None,
    concern: Annotated[Optional[Path], typer.Option(
        help="Persons of concern: person_id[, subject_id] (CSV or Parquet); their fixes come with the "
             "subjects'.")] = None,
    protections: Annotated[Optional[Path], typer.Option(
        help="Protection orders: subject_id, victim_id, warning_m, alert_m; the protected persons' fixes come with "
             "the subjects'.")] = None,
    dask: Annotated[Optional[str], typer.Option(help="Run on Dask: local:N (N local workers) or a scheduler address "
                                                "(needs geomon[distributed]; Parquet input).")] = None,
    partitions: Annotated[Optional[int], typer.Option(min=1, help="With --dask: subject partitions (default: twice "
                                                      "the workers).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="With --dask, instead of --db: a directory the workers write "
                                                "partitioned Parquet into (alerts/, stays/, quarantine/).")] = None,
    encounter_window: Annotated[float, typer.Option(min=1, help="With --dask and --concern/--protections: hours of "
                                                    "event time per encounter search task.")] = 24.0,
) -> None:
    """Replay recorded fixes through the engine; print alerts by kind and office, quarantine and speed."""
    from geomon.engine.detectors import DEFAULT_DETECTORS

    chosen = DEFAULT_DETECTORS if detectors is None else tuple(d.strip() for d in detectors.split(",") if d.strip())
    if dask is not None:
        from geomon.run.distributed import replay_distributed

        result = replay_distributed(fixes, zones, subjects, rules, scheduler=dask, partitions=partitions, db=db,
                                    profile=profile, datum=datum, detectors=chosen, out=out,
                                    encounter_window_s=encounter_window * 3600.0,
                                    **_meeting_files(concern, protections))
        report.print_distributed(result, db=db, out=out)
        return
    if out is not None:
        raise ValueError("--out is for --dask runs; a replay on one machine writes into --db")
    result = report.run_replay(fixes, zones, subjects, rules, db=db, profile=profile, datum=datum,
                               batch_rows=batch_rows, detectors=chosen, cameras=cameras,
                               **_meeting_files(concern, protections))
    report.print_replay(result, truth=truth, db=db)


def _benchmarks():
    """The benchmarks package of a source checkout (it is not installed with geomon)."""
    import importlib
    import sys

    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "bench.py").exists():
        raise FileNotFoundError("geomon bench runs from a source checkout of geomon (its benchmarks/ folder); "
                                "install it with pip install -e . from the checkout")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("benchmarks.bench")


@app.command()
@_one_line_errors
def bench(
    scenario: Annotated[str, typer.Option(help="Sizes: ci (smoke, seconds), county (about 6 minutes), province "
                                          "(the suites' full sizes, an hour or more).")] = "county",
    suite: Annotated[Optional[list[str]], typer.Option(help="A suite to run; repeat for several (default: all of "
                                                       "pip, zones, fusion, stay, encounters, replay, latency, "
                                                       "alerts, behaviour).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the suites' JSON, bench-<scenario>.json and the pictures.")]
    = Path("bench-results"),
    repeat: Annotated[int, typer.Option(min=1, help="Runs of each suite; the median is reported, the spread "
                                        "sets the noise --compare allows.")] = 1,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a target of benchmarks/targets.toml is "
                                        "missed (or, with --compare, a metric regressed).")] = False,
    compare: Annotated[Optional[Path], typer.Option(help="An earlier bench-<scenario>.json: show what got worse "
                                                    "beyond the noise.")] = None,
    tolerance: Annotated[float, typer.Option(min=0, help="With --compare: the least relative change counted, "
                                             "when the runs' spread is smaller.")] = 0.05,
    against: Annotated[Optional[Path], typer.Option(help="With --compare: a later bench-<scenario>.json to compare "
                                                    "with it, instead of running the suites.")] = None,
) -> None:
    """The benchmark suites at one scenario's sizes: geomon beside its peers, held to benchmarks/targets.toml."""
    bench_mod = _benchmarks()
    code = bench_mod.main(scenario, suite, out_dir=out, repeat=repeat, check=check, compare_with=compare,
                          tolerance=tolerance, console=report.console, against=against)
    if code:
        raise typer.Exit(code=code)


@app.command()
@_one_line_errors
def demo(
    db: Annotated[Path, typer.Option(help="DuckDB file the demo writes into.")] = Path("geomon-demo.duckdb"),
    data: Annotated[Path, typer.Option(
        help="Folder with fixes.parquet, zones.geojson, subjects.csv (and truth.parquet).")] = SAMPLE_DIR,
) -> None:
    """Replay the bundled sample county (data/sample) into a local DuckDB file and print the summary."""
    if not (data / "fixes.parquet").exists():
        raise FileNotFoundError(f"{data}: no fixes.parquet here; make a sample with `geomon simulate {data}`")
    result = report.run_replay(data / "fixes.parquet", data / "zones.geojson", data / "subjects.csv", None, db=db)
    truth = data / "truth.parquet"
    report.print_replay(result, truth=truth if truth.exists() else None, db=db)


@app.command()
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


@app.command()
@_one_line_errors
def bucket(
    source: Annotated[Path, typer.Argument(help="Fixes: a Parquet file or a directory of them.")],
    target: Annotated[Path, typer.Argument(help="New directory for the copy: target/bucket=K/*.parquet.")],
    buckets: Annotated[int, typer.Option(min=1, help="Buckets: the partitions of the later `replay --dask`.")] = 8,
) -> None:
    """Copy fixes into buckets by subject, so that each task of `geomon replay --dask` reads only its own."""
    from geomon.run.distributed import bucket_input

    n = bucket_input(source, target, buckets)
    report.console.print(f"{n:,} fixes written into {buckets} buckets under {target}")


@app.command()
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


@app.command()
@_one_line_errors
def meetings(
    fixes: Annotated[Path, typer.Argument(help="Fixes of the subjects and of the other people (Parquet or CSV).")],
    subjects: Annotated[Path, typer.Option(help="Supervised subjects: CSV or Parquet (subject_id, level, office_id).")],
    concern: Annotated[Optional[Path], typer.Option(
        help="Persons of concern: person_id[, subject_id] (CSV or Parquet).")] = None,
    protections: Annotated[Optional[Path], typer.Option(
        help="Protection orders: subject_id, victim_id, warning_m, alert_m.")] = None,
    rules: Annotated[Optional[Path], typer.Option(help="Rules TOML; the packaged defaults when omitted.")] = None,
    db: Annotated[Optional[Path], typer.Option(
        help="DuckDB store to write the alerts into (created if missing).")] = None,
) -> None:
    """Frequent contact with persons of concern and victim protection over recorded fixes (fused first)."""
    from geomon.io.load import load_rules
    from geomon.run.meetings import load_concern, load_protections, meeting_alerts
    from geomon.store.alert_store import AlertStore

    if concern is None and protections is None:
        raise ValueError("give --concern and/or --protections")
    alerts = meeting_alerts(fixes, subjects, concern=load_concern(concern) if concern else None,
                            protections=load_protections(protections) if protections else None,
                            rules=load_rules(rules) if rules else None)
    report.print_meetings(alerts)
    if db is not None:
        with AlertStore(db) as store:
            n = store.write_alerts(alerts) if alerts.num_rows else 0
        report.console.print(f"{n} new alert rows written to {db}")


#: The former name of ``geomon meetings`` ("contact" also meant device silence), still accepted.
app.command("contacts", hidden=True)(meetings)


@app.command()
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


@app.command()
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


@rules_app.command("default")
def rules_default() -> None:
    """Print the packaged rules file (every threshold's default); redirect it to a file to start your own."""
    from geomon.rules.load import default_rules_text

    typer.echo(default_rules_text(), nl=False)


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
) -> None:
    """List stored alerts, newest first, with optional filters."""
    report.print_alerts(db, kind=kind, office_id=office, status=status, subject_id=subject,
                        location_office_id=where_office, since=since, until=until, limit=limit)


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
            for alert_id in ids:
                step[target](alert_id, when, by=by, note=note)
            moved, refused = list(ids), []
        else:
            moved, refused = store.transition_many(target, when, by=by, note=note, **filters)
    report.print_lifecycle(target, moved, refused)
    if refused and not moved:
        raise typer.Exit(code=1)


_Ids = Annotated[Optional[list[str]], typer.Argument(help="Alert ids; none: every alert matching the filters.")]
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


@app.command()
@_one_line_errors
def watch(
    directory: Annotated[Optional[Path], typer.Argument(
        help="Directory where fix files land (Parquet, CSV, JSON lines); each is read once, in name order.")] = None,
    zones: Annotated[Path, typer.Option(help="Zones: GeoJSON or GeoParquet.")] = ...,
    subjects: Annotated[Path, typer.Option(help="Subjects: CSV or Parquet.")] = ...,
    db: Annotated[Path, typer.Option(help="DuckDB store: alerts, checkpoints (created if missing).")] = ...,
    rules: Annotated[Optional[Path], typer.Option(help="Rules TOML; the packaged defaults when omitted.")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Also read JSON-lines fixes from stdin.")] = False,
    socket: Annotated[Optional[Path], typer.Option(help="Also accept JSON-lines fixes on this Unix socket.")] = None,
    stream_id: Annotated[str, typer.Option(help="Name of the stream; its checkpoint is resumed.")] = "live",
    lateness: Annotated[float, typer.Option(min=0, help="Seconds a fix is held for out-of-order arrivals.")] = 0.0,
    tick: Annotated[float, typer.Option(min=0.01, help="Seconds between micro-batches.")] = 0.25,
    checkpoint_every: Annotated[float, typer.Option(min=0, help="Seconds between checkpoints (0: every tick; use it "
                                                    "for --stdin/--socket when the sender cannot resend).")] = 5.0,
    clock: Annotated[str, typer.Option(help="wall (live) or event (recorded files: the newest fix is now).")] = "wall",
    once: Annotated[bool, typer.Option("--once", help="Process what is there (a file per tick) and exit.")] = False,
    idle_exit: Annotated[Optional[float], typer.Option(help="Exit after this many seconds without input.")] = None,
    profile: Annotated[Optional[str], typer.Option(help="Rules profile for every subject.")] = None,
    detectors: Annotated[Optional[str], typer.Option(help="Comma-separated behaviour detectors.")] = None,
    concern: Annotated[Optional[Path], typer.Option(
        help="Persons of concern: person_id[, subject_id] (CSV or Parquet); their fixes come with the "
             "subjects'.")] = None,
    protections: Annotated[Optional[Path], typer.Option(
        help="Protection orders: subject_id, victim_id, warning_m, alert_m; the protected persons' fixes come with "
             "the subjects'.")] = None,
) -> None:
    """Run live: consume fixes as they arrive, commit alerts and checkpoints; a restart resumes the stream."""
    import signal
    import sys
    import threading

    from geomon.engine.detectors import DEFAULT_DETECTORS
    from geomon.rules.load import load_rules
    from geomon.run.live import DirectorySource, LineSource, LiveMonitor, run

    sources = []
    if directory is not None:
        sources.append(DirectorySource(directory))
    if stdin:
        sources.append(LineSource(sys.stdin))
    if socket is not None:
        sources.append(LineSource(socket_path=socket))
    if not sources:
        raise ValueError("nothing to watch: give a directory, --stdin or --socket")
    chosen = tuple(d.strip() for d in detectors.split(",") if d.strip()) if detectors else DEFAULT_DETECTORS
    live = LiveMonitor(zones, subjects, load_rules(rules) if rules is not None else None, db=db,
                       stream_id=stream_id, lateness_s=lateness, clock=clock, checkpoint_every_s=checkpoint_every,
                       profile=profile, detectors=chosen, **_meeting_files(concern, protections))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state = "resumed at micro-batch " + str(live.seq) if live.resumed else "started"
    report.console.print(f"stream {stream_id!r} {state}"
                         f" (run {live.run_id}); {', '.join(type(s).__name__ for s in sources)}")
    try:
        n = run(live, sources, tick_s=tick, once=once, idle_exit_s=idle_exit, stop=stop,
                on_tick=report.live_status())
    except KeyboardInterrupt:
        n = live.seq
    finally:
        live.close()                   # a last checkpoint of what was processed
    report.print_watch_summary(live, n)
