"""Stay points by the sliding method of Li et al. (2008), with trackintel's reading of it.

A track is one subject's fixes, sorted by time (ragged layout: flat arrays plus
CSR ``offsets``). The method keeps an *anchor* fix and walks forward:

- a step between consecutive fixes longer than the gap threshold discards the
  open candidate and makes the fix after the gap the new anchor;
- the first fix at a ground distance of *at least* the distance threshold from
  the anchor closes the candidate. It is a stay point if that fix's time minus
  the anchor's is at least the time threshold; either way that fix becomes the
  new anchor. The stay's members are the anchor up to the fix before the
  closing one; it starts at the anchor's time and finishes at the closing
  fix's time;
- at the end of the track the open candidate is dropped, or, when asked for,
  kept if the last fix's time minus the anchor's is at least the time
  threshold (members up to and including the last fix, which is also its
  finish).

The walk is one pass: every fix is compared with the anchor only, so the cost
is linear in the fixes whatever the thresholds.

Distances are chords between Earth-centred (ECEF) positions on an ellipsoid
(WGS84 by default), computed per block of fixes with polynomial sine/cosine so
that the loop vectorises. The distance threshold ``D`` is compared as the chord
``2 R sin(D / 2R)`` of a sphere of the ellipsoid's mean radius ``R``; so the
ground distance the method acts on is ``2 R asin(chord / 2R)``, which is within
2e-7 of the geodesic up to 100 km and 2e-5 up to 1,000 km anywhere
(``tests/kernels/test_staypoints.py`` measures it against ``pyproj.Geod``).
No map projection is involved, so data spanning several UTM zones needs no
care. With ``geographic=False`` the coordinates are planar metres instead.

Notes
-----
Li, Zheng, Xie, Chen, Liu, Ma, "Mining user similarity based on location
history", ACM SIGSPATIAL GIS 2008, sec. 3.1 (stay point detection).
trackintel's ``generate_staypoints(method="sliding")`` (trackintel 1.4,
``preprocessing/positionfixes.py``, ``_generate_staypoints_sliding_user``)
fixes the details followed here; docs/staypoints.md lists them.
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit, jit_inline
from geomon.kernels._pool import split

#: WGS84 semi-major axis (m) and flattening.
WGS84_A_M = 6378137.0
WGS84_F = 1.0 / 298.257223563
#: No gap rule: a step longer than this never occurs.
NO_GAP_MS = np.iinfo(np.int64).max
#: Fixes whose ECEF coordinates are computed at once; 3 x 4 KiB stay in L1.
BLOCK = 512

_DEG = math.pi / 180.0
# Taylor coefficients of sin (to x^21) and cos (to x^22): on [-pi/2, pi/2] the
# first omitted terms are below 1e-17, under the rounding of the evaluation.
_S1, _S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17, _S19, _S21 = (
    (-1.0) ** k / math.factorial(2 * k + 1) for k in range(11))
_C0, _C2, _C4, _C6, _C8, _C10, _C12, _C14, _C16, _C18, _C20, _C22 = (
    (-1.0) ** k / math.factorial(2 * k) for k in range(12))
# Binomial series of (1 - v)^(-1/2) to v^8: for v = e^2 sin^2(lat) <= 0.0067 (WGS84) the
# rest is below 1e-20. A division would keep the loop from vectorising (numba checks divisors).
_R1, _R2, _R3, _R4, _R5, _R6, _R7, _R8 = (math.comb(2 * k, k) / 4.0**k for k in range(1, 9))
#: Largest flattening the series serves to full precision (WGS84's is 0.00335).
MAX_FLATTENING = 0.01


@jit_inline
def _sincos(x):
    """``(sin x, cos x)`` for ``|x| <= pi/2``, within a few 1e-16; unlike libm's, a loop of it vectorises."""
    u = x * x
    s = _S19 + u * _S21
    s = _S17 + u * s
    s = _S15 + u * s
    s = _S13 + u * s
    s = _S11 + u * s
    s = _S9 + u * s
    s = _S7 + u * s
    s = _S5 + u * s
    s = _S3 + u * s
    s = x * (_S1 + u * s)
    c = _C20 + u * _C22
    c = _C18 + u * c
    c = _C16 + u * c
    c = _C14 + u * c
    c = _C12 + u * c
    c = _C10 + u * c
    c = _C8 + u * c
    c = _C6 + u * c
    c = _C4 + u * c
    c = _C2 + u * c
    c = _C0 + u * c
    return s, c


