"""Ellipsoidal Transverse Mercator, forward and inverse, over float64 arrays: PROJ's ``tmerc`` in numba.

The projection is the Gauss-Krüger one of UTM, the CGCS2000 Gauss-Kruger zones
and geomon's auto-chosen frames, computed with Krüger's series in the third
flattening ``n`` carried to order ``n**6``:

1. geodetic latitude ``phi`` -> conformal latitude ``chi`` (a sine series in
   ``2 phi``; the inverse series for the way back);
2. ``(chi, lambda)`` on the conformal sphere -> the spherical Transverse Mercator
   ``zeta' = xi' + i eta'`` (Gauss-Schreiber), ``xi' = atan2(tan chi, cos lambda)``,
   ``eta' = asinh(sin lambda / hypot(tan chi, cos lambda))``;
3. ``zeta = zeta' + sum_j alpha_j sin(2 j zeta')`` (the inverse subtracts the
   ``beta_j`` series), in complex arithmetic;
4. ``x = x0 + k0 A eta``, ``y = y0 + k0 A xi - (northing of lat_0)`` with ``A``
   the rectifying radius ``a / (1 + n) (1 + n^2/4 + n^4/64 + n^6/256)``.

This is what PROJ's default ``tmerc`` and ``utm`` compute (``algo=poder_engsager``,
"etmerc"), so the two agree to nanometres; Karney finds the series exact to 5 nm
within 3,900 km of the central meridian. Each sine series ``sum_j c_j sin(2 j t)``
is evaluated as ``sin(2t)`` times a polynomial of degree 5 in ``cos(2t)`` by
Estrin's scheme: the same sum as Clenshaw's recurrence, with a shorter chain of
dependent operations between the libm calls (the loop is latency-bound).

Notes
-----
Karney, "Transverse Mercator with an accuracy of a few nanometers", J. Geodesy
85(8), 475-485, 2011 (the ``alpha_j``, ``beta_j`` and ``A`` series to ``n**6``).
Krüger, "Konforme Abbildung des Erdellipsoids in der Ebene",
Potsdam 1912. Engsager and Poder, "A highly accurate world wide algorithm for
the transverse Mercator mapping (almost)", Proc. XXIII Intl. Cartographic Conf.,
2007 (the conformal-latitude series PROJ uses, also to ``n**6``).

PROJ's domain rules are kept, so every point that PROJ refuses (it reports
``inf``) comes out NaN here: latitude more than 1e-12 rad beyond a pole,
longitude beyond 10 rad, or a normalised easting ``|eta| > 2.623395162778``
(about 16,700 km). Longitude differences from the central meridian are wrapped
into [-180, 180] degrees before projecting, and unprojected longitudes are
wrapped into [-180, 180] too, as PROJ does without ``+over``.

The drivers take 1-D float64 arrays of equal length (read-only is fine), write
into caller-allocated outputs and never return ``inf``. ``params`` comes from
:func:`tm_params`.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit

#: Order of every series in the third flattening.
ORDER = 6

# Layout of the parameter vector built by tm_params.
P_A = 0  # semi-major axis a, metres
P_F = 1  # flattening f
P_K0 = 2  # scale factor on the central meridian
P_LON0 = 3  # central meridian, radians
P_Y_ORIGIN = 4  # k0 * meridian arc from the equator to lat_0 (in the projection's series), metres
P_X0 = 5  # false easting, metres
P_Y0 = 6  # false northing, metres
P_KA = 7  # k0 * A, the rectifying radius scaled to the projection, metres
P_ALPHA = 8  # alpha_1..alpha_6: conformal sphere -> ellipsoidal TM (forward)
P_BETA = P_ALPHA + ORDER  # beta_1..beta_6: ellipsoidal TM -> conformal sphere (inverse)
P_CHI = P_BETA + ORDER  # geodetic -> conformal latitude, c_1..c_6 (sine series)
P_PHI = P_CHI + ORDER  # conformal -> geodetic latitude, d_1..d_6 (sine series)
# The kernels evaluate each series as sin(2t) times a degree-5 polynomial in cos(2t) (constant first):
P_ALPHA_POLY = P_PHI + ORDER  # the alpha series, t = zeta' (complex)
P_BETA_POLY = P_ALPHA_POLY + ORDER  # the beta series, t = zeta (complex)
P_CHI_POLY = P_BETA_POLY + ORDER  # the c_j series, t = phi
P_PHI_POLY = P_CHI_POLY + ORDER  # the d_j series, t = chi
N_PARAMS = P_PHI_POLY + ORDER

#: Largest flattening served (1/250; the Earth ellipsoids of the EPSG registry have 1/310 to 1/293.465):
#: it keeps the conformal-latitude correction below 0.0041 rad, inside the range of _small_sin_cos.
MAX_FLATTENING = 1.0 / 250.0
#: PROJ's bound on the normalised easting ``x / (k0 A)`` (about 150 degrees of arc).
MAX_ETA = 2.623395162778
_LAT_TOL_RAD = 1e-12
_MAX_LON_RAD = 10.0
_HALF_PI = 0.5 * math.pi
_TWO_PI = 2.0 * math.pi
_DEG = math.pi / 180.0
_RAD = 180.0 / math.pi
# Reciprocals for the Taylor polynomials of _small_sin_cos (multiplying is cheaper than dividing).
_I6, _I12, _I20 = 1.0 / 6.0, 1.0 / 12.0, 1.0 / 20.0
#: Largest |d| of _small_sin_cos. The forward's conformal-latitude correction is below 0.0041; the
#: inverse's correction to xi, eta stays below 1e-3 within 15 degrees of the central meridian and
#: reaches 0.08 only near the edge of the domain, where the inverse calls sin, cos and sinh instead.
_SMALL = 0.005


def _horner(n: float, coefficients: tuple[float, ...]) -> float:
    total = 0.0
    for c in reversed(coefficients):
        total = total * n + c
    return total


# Rows: the coefficients of n**j .. n**6 of the j-th term (j = 1..6): Karney (2011), alpha_j and beta_j.
_ALPHA = (
    (1 / 2, -2 / 3, 5 / 16, 41 / 180, -127 / 288, 7891 / 37800),
    (13 / 48, -3 / 5, 557 / 1440, 281 / 630, -1983433 / 1935360),
    (61 / 240, -103 / 140, 15061 / 26880, 167603 / 181440),
    (49561 / 161280, -179 / 168, 6601661 / 7257600),
    (34729 / 80640, -3418889 / 1995840),
    (212378941 / 319334400,),
)
_BETA = (
    (1 / 2, -2 / 3, 37 / 96, -1 / 360, -81 / 512, 96199 / 604800),
    (1 / 48, 1 / 15, -437 / 1440, 46 / 105, -1118711 / 3870720),
    (17 / 480, -37 / 840, -209 / 4480, 5569 / 90720),
    (4397 / 161280, -11 / 504, -830251 / 7257600),
    (4583 / 161280, -108847 / 3991680),
    (20648693 / 638668800,),
)
# chi = phi + sum_j c_j sin(2 j phi) and phi = chi + sum_j d_j sin(2 j chi).
_PHI_TO_CHI = (
    (-2, 2 / 3, 4 / 3, -82 / 45, 32 / 45, 4642 / 4725),
    (5 / 3, -16 / 15, -13 / 9, 904 / 315, -1522 / 945),
    (-26 / 15, 34 / 21, 8 / 5, -12686 / 2835),
    (1237 / 630, -12 / 5, -24832 / 14175),
    (-734 / 315, 109598 / 31185),
    (444337 / 155925,),
)
_CHI_TO_PHI = (
    (2, -2 / 3, -2, 116 / 45, 26 / 45, -2854 / 675),
    (7 / 3, -8 / 5, -227 / 45, 2704 / 315, 2323 / 945),
    (56 / 15, -136 / 35, -1262 / 105, 73814 / 2835),
    (4279 / 630, -332 / 35, -399572 / 14175),
    (4174 / 315, -144838 / 6237),
    (601676 / 22275,),
)


def _series(n: float, table: tuple[tuple[float, ...], ...]) -> list[float]:
    return [n ** (j + 1) * _horner(n, row) for j, row in enumerate(table)]


def _sine_series_as_polynomial(c: np.ndarray) -> np.ndarray:
    """Coefficients ``p`` with ``sum_j c_j sin(2 j t) = sin(2t) * sum_k p_k cos(2t)**k``.

    ``sin(2 j t) = sin(2t) U_{j-1}(cos 2t)`` (Chebyshev polynomials of the second
    kind). The kernels evaluate the polynomial by Estrin's scheme, whose short
    dependency chain is faster than Clenshaw's recurrence between libm calls.
    With ``|c_j| <~ n**j`` and ``|cos 2t| <= 1`` (real ``t``) the rewriting costs nothing in accuracy.
    """
    u_prev, u = np.zeros(ORDER), np.zeros(ORDER)
    u[0] = 1.0  # U_0
    poly = c[0] * u
    for j in range(1, ORDER):
        u_next = -u_prev
        u_next[1:] += 2.0 * u[:-1]
        u_prev, u = u, u_next
        poly = poly + c[j] * u
    return poly


def tm_params(
    a: float, f: float, k0: float, lon0_deg: float, lat0_deg: float, x0: float, y0: float
) -> np.ndarray:
    """The parameter vector of :func:`tm_forward` and :func:`tm_inverse`.

    Parameters
    ----------
    a : float
        Semi-major axis of the ellipsoid, metres.
    f : float
        Flattening ``1 / inverse_flattening``, ``0 < f <= MAX_FLATTENING`` (every
        Earth ellipsoid; PROJ projects a sphere with other formulas).
    k0 : float
        Scale factor on the central meridian (1 for Gauss-Kruger, 0.9996 for UTM).
    lon0_deg, lat0_deg : float
        Central meridian and latitude of origin, degrees.
    x0, y0 : float
        False easting and northing, metres.

    Returns
    -------
    ndarray of float64, shape (N_PARAMS,)
        ``a, f, k0, lon0 (rad), k0 * meridian arc to lat0, x0, y0, k0 * A``, then
        the ``alpha``, ``beta``, geodetic-to-conformal and conformal-to-geodetic
        latitude series coefficients (6 each), then the same four series as
        polynomials in ``cos 2t`` (6 each), which the kernels evaluate (see the
        ``P_*`` indices).
    """
    if not (a > 0.0 and 0.0 < f <= MAX_FLATTENING and k0 > 0.0):
        raise ValueError(f"no Transverse Mercator for a={a!r}, f={f!r}, k0={k0!r}")
    n = f / (2.0 - f)
    n2 = n * n
    params = np.zeros(N_PARAMS, dtype=np.float64)
    params[P_A] = a
    params[P_F] = f
    params[P_K0] = k0
    params[P_LON0] = lon0_deg * _DEG
    params[P_X0] = x0
    params[P_Y0] = y0
    params[P_KA] = k0 * a / (1.0 + n) * (1.0 + n2 * (1.0 / 4.0 + n2 * (1.0 / 64.0 + n2 / 256.0)))
    params[P_ALPHA:P_ALPHA + ORDER] = _series(n, _ALPHA)
    params[P_BETA:P_BETA + ORDER] = _series(n, _BETA)
    params[P_CHI:P_CHI + ORDER] = _series(n, _PHI_TO_CHI)
    params[P_PHI:P_PHI + ORDER] = _series(n, _CHI_TO_PHI)
    params[P_ALPHA_POLY:P_ALPHA_POLY + ORDER] = _sine_series_as_polynomial(params[P_ALPHA:P_ALPHA + ORDER])
    params[P_BETA_POLY:P_BETA_POLY + ORDER] = _sine_series_as_polynomial(params[P_BETA:P_BETA + ORDER])
    params[P_CHI_POLY:P_CHI_POLY + ORDER] = _sine_series_as_polynomial(params[P_CHI:P_CHI + ORDER])
    params[P_PHI_POLY:P_PHI_POLY + ORDER] = _sine_series_as_polynomial(params[P_PHI:P_PHI + ORDER])
    # Northing of (lon0, lat0) without false northing: the meridian arc in the
    # projection's own series, so that (lon0, lat0) maps to (x0, y0) exactly.
    if lat0_deg != 0.0:
        x = np.empty(1)
        y = np.empty(1)
        tm_forward(np.array([lon0_deg]), np.array([lat0_deg]), x, y, params)
        params[P_Y_ORIGIN] = y[0] - y0
    return params


@jit
def _poly5(p, start, t):
    """``sum_{k=0..5} p[start + k] t**k`` by Estrin's scheme."""
    t2 = t * t
    return (p[start] + p[start + 1] * t) + t2 * ((p[start + 2] + p[start + 3] * t)
                                                  + t2 * (p[start + 4] + p[start + 5] * t))


