"""Tests of the numba Transverse Mercator (geomon.kernels.tmerc) that LocalFrame runs, against pyproj.

pyproj is the reference: every frame is compared with the same frame forced
through pyproj (``LocalFrame(crs, _pyproj_only=True)``). The series are also
checked on their own against closed forms, so that a wrong coefficient fails
even where pyproj's answer would hide it below the tolerance.

``python -m tests.geo.test_tmerc_kernel`` prints the timing table of docs/crs.md.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geomon.geo.crs import MAX_HALF_SPAN_DEG, LocalFrame, _tm_definition, get_transformer, transverse_mercator
from geomon.kernels import tmerc

#: The contract: the kernel equals pyproj within 1 mm, and 1e-9 degrees (0.1 mm) back.
FORWARD_TOL_M = 1e-3
INVERSE_TOL_DEG = 1e-9
#: What it measures (~1e-8 m, ~1e-13 deg), with margin: this is what a wrong coefficient
#: of order n**4 (tens of micrometres) fails.
STRICT_TOL_M = 1e-6
STRICT_TOL_DEG = 1e-11

#: Every CGCS2000 Gauss-Kruger zone: 6-degree with and without the zone number in the false
#: easting (4491-4501, 4502-4512), 3-degree likewise (4513-4533, 4534-4554).
GK_EPSG = tuple(range(4491, 4555))
WGS84 = (6378137.0, 1.0 / 298.257223563)

FRAMES = st.one_of(
    st.floats(-180.0, 180.0).map(transverse_mercator),
    st.integers(1, 60).map(lambda zone: LocalFrame(32600 + zone)),  # UTM north
    st.integers(1, 60).map(lambda zone: LocalFrame(32700 + zone)),  # UTM south
    st.sampled_from(GK_EPSG).map(LocalFrame),
)

# (longitude from the central meridian, latitude): the frame's stated extent.
POINTS = st.lists(
    st.tuples(st.floats(-MAX_HALF_SPAN_DEG, MAX_HALF_SPAN_DEG), st.floats(-80.0, 84.0)), min_size=1, max_size=64
).map(lambda pts: (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])))

EDGE_CASES = [
    # On the central meridian, from the south to the north limit.
    (LocalFrame(32650), (np.zeros(5), np.array([-80.0, -33.3, 0.0, 39.9, 84.0]))),
    # On the equator, out to the extent's edge.
    (LocalFrame(32719), (np.array([-15.0, -7.5, 0.0, 0.001, 15.0]), np.zeros(5))),
    # The extent's corners, in a 3-degree zone with the zone number in the false easting.
    (LocalFrame(4526), (np.array([-15.0, 15.0, -15.0, 15.0]), np.array([-80.0, -80.0, 84.0, 84.0]))),
    # NaN in either coordinate, in a 6-degree zone with the zone number.
    (LocalFrame(4499), (np.array([np.nan, 1.0, np.nan, 2.0]), np.array([30.0, np.nan, np.nan, 45.0]))),
    # Nothing at all.
    (transverse_mercator(118.5), (np.array([]), np.array([]))),
    # 2-D arrays, a central meridian near the antimeridian.
    (transverse_mercator(179.5), (np.array([[0.0, 1.5], [-15.0, 15.0]]), np.array([[40.0, 0.0], [84.0, -80.0]]))),
]


def _with_edge_cases(test):
    for frame, points in EDGE_CASES:
        test = example(frame=frame, points=points)(test)
    return test


def _reference(frame: LocalFrame) -> LocalFrame:
    reference = LocalFrame(frame.crs, _pyproj_only=True)
    assert not reference.uses_kernel
    return reference


def _central_meridian(frame: LocalFrame) -> float:
    # Read from pyproj directly, not through the code under test.
    for p in frame.pyproj_crs.coordinate_operation.params:
        if p.name == "Longitude of natural origin":
            return math.degrees(p.value * p.unit_conversion_factor)
    raise AssertionError(f"{frame.crs} has no central meridian")


def _wrap_deg(d):
    return (d + 180.0) % 360.0 - 180.0


def _max(a) -> float:
    a = np.asarray(a)
    return float(np.max(a[np.isfinite(a)], initial=0.0))


def _assert_same_layout(a, b, a_ref, b_ref):
    for out, ref in ((a, a_ref), (b, b_ref)):
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
        assert out.shape == np.shape(ref)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(a_ref))
    np.testing.assert_array_equal(np.isnan(b), np.isnan(b_ref))
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


# --------------------------------------------------------------------------- #
# The kernel path against pyproj, within the frame's extent
# --------------------------------------------------------------------------- #


@settings(max_examples=150, deadline=None)
@given(frame=FRAMES, points=POINTS)
@_with_edge_cases
def test_forward_matches_pyproj(frame, points):
    d_lon, lat = points
    lon = _central_meridian(frame) + d_lon
    assert frame.uses_kernel
    x, y = frame.project(lon, lat)
    x_ref, y_ref = _reference(frame).project(lon, lat)
    _assert_same_layout(x, y, x_ref, y_ref)
    assert _max(np.hypot(x - x_ref, y - y_ref)) < FORWARD_TOL_M


@settings(max_examples=150, deadline=None)
@given(frame=FRAMES, points=POINTS)
@_with_edge_cases
def test_inverse_and_round_trip_match_pyproj(frame, points):
    d_lon, lat = points
    lon = _central_meridian(frame) + d_lon
    reference = _reference(frame)
    # Inverse of pyproj's own projected points.
    x, y = reference.project(lon, lat)
    back_lon, back_lat = frame.unproject(x, y)
    ref_lon, ref_lat = reference.unproject(x, y)
    _assert_same_layout(back_lon, back_lat, ref_lon, ref_lat)
    assert _max(np.abs(_wrap_deg(back_lon - ref_lon))) < INVERSE_TOL_DEG
    assert _max(np.abs(back_lat - ref_lat)) < INVERSE_TOL_DEG
    # Round trip through the kernel alone.
    x_k, y_k = frame.project(lon, lat)
    trip_lon, trip_lat = frame.unproject(x_k, y_k)
    np.testing.assert_array_equal(np.isnan(trip_lon), np.isnan(lon) | np.isnan(lat))
    assert _max(np.abs(_wrap_deg(trip_lon - lon))) < INVERSE_TOL_DEG
    assert _max(np.abs(trip_lat - lat)) < INVERSE_TOL_DEG


@pytest.mark.parametrize("crs", ["EPSG:32650", "EPSG:32719", "EPSG:4526", "EPSG:4499", "EPSG:4547", "tm:118.5"])
def test_dense_agreement_is_nanometres(crs):
    # The numbers docs/crs.md quotes: 200,000 points over the whole extent of each frame.
    frame = transverse_mercator(118.5) if crs.startswith("tm:") else LocalFrame(crs)
    reference = _reference(frame)
    rng = np.random.default_rng(7)
    lon = _central_meridian(frame) + rng.uniform(-MAX_HALF_SPAN_DEG, MAX_HALF_SPAN_DEG, 200_000)
    lat = rng.uniform(-80.0, 84.0, lon.size)
    x, y = frame.project(lon, lat)
    x_ref, y_ref = reference.project(lon, lat)
    assert np.max(np.hypot(x - x_ref, y - y_ref)) < STRICT_TOL_M
    back_lon, back_lat = frame.unproject(x_ref, y_ref)
    ref_lon, ref_lat = reference.unproject(x_ref, y_ref)
    assert np.max(np.abs(_wrap_deg(back_lon - ref_lon))) < STRICT_TOL_DEG
    assert np.max(np.abs(back_lat - ref_lat)) < STRICT_TOL_DEG


@pytest.mark.parametrize("crs", ["EPSG:32650", "EPSG:32701", "EPSG:4526"])
def test_whole_globe_same_domain_as_pyproj(crs):
    # Far outside the extent too: the same points are NaN (PROJ's domain rules: latitude
    # beyond a pole, longitude beyond 10 rad, easting beyond ~16,700 km), and the rest agree.
    frame = LocalFrame(crs)
    reference = _reference(frame)
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(-200.0, 200.0, 100_000), [0.0, 30.0, 600.0, -600.0, np.inf, 10.0, 10.0]])
    lat = np.concatenate([rng.uniform(-90.5, 90.5, 100_000), [90.0, -90.0, 10.0, 10.0, 10.0, 90.0 + 1e-11, 91.0]])
    cm = _central_meridian(frame)
    lon = np.concatenate([lon, [cm + 90.0, cm - 90.0, cm + 180.0]])  # singular on the equator; the back side
    lat = np.concatenate([lat, [0.0, 0.0, 0.0]])
    x, y = frame.project(lon, lat)
    x_ref, y_ref = reference.project(lon, lat)
    _assert_same_layout(x, y, x_ref, y_ref)
    assert 0.005 < np.isnan(x).mean() < 0.05
    assert _max(np.hypot(x - x_ref, y - y_ref)) < FORWARD_TOL_M
    x0 = frame.project(cm, 0.0)[0]
    x = x0 + rng.uniform(-2e7, 2e7, 100_000)
    y = rng.uniform(-2e7, 2e7, 100_000)
    x[:3] = np.nan, np.inf, x0
    y[:3] = 0.0, 0.0, -np.inf
    lon, lat = frame.unproject(x, y)
    lon_ref, lat_ref = reference.unproject(x, y)
    _assert_same_layout(lon, lat, lon_ref, lat_ref)
    assert 0.05 < np.isnan(lon).mean() < 0.5
    assert np.nanmax(np.abs(lon)) <= 180.0
    assert _max(np.abs(_wrap_deg(lon - lon_ref))) < INVERSE_TOL_DEG
    assert _max(np.abs(lat - lat_ref)) < INVERSE_TOL_DEG


# --------------------------------------------------------------------------- #
# Public behaviour: shapes, broadcasting, read-only and odd inputs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "lon, lat",
    [
        (116.4, 39.9),  # scalars give 0-d arrays, as through pyproj
        ([116.4, 117.0, 118.2], 39.9),  # broadcast against a scalar
        (np.array([[116.4], [117.0]]), np.array([39.9, 40.0, 41.0])),  # (2, 1) with (3,) gives (2, 3)
        (np.linspace(110.0, 120.0, 12).reshape(3, 4)[:, ::2], np.full((3, 2), 35.0)),  # strided view
        (np.array([116, 117], dtype=np.int32), np.array([39.5, 40.5], dtype=np.float32)),
        (np.empty((0, 3)), np.empty((0, 3))),
    ],
)
def test_shapes_and_dtypes_as_through_pyproj(lon, lat):
    frame = LocalFrame(32650)
    reference = _reference(frame)
    x, y = frame.project(lon, lat)
    x_ref, y_ref = reference.project(lon, lat)
    _assert_same_layout(x, y, x_ref, y_ref)
    assert _max(np.hypot(x - x_ref, y - y_ref)) < FORWARD_TOL_M
    back_lon, back_lat = frame.unproject(x, y)
    ref_lon, ref_lat = reference.unproject(x, y)
    _assert_same_layout(back_lon, back_lat, ref_lon, ref_lat)
    assert _max(np.abs(back_lon - ref_lon)) < INVERSE_TOL_DEG


def test_read_only_input_and_fresh_output():
    frame = LocalFrame(4547)
    lon = np.array([113.0, 114.0, np.nan, 115.5])
    lat = np.array([22.5, 30.0, 31.0, 45.0])
    lon.flags.writeable = False
    lat.flags.writeable = False
    x, y = frame.project(lon, lat)
    assert x.flags.writeable and not np.shares_memory(x, lon) and not np.shares_memory(y, lat)
    np.testing.assert_array_equal(np.isnan(x), [False, False, True, False])
    x.flags.writeable = False
    y.flags.writeable = False
    back_lon, back_lat = frame.unproject(x, y)
    assert back_lon.flags.writeable
    assert _max(np.abs(back_lon - lon)) < INVERSE_TOL_DEG and _max(np.abs(back_lat - lat)) < INVERSE_TOL_DEG
    # The input is untouched.
    assert np.isnan(lon[2]) and lon[0] == 113.0


def test_forcing_pyproj_keeps_frame_equality():
    # Frames are cache keys elsewhere: the private switch must not change equality or hashing.
    assert LocalFrame(32650, _pyproj_only=True) == LocalFrame(32650)
    assert hash(LocalFrame(32650, _pyproj_only=True)) == hash(LocalFrame("EPSG:32650"))
    assert LocalFrame(32650).uses_kernel and not LocalFrame(32650, _pyproj_only=True).uses_kernel


# --------------------------------------------------------------------------- #
# Other CRSs keep pyproj
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "crs, lon, lat, definition",
    [
        ("EPSG:3857", [116.4, -70.6, 0.0], [39.9, -33.4, 0.0], False),  # Pseudo-Mercator
        ("EPSG:2154", [2.35, -1.5, 7.0], [48.86, 43.5, 48.5], False),  # Lambert-93, Lambert conformal conic
        ("EPSG:2053", [28.0, 29.5, 30.9], [-26.2, -25.7, -29.0], False),  # Transverse Mercator south-orientated
        # A Transverse Mercator the kernel would read, but PROJ evaluates with the approximate algorithm:
        # only the check against pyproj turns the kernel away.
        ("+proj=tmerc +lat_0=0 +lon_0=3 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +approx +units=m +no_defs +type=crs",
         [3.0, 12.0, -9.0], [45.0, 60.0, 10.0], True),
    ],
)
def test_other_crs_go_through_pyproj(crs, lon, lat, definition):
    frame = LocalFrame(crs)
    assert not frame.uses_kernel
    assert (_tm_definition(frame.pyproj_crs) is not None) == definition
    x, y = frame.project(lon, lat)
    x_ref, y_ref = get_transformer(frame.geodetic_crs, frame.crs).transform(np.array(lon), np.array(lat))
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)
    back = frame.unproject(x, y)
    back_ref = get_transformer(frame.crs, frame.geodetic_crs).transform(x, y)
    np.testing.assert_array_equal(back, back_ref)


def test_latitude_of_origin_and_false_northing():
    # British National Grid: a Transverse Mercator with a latitude of origin (49N) and a
    # negative false northing; the kernel serves it too.
    frame = LocalFrame(27700)
    assert frame.uses_kernel
    lon, lat = np.array([-2.0, -5.7, 1.7]), np.array([49.0, 50.1, 52.6])
    x, y = frame.project(lon, lat)
    x_ref, y_ref = _reference(frame).project(lon, lat)
    assert np.max(np.hypot(x - x_ref, y - y_ref)) < STRICT_TOL_M
    assert x[0] == pytest.approx(400_000.0, abs=1e-6) and y[0] == pytest.approx(-100_000.0, abs=1e-6)


# --------------------------------------------------------------------------- #
# The series on their own
# --------------------------------------------------------------------------- #


def _third_flattening(f: float) -> float:
    return f / (2.0 - f)


def _sine_sum(coefficients, t):
    return sum(c * np.sin(2 * (j + 1) * t) for j, c in enumerate(coefficients))


def _conformal_latitude(phi, f):
    # Closed form: tan chi = sinh(asinh(tan phi) - e atanh(e sin phi)).
    e = math.sqrt(f * (2.0 - f))
    return np.arctan(np.sinh(np.arcsinh(np.tan(phi)) - e * np.arctanh(e * np.sin(phi))))


def _conformal_latitude_residuals(n: float) -> tuple[float, float]:
    """Worst error of the geodetic -> conformal series, and of the way back, against the closed form."""
    f = 2.0 * n / (1.0 + n)
    phi = np.linspace(-1.5, 1.5, 2001)
    chi = _conformal_latitude(phi, f)
    c = tmerc._series(n, tmerc._PHI_TO_CHI)
    d = tmerc._series(n, tmerc._CHI_TO_PHI)
    return float(np.max(np.abs(phi + _sine_sum(c, phi) - chi))), float(np.max(np.abs(chi + _sine_sum(d, chi) - phi)))


def _alpha_beta_residual(n: float) -> float:
    """Worst error of zeta' -> zeta' + sum alpha_j sin(2 j zeta') = zeta -> zeta - sum beta_j sin(2 j zeta)."""
    xi, eta = np.meshgrid(np.linspace(-1.5, 1.5, 61), np.linspace(-0.6, 0.6, 41))
    zeta_p = xi + 1j * eta
    zeta = zeta_p + _sine_sum(tmerc._series(n, tmerc._ALPHA), zeta_p)
    back = zeta - _sine_sum(tmerc._series(n, tmerc._BETA), zeta)
    return float(np.max(np.abs(back - zeta_p)))


def test_series_are_exact_to_order_n6():
    # Each series pair, truncated after n**6, leaves a residual of order n**7: halving n
    # divides it by ~2**7 = 128 (measured 120-127 from n = 0.04 to 0.01). A wrong coefficient
    # of n**6 or lower leaves an O(n**6) residual instead, divided by at most 2**6 = 64.
    ns = (0.04, 0.02, 0.01)
    residuals = {
        "geodetic -> conformal": [_conformal_latitude_residuals(n)[0] for n in ns],
        "conformal -> geodetic": [_conformal_latitude_residuals(n)[1] for n in ns],
        "alpha then beta": [_alpha_beta_residual(n) for n in ns],
    }
    for name, r in residuals.items():
        assert r[0] / r[1] > 100.0 and r[1] / r[2] > 100.0, (name, r)


@pytest.mark.parametrize("f", [WGS84[1], 1.0 / 298.257222101, tmerc.MAX_FLATTENING])
def test_series_exact_to_rounding_on_earth_ellipsoids(f):
    n = _third_flattening(f)
    assert max(_conformal_latitude_residuals(n)) < 1e-15
    assert _alpha_beta_residual(n) < 1e-15


def test_rectifying_radius_against_quarter_meridian():
    # A * pi / 2 is the length of a quarter meridian, which pyproj's geodesics give to nanometres.
    a, f = WGS84
    params = tmerc.tm_params(a, f, 1.0, 0.0, 0.0, 0.0, 0.0)
    quarter = Geod(a=a, f=f).inv(0.0, 0.0, 0.0, 90.0)[2]
    assert params[tmerc.P_KA] * math.pi / 2.0 == pytest.approx(quarter, abs=1e-8)
    assert quarter == pytest.approx(10_001_965.729, abs=1e-3)  # WGS84, a published figure


def test_polynomial_form_equals_the_sine_series():
    rng = np.random.default_rng(3)
    c = rng.normal(size=tmerc.ORDER) * 10.0 ** -np.arange(3, 3 * tmerc.ORDER + 3, 3)
    p = tmerc._sine_series_as_polynomial(c)
    for t in (rng.uniform(-2.0, 2.0, 50), rng.uniform(-2.0, 2.0, 50) + 1j * rng.uniform(-0.5, 0.5, 50)):
        poly = np.sin(2 * t) * sum(p[k] * np.cos(2 * t) ** k for k in range(tmerc.ORDER))
        np.testing.assert_allclose(poly, _sine_sum(c, t), rtol=0, atol=1e-17)


def test_origin_latitude_maps_to_false_origin():
    # (lon0, lat0) -> (x0, y0) exactly, whatever the latitude of origin.
    for lat0 in (-33.0, 0.0, 49.0, 80.0):
        params = tmerc.tm_params(*WGS84, 0.9996, 10.0, lat0, 123.0, -456.0)
        x, y = np.empty(1), np.empty(1)
        tmerc.tm_forward(np.array([10.0]), np.array([lat0]), x, y, params)
        assert x[0] == pytest.approx(123.0, abs=1e-9) and y[0] == pytest.approx(-456.0, abs=1e-8)


def test_params_refuse_a_sphere_or_a_flat_earth():
    for a, f in ((6371000.0, 0.0), (6378137.0, 0.01), (-1.0, WGS84[1])):
        with pytest.raises(ValueError):
            tmerc.tm_params(a, f, 1.0, 0.0, 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- #
# Timing: python -m tests.geo.test_tmerc_kernel
# --------------------------------------------------------------------------- #


def _bench(n: int = 5_000_000, repeats: int = 5) -> None:
    """Median of ``repeats`` times of project/unproject of ``n`` points in a county, kernel vs pyproj."""
    rng = np.random.default_rng(0)
    lon = rng.uniform(116.2, 116.7, n)  # a county around Beijing, UTM 50N
    lat = rng.uniform(39.7, 40.1, n)
    frame = LocalFrame(32650)
    reference = LocalFrame(32650, _pyproj_only=True)
    x, y = reference.project(lon, lat)
    pool = ThreadPoolExecutor(2)

    def halves(fn):
        def run(a, b):
            h = a.size // 2
            (a0, b0), (a1, b1) = pool.map(fn, (a[:h], a[h:]), (b[:h], b[h:]))
            return np.concatenate([a0, a1]), np.concatenate([b0, b1])
        return run

    frame.project(lon[:10], lat[:10])  # compile (or load from the cache)
    frame.unproject(x[:10], y[:10])
    cases = {
        "numba kernel": (frame.project, frame.unproject),
        "pyproj": (reference.project, reference.unproject),
        "pyproj, 2 threads": (halves(reference.project), halves(reference.unproject)),
        "numba kernel, 2 threads": (halves(frame.project), halves(frame.unproject)),
    }
    times = {(name, way): [] for name in cases for way in ("forward", "inverse")}
    for _ in range(repeats):
        for name, (forward, inverse) in cases.items():
            for way, fn, args in (("forward", forward, (lon, lat)), ("inverse", inverse, (x, y))):
                t = time.perf_counter()
                fn(*args)
                times[name, way].append(time.perf_counter() - t)
    pool.shutdown()
    base = {way: float(np.median(times["pyproj", way])) for way in ("forward", "inverse")}
    print(f"{n:,} points, UTM 50N, median of {repeats}")
    print("| path | project (s) | unproject (s) | vs pyproj |")
    print("|---|---|---|---|")
    for name in cases:
        f, i = (float(np.median(times[name, way])) for way in ("forward", "inverse"))
        print(f"| {name} | {f:.3f} | {i:.3f} | {base['forward'] / f:.2f}x / {base['inverse'] / i:.2f}x |")


if __name__ == "__main__":
    _bench()
