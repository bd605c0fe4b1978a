"""Home zones, labelled night outings and the exact truth of curfew, night-activity and night-stay alerts.

:func:`with_homes` gives the routine subjects of a
:func:`geomon.sim.scenarios.scenario` (kinds ``augmented``, ``open_sky``,
``urban``, ``indoor``; they sleep at home) a home zone: a disc of
``radius_m`` about where their path starts at local midnight, added to the
zones (kind ``home``, applying to that subject only) and named in the
subjects' ``home_zone_id``.

:func:`add_night_outings` sends subjects out from home in the night: drive at
:data:`DRIVE_MPS` to a point ``distance_m`` away, stay, drive back, home at the
end of the planned window. Destinations and legs keep
:data:`CLEAR_M` from every forbidden zone and from the permitted edge, so the
scenario's geofence truth stays true. Fixes in the window move to the new
true path plus noise of their own ``accuracy_m`` (satellite fixes; a cell fix
becomes an urban satellite fix, 6 m, as a phone out of doors would give).

:func:`night_truth` computes, from the true positions at the fixes (the path
is the straight line between consecutive true positions, sampled every
second), every ``curfew_breach``, ``night_activity`` and ``night_stay`` the rules imply,
whether planned or not (a routine subject home late counts):

- *away*: farther than ``night_away_m`` from the home zone;
- ``curfew_breach``: for each away run meeting a night window, true from
  ``max(run start, window start) + curfew_grace_s`` to the run's end or the
  window's end, if that start comes before both;
- ``night_activity``: per window, the distance travelled and the time away
  within it; true from the first moment either exceeds the larger of its
  floor (``night_travel_m``, ``night_away_s``) and the subject's baseline (the
  nearest-rank p95 of the same value over its previous nights, at most
  :data:`geomon.kernels.night.N_NIGHTS`, the max while fewer than 20) to the
  window's end.

- ``night_stay``: a stay (sliding method on the true positions at the fixes:
  it ends at the first fix ``dwell_radius_m`` or farther from its first fix)
  whose first fix is not within ``dwell_radius_m`` of a place of concern,
  that has spent ``night_stay_s`` inside one night window by some fix (the
  fix ending it included) by which the first fix or a member is farther than
  ``night_away_m`` from the home zone; true from the later of its first fix
  and that window's start to the fix that ends it (or the last fix).

Distance travelled is as the rule defines it: the sum of the steps between
the true positions at the fixes, a step counting once it reaches
:data:`geomon.kernels.night.TRAVEL_GATE_M` from the last counted position
(so a turn-around costs up to that much, for the detector and the labels
alike); time away is continuous.

Thresholds are the subject's level profile's (no special periods), windows the
profile's ``night_start``/``night_end`` in ``tz``. The detector sees fused
fixes, not the true path: onsets differ by up to one reporting interval, and
noise can tip a night within a few metres of a threshold either way.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
import shapely

from geomon.engine.night import night_windows
from geomon.kernels.night import N_NIGHTS, TRAVEL_GATE_M
from geomon.rules.load import Rules, default_rules
from geomon.sim.truth import event_truth

__all__ = ["CLEAR_M", "DRIVE_MPS", "Homes", "add_night_outings", "destination", "night_truth", "safe_area",
           "with_homes"]

#: Kinds of scenario subject that sleep at home.
ROUTINE_KINDS = ("augmented", "open_sky", "urban", "indoor")
#: Speed of a night outing, m/s.
DRIVE_MPS = 10.0
#: Clearance of outing legs from forbidden zones and from the permitted edge, m.
CLEAR_M = 300.0
_URBAN_SIGMA_M = 6.0
_STEP_MS = 1_000


@dataclasses.dataclass(frozen=True)
class Homes:
    """Home zones of a scenario's routine subjects.

    Attributes
    ----------
    zones : dict
        The scenario's GeoJSON FeatureCollection plus one ``home`` feature per home.
    subjects : pyarrow.Table
        The scenario's subjects plus ``home_zone_id`` (null for subjects without a home).
    centre_m : dict of str to (float, float)
        Subject id -> home centre, frame metres.
    radius_m : float
        Radius of every home disc, m.
    """

    zones: dict
    subjects: pa.Table
    centre_m: dict
    radius_m: float

    def zone_id(self, subject_id: str) -> str:
        return f"home-{subject_id}"


def with_homes(sc, radius_m: float = 30.0) -> Homes:
    """Home zones for the routine subjects of scenario ``sc`` (the true position of each one's first fix)."""
    sid = np.asarray(sc.fixes.column("subject_id").to_pylist(), dtype=object)
    first = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    centre = {sid[i]: (float(sc.true_x_m[i]), float(sc.true_y_m[i])) for i in first
              if sc.kind_of_subject[sid[i]] in ROUTINE_KINDS}
    features = list(sc.zones["features"])
    for s, (x, y) in centre.items():
        disc = shapely.Point(x, y).buffer(radius_m, quad_segs=16)
        lon, lat = sc.frame.unproject(*shapely.get_coordinates(disc).T)
        features.append({"type": "Feature",
                         "properties": {"zone_id": f"home-{s}", "kind": "home", "subject_ids": [s]},
                         "geometry": {"type": "Polygon", "coordinates": [np.column_stack([lon, lat]).tolist()]}})
    ids = sc.subjects.column("subject_id").to_pylist()
    home_ids = pa.array([f"home-{s}" if s in centre else None for s in ids], pa.string())
    subjects = sc.subjects.append_column("home_zone_id", home_ids)
    return Homes({**sc.zones, "features": features}, subjects, centre, float(radius_m))


def safe_area(sc) -> shapely.Geometry:
    """Where outings may go: :data:`CLEAR_M` inside the permitted edge and away from every forbidden zone."""
    permitted = sc.zone_geometry_m["county"]
    forbidden = [g for z, g in sc.zone_geometry_m.items() if z != "county"]
    return shapely.difference(permitted.buffer(-CLEAR_M), shapely.union_all([g.buffer(CLEAR_M) for g in forbidden]))


def destination(rng, safe: shapely.Geometry, home: tuple[float, float], distance_m: float) -> np.ndarray:
    """A point ``distance_m`` from home whose straight leg lies in ``safe`` (:func:`safe_area`)."""
    for _ in range(200):
        a = rng.uniform(0.0, 2.0 * math.pi)
        p = np.array(home) + distance_m * np.array([math.cos(a), math.sin(a)])
        if safe.contains(shapely.LineString([home, p])):
            return p
    raise ValueError(f"no clear destination {distance_m} m from home {home}")


def add_night_outings(sc, homes: Homes, plan, *, seed: int = 0):
    """Apply ``plan``, ``(subject_id, start_ms, duration_ms, distance_m)`` tuples, to scenario ``sc``.

    Each outing leaves home at ``start_ms``, drives out ``distance_m``, stays
    and drives back, arriving home at ``start_ms + duration_ms`` (which must
    leave time for both legs). The subject must be at home at ``start_ms`` and
    have a home zone.

    Returns
    -------
    (fixes, true_x_m, true_y_m)
        The scenario's fixes and true positions with the outings applied.
    """
    rng = np.random.default_rng(seed)
    sid = np.asarray(sc.fixes.column("subject_id").to_pylist(), dtype=object)
    t = sc.fixes.column("ts").cast(pa.int64()).to_numpy()
    true_x, true_y = sc.true_x_m.copy(), sc.true_y_m.copy()
    acc = sc.fixes.column("accuracy_m").to_numpy(zero_copy_only=False).astype(np.float64)
    source = np.asarray(sc.fixes.column("source").to_pylist(), dtype=object)
    moved = np.zeros(t.size, bool)
    safe = safe_area(sc)
    for subject, start, duration, distance_m in plan:
        home = homes.centre_m[subject]
        leg_ms = distance_m / DRIVE_MPS * 1000.0
        if duration < 2 * leg_ms + 60_000:
            raise ValueError(f"outing of {subject} at {start}: {duration} ms leaves no time for two legs of "
                             f"{distance_m} m at {DRIVE_MPS} m/s")
        far = destination(rng, safe, home, distance_m)
        knots_t = np.array([start, start + leg_ms, start + duration - leg_ms, start + duration], np.float64)
        inside = np.flatnonzero((sid == subject) & (t >= start) & (t < start + duration))
        true_x[inside] = np.interp(t[inside], knots_t, [home[0], far[0], far[0], home[0]])
        true_y[inside] = np.interp(t[inside], knots_t, [home[1], far[1], far[1], home[1]])
        moved[inside] = True
    cell = moved & (source == "cell")
    acc[cell] = _URBAN_SIGMA_M
    source[cell] = "gnss"
    x, y = true_x.copy(), true_y.copy()
    m = np.flatnonzero(moved)
    x[m] += rng.normal(size=m.size) * acc[m]
    y[m] += rng.normal(size=m.size) * acc[m]
    lon, lat = sc.frame.unproject(x, y)
    old_lon, old_lat = sc.fixes.column("lon").to_numpy(), sc.fixes.column("lat").to_numpy()
    fixes = sc.fixes
    for name, new in (("lon", np.where(moved, lon, old_lon)), ("lat", np.where(moved, lat, old_lat)),
                      ("source", pa.array(source.tolist(), pa.string())),
                      ("accuracy_m", pa.array(acc, fixes.schema.field("accuracy_m").type))):
        i = fixes.schema.get_field_index(name)
        fixes = fixes.set_column(i, fixes.schema.field(i), pa.array(new) if isinstance(new, np.ndarray) else new)
    return fixes, true_x, true_y


def _p95(values: list[float]) -> float:
    """The baseline of :mod:`geomon.kernels.night`: nearest-rank p95 of the last nights (max while < 20)."""
    v = sorted(values[-N_NIGHTS:])
    return v[math.ceil(0.95 * len(v)) - 1] if v else 0.0


def _runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the True runs of ``flag``."""
    edges = np.flatnonzero(np.diff(np.r_[0, flag.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _gated_travel(t_fix, x_fix, y_fix, tt) -> np.ndarray:
    """Distance travelled up to each time of ``tt`` by the fixes, counting steps of at least the travel gate."""
    counted = np.zeros(t_fix.size)
    ax = ay = None
    total = 0.0
    for i in range(t_fix.size):
        if ax is None:
            ax, ay = x_fix[i], y_fix[i]
        else:
            d = math.hypot(x_fix[i] - ax, y_fix[i] - ay)
            if d >= TRAVEL_GATE_M:
                total += d
                ax, ay = x_fix[i], y_fix[i]
        counted[i] = total
    k = np.searchsorted(t_fix, tt, side="right") - 1
    return np.where(k >= 0, counted[np.maximum(k, 0)], 0.0)


def _subject_nights(subject, profile, tz, tt, xx, yy, fixes_txy, home, radius_m):
    """Curfew and night-activity truth rows of one subject's true path sampled at ``tt`` (ms)."""
    away = np.hypot(xx - home[0], yy - home[1]) > radius_m + profile["night_away_m"]
    t_fix, x_fix, y_fix = fixes_txy
    grace = profile["curfew_grace_s"] * 1000
    rows, travels, aways = [], [], []
    for ws, we in night_windows(int(tt[0]), int(tt[-1]), profile["night_start"], profile["night_end"], tz):
        w = np.flatnonzero((tt >= ws) & (tt < we))
        if w.size == 0:
            continue
        for a, b in _runs(away[w]):
            # A run already under way as the window opens counts from the window start.
            began = int(ws) if a == 0 and (w[0] == 0 or away[w[0] - 1]) else int(tt[w[a]])
            start = began + grace
            end = int(tt[w[b - 1]]) + _STEP_MS if b < w.size else int(we)
            if start < min(end, int(we)):
                rows.append((subject, "curfew_breach", start, min(end, int(we))))
        # Travel counts from the window's first fix.
        inside = (t_fix >= ws) & (t_fix < we)
        travel = _gated_travel(t_fix[inside], x_fix[inside], y_fix[inside], tt[w])
        away_ms = np.cumsum(away[w]) * _STEP_MS
        over = (travel > max(profile["night_travel_m"], _p95(travels))) | \
               (away_ms > max(profile["night_away_s"] * 1000, _p95(aways)))
        if over.any():
            rows.append((subject, "night_activity", int(tt[w[np.argmax(over)]]), int(we)))
        if tt[-1] >= we:   # a completed night joins the baseline
            travels.append(float(travel[-1]))
            aways.append(float(away_ms[-1]))
    return rows


def _night_stays(subject, profile, tz, t, x, y, home, radius_m, concern) -> list[tuple]:
    """``night_stay`` truth rows of one subject's true positions at its fixes (times ``t``, ms)."""
    reach = profile["dwell_radius_m"]
    need = profile["night_stay_s"] * 1000
    windows = night_windows(int(t[0]), int(t[-1]), profile["night_start"], profile["night_end"], tz)
    rows, a, n = [], 0, t.size
    while a < n:
        b = a + 1
        while b < n and math.hypot(x[b] - x[a], y[b] - y[a]) < reach:
            b += 1
        last = min(b, n - 1)   # the fix ending the stay counts: the stay lasted until it
        # Away by each proving fix: the first fix or a member up to it (the ending fix is no member).
        away = np.maximum.accumulate(np.hypot(x[a:b] - home[0], y[a:b] - home[1]) > radius_m + profile["night_away_m"])
        away_by = away[np.minimum(np.arange(a + 1, last + 1), b - 1) - a]
        at_concern = concern is not None and shapely.dwithin(concern, shapely.Point(x[a], y[a]), reach).any()
        if away.any() and not at_concern:
            for ws, we in windows:
                onset = max(int(t[a]), int(ws))
                proof = (np.minimum(t[a + 1:last + 1], we) - onset >= need) & away_by
                if proof.any():
                    rows.append((subject, "night_stay", onset, int(t[last])))
                    break
        a = b
    return rows


def night_truth(fixes: pa.Table, true_x_m: np.ndarray, true_y_m: np.ndarray, homes: Homes, *,
                rules: Rules | None = None, tz: str = "Asia/Shanghai", concern_m=None) -> pa.Table:
    """Every curfew breach and night activity the true paths imply, in :data:`geomon.sim.truth.TRUTH_SCHEMA`.

    ``fixes`` sorted by subject then time, with the true position of each fix
    in ``true_x_m``/``true_y_m``; subjects without a home in ``homes`` get no
    rows for curfew and are not judged for night activity (their travel alone
    could be, but the scenario's subjects without homes do not sleep anywhere).
    ``concern_m``: the places of concern (shapely geometries, frame metres);
    a stay at one is ``dwell_concern``, not ``night_stay``.
    """
    concern = None if concern_m is None else np.asarray(list(concern_m), dtype=object)
    rules = rules or default_rules()
    level = dict(zip(homes.subjects.column("subject_id").to_pylist(), homes.subjects.column("level").to_pylist()))
    sid = np.asarray(fixes.column("subject_id").to_pylist(), dtype=object)
    t = fixes.column("ts").cast(pa.int64()).to_numpy()
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        s = sid[a]
        if s not in homes.centre_m:
            continue
        tt = np.arange(t[a], t[b - 1] + 1, _STEP_MS, dtype=np.int64)
        xx = np.interp(tt, t[a:b], true_x_m[a:b])
        yy = np.interp(tt, t[a:b], true_y_m[a:b])
        profile = rules.profile(level[s])
        rows += _subject_nights(s, profile, tz, tt, xx, yy, (t[a:b], true_x_m[a:b], true_y_m[a:b]),
                                homes.centre_m[s], homes.radius_m)
        rows += _night_stays(s, profile, tz, t[a:b], true_x_m[a:b], true_y_m[a:b], homes.centre_m[s],
                             homes.radius_m, concern)
    return event_truth(rows)
