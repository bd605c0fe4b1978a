"""The sliding stay-point method read literally, one fix at a time: the slow reference of geomon's kernel.

It follows trackintel 1.4's ``_generate_staypoints_sliding_user``
(``preprocessing/positionfixes.py``) line by line, with times in milliseconds
and thresholds in seconds, and :func:`reference_staypoints` does what
``geomon.staypoints`` promises with plain Python and ``pyproj.Geod``.
:data:`PLACES` are the starting points the property tests draw.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from hypothesis import strategies as st
from pyproj import Geod

GEOD = Geod(ellps="WGS84")

CHINA_LON, CHINA_LAT = (73.5, 134.8), (18.0, 53.6)
#: Places to start from: anywhere in China, near UTM zone borders (multiples of 6 degrees, minus 180),
#: in the far north (Mohe) and in the far south (the South China Sea).
PLACES = st.one_of(
    st.tuples(st.floats(*CHINA_LON), st.floats(*CHINA_LAT)),
    st.tuples(st.sampled_from([78.0, 84.0, 90.0, 102.0, 108.0, 114.0, 120.0, 126.0, 132.0]).map(
        lambda b: b - 0.0005), st.floats(*CHINA_LAT)),
    st.tuples(st.floats(*CHINA_LON), st.floats(52.0, 53.6)),
    st.tuples(st.floats(*CHINA_LON), st.floats(3.8, 18.5)),
)


def sliding(t_ms: list[int], outside: Callable[[int, int], bool], time_threshold_ms: float,
            gap_threshold_ms: float | None, include_last: bool) -> list[tuple[int, int, int]]:
    """``(first, stop, finished_ms)`` of each stay of one time-sorted track.

    ``outside(i, j)``: fix ``j`` is at least the distance threshold from fix ``i``.
    Members are fixes ``first .. stop - 1``.
    """
    stays = []
    start = curr = 0
    for curr in range(1, len(t_ms)):
        if gap_threshold_ms is not None and t_ms[curr] - t_ms[curr - 1] > gap_threshold_ms:
            start = curr
            continue
        if outside(start, curr):
            if t_ms[curr] - t_ms[start] >= time_threshold_ms:
                stays.append((start, curr, t_ms[curr]))
            start = curr
    if include_last and t_ms and t_ms[curr] - t_ms[start] >= time_threshold_ms:
        stays.append((start, len(t_ms), t_ms[curr]))
    return stays


def mean_position(xs: list[float], ys: list[float], geographic: bool) -> tuple[float, float]:
    """Mean of the points; longitudes first brought within 180 degrees of the first one."""
    if geographic:
        xs = [x - 360.0 if x - xs[0] > 180.0 else x + 360.0 if x - xs[0] < -180.0 else x for x in xs]
    x = statistics.fmean(xs)
    if geographic and abs(x) > 180.0:
        x -= math.copysign(360.0, x)
    return x, statistics.fmean(ys)


def reference_staypoints(rows: list[dict], dist_threshold_m: float, time_threshold_s: float,
                         gap_threshold_s: float | None, include_last: bool) -> tuple[list[dict], float]:
    """What ``geomon.staypoints`` returns for ``rows`` (``table.to_pylist()``), and the margin of its distances.

    Rows equal in every column to an earlier row and rows without a position
    are dropped; each subject's rows are sorted stably by ``ts``; distances are
    WGS84 geodesics. The margin is the smallest ``|d / D - 1|`` over the
    distances ``d`` compared with the threshold ``D``: where it is tiny, the
    kernel's ellipsoidal chord may rightly fall on the other side.
    """
    unique = []
    for row in rows:
        if row not in unique:
            unique.append(row)
    located = [r for r in unique if r["lon"] is not None and r["lat"] is not None
               and math.isfinite(r["lon"]) and math.isfinite(r["lat"])]
    margin = math.inf
    out = []
    for subject in sorted({r["subject_id"] for r in located}):
        track = sorted((r for r in located if r["subject_id"] == subject), key=lambda r: r["ts"])
        t_ms = [round(r["ts"].timestamp() * 1000) for r in track]

        def outside(i, j):
            nonlocal margin
            d = GEOD.inv(track[i]["lon"], track[i]["lat"], track[j]["lon"], track[j]["lat"])[2]
            margin = min(margin, abs(d / dist_threshold_m - 1.0))
            return d >= dist_threshold_m

        gap_ms = None if gap_threshold_s is None else gap_threshold_s * 1000.0
        for first, stop, finished in sliding(t_ms, outside, time_threshold_s * 1000.0, gap_ms, include_last):
            members = track[first:stop]
            lon, lat = mean_position([r["lon"] for r in members], [r["lat"] for r in members], True)
            out.append({"subject_id": subject, "started_at_ms": t_ms[first], "finished_at_ms": finished,
                        "lon": lon, "lat": lat, "n_fixes": stop - first})
    return out, margin