@jit
def ecef_m(lon_deg, lat_deg, a_m=WGS84_A_M, f=WGS84_F):
    """Earth-centred Cartesian coordinates (m) of points on an ellipsoid's surface.

    Parameters
    ----------
    lon_deg, lat_deg : float64 arrays
        Geodetic degrees, ``|lon| <= 180``, ``|lat| <= 90``.
    a_m, f : float
        Semi-major axis (m) and flattening (0 for a sphere of radius ``a_m``;
        at most :data:`MAX_FLATTENING`).

    Returns
    -------
    x_m, y_m, z_m : float64 arrays
        The same coordinates the stay-point kernel computes, block by block.
    """
    n = lon_deg.size
    x = np.empty(n)
    y = np.empty(n)
    z = np.empty(n)
    _ecef_block(lon_deg, lat_deg, 0, n, a_m, f * (2.0 - f), x, y, z)
    return x, y, z


@jit_inline
def _ecef_block(lon, lat, lo, hi, a_m, e2, x, y, z):
    """ECEF of fixes ``lo..hi-1`` into ``x, y, z[0 : hi - lo]``; longitude through its half angle."""
    for i in range(lo, hi):
        sp, cp = _sincos(lat[i] * _DEG)
        sh, ch = _sincos(lon[i] * (0.5 * _DEG))
        v = e2 * sp * sp
        q = _R7 + v * _R8
        q = _R6 + v * q
        q = _R5 + v * q
        q = _R4 + v * q
        q = _R3 + v * q
        q = _R2 + v * q
        q = _R1 + v * q
        n_m = a_m * (1.0 + v * q)  # prime vertical radius of curvature, a / sqrt(1 - v)
        r = n_m * cp
        x[i - lo] = r * ((ch - sh) * (ch + sh))
        y[i - lo] = r * (2.0 * sh * ch)
        z[i - lo] = n_m * (1.0 - e2) * sp


@jit_inline
def _planar_block(px, py, lo, hi, x, y, z):
    for i in range(lo, hi):
        x[i - lo] = px[i]
        y[i - lo] = py[i]
        z[i - lo] = 0.0


@jit
def chord_threshold_m(dist_threshold_m, a_m=WGS84_A_M, f=WGS84_F):
    """The chord that a ground distance ``dist_threshold_m`` spans on a sphere of the ellipsoid's mean radius.

    Infinite when no two points of the sphere are that far apart.
    """
    r_m = a_m * (1.0 - f / 3.0)
    half_angle = dist_threshold_m / (2.0 * r_m)
    if half_angle >= 0.5 * math.pi:
        return math.inf
    return 2.0 * r_m * math.sin(half_angle)


@jit
def _centroid(lon, lat, first, stop, geographic):
    """Mean position of fixes ``first..stop-1``; longitudes taken within 180 degrees of the first one's."""
    lon0 = lon[first]
    lat0 = lat[first]
    sum_dlon = 0.0
    sum_dlat = 0.0
    for j in range(first, stop):
        d = lon[j] - lon0
        if geographic:
            if d > 180.0:
                d -= 360.0
            elif d < -180.0:
                d += 360.0
        sum_dlon += d
        sum_dlat += lat[j] - lat0
    n = stop - first
    c_lon = lon0 + sum_dlon / n
    if geographic:
        if c_lon > 180.0:
            c_lon -= 360.0
        elif c_lon < -180.0:
            c_lon += 360.0
    return c_lon, lat0 + sum_dlat / n


