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

Transverse Mercator frames (UTM, the CGCS2000 Gauss-Kruger zones, the frames of
:func:`transverse_mercator`) are projected by the numba kernels of
:mod:`geomon.kernels.tmerc` instead, the same series PROJ's default ``tmerc``
evaluates: they agree with pyproj to nanometres and take about half the time.
Each CRS is checked once against pyproj before the kernel serves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Proj, Transformer
from pyproj.exceptions import CRSError

from geomon.errors import InputError
from geomon.kernels._pool import split
from geomon.kernels.tmerc import MAX_FLATTENING, tm_forward, tm_inverse, tm_params

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

#: EPSG method code of "Transverse Mercator" (not 9808, South Orientated, nor 9824, Zoned Grid System).
_TM_METHOD_CODE = "9807"
#: EPSG parameter codes: latitude and longitude of natural origin, scale factor, false easting, northing.
_TM_PARAMETER_CODES = ("8801", "8802", "8805", "8806", "8807")
#: Once per CRS, the kernel must reproduce pyproj on a grid within MAX_HALF_SPAN_DEG of the
#: central meridian to this many metres (forward) and degrees (inverse); it does to ~1e-8 m.
_KERNEL_CHECK_TOL_M = 1e-6
_KERNEL_CHECK_TOL_DEG = 1e-11


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


def _tm_definition(crs: CRS) -> tuple[float, ...] | None:
    """``(a, f, k0, lon0_deg, lat0_deg, x0, y0)`` if ``crs`` is a Transverse Mercator the kernel computes."""
    if crs.is_bound or crs.is_compound or not crs.is_projected:
        return None
    operation = crs.coordinate_operation
    if operation is None or str(operation.method_code) != _TM_METHOD_CODE:
        return None
    by_code = {str(p.code): p for p in operation.params}
    if not set(_TM_PARAMETER_CODES) <= set(by_code):
        return None
    lat0, lon0, k0, x0, y0 = (float(by_code[code].value) * float(by_code[code].unit_conversion_factor)
                              for code in _TM_PARAMETER_CODES)
    # always_xy gives (easting, northing) in either axis order, but nothing turns westing or southing round.
    if sorted(axis.direction for axis in crs.axis_info) != ["east", "north"]:
        return None
    geodetic = crs.geodetic_crs
    if geodetic is None or {axis.unit_name for axis in geodetic.axis_info} != {"degree"}:
        return None
    if crs.prime_meridian is None or crs.prime_meridian.longitude != 0.0:
        return None
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        return None
    a = float(ellipsoid.semi_major_metre)
    inverse_flattening = float(ellipsoid.inverse_flattening)
    if not (math.isfinite(a) and math.isfinite(inverse_flattening) and inverse_flattening >= 1.0 / MAX_FLATTENING):
        return None  # a sphere (PROJ projects it with other formulas) or not an Earth ellipsoid
    return a, 1.0 / inverse_flattening, k0, math.degrees(lon0), math.degrees(lat0), x0, y0


