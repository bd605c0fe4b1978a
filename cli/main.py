"""Entry point of the ``geomon`` command. Commands only parse, delegate and print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from geomon.cli import office, report
from geomon.cli.errors import one_line_errors as _one_line_errors

app = typer.Typer(help="geomon: fused tracks and geofence alerts for community supervision.", no_args_is_help=True)
app.add_typer(office.alerts_app, name="alerts")
app.add_typer(office.report_app, name="report")
app.add_typer(office.plot_app, name="plot")
rules_app = typer.Typer(help="Alert rules: the packaged defaults.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

#: The bundled sample (made by the command in data/README.md).
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"

#: What the fixes' accuracy_m reports, on every command that loads fixes (docs/loading.md).
_Accuracy = Annotated[str, typer.Option(
    help="What the fixes' accuracy_m reports: sigma (per-axis 1-sigma, the default), r68 (radius of 68 % "
         "confidence: Android, iOS, Traccar, OsmAnd), cep or r50 (50 % radius), r95 (95 % radius), hdop "
         "(HDOP, times --uere-m). Converted once, on load, to per-axis sigma.")]
_UereM = Annotated[Optional[float], typer.Option(
    "--uere-m", help="With --accuracy hdop: the user-equivalent range error in metres (default 5).")]


def _accuracy(accuracy: str, uere_m: Optional[float]) -> dict:
    """The accuracy options, checked before anything is read (a bad value names its option)."""
    from geomon.io.accuracy import check_accuracy

    kind, uere = check_accuracy(accuracy, uere_m, option="--accuracy", uere_option="--uere-m")
    return {"accuracy": kind, "uere_m": uere}


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
    tracks: Annotated[bool, typer.Option(
        help="With --db, also store every admitted fix's fused position in `tracks` (for `geomon near`); about "
             "15 % of a replay's time and 22 bytes a fix on disk (docs/performance.md).")] = True,
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
    accuracy: _Accuracy = "sigma",
    uere_m: _UereM = None,
) -> None:
    """Replay recorded fixes through the engine; print alerts by kind and office, quarantine and speed."""
    from geomon.engine.detectors import DEFAULT_DETECTORS

    kind = _accuracy(accuracy, uere_m)

    chosen = DEFAULT_DETECTORS if detectors is None else tuple(d.strip() for d in detectors.split(",") if d.strip())
    if dask is not None:
        from geomon.run.distributed import replay_distributed

        result = replay_distributed(fixes, zones, subjects, rules, scheduler=dask, partitions=partitions, db=db,
                                    profile=profile, datum=datum, detectors=chosen, out=out,
                                    encounter_window_s=encounter_window * 3600.0,
                                    **_meeting_files(concern, protections), **kind)
        report.print_distributed(result, db=db, out=out)
        return
    if out is not None:
        raise ValueError("--out is for --dask runs; a replay on one machine writes into --db")
    result = report.run_replay(fixes, zones, subjects, rules, db=db, profile=profile, datum=datum,
                               batch_rows=batch_rows, detectors=chosen, cameras=cameras, keep_tracks=tracks,
                               **_meeting_files(concern, protections), **kind)
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
                                                       "firstrun, alerts, boundary, behaviour).")] = None,
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
    accuracy: _Accuracy = "sigma",
    uere_m: _UereM = None,
) -> None:
    """Frequent contact with persons of concern and victim protection over recorded fixes (fused first)."""
    from geomon.io.load import load_rules
    from geomon.run.meetings import load_concern, load_protections, meeting_alerts
    from geomon.store.alert_store import AlertStore

    kind = _accuracy(accuracy, uere_m)
    if concern is None and protections is None:
        raise ValueError("give --concern and/or --protections")
    alerts = meeting_alerts(fixes, subjects, concern=load_concern(concern) if concern else None,
                            protections=load_protections(protections) if protections else None,
                            rules=load_rules(rules) if rules else None, **kind)
    report.print_meetings(alerts)
    if db is not None:
        with AlertStore(db) as store:
            n = store.write_alerts(alerts) if alerts.num_rows else 0
        report.console.print(f"{n} new alert rows written to {db}")


#: The former name of ``geomon meetings`` ("contact" also meant device silence), still accepted.
app.command("contacts", hidden=True)(meetings)


@rules_app.command("default")
def rules_default() -> None:
    """Print the packaged rules file (every threshold's default); redirect it to a file to start your own."""
    from geomon.rules.load import default_rules_text

    typer.echo(default_rules_text(), nl=False)


#: `geomon watch` on the wall clock refuses a new stream whose first fixes are older than this (seconds).
STALE_S = 2 * 3600.0


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
    accuracy: _Accuracy = "sigma",
    uere_m: _UereM = None,
) -> None:
    """Run live: consume fixes as they arrive, commit alerts and checkpoints; a restart resumes the stream."""
    import signal
    import sys
    import threading

    from geomon.engine.detectors import DEFAULT_DETECTORS
    from geomon.rules.load import load_rules
    from geomon.run.live import DirectorySource, LineSource, LiveMonitor, run

    kind = _accuracy(accuracy, uere_m)
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
                       profile=profile, detectors=chosen, **_meeting_files(concern, protections), **kind,
                       refuse_stale_s=STALE_S)
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


office.register(app)
