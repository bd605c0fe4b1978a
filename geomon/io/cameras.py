"""The camera layer: every alert names the nearest surveillance cameras, so an officer can pull footage.

The supervision centre cross-checks positions against the county's cameras
("position online + image offline"). :func:`load_cameras` reads the layer
(``camera_id``, ``lon``, ``lat``; CSV, Parquet or Arrow) with clear errors;
:class:`CameraLayer` adds to each alert's ``details`` a ``cameras`` list:
the cameras within ``radius_m`` of the alert's place, nearest first, at most
``k``, each with its distance in metres. Alerts without a place (NaN) get an
empty list.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import shapely

from geomon.errors import InputError
from geomon.geo.crs import transverse_mercator
from geomon.io.common import _read_tabular, _require_columns

__all__ = ["CameraLayer", "load_cameras"]


class CameraLayer:
    """Cameras indexed in a metric frame for nearest-within-radius lookups.

    Parameters
    ----------
    camera_id : sequence of str
    lon, lat : sequence of float
        WGS84 degrees.
    radius_m : float
        Cameras farther than this from an alert are not listed (default 300 m).
    k : int
        At most this many cameras per alert (default 3).
    """

    def __init__(self, camera_id, lon, lat, *, radius_m: float = 300.0, k: int = 3):
        self.camera_id = np.asarray(camera_id, dtype=object)
        lon = np.asarray(lon, np.float64)
        lat = np.asarray(lat, np.float64)
        self.frame = transverse_mercator(float(np.round(np.median(lon), 6)) if lon.size else 0.0)
        x, y = self.frame.project(lon, lat)
        self._points = shapely.points(x, y)
        self._tree = shapely.STRtree(self._points)
        self.radius_m = float(radius_m)
        self.k = int(k)

    def nearest(self, lon, lat) -> list[list[dict]]:
        """Per place, the cameras within ``radius_m``, nearest first, at most ``k``: ``[{camera_id, distance_m}]``."""
        lon = np.asarray(lon, np.float64)
        lat = np.asarray(lat, np.float64)
        out: list[list[dict]] = [[] for _ in range(lon.size)]
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any() or self.camera_id.size == 0:
            return out
        x, y = self.frame.project(lon[ok], lat[ok])
        places = shapely.points(x, y)
        pi, ci = self._tree.query(places, predicate="dwithin", distance=self.radius_m)
        dist = shapely.distance(places[pi], self._points[ci])
        rows = np.flatnonzero(ok)
        for p in np.unique(pi):
            mine = np.flatnonzero(pi == p)
            best = mine[np.lexsort((self.camera_id[ci[mine]].astype(str), dist[mine]))][: self.k]
            out[rows[p]] = [{"camera_id": str(self.camera_id[ci[j]]), "distance_m": round(float(dist[j]), 1)}
                            for j in best]
        return out

    def annotate(self, alerts: pa.Table) -> pa.Table:
        """``alerts`` (:data:`geomon.schema.ALERT_SCHEMA`) with ``cameras`` added to each row's ``details``."""
        if alerts.num_rows == 0:
            return alerts
        found = self.nearest(alerts.column("lon").to_numpy(zero_copy_only=False),
                             alerts.column("lat").to_numpy(zero_copy_only=False))
        details = [json.dumps({**json.loads(d), "cameras": c}, sort_keys=True)
                   for d, c in zip(alerts.column("details").to_pylist(), found)]
        i = alerts.schema.get_field_index("details")
        return alerts.set_column(i, alerts.schema.field(i), pa.array(details, pa.string()))


def load_cameras(source, *, radius_m: float = 300.0, k: int = 3, name: str | None = None) -> CameraLayer:
    """Read a camera layer (``camera_id``, ``lon``, ``lat``) from CSV, Parquet or an Arrow table.

    Raises
    ------
    InputError
        Missing columns, a null or duplicate ``camera_id``, or a coordinate
        that is not a finite number in range (naming the row and field).
    """
    table, src, malformed = _read_tabular(source, name, ("camera_id",))
    if malformed:
        row, text = malformed[0]
        raise InputError(src, f"malformed CSV record {text!r}", row=row)
    _require_columns(table, ("camera_id", "lon", "lat"), src)
    ids = table.column("camera_id").cast(pa.string()).to_pylist()
    for r, cid in enumerate(ids):
        if cid is None or cid == "":
            raise InputError(src, "camera_id is empty", row=r, field="camera_id")
    seen: dict = {}
    for r, cid in enumerate(ids):
        if cid in seen:
            raise InputError(src, f"camera_id {cid!r} also on row {seen[cid]}", row=r, field="camera_id")
        seen[cid] = r
    coords = {}
    for field, limit in (("lon", 180.0), ("lat", 90.0)):
        try:
            values = table.column(field).cast(pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(src, "not a number", field=field) from None
        bad = np.flatnonzero(~(np.isfinite(values) & (np.abs(values) <= limit)))
        if bad.size:
            raise InputError(src, f"{values[bad[0]]!r} is not a finite number within +/-{limit:g}",
                             row=int(bad[0]), field=field)
        coords[field] = values
    return CameraLayer(ids, coords["lon"], coords["lat"], radius_m=radius_m, k=k)