@jit
def _scan_track(lo, hi, t_ms, lon, lat, chord2, time_ms, gap_ms, include_last, geographic, a_m, e2,
                emit, slot, out_first, out_n, out_finished_ms, out_lon, out_lat):
    """Stay points of fixes ``lo..hi-1``: their number, and (``emit``) written from output row ``slot`` on."""
    found = 0
    if hi - lo < 2:
        return 0
    size = min(BLOCK, hi - lo)
    bx = np.empty(size)
    by = np.empty(size)
    bz = np.empty(size)
    anchor = lo
    ax = ay = az = 0.0
    t_anchor = t_prev = t_ms[lo]
    for b0 in range(lo, hi, BLOCK):
        b1 = min(b0 + BLOCK, hi)
        if geographic:
            _ecef_block(lon, lat, b0, b1, a_m, e2, bx, by, bz)
        else:
            _planar_block(lon, lat, b0, b1, bx, by, bz)
        j0 = 0
        if b0 == lo:  # the first fix is the first anchor
            ax, ay, az = bx[0], by[0], bz[0]
            j0 = 1
        for j in range(j0, b1 - b0):
            k = b0 + j
            t = t_ms[k]
            dx = bx[j] - ax
            dy = by[j] - ay
            dz = bz[j] - az
            gap = t - t_prev > gap_ms
            t_prev = t
            # one rarely taken branch per fix: a gap, or a fix outside
            if gap | (dx * dx + dy * dy + dz * dz >= chord2):
                if not gap and t - t_anchor >= time_ms:
                    if emit:
                        _write(slot + found, anchor, k, t, lon, lat, geographic,
                               out_first, out_n, out_finished_ms, out_lon, out_lat)
                    found += 1
                # the closing fix, or the fix after a gap (the open candidate is then discarded), is the anchor
                anchor = k
                ax, ay, az = bx[j], by[j], bz[j]
                t_anchor = t
    if include_last and t_prev - t_anchor >= time_ms:
        if emit:
            _write(slot + found, anchor, hi, t_prev, lon, lat, geographic,
                   out_first, out_n, out_finished_ms, out_lon, out_lat)
        found += 1
    return found


@jit_inline
def _write(row, first, stop, finished_ms, lon, lat, geographic, out_first, out_n, out_finished_ms, out_lon, out_lat):
    out_first[row] = first
    out_n[row] = stop - first
    out_finished_ms[row] = finished_ms
    out_lon[row], out_lat[row] = _centroid(lon, lat, first, stop, geographic)


@jit
def _count(offsets, t_ms, lon, lat, chord2, time_ms, gap_ms, include_last, geographic, a_m, e2, counts):
    """``counts[s]``: the stay points of track ``s``."""
    none_i = np.empty(0, np.int64)
    none_f = np.empty(0, np.float64)
    for s in range(offsets.size - 1):
        counts[s] = _scan_track(offsets[s], offsets[s + 1], t_ms, lon, lat, chord2, time_ms, gap_ms, include_last,
                                geographic, a_m, e2, np.bool_(False), np.int64(0), none_i, none_i, none_i, none_f,
                                none_f)


@jit
def _fill(offsets, t_ms, lon, lat, chord2, time_ms, gap_ms, include_last, geographic, a_m, e2, slots, counts,
          first, n_fixes, finished_ms, c_lon, c_lat):
    """Track ``s`` writes its stay points from row ``slots[s]`` on (room up to ``slots[s + 1]``), and their number
    into ``counts[s]``."""
    for s in range(offsets.size - 1):
        counts[s] = _scan_track(offsets[s], offsets[s + 1], t_ms, lon, lat, chord2, time_ms, gap_ms, include_last,
                                geographic, a_m, e2, np.bool_(True), slots[s], first, n_fixes, finished_ms, c_lon,
                                c_lat)


