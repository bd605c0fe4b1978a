"""Small simulated scenarios with ground truth, for the accuracy and alert-quality benchmark.

Where :mod:`geomon.simulate` writes a whole county, :func:`scenario` builds one
controlled situation in memory -- every subject in one noise regime, or the
``"mixed"`` blend with true breaches -- and returns, next to the fixes, the
true position at every fix, so that raw and fused horizontal errors, NEES of
the reported covariance, false breach alerts per subject-day and detection
delays can all be measured against the truth.

The model, in a Transverse Mercator frame (:func:`geomon.crs.transverse_mercator`)
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
  routine places keep :data:`~geomon.sim_geography.PLACE_MARGIN_M` and routine
  legs :data:`~geomon.sim_geography.PATH_MARGIN_M` from them.
- **Subject kinds** (:data:`KINDS`). ``augmented``, ``open_sky``, ``urban`` and
  ``indoor`` subjects live a daily routine in the routine disc: home at night
  (until 06:30-08:30 local time, from 20:30-22:30), and in the day straight
  trips home - place - home with stays of 15 min-3 h at the place and
  10-90 min at home; legs under :data:`~geomon.sim_routines.WALK_MAX_M` are
  walked at 1-1.5 m/s, longer ones driven at 10-20 m/s. ``near_boundary``
  subjects live 6-19 m inside the permitted edge (so 5-20 m with margin) and
  never leave home, only moving a few metres between rooms; ``along_boundary``
  subjects walk along the edge offset 7-18 m inwards, in bouts of 10-90 min
  in either direction with stops of 5-60 min in between; ``parked`` subjects
  do not move at all.
- **Noise** (per axis; ``accuracy_m`` is the honest 1-sigma of the mode).
  ``augmented`` 0.3 m, ``open_sky`` 2.5 m (or ``sigma_m``), ``urban`` 6 m plus
  multipath: a two-state Markov chain over the fixes (reused from
  :mod:`geomon.sim_noise`) is in the reflected state on 5-10 % of them, in
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
  +/-10 % (:func:`geomon.sim_noise.schedule_ms`), from local midnight
  (:data:`START_MS`, 00:00 China Standard Time on Monday 3 November 2025).

Ground truth is computed from the true paths by :func:`geomon.sim_truth.truth_table`
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

from geomon.crs import LocalFrame, transverse_mercator
from geomon.schema import FIX_SCHEMA, TS_TYPE
from geomon.sim_geography import PATH_MARGIN_M, PLACE_MARGIN_M, forbidden_id
from geomon.sim_noise import (
    CELL_SIGMA_M,
    INDOOR_P_GNSS,
    SIGMA_AUGMENTED_M,
    SIGMA_OPEN_M,
    SIGMA_URBAN_M,
    _multipath,
    schedule_ms,
)
from geomon.sim_routines import DAY_S, DRIVE_MPS, WALK_MAX_M, WALK_MPS, Timeline
from geomon.sim_truth import TRUTH_SCHEMA, truth_table

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
#: Diameter of the disc with the permitted area's area, metres.
PERMITTED_DIAMETER_M = 10_000.0
#: The routine disc keeps this far inside the nearest point of the permitted edge, metres.
ROUTINE_MARGIN_M = 1_000.0
N_FORBIDDEN = 5
FORBIDDEN_R_M = (50.0, 200.0)
#: Distance inside the permitted edge of near-boundary homes and along-boundary walks, metres.
NEAR_BOUNDARY_M = (6.0, 19.0)
ALONG_BOUNDARY_M = (7.0, 18.0)
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
    frame : geomon.crs.LocalFrame
        The metric frame the scenario was made in; ``lon``/``lat`` are
        ``frame.unproject`` of the noisy positions. Project with it to compare.
    zones : dict
        GeoJSON FeatureCollection (RFC 7946) for :func:`geomon.load.load_zones`:
        ``county`` (kind ``permitted``) and ``forbidden-NNNN`` (kind ``forbidden``).
    zone_geometry_m : dict of str to shapely.Polygon
        The same zones in ``frame`` metres, by zone id.
    subjects : pyarrow.Table
        ``subject_id``, ``level`` (strict | ordinary), ``office_id``.
    truth : pyarrow.Table
        :data:`geomon.sim_truth.TRUTH_SCHEMA`: every interval in which a true
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


# --------------------------------------------------------------------------- geography


@dataclass
class _Site:
    permitted: shapely.Polygon  # local metres, counter-clockwise
    routine_r_m: float
    zone_xy: np.ndarray
    zone_r_m: np.ndarray
    zone_poly: np.ndarray

    def zone_gap_m(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distance from segment ``ab`` to each forbidden circle (a lower bound for its 32-gon), metres."""
        d = b - a
        dd = max(float(d @ d), 1e-12)
        f = np.clip(((self.zone_xy - a) @ d) / dd, 0.0, 1.0)
        return np.hypot(*(a + f[:, None] * d - self.zone_xy).T) - self.zone_r_m

    def in_disc(self, p: np.ndarray) -> bool:
        return math.hypot(*p) <= self.routine_r_m

    def clear_place(self, p: np.ndarray) -> bool:
        return self.in_disc(p) and bool((self.zone_gap_m(p, p) >= PLACE_MARGIN_M).all())

    def clear_leg(self, a: np.ndarray, b: np.ndarray, skip: int = -1) -> bool:
        gap = self.zone_gap_m(a, b)
        if skip >= 0:
            gap[skip] = np.inf
        return bool((gap >= PATH_MARGIN_M).all())

    def edge_radius_m(self, u: np.ndarray) -> float:
        ray = shapely.LineString([(0.0, 0.0), 4.0 * PERMITTED_DIAMETER_M * u])
        return float(np.hypot(*shapely.get_coordinates(shapely.intersection(ray, self.permitted.exterior))[0]))


