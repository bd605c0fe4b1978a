"""Chinese web-map datums: WGS84 <-> GCJ-02 <-> BD-09, vectorised over float64 arrays.

GCJ-02 (the "Mars" datum of Chinese web maps, AMap/Gaode, Tencent, Google China)
is WGS84 plus a deliberately obfuscating, smooth offset of a few hundred metres.
BD-09 (Baidu) adds a second, smaller distortion on top of GCJ-02. Phone apps and
map SDKs in China often report positions in one of these, so loaders convert them
back to WGS84 before projecting.

Notes
-----
The forward transforms follow the public reimplementation of the GCJ-02 offset
(Krasovsky 1940 ellipsoid, ``a = 6378245.0 m``, ``ee = 0.00669342162296594323``,
the ``transformlat``/``transformlon`` polynomials evaluated at
``(lon - 105, lat - 35)``) and Baidu's published GCJ-02 -> BD-09 formula
(``x_pi = pi * 3000 / 180``), as found in e.g. wandergis/coordTransform_py,
googollee/eviltransform and hujiulong/gcoord.

Neither transform has a closed-form inverse. Both inverses here solve
``forward(p) = q`` by fixed-point iteration ``p <- p - (forward(p) - q)``, which
converges because the offsets vary slowly (their Jacobian is ~1e-3 of identity),
so each iteration gains about three digits. The iteration stops when the residual
is below ``tol_deg`` in both coordinates (default 1e-9 deg, about 0.1 mm) or after
``max_iter`` iterations.

Points outside the usual China bounding box (lon outside [72.004, 137.8347] or
lat outside [0.8293, 55.8271]) are left unchanged by every transform here: the
public algorithm does not offset them, and geomon treats all Chinese datums as
equal to WGS84 there (as eviltransform does also for BD-09). The box test of the
inverse is made on its input, as every public implementation does. NaN in either
coordinate gives NaN in both outputs.

All drivers accept read-only arrays (Arrow and DuckDB buffers) and return new
arrays; they take 1-D arrays of equal length (the caller ravels and broadcasts).
"""

from __future__ import annotations

import math

import numpy as np

from geomon.kernels._jit import jit

#: Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, in metres.
KRASOVSKY_A_M = 6378245.0
#: First eccentricity squared of the same ellipsoid, as published with the algorithm.
KRASOVSKY_EE = 0.00669342162296594323
#: Angular constant of the BD-09 formula.
BD09_X_PI = math.pi * 3000.0 / 180.0
#: Default stopping residual of the iterated inverses, in degrees (~0.1 mm).
INVERSE_TOL_DEG = 1e-9
#: Default iteration cap of the inverses; convergence normally takes 3-5 steps.
INVERSE_MAX_ITER = 30

CHINA_MIN_LON_DEG = 72.004
CHINA_MAX_LON_DEG = 137.8347
CHINA_MIN_LAT_DEG = 0.8293
CHINA_MAX_LAT_DEG = 55.8271


@jit
def out_of_china(lon_deg, lat_deg):
    """Whether a point lies outside the box where GCJ-02 and BD-09 offset positions.

    Parameters
    ----------
    lon_deg, lat_deg : float
        Longitude and latitude in degrees (any of the datums here).

    Returns
    -------
    bool
        True outside lon [72.004, 137.8347] x lat [0.8293, 55.8271]. NaN is
        reported as inside; callers handle NaN before.
    """
    return (
        lon_deg < CHINA_MIN_LON_DEG
        or lon_deg > CHINA_MAX_LON_DEG
        or lat_deg < CHINA_MIN_LAT_DEG
        or lat_deg > CHINA_MAX_LAT_DEG
    )