def room_bound(offsets, t_ms, time_threshold_ms):
    """Most stay points each track can hold: ``min(n - 1, span // time_threshold_ms)``.

    Every stay point has its own anchor among a track's first ``n - 1`` fixes,
    lasts at least the time threshold, and overlaps the next one at most at an
    instant, so both numbers bound the count.
    """
    n = np.diff(offsets)
    has = n > 0
    span = np.zeros(n.size, np.int64)
    span[has] = t_ms[offsets[1:][has] - 1] - t_ms[offsets[:-1][has]]
    return np.minimum(np.maximum(n - 1, 0), span // np.int64(time_threshold_ms))


def find_staypoints(offsets, t_ms, lon, lat, dist_threshold_m, time_threshold_ms, gap_threshold_ms=NO_GAP_MS,
                    include_last=False, geographic=True, a_m=WGS84_A_M, f=WGS84_F, two_pass=None):
    """Stay points of every track by the sliding method (see the module docstring for the rules).

    Parameters
    ----------
    offsets : int64 array (n_tracks + 1,)
        CSR offsets: track ``s`` is fixes ``offsets[s]:offsets[s + 1]``.
    t_ms : int64 array
        Fix times, epoch milliseconds, non-decreasing within each track.
    lon, lat : float64 arrays
        Finite geodetic degrees on the ellipsoid ``(a_m, f)``; or, with
        ``geographic=False``, planar x and y in metres.
    dist_threshold_m : float
        Ground distance (m) from the anchor at which a fix is outside (``>=``).
    time_threshold_ms : int
        Least duration (ms) of a stay point (``>=``); positive.
    gap_threshold_ms : int
        A step between consecutive fixes longer than this (``>``) is a gap;
        :data:`NO_GAP_MS` for none.
    include_last : bool
        Keep the open candidate at the end of a track if it lasted long enough.
    geographic : bool
        Coordinates are degrees (distances are ellipsoidal chords, as in the
        module docstring) rather than planar metres.
    a_m, f : float
        Semi-major axis and flattening of the ellipsoid (WGS84; ``f = 0`` for
        a sphere of radius ``a_m``; at most :data:`MAX_FLATTENING`).
    two_pass : bool, optional
        Count the stay points first and then write them (two passes), or write
        them in one pass into the room :func:`room_bound` gives each track and
        compact. By default one pass when that room is at most an eighth of
        the fixes, as with realistic thresholds. The results are the same.

    Returns
    -------
    stay_offsets : int64 array (n_tracks + 1,)
        Track ``s``'s stay points are rows ``stay_offsets[s]:stay_offsets[s + 1]``
        of the arrays below, in time order.
    first : int64 array
        Index (into the fix arrays) of each stay's anchor, its first member.
    n_fixes : int64 array
        Members: fixes ``first .. first + n_fixes - 1``.
    finished_ms : int64 array
        The closing fix's time (the last member's with ``include_last``). The
        start is ``t_ms[first]``.
    lon, lat : float64 arrays
        Mean position of the members (longitudes averaged within 180 degrees
        of the anchor's, so a stay on the antimeridian is not split).

    Examples
    --------
    Planar metres, 10 m threshold, 60 s least duration; two tracks:

    >>> import numpy as np
    >>> offsets = np.array([0, 5, 7])
    >>> t_ms = np.array([0, 30_000, 60_000, 90_000, 120_000, 0, 30_000])
    >>> x = np.array([0.0, 2.0, 3.0, 20.0, 40.0, 0.0, 50.0])
    >>> stays = find_staypoints(offsets, t_ms, x, np.zeros(7), 10.0, 60_000, geographic=False)
    >>> stay_offsets, first, n_fixes, finished_ms, lon, lat = stays
    >>> stay_offsets.tolist(), first.tolist(), n_fixes.tolist(), finished_ms.tolist(), lon.tolist()
    ([0, 1, 1], [0], [3], [90000], [1.6666666666666667])
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    t_ms = np.ascontiguousarray(t_ms, dtype=np.int64)
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != t_ms.size:
        raise ValueError("offsets must be CSR offsets from 0 to the number of fixes")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must not decrease")
    if not (lon.shape == lat.shape == t_ms.shape):
        raise ValueError("t_ms, lon and lat must have one value per fix")
    if not 0.0 <= f <= MAX_FLATTENING:
        raise ValueError(f"flattening {f!r} is outside [0, {MAX_FLATTENING}]")
    if not time_threshold_ms > 0:
        raise ValueError(f"time_threshold_ms must be positive, got {time_threshold_ms!r}")
    chord = chord_threshold_m(float(dist_threshold_m), a_m, f) if geographic else float(dist_threshold_m)
    args = (offsets, t_ms, lon, lat, chord * chord, np.int64(time_threshold_ms), np.int64(gap_threshold_ms),
            bool(include_last), bool(geographic), float(a_m), float(f * (2.0 - f)))
    room = room_bound(offsets, t_ms, time_threshold_ms)
    m = offsets.size - 1
    # Tracks are independent: chunks of them run on threads, each writing its own rows.
    if two_pass or (two_pass is None and room.sum() > t_ms.size // 8):
        room = np.zeros(m, np.int64)
        split(m, lambda lo, hi: _count(offsets[lo:hi + 1], *args[1:], room[lo:hi]), min_units=64)
    slots = np.zeros(offsets.size, np.int64)
    np.cumsum(room, out=slots[1:])
    k = int(slots[m])
    counts = np.zeros(m, np.int64)
    stays = [np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k), np.empty(k)]
    split(m, lambda lo, hi: _fill(offsets[lo:hi + 1], *args[1:], slots[lo:hi + 1], counts[lo:hi], *stays),
          min_units=64)
    stay_offsets = np.zeros(offsets.size, np.int64)
    np.cumsum(counts, out=stay_offsets[1:])
    if stay_offsets[-1] != slots[-1]:
        rows = np.repeat(slots[:-1] - stay_offsets[:-1], counts) + np.arange(stay_offsets[-1])
        stays = [a[rows] for a in stays]
    return (stay_offsets, *stays)
