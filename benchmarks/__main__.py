"""``python -m benchmarks <suite>``: each suite is a subcommand; commands only parse, delegate and print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from benchmarks import alerts as alerts_suite
from benchmarks import behaviour as behaviour_suite
from benchmarks import boundary as boundary_suite
from benchmarks import encounters as encounters_suite
from benchmarks import fusion as fusion_suite
from benchmarks import huge as huge_suite
from benchmarks import latency as latency_suite
from benchmarks import scale as scale_suite
from benchmarks import staypoints as staypoints_suite
from benchmarks.pip import DEFAULT_OUT, PipConfig, run_pip
from benchmarks.registry import GeomonMissing
from geomon.cli.main import bench as geomon_bench

app = typer.Typer(help="geomon benchmarks: geomon timed beside its peers, from one registry.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """geomon benchmarks: geomon timed beside its peers, from one registry."""


def _console() -> Console:
    # Piped output (CI logs, `| tee`) would otherwise wrap the wide tables at 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=180)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _given(**values) -> dict:
    """The options the user gave (not None), as config overrides."""
    return {key: value for key, value in values.items() if value is not None}


def _run_suite(config_cls, run, *, quick: bool, overrides: dict, threads: int | None, out: Path,
               strict: bool) -> None:
    """Build the suite's config (quick or full) from the given options, run it and exit 1 on a FAIL under --strict."""
    config = (config_cls.quick_run if quick else config_cls)(**overrides)
    _set_threads(threads)
    payload = run(config, out=out, console=_console())
    if strict and not payload["targets_met"]:
        raise typer.Exit(code=1)


Quick = Annotated[bool, typer.Option("--quick", help="Smoke run at small sizes (seconds).")]
Strict = Annotated[bool, typer.Option("--strict", help="Exit with code 1 when a target FAILs.")]
Subjects = Annotated[Optional[int], typer.Option("--subjects", min=1, help="Simulated subjects per scenario.")]
Hours = Annotated[Optional[float], typer.Option(min=0.01, help="Simulated hours from local midnight.")]
Seed = Annotated[Optional[int], typer.Option(min=0, help="Scenario seed.")]
Repeat = Annotated[Optional[int], typer.Option(min=1, help="Timed runs of geomon (at least).")]
MinTime = Annotated[Optional[float], typer.Option(min=0.0, help="Keep repeating until this many seconds were timed.")]
Threads = Annotated[Optional[int], typer.Option(min=1, help="numba threads for geomon (default: all cores).")]
Sweep = Annotated[Optional[list[float]], typer.Option(
    help="False-alarm budgets (false alerts per subject-day) the evidence rule is swept over; repeat the option "
         "(0 alone: no sweep).")]
Docs = Annotated[bool, typer.Option("--docs", help="Also write the PNG to docs/img.")]
Profile = Annotated[Optional[str], typer.Option(
    help="Rule profile for every subject instead of their levels' (e.g. strict, special_period).")]


def _sweep(sweep: list[float] | None) -> tuple[float, ...] | None:
    return tuple(b for b in sweep if b > 0) if sweep else None


@app.command("pip")
def pip_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = DEFAULT_OUT,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke run: 100,000 points, 3 repeats, no minimum time per case.")
    ] = False,
    repeat: Annotated[
        Optional[int], typer.Option(min=1, help="Timed runs per implementation (at least; default 5, quick 3).")
    ] = None,
    min_time: Annotated[
        Optional[float],
        typer.Option(min=0.0, help="Keep repeating until this many seconds were timed (default 1.0, quick 0)."),
    ] = None,
    points: Annotated[
        Optional[int], typer.Option(min=1, help="Points per polygon case (default 1,000,000, quick 100,000).")
    ] = None,
    vertices: Annotated[
        Optional[list[int]],
        typer.Option(min=8, help="Outline vertex count; repeat the option for several (default 16 256 4096 65536)."),
    ] = None,
    zones: Annotated[int, typer.Option(min=0, help="Zones in the zone case; 0 skips it.")] = 2_000,
    zone_points: Annotated[
        Optional[int], typer.Option(min=1, help="Points in the zone case (default 1,000,000, quick 100,000).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every generated shape and point set.")] = 0,
    threads: Annotated[
        Optional[int], typer.Option(min=1, help="numba threads for geomon (default: numba's, i.e. all cores).")
    ] = None,
    stand_in: Annotated[
        bool,
        typer.Option(
            "--stand-in",
            help="Replace missing geomon functions by shapely stand-ins, to check the harness (not geomon).",
        ),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 1 when a target FAILs.")] = False,
) -> None:
    """Point in polygon: geomon.contains_xy and ZoneIndex against shapely's prepared polygon and STRtree."""
    overrides = {
        key: value
        for key, value in {
            "repeat": repeat,
            "min_time_s": min_time,
            "n_points": points,
            "vertex_counts": tuple(vertices) if vertices else None,
            "zone_points": zone_points,
        }.items()
        if value is not None
    }
    overrides.update(n_zones=zones, seed=seed, stand_in=stand_in)
    config = PipConfig.quick_run(**overrides) if quick else PipConfig(**overrides)

    _set_threads(threads)
    console = _console()
    try:
        payload = run_pip(config, out=out, console=console)
    except GeomonMissing as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    if payload["mismatches"]:
        raise typer.Exit(code=1)
    if strict and not payload["targets_met"]:
        raise typer.Exit(code=1)


