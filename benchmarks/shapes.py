"""Deterministic, seeded test geometry for the benchmarks, in projected metres.

Everything sits around ``CENTRE_M`` (x≈500 km, y≈4,000 km, a UTM-like position),
so coordinates have the magnitude of real projected fixes and the float64
round-off a kernel sees is the one it will see in production.

The same ``seed`` always gives the same outline, whatever the vertex count: the
smooth blob and the comb are one shape sampled at several resolutions, so the
per-point cost across vertex counts compares like with like.
"""

from __future__ import annotations

import numpy as np
import shapely

#: Centre of every generated shape, metres (projected, UTM-like).
CENTRE_M = (500_000.0, 4_000_000.0)

# Stream tags keep the random streams of different generators independent.
_SMOOTH_TAG = 1
_SPIKY_TAG = 2
_POINTS_TAG = 3
_ZONES_TAG = 4


def _blob_ring(
    cx: float,
    cy: float,
    radius_m: float,
    n_vertices: int,
    amplitudes: np.ndarray,
    phases: np.ndarray,
) -> np.ndarray:
    """Closed ring of ``r(θ) = R·(1 + Σ a_k sin(kθ + φ_k))``, k = 2, 3, ….

    With ``Σ a_k < 1`` the radius stays positive, so the ring is star-shaped
    about the centre and therefore simple.
    """
    theta = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    k = np.arange(2, 2 + len(amplitudes))[:, None]
    r = radius_m * (1.0 + (amplitudes[:, None] * np.sin(k * theta + phases[:, None])).sum(axis=0))
    ring = np.empty((n_vertices + 1, 2))
    ring[:-1, 0] = cx + r * np.cos(theta)
    ring[:-1, 1] = cy + r * np.sin(theta)
    ring[-1] = ring[0]
    return ring


def _harmonics(rng: np.random.Generator, wobble: float, count: int = 5) -> tuple[np.ndarray, np.ndarray]:
    amplitudes = rng.uniform(0.2, 1.0, count)
    amplitudes *= wobble / amplitudes.sum()
    phases = rng.uniform(0.0, 2.0 * np.pi, count)
    return amplitudes, phases


def smooth_outline(
    n_vertices: int,
    *,
    seed: int = 0,
    centre: tuple[float, float] = CENTRE_M,
    radius_m: float = 5_000.0,
    wobble: float = 0.15,
) -> shapely.Polygon:
    """Irregular smooth blob, about ``2·radius_m`` across, with ``n_vertices`` vertices.

    The radius is ``R·(1 + Σ a_k sin(kθ + φ_k))`` over five low harmonics whose
    amplitudes sum to ``wobble``; the outline is star-shaped about ``centre``,
    so any horizontal line crosses it at most a handful of times (two through the
    middle).
    """
    if n_vertices < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {n_vertices}")
    amplitudes, phases = _harmonics(np.random.default_rng((seed, _SMOOTH_TAG)), wobble)
    return shapely.Polygon(_blob_ring(*centre, radius_m, n_vertices, amplitudes, phases))


