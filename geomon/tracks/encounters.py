"""Encounters between tracked persons (`geomon.encounters`): who was within D metres of whom, for how long, where.

:func:`encounters` is the public entry point over a fixes table; the search is
:mod:`geomon.kernels.encounters` (grid hashing per time slice, exact
stretches on straight-line interpolation between fixes).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numba
import numpy as np
import pyarrow as pa

from geomon.geo.crs import transverse_mercator
from geomon.kernels import encounters as _enc
from geomon.schema import TS_TYPE
from geomon.tracks.fusion import trusted_sigma_m
from geomon.tracks.stays import fix_tracks, positive_number, track_table

__all__ = ["ENCOUNTER_SCHEMA", "encounters"]

#: One row per encounter.
ENCOUNTER_SCHEMA = pa.schema([
    pa.field("subject_a", pa.string(), nullable=False),
    pa.field("subject_b", pa.string(), nullable=False),
    pa.field("started_at", TS_TYPE, nullable=False),
    pa.field("ended_at", TS_TYPE, nullable=False),
    pa.field("min_distance_m", pa.float64(), nullable=False),
    pa.field("lon", pa.float64(), nullable=False),
    pa.field("lat", pa.float64(), nullable=False),
])


def encounters(fixes, distance_m: float, min_duration_s: float, max_gap_s: float = 120.0, *,
               sure_p: float | None = None, slice_s: float | None = None, cell_m: float | None = None) -> pa.Table:
    """Pairs of subjects within ``distance_m`` of each other for at least ``min_duration_s``.

    Parameters
    ----------
    fixes : FixLoad or pyarrow.Table
        ``subject_id``, ``ts``, ``lon``/``lat`` (WGS84 degrees), in any row
        order; positionless and duplicate rows are ignored, as by
        :func:`geomon.staypoints`. A table from :func:`geomon.fuse` is read
        at its fused positions (``fused_lon``/``fused_lat``), with their
        uncertainty for ``sure_p``: the fused 1-sigma, but never less than the
        fix's own (``sigma_m``; 2.5 times it for cell fixes, whose errors over
        a stay are one bias, :func:`geomon.tracks.fusion.trusted_sigma_m`).
    distance_m : float
        Within means at most this far apart (m, > 0).
    min_duration_s : float
        Least duration of an encounter (s, >= 0).
    max_gap_s : float
        Between two fixes of a subject at most this far apart (s) it moves in
        a straight line; across a longer silence it is nowhere, which ends any
        encounter (default 120 s: a few missed fixes are tolerated).
    sure_p : float, optional
        With fused input, count two subjects as within only when they are
        sure to be: at most ``distance_m - z * hypot(sigma_a, sigma_b)`` apart,
        ``z`` the ``sure_p`` quantile of the normal (1.645 at 0.95) and each
        sigma the larger of its segment's two fixes'. Positions resting on
        vague fixes (cell fixes indoors) then make no encounter. None: the
        plain distance.
    slice_s, cell_m : float, optional
        Time slice and grid cell of the search (defaults 120 s and
        ``max(5 distance_m, 150 m)``); they change the speed, never the result.
        The slices are shared out over numba's threads.

    Returns
    -------
    pyarrow.Table
        :data:`ENCOUNTER_SCHEMA`, sorted by ``subject_a``, ``subject_b``,
        ``started_at``, with ``subject_a < subject_b``: each maximal stretch of
        time within (from the first to the last moment within, at millisecond
        resolution), the closest approach in it and the midpoint of the two
        positions then.

    Examples
    --------
    Two people walking towards each other along parallel streets 10 m apart:

    >>> import pyarrow as pa, geomon
    >>> t = [1_700_000_000_000 + 10_000 * k for k in range(21)]
    >>> east = [117.0 + 1e-5 * (k - 10) for k in range(21)]
    >>> west = [117.0 - 1e-5 * (k - 10) for k in range(21)]
    >>> fixes = pa.table({"subject_id": ["a"] * 21 + ["b"] * 21,
    ...                   "ts": pa.array(t + t, pa.timestamp("ms", tz="UTC")),
    ...                   "lon": east + west, "lat": [36.65] * 21 + [36.65009] * 21})
    >>> row = geomon.encounters(fixes, distance_m=20, min_duration_s=30).to_pylist()[0]
    >>> row["subject_a"], row["subject_b"], round(row["min_distance_m"], 1)
    ('a', 'b', 10.0)
    """
    table = track_table(fixes)
    distance_m = positive_number("distance_m", distance_m)
    min_duration_s = float(min_duration_s)
    if not math.isfinite(min_duration_s) or min_duration_s < 0:
        raise ValueError(f"min_duration_s must be a finite number >= 0, not {min_duration_s!r}")
    max_gap_s = positive_number("max_gap_s", max_gap_s)
    slice_s = positive_number("slice_s", 120.0 if slice_s is None else slice_s)
    cell_m = positive_number("cell_m", max(5.0 * distance_m, 150.0) if cell_m is None else cell_m)

    z = 0.0
    if sure_p is not None:
        if not 0.5 <= float(sure_p) < 1.0:
            raise ValueError(f"sure_p must be in [0.5, 1), not {sure_p!r}")
        if "var_x_m2" not in table.column_names:
            raise ValueError("sure_p needs positions with an uncertainty: pass a table from geomon.fuse")
        z = NormalDist().inv_cdf(float(sure_p))
    if "fused_lon" in table.column_names and "fused_lat" in table.column_names:
        fused = np.sqrt(0.5 * (table.column("var_x_m2").to_numpy(zero_copy_only=False)
                               + table.column("var_y_m2").to_numpy(zero_copy_only=False)))
        accuracy = table.column("sigma_m").to_numpy(zero_copy_only=False) if "sigma_m" in table.column_names \
            else np.zeros(table.num_rows)
        satellite = np.asarray(table.column("source").to_pylist(), dtype=object) == "gnss" \
            if "source" in table.column_names else np.ones(table.num_rows, bool)
        sigma = trusted_sigma_m(fused, accuracy, satellite)
        table = pa.table({"subject_id": table.column("subject_id"), "ts": table.column("ts"),
                          "lon": table.column("fused_lon"), "lat": table.column("fused_lat")})
    else:
        sigma = np.zeros(table.num_rows)
    subject, offsets, t_ms, lon, lat, sigma = fix_tracks(table, sigma)
    if t_ms.size == 0:
        return ENCOUNTER_SCHEMA.empty_table()
    # A Transverse Mercator frame on the data's middle meridian: scale error below 0.1 % within 300 km of it.
    frame = transverse_mercator(float(np.round(0.5 * (lon.min() + lon.max()), 6)))
    x, y = frame.project(lon, lat)
    t0 = int(t_ms.min())
    t_s = (t_ms - t0) / 1000.0
    iv = _enc.encounter_intervals(offsets, t_s, np.ascontiguousarray(x, np.float64),
                                  np.ascontiguousarray(y, np.float64), distance_m, max_gap_s, slice_s, cell_m,
                                  threads=numba.get_num_threads(), sigma=np.nan_to_num(sigma, nan=np.inf), z=z)
    iv = iv[np.lexsort((iv[:, _enc.E_START], iv[:, _enc.E_B], iv[:, _enc.E_A]))]
    iv = _enc.merge_intervals(iv)
    start_ms = t0 + np.round(iv[:, _enc.E_START] * 1000.0).astype(np.int64)
    end_ms = t0 + np.round(iv[:, _enc.E_END] * 1000.0).astype(np.int64)
    keep = end_ms - start_ms >= round(min_duration_s * 1000.0)
    iv, start_ms, end_ms = iv[keep], start_ms[keep], end_ms[keep]
    ids = subject.take(pa.array(offsets[:-1], pa.int64()))
    mid_lon, mid_lat = frame.unproject(iv[:, _enc.E_X], iv[:, _enc.E_Y])
    return pa.table([
        ids.take(pa.array(iv[:, _enc.E_A].astype(np.int64))),
        ids.take(pa.array(iv[:, _enc.E_B].astype(np.int64))),
        pa.array(start_ms, pa.int64()).cast(TS_TYPE),
        pa.array(end_ms, pa.int64()).cast(TS_TYPE),
        pa.array(iv[:, _enc.E_DMIN], pa.float64()),
        pa.array(np.asarray(mid_lon, np.float64), pa.float64()),
        pa.array(np.asarray(mid_lat, np.float64), pa.float64()),
    ], schema=ENCOUNTER_SCHEMA)
