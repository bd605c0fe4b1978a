"""Small simulated scenarios with ground truth, for the accuracy and alert-quality benchmark.

Where :mod:`geomon.sim.simulate` writes a whole county, :func:`scenario` builds one
controlled situation in memory -- every subject in one noise regime, or the
``"mixed"`` blend with true breaches -- and returns, next to the fixes, the
true position at every fix, so that raw and fused horizontal errors, NEES of
the reported covariance, false breach alerts per subject-day and detection
delays can all be measured against the truth.

The model, in a Transverse Mercator frame (:func:`geomon.geo.crs.transverse_mercator`)
centred on 117.0 E, 36.65 N, metres about that centre:

- **Geography.** Depends on the seed only, not on the scenario name, so every
  scenario of one seed shares it. The permitted area (zone ``"county"``, kind
  ``permitted``) is a smooth star-shaped polygon of 1,024 vertices whose
  log-radius is a random sum of harmonics 2-8, scaled to the area of a 10 km
  disc; every ray from the centre crosses its edge once. Routine life stays
  in the *routine disc*, the centred disc 1 km inside the nearest edge point,
  which is convex, so straight legs between routine places never leave the
  area. :data:`N_FORBIDDEN` forbidden circles of radius 50-200 m (32-gons,
  applying to every subject, ``forbidden-NNNN``) lie inside the routine disc;
  routine places keep :data:`~geomon.sim.geography.PLACE_MARGIN_M` and routine
  legs :data:`~geomon.sim.geography.PATH_MARGIN_M` from them.
- **Subject kinds** (:data:`KINDS`). ``augmented``, ``open_sky``, ``urban`` and
  ``indoor`` subjects live a daily routine in the routine disc: home at night
  (until 06:30-08:30 local time, from 20:30-22:30), and in the day straight
  trips home - place - home with stays of 15 min-3 h at the place and
  10-90 min at home; legs under :data:`~geomon.sim.routines.WALK_MAX_M` are
  walked at 1-1.5 m/s, longer ones driven at 10-20 m/s. ``near_boundary``
  subjects live 6-19 m inside the permitted edge (so 5-20 m with margin) and
  never leave home, only moving a few metres between rooms; ``along_boundary``
  subjects walk along the edge offset 7-18 m inwards, in bouts of 10-90 min
  in either direction with stops of 5-60 min in between; ``parked`` subjects
  do not move at all.
- **Noise** (per axis; ``accuracy_m`` is the honest 1-sigma of the mode).
  ``augmented`` 0.3 m, ``open_sky`` 2.5 m (or ``sigma_m``), ``urban`` 6 m plus
  multipath: a two-state Markov chain over the fixes (reused from
  :mod:`geomon.sim.noise`) is in the reflected state on 5-10 % of them, in
  runs of 4 fixes on average, each run adding an offset of 15-60 m in a fixed
  direction; ``accuracy_m`` does not reflect it. ``indoor``: during stays (all
  indoors) 90 % of fixes are cell fixes of per-axis sigma 100-800 m drawn per
  stay, the error being a per-stay offset (0.8 sigma) plus per-fix scatter
  (0.6 sigma), and 10 % are urban satellite fixes; on legs every fix is an
  urban satellite fix. No fix is lost. ``near_boundary`` and
  ``along_boundary`` subjects get open-sky or urban noise, ``parked`` ones
  augmented or open-sky noise, half and half (:attr:`Scenario.noise_of_subject`).
- **Breaches** (``"mixed"`` only). About :data:`BREACH_FRACTION` (half) of the
  routine subjects make one or two excursions, alternating between kinds: a
  *permitted exit* (go to a point 200-400 m inside the edge on a ray from the
  centre, walk out along the ray, stay, walk back) or a *forbidden entry*
  (go to a point 160-300 m from a forbidden circle, walk in towards its
  centre, stay, walk out). Either keeps the subject in the violating state
  for 2.5-19 minutes.
- **Fixes.** Every device reports every ``interval_s``, each step jittered by
  +/-10 % (:func:`geomon.sim.noise.schedule_ms`), from local midnight
  (:data:`START_MS`, 00:00 China Standard Time on Monday 3 November 2025).

Ground truth is computed from the true paths by :func:`geomon.sim.truth.truth_table`
(every moving piece intersected with every boundary), so it is exact to the
millisecond and lists every violation, intended or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import shapely

from geomon.geo.crs import LocalFrame, transverse_mercator
from geomon.schema import FIX_SCHEMA, TS_TYPE
from geomon.sim.geography import forbidden_id
from geomon.sim.noise import (
    CELL_SIGMA_M,
    INDOOR_P_GNSS,
    SIGMA_AUGMENTED_M,
    SIGMA_OPEN_M,
    SIGMA_URBAN_M,
    _multipath,
    schedule_ms,
)
from geomon.sim.output import zone_collection
from geomon.sim.routines import Timeline
from geomon.sim.scenario_paths import (  # noqa: F401  (constants re-exported)
    ALONG_BOUNDARY_M,
    FORBIDDEN_R_M,
    N_FORBIDDEN,
    NEAR_BOUNDARY_M,
    PERMITTED_DIAMETER_M,
    ROUTINE_MARGIN_M,
    _along_boundary_path,
    _near_boundary_path,
    _parked_path,
    _routine_path,
    _Site,
    _site,
)
from geomon.sim.truth import TRUTH_SCHEMA, truth_table

__all__ = ["KINDS", "NOISE_MODES", "SCENARIOS", "START_MS", "Scenario", "scenario"]

#: Scenario names accepted by :func:`scenario`.
SCENARIOS = ("augmented", "open_sky", "urban", "indoor", "near_boundary", "along_boundary", "parked", "mixed")
#: Subject kinds: every scenario but ``"mixed"`` has subjects of one kind.
KINDS = SCENARIOS[:-1]
#: Noise regimes a subject's device can be in.
NOISE_MODES = ("augmented", "open_sky", "urban", "indoor")
_ROUTINE_KINDS = ("augmented", "open_sky", "urban", "indoor")

#: Start of every scenario: 2025-11-03T00:00 China Standard Time, epoch ms UTC.
START_MS = int(datetime(2025, 11, 3, tzinfo=timezone(timedelta(hours=8))).timestamp()) * 1_000
CENTRE_LON_DEG, CENTRE_LAT_DEG = 117.0, 36.65
PERMITTED_ID = "county"
#: Share of routine subjects in ``"mixed"`` that breach, and time spent in the violating state, s.
BREACH_FRACTION = 0.5
BREACH_S = (150.0, 1_140.0)
N_OFFICES = 4


@dataclass(frozen=True)
class Scenario:
    """A simulated scenario: what the centre receives and the truth to score it against.

    Attributes
    ----------
    name : str
        One of :data:`SCENARIOS`.
    fixes : pyarrow.Table
        :data:`geomon.schema.FIX_SCHEMA`, sorted by ``(subject_id, ts)``;
        ``accuracy_m`` is the honest per-axis 1-sigma of the noise mode.
    true_x_m, true_y_m : numpy.ndarray of float64
        True easting/northing in ``frame`` at each fix, in the row order of ``fixes``.
    true_multipath : numpy.ndarray of bool
        Whether each fix carries a multipath offset (not reflected in ``accuracy_m``).
    frame : geomon.geo.crs.LocalFrame
        The metric frame the scenario was made in; ``lon``/``lat`` are
        ``frame.unproject`` of the noisy positions. Project with it to compare.
    zones : dict
        GeoJSON FeatureCollection (RFC 7946) for :func:`geomon.io.load.load_zones`:
        ``county`` (kind ``permitted``) and ``forbidden-NNNN`` (kind ``forbidden``).
    zone_geometry_m : dict of str to shapely.Polygon
        The same zones in ``frame`` metres, by zone id.
    subjects : pyarrow.Table
        ``subject_id``, ``level`` (strict | ordinary), ``office_id``.
    truth : pyarrow.Table
        :data:`geomon.sim.truth.TRUTH_SCHEMA`: every interval in which a true
        path was outside the permitted area or inside a forbidden zone.
    kind_of_subject, noise_of_subject : dict of str to str
        Subject id -> its kind (:data:`KINDS`) and noise mode (:data:`NOISE_MODES`).
    start_ms, end_ms : int
        Simulated span ``[start_ms, end_ms)``, epoch milliseconds UTC.
    interval_s : float
        Nominal reporting interval.
    """

    name: str
    fixes: pa.Table
    true_x_m: np.ndarray
    true_y_m: np.ndarray
    true_multipath: np.ndarray
    frame: LocalFrame
    zones: dict
    zone_geometry_m: dict
    subjects: pa.Table
    truth: pa.Table
    kind_of_subject: dict
    noise_of_subject: dict
    start_ms: int
    end_ms: int
    interval_s: float


# --------------------------------------------------------------------------- noise

_GNSS, _CELL = 0, 1


def _noisy_fixes(rng, mode: str, sigma_open_m: float, tl: Timeline, sched_ms: np.ndarray):
    """One subject's fixes: true x, y; reported x, y; source code; accuracy_m; multipath flag."""
    tk, xk, yk = np.asarray(tl.t), np.asarray(tl.x), np.asarray(tl.y)
    t = sched_ms / 1_000.0
    x, y = np.interp(t, tk, xk), np.interp(t, tk, yk)
    n = t.size
    reflected, mp_x, mp_y = _multipath(rng, n)
    cell = np.zeros(n, dtype=bool)
    if mode == "augmented":
        sigma, reflected = np.full(n, SIGMA_AUGMENTED_M), np.zeros(n, dtype=bool)
    elif mode == "open_sky":
        sigma, reflected = np.full(n, sigma_open_m), np.zeros(n, dtype=bool)
    elif mode == "urban":
        sigma = np.full(n, SIGMA_URBAN_M)
    else:  # indoor: stays are inside buildings, where the device falls back to cell fixes
        indoor = np.asarray(tl.indoor, dtype=bool)
        piece = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, indoor.size - 1)
        cell = indoor[piece] & (rng.random(n) >= INDOOR_P_GNSS)
        cell_sigma = np.rint(rng.uniform(*CELL_SIGMA_M, indoor.size))
        sigma = np.where(cell, cell_sigma[piece], SIGMA_URBAN_M)
        reflected &= ~cell
    ex = rng.normal(size=n) * sigma + np.where(reflected, mp_x, 0.0)
    ey = rng.normal(size=n) * sigma + np.where(reflected, mp_y, 0.0)
    if cell.any():
        # A cell fix is the serving tower's per-stay offset plus scatter; 0.8**2 + 0.6**2 = 1.
        off = rng.normal(size=(indoor.size, 2)) * (0.8 * cell_sigma)[:, None]
        ex = np.where(cell, off[piece, 0] + rng.normal(size=n) * 0.6 * sigma, ex)
        ey = np.where(cell, off[piece, 1] + rng.normal(size=n) * 0.6 * sigma, ey)
    source = np.where(cell, _CELL, _GNSS).astype(np.int8)
    return x, y, x + ex, y + ey, source, sigma.astype(np.float32), reflected