def spiky_outline(
    n_vertices: int,
    *,
    seed: int = 0,
    centre: tuple[float, float] = CENTRE_M,
    size_m: float = 10_000.0,
    teeth: int = 32,
) -> shapely.Polygon:
    """Comb of ``teeth`` tapered spikes on a spine, ``size_m`` across, ``n_vertices`` vertices.

    A star with n/2 spikes is the wrong stress test: a line through its centre
    is a ray pair and crosses it twice. Here every spike stands on a spine along
    the bottom and reaches above the middle, so the middle horizontal line
    crosses two edges per spike (64 for 32 spikes) and so does every line of
    points between the spine and the shortest tip. The spare vertices go to the
    spike flanks, which wiggle a little; each flank is monotone in y and every
    spike stays inside its own column, so the ring is simple.

    With fewer than ``4·teeth + 4`` vertices the comb has ``(n_vertices - 4) // 4``
    spikes instead (3 at 16 vertices).
    """
    if n_vertices < 8:
        raise ValueError(f"a comb needs at least 8 vertices, got {n_vertices}")
    teeth = max(1, min(teeth, (n_vertices - 4) // 4))
    rng = np.random.default_rng((seed, _SPIKY_TAG))
    # Drawn for the full 32-spike layout and sliced, so the low-resolution combs
    # share their first spikes with the high-resolution ones.
    tip_height = rng.uniform(0.25, 0.5, 64)[:teeth]
    tip_shift = rng.uniform(-0.1, 0.1, 64)[:teeth]
    flank_freq = rng.integers(1, 5, 128)[: 2 * teeth]
    flank_phase = rng.uniform(0.0, 2.0 * np.pi, 128)[: 2 * teeth]

    cx, cy = centre
    x0, x1 = cx - size_m / 2, cx + size_m / 2
    y0 = cy - size_m / 2
    y_spine = y0 + 0.15 * size_m
    pitch = size_m / teeth
    wiggle_m = 0.04 * pitch

    spare = n_vertices - 4 - 4 * teeth
    per_flank = np.full(2 * teeth, spare // (2 * teeth))
    per_flank[: spare % (2 * teeth)] += 1

    def flank(x_from, y_from, x_to, y_to, count, side):
        t = np.arange(1, count + 1) / (count + 1)
        x = x_from + t * (x_to - x_from) + wiggle_m * np.sin(2 * np.pi * flank_freq[side] * t + flank_phase[side])
        return np.column_stack([x, y_from + t * (y_to - y_from)])

    parts = [np.array([[x0, y0], [x1, y0], [x1, y_spine]])]
    for i in reversed(range(teeth)):
        x_left = x0 + (i + 0.25) * pitch
        x_right = x_left + 0.5 * pitch
        tip_centre = x_left + (0.25 + tip_shift[i]) * pitch
        tip_left, tip_right = tip_centre - 0.1 * pitch, tip_centre + 0.1 * pitch
        y_tip = cy + tip_height[i] * size_m
        parts.append([[x_right, y_spine]])
        parts.append(flank(x_right, y_spine, tip_right, y_tip, per_flank[2 * i + 1], 2 * i + 1))
        parts.append([[tip_right, y_tip], [tip_left, y_tip]])
        parts.append(flank(tip_left, y_tip, x_left, y_spine, per_flank[2 * i], 2 * i))
        parts.append([[x_left, y_spine]])
    parts.append([[x0, y_spine], [x0, y0]])
    ring = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in parts])
    assert len(ring) == n_vertices + 1
    return shapely.Polygon(ring)


#: Outline generators by the name the suites and the JSON use.
OUTLINES = {"smooth": smooth_outline, "spiky": spiky_outline}


def outline(kind: str, n_vertices: int, *, seed: int = 0) -> shapely.Polygon:
    """The ``kind`` outline ("smooth" or "spiky") with ``n_vertices`` vertices."""
    try:
        make = OUTLINES[kind]
    except KeyError:
        raise ValueError(f"unknown outline {kind!r}; expected one of {sorted(OUTLINES)}") from None
    return make(n_vertices, seed=seed)


def n_vertices(polygon: shapely.Polygon) -> int:
    """Distinct vertices of a polygon's rings (the closing coordinate not counted)."""
    rings = [polygon.exterior, *polygon.interiors]
    return sum(len(ring.coords) - 1 for ring in rings)


def mid_line_crossings(polygon: shapely.Polygon) -> int:
    """Edges crossed by the horizontal line through the middle of the bounding box.

    An edge counts when its end points lie on opposite sides of the line (the
    half-open rule of ray casting), so this is the work a horizontal crossing
    test does for a point at that height.
    """
    _, y_min, _, y_max = polygon.bounds
    y_mid = 0.5 * (y_min + y_max)
    total = 0
    for ring in [polygon.exterior, *polygon.interiors]:
        y = np.asarray(ring.coords)[:, 1]
        above = y > y_mid
        total += int(np.count_nonzero(above[:-1] != above[1:]))
    return total


def uniform_points(
    bounds: tuple[float, float, float, float],
    n_points: int,
    *,
    seed: int = 0,
    stream: tuple[int, ...] = (),
    expand: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_points`` uniform points in ``bounds`` grown by ``expand`` of its size.

    ``expand=0.1`` makes the box 10% wider and taller (5% margin on each side),
    so some points fall outside the shape's bounding box too. ``stream`` picks an
    independent random stream for the same ``seed``. Returns float64 ``x, y``.
    """
    x_min, y_min, x_max, y_max = bounds
    dx, dy = 0.5 * expand * (x_max - x_min), 0.5 * expand * (y_max - y_min)
    rng = np.random.default_rng((seed, _POINTS_TAG, *stream))
    x = rng.uniform(x_min - dx, x_max + dx, n_points)
    y = rng.uniform(y_min - dy, y_max + dy, n_points)
    return x, y


def zone_field(
    n_zones: int,
    *,
    seed: int = 0,
    centre: tuple[float, float] = CENTRE_M,
    side_m: float = 50_000.0,
    large_fraction: float = 0.01,
) -> np.ndarray:
    """``n_zones`` geofences scattered over a square of ``side_m``, as an object array of Polygons.

    Most zones are small: half circles (32 vertices), half irregular blobs (8-96
    vertices), radius log-uniform in 30-300 m, the size of a home, a school or a
    victim's workplace. ``large_fraction`` of them (at least one) are large
    irregular blobs of 1-3 km radius and 256-2,048 vertices, the size of an
    exclusion district. Zones may overlap each other. The order is shuffled.
    """
    if n_zones < 1:
        raise ValueError(f"need at least one zone, got {n_zones}")
    rng = np.random.default_rng((seed, _ZONES_TAG))
    n_large = min(n_zones, max(1, round(n_zones * large_fraction)))
    n_small = n_zones - n_large
    radius_m = np.concatenate(
        [np.exp(rng.uniform(np.log(30.0), np.log(300.0), n_small)), rng.uniform(1_000.0, 3_000.0, n_large)]
    )
    is_circle = np.concatenate([rng.random(n_small) < 0.5, np.zeros(n_large, dtype=bool)])
    vertices = np.concatenate([rng.integers(8, 97, n_small), rng.integers(256, 2049, n_large)])
    vertices[is_circle] = 32
    half = side_m / 2 - radius_m * 1.2  # keep every zone inside the square
    cx = centre[0] + rng.uniform(-1.0, 1.0, n_zones) * half
    cy = centre[1] + rng.uniform(-1.0, 1.0, n_zones) * half
    zones = np.empty(n_zones, dtype=object)
    for i in range(n_zones):
        amplitudes, phases = _harmonics(rng, 0.0 if is_circle[i] else 0.15)
        zones[i] = shapely.Polygon(_blob_ring(cx[i], cy[i], radius_m[i], int(vertices[i]), amplitudes, phases))
    return zones[rng.permutation(n_zones)]


def zone_square(
    *, centre: tuple[float, float] = CENTRE_M, side_m: float = 50_000.0
) -> tuple[float, float, float, float]:
    """Bounds ``(x_min, y_min, x_max, y_max)`` of the square :func:`zone_field` fills."""
    half = side_m / 2
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
