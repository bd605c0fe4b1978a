"""A deterministic simulator of a supervised county, with exact ground truth.

:func:`simulate` writes what a supervision centre would receive -- position
fixes, zones and the subject register -- plus the truth a detector is scored
against: every injected violation with the exact times the true path crossed
the zone boundary. Everything follows from one seed.

The model, in a local Transverse Mercator frame centred on the county
(:func:`geomon.geo.crs.transverse_mercator`), in metres:

- **County.** A star-shaped blob whose radius is a random sum of low harmonics
  (the shape) and a few hundred high ones (a rough, tens-of-metres edge),
  sampled at 3,500-5,000 vertices and scaled to the area of a 50 km disc. A
  polygon with vertices at increasing polar angle around an interior point is
  simple, so the outline is valid by construction, and every ray from the
  centre crosses it exactly once (which the county-exit trips use).
- **Offices.** 14 towns, the most central being the county seat; their
  Voronoi cells clipped to the county (``shapely.voronoi_polygons``) are the
  office jurisdictions, so they tile the county.
- **Places.** Bars (circles, 30-80 m), schools (rotated rectangles, 90-280 m
  circumradius) and victims' homes (circles of 50-200 m, forbidden to one
  subject) are spread over the towns and the countryside, with 300 m between
  any two. Homes, workplaces and errand places keep
  :data:`~geomon.sim.geography.PLACE_MARGIN_M` from every forbidden zone and
  :data:`~geomon.sim.geography.COUNTY_MARGIN_M` inside the county; routine
  legs (straight, meandering or detouring polylines) keep
  :data:`~geomon.sim.geography.PATH_MARGIN_M` from every forbidden zone and
  :data:`~geomon.sim.geography.COUNTY_MARGIN_M` inside the county. Routine
  movement therefore never violates anything, and ``truth.parquet`` lists the
  injected violations and nothing else.
- **Days.** Local time is China Standard Time (UTC+8). Employed subjects go to
  work on weekdays (sometimes out for lunch), run errands after work and in
  the evening; others run one to three errands a day. Legs under
  :data:`~geomon.sim.routines.WALK_MAX_M` are walked at 1-1.5 m/s, longer
  ones driven at 10-20 m/s.
- **Violations.** About :data:`~geomon.sim.routines.EXIT_FRACTION` of
  subjects drive out of the county along a ray from its centre, 2-8 km beyond
  the edge, stay, and come back; about
  :data:`~geomon.sim.routines.ENTRY_FRACTION` walk into a forbidden place that
  applies to them (often their victim's home), dwell 3-20 minutes and walk
  out; about :data:`~geomon.sim.routines.CROSSING_FRACTION` drive straight
  through a small forbidden zone timed to fall between two fixes
  (``crossing_only``).
- **Fixes.** Each device reports on its own interval (15-30 s strict,
  30-60 s ordinary, each step jittered by +/-10 %). Noise depends on where
  the subject is: augmented satellite (0.3 m) in the open for devices that
  support it, open sky (2.5 m), urban (6 m, plus persistent multipath offsets
  of 15-60 m on 5-10 % of fixes, a two-state Markov chain over fixes) and
  indoor (45 % of fixes lost, 10 % urban satellite fixes, the rest cell fixes
  100-800 m off). ``accuracy_m`` is the honest 1-sigma of the mode, per axis
  (east and north errors each have that standard deviation); multipath
  outliers are not reflected in it. Cell errors are a per-stay offset plus
  per-fix scatter, together of standard deviation ``accuracy_m`` per axis.

Ground truth is computed from the true path itself, not from the plan: every
straight piece of every path is intersected with the boundaries of the county
and of the forbidden zones applying to the subject, the crossing times are
interpolated along the piece, and the state between crossings is checked at
the midpoint. It is exact up to rounding to the millisecond.

This module is the entry point; the model lives in :mod:`geomon.sim.geography`
(county, jurisdictions, forbidden places), :mod:`geomon.sim.routines`
(subjects, daily plans, movement, injected violations),
:mod:`geomon.sim.noise` (fix schedules and noise modes),
:mod:`geomon.sim.truth` (exact crossing times) and :mod:`geomon.sim.output`
(the files written).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from geomon.geo.crs import transverse_mercator
from geomon.sim.geography import build_geography
from geomon.sim.noise import schedule_ms, subject_fixes
from geomon.sim.output import write_fixes, write_subjects, write_zones
from geomon.sim.routines import DAY_S, assign_violations, local_days, make_subject, plan
from geomon.sim.truth import TRUTH_SCHEMA, truth_table

__all__ = ["TRUTH_SCHEMA", "SimulationResult", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote.

    Attributes
    ----------
    out_dir, fixes_path, zones_path, subjects_path, truth_path : pathlib.Path
        The output folder and its four files.
    n_subjects, n_fixes, n_zones, n_forbidden : int
        Row and feature counts.
    n_permitted_exits, n_forbidden_entries, n_crossings : int
        Truth rows by kind; ``n_forbidden_entries`` includes the
        ``n_crossings`` rows with ``crossing_only`` true.
    n_injected : int
        Violations the simulator planned; equals the number of truth rows,
        since routine movement never violates.
    frame_crs : str
        PROJ string of the local metric frame the simulation ran in.
    start_ms, end_ms : int
        Simulated span ``[start_ms, end_ms)``, epoch milliseconds UTC.
    """

    out_dir: Path
    fixes_path: Path
    zones_path: Path
    subjects_path: Path
    truth_path: Path
    n_subjects: int
    n_fixes: int
    n_zones: int
    n_forbidden: int
    n_permitted_exits: int
    n_forbidden_entries: int
    n_crossings: int
    n_injected: int
    frame_crs: str
    start_ms: int
    end_ms: int