@app.command("fusion")
def fusion_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results (heat map and markdown beside it).")]
    = fusion_suite.DEFAULT_OUT,
    quick: Quick = False,
    tracks: Annotated[Optional[int], typer.Option(min=1, help="Tracks per matrix cell (default 40, quick 2).")]
    = None,
    fixes_per_cell: Annotated[
        Optional[int], typer.Option(min=2, help="Fixes per matrix cell (default 30,000, quick 200).")
    ] = None,
    intervals: Annotated[
        Optional[list[int]], typer.Option("--interval", min=1, help="Reporting interval of the matrix, s; repeat the "
                                          "option for several (default 1 5 15 60).")
    ] = None,
    departure_trials: Annotated[
        Optional[int], typer.Option(min=1, help="Departure trials (default 200, quick 10).")
    ] = None,
    tune: Annotated[bool, typer.Option("--tune", help="Choose the parameters of fusion_matrix.TUNING_GRID on the "
                                       "training cells (fewest bar violations, then NEES nearest 2, then the "
                                       "smallest p90 ratio) and judge the held-out row and column with them.")]
    = False,
    hold_out_motion: Annotated[
        Optional[str], typer.Option(help="Motion family held out of the tuning (default bus).")
    ] = None,
    hold_out_noise: Annotated[
        Optional[str], typer.Option(help="Noise family held out of the tuning (default multipath).")
    ] = None,
    docs: Annotated[bool, typer.Option("--docs", help="Also write the heat map to docs/img/fusion_matrix.png.")]
    = False,
    subjects: Annotated[Optional[int], typer.Option("--subjects", min=1, help="Subjects of the throughput "
                                                    "scenario.")] = None,
    hours: Hours = None,
    seed: Seed = None,
    throughput_fixes: Annotated[
        Optional[int], typer.Option(min=1, help="Fixes fuse_tracks is timed on (default 20,000,000, quick 1,000,000).")
    ] = None,
    filterpy_fixes: Annotated[
        Optional[int], typer.Option(min=1, help="Fixes filterpy is timed on (default 50,000, quick 5,000).")
    ] = None,
    repeat: Repeat = None,
    min_time: MinTime = None,
    threads: Threads = None,
    strict: Strict = False,
) -> None:
    """Fusion: the evaluation matrix (motion x noise x interval), departures, leave-one-out tuning; fuse_tracks
    throughput against filterpy."""
    from geomon.sim.field import MOTIONS
    from geomon.sim.field_noise import NOISES

    for value, names, option in ((hold_out_motion, MOTIONS, "--hold-out-motion"),
                                 (hold_out_noise, NOISES, "--hold-out-noise")):
        if value is not None and value not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}", param_hint=option)
    overrides = _given(n_tracks=tracks, fixes_per_cell=fixes_per_cell,
                       intervals_s=tuple(intervals) if intervals else None, departure_trials=departure_trials,
                       hold_out_motion=hold_out_motion, hold_out_noise=hold_out_noise, n_subjects=subjects,
                       hours=hours, seed=seed, throughput_fixes=throughput_fixes, filterpy_fixes=filterpy_fixes,
                       repeat=repeat, min_time_s=min_time)
    overrides.update(tune=tune, docs=docs)
    _run_suite(fusion_suite.FusionConfig, fusion_suite.run_fusion, quick=quick, overrides=overrides,
               threads=threads, out=out, strict=strict)


