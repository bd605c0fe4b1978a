"""Geography and movement of the simulated scenarios: the site, and each kind of subject's true path.

Part of :mod:`geomon.sim.scenarios` (which documents the scenarios): the
permitted area and forbidden zones of a site, and the true timelines of
routine subjects (with their breaches), near-boundary homes, walks along the
boundary and parked subjects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from geomon.sim.geography import PATH_MARGIN_M, PLACE_MARGIN_M
from geomon.sim.routines import DAY_S, DRIVE_MPS, WALK_MAX_M, WALK_MPS, Timeline

#: Diameter of the disc with the permitted area's area, metres.
PERMITTED_DIAMETER_M = 10_000.0
#: The routine disc keeps this far inside the nearest point of the permitted edge, metres.
ROUTINE_MARGIN_M = 1_000.0
N_FORBIDDEN = 5
FORBIDDEN_R_M = (50.0, 200.0)
#: Distance inside the permitted edge of near-boundary homes and along-boundary walks, metres.
NEAR_BOUNDARY_M = (6.0, 19.0)
ALONG_BOUNDARY_M = (7.0, 18.0)


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
