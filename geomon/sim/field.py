"""Field-like truth for judging fusion: people at rest, on foot, on bikes, in cars and buses (metres, seeded).

The fusion matrix (``python -m benchmarks fusion``) pairs each motion family
here with each noise family of :mod:`geomon.sim.field_noise` at several
reporting intervals. A track's truth is drawn as a plan (speed knots and turn
pulses), rendered on a 1 s grid and then sampled at the fix times:

- speed is piecewise linear between the plan's knots (ramps at a bounded
  acceleration or braking, holds at a cruise speed), then averaged over
  :data:`SMOOTH_S`, so acceleration is continuous too;
- heading is the integral of a turn rate made of pulses; a turn of angle
  ``a`` at speed ``v`` with lateral acceleration ``a_lat`` lasts
  ``|a| v / a_lat`` (turn rate ``a_lat / v``);
- position is the trapezoidal integral of the velocity.

Every track starts with a stand still of random length (:data:`START_REST_S`,
at most a quarter of the track), so every track has a departure. The families (:data:`FAMILIES`):

- ``rest``: stands still, swaying by less than :data:`SWAY_MAX_M`;
- ``walk``: 1.1-1.5 m/s, random turns at random times, stops of 1-10 min;
- ``cycle``: 4-6 m/s, turns at junctions, stops at lights of 20-60 s;
- ``car_town``: stop-and-go between 8-14 m/s (accelerating at 1.5-2.5
  m/s^2), stops of 10-60 s at lights, 90-degree corners at 5-7 m/s with
  about 3 m/s^2 lateral acceleration;
- ``car_road``: 20-30 m/s, gentle curves, rare stops;
- ``bus``: 8-12 m/s between stops every 300-500 m (20-40 s each), corners.

Truth is in a local metric frame (x east, y north, metres); times are int64
milliseconds from :data:`T0_MS`. Tracks come one after another in CSR layout
(``offsets``), as the kernels take them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FAMILIES", "MOTIONS", "MotionFamily", "FieldTruth", "simulate_motion", "departure_truth",
           "stop_durations_s"]

#: Start of every simulated track (2024-03-04 00:00 UTC), ms since the epoch.
T0_MS = 1_709_510_400_000
#: Step of the rendered truth, seconds; fix intervals are whole multiples of it.
FINE_DT_S = 1.0
#: Window of the moving average that makes acceleration continuous, seconds.
SMOOTH_S = 3.0
#: Length of the stand still every track starts with, seconds.
START_REST_S = (60.0, 900.0)
#: ... and at most this share of the track, drawn per track.
START_REST_SHARE = (0.1, 0.25)
#: Largest sway of a subject at rest, metres.
SWAY_MAX_M = 0.3


@dataclass(frozen=True)
class MotionFamily:
    """How one kind of subject moves; every range is (low, high), drawn uniformly."""

    name: str
    cruise_mps: tuple[float, float]
    accel_mps2: tuple[float, float]
    brake_mps2: tuple[float, float]
    #: Distance between one leg's decision points (stop, corner or carry on), metres.
    leg_m: tuple[float, float]
    #: Chance a leg ends in a stop, and the stop's length (s).
    stop_p: float
    stop_s: tuple[float, float]
    #: Chance a leg ends in a turn (before its stop, if any); its angle (deg, either side); the speed it is taken at
    #: (None: the cruise speed); the lateral acceleration (m/s^2).
    turn_p: float = 0.0
    turn_deg: tuple[float, float] = (90.0, 90.0)
    turn_speed_mps: tuple[float, float] | None = None
    turn_lateral_mps2: float = 3.0
    #: Turns while cruising: per second, their angle (deg, either side), lateral acceleration (m/s^2).
    curve_rate_ps: float = 0.0
    curve_deg: tuple[float, float] = (0.0, 0.0)
    curve_lateral_mps2: float = 1.0


#: The motion families, by name.
FAMILIES: dict[str, MotionFamily] = {f.name: f for f in (
    MotionFamily("rest", (0.0, 0.0), (1.0, 1.0), (1.0, 1.0), (0.0, 0.0), 0.0, (0.0, 0.0)),
    MotionFamily("walk", (1.1, 1.5), (0.5, 1.0), (0.5, 1.0), (100.0, 800.0), 0.35, (60.0, 600.0),
                 turn_p=0.4, turn_deg=(30.0, 150.0), turn_lateral_mps2=1.0,
                 curve_rate_ps=1 / 120, curve_deg=(10.0, 60.0), curve_lateral_mps2=0.5),
    MotionFamily("cycle", (4.0, 6.0), (0.5, 1.2), (1.0, 2.0), (200.0, 1200.0), 0.4, (20.0, 60.0),
                 turn_p=0.3, turn_deg=(70.0, 110.0), turn_speed_mps=(3.0, 4.0), turn_lateral_mps2=2.0,
                 curve_rate_ps=1 / 90, curve_deg=(5.0, 30.0), curve_lateral_mps2=1.0),
    MotionFamily("car_town", (8.0, 14.0), (1.5, 2.5), (1.5, 3.0), (100.0, 400.0), 0.35, (10.0, 60.0),
                 turn_p=0.35, turn_deg=(90.0, 90.0), turn_speed_mps=(5.0, 7.0), turn_lateral_mps2=3.0),
    MotionFamily("car_road", (20.0, 30.0), (1.0, 2.0), (1.5, 2.5), (2000.0, 8000.0), 0.05, (10.0, 60.0),
                 curve_rate_ps=1 / 120, curve_deg=(5.0, 30.0), curve_lateral_mps2=1.0),
    MotionFamily("bus", (8.0, 12.0), (1.0, 1.5), (1.0, 1.5), (300.0, 500.0), 1.0, (20.0, 40.0),
                 turn_p=0.3, turn_deg=(90.0, 90.0), turn_speed_mps=(4.0, 5.0), turn_lateral_mps2=2.0),
)}
#: Motion family names, in the matrix's order.
MOTIONS: tuple[str, ...] = tuple(FAMILIES)


@dataclass(frozen=True)
class FieldTruth:
    """True positions of ragged tracks at their fix times (CSR: track ``s`` is ``offsets[s]:offsets[s + 1]``)."""

    motion: str
    interval_s: float
    offsets: np.ndarray
    t_ms: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    speed_mps: np.ndarray

    @property
    def n_tracks(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def new_track(self) -> np.ndarray:
        """True at each track's first fix."""
        out = np.zeros(self.t_ms.size, bool)
        out[self.offsets[:-1][self.offsets[:-1] < self.t_ms.size]] = True
        return out


