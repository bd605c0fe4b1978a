"""Fused positions for every fix: a three-motion filter per subject, robust to multipath, with honest uncertainty.

:func:`fuse` takes fixes as :func:`geomon.io.load.load_fixes` returns them,
projects them once to a local metric frame (:mod:`geomon.geo.crs`), turns each
fix's reported accuracy into a per-axis noise with per-source floors, runs
:func:`geomon.kernels.fusion.fuse_tracks` over the subjects' tracks and returns
one row per input fix, in the input order, with the fused position, its
covariance, the velocity and what the filter did with the fix.

Examples
--------
>>> import pyarrow as pa, geomon
>>> from geomon.schema import FIX_SCHEMA
>>> fixes = pa.table({
...     "subject_id": ["a", "a", "a", "b"],
...     "ts": pa.array([0, 15_000, 30_000, 0], pa.timestamp("ms", tz="UTC")),
...     "lon": [116.4000, 116.4001, 116.4100, 116.5],
...     "lat": [39.9000, 39.9000, 39.9000, 39.9],
...     "source": ["gnss", "gnss", "gnss", "cell"],
...     "accuracy_m": pa.array([3.0, None, 3.0, 400.0], pa.float32()),
... }, schema=FIX_SCHEMA)
>>> fused = geomon.fuse(fixes)
>>> fused.column("status").to_pylist()     # 2 = restarted, 0 = accepted, 1 = rejected (an 850 m jump)
[2, 0, 1, 2]
>>> [round(s, 1) for s in fused.column("sigma_m").to_pylist()]
[3.0, 5.0, 3.0, 400.0]

Notes
-----
The filter (still / steady / manoeuvre motions, a heavy-tailed fix model, the
noise learnt per subject) is documented in :func:`geomon.kernels.fusion.fuse_tracks`.
Smoothing (``smooth=True``) is the Rauch-Tung-Striebel smoother (Rauch, Tung,
Striebel 1965) for offline forensic replay: it uses later fixes and must never
feed alerts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.errors import InputError
from geomon.geo.crs import LocalFrame, choose_frame
from geomon.io.common import fix_table
from geomon.kernels import fusion as _kf
from geomon.kernels.smoother import rts_smooth
from geomon.schema import FIX_REQUIRED, SOURCES

__all__ = ["AUGMENTED_GNSS_BELOW_M", "AUGMENTED_GNSS_FLOOR_M", "CELL_BIAS_FACTOR", "CORRELATED_CODES",
           "CORRELATED_SOURCES", "FUSED_COLUMNS", "SOURCE_CODE", "SOURCE_DEFAULT_M", "SOURCE_FLOOR_M", "STATUS_NAMES",
           "correlated_run_length", "fix_sigma_m", "fuse", "sigma_from_codes", "source_codes", "trusted_sigma_m"]

#: Smallest 1-sigma (m, per axis) a fix of each source is taken to have.
#: Satellite fixes are rarely better than 2 m however they are reported; see
#: :data:`AUGMENTED_GNSS_FLOOR_M` for augmented ones.
SOURCE_FLOOR_M = {"gnss": 2.0, "wifi": 15.0, "cell": 100.0, "checkin": 50.0}
#: A satellite fix reporting better than this (m) is augmented (SBAS, RTK, ...)
#: and floored at :data:`AUGMENTED_GNSS_FLOOR_M` instead.
AUGMENTED_GNSS_BELOW_M = 1.0
AUGMENTED_GNSS_FLOOR_M = 0.3
#: 1-sigma (m) assumed when a fix reports no accuracy (the monitor's defaults).
SOURCE_DEFAULT_M = {"gnss": 5.0, "wifi": 30.0, "cell": 500.0, "checkin": 100.0}

#: Sources whose consecutive fixes share most of their error (the serving tower,
#: the access point): the k-th fix of a run counts with noise ``sigma * sqrt(k)``.
CORRELATED_SOURCES = ("cell", "wifi")

#: ``status`` codes: index = code.
STATUS_NAMES = ("accepted", "rejected", "reinitialised", "predicted")

#: Columns :func:`fuse` appends, in order.
FUSED_COLUMNS = ("sigma_m", "fused_lon", "fused_lat", "x_m", "y_m", "var_x_m2", "var_y_m2", "cov_xy_m2",
                 "vx_mps", "vy_mps", "status", "p_outlier", "noise_m")


def fix_sigma_m(accuracy_m, source) -> np.ndarray:
    """Per-axis 1-sigma (m) of each fix: the reported accuracy, floored per source, defaulted when missing.

    Parameters
    ----------
    accuracy_m : array_like of float
        Reported 1-sigma horizontal accuracy per axis (m); NaN where not reported.
    source : array_like of str
        One of :data:`geomon.schema.SOURCES` per fix.

    Returns
    -------
    ndarray of float64
        ``max(accuracy_m, floor)`` with the floor of :data:`SOURCE_FLOOR_M`,
        except that a ``gnss`` fix reporting under :data:`AUGMENTED_GNSS_BELOW_M`
        is floored at :data:`AUGMENTED_GNSS_FLOOR_M`; :data:`SOURCE_DEFAULT_M`
        where the accuracy is missing or not finite.

    Raises
    ------
    InputError
        If a source is not one of :data:`geomon.schema.SOURCES`.

    Examples
    --------
    >>> fix_sigma_m([0.5, 1.5, float("nan"), 20.0], ["gnss", "gnss", "gnss", "cell"]).tolist()
    [0.5, 2.0, 5.0, 100.0]
    """
    return sigma_from_codes(accuracy_m, source_codes(source))


def source_codes(source) -> np.ndarray:
    """Index of each source name in :data:`geomon.schema.SOURCES` (int64); an unknown one is an InputError."""
    source = np.asarray(source, dtype=object)
    codes = np.asarray(pc.fill_null(pc.index_in(pa.array(source.ravel(), pa.string()),
                                                 value_set=pa.array(SOURCES)), -1)).reshape(source.shape)
    if (codes < 0).any():
        raise InputError("fixes", f"unknown source {source[codes < 0][0]!r}; expected one of {', '.join(SOURCES)}",
                         field="source")
    return codes.astype(np.int64)


_FLOOR = np.array([SOURCE_FLOOR_M[name] for name in SOURCES])
_DEFAULT = np.array([SOURCE_DEFAULT_M[name] for name in SOURCES])
#: Index of each source in :data:`geomon.schema.SOURCES`.
SOURCE_CODE = {name: i for i, name in enumerate(SOURCES)}


#: A position from cell (or Wi-Fi) fixes is trusted to this many times their reported accuracy: their error over
#: a stay is one bias (one tower), up to 3-4 of their sigmas, that averaging does not remove.
CELL_BIAS_FACTOR = 2.5


def trusted_sigma_m(fused_sigma_m, accuracy_m, satellite) -> np.ndarray:
    """The 1-sigma (m) a decision may lean on: the fused one, but never less than the fix's own accuracy.

    For a fix not from satellites, never less than :data:`CELL_BIAS_FACTOR`
    times it: the errors of cell fixes are correlated over a stay (one tower,
    one bias), so averaging them gains far less than the filter assumes; a
    phone indoors on cell fixes 500 m off must not be judged away from home,
    or beside someone, on their average.
    """
    own = np.asarray(accuracy_m, dtype=np.float64)
    own = np.where(np.asarray(satellite, dtype=bool), own, CELL_BIAS_FACTOR * own)
    return np.fmax(np.asarray(fused_sigma_m, dtype=np.float64), own)


def sigma_from_codes(accuracy_m, source_code) -> np.ndarray:
    """:func:`fix_sigma_m` with sources given as indexes into :data:`geomon.schema.SOURCES` (valid ones)."""
    accuracy = np.asarray(accuracy_m, dtype=np.float64)
    code = np.asarray(source_code, dtype=np.int64)
    floor = _FLOOR[code]
    floor[(code == SOURCE_CODE["gnss"]) & (accuracy < AUGMENTED_GNSS_BELOW_M)] = AUGMENTED_GNSS_FLOOR_M
    return np.where(np.isfinite(accuracy), np.maximum(accuracy, floor), _DEFAULT[code])


#: :data:`CORRELATED_SOURCES` as source codes.
CORRELATED_CODES = np.array([SOURCE_CODE[name] for name in CORRELATED_SOURCES])


def correlated_run_length(source_code: np.ndarray, new_track: np.ndarray, carried_source=None,
                          carried_length=None) -> np.ndarray:
    """Position (1, 2, ...) of each fix in its run of consecutive same-source correlated fixes; 1 elsewhere.

    Parameters
    ----------
    source_code : int array
        Source of each fix as :func:`source_codes` gives it, tracks one after
        another in time order.
    new_track : bool array
        True at each track's first fix.
    carried_source, carried_length : int arrays, optional
        Per fix, the source and length of the run its track ended the previous
        batch with (-1 and 0 for none): a track's first run that continues it
        goes on counting (a stream cut into batches counts as one).

    Examples
    --------
    >>> cell = SOURCE_CODE["cell"]
    >>> correlated_run_length(np.array([cell, cell, 0, cell]), np.array([True, False, False, False])).tolist()
    [1, 2, 1, 1]
    """
    source_code = np.asarray(source_code, dtype=np.int64)
    n = source_code.size
    correlated = np.isin(source_code, CORRELATED_CODES)
    same = np.zeros(n, bool)
    same[1:] = correlated[1:] & (source_code[1:] == source_code[:-1]) & ~new_track[1:]
    index = np.arange(n)
    run_start = np.maximum.accumulate(np.where(same, 0, index))
    run = index - run_start + 1
    if carried_source is not None:
        head = correlated & (source_code == carried_source)
        head &= run_start == np.maximum.accumulate(np.where(new_track, index, 0))
        run[head] += np.asarray(carried_length)[head]
    return run


def _fix_table(fixes) -> pa.Table:
    return fix_table(fixes, FIX_REQUIRED)


def _float(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = pc.cast(table.column(name), pa.float64())
    return np.asarray(column.fill_null(np.nan).to_numpy(), dtype=np.float64)


def _tracks(subject_id: pa.ChunkedArray, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable ``(subject_id, ts)`` order of the fixes and the CSR offsets of each subject's track in it."""
    n = len(t_ms)
    keys = pa.table({"subject_id": subject_id, "t_ms": t_ms})
    order = pc.sort_indices(keys, sort_keys=[("subject_id", "ascending"), ("t_ms", "ascending")]).to_numpy()
    subject = pc.take(subject_id, pa.array(order))
    if n < 2:
        return order, np.array([0, n] if n else [0], np.int64)
    changes = pc.not_equal(subject[1:], subject[:-1]).to_numpy(zero_copy_only=False)
    return order, np.concatenate([[0], np.flatnonzero(changes) + 1, [n]]).astype(np.int64)


