"""A deterministic simulator of a supervised county, with exact ground truth.

:func:`simulate` writes what a supervision centre would receive -- position
fixes, zones and the subject register -- plus the truth a detector is scored
against: every injected violation with the exact times the true path crossed
the zone boundary. Everything follows from one seed.

The model, in a local Transverse Mercator frame centred on the county
(:func:`geomon.crs.transverse_mercator`), in metres:

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
  :data:`PLACE_MARGIN_M` from every forbidden zone and :data:`COUNTY_MARGIN_M`
  inside the county; routine legs (straight, meandering or detouring
  polylines) keep :data:`PATH_MARGIN_M` from every forbidden zone and
  :data:`COUNTY_MARGIN_M` inside the county. Routine movement therefore never
  violates anything, and ``truth.parquet`` lists the injected violations and
  nothing else.
- **Days.** Local time is China Standard Time (UTC+8). Employed subjects go to
  work on weekdays (sometimes out for lunch), run errands after work and in
  the evening; others run one to three errands a day. Legs under
  :data:`WALK_MAX_M` are walked at 1-1.5 m/s, longer ones driven at 10-20 m/s.
- **Violations.** About :data:`EXIT_FRACTION` of subjects drive out of the
  county along a ray from its centre, 2-8 km beyond the edge, stay, and come
  back; about :data:`ENTRY_FRACTION` walk into a forbidden place that applies
  to them (often their victim's home), dwell 3-20 minutes and walk out; about
  :data:`CROSSING_FRACTION` drive straight through a small forbidden zone
  timed to fall between two fixes (``crossing_only``).
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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geomon.crs import transverse_mercator
from geomon.schema import FIX_SCHEMA, TS_TYPE

__all__ = ["TRUTH_SCHEMA", "SimulationResult", "simulate"]

#: Diameter of the disc with the county's area, metres.
COUNTY_DIAMETER_M = 50_000.0
#: Number of supervising offices, hence of jurisdictions.
N_OFFICES = 14
#: Forbidden places that apply to every subject.
N_BARS = 120
N_SCHOOLS = 60
#: Routine positions stay this far inside the county outline, metres.
COUNTY_MARGIN_M = 1_000.0
#: Routine legs stay this far from every forbidden zone, metres.
PATH_MARGIN_M = 100.0
#: Places where subjects stop stay this far from every forbidden zone, metres.
PLACE_MARGIN_M = 150.0
#: Offset of local (China Standard) time from UTC, seconds.
LOCAL_UTC_OFFSET_S = 8 * 3600
#: Shares of subjects given each kind of violation (each subject at most one).
EXIT_FRACTION = 0.07
ENTRY_FRACTION = 0.08
CROSSING_FRACTION = 0.02
#: Legs shorter than this are walked, longer ones driven, metres.
WALK_MAX_M = 1_200.0
WALK_MPS = (1.0, 1.5)
DRIVE_MPS = (10.0, 20.0)
#: Reported 1-sigma (per axis) of satellite fixes by mode, metres.
SIGMA_AUGMENTED_M = 0.3
SIGMA_OPEN_M = 2.5
SIGMA_URBAN_M = 6.0
#: Share of urban fixes carrying a multipath offset, drawn per device.
MULTIPATH_FRACTION = (0.05, 0.10)
MULTIPATH_OFFSET_M = (15.0, 60.0)
MULTIPATH_MEAN_RUN_FIXES = 4.0
#: Range of cell-fix 1-sigma (per axis), drawn per stay, metres.
CELL_SIGMA_M = (100.0, 800.0)
#: Indoor fixes: share lost, share that are (urban-quality) satellite fixes; the rest are cell fixes.
INDOOR_P_LOST = 0.45
INDOOR_P_GNSS = 0.10

#: Ground truth: one row per violation, times exact to the millisecond.
TRUTH_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=False),
        pa.field("true_start", TS_TYPE, nullable=False),
        pa.field("true_end", TS_TYPE, nullable=False),
        pa.field("crossing_only", pa.bool_(), nullable=False),
    ]
)

_HOME = 0  # index of the home among a subject's places
_DAY_S = 86_400.0
_CELL, _GNSS = 1, 0


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


# --------------------------------------------------------------------------- geography


def _county(rng: np.random.Generator) -> shapely.Polygon:
    """The county outline, star-shaped about the origin, metres."""
    n = int(rng.integers(3_500, 5_001))
    theta = 2.0 * np.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n

    def harmonics(k, amplitude):
        phase = rng.uniform(0.0, 2 * np.pi, k.size)
        return (amplitude[:, None] * np.cos(k[:, None] * theta + phase[:, None])).sum(0)

    k = np.arange(2, 11)
    log_r = harmonics(k, rng.normal(0.0, 1.0, k.size) * 0.2 / k**1.1)
    k = np.arange(24, 600)
    rough = harmonics(k, rng.normal(0.0, 1.0, k.size) / k)
    r = np.exp(np.clip(log_r, -0.6, 0.5) + rough * (0.003 / rough.std()))
    xy = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    scale = math.sqrt(math.pi * (COUNTY_DIAMETER_M / 2) ** 2 / shapely.Polygon(xy).area)
    return shapely.Polygon(xy * scale)


def _towns_and_cells(rng: np.random.Generator, county: shapely.Polygon):
    """Town centres (seat first), their radii, and their Voronoi cells clipped to the county."""
    core = county.buffer(-2_500.0)
    shapely.prepare(core)
    minx, miny, maxx, maxy = county.bounds
    for attempt in range(200):
        separation_m = 8_000.0 * 0.97**attempt
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(4_000, 2))
        cand = cand[shapely.contains_xy(core, cand[:, 0], cand[:, 1])]
        towns: list[np.ndarray] = []
        for c in cand:
            if all(math.hypot(*(c - t)) >= separation_m for t in towns):
                towns.append(c)
                if len(towns) == N_OFFICES:
                    break
        if len(towns) < N_OFFICES:
            continue
        xy = np.array(towns)
        xy = xy[np.argsort(np.hypot(xy[:, 0], xy[:, 1]), kind="stable")]
        extent = county.envelope.buffer(10_000.0)
        cells = shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=extent, ordered=True)
        cells = shapely.intersection(shapely.get_parts(cells), county)
        # A cell clipped by a wiggly edge can fall apart; draw the towns again then.
        simple = shapely.get_type_id(cells) == 3
        if simple.all() and shapely.is_valid(cells).all() and shapely.contains_xy(cells, xy[:, 0], xy[:, 1]).all():
            radius_m = np.concatenate([[3_000.0], rng.uniform(800.0, 1_800.0, N_OFFICES - 1)])
            return xy, radius_m, cells
    raise RuntimeError("could not split the county into simple jurisdictions")


def _mixture(rng, n, towns_xy, town_r_m, p_town, bounds) -> np.ndarray:
    """Points drawn around towns (Gaussian, weight by town area) or uniformly over ``bounds``."""
    w = town_r_m**2 / (town_r_m**2).sum()
    k = rng.choice(len(w), size=n, p=w)
    near = towns_xy[k] + rng.normal(size=(n, 2)) * (0.7 * town_r_m[k])[:, None]
    far = rng.uniform(bounds[:2], bounds[2:], size=(n, 2))
    return np.where((rng.random(n) < p_town)[:, None], near, far)


def _annulus(rng, n, centre, r_min_m, r_max_m) -> np.ndarray:
    r = np.sqrt(rng.uniform(r_min_m**2, r_max_m**2, n))
    a = rng.uniform(0.0, 2 * np.pi, n)
    return centre + np.column_stack([r * np.cos(a), r * np.sin(a)])


@dataclass
class _Geography:
    """The county in local metres around its centre, and its forbidden zones."""

    county: shapely.Polygon
    inner: shapely.Geometry  # the county shrunk by COUNTY_MARGIN_M
    towns_xy: np.ndarray
    town_r_m: np.ndarray
    cells: np.ndarray
    zone_xy: np.ndarray  # forbidden zone centres
    zone_r_m: np.ndarray  # circumradius
    zone_inner_r_m: np.ndarray  # radius of a disc about the centre inside the zone
    zone_poly: np.ndarray
    zone_category: np.ndarray
    zone_owner: np.ndarray  # subject index, -1 for zones applying to all
    tree: shapely.STRtree = field(init=False)  # zones grown by PATH_MARGIN_M

    def __post_init__(self):
        shapely.prepare(self.inner)
        self.tree = shapely.STRtree(shapely.buffer(self.zone_poly, PATH_MARGIN_M, quad_segs=4))

    def clear_points(self, xy: np.ndarray, margin_m: float = PLACE_MARGIN_M) -> np.ndarray:
        """Which points are inside the inner county and ``margin_m`` from every forbidden zone."""
        ok = shapely.contains_xy(self.inner, xy[:, 0], xy[:, 1])
        d = np.hypot(xy[:, None, 0] - self.zone_xy[None, :, 0], xy[:, None, 1] - self.zone_xy[None, :, 1])
        return ok & ((d - self.zone_r_m).min(axis=1) >= margin_m)

    def clear_lines(self, lines: np.ndarray) -> np.ndarray:
        """Which lines stay inside the inner county and ``PATH_MARGIN_M`` from every forbidden zone."""
        ok = shapely.contains(self.inner, lines)
        ok[self.tree.query(lines, predicate="intersects")[0]] = False
        return ok

    def zones_hit(self, line: shapely.Geometry) -> set[int]:
        return set(self.tree.query(line, predicate="intersects").tolist())

    def urban(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = np.hypot(x[:, None] - self.towns_xy[None, :, 0], y[:, None] - self.towns_xy[None, :, 1])
        return (d < self.town_r_m).any(axis=1)


def _forbidden_zones(rng, county, towns_xy, town_r_m, n_victim):
    area = county.buffer(-(COUNTY_MARGIN_M + 500.0))
    shapely.prepare(area)
    categories = np.array(["bar"] * N_BARS + ["school"] * N_SCHOOLS + ["victim_home"] * n_victim, dtype=object)
    p_town = {"bar": 0.9, "school": 0.5, "victim_home": 0.6}
    n = len(categories)
    xy, r_m, inner_r_m, polys = np.zeros((n, 2)), np.zeros(n), np.zeros(n), []
    for i, cat in enumerate(categories):
        if cat == "school":
            half = rng.uniform(80.0, 200.0) * np.array([1.0, rng.uniform(0.5, 1.0)])
            r_m[i], inner_r_m[i] = math.hypot(*half), half[1]
        else:
            r_m[i] = rng.uniform(30.0, 80.0) if cat == "bar" else float(rng.choice([50.0, 100.0, 150.0, 200.0]))
            inner_r_m[i] = r_m[i] * math.cos(math.pi / 32)
        for _ in range(200):
            cand = _mixture(rng, 32, towns_xy, town_r_m, p_town[cat], county.bounds)
            ok = shapely.contains_xy(area, cand[:, 0], cand[:, 1])
            if i:
                d = np.hypot(cand[:, None, 0] - xy[None, :i, 0], cand[:, None, 1] - xy[None, :i, 1])
                ok &= (d - r_m[:i] - r_m[i]).min(axis=1) >= 2 * PLACE_MARGIN_M
            if ok.any():
                xy[i] = cand[np.argmax(ok)]
                break
        else:
            raise RuntimeError("no room left for forbidden zones")
        if cat == "school":
            a = rng.uniform(0.0, np.pi)
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
            polys.append(shapely.Polygon(xy[i] + corners @ rot.T))
        else:
            polys.append(shapely.Point(xy[i]).buffer(r_m[i], quad_segs=8))
    return xy, r_m, inner_r_m, np.array(polys, dtype=object), categories


# --------------------------------------------------------------------------- routes and timelines


def _route(rng, geo: _Geography, p: np.ndarray, q: np.ndarray) -> np.ndarray | None:
    """A polyline from ``p`` to ``q`` that keeps clear of forbidden zones and the county edge, or None."""
    d = q - p
    length = math.hypot(*d)
    if length < 1e-6:
        return None
    perp = np.array([-d[1], d[0]]) / length
    cands = []
    if length > 2_000.0:  # roads meander
        for _ in range(3):
            f = np.sort(rng.uniform(0.15, 0.85, 2))
            off = rng.normal(0.0, 0.04 * length, 2)
            cands.append(np.vstack([p, p + f[0] * d + off[0] * perp, p + f[1] * d + off[1] * perp, q]))
    cands.append(np.vstack([p, q]))
    for s in (0.1, 0.2, 0.35, 0.5, 0.75):
        for sign in (1.0, -1.0):
            mid = p + rng.uniform(0.3, 0.7) * d + sign * s * length * perp
            cands.append(np.vstack([p, mid, q]))
    cands += [np.vstack([p, (q[0], p[1]), q]), np.vstack([p, (p[0], q[1]), q])]
    ok = geo.clear_lines(np.array([shapely.LineString(c) for c in cands], dtype=object))
    return cands[int(np.argmax(ok))] if ok.any() else None


def _length_m(path: np.ndarray) -> float:
    return float(np.hypot(*np.diff(path, axis=0).T).sum())


class _Timeline:
    """A piecewise-linear true path: knots ``(t_s, x_m, y_m)``; each piece is a stay or a move."""

    def __init__(self, t_s: float, xy: np.ndarray, place: int):
        self.t, self.x, self.y = [t_s], [float(xy[0])], [float(xy[1])]
        self.indoor: list[bool] = []
        self.place = place

    @property
    def now(self) -> float:
        return self.t[-1]

    def move(self, path: np.ndarray, speed_mps: float) -> None:
        for x, y in path[1:]:
            d = math.hypot(x - self.x[-1], y - self.y[-1])
            if d > 1e-3:
                self.t.append(self.t[-1] + d / speed_mps)
                self.x.append(float(x))
                self.y.append(float(y))
                self.indoor.append(False)

    def stay(self, until_s: float, indoor: bool) -> None:
        if until_s > self.t[-1] + 1e-6:
            self.t.append(until_s)
            self.x.append(self.x[-1])
            self.y.append(self.y[-1])
            self.indoor.append(indoor)

    def mark(self):
        return len(self.t), self.place

    def rollback(self, mark) -> None:
        n, self.place = mark
        del self.t[n:], self.x[n:], self.y[n:], self.indoor[n - 1 :]


@dataclass
class _Subject:
    index: int
    sid: str
    level: str
    victim_zone: int
    home_r_m: float
    interval_s: float
    augmented: bool
    leave_h: float
    end_h: float
    work_indoor: bool
    places: list = field(default_factory=list)
    routes: dict = field(default_factory=dict)
    work: int | None = None
    lunch: int | None = None
    errands: list = field(default_factory=list)

    def add_place(self, rng, geo, xy) -> int | None:
        """Add a place reachable from home; return its index, or None if no route exists."""
        if self.places:
            route = _route(rng, geo, self.places[_HOME], xy)
            if route is None:
                return None
            self.routes[(_HOME, len(self.places))] = route
        self.places.append(np.asarray(xy, dtype=np.float64))
        return len(self.places) - 1

    def path(self, rng, geo, a: int, b: int) -> np.ndarray:
        if (a, b) not in self.routes:
            if (b, a) in self.routes:
                self.routes[(a, b)] = self.routes[(b, a)][::-1]
            else:
                route = _route(rng, geo, self.places[a], self.places[b])
                if route is None:  # every place has a route from home
                    route = np.vstack([self.path(rng, geo, a, _HOME), self.path(rng, geo, _HOME, b)[1:]])
                self.routes[(a, b)] = route
        return self.routes[(a, b)]


def _go(rng, geo, subj: _Subject, tl: _Timeline, dest: int) -> None:
    if dest != tl.place:
        path = subj.path(rng, geo, tl.place, dest)
        tl.move(path, _speed(rng, _length_m(path)))
        tl.place = dest


def _speed(rng, length_m: float) -> float:
    return float(rng.uniform(*WALK_MPS) if length_m < WALK_MAX_M else rng.uniform(*DRIVE_MPS))


# --------------------------------------------------------------------------- subjects


def _make_subject(rng, geo: _Geography, index: int, level: str, victim_zone: int) -> _Subject:
    sid = f"S{index + 1:04d}"
    strict = level == "strict"
    subj = _Subject(
        index=index,
        sid=sid,
        level=level,
        victim_zone=victim_zone,
        home_r_m=float(rng.uniform(25.0, 50.0)),
        interval_s=float(rng.uniform(15.0, 30.0) if strict else rng.uniform(30.0, 60.0)),
        augmented=bool(rng.random() < 0.25),
        leave_h=float(rng.uniform(6.8, 8.5)),
        end_h=float(rng.uniform(17.0, 18.5)),
        work_indoor=bool(rng.random() < 0.8),
    )
    home = None
    for _ in range(500):
        if victim_zone >= 0:  # offenders often live near their victims
            cand = _annulus(rng, 64, geo.zone_xy[victim_zone], 1_000.0, 5_000.0)
        else:
            cand = _mixture(rng, 64, geo.towns_xy, geo.town_r_m, 0.7, geo.county.bounds)
        ok = geo.clear_points(cand)
        if ok.any():
            home = cand[np.argmax(ok)]
            break
    if home is None:
        raise RuntimeError(f"no room for the home of {sid}")
    subj.add_place(rng, geo, home)

    def sample(cands_fn, tries=30):
        for _ in range(tries):
            cand = cands_fn()
            for c in cand[geo.clear_points(cand)][:3]:
                idx = subj.add_place(rng, geo, c)
                if idx is not None:
                    return idx
        return None

    if rng.random() < 0.75:
        subj.work = sample(lambda: _mixture(rng, 32, geo.towns_xy, geo.town_r_m, 0.8, geo.county.bounds))
    if subj.work is not None and rng.random() < 0.7:
        subj.lunch = sample(lambda: _annulus(rng, 32, subj.places[subj.work], 200.0, 700.0), tries=10)
    for _ in range(int(rng.integers(2, 5))):
        if rng.random() < 0.5:
            idx = sample(lambda: _annulus(rng, 32, home, 300.0, 3_000.0), tries=10)
        else:
            idx = sample(lambda: _mixture(rng, 32, geo.towns_xy, geo.town_r_m, 0.9, geo.county.bounds), tries=10)
        if idx is not None:
            subj.errands.append(idx)
    return subj


def _day_visits(rng, subj: _Subject, day0_s: float, weekday: int):
    """One local day as ``(place, stay until s, minimum stay s)``; the day ends at home."""

    def h(hours):
        return day0_s + hours * 3_600.0

    visits = []
    if subj.work is not None and weekday < 5:
        visits.append((_HOME, h(subj.leave_h + rng.normal(0.0, 0.2)), 0.0))
        if subj.lunch is not None and rng.random() < 0.4:
            visits.append((subj.work, h(rng.uniform(11.8, 12.2)), 300.0))
            visits.append((subj.lunch, 0.0, rng.uniform(1_500.0, 3_000.0)))
        visits.append((subj.work, h(subj.end_h + rng.normal(0.0, 0.2)), 300.0))
        if subj.errands and rng.random() < 0.4:
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(900.0, 3_600.0)))
        if subj.errands and rng.random() < 0.15:
            visits.append((_HOME, h(rng.uniform(19.5, 20.5)), 0.0))
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(1_800.0, 5_400.0)))
    elif subj.errands:
        for t_h in np.sort(rng.uniform(8.5, 19.5, int(rng.integers(1, 4)))):
            visits.append((_HOME, h(t_h), 0.0))
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(1_200.0, 7_200.0)))
    visits.append((_HOME, h(24.0), 0.0))
    return visits


# --------------------------------------------------------------------------- violations


def _near_zones(geo, subj, max_r_m=np.inf, k=8):
    """Indices of the ``k`` nearest forbidden zones that apply to the subject (and are small enough)."""
    ok = ((geo.zone_owner < 0) | (geo.zone_owner == subj.index)) & (geo.zone_r_m <= max_r_m)
    idx = np.flatnonzero(ok)
    d = np.hypot(*(geo.zone_xy[idx] - subj.places[_HOME]).T)
    return idx[np.argsort(d, kind="stable")[:k]]


def _exit_trip(rng, geo, subj, tl, sched_s, end_s) -> bool:
    """Drive out of the county along a ray from its centre, stay a while, and come back."""
    base = math.atan2(subj.places[_HOME][1], subj.places[_HOME][0])
    for _ in range(40):
        a = base + rng.normal(0.0, 0.6)
        u = np.array([math.cos(a), math.sin(a)])
        edge = shapely.intersection(shapely.LineString([(0.0, 0.0), 200_000.0 * u]), geo.county.exterior)
        rho = float(np.hypot(*shapely.get_coordinates(edge)[0]))
        inside = u * (rho - rng.uniform(1_500.0, 3_000.0))
        if not geo.clear_points(inside[None])[0] or geo.zones_hit(shapely.LineString([inside, u * rho])):
            continue
        o = subj.add_place(rng, geo, inside)
        if o is not None:
            break
    else:
        return False
    outside = u * (rho + rng.uniform(2_000.0, 8_000.0))
    back = tl.place
    speed = float(rng.uniform(*DRIVE_MPS))
    tl.move(np.vstack([subj.path(rng, geo, back, o), outside]), speed)
    ret = np.vstack([outside, subj.path(rng, geo, o, back)])
    latest = end_s - 600.0 - _length_m(ret) / speed
    dwell = min(rng.uniform(1_200.0, 5_400.0), latest - tl.now)
    if dwell < 300.0:
        return False
    tl.stay(tl.now + dwell, indoor=False)
    tl.move(ret, speed)
    return True


def _entry_trip(rng, geo, subj, tl, sched_s, end_s) -> bool:
    """Walk into a forbidden place that applies to the subject, dwell, and walk out."""
    if subj.victim_zone >= 0 and rng.random() < 0.7:
        zones = np.array([subj.victim_zone])
    else:
        zones = _near_zones(geo, subj)
    for _ in range(40):
        z = int(rng.choice(zones))
        c, r = geo.zone_xy[z], geo.zone_r_m[z]
        a = rng.uniform(0.0, 2 * np.pi)
        approach = c + (r + rng.uniform(PLACE_MARGIN_M + 10.0, 300.0)) * np.array([math.cos(a), math.sin(a)])
        inside = _annulus(rng, 1, c, 0.0, 0.4 * geo.zone_inner_r_m[z])[0]
        walk = shapely.LineString([approach, inside])
        clear = geo.clear_points(approach[None])[0] and shapely.contains(geo.inner, walk)
        if not clear or geo.zones_hit(walk) != {z}:
            continue
        p = subj.add_place(rng, geo, approach)
        if p is not None:
            break
    else:
        return False
    _go(rng, geo, subj, tl, p)
    tl.move(np.vstack([approach, inside]), float(rng.uniform(*WALK_MPS)))
    tl.stay(tl.now + rng.uniform(180.0, 1_200.0), indoor=False)
    tl.move(np.vstack([inside, approach]), float(rng.uniform(*WALK_MPS)))
    return True


def _crossing_trip(rng, geo, subj, tl, sched_s, end_s) -> bool:
    """Drive straight through a small forbidden zone, timed to fall between two fixes."""
    zones = _near_zones(geo, subj, max_r_m=60.0)
    if zones.size == 0:
        return False
    for _ in range(40):
        z = int(rng.choice(zones))
        c = geo.zone_xy[z]
        a = rng.uniform(0.0, 2 * np.pi)
        u = np.array([math.cos(a), math.sin(a)])
        ends = np.vstack([c - rng.uniform(400.0, 900.0) * u, c + rng.uniform(400.0, 900.0) * u])
        drive = shapely.LineString(ends)
        clear = geo.clear_points(ends).all() and shapely.contains(geo.inner, drive)
        if not clear or geo.zones_hit(drive) != {z}:
            continue
        s, e = subj.add_place(rng, geo, ends[0]), subj.add_place(rng, geo, ends[1])
        if s is not None and e is not None:
            break
    else:
        return False
    hits = shapely.get_coordinates(shapely.intersection(drive, geo.zone_poly[z].exterior))
    along = np.sort(np.hypot(*(hits - ends[0]).T))
    s_in, s_out = along[0], along[-1]
    speed = float(rng.uniform(15.0, 20.0))
    inside_s = (s_out - s_in) / speed
    _go(rng, geo, subj, tl, s)
    gap_ok = (sched_s[:-1] >= tl.now + 30.0 + s_in / speed) & (np.diff(sched_s) >= inside_s + 2.0)
    if not gap_ok.any():
        return False
    k = int(np.argmax(gap_ok))
    t_in = 0.5 * (sched_s[k] + sched_s[k + 1]) - 0.5 * inside_s
    tl.stay(t_in - s_in / speed, indoor=False)
    tl.move(ends, speed)
    tl.place = e
    return True


_TRIPS = {"permitted_exit": _exit_trip, "forbidden_entry": _entry_trip, "crossing": _crossing_trip}


def _plan(rng, geo, subj, day0_s, first_day, n_days, end_s, sched_s, trip, trip_s) -> tuple[_Timeline, bool]:
    """The subject's true path from local midnight before the start to past the end."""
    tl = _Timeline(day0_s, subj.places[_HOME], _HOME)
    done = False
    for k in range(n_days):
        for place, until_s, min_stay_s in _day_visits(rng, subj, day0_s + k * _DAY_S, (first_day + k + 3) % 7):
            _go(rng, geo, subj, tl, place)
            indoor = True if place == _HOME else subj.work_indoor if place == subj.work else bool(rng.random() < 0.5)
            stay_until = max(until_s, tl.now + min_stay_s)
            if trip is not None and not done and trip_s < stay_until:
                tl.stay(max(trip_s, tl.now), indoor)
                mark = tl.mark()
                done = _TRIPS[trip](rng, geo, subj, tl, sched_s, end_s)
                if done:
                    _go(rng, geo, subj, tl, place)
                if not done or tl.now > end_s - 600.0:
                    tl.rollback(mark)
                    done = False
                trip = None
                stay_until = max(stay_until, tl.now + min_stay_s)
            tl.stay(stay_until, indoor)
    tl.stay(max(end_s, tl.now) + 3_600.0, True)
    return tl, done