@app.command("alerts")
def alerts_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = alerts_suite.DEFAULT_OUT,
    quick: Quick = False,
    subjects: Subjects = None,
    hours: Hours = None,
    seed: Seed = None,
    repeat: Repeat = None,
    min_time: MinTime = None,
    threads: Threads = None,
    strict: Strict = False,
    rules: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, help="Rules TOML for the Monitor (default: built-in)."),
    ] = None,
    profile: Profile = None,
    sweep: Sweep = None,
    docs: Docs = False,
) -> None:
    """Alerts: false alerts and detection delay, raw point-in-polygon beside geomon's Monitor (evidence and
    legacy rules), and the evidence rule's trade-off curve over its false-alarm budget."""
    overrides = _given(n_subjects=subjects, hours=hours, seed=seed, repeat=repeat, min_time_s=min_time,
                       rules=str(rules) if rules else None, profile=profile,
                       sweep=_sweep(sweep), docs=docs or None)
    _run_suite(alerts_suite.AlertsConfig, alerts_suite.run_alerts, quick=quick, overrides=overrides,
               threads=threads, out=out, strict=strict)


@app.command("boundary")
def boundary_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = boundary_suite.DEFAULT_OUT,
    quick: Quick = False,
    hours: Hours = None,
    seed: Seed = None,
    profile: Profile = None,
    sweep: Sweep = None,
    docs: Docs = False,
) -> None:
    """Boundary: breach decisions per noise family of the fusion matrix (raw PIP, legacy rule, evidence rule over
    its budget) beside a straight county edge: false alerts per subject-day against p95 delay."""
    overrides = _given(hours=hours, seed=seed, profile=profile, sweep=_sweep(sweep), docs=docs or None)
    _run_suite(boundary_suite.BoundaryConfig, boundary_suite.run_boundary, quick=quick, overrides=overrides,
               threads=None, out=out, strict=False)


@app.command("behaviour")
def behaviour_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = behaviour_suite.DEFAULT_OUT,
    quick: Quick = False,
    subjects: Subjects = None,
    hours: Hours = None,
    seed: Seed = None,
    threads: Threads = None,
    strict: Strict = False,
) -> None:
    """Behaviour detectors: precision, recall and delay per alert kind against labelled simulations."""
    overrides = _given(n_subjects=subjects, hours=hours, seed=seed)
    _run_suite(behaviour_suite.BehaviourConfig, behaviour_suite.run_behaviour, quick=quick, overrides=overrides,
               threads=threads, out=out, strict=strict)


@app.command("encounters")
def encounters_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = encounters_suite.DEFAULT_OUT,
    quick: Quick = False,
    tracks: Annotated[Optional[int], typer.Option(min=2, help="Tracks in the timed day.")] = None,
    sizes: Annotated[Optional[str], typer.Option(help="Track counts of the growth table, comma-separated.")] = None,
    threads: Threads = None,
    strict: Strict = False,
) -> None:
    """Encounters: pairs within D metres over a day of tracks, geomon beside shapely's STRtree per instant."""
    overrides = _given(n_tracks=tracks, threads=threads,
                       sizes=tuple(int(v) for v in sizes.split(",")) if sizes else None)
    _run_suite(encounters_suite.EncountersConfig, encounters_suite.run_encounters, quick=quick, overrides=overrides,
               threads=threads, out=out, strict=strict)


@app.command("staypoints")
def staypoints_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = staypoints_suite.DEFAULT_OUT,
    quick: Quick = False,
    subjects: Subjects = None,
    hours: Hours = None,
    seed: Seed = None,
    throughput_fixes: Annotated[
        Optional[int], typer.Option(min=1, help="Fixes the kernel is timed on (default 20,000,000, quick 1,000,000).")
    ] = None,
    public_fixes: Annotated[
        Optional[int], typer.Option(min=1, help="Fixes geomon.staypoints is timed on (default 2,000,000, quick 100k).")
    ] = None,
    peer_fixes: Annotated[
        Optional[int], typer.Option(min=1, help="Fixes trackintel and MovingPandas are timed on (default 50,000).")
    ] = None,
    repeat: Repeat = None,
    min_time: MinTime = None,
    threads: Threads = None,
    strict: Strict = False,
) -> None:
    """Stay points: the sliding-method kernel and geomon.staypoints against trackintel and MovingPandas."""
    overrides = _given(n_subjects=subjects, hours=hours, seed=seed, throughput_fixes=throughput_fixes,
                       public_fixes=public_fixes, peer_fixes=peer_fixes, repeat=repeat, min_time_s=min_time)
    _run_suite(staypoints_suite.StaypointsConfig, staypoints_suite.run_staypoints, quick=quick, overrides=overrides,
               threads=threads, out=out, strict=strict)