@dataclass
class _Plan:
    """Speed knots (s, m/s) and turn pulses (start s, duration s, angle rad) of one track."""

    knot_t: list
    knot_v: list
    turns: list

    def hold(self, duration_s: float, v: float) -> float:
        self.knot_t.append(self.knot_t[-1] + duration_s)
        self.knot_v.append(v)
        return self.knot_t[-1]


def _leg(plan: _Plan, f: MotionFamily, rng: np.random.Generator, v: float) -> float:
    """Add one leg to ``plan`` (ramp to cruise, hold, end in a stop, a turn or nothing); its end speed."""
    cruise = rng.uniform(*f.cruise_mps)
    up = rng.uniform(*(f.accel_mps2 if cruise >= v else f.brake_mps2))
    ramp_s = abs(cruise - v) / up
    stop = rng.random() < f.stop_p
    turn = rng.random() < f.turn_p
    v_turn = rng.uniform(*f.turn_speed_mps) if turn and f.turn_speed_mps else cruise
    v_end = v_turn if turn else (0.0 if stop else cruise)
    brake = rng.uniform(*f.brake_mps2)
    brake_s = max(cruise - v_end, 0.0) / brake
    ramps_m = 0.5 * (v + cruise) * ramp_s + 0.5 * (cruise + v_end) * brake_s
    hold_s = max(rng.uniform(*f.leg_m) - ramps_m, 0.0) / cruise
    start = plan.hold(ramp_s, cruise)
    plan.hold(hold_s, cruise)
    n_curves = rng.poisson(hold_s * f.curve_rate_ps)
    if n_curves:
        angle = np.radians(rng.uniform(*f.curve_deg, n_curves)) * rng.choice((-1.0, 1.0), n_curves)
        duration = np.abs(angle) * cruise / f.curve_lateral_mps2
        begin = start + rng.uniform(0.0, 1.0, n_curves) * np.maximum(hold_s - duration, 0.0)
        plan.turns.extend(zip(begin.tolist(), duration.tolist(), angle.tolist()))
    t = plan.hold(brake_s, v_end)
    if turn:
        angle = np.radians(rng.uniform(*f.turn_deg)) * rng.choice((-1.0, 1.0))
        duration = abs(angle) * v_end / f.turn_lateral_mps2
        plan.turns.append((t, duration, angle))
        plan.hold(duration, v_end)
    if not stop:
        return v_end
    plan.hold(v_end / brake, 0.0)
    plan.hold(rng.uniform(*f.stop_s), 0.0)
    return 0.0