# --------------------------------------------------------------------------- fixes


def _schedule_ms(rng, interval_s: float, span_ms: int) -> np.ndarray:
    step_ms = interval_s * 1_000.0
    n = int(span_ms / (0.9 * step_ms)) + 3
    steps = np.maximum(np.rint(step_ms * rng.uniform(0.9, 1.1, n)).astype(np.int64), 1)
    t = int(rng.uniform(0.0, step_ms)) + np.concatenate([[0], np.cumsum(steps[:-1])])
    return t[t < span_ms]


def _multipath(rng, n: int):
    """Two-state Markov chain over fixes: on/off and, when on, a persistent offset per run (metres)."""
    fraction = rng.uniform(*MULTIPATH_FRACTION)
    p_off = 1.0 / MULTIPATH_MEAN_RUN_FIXES
    p_on = p_off * fraction / (1.0 - fraction)
    runs = np.zeros(0, dtype=np.int64)
    while runs.sum() < n:
        k = int(n * p_on) + 16
        pair = np.column_stack([rng.geometric(p_on, k), rng.geometric(p_off, k)]).ravel()
        runs = np.concatenate([runs, pair])
    label = np.repeat(np.arange(runs.size), runs)[:n]
    mag = rng.uniform(*MULTIPATH_OFFSET_M, runs.size // 2)
    ang = rng.uniform(0.0, 2 * np.pi, runs.size // 2)
    on = label % 2 == 1
    run = label // 2
    return on, np.where(on, mag[run] * np.cos(ang[run]), 0.0), np.where(on, mag[run] * np.sin(ang[run]), 0.0)


def _fixes(rng, geo, subj, tl_t, tl_x, tl_y, indoor, sched_ms, noise: bool):
    """Fixes of one subject: ``(ts_ms, x_m, y_m, source, accuracy_m)`` with lost fixes removed."""
    t = sched_ms / 1_000.0
    x, y = np.interp(t, tl_t, tl_x), np.interp(t, tl_t, tl_y)
    n = t.size
    if not noise:
        return sched_ms, x, y, np.full(n, _GNSS, np.int8), np.full(n, SIGMA_AUGMENTED_M, np.float32)
    piece = np.clip(np.searchsorted(tl_t, t, side="right") - 1, 0, indoor.size - 1)
    is_indoor = indoor[piece]
    urban = geo.urban(x, y)
    sigma = np.where(urban, SIGMA_URBAN_M, SIGMA_AUGMENTED_M if subj.augmented else SIGMA_OPEN_M)
    u = rng.random(n)
    lost = is_indoor & (u < INDOOR_P_LOST)
    cell = is_indoor & (u >= INDOOR_P_LOST + INDOOR_P_GNSS)
    sigma = np.where(is_indoor, SIGMA_URBAN_M, sigma)
    mp_on, mp_x, mp_y = _multipath(rng, n)
    mp = (sigma == SIGMA_URBAN_M) & mp_on
    ex = rng.normal(size=n) * sigma + np.where(mp, mp_x, 0.0)
    ey = rng.normal(size=n) * sigma + np.where(mp, mp_y, 0.0)
    # A cell fix is a per-stay offset (the serving tower) plus scatter; 0.8**2 + 0.6**2 = 1.
    cell_sigma = np.rint(rng.uniform(*CELL_SIGMA_M, indoor.size))
    off = rng.normal(size=(indoor.size, 2)) * (0.8 * cell_sigma)[:, None]
    jitter = rng.normal(size=(n, 2)) * (0.6 * cell_sigma[piece])[:, None]
    ex = np.where(cell, off[piece, 0] + jitter[:, 0], ex)
    ey = np.where(cell, off[piece, 1] + jitter[:, 1], ey)
    acc = np.where(cell, cell_sigma[piece], sigma).astype(np.float32)
    keep = ~lost
    source = np.where(cell, _CELL, _GNSS).astype(np.int8)
    return sched_ms[keep], (x + ex)[keep], (y + ey)[keep], source[keep], acc[keep]


# --------------------------------------------------------------------------- truth


def _truth(geo, subjects, paths, fix_ts, start_ms, end_s):
    """Violation intervals of the true paths: exits from the county and entries into applicable forbidden zones."""
    seg_sub, a, b, ta, tb = [], [], [], [], []
    for i, (t, x, y, _) in enumerate(paths):
        moving = (np.diff(x) != 0) | (np.diff(y) != 0)
        j = np.flatnonzero(moving)
        seg_sub.append(np.full(j.size, i))
        a.append(np.column_stack([x[j], y[j]]))
        b.append(np.column_stack([x[j + 1], y[j + 1]]))
        ta.append(t[j])
        tb.append(t[j + 1])
    seg_sub, a, b, ta, tb = (np.concatenate(v) for v in (seg_sub, a, b, ta, tb))
    bounds = np.concatenate([[geo.county.exterior], shapely.get_exterior_ring(geo.zone_poly)])
    polys = np.concatenate([[geo.county], geo.zone_poly])
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    si, zi = shapely.STRtree(bounds).query(lines, predicate="intersects")
    owner = np.concatenate([[-1], geo.zone_owner])
    keep = (owner[zi] < 0) | (owner[zi] == seg_sub[si])
    si, zi = si[keep], zi[keep]
    pts, which = shapely.get_coordinates(shapely.intersection(lines[si], bounds[zi]), return_index=True)
    s = si[which]
    d = b[s] - a[s]
    frac = ((pts - a[s]) * d).sum(1) / (d * d).sum(1)
    t_cross = ta[s] + frac * (tb[s] - ta[s])
    rows = []
    for sub, z in sorted(set(zip(seg_sub[s].tolist(), zi[which].tolist()))):
        t, x, y, _ = paths[sub]
        events = np.unique(t_cross[(seg_sub[s] == sub) & (zi[which] == z)])
        edges = np.concatenate([[t[0]], events, [t[-1]]])
        mid = 0.5 * (edges[:-1] + edges[1:])
        inside = shapely.contains_xy(polys[z], np.interp(mid, t, x), np.interp(mid, t, y))
        bad = ~inside if z == 0 else inside
        if bad[0] or bad[-1]:
            raise RuntimeError(f"violation of {subjects[sub].sid} open at the ends of the simulated path")
        starts = np.flatnonzero(bad & ~np.concatenate([[False], bad[:-1]]))
        ends = np.flatnonzero(bad & ~np.concatenate([bad[1:], [False]]))
        for i0, i1 in zip(starts, ends):
            t0, t1 = edges[i0], edges[i1 + 1]
            if t0 < 0.0 or t1 > end_s:
                raise RuntimeError(f"violation of {subjects[sub].sid} outside the simulated span")
            ms0, ms1 = start_ms + round(t0 * 1_000.0), start_ms + round(t1 * 1_000.0)
            ts = fix_ts[sub]
            n_inside = np.searchsorted(ts, ms1, side="right") - np.searchsorted(ts, ms0, side="left")
            zone_id = "county" if z == 0 else _forbidden_id(z - 1)
            kind = "permitted_exit" if z == 0 else "forbidden_entry"
            rows.append((subjects[sub].sid, kind, zone_id, ms0, ms1, bool(n_inside == 0)))
    rows.sort(key=lambda r: (r[0], r[3], r[2]))
    cols = list(zip(*rows)) if rows else [[]] * 6
    return pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.int64()).cast(TS_TYPE),
            pa.array(cols[4], pa.int64()).cast(TS_TYPE),
            pa.array(cols[5], pa.bool_()),
        ],
        schema=TRUTH_SCHEMA,
    )