@app.command("huge")
def huge_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = huge_suite.DEFAULT_OUT,
    quick: Quick = False,
    fixes: Annotated[Optional[int], typer.Option(min=1, help="Fixes in the file (default 200,000,000).")] = None,
    subjects: Annotated[Optional[int], typer.Option(min=1, help="Subjects reporting (default 20,000).")] = None,
    db: Annotated[bool, typer.Option("--db", help="Replay into a DuckDB store (alerts, stays, tracks).")] = False,
    folder: Annotated[Optional[Path], typer.Option(help="Where to write the file "
                                                        "(a temporary folder under it).")] = None,
    strict: Strict = False,
) -> None:
    """Replay one huge Parquet file (streamed by row groups): time, fixes per second and peak memory."""
    overrides = _given(fixes=fixes, subjects=subjects, db=db or None, folder=str(folder) if folder else None)
    _run_suite(huge_suite.HugeConfig, huge_suite.run_huge, quick=quick, overrides=overrides, threads=None, out=out,
               strict=strict)


@app.command("scale")
def scale_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = scale_suite.DEFAULT_OUT,
    quick: Quick = False,
    fixes: Annotated[Optional[int], typer.Option(min=1, help="Fixes (default 50,000,000).")] = None,
    subjects: Annotated[Optional[int], typer.Option(min=1, help="Subjects reporting (default 20,000).")] = None,
    workers: Annotated[Optional[list[int]], typer.Option(min=1, help="Dask local workers; repeat "
                                                             "(default 1 and 2).")] = None,
    concern: Annotated[Optional[int], typer.Option(min=0, help="Subjects that are persons of concern to every subject "
                                                   "(frequent contact, searched by encounter windows).")] = None,
    encounter_window: Annotated[Optional[float], typer.Option(min=1, help="Seconds of event time per encounter "
                                                              "window on Dask (default 3,600).")] = None,
    strict: Strict = False,
) -> None:
    """One machine against Dask local clusters on the same input: time, fixes per second, equal alerts."""
    overrides = _given(fixes=fixes, subjects=subjects, workers=tuple(workers) if workers else None, concern=concern,
                       encounter_window_s=encounter_window)
    _run_suite(scale_suite.ScaleConfig, scale_suite.run_scale, quick=quick, overrides=overrides, threads=None, out=out,
               strict=strict)


@app.command("latency")
def latency_command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = latency_suite.DEFAULT_OUT,
    quick: Quick = False,
    subjects: Annotated[Optional[list[int]], typer.Option(min=1, help="Subjects; repeat for several sizes "
                                                          "(default 10,000 and 100,000).")] = None,
    interval: Annotated[Optional[float], typer.Option(min=0.1, help="Seconds between a subject's fixes.")] = None,
    duration: Annotated[Optional[float], typer.Option(min=1, help="Wall seconds per size, warm-up included.")] = None,
    warmup: Annotated[Optional[float], typer.Option(min=0, help="Seconds not counted at the start.")] = None,
    tick: Annotated[Optional[float], typer.Option(min=0.01, help="Seconds between micro-batches.")] = None,
    checkpoint_every: Annotated[Optional[float], typer.Option(min=0, help="Seconds between checkpoints.")] = None,
    companions: Annotated[Optional[float], typer.Option(min=0, max=1, help="Share of subjects with a person of "
                                                        "concern walking beside them (frequent-contact load).")] = None,
    seed: Seed = None,
    strict: Strict = False,
) -> None:
    """Live path in real time: per micro-batch and per alert latency (fix arrival to commit) and CPU use."""
    overrides = _given(subjects=tuple(subjects) if subjects else None, interval_s=interval, duration_s=duration,
                       warmup_s=warmup, tick_s=tick, checkpoint_every_s=checkpoint_every, companion_share=companions,
                       seed=seed)
    _run_suite(latency_suite.LatencyConfig, latency_suite.run_latency, quick=quick, overrides=overrides,
               threads=None, out=out, strict=strict)


# `python -m benchmarks bench` is `geomon bench`: the same command, registered here too.
app.command("bench")(geomon_bench)


if __name__ == "__main__":
    app(prog_name="python -m benchmarks")