@jit
def _complex_sin_series(p, start, sin_2xi, cos_2xi, sinh_2eta, cosh_2eta):
    """Real and imaginary parts of ``sin(2 zeta) * sum_{k=0..5} p[start + k] cos(2 zeta)**k``, ``zeta = xi + i eta``.

    The arguments are ``sin 2xi, cos 2xi, sinh 2eta, cosh 2eta``; the polynomial is
    evaluated by Estrin's scheme in complex arithmetic.
    """
    # T = cos(2 zeta) = cos 2xi cosh 2eta - i sin 2xi sinh 2eta, and T^2.
    tr = cos_2xi * cosh_2eta
    ti = -sin_2xi * sinh_2eta
    t2r = tr * tr - ti * ti
    t2i = 2.0 * tr * ti
    # A + T^2 (B + T^2 C) with A = p0 + p1 T, B = p2 + p3 T, C = p4 + p5 T.
    ar = p[start] + p[start + 1] * tr
    ai = p[start + 1] * ti
    br = p[start + 2] + p[start + 3] * tr
    bi = p[start + 3] * ti
    cr = p[start + 4] + p[start + 5] * tr
    ci = p[start + 5] * ti
    qr = br + t2r * cr - t2i * ci
    qi = bi + t2r * ci + t2i * cr
    pr = ar + t2r * qr - t2i * qi
    pi_ = ai + t2r * qi + t2i * qr
    # times sin(2 zeta) = sin 2xi cosh 2eta + i cos 2xi sinh 2eta
    sr = sin_2xi * cosh_2eta
    si = cos_2xi * sinh_2eta
    return sr * pr - si * pi_, sr * pi_ + si * pr