def _plan(f: MotionFamily, rng: np.random.Generator, duration_s: float) -> _Plan:
    plan = _Plan([0.0], [0.0], [])
    # A short track (1 s fixes) must not spend most of itself standing.
    plan.hold(min(rng.uniform(*START_REST_S), rng.uniform(*START_REST_SHARE) * duration_s), 0.0)
    v = 0.0
    if f.name == "rest":
        plan.hold(duration_s, 0.0)
        return plan
    while plan.knot_t[-1] < duration_s:
        v = _leg(plan, f, rng, v)
    return plan


def _moving_average(v: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples, the ends held at their values."""
    if width <= 1:
        return v
    half = width // 2
    padded = np.concatenate([np.full(half, v[0]), v, np.full(width - 1 - half, v[-1])])
    c = np.concatenate([[0.0], np.cumsum(padded)])
    return (c[width:] - c[:-width]) / width


def _render(plan: _Plan, n_fine: int, heading0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position (m) and speed (m/s) of a plan on the 1 s grid ``0 .. n_fine - 1``."""
    t = np.arange(n_fine) * FINE_DT_S
    v = _moving_average(np.interp(t, plan.knot_t, plan.knot_v), int(round(SMOOTH_S / FINE_DT_S)))
    v[v < 1e-9] = 0.0   # the stops are exact
    rate = np.zeros(n_fine + 1)
    if plan.turns:
        begin, duration, angle = (np.asarray(c, dtype=np.float64) for c in zip(*plan.turns))
        i0 = np.clip(np.rint(begin / FINE_DT_S).astype(np.int64), 0, n_fine)
        i1 = np.clip(np.maximum(i0 + 1, np.rint((begin + duration) / FINE_DT_S).astype(np.int64)), 0, n_fine)
        step = angle / (np.maximum(i1 - i0, 1) * FINE_DT_S)
        np.add.at(rate, i0, step)
        np.add.at(rate, i1, -step)
    heading = heading0 + np.concatenate([[0.0], np.cumsum(np.cumsum(rate)[:-2]) * FINE_DT_S])
    vx, vy = v * np.cos(heading), v * np.sin(heading)
    x = np.concatenate([[0.0], np.cumsum(0.5 * (vx[1:] + vx[:-1])) * FINE_DT_S])
    y = np.concatenate([[0.0], np.cumsum(0.5 * (vy[1:] + vy[:-1])) * FINE_DT_S])
    return x, y, v


def _sway(rng: np.random.Generator, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A subject at rest shifting on their feet: three slow sinusoids per axis, under :data:`SWAY_MAX_M` apart."""
    out = []
    for _ in range(2):
        amplitude = rng.uniform(0.02, 0.06, 3)  # sum under 0.18 m per axis, so under 0.26 m in 2-D
        period = rng.uniform(20.0, 600.0, 3)
        phase = rng.uniform(0.0, 2 * np.pi, 3)
        out.append((amplitude[:, None] * np.sin(2 * np.pi * t_s[None, :] / period[:, None] + phase[:, None]))
                   .sum(axis=0))
    return out[0], out[1]


def _check(interval_s: float, n_tracks: int, n_fixes: int) -> int:
    step = int(round(interval_s / FINE_DT_S))
    if step < 1 or abs(step * FINE_DT_S - interval_s) > 1e-9:
        raise ValueError(f"interval_s must be a whole multiple of {FINE_DT_S:g} s, got {interval_s!r}")
    if n_tracks < 1 or n_fixes < 2:
        raise ValueError("need at least one track of two fixes")
    return step


def _assemble(motion: str, interval_s: float, tracks: list) -> FieldTruth:
    counts = np.array([t[0].size for t in tracks])
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    t_ms, x, y, v = (np.concatenate([t[i] for t in tracks]) for i in range(4))
    return FieldTruth(motion, float(interval_s), offsets, t_ms.astype(np.int64), x, y, v)


def simulate_motion(motion: str, n_tracks: int, n_fixes: int, interval_s: float,
                    rng: np.random.Generator) -> FieldTruth:
    """Truth of ``n_tracks`` tracks of one motion family, ``n_fixes`` fixes each, one every ``interval_s``.

    Parameters
    ----------
    motion : str
        One of :data:`MOTIONS`.
    n_tracks, n_fixes : int
        Tracks, and fixes per track (the track lasts ``n_fixes * interval_s``).
    interval_s : float
        Reporting interval, a whole number of seconds.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    FieldTruth
        Each track starts at its own place and heading; fix ``k`` is at
        ``T0_MS + k * interval_s`` (ms).

    Examples
    --------
    >>> truth = simulate_motion("walk", 2, 100, 5.0, np.random.default_rng(1))
    >>> truth.offsets.tolist(), float(truth.speed_mps.max()) <= 1.5
    ([0, 100, 200], True)
    """
    if motion not in FAMILIES:
        raise ValueError(f"unknown motion family {motion!r}; expected one of {', '.join(MOTIONS)}")
    step = _check(interval_s, n_tracks, n_fixes)
    family = FAMILIES[motion]
    n_fine = (n_fixes - 1) * step + 1
    t_s = np.arange(n_fixes) * float(interval_s)
    tracks = []
    for _ in range(n_tracks):
        plan = _plan(family, rng, n_fine * FINE_DT_S)
        x, y, v = _render(plan, n_fine, rng.uniform(0.0, 2 * np.pi))
        x, y, v = x[::step], y[::step], v[::step]
        if motion == "rest":
            sway_x, sway_y = _sway(rng, t_s)
            x, y = x + sway_x, y + sway_y
        x0, y0 = rng.uniform(-5_000.0, 5_000.0, 2)
        tracks.append((T0_MS + np.rint(t_s * 1000.0).astype(np.int64), x + x0, y + y0, v))
    return _assemble(motion, interval_s, tracks)


def departure_truth(n_trials: int, interval_s: float, rng: np.random.Generator, *, rest_s: float = 600.0,
                    drive_s: float = 600.0, speed_mps: tuple[float, float] = (10.0, 15.0),
                    accel_mps2: tuple[float, float] = (1.5, 3.0)) -> tuple[FieldTruth, np.ndarray]:
    """Subjects who stand still for ``rest_s`` and then drive off in a straight line, one per trial.

    Each trial accelerates at a rate drawn from ``accel_mps2`` to a speed drawn
    from ``speed_mps`` and keeps it for ``drive_s``. The departure falls
    between two fixes (a random phase), as it would in the field.

    Returns
    -------
    (FieldTruth, ndarray of int64)
        The truth (motion ``"departure"``) and each trial's departure time (ms).
    """
    step = _check(interval_s, n_trials, 2)
    n_fixes = int((rest_s + drive_s) // interval_s) + 1
    n_fine = (n_fixes - 1) * step + 1
    t_s = np.arange(n_fixes) * float(interval_s)
    tracks, depart_ms = [], []
    for _ in range(n_trials):
        leave = rest_s + rng.uniform(0.0, interval_s)
        v = rng.uniform(*speed_mps)
        plan = _Plan([0.0, leave, leave + v / rng.uniform(*accel_mps2), n_fine * FINE_DT_S + 1.0],
                     [0.0, 0.0, v, v], [])
        x, y, speed = _render(plan, n_fine, rng.uniform(0.0, 2 * np.pi))
        tracks.append((T0_MS + np.rint(t_s * 1000.0).astype(np.int64), x[::step], y[::step], speed[::step]))
        depart_ms.append(T0_MS + int(round(leave * 1000.0)))
    return _assemble("departure", interval_s, tracks), np.array(depart_ms, dtype=np.int64)


def stop_durations_s(truth: FieldTruth) -> np.ndarray:
    """Length (s) of every stop (speed 0) that begins and ends inside its track, starting stand stills excluded."""
    out = []
    for s in range(truth.n_tracks):
        v = truth.speed_mps[truth.offsets[s]:truth.offsets[s + 1]]
        still = np.concatenate([[False], v == 0.0, [False]]).astype(np.int8)
        edges = np.diff(still)
        begin, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        inner = (begin > 0) & (end < v.size)
        out.append((end - begin)[inner] * truth.interval_s)
    return np.concatenate(out) if out else np.zeros(0)