# --------------------------------------------------------------------------- output


def _forbidden_id(i: int) -> str:
    return f"forbidden-{i + 1:04d}"


def _geojson_polygon(g: shapely.Polygon) -> dict:
    rings = [g.exterior, *g.interiors]
    return {"type": "Polygon", "coordinates": [shapely.get_coordinates(r).tolist() for r in rings]}


def _write_zones(path: Path, frame, x0, y0, geo, subjects) -> int:
    n_sub = len(subjects)
    geoms = np.concatenate(
        [
            [geo.county],
            geo.cells,
            geo.zone_poly,
            [shapely.Point(s.places[_HOME]).buffer(s.home_r_m, quad_segs=4) for s in subjects],
        ]
    )

    def to_lonlat(xy):
        lon, lat = frame.unproject(xy[:, 0] + x0, xy[:, 1] + y0)
        return np.column_stack([lon, lat])

    geoms = shapely.orient_polygons(shapely.transform(geoms, to_lonlat), exterior_cw=False)
    props = [{"zone_id": "county", "kind": "permitted", "subject_ids": None, "office_id": None}]
    for k in range(N_OFFICES):
        zone_id, office_id = f"jurisdiction-{k + 1:02d}", f"office-{k + 1:02d}"
        props.append({"zone_id": zone_id, "kind": "jurisdiction", "subject_ids": None, "office_id": office_id})
    for i, (cat, owner) in enumerate(zip(geo.zone_category, geo.zone_owner)):
        props.append(
            {
                "zone_id": _forbidden_id(i),
                "kind": "forbidden",
                "subject_ids": None if owner < 0 else [subjects[owner].sid],
                "office_id": None,
                "category": cat,
            }
        )
    props += [{"zone_id": f"home-{s.sid}", "kind": "home", "subject_ids": [s.sid], "office_id": None} for s in subjects]
    assert len(props) == len(geoms) == 1 + N_OFFICES + len(geo.zone_poly) + n_sub
    features = [{"type": "Feature", "properties": p, "geometry": _geojson_polygon(g)} for p, g in zip(props, geoms)]
    doc = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    return len(props)


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
    >>> from geomon.simulate import simulate
    >>> from geomon.load import load_fixes
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
    span_ms = int(round(days * _DAY_S * 1_000.0))
    end_s = span_ms / 1_000.0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    frame = transverse_mercator(centre_lon_deg)
    x0, y0 = (float(v[0]) for v in frame.project([centre_lon_deg], [centre_lat_deg]))
    ss_geo, ss_subjects, ss_schedule, ss_noise = np.random.SeedSequence(seed).spawn(4)
    rng = np.random.default_rng(ss_geo)

    county = _county(rng)
    towns_xy, town_r_m, cells = _towns_and_cells(rng, county)
    strict = rng.random(n_subjects) < 0.3
    has_victim = rng.random(n_subjects) < np.where(strict, 0.6, 0.1)
    owners = np.flatnonzero(has_victim)
    zone_xy, zone_r_m, zone_inner_r_m, zone_poly, category = _forbidden_zones(
        rng, county, towns_xy, town_r_m, owners.size
    )
    geo = _Geography(
        county=county,
        inner=county.buffer(-COUNTY_MARGIN_M),
        towns_xy=towns_xy,
        town_r_m=town_r_m,
        cells=cells,
        zone_xy=zone_xy,
        zone_r_m=zone_r_m,
        zone_inner_r_m=zone_inner_r_m,
        zone_poly=zone_poly,
        zone_category=category,
        zone_owner=np.concatenate([np.full(N_BARS + N_SCHOOLS, -1), owners]).astype(np.int64),
    )
    order = rng.permutation(n_subjects)
    n_exit = max(1, round(EXIT_FRACTION * n_subjects))
    n_entry = max(1, round(ENTRY_FRACTION * n_subjects))
    n_cross = max(1, round(CROSSING_FRACTION * n_subjects))
    trips: dict[int, str] = {}
    for kind, count in (("permitted_exit", n_exit), ("forbidden_entry", n_entry), ("crossing", n_cross)):
        for i in order[len(trips) : len(trips) + count]:
            trips[int(i)] = kind

    start_local_s = start_ms / 1_000.0 + LOCAL_UTC_OFFSET_S
    first_day = math.floor(start_local_s / _DAY_S)
    day0_s = first_day * _DAY_S - start_local_s  # local midnight before the start, simulation seconds
    n_days = math.ceil((end_s - day0_s) / _DAY_S) + 1
    victim_of = {int(o): k for k, o in zip(range(N_BARS + N_SCHOOLS, len(zone_poly)), owners)}

    subjects, paths, fix_parts, fix_ts = [], [], [], []
    n_injected = 0
    subject_ss, schedule_ss, noise_ss = (ss.spawn(n_subjects) for ss in (ss_subjects, ss_schedule, ss_noise))
    for i in range(n_subjects):
        srng = np.random.default_rng(subject_ss[i])
        subj = _make_subject(srng, geo, i, "strict" if strict[i] else "ordinary", victim_of.get(i, -1))
        sched_ms = _schedule_ms(np.random.default_rng(schedule_ss[i]), subj.interval_s, span_ms)
        whole_days = max(1, int(end_s // _DAY_S))
        trip_s = float(srng.integers(0, whole_days)) * _DAY_S + srng.uniform(0.05, 0.4) * min(end_s, _DAY_S)
        tl, injected = _plan(
            srng, geo, subj, day0_s, first_day, n_days, end_s, sched_ms / 1_000.0, trips.get(i), trip_s
        )
        n_injected += injected
        path = (np.array(tl.t), np.array(tl.x), np.array(tl.y), np.array(tl.indoor))
        part = _fixes(np.random.default_rng(noise_ss[i]), geo, subj, *path, sched_ms, noise)
        subjects.append(subj)
        paths.append(path)
        fix_parts.append(part)
        fix_ts.append(start_ms + part[0])

    truth = _truth(geo, subjects, paths, fix_ts, start_ms, end_s)

    counts = np.array([p[0].size for p in fix_parts])
    ts_ms, x, y, source, acc = (np.concatenate([p[k] for p in fix_parts]) for k in range(5))
    lon, lat = frame.unproject(x + x0, y + y0)
    ids = pa.array([s.sid for s in subjects], pa.string())
    subject_index = pa.array(np.repeat(np.arange(n_subjects, dtype=np.int32), counts))
    source_index = pa.array(source.astype(np.int32))
    fixes = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(subject_index, ids).cast(pa.string()),
            pa.array(start_ms + ts_ms, pa.int64()).cast(TS_TYPE),
            pa.array(lon, pa.float64()),
            pa.array(lat, pa.float64()),
            pa.DictionaryArray.from_arrays(source_index, pa.array(["gnss", "cell"])).cast(pa.string()),
            pa.array(acc, pa.float32()),
        ],
        schema=FIX_SCHEMA,
    )
    paths_out = {name: out / name for name in ("fixes.parquet", "zones.geojson", "subjects.csv", "truth.parquet")}
    pq.write_table(
        fixes,
        paths_out["fixes.parquet"],
        compression="zstd",
        use_dictionary=["subject_id", "source", "accuracy_m"],
        use_byte_stream_split=["lon", "lat"],
        column_encoding={"ts": "DELTA_BINARY_PACKED"},
    )
    pq.write_table(truth, paths_out["truth.parquet"], compression="zstd")
    n_zones = _write_zones(paths_out["zones.geojson"], frame, x0, y0, geo, subjects)

    homes = np.array([s.places[_HOME] for s in subjects])
    office = np.full(n_subjects, -1)
    for k, cell in enumerate(cells):
        office[shapely.contains_xy(cell, homes[:, 0], homes[:, 1])] = k
    for i in np.flatnonzero(office < 0):  # on a border: the nearest cell
        office[i] = int(np.argmin(shapely.distance(cells, shapely.Point(homes[i]))))
    lines = ["subject_id,level,office_id,home_zone_id"]
    lines += [f"{s.sid},{s.level},office-{office[i] + 1:02d},home-{s.sid}" for i, s in enumerate(subjects)]
    paths_out["subjects.csv"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    kinds = truth.column("kind").to_numpy(zero_copy_only=False)
    return SimulationResult(
        out_dir=out,
        fixes_path=paths_out["fixes.parquet"],
        zones_path=paths_out["zones.geojson"],
        subjects_path=paths_out["subjects.csv"],
        truth_path=paths_out["truth.parquet"],
        n_subjects=n_subjects,
        n_fixes=fixes.num_rows,
        n_zones=n_zones,
        n_forbidden=len(zone_poly),
        n_permitted_exits=int((kinds == "permitted_exit").sum()),
        n_forbidden_entries=int((kinds == "forbidden_entry").sum()),
        n_crossings=int(truth.column("crossing_only").to_numpy(zero_copy_only=False).sum()),
        n_injected=int(n_injected),
        frame_crs=frame.crs,
        start_ms=int(start_ms),
        end_ms=int(start_ms + span_ms),
    )