@jit
def _transform_lat_m(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


@jit
def _transform_lon_m(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


@jit
def gcj02_offset_deg(lon_deg, lat_deg):
    """GCJ-02 minus WGS84 at a WGS84 point inside China, in degrees.

    Parameters
    ----------
    lon_deg, lat_deg : float
        WGS84 longitude and latitude in degrees.

    Returns
    -------
    dlon_deg, dlat_deg : float
        Offsets to add to the WGS84 coordinates. No box test is made here.
    """
    dlat_m = _transform_lat_m(lon_deg - 105.0, lat_deg - 35.0)
    dlon_m = _transform_lon_m(lon_deg - 105.0, lat_deg - 35.0)
    rad_lat = lat_deg / 180.0 * math.pi
    magic = math.sin(rad_lat)
    magic = 1.0 - KRASOVSKY_EE * magic * magic
    sqrt_magic = math.sqrt(magic)
    # Metres to degrees with the meridian and prime-vertical radii of curvature.
    dlat_deg = (dlat_m * 180.0) / ((KRASOVSKY_A_M * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon_deg = (dlon_m * 180.0) / (KRASOVSKY_A_M / sqrt_magic * math.cos(rad_lat) * math.pi)
    return dlon_deg, dlat_deg


@jit
def wgs84_to_gcj02_point(lon_deg, lat_deg):
    """One WGS84 point to GCJ-02 (degrees in, degrees out; NaN and out-of-China kept)."""
    if math.isnan(lon_deg) or math.isnan(lat_deg):
        return math.nan, math.nan
    if out_of_china(lon_deg, lat_deg):
        return lon_deg, lat_deg
    dlon_deg, dlat_deg = gcj02_offset_deg(lon_deg, lat_deg)
    return lon_deg + dlon_deg, lat_deg + dlat_deg


@jit
def gcj02_to_wgs84_point(lon_deg, lat_deg, tol_deg, max_iter):
    """One GCJ-02 point to WGS84 by fixed-point iteration on the forward transform."""
    if math.isnan(lon_deg) or math.isnan(lat_deg):
        return math.nan, math.nan
    if out_of_china(lon_deg, lat_deg):
        return lon_deg, lat_deg
    # The offset at the GCJ-02 point is within a few metres of the one at the
    # answer, so the first step is already the usual one-shot approximation.
    wgs_lon = lon_deg
    wgs_lat = lat_deg
    for _ in range(max_iter):
        fwd_lon, fwd_lat = wgs84_to_gcj02_point(wgs_lon, wgs_lat)
        res_lon = fwd_lon - lon_deg
        res_lat = fwd_lat - lat_deg
        if abs(res_lon) < tol_deg and abs(res_lat) < tol_deg:
            break
        wgs_lon -= res_lon
        wgs_lat -= res_lat
    return wgs_lon, wgs_lat


@jit
def gcj02_to_bd09_point(lon_deg, lat_deg):
    """One GCJ-02 point to BD-09 (Baidu's published formula; NaN and out-of-China kept)."""
    if math.isnan(lon_deg) or math.isnan(lat_deg):
        return math.nan, math.nan
    if out_of_china(lon_deg, lat_deg):
        return lon_deg, lat_deg
    z = math.sqrt(lon_deg * lon_deg + lat_deg * lat_deg) + 0.00002 * math.sin(lat_deg * BD09_X_PI)
    theta = math.atan2(lat_deg, lon_deg) + 0.000003 * math.cos(lon_deg * BD09_X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


@jit
def bd09_to_gcj02_point(lon_deg, lat_deg, tol_deg, max_iter):
    """One BD-09 point to GCJ-02: Baidu's approximate inverse, then refined by iteration."""
    if math.isnan(lon_deg) or math.isnan(lat_deg):
        return math.nan, math.nan
    if out_of_china(lon_deg, lat_deg):
        return lon_deg, lat_deg
    # The published inverse is only approximate (errors of a few centimetres);
    # it is the starting point, the iteration makes it exact to tol_deg.
    x = lon_deg - 0.0065
    y = lat_deg - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * BD09_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * BD09_X_PI)
    gcj_lon = z * math.cos(theta)
    gcj_lat = z * math.sin(theta)
    for _ in range(max_iter):
        fwd_lon, fwd_lat = gcj02_to_bd09_point(gcj_lon, gcj_lat)
        res_lon = fwd_lon - lon_deg
        res_lat = fwd_lat - lat_deg
        if abs(res_lon) < tol_deg and abs(res_lat) < tol_deg:
            break
        gcj_lon -= res_lon
        gcj_lat -= res_lat
    return gcj_lon, gcj_lat


@jit
def wgs84_to_gcj02(lon_deg, lat_deg):
    """WGS84 to GCJ-02 for every point.

    Parameters
    ----------
    lon_deg, lat_deg : ndarray of float64, shape (n,)
        WGS84 longitude and latitude in degrees; may be read-only.

    Returns
    -------
    out_lon_deg, out_lat_deg : ndarray of float64, shape (n,)
        GCJ-02 coordinates. Points outside China are copied unchanged, NaN stays NaN.
    """
    n = lon_deg.shape[0]
    out_lon = np.empty(n, dtype=np.float64)
    out_lat = np.empty(n, dtype=np.float64)
    for i in range(n):
        out_lon[i], out_lat[i] = wgs84_to_gcj02_point(lon_deg[i], lat_deg[i])
    return out_lon, out_lat


@jit
def gcj02_to_wgs84(lon_deg, lat_deg, tol_deg=INVERSE_TOL_DEG, max_iter=INVERSE_MAX_ITER):
    """GCJ-02 to WGS84 for every point, iterated until the forward residual < ``tol_deg``.

    Parameters
    ----------
    lon_deg, lat_deg : ndarray of float64, shape (n,)
        GCJ-02 longitude and latitude in degrees; may be read-only.
    tol_deg : float
        Stop when ``wgs84_to_gcj02(result)`` is within this of the input in both
        coordinates. The default 1e-9 deg is about 0.1 mm.
    max_iter : int
        Iteration cap. Inside China 3-5 iterations reach 1e-9 deg.

    Returns
    -------
    out_lon_deg, out_lat_deg : ndarray of float64, shape (n,)
        WGS84 coordinates. Points outside China are copied unchanged, NaN stays NaN.
    """
    n = lon_deg.shape[0]
    out_lon = np.empty(n, dtype=np.float64)
    out_lat = np.empty(n, dtype=np.float64)
    for i in range(n):
        out_lon[i], out_lat[i] = gcj02_to_wgs84_point(lon_deg[i], lat_deg[i], tol_deg, max_iter)
    return out_lon, out_lat


@jit
def gcj02_to_bd09(lon_deg, lat_deg):
    """GCJ-02 to BD-09 for every point.

    Parameters
    ----------
    lon_deg, lat_deg : ndarray of float64, shape (n,)
        GCJ-02 longitude and latitude in degrees; may be read-only.

    Returns
    -------
    out_lon_deg, out_lat_deg : ndarray of float64, shape (n,)
        BD-09 coordinates. Points outside China are copied unchanged, NaN stays NaN.
    """
    n = lon_deg.shape[0]
    out_lon = np.empty(n, dtype=np.float64)
    out_lat = np.empty(n, dtype=np.float64)
    for i in range(n):
        out_lon[i], out_lat[i] = gcj02_to_bd09_point(lon_deg[i], lat_deg[i])
    return out_lon, out_lat


@jit
def bd09_to_gcj02(lon_deg, lat_deg, tol_deg=INVERSE_TOL_DEG, max_iter=INVERSE_MAX_ITER):
    """BD-09 to GCJ-02 for every point, iterated until the forward residual < ``tol_deg``.

    Parameters
    ----------
    lon_deg, lat_deg : ndarray of float64, shape (n,)
        BD-09 longitude and latitude in degrees; may be read-only.
    tol_deg : float
        Stop when ``gcj02_to_bd09(result)`` is within this of the input.
    max_iter : int
        Iteration cap; one or two iterations usually suffice.

    Returns
    -------
    out_lon_deg, out_lat_deg : ndarray of float64, shape (n,)
        GCJ-02 coordinates. Points outside China are copied unchanged, NaN stays NaN.
    """
    n = lon_deg.shape[0]
    out_lon = np.empty(n, dtype=np.float64)
    out_lat = np.empty(n, dtype=np.float64)
    for i in range(n):
        out_lon[i], out_lat[i] = bd09_to_gcj02_point(lon_deg[i], lat_deg[i], tol_deg, max_iter)
    return out_lon, out_lat
