"""Probability that a position with a Gaussian uncertainty lies inside a zone.

A fused fix is a mean position and a 2x2 covariance. Near a zone's boundary,
the boundary is replaced by its tangent line at the point nearest to the
mean: the true position's signed distance along the normal is then Gaussian
with mean ``d`` (the mean's signed distance, positive inside) and standard
deviation ``sigma_n = sqrt(n' P n)``, so ``P(inside) = Phi(d / sigma_n)``.
Farther than a few ``sigma_n`` from the boundary the answer saturates to 0 or
1, which is why the nearest-boundary search is capped at ``n_sigma`` times
the largest standard deviation of the covariance.

Notes
-----
The local linearisation of a constraint boundary is the usual first-order
geofence probability (e.g. Bar-Shalom et al., "Estimation with Applications
to Tracking and Navigation", 2001, section 1.4.14 for the Gaussian tail); it
is exact for a straight boundary and conservative near convex corners.
"""

from __future__ import annotations

import math

from geomon.kernels._jit import jit
from geomon.kernels.boundary_distance import nearest_boundary_point
from geomon.kernels.pip import LOC_BOUNDARY, LOC_INTERIOR, locate


@jit
def inside_probability(px, py, var_x, var_y, cov_xy, grid, nx, ny, cbase, words, ranks, starts, stream, n_sigma,
                       min_cap):
    """``(P(inside), signed distance m, sigma along the normal m)`` of one Gaussian position.

    The signed distance is capped at ``n_sigma`` times the largest standard
    deviation or ``min_cap`` metres, whichever is larger (beyond it the
    probability is 0 or 1 to double precision for ``n_sigma >= 9``).
    """
    if math.isnan(px) or math.isnan(py):
        return math.nan, math.nan, math.nan
    loc = locate(px, py, grid, nx, ny, cbase, words, ranks, starts, stream)
    half_trace = 0.5 * (var_x + var_y)
    spread = math.sqrt(max(half_trace * half_trace - var_x * var_y + cov_xy * cov_xy, 0.0))
    sigma_max = math.sqrt(max(half_trace + spread, 0.0))
    cap = max(n_sigma * sigma_max, min_cap, 1e-9)
    d_sq, qx, qy = nearest_boundary_point(px, py, grid, nx, ny, cbase, words, ranks, starts, stream, cap)
    if loc == LOC_BOUNDARY or d_sq == 0.0:
        return 0.5, 0.0, math.sqrt(max(half_trace, 0.0))
    sign = 1.0 if loc == LOC_INTERIOR else -1.0
    if math.isnan(qx):
        # No boundary within n_sigma standard deviations: certain.
        return (1.0 if sign > 0 else 0.0), sign * cap, sigma_max
    d = math.sqrt(d_sq)
    ux = (qx - px) / d
    uy = (qy - py) / d
    sigma_n = math.sqrt(max(ux * ux * var_x + 2.0 * ux * uy * cov_xy + uy * uy * var_y, 0.0))
    if sigma_n == 0.0:
        return (1.0 if sign > 0 else 0.0), sign * d, 0.0
    z = sign * d / sigma_n
    return 0.5 * math.erfc(-z / math.sqrt(2.0)), sign * d, sigma_n


@jit
def pair_inside_probability(x, y, var_x, var_y, cov_xy, point_index, zone_index,
                            zone_grid, zone_dims, zone_cbase, words, ranks, starts, stream, n_sigma, min_cap,
                            out_p, out_d, out_sigma):
    """:func:`inside_probability` for (point, zone) pairs of a :class:`geomon.ZoneIndex`."""
    for m in range(point_index.size):
        k = point_index[m]
        z = zone_index[m]
        out_p[m], out_d[m], out_sigma[m] = inside_probability(
            x[k], y[k], var_x[k], var_y[k], cov_xy[k], zone_grid[z], zone_dims[z, 0], zone_dims[z, 1],
            zone_cbase[z], words, ranks, starts, stream, n_sigma, min_cap)