def _site(rng: np.random.Generator) -> _Site:
    n = 1_024
    theta = 2.0 * np.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n
    k = np.arange(2, 9)
    amp = rng.normal(0.0, 1.0, k.size) * 0.15 / k
    phase = rng.uniform(0.0, 2.0 * np.pi, k.size)
    log_r = np.clip((amp[:, None] * np.cos(k[:, None] * theta + phase[:, None])).sum(0), -0.35, 0.3)
    xy = np.exp(log_r)[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
    scale = math.sqrt(math.pi * (PERMITTED_DIAMETER_M / 2) ** 2 / shapely.Polygon(xy).area)
    permitted = shapely.Polygon(xy * scale)  # increasing angle: counter-clockwise and star-shaped
    routine_r_m = float(np.hypot(*(xy * scale).T).min()) - ROUTINE_MARGIN_M
    zone_xy, zone_r_m = np.zeros((N_FORBIDDEN, 2)), rng.uniform(*FORBIDDEN_R_M, N_FORBIDDEN)
    for i in range(N_FORBIDDEN):
        for _ in range(1_000):
            rho = math.sqrt(rng.uniform(500.0**2, (routine_r_m - zone_r_m[i] - 200.0) ** 2))
            a = rng.uniform(0.0, 2.0 * np.pi)
            c = rho * np.array([math.cos(a), math.sin(a)])
            gap = np.hypot(*(zone_xy[:i] - c).T) - zone_r_m[:i] - zone_r_m[i]
            if (gap >= 2.0 * PLACE_MARGIN_M + 300.0).all():
                zone_xy[i] = c
                break
        else:
            raise RuntimeError("no room for the forbidden zones")
    polys = np.array([shapely.Point(c).buffer(r, quad_segs=8) for c, r in zip(zone_xy, zone_r_m)], dtype=object)
    return _Site(permitted, routine_r_m, zone_xy, zone_r_m, polys)


def _random_place(rng, site: _Site, near: np.ndarray | None = None) -> np.ndarray:
    for _ in range(1_000):
        if near is None:
            r, a = site.routine_r_m * math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * np.pi)
            p = r * np.array([math.cos(a), math.sin(a)])
        else:
            r, a = math.exp(rng.uniform(math.log(150.0), math.log(5_000.0))), rng.uniform(0.0, 2.0 * np.pi)
            p = near + r * np.array([math.cos(a), math.sin(a)])
        if site.clear_place(p) and (near is None or site.clear_leg(near, p)):
            return p
    raise RuntimeError("no room for a place")