# --------------------------------------------------------------------------- assembly


def _breach_plan(rng, kinds: list[str], span_s: float) -> dict[int, list]:
    """Subject index -> sorted ``(time s, kind, seconds in the violating state)`` of its breaches."""
    eligible = [i for i, k in enumerate(kinds) if k in _ROUTINE_KINDS]
    n_breachers = min(len(eligible), max(1, round(BREACH_FRACTION * len(eligible))))
    plan, n = {}, 0
    for i in sorted(rng.choice(eligible, size=n_breachers, replace=False).tolist()):
        items = []
        for t_s in np.sort(rng.uniform(0.1, 0.8, int(rng.integers(1, 3))) * span_s):
            items.append((float(t_s), ("permitted_exit", "forbidden_entry")[n % 2], float(rng.uniform(*BREACH_S))))
            n += 1
        plan[int(i)] = items
    return plan


def _zones_geojson(frame: LocalFrame, geoms_m: dict) -> dict:
    props = []
    for zone_id in geoms_m:
        kind = "permitted" if zone_id == PERMITTED_ID else "forbidden"
        props.append({"zone_id": zone_id, "kind": kind, "subject_ids": None, "office_id": None,
                      **({"category": "place_of_concern"} if kind == "forbidden" else {})})
    return zone_collection(frame, list(geoms_m.values()), props)


