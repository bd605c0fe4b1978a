"""Subjects' days in the simulated county: places, daily plans, movement and injected violations.

Part of :mod:`geomon.sim.simulate`, whose module docstring describes the model.
A subject's true path is a :class:`Timeline` of stays and moves in local
metres. Routine movement (:func:`plan` following the daily visits) keeps
:data:`~geomon.sim.geography.PLACE_MARGIN_M` and
:data:`~geomon.sim.geography.PATH_MARGIN_M` from every forbidden zone and
:data:`~geomon.sim.geography.COUNTY_MARGIN_M` inside the county, so the only
violations are the trips injected here: a county exit, a forbidden entry or a
crossing timed between two fixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from geomon.sim.geography import PLACE_MARGIN_M, Geography, annulus, mixture

__all__ = [
    "DAY_S",
    "HOME",
    "Subject",
    "Timeline",
    "assign_violations",
    "local_days",
    "make_subject",
    "plan",
]

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

HOME = 0  # index of the home among a subject's places
DAY_S = 86_400.0


def assign_violations(rng: np.random.Generator, n_subjects: int) -> dict[int, str]:
    """Subject index -> the kind of violation injected for that subject (at most one each)."""
    order = rng.permutation(n_subjects)
    n_exit = max(1, round(EXIT_FRACTION * n_subjects))
    n_entry = max(1, round(ENTRY_FRACTION * n_subjects))
    n_cross = max(1, round(CROSSING_FRACTION * n_subjects))
    trips: dict[int, str] = {}
    for kind, count in (("permitted_exit", n_exit), ("forbidden_entry", n_entry), ("crossing", n_cross)):
        for i in order[len(trips) : len(trips) + count]:
            trips[int(i)] = kind
    return trips


def local_days(start_ms: int, end_s: float) -> tuple[float, int, int]:
    """Local days covering ``[0, end_s]`` simulation seconds from ``start_ms``.

    Returns the local midnight before the start (simulation seconds), its day
    number since the epoch, and how many days to plan from it.
    """
    start_local_s = start_ms / 1_000.0 + LOCAL_UTC_OFFSET_S
    first_day = math.floor(start_local_s / DAY_S)
    day0_s = first_day * DAY_S - start_local_s
    n_days = math.ceil((end_s - day0_s) / DAY_S) + 1
    return day0_s, first_day, n_days


def _route(rng, geo: Geography, p: np.ndarray, q: np.ndarray) -> np.ndarray | None:
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


class Timeline:
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
class Subject:
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
            route = _route(rng, geo, self.places[HOME], xy)
            if route is None:
                return None
            self.routes[(HOME, len(self.places))] = route
        self.places.append(np.asarray(xy, dtype=np.float64))
        return len(self.places) - 1

    def path(self, rng, geo, a: int, b: int) -> np.ndarray:
        if (a, b) not in self.routes:
            if (b, a) in self.routes:
                self.routes[(a, b)] = self.routes[(b, a)][::-1]
            else:
                route = _route(rng, geo, self.places[a], self.places[b])
                if route is None:  # every place has a route from home
                    route = np.vstack([self.path(rng, geo, a, HOME), self.path(rng, geo, HOME, b)[1:]])
                self.routes[(a, b)] = route
        return self.routes[(a, b)]


def _go(rng, geo, subj: Subject, tl: Timeline, dest: int) -> None:
    if dest != tl.place:
        path = subj.path(rng, geo, tl.place, dest)
        tl.move(path, _speed(rng, _length_m(path)))
        tl.place = dest


def _speed(rng, length_m: float) -> float:
    return float(rng.uniform(*WALK_MPS) if length_m < WALK_MAX_M else rng.uniform(*DRIVE_MPS))


# --------------------------------------------------------------------------- subjects


def make_subject(rng, geo: Geography, index: int, level: str, victim_zone: int) -> Subject:
    sid = f"S{index + 1:04d}"
    strict = level == "strict"
    subj = Subject(
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
            cand = annulus(rng, 64, geo.zone_xy[victim_zone], 1_000.0, 5_000.0)
        else:
            cand = mixture(rng, 64, geo.towns_xy, geo.town_r_m, 0.7, geo.county.bounds)
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
        subj.work = sample(lambda: mixture(rng, 32, geo.towns_xy, geo.town_r_m, 0.8, geo.county.bounds))
    if subj.work is not None and rng.random() < 0.7:
        subj.lunch = sample(lambda: annulus(rng, 32, subj.places[subj.work], 200.0, 700.0), tries=10)
    for _ in range(int(rng.integers(2, 5))):
        if rng.random() < 0.5:
            idx = sample(lambda: annulus(rng, 32, home, 300.0, 3_000.0), tries=10)
        else:
            idx = sample(lambda: mixture(rng, 32, geo.towns_xy, geo.town_r_m, 0.9, geo.county.bounds), tries=10)
        if idx is not None:
            subj.errands.append(idx)
    return subj


def _day_visits(rng, subj: Subject, day0_s: float, weekday: int):
    """One local day as ``(place, stay until s, minimum stay s)``; the day ends at home."""

    def h(hours):
        return day0_s + hours * 3_600.0

    visits = []
    if subj.work is not None and weekday < 5:
        visits.append((HOME, h(subj.leave_h + rng.normal(0.0, 0.2)), 0.0))
        if subj.lunch is not None and rng.random() < 0.4:
            visits.append((subj.work, h(rng.uniform(11.8, 12.2)), 300.0))
            visits.append((subj.lunch, 0.0, rng.uniform(1_500.0, 3_000.0)))
        visits.append((subj.work, h(subj.end_h + rng.normal(0.0, 0.2)), 300.0))
        if subj.errands and rng.random() < 0.4:
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(900.0, 3_600.0)))
        if subj.errands and rng.random() < 0.15:
            visits.append((HOME, h(rng.uniform(19.5, 20.5)), 0.0))
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(1_800.0, 5_400.0)))
    elif subj.errands:
        for t_h in np.sort(rng.uniform(8.5, 19.5, int(rng.integers(1, 4)))):
            visits.append((HOME, h(t_h), 0.0))
            visits.append((int(rng.choice(subj.errands)), 0.0, rng.uniform(1_200.0, 7_200.0)))
    visits.append((HOME, h(24.0), 0.0))
    return visits


# --------------------------------------------------------------------------- violations


def _near_zones(geo, subj, max_r_m=np.inf, k=8):
    """Indices of the ``k`` nearest forbidden zones that apply to the subject (and are small enough)."""
    ok = ((geo.zone_owner < 0) | (geo.zone_owner == subj.index)) & (geo.zone_r_m <= max_r_m)
    idx = np.flatnonzero(ok)
    d = np.hypot(*(geo.zone_xy[idx] - subj.places[HOME]).T)
    return idx[np.argsort(d, kind="stable")[:k]]


def _exit_trip(rng, geo, subj, tl, sched_s, end_s) -> bool:
    """Drive out of the county along a ray from its centre, stay a while, and come back."""
    base = math.atan2(subj.places[HOME][1], subj.places[HOME][0])
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
        inside = annulus(rng, 1, c, 0.0, 0.4 * geo.zone_inner_r_m[z])[0]
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


def plan(rng, geo, subj, day0_s, first_day, n_days, end_s, sched_s, trip, trip_s) -> tuple[Timeline, bool]:
    """The subject's true path from local midnight before the start to past the end."""
    tl = Timeline(day0_s, subj.places[HOME], HOME)
    done = False
    for k in range(n_days):
        for place, until_s, min_stay_s in _day_visits(rng, subj, day0_s + k * DAY_S, (first_day + k + 3) % 7):
            _go(rng, geo, subj, tl, place)
            indoor = True if place == HOME else subj.work_indoor if place == subj.work else bool(rng.random() < 0.5)
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

