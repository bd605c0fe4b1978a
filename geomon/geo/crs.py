"""The local metric frame: lon/lat projected once to metres, and the scale factor that keeps distances true.

The engine works in a conformal projected CRS (UTM, a CGCS2000 Gauss-Kruger
zone, or a Transverse Mercator centred on the data) so that kernels compare
plain Euclidean distances with thresholds in metres. A conformal projection
scales every short distance at a point by the same point scale factor ``k``
(Snyder 1987, "Map Projections -- A Working Manual", USGS PP 1395, ch. 4 and 8),
so ``projected_distance / k`` is the distance on the ellipsoid to within the
variation of ``k`` over the segment: about ``x * L / R**2`` for a segment of
length ``L`` at ``x`` from the central meridian, under 1e-4 for 5 km segments
within 800 km of it. docs/crs.md states the guarantee and the numbers the tests
measure.

Positions are taken as WGS84 or CGCS2000 degrees (they differ by centimetres);
other datums are converted first with :mod:`geomon.geo.datum`. pyproj ``Transformer``
and ``Proj`` objects are built once per CRS pair and reused (they are thread-safe
since pyproj 3.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Proj, Transformer
from pyproj.exceptions import CRSError

from geomon.errors import InputError

#: Largest relative distance error geomon accepts from the projection (0.1 %).
SCALE_ERROR_BUDGET = 1e-3
#: Widest longitude extent, in degrees either side of the central meridian, that
#: one frame serves; beyond it Transverse Mercator loses accuracy, and data
#: spanning more than China's width should be split by region.
MAX_HALF_SPAN_DEG = 15.0
#: Central meridians of auto-chosen Transverse Mercator frames are rounded to
#: this step, so that nearly the same data gives exactly the same frame.
CENTRAL_MERIDIAN_STEP_DEG = 0.5

_CONFORMAL_TOL = 1e-5
_EXTENT_GRID = 41


@lru_cache(maxsize=64)
def _crs(spec: str) -> CRS:
    return CRS.from_user_input(spec)


@lru_cache(maxsize=64)
def _proj(spec: str) -> Proj:
    return Proj(_crs(spec))


@lru_cache(maxsize=64)
def get_transformer(src: str, dst: str) -> Transformer:
    """The one shared ``pyproj.Transformer`` from ``src`` to ``dst`` (x = lon/easting first).

    Parameters
    ----------
    src, dst : str
        CRS specifications pyproj accepts ("EPSG:4326", a PROJ string, WKT).

    Returns
    -------
    pyproj.Transformer
        Built with ``always_xy=True`` on the first call and returned from a cache
        afterwards, so every caller shares one object per pair.
    """
    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


@lru_cache(maxsize=64)
def _geodetic_spec(spec: str) -> str:
    geodetic = _crs(spec).geodetic_crs
    if geodetic is None:
        raise InputError("local frame", f"CRS {spec!r} has no geodetic CRS to project from")
    authority = geodetic.to_authority()
    if authority is not None and authority[0] == "EPSG":
        return f"EPSG:{authority[1]}"
    return geodetic.to_wkt()


def _finite_or_nan(a: NDArray[np.float64], b: NDArray[np.float64]):
    # PROJ reports points it cannot transform as inf; geomon's missing value is NaN.
    bad = ~(np.isfinite(a) & np.isfinite(b))
    if bad.any():
        a = np.where(bad, np.nan, a)
        b = np.where(bad, np.nan, b)
    return a, b


def _as_float_pair(a: ArrayLike, b: ArrayLike):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.broadcast_arrays(a, b)


@dataclass(frozen=True)
class LocalFrame:
    """A projected, metric CRS that positions are projected to once, on load.

    Parameters
    ----------
    crs : str or int
        An EPSG code (``32650``, ``4547``), ``"EPSG:xxxx"``, or a PROJ string / WKT
        of a projected CRS in metres. Integers are stored as ``"EPSG:<code>"``.

    Notes
    -----
    Lon/lat are read in the geodetic datum of ``crs`` itself (WGS84 for UTM and
    auto-chosen frames, CGCS2000 for the national Gauss-Kruger zones): geomon
    treats WGS84 and CGCS2000 as the same, so no datum shift is applied.

    Examples
    --------
    >>> frame = LocalFrame(32650)            # UTM zone 50N
    >>> x_m, y_m = frame.project([116.404], [39.915])
    >>> lon, lat = frame.unproject(x_m, y_m)
    >>> k = frame.scale_factor(x_m, y_m)     # projected length / ground length
    """

    crs: str | int

    def __post_init__(self):
        spec = f"EPSG:{self.crs}" if isinstance(self.crs, (int, np.integer)) else str(self.crs).strip()
        object.__setattr__(self, "crs", spec)
        try:
            crs = _crs(spec)
        except CRSError as exc:
            raise InputError("local frame", f"cannot read CRS {spec!r}: {exc}") from None
        if not crs.is_projected:
            raise InputError("local frame", f"CRS {spec!r} is not a projected CRS; give a metric one")
        units = {axis.unit_name for axis in crs.axis_info}
        if units != {"metre"}:
            raise InputError("local frame", f"CRS {spec!r} has axis units {sorted(units)}, not metres")

    @property
    def pyproj_crs(self) -> CRS:
        """The pyproj ``CRS`` of this frame (cached)."""
        return _crs(self.crs)

    @property
    def geodetic_crs(self) -> str:
        """The geographic CRS lon/lat are read in, e.g. ``"EPSG:4326"``."""
        return _geodetic_spec(self.crs)

    def project(self, lon_deg: ArrayLike, lat_deg: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lon/lat degrees to easting/northing metres in this frame.

        Parameters
        ----------
        lon_deg, lat_deg : array_like of float
            WGS84/CGCS2000 degrees; broadcast together; may be read-only.

        Returns
        -------
        x_m, y_m : ndarray of float64
            Easting and northing in metres, in the broadcast shape. NaN where
            the input is NaN or cannot be projected.
        """
        lon, lat = _as_float_pair(lon_deg, lat_deg)
        x, y = get_transformer(self.geodetic_crs, self.crs).transform(lon, lat)
        return _finite_or_nan(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))

    def unproject(self, x_m: ArrayLike, y_m: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Easting/northing metres in this frame back to lon/lat degrees.

        Parameters
        ----------
        x_m, y_m : array_like of float
            Easting and northing in metres; broadcast together.

        Returns
        -------
        lon_deg, lat_deg : ndarray of float64
            WGS84/CGCS2000 degrees; NaN where the input is NaN.
        """
        x, y = _as_float_pair(x_m, y_m)
        lon, lat = get_transformer(self.crs, self.geodetic_crs).transform(x, y)
        return _finite_or_nan(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))

    def scale_factor_at(self, lon_deg: ArrayLike, lat_deg: ArrayLike) -> NDArray[np.float64]:
        """Point scale factor ``k`` at lon/lat degrees (see :meth:`scale_factor`)."""
        lon, lat = _as_float_pair(lon_deg, lat_deg)
        factors = _proj(self.crs).get_factors(np.ravel(lon), np.ravel(lat))
        # For a conformal projection meridional and parallel scales are equal and
        # sqrt(areal scale) is their common value.
        k = np.sqrt(np.asarray(factors.areal_scale, dtype=np.float64)).reshape(lon.shape)
        return np.where(np.isfinite(k), k, np.nan)

    def scale_factor(self, x_m: ArrayLike, y_m: ArrayLike) -> NDArray[np.float64]:
        """Point scale factor ``k`` of the projection at projected points.

        A short distance ``d_m`` measured in the frame near ``(x_m, y_m)``
        corresponds to ``d_m / k`` metres on the WGS84 ellipsoid. Detectors use
        it to turn projected distances into ground distances (or, equivalently,
        multiply thresholds by ``k``) before comparing with thresholds.

        Parameters
        ----------
        x_m, y_m : array_like of float
            Easting and northing in metres; broadcast together.

        Returns
        -------
        ndarray of float64
            ``k`` (dimensionless, 1 on the central meridian of a scale-1
            Transverse Mercator, 0.9996 there for UTM); NaN where the input is NaN.

        Notes
        -----
        Computed from PROJ's numerical derivatives (``Proj.get_factors``), about
        1 microsecond per point; compute it once per fix, next to ``x`` and ``y``.
        It is exact for conformal frames, which :func:`choose_frame` ensures.
        """
        lon, lat = self.unproject(x_m, y_m)
        return self.scale_factor_at(lon, lat)

    def max_scale_error(self, lon_deg: ArrayLike, lat_deg: ArrayLike) -> float:
        """Worst ``|k - 1|`` of this frame over the lon/lat bounding box of the points.

        Parameters
        ----------
        lon_deg, lat_deg : array_like of float
            Degrees; non-finite values are ignored.

        Returns
        -------
        float
            The largest relative error that uncorrected projected distances can
            have over the extent (``k`` is smooth, so a 41 x 41 grid over the box
            and its corners finds the worst case). NaN if no point is finite.
        """
        lon, lat = _as_float_pair(lon_deg, lat_deg)
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any():
            return math.nan
        grid_lon, grid_lat = np.meshgrid(
            np.linspace(lon[ok].min(), lon[ok].max(), _EXTENT_GRID),
            np.linspace(lat[ok].min(), lat[ok].max(), _EXTENT_GRID),
        )
        k = self.scale_factor_at(grid_lon, grid_lat)
        return float(np.nanmax(np.abs(k - 1.0)))

    def is_conformal_at(self, lon_deg: float, lat_deg: float) -> bool:
        """Whether the projection keeps angles (Tissot's indicatrix is a circle) at a point."""
        factors = _proj(self.crs).get_factors(np.array([lon_deg]), np.array([lat_deg]))
        h = float(factors.meridional_scale[0])
        k = float(factors.parallel_scale[0])
        return math.isfinite(h) and math.isfinite(k) and abs(h / k - 1.0) < _CONFORMAL_TOL


def utm_epsg(lon_deg: float, lat_deg: float) -> int:
    """EPSG code of the WGS84 UTM zone containing a point (326zz north, 327zz south).

    The Norway and Svalbard exceptions of the UTM grid are not applied.
    """
    zone = int(math.floor((lon_deg + 180.0) / 6.0)) % 60 + 1
    return (32600 if lat_deg >= 0.0 else 32700) + zone


def transverse_mercator(central_meridian_deg: float) -> LocalFrame:
    """A WGS84 Transverse Mercator frame, scale 1 on ``central_meridian_deg``.

    False easting 500 km, no false northing; PROJ's default ``tmerc``
    (Poder/Engsager) is accurate to millimetres thousands of kilometres from
    the central meridian.
    """
    return LocalFrame(
        f"+proj=tmerc +lat_0=0 +lon_0={central_meridian_deg:.6g} +k=1 +x_0=500000 +y_0=0 "
        "+datum=WGS84 +units=m +no_defs +type=crs"
    )


def choose_frame(lon_deg: ArrayLike, lat_deg: ArrayLike, epsg: int | str | None = None) -> LocalFrame:
    """Choose the local metric frame for a body of positions.

    Parameters
    ----------
    lon_deg, lat_deg : array_like of float
        WGS84/CGCS2000 degrees of the fixes or zones the frame will serve
        (non-finite values are ignored).
    epsg : int or str, optional
        A configured CRS (e.g. 4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E).
        It must be projected, in metres and conformal over the data.

    Returns
    -------
    LocalFrame
        The configured CRS if given. Otherwise the UTM zone of the median
        position when the whole extent stays within :data:`SCALE_ERROR_BUDGET`
        of true scale in it (any extent inside one 6-degree zone does); else a
        Transverse Mercator with scale 1 on the extent's central meridian
        (rounded to :data:`CENTRAL_MERIDIAN_STEP_DEG`), whose distances must be
        corrected with :meth:`LocalFrame.scale_factor`.

    Raises
    ------
    InputError
        No finite position and no ``epsg``; an extent wider than
        2 x :data:`MAX_HALF_SPAN_DEG` of longitude; or a configured CRS that is
        not projected, not metric or not conformal.

    Notes
    -----
    The choice depends on the data, so choose once per deployment (from the
    permitted zones, say) and keep the frame in the configuration: a replay cut
    into batches must not choose a frame per batch.
    """
    lon, lat = _as_float_pair(lon_deg, lat_deg)
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon = lon[ok]
    lat = lat[ok]
    if epsg is not None:
        frame = LocalFrame(epsg)
        if lon.size:
            at_lon, at_lat = float(np.median(lon)), float(np.median(lat))
        else:
            area = frame.pyproj_crs.area_of_use
            if area is None:
                return frame
            at_lon, at_lat = (area.west + area.east) / 2.0, (area.south + area.north) / 2.0
        if not frame.is_conformal_at(at_lon, at_lat):
            raise InputError(
                "local frame",
                f"CRS {frame.crs!r} is not conformal at ({at_lon:.4f}, {at_lat:.4f}); "
                "use a Transverse Mercator / Gauss-Kruger, UTM or Lambert conformal CRS",
            )
        return frame
    if lon.size == 0:
        raise InputError("positions", "no finite lon/lat to choose a local frame from; configure an EPSG")

    median_lon = float(np.median(lon))
    median_lat = float(np.median(lat))
    utm = LocalFrame(utm_epsg(median_lon, median_lat))
    if utm.max_scale_error(lon, lat) <= SCALE_ERROR_BUDGET:
        return utm

    west, east = float(lon.min()), float(lon.max())
    central = round((west + east) / 2.0 / CENTRAL_MERIDIAN_STEP_DEG) * CENTRAL_MERIDIAN_STEP_DEG
    half_span = max(central - west, east - central)
    if half_span > MAX_HALF_SPAN_DEG:
        raise InputError(
            "positions",
            f"longitudes span {west:.2f} to {east:.2f} deg, too wide for one local frame "
            f"(at most {2 * MAX_HALF_SPAN_DEG:g} deg); split the data by region or configure an EPSG",
        )
    return transverse_mercator(central)