def _near_edge_point(rng, site: _Site, d_m: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A point inside the permitted area at a distance in ``d_m`` from its edge, and its inward normal."""
    ring = site.permitted.exterior
    for _ in range(1_000):
        s = rng.uniform(0.0, ring.length)
        b0, b1 = (shapely.get_coordinates(ring.interpolate(v))[0] for v in (s - 1.0, s + 1.0))
        t = (b1 - b0) / math.hypot(*(b1 - b0))
        normal = np.array([-t[1], t[0]])  # left of a counter-clockwise ring is inside
        p = 0.5 * (b0 + b1) + rng.uniform(*d_m) * normal
        if d_m[0] <= ring.distance(shapely.Point(p)) <= d_m[1] and site.permitted.contains(shapely.Point(p)):
            return p, normal
    raise RuntimeError("no room near the permitted edge")


# --------------------------------------------------------------------------- movement


def _speed(rng, length_m: float) -> float:
    return float(rng.uniform(*WALK_MPS) if length_m < WALK_MAX_M else rng.uniform(*DRIVE_MPS))


def _go(rng, tl: Timeline, path: np.ndarray) -> None:
    tl.move(path, _speed(rng, float(np.hypot(*np.diff(path, axis=0).T).sum())))


def _exit_trip(rng, site: _Site, tl: Timeline, outside_s: float) -> bool:
    """Go to a point just inside the edge, walk out along a ray from the centre, stay, walk back."""
    here = np.array([tl.x[-1], tl.y[-1]])
    for _ in range(50):
        a = rng.uniform(0.0, 2.0 * np.pi)
        u = np.array([math.cos(a), math.sin(a)])
        rho = site.edge_radius_m(u)
        via, stage = 0.95 * site.routine_r_m * u, (rho - rng.uniform(200.0, 400.0)) * u
        if site.clear_leg(here, via) and site.clear_leg(via, stage):
            break
    else:
        return False
    v = float(rng.uniform(*WALK_MPS))
    beyond_m = min(0.3 * outside_s * v, 150.0)
    out = (rho + beyond_m) * u
    approach = np.vstack([here, via, stage])
    _go(rng, tl, approach)
    tl.move(np.vstack([stage, out]), v)
    tl.stay(tl.now + outside_s - 2.0 * beyond_m / v, indoor=False)
    tl.move(np.vstack([out, stage]), v)
    _go(rng, tl, approach[::-1])
    return True


def _entry_trip(rng, site: _Site, tl: Timeline, inside_s: float) -> bool:
    """Go to a point near a forbidden circle, walk in towards its centre, stay, walk out."""
    here = np.array([tl.x[-1], tl.y[-1]])
    for _ in range(50):
        z = int(rng.integers(site.zone_r_m.size))
        c, r = site.zone_xy[z], site.zone_r_m[z]
        a = rng.uniform(0.0, 2.0 * np.pi)
        u = np.array([math.cos(a), math.sin(a)])
        stage = c + (r + rng.uniform(PLACE_MARGIN_M + 10.0, 300.0)) * u
        gap = site.zone_gap_m(stage, stage)
        gap[z] = np.inf
        clear = site.in_disc(stage) and bool((gap >= PLACE_MARGIN_M).all())
        if clear and site.clear_leg(here, stage) and site.clear_leg(stage, c, skip=z):
            break
    else:
        return False
    v = float(rng.uniform(*WALK_MPS))
    depth_m = min(0.3 * inside_s * v, r)
    target = c + (r - depth_m) * u
    _go(rng, tl, np.vstack([here, stage]))
    tl.move(np.vstack([stage, target]), v)
    tl.stay(tl.now + inside_s - 2.0 * depth_m / v, indoor=False)
    tl.move(np.vstack([target, stage]), v)
    _go(rng, tl, np.vstack([stage, here]))
    return True


class _Routine:
    """Stays that let pending breaches interrupt them; a breach that cannot finish in time is dropped."""

    def __init__(self, rng, site, tl, span_s, breaches):
        self.rng, self.site, self.tl, self.span_s = rng, site, tl, span_s
        self.pending = sorted(breaches)

    def stay(self, until_s: float, indoor: bool = True) -> None:
        tl = self.tl
        while self.pending and self.pending[0][0] < until_s:
            t_s, kind, violating_s = self.pending.pop(0)
            tl.stay(max(t_s, tl.now), indoor)
            mark = tl.mark()
            trip = _exit_trip if kind == "permitted_exit" else _entry_trip
            if not trip(self.rng, self.site, tl, violating_s) or tl.now > self.span_s - 600.0:
                tl.rollback(mark)
        tl.stay(max(until_s, tl.now), indoor)


def _routine_path(rng, site: _Site, span_s: float, breaches) -> Timeline:
    home = _random_place(rng, site)
    places = [_random_place(rng, site, near=home) for _ in range(int(rng.integers(3, 6)))]
    tl = Timeline(0.0, home, 0)
    day = _Routine(rng, site, tl, span_s, breaches)
    for k in range(int(math.ceil(span_s / DAY_S))):
        d0_s = k * DAY_S
        day.stay(d0_s + rng.uniform(6.5, 8.5) * 3_600.0)
        bed_s = d0_s + rng.uniform(20.5, 22.5) * 3_600.0
        while tl.now < bed_s - 1_800.0:
            p = places[int(rng.integers(len(places)))]
            _go(rng, tl, np.vstack([home, p]))
            day.stay(tl.now + rng.uniform(900.0, 10_800.0))
            _go(rng, tl, np.vstack([p, home]))
            day.stay(tl.now + rng.uniform(600.0, 5_400.0))
        day.stay(d0_s + DAY_S)
    tl.stay(max(span_s, tl.now) + 3_600.0, True)
    return tl


def _near_boundary_path(rng, site: _Site, span_s: float) -> Timeline:
    """At home 6-19 m inside the edge all the time, moving a few metres between rooms."""
    home, normal = _near_edge_point(rng, site, NEAR_BOUNDARY_M)
    tangent = np.array([normal[1], -normal[0]])
    ring = site.permitted.exterior
    rooms = [home]
    while len(rooms) < 5:
        p = home + rng.uniform(-3.0, 3.0) * normal + rng.uniform(-6.0, 6.0) * tangent
        if NEAR_BOUNDARY_M[0] <= ring.distance(shapely.Point(p)) <= NEAR_BOUNDARY_M[1]:
            rooms.append(p)
    tl = Timeline(0.0, home, 0)
    here = home
    while tl.now < span_s:
        tl.stay(tl.now + rng.uniform(300.0, 7_200.0), True)
        nxt = rooms[int(rng.integers(len(rooms)))]
        tl.move(np.vstack([here, nxt]), float(rng.uniform(*WALK_MPS)))
        here = nxt
    tl.stay(tl.now + 3_600.0, True)
    return tl


def _ring_path(ring_xy: np.ndarray, cum_m: np.ndarray, s0_m: float, s1_m: float) -> np.ndarray:
    """The polyline along a closed ring from arc length ``s0_m`` to ``s1_m`` (any sign, any number of laps)."""
    length_m = cum_m[-1]
    lo, hi = min(s0_m, s1_m), max(s0_m, s1_m)
    laps = np.arange(math.floor(lo / length_m), math.floor(hi / length_m) + 1)
    knots = (cum_m[None, :-1] + length_m * laps[:, None]).ravel()
    knots = knots[(knots > lo) & (knots < hi)]
    s = np.mod(np.concatenate([[s0_m], knots if s1_m > s0_m else knots[::-1], [s1_m]]), length_m)
    return np.column_stack([np.interp(s, cum_m, ring_xy[:, 0]), np.interp(s, cum_m, ring_xy[:, 1])])


def _along_boundary_path(rng, site: _Site, span_s: float) -> Timeline:
    """Bouts of walking along the edge offset 7-18 m inwards, with stops on it."""
    inner = site.permitted.buffer(-rng.uniform(*ALONG_BOUNDARY_M))
    if inner.geom_type != "Polygon":
        inner = max(shapely.get_parts(inner), key=lambda g: g.area)
    ring_xy = shapely.get_coordinates(inner.exterior)
    cum_m = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(ring_xy, axis=0).T))])
    s_m = rng.uniform(0.0, cum_m[-1])
    tl = Timeline(0.0, _ring_path(ring_xy, cum_m, s_m, s_m)[0], 0)
    while tl.now < span_s:
        tl.stay(tl.now + rng.uniform(300.0, 3_600.0), False)
        v = float(rng.uniform(*WALK_MPS))
        s1_m = s_m + rng.choice([-1.0, 1.0]) * v * rng.uniform(600.0, 5_400.0)
        tl.move(_ring_path(ring_xy, cum_m, s_m, s1_m), v)
        s_m = s1_m
    tl.stay(tl.now + 3_600.0, False)
    return tl


def _parked_path(rng, site: _Site, span_s: float) -> Timeline:
    tl = Timeline(0.0, _random_place(rng, site), 0)
    tl.stay(span_s + 3_600.0, False)
    return tl


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
    def to_lonlat(xy):
        return np.column_stack(frame.unproject(xy[:, 0], xy[:, 1]))

    features = []
    for zone_id, g in geoms_m.items():
        g = shapely.orient_polygons(shapely.transform(g, to_lonlat), exterior_cw=False)
        kind = "permitted" if zone_id == PERMITTED_ID else "forbidden"
        props = {"zone_id": zone_id, "kind": kind, "subject_ids": None, "office_id": None}
        if kind == "forbidden":
            props["category"] = "place_of_concern"
        coords = [shapely.get_coordinates(r).tolist() for r in (g.exterior, *g.interiors)]
        features.append({"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": coords}})
    return {"type": "FeatureCollection", "features": features}


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
    >>> from geomon.sim_scenarios import scenario
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