def _truth(site: _Site, sids: list[str], paths: list, fix_ts: list, span_s: float) -> pa.Table:
    if not any(np.ptp(p[1]) > 0 or np.ptp(p[2]) > 0 for p in paths):
        return TRUTH_SCHEMA.empty_table()
    geo = SimpleNamespace(
        county=site.permitted, zone_poly=site.zone_poly, zone_owner=np.full(site.zone_poly.size, -1, np.int64)
    )
    subjects = [SimpleNamespace(sid=s) for s in sids]
    return truth_table(geo, subjects, paths, fix_ts, START_MS, span_s)


def scenario(
    name: str,
    *,
    n_subjects: int = 20,
    hours: float = 24.0,
    interval_s: float = 15.0,
    seed: int = 0,
    sigma_m: float | None = None,
) -> Scenario:
    """Build a scenario of :data:`SCENARIOS` with exact ground truth, in memory.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIOS`. A kind (:data:`KINDS`) gives ``n_subjects``
        subjects of that kind; ``"mixed"`` cycles through the kinds (subject
        ``i`` is of kind ``KINDS[i % 7]``) and makes about half of the
        routine subjects (kinds ``augmented``, ``open_sky``, ``urban``,
        ``indoor``) breach once or twice.
    n_subjects : int
        Number of subjects (>= 1).
    hours : float
        Length of the span from :data:`START_MS` (local midnight), hours (> 0).
    interval_s : float
        Nominal reporting interval, seconds (> 0); each step is jittered by +/-10 %.
    seed : int
        Seed (>= 0). The geography depends on the seed only; subject ``i``'s
        path depends on the seed, its kind and (in ``"mixed"``) its breaches,
        so e.g. ``"open_sky"`` and ``"urban"`` of one seed follow the same
        paths with different noise.
    sigma_m : float, optional
        Per-axis 1-sigma of open-sky satellite fixes, metres (default
        2.5), e.g. 4.7 for a phone-grade device. Applies wherever open-sky
        noise is used (``open_sky`` subjects and the open-sky half of
        ``near_boundary``, ``along_boundary`` and ``parked`` ones); other
        modes keep their sigma.

    Returns
    -------
    Scenario
        Fixes, true positions at each fix, zones, subjects and truth.

    Raises
    ------
    ValueError
        If ``name`` is unknown or a number is out of range.

    Notes
    -----
    Breaches that would not end 10 minutes before the end of the span are
    dropped; spans of a few hours or more leave room for them. The truth
    table is computed from the true paths, so it lists exactly the intervals
    in which a true position is outside the permitted area or inside a
    forbidden zone: a fix stamped strictly between ``true_start`` and
    ``true_end`` is in violation, every other fix is not.

    Examples
    --------
    >>> import numpy as np
    >>> from geomon.sim.scenarios import scenario
    >>> sc = scenario("urban", n_subjects=2, hours=1.0)
    >>> x_m, y_m = sc.frame.project(sc.fixes["lon"].to_numpy(), sc.fixes["lat"].to_numpy())
    >>> error_m = np.hypot(x_m - sc.true_x_m, y_m - sc.true_y_m)
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")
    if isinstance(n_subjects, bool) or int(n_subjects) != n_subjects or n_subjects < 1:
        raise ValueError(f"n_subjects must be a positive integer, not {n_subjects!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if not (math.isfinite(hours) and hours > 0.0 and math.isfinite(interval_s) and interval_s > 0.0):
        raise ValueError(f"hours and interval_s must be positive, not {hours!r} and {interval_s!r}")
    sigma_open_m = SIGMA_OPEN_M if sigma_m is None else float(sigma_m)
    if not (math.isfinite(sigma_open_m) and sigma_open_m > 0.0):
        raise ValueError(f"sigma_m must be positive, not {sigma_m!r}")
    n_subjects, seed = int(n_subjects), int(seed)
    span_ms = int(round(hours * 3_600_000.0))
    span_s = span_ms / 1_000.0

    site = _site(np.random.default_rng([seed, 0]))
    rng = np.random.default_rng([seed, 1, SCENARIOS.index(name)])
    kinds = [KINDS[i % len(KINDS)] if name == "mixed" else name for i in range(n_subjects)]
    breaches = _breach_plan(rng, kinds, span_s) if name == "mixed" else {}
    strict = rng.random(n_subjects) < 0.3
    sids = [f"S{i + 1:04d}" for i in range(n_subjects)]

    paths, parts, fix_ts, modes = [], [], [], []
    for i, kind in enumerate(kinds):
        path_rng = np.random.default_rng([seed, 2, i, KINDS.index(kind) if kind not in _ROUTINE_KINDS else 0])
        if kind in _ROUTINE_KINDS:
            tl, mode = _routine_path(path_rng, site, span_s, breaches.get(i, [])), kind
        elif kind == "near_boundary":
            tl, mode = _near_boundary_path(path_rng, site, span_s), ("open_sky", "urban")[int(path_rng.integers(2))]
        elif kind == "along_boundary":
            tl, mode = _along_boundary_path(path_rng, site, span_s), ("open_sky", "urban")[int(path_rng.integers(2))]
        else:
            tl, mode = _parked_path(path_rng, site, span_s), ("augmented", "open_sky")[int(path_rng.integers(2))]
        noise_rng = np.random.default_rng([seed, 3, i, NOISE_MODES.index(mode)])
        sched = schedule_ms(noise_rng, interval_s, span_ms)
        parts.append(_noisy_fixes(noise_rng, mode, sigma_open_m, tl, sched))
        paths.append((np.asarray(tl.t), np.asarray(tl.x), np.asarray(tl.y), np.asarray(tl.indoor)))
        fix_ts.append(START_MS + sched)
        modes.append(mode)

    frame = transverse_mercator(CENTRE_LON_DEG)
    x0, y0 = (float(v[0]) for v in frame.project([CENTRE_LON_DEG], [CENTRE_LAT_DEG]))
    true_x, true_y, x, y, source, acc, reflected = (np.concatenate([p[k] for p in parts]) for k in range(7))
    lon, lat = frame.unproject(x + x0, y + y0)
    counts = np.array([t.size for t in fix_ts])
    fixes = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(
                pa.array(np.repeat(np.arange(n_subjects, dtype=np.int32), counts)), pa.array(sids)
            ).cast(pa.string()),
            pa.array(np.concatenate(fix_ts), pa.int64()).cast(TS_TYPE),
            pa.array(lon, pa.float64()),
            pa.array(lat, pa.float64()),
            pa.DictionaryArray.from_arrays(pa.array(source.astype(np.int32)), pa.array(["gnss", "cell"])).cast(
                pa.string()
            ),
            pa.array(acc, pa.float32()),
        ],
        schema=FIX_SCHEMA,
    )
    start_xy = np.array([[p[1][0], p[2][0]] for p in paths])
    office = (np.floor((np.arctan2(start_xy[:, 1], start_xy[:, 0]) + np.pi) / (2 * np.pi) * N_OFFICES)).astype(int)
    subjects = pa.table(
        {
            "subject_id": pa.array(sids, pa.string()),
            "level": pa.array(np.where(strict, "strict", "ordinary").tolist(), pa.string()),
            "office_id": pa.array([f"office-{min(k, N_OFFICES - 1) + 1:02d}" for k in office], pa.string()),
        }
    )
    geoms_m = {PERMITTED_ID: site.permitted}
    geoms_m.update({forbidden_id(z): g for z, g in enumerate(site.zone_poly)})
    geoms_m = {k: shapely.transform(g, lambda c: c + (x0, y0)) for k, g in geoms_m.items()}
    return Scenario(
        name=name,
        fixes=fixes,
        true_x_m=true_x + x0,
        true_y_m=true_y + y0,
        true_multipath=reflected,
        frame=frame,
        zones=_zones_geojson(frame, geoms_m),
        zone_geometry_m=geoms_m,
        subjects=subjects,
        truth=_truth(site, sids, paths, fix_ts, span_s),
        kind_of_subject=dict(zip(sids, kinds)),
        noise_of_subject=dict(zip(sids, modes)),
        start_ms=int(START_MS),
        end_ms=int(START_MS + span_ms),
        interval_s=float(interval_s),
    )