def _parse_start_ms(start: str | datetime) -> int:
    if isinstance(start, datetime):
        dt = start
    else:
        try:
            dt = datetime.fromisoformat(str(start).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"start {start!r} is not an ISO-8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)



def simulate(
    out_dir: str | Path,
    *,
    n_subjects: int = 300,
    days: float = 1.0,
    seed: int = 0,
    noise: bool = True,
    start: str | datetime = "2026-11-02T00:00:00Z",
    centre_lon_deg: float = 117.7,
    centre_lat_deg: float = 37.5,
) -> SimulationResult:
    """Simulate a county's supervised subjects for a few days, with exact ground truth.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into (created if missing; the four files are replaced).
    n_subjects : int
        Number of supervised subjects (>= 1); about 30 % are strict.
    days : float
        Length of the simulated span in days (> 0, at most 366); fractions allowed.
    seed : int
        Seed (>= 0). The same seed and parameters give byte-identical files;
        ``noise`` does not change the true paths, so runs with and without
        noise can be compared fix by fix on ``(subject_id, ts)``.
    noise : bool
        False: every scheduled fix is reported at its exact true position as a
        ``gnss`` fix with ``accuracy_m`` 0.3 (no indoor losses). True: the
        noise modes described in the module docstring.
    start : str or datetime.datetime
        Start of the span, ISO-8601; without a time zone it is taken as UTC.
        The default is 08:00 China Standard Time on Monday 2 November 2026.
    centre_lon_deg, centre_lat_deg : float
        WGS84 longitude and latitude of the county centre, degrees
        (latitude within +/-80).

    Returns
    -------
    SimulationResult
        Paths and counts. ``out_dir`` holds ``fixes.parquet``
        (:data:`geomon.schema.FIX_SCHEMA`, sorted by subject and time),
        ``zones.geojson`` (county ``county`` of kind ``permitted``; 14
        ``jurisdiction-NN`` with ``office_id`` ``office-NN``;
        ``forbidden-NNNN`` with ``category`` bar, school or victim_home, the
        latter with ``subject_ids``; ``home-<subject>``), ``subjects.csv``
        (subject_id, level, office_id, home_zone_id) and ``truth.parquet``
        (:data:`TRUTH_SCHEMA`).

    Raises
    ------
    ValueError
        If a parameter is out of range or ``start`` cannot be read.

    Notes
    -----
    ``true_start``/``true_end`` are the times the true path crosses into and
    out of the violating state (outside the county, or inside a forbidden
    zone applying to the subject), rounded to the millisecond; a fix stamped
    strictly between them lies in the violating state. ``crossing_only``
    marks violations with no reported fix in ``[true_start, true_end]``.

    Examples
    --------
    >>> from geomon.sim.simulate import simulate
    >>> from geomon.io.load import load_fixes
    >>> result = simulate("/tmp/sim", n_subjects=10, days=0.25, seed=1)  # doctest: +SKIP
    >>> load_fixes(result.fixes_path).n_quarantined  # doctest: +SKIP
    0
    """
    if isinstance(n_subjects, bool) or int(n_subjects) != n_subjects or not 1 <= n_subjects <= 100_000:
        raise ValueError(f"n_subjects must be an integer in [1, 100000], not {n_subjects!r}")
    days, centre_lon_deg, centre_lat_deg = float(days), float(centre_lon_deg), float(centre_lat_deg)
    if not 0.0 < days <= 366.0:
        raise ValueError(f"days must be in (0, 366], not {days!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if not (-180.0 <= centre_lon_deg <= 180.0 and -80.0 <= centre_lat_deg <= 80.0):
        raise ValueError(f"centre ({centre_lon_deg}, {centre_lat_deg}) out of range")
    n_subjects, seed = int(n_subjects), int(seed)
    start_ms = _parse_start_ms(start)
    span_ms = int(round(days * DAY_S * 1_000.0))
    end_s = span_ms / 1_000.0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    frame = transverse_mercator(centre_lon_deg)
    x0, y0 = (float(v[0]) for v in frame.project([centre_lon_deg], [centre_lat_deg]))
    ss_geo, ss_subjects, ss_schedule, ss_noise = np.random.SeedSequence(seed).spawn(4)
    rng = np.random.default_rng(ss_geo)

    geo, strict = build_geography(rng, n_subjects)
    trips = assign_violations(rng, n_subjects)
    day0_s, first_day, n_days = local_days(start_ms, end_s)
    victim_of = geo.victim_zones()

    subjects, paths, fix_parts, fix_ts = [], [], [], []
    n_injected = 0
    subject_ss, schedule_ss, noise_ss = (ss.spawn(n_subjects) for ss in (ss_subjects, ss_schedule, ss_noise))
    for i in range(n_subjects):
        srng = np.random.default_rng(subject_ss[i])
        subj = make_subject(srng, geo, i, "strict" if strict[i] else "ordinary", victim_of.get(i, -1))
        sched_ms = schedule_ms(np.random.default_rng(schedule_ss[i]), subj.interval_s, span_ms)
        whole_days = max(1, int(end_s // DAY_S))
        trip_s = float(srng.integers(0, whole_days)) * DAY_S + srng.uniform(0.05, 0.4) * min(end_s, DAY_S)
        tl, injected = plan(
            srng, geo, subj, day0_s, first_day, n_days, end_s, sched_ms / 1_000.0, trips.get(i), trip_s
        )
        n_injected += injected
        path = (np.array(tl.t), np.array(tl.x), np.array(tl.y), np.array(tl.indoor))
        part = subject_fixes(np.random.default_rng(noise_ss[i]), geo, subj, *path, sched_ms, noise)
        subjects.append(subj)
        paths.append(path)
        fix_parts.append(part)
        fix_ts.append(start_ms + part[0])

    truth = truth_table(geo, subjects, paths, fix_ts, start_ms, end_s)

    paths_out = {name: out / name for name in ("fixes.parquet", "zones.geojson", "subjects.csv", "truth.parquet")}
    n_fixes = write_fixes(paths_out["fixes.parquet"], frame, x0, y0, subjects, fix_parts, start_ms)
    pq.write_table(truth, paths_out["truth.parquet"], compression="zstd")
    n_zones = write_zones(paths_out["zones.geojson"], frame, x0, y0, geo, subjects)
    write_subjects(paths_out["subjects.csv"], geo, subjects)

    kinds = truth.column("kind").to_numpy(zero_copy_only=False)
    return SimulationResult(
        out_dir=out,
        fixes_path=paths_out["fixes.parquet"],
        zones_path=paths_out["zones.geojson"],
        subjects_path=paths_out["subjects.csv"],
        truth_path=paths_out["truth.parquet"],
        n_subjects=n_subjects,
        n_fixes=n_fixes,
        n_zones=n_zones,
        n_forbidden=len(geo.zone_poly),
        n_permitted_exits=int((kinds == "permitted_exit").sum()),
        n_forbidden_entries=int((kinds == "forbidden_entry").sum()),
        n_crossings=int(truth.column("crossing_only").to_numpy(zero_copy_only=False).sum()),
        n_injected=int(n_injected),
        frame_crs=frame.crs,
        start_ms=int(start_ms),
        end_ms=int(start_ms + span_ms),
    )