@jit
def _wrap_pi(lam):
    # PROJ's adjlon: leave [-pi, pi] (with a hair of slack) alone, wrap the rest.
    if abs(lam) < math.pi + 1e-12:
        return lam
    lam += math.pi
    lam -= _TWO_PI * math.floor(lam / _TWO_PI)
    return lam - math.pi


@jit
def _small_sin_cos(d, sign):
    """``(sin d, cos d)`` for ``sign = -1``, ``(sinh d, cosh d)`` for ``sign = 1``, for ``|d| <= 0.005``.

    Taylor polynomials to ``d**5`` and ``d**4``: the omitted terms are below 2e-17.
    """
    t = sign * d * d
    return d * (1.0 + t * _I6 * (1.0 + t * _I20)), 1.0 + 0.5 * t * (1.0 + t * _I12)


@jit
def tm_forward(lon_deg, lat_deg, out_x, out_y, params):
    """Project lon/lat degrees to Transverse Mercator easting/northing metres.

    Parameters
    ----------
    lon_deg, lat_deg : ndarray of float64, shape (n,)
        Geodetic longitude and latitude, degrees.
    out_x, out_y : ndarray of float64, shape (n,)
        Written with easting and northing, metres; NaN where an input is NaN or
        the point is outside PROJ's domain (see the module notes).
    params : ndarray of float64
        From :func:`tm_params`.
    """
    lon0 = params[P_LON0]
    ka = params[P_KA]
    x0 = params[P_X0]
    y_shift = params[P_Y0] - params[P_Y_ORIGIN]
    for i in range(lon_deg.shape[0]):
        phi = lat_deg[i] * _DEG
        lam = lon_deg[i] * _DEG
        # Written so that NaN fails the test.
        if not (abs(phi) - _HALF_PI <= _LAT_TOL_RAD and abs(lam) <= _MAX_LON_RAD):
            out_x[i] = np.nan
            out_y[i] = np.nan
            continue
        phi = max(-_HALF_PI, min(_HALF_PI, phi))
        lam = _wrap_pi(lam - lon0)
        # Conformal latitude chi = phi + d, |d| <= 2 n < 0.0041 rad (f <= MAX_FLATTENING).
        sp = math.sin(phi)
        cp = math.cos(phi)
        d = 2.0 * sp * cp * _poly5(params, np.int64(P_CHI_POLY), cp * cp - sp * sp)
        sd, cd = _small_sin_cos(d, -1.0)
        s = sp * cd + cp * sd  # sin chi
        c = cp * cd - sp * sd  # cos chi
        c_cl = c * math.cos(lam)
        c_sl = c * math.sin(lam)
        # Spherical TM: xi' = atan2(sin chi, cos chi cos lam), tanh eta' = cos chi sin lam,
        # and r2 = sin^2 chi + cos^2 chi cos^2 lam = 1 / cosh^2 eta'.
        r2 = s * s + c_cl * c_cl
        if r2 == 0.0:  # on the equator 90 degrees from the central meridian: eta' is infinite
            out_x[i] = np.nan
            out_y[i] = np.nan
            continue
        xi = math.atan2(s, c_cl)
        eta = math.atanh(c_sl)
        inv_r2 = 1.0 / r2
        # sin 2xi', cos 2xi', sinh 2eta', cosh 2eta' from the above, without more calls.
        d_xi, d_eta = _complex_sin_series(
            params, np.int64(P_ALPHA_POLY), 2.0 * s * c_cl * inv_r2, (c_cl * c_cl - s * s) * inv_r2,
            2.0 * c_sl * inv_r2, 2.0 * inv_r2 - 1.0,
        )
        xi += d_xi
        eta += d_eta
        if abs(eta) > MAX_ETA:
            out_x[i] = np.nan
            out_y[i] = np.nan
            continue
        out_x[i] = x0 + ka * eta
        out_y[i] = y_shift + ka * xi


