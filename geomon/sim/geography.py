"""The simulated county: its outline, the office jurisdictions and the forbidden places.

Part of :mod:`geomon.sim.simulate`, whose module docstring describes the model. All
geometry here is in the simulation's local Transverse Mercator frame, metres
about the county centre. The county is a star-shaped blob (simple by
construction, every ray from the centre crossing it once), the jurisdictions
are the Voronoi cells of the towns clipped to it (``shapely.voronoi_polygons``),
and the forbidden places keep :data:`PLACE_MARGIN_M` twice over between any two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

__all__ = [
    "COUNTY_MARGIN_M",
    "N_BARS",
    "N_OFFICES",
    "N_SCHOOLS",
    "PATH_MARGIN_M",
    "PLACE_MARGIN_M",
    "Geography",
    "annulus",
    "build_geography",
    "forbidden_id",
    "mixture",
]

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


def forbidden_id(i: int) -> str:
    """The zone id of forbidden zone ``i`` (0-based)."""
    return f"forbidden-{i + 1:04d}"


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


def mixture(rng, n, towns_xy, town_r_m, p_town, bounds) -> np.ndarray:
    """Points drawn around towns (Gaussian, weight by town area) or uniformly over ``bounds``."""
    w = town_r_m**2 / (town_r_m**2).sum()
    k = rng.choice(len(w), size=n, p=w)
    near = towns_xy[k] + rng.normal(size=(n, 2)) * (0.7 * town_r_m[k])[:, None]
    far = rng.uniform(bounds[:2], bounds[2:], size=(n, 2))
    return np.where((rng.random(n) < p_town)[:, None], near, far)


def annulus(rng, n, centre, r_min_m, r_max_m) -> np.ndarray:
    r = np.sqrt(rng.uniform(r_min_m**2, r_max_m**2, n))
    a = rng.uniform(0.0, 2 * np.pi, n)
    return centre + np.column_stack([r * np.cos(a), r * np.sin(a)])


@dataclass
class Geography:
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

    def victim_zones(self) -> dict[int, int]:
        """Subject index -> index of the forbidden zone that is that subject's victim's home."""
        return {int(o): k for k, o in enumerate(self.zone_owner) if o >= 0}


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
            cand = mixture(rng, 32, towns_xy, town_r_m, p_town[cat], county.bounds)
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


def build_geography(rng: np.random.Generator, n_subjects: int) -> tuple[Geography, np.ndarray]:
    """The county, its jurisdictions and forbidden zones, and which subjects are strict.

    Subject levels are drawn here because they decide who has a victim, hence
    how many victims' homes there are. Draws from ``rng`` in a fixed order.
    """
    county = _county(rng)
    towns_xy, town_r_m, cells = _towns_and_cells(rng, county)
    strict = rng.random(n_subjects) < 0.3
    has_victim = rng.random(n_subjects) < np.where(strict, 0.6, 0.1)
    owners = np.flatnonzero(has_victim)
    zone_xy, zone_r_m, zone_inner_r_m, zone_poly, category = _forbidden_zones(
        rng, county, towns_xy, town_r_m, owners.size
    )
    geo = Geography(
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
    return geo, strict