def fuse(fixes, *, frame: LocalFrame | int | str | None = None, smooth: bool = False, **params) -> pa.Table:
    """Fused position, covariance and velocity at every fix.

    Parameters
    ----------
    fixes : FixLoad or pyarrow.Table
        Fixes as :func:`geomon.io.load.load_fixes` returns them, or a table in
        :data:`geomon.schema.FIX_SCHEMA` (extra columns are kept). Null
        ``lon``/``lat`` are fixes without a position; null ``accuracy_m`` takes
        the source default.
    frame : LocalFrame, int or str, optional
        The local metric frame (or its EPSG code / CRS) to filter in. By
        default :func:`geomon.geo.crs.choose_frame` picks one from the fixes; a
        replay cut into batches should pass the deployment's frame.
    smooth : bool
        Report the Rauch-Tung-Striebel smoothed states instead of the causal
        filter's (forensic replay only; ``status`` stays the filter's).
    **params
        Filter parameters, see :data:`geomon.kernels.fusion.DEFAULT_PARAMS`.

    Returns
    -------
    pyarrow.Table
        One row per input fix, in the input order: the input columns, then
        (replacing any input columns of the same names)

        - ``sigma_m`` float64: the per-axis noise the filter used (m):
          :func:`fix_sigma_m`, times ``sqrt(k)`` for the k-th fix of a run of
          consecutive fixes of one of :data:`CORRELATED_SOURCES`;
        - ``fused_lon``, ``fused_lat`` float64: fused position, degrees in the
          frame's geodetic datum (WGS84/CGCS2000);
        - ``x_m``, ``y_m`` float64: the same in the local frame (m);
        - ``var_x_m2``, ``var_y_m2``, ``cov_xy_m2`` float64: its covariance in
          the frame (m^2);
        - ``vx_mps``, ``vy_mps`` float64: velocity in the frame (m/s);
        - ``status`` int8: 0 accepted (counted as clean), 1 rejected (likelier
          multipath: the output leans on the prediction, its covariance
          covering both), 2 reinitialised (first usable fix, after a gap, or
          on two fixes beyond multipath's reach), 3 predicted (no position);
          names in :data:`STATUS_NAMES`;
        - ``p_outlier`` float64: probability that the fix is multipath rather
          than where the subject is (the covariance covers both);
        - ``noise_m`` float64: the per-axis noise the filter used, ``sigma_m``
          times the square root of the noise scale it learnt for the subject
          (the reported accuracy is its prior, not its truth).
          Both always the causal filter's.

        Fused values are NaN only for fixes before a subject's first usable fix.

    Raises
    ------
    InputError
        Missing columns, null ``subject_id`` or ``ts``, an unknown ``source``,
        or no usable position to choose a frame from.

    Notes
    -----
    Fixes are sorted stably by ``(subject_id, ts)`` before filtering, so the
    input order does not matter. The filter takes fix errors as independent,
    but consecutive cell (or Wi-Fi) fixes share the serving tower's offset; with
    the ``sqrt(k)`` inflation a run of ``n`` of them carries about ``ln n``
    fixes' worth of information instead of ``n``, which keeps a long indoor
    stay on cell fixes from shrinking the reported variance below the tower
    offset (on the bundled sample day it cuts the mean NEES of cell fixes from
    about 16 to about 3). Noise is taken per axis in ground metres; the
    frame's scale factor (within 0.1 % of 1, see :mod:`geomon.geo.crs`) is ignored.
    """
    table = _fix_table(fixes)
    n = table.num_rows
    lon, lat = _float(table, "lon"), _float(table, "lat")
    source = np.asarray(table.column("source").to_numpy(zero_copy_only=False), dtype=object)
    ts = pc.cast(table.column("ts"), pa.timestamp("ms", tz=table.schema.field("ts").type.tz), safe=False)
    t_ms = np.asarray(pc.cast(ts, pa.int64()).to_numpy(), dtype=np.int64)
    order, offsets = _tracks(table.column("subject_id"), t_ms)

    new_track = np.zeros(n, bool)
    new_track[offsets[:-1][offsets[:-1] < n]] = True
    codes = source_codes(source[order])
    sigma_sorted = sigma_from_codes(_float(table, "accuracy_m")[order], codes)
    sigma_sorted *= np.sqrt(correlated_run_length(codes, new_track))
    if n:
        local = frame if isinstance(frame, LocalFrame) else choose_frame(lon, lat, epsg=frame)
        x, y = local.project(lon[order], lat[order])
    else:
        x = y = np.zeros(0)
    t_sorted = t_ms[order]
    filtered = _kf.fuse_step(offsets, t_sorted, x, y, sigma_sorted, _kf.new_state(offsets.size - 1), **params)
    p_outlier, noise = filtered[9], filtered[10]
    if smooth:
        status, link, pred, filt = _kf.fuse_tracks_history(offsets, t_sorted, x, y, sigma_sorted, **params)
        state = rts_smooth(offsets, t_sorted, link, pred, filt)
        var = state[:, 4]
        fused = (state[:, 0], state[:, 1], var, var.copy(), 0.0 * var, state[:, 2], state[:, 3], status, p_outlier,
                 noise)
    else:
        fused = filtered[:8] + (p_outlier, noise)

    def unsort(values):
        out = np.empty_like(values)
        out[order] = values
        return out

    fx, fy, var_x, var_y, cov_xy, vx, vy, status, p_outlier, noise = (unsort(v) for v in fused)
    if n:
        fused_lon, fused_lat = local.unproject(fx, fy)
    else:
        fused_lon = fused_lat = np.zeros(0)
    columns = {
        "sigma_m": unsort(sigma_sorted), "fused_lon": fused_lon, "fused_lat": fused_lat, "x_m": fx, "y_m": fy,
        "var_x_m2": var_x, "var_y_m2": var_y, "cov_xy_m2": cov_xy, "vx_mps": vx, "vy_mps": vy,
        "status": status.astype(np.int8), "p_outlier": p_outlier, "noise_m": noise,
    }
    out = table.drop_columns([c for c in FUSED_COLUMNS if c in table.column_names])
    for name in FUSED_COLUMNS:
        out = out.append_column(name, pa.array(columns[name]))
    return out