@lru_cache(maxsize=64)
def _tm_kernel_params(spec: str) -> NDArray[np.float64] | None:
    """Parameters of :mod:`geomon.kernels.tmerc` for the frame ``spec``, or None where pyproj projects.

    The kernel serves ``spec`` only if its CRS is a plain Transverse Mercator on an
    ellipsoid (:func:`_tm_definition`) *and* the kernel reproduces the frame's shared
    pyproj transformers, forward and inverse, on a grid of points within
    :data:`MAX_HALF_SPAN_DEG` of the central meridian (latitudes -80 to 84). So a
    PROJ that evaluates ``tmerc`` differently (``+approx``, another default
    algorithm in proj.ini) keeps its own answers. The array is shared: never write to it.
    """
    definition = _tm_definition(_crs(spec))
    if definition is None:
        return None
    params = tm_params(*definition)
    lon0_deg = definition[3]
    lon, lat = np.meshgrid(lon0_deg + np.array([-MAX_HALF_SPAN_DEG, -7.3, -1.0, 0.0, 0.4, 3.0, 9.1, MAX_HALF_SPAN_DEG]),
                           np.array([-80.0, -52.5, -21.0, -0.3, 0.0, 8.0, 31.7, 45.0, 66.6, 84.0]))
    lon = ((lon.ravel() + 180.0) % 360.0) - 180.0
    lat = lat.ravel()
    geodetic = _geodetic_spec(spec)
    x_ref, y_ref = (np.asarray(v, dtype=np.float64) for v in get_transformer(geodetic, spec).transform(lon, lat))
    x, y = np.empty_like(lon), np.empty_like(lon)
    tm_forward(lon, lat, x, y, params)
    if not (np.all(np.isfinite(x_ref) & np.isfinite(y_ref))
            and np.max(np.hypot(x - x_ref, y - y_ref)) <= _KERNEL_CHECK_TOL_M):
        return None
    back = get_transformer(spec, geodetic).transform(x_ref, y_ref)
    lon_ref, lat_ref = (np.asarray(v, dtype=np.float64) for v in back)
    back_lon, back_lat = np.empty_like(lon), np.empty_like(lon)
    tm_inverse(x_ref, y_ref, back_lon, back_lat, params)
    d_lon = np.abs((back_lon - lon_ref + 180.0) % 360.0 - 180.0)
    if not (np.all(np.isfinite(lon_ref) & np.isfinite(lat_ref))
            and max(np.max(d_lon), np.max(np.abs(back_lat - lat_ref))) <= _KERNEL_CHECK_TOL_DEG):
        return None
    return params


def _run_kernel(kernel, a: NDArray[np.float64], b: NDArray[np.float64], params: NDArray[np.float64]):
    # Broadcast or strided views become contiguous copies; outputs are new arrays in the input's shape.
    shape = a.shape
    a = np.ravel(a)
    b = np.ravel(b)
    out_a = np.empty(a.size, dtype=np.float64)
    out_b = np.empty(a.size, dtype=np.float64)
    split(a.size, lambda lo, hi: kernel(a[lo:hi], b[lo:hi], out_a[lo:hi], out_b[lo:hi], params), min_units=65_536)
    return out_a.reshape(shape), out_b.reshape(shape)


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
    # Tests set it to compare the numba kernel with pyproj; it takes no part in equality.
    _pyproj_only: bool = field(default=False, kw_only=True, compare=False, repr=False)

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

    @property
    def uses_kernel(self) -> bool:
        """Whether :meth:`project` and :meth:`unproject` run the numba Transverse Mercator (else pyproj)."""
        return self._kernel_params() is not None

    def _kernel_params(self) -> NDArray[np.float64] | None:
        return None if self._pyproj_only else _tm_kernel_params(self.crs)

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

        Notes
        -----
        Transverse Mercator frames run :func:`geomon.kernels.tmerc.tm_forward`
        (equal to pyproj within nanometres); any other CRS goes through pyproj.
        """
        lon, lat = _as_float_pair(lon_deg, lat_deg)
        # The shared transformer is the reference the kernel was checked against, and the path for other CRSs.
        transformer = get_transformer(self.geodetic_crs, self.crs)
        params = self._kernel_params()
        if params is not None:
            return _run_kernel(tm_forward, lon, lat, params)
        x, y = transformer.transform(lon, lat)
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

        Notes
        -----
        Transverse Mercator frames run :func:`geomon.kernels.tmerc.tm_inverse`;
        any other CRS goes through pyproj.
        """
        x, y = _as_float_pair(x_m, y_m)
        transformer = get_transformer(self.crs, self.geodetic_crs)
        params = self._kernel_params()
        if params is not None:
            return _run_kernel(tm_inverse, x, y, params)
        lon, lat = transformer.transform(x, y)
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
