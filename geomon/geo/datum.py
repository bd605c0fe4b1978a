"""Bring positions reported in a Chinese map datum back to WGS84, and the reverse.

Every loader of fixes or zones takes a ``datum`` option naming the datum its
lon/lat columns are in; it calls :func:`to_wgs84` before the positions are
projected to the local metric frame (:mod:`geomon.geo.crs`). Reports that draw on a
Chinese web map call :func:`from_wgs84`.

The numerical work is in :mod:`geomon.kernels.datum`, which documents the
algorithm and its sources.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geomon.errors import InputError
from geomon.kernels.datum import bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, wgs84_to_gcj02

#: Datums geomon accepts, by the name the ``datum`` option uses.
DATUMS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_IDENTITY = ("wgs84", "cgcs2000")


def _normalise_datum(datum: str) -> str:
    # Accept the spellings people type ("GCJ-02", "BD_09", "WGS 84").
    key = str(datum).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in DATUMS:
        raise InputError(
            "datum",
            f"unknown datum {datum!r}; expected one of {', '.join(DATUMS)}",
        )
    return key


def _as_flat(lon_deg: ArrayLike, lat_deg: ArrayLike):
    lon = np.asarray(lon_deg, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon, lat = np.broadcast_arrays(lon, lat)
    return lon.shape, np.ravel(lon), np.ravel(lat)


def to_wgs84(
    lon_deg: ArrayLike, lat_deg: ArrayLike, datum: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert longitudes and latitudes from ``datum`` to WGS84.

    Parameters
    ----------
    lon_deg, lat_deg : array_like of float
        Longitude and latitude in degrees in ``datum``; broadcast together.
        Read-only buffers (Arrow, DuckDB) are fine.
    datum : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        Datum of the input, case-insensitive, hyphens and underscores ignored.
        ``"wgs84"`` and ``"cgcs2000"`` are the identity: CGCS2000 (China
        Geodetic Coordinate System 2000, the national datum, EPSG:4490) differs
        from WGS84 by a few centimetres, far below the accuracy of the fixes.
        ``"gcj02"`` is the offset datum of AMap/Gaode, Tencent and Google China;
        ``"bd09"`` is Baidu's, converted through GCJ-02.

    Returns
    -------
    lon_deg, lat_deg : ndarray of float64
        WGS84 degrees, in the broadcast shape of the inputs. For the identity
        datums these may be the inputs themselves (no copy is made when the
        input is already float64): do not write into them.

    Raises
    ------
    InputError
        A ``ValueError`` naming the unknown datum and listing the valid ones.

    Notes
    -----
    GCJ-02 and BD-09 leave points outside the China bounding box
    (lon 72.004-137.8347, lat 0.8293-55.8271) unchanged. Their inverses are
    iterated to 1e-9 degrees (about 0.1 mm), so ``to_wgs84(*from_wgs84(p, d), d)``
    returns ``p`` within a millimetre. NaN in either coordinate gives NaN in both.

    Examples
    --------
    >>> lon, lat = to_wgs84([116.41024449916938], [39.91640428150164], "gcj02")
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (116.404, 39.915)
    """
    key = _normalise_datum(datum)
    shape, lon, lat = _as_flat(lon_deg, lat_deg)
    if key in _IDENTITY:
        return lon.reshape(shape), lat.reshape(shape)
    if key == "bd09":
        lon, lat = bd09_to_gcj02(lon, lat)
    lon, lat = gcj02_to_wgs84(lon, lat)
    return lon.reshape(shape), lat.reshape(shape)


def from_wgs84(
    lon_deg: ArrayLike, lat_deg: ArrayLike, datum: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert WGS84 longitudes and latitudes to ``datum``.

    Parameters
    ----------
    lon_deg, lat_deg : array_like of float
        WGS84 longitude and latitude in degrees; broadcast together.
    datum : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        Target datum, spelled as for :func:`to_wgs84`.

    Returns
    -------
    lon_deg, lat_deg : ndarray of float64
        Degrees in ``datum``, in the broadcast shape of the inputs (the inputs
        themselves for the identity datums).

    Raises
    ------
    InputError
        A ``ValueError`` naming the unknown datum and listing the valid ones.

    See Also
    --------
    to_wgs84 : the inverse, with the notes on the bounding box and NaN.
    """
    key = _normalise_datum(datum)
    shape, lon, lat = _as_flat(lon_deg, lat_deg)
    if key in _IDENTITY:
        return lon.reshape(shape), lat.reshape(shape)
    lon, lat = wgs84_to_gcj02(lon, lat)
    if key == "bd09":
        lon, lat = gcj02_to_bd09(lon, lat)
    return lon.reshape(shape), lat.reshape(shape)