@jit
def tm_inverse(x_m, y_m, out_lon, out_lat, params):
    """Unproject Transverse Mercator easting/northing metres to lon/lat degrees.

    Parameters
    ----------
    x_m, y_m : ndarray of float64, shape (n,)
        Easting and northing, metres.
    out_lon, out_lat : ndarray of float64, shape (n,)
        Written with longitude in [-180, 180] and latitude, degrees; NaN where an
        input is not finite or the easting is outside PROJ's domain.
    params : ndarray of float64
        From :func:`tm_params`.
    """
    lon0 = params[P_LON0]
    inv_ka = 1.0 / params[P_KA]
    x0 = params[P_X0]
    y_shift = params[P_Y0] - params[P_Y_ORIGIN]
    for i in range(x_m.shape[0]):
        xi = (y_m[i] - y_shift) * inv_ka
        eta = (x_m[i] - x0) * inv_ka
        # Written so that NaN fails the test; a non-finite northing gives NaN through sin and cos.
        if not (abs(eta) <= MAX_ETA):
            out_lon[i] = np.nan
            out_lat[i] = np.nan
            continue
        sx = math.sin(xi)
        cx = math.cos(xi)
        e = math.exp(eta)
        inv_e = 1.0 / e
        sh = 0.5 * (e - inv_e)
        ch = 0.5 * (e + inv_e)
        d_xi, d_eta = _complex_sin_series(params, np.int64(P_BETA_POLY), 2.0 * sx * cx, cx * cx - sx * sx,
                                          2.0 * sh * ch, sh * sh + ch * ch)
        # zeta' = zeta - d: its sin, cos and sinh by angle subtraction (|d| <= 1e-3 within
        # 15 degrees of the central meridian; larger only near the domain's edge).
        if abs(d_xi) <= _SMALL and abs(d_eta) <= _SMALL:
            sd, cd = _small_sin_cos(d_xi, -1.0)
            shd, chd = _small_sin_cos(d_eta, 1.0)
            s = sx * cd - cx * sd  # sin xi'
            c = cx * cd + sx * sd  # cos xi'
            sh = sh * chd - ch * shd  # sinh eta'
        else:
            s = math.sin(xi - d_xi)
            c = math.cos(xi - d_xi)
            sh = math.sinh(eta - d_eta)
        # Conformal sphere: lam = atan2(sinh eta', cos xi'), chi = atan2(sin xi', hypot(sinh eta', cos xi')).
        m = math.sqrt(sh * sh + c * c)
        lam = math.atan2(sh, c)
        chi = math.atan2(s, m)
        # sin chi = s / cosh eta', cos chi = m / cosh eta', cosh^2 eta' = 1 + sinh^2 eta'.
        inv_ch2 = 1.0 / (1.0 + sh * sh)
        phi = chi + 2.0 * s * m * inv_ch2 * _poly5(params, np.int64(P_PHI_POLY), 2.0 * m * m * inv_ch2 - 1.0)
        out_lon[i] = _wrap_pi(lam + lon0) * _RAD
        out_lat[i] = phi * _RAD
