"""The files a simulation writes: fixes, zones and the subject register.

Part of :mod:`geomon.sim.simulate`. Geometry is converted from the simulation's
local metric frame to WGS84 lon/lat on the way out. The zones follow RFC 7946
(exterior rings counter-clockwise); the fixes follow
:data:`geomon.schema.FIX_SCHEMA`, sorted by subject and time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geomon.schema import FIX_SCHEMA, TS_TYPE
from geomon.sim.geography import N_OFFICES, forbidden_id
from geomon.sim.noise import SOURCE_NAMES
from geomon.sim.routines import HOME

__all__ = ["write_fixes", "write_subjects", "write_zones", "zone_collection"]


def write_fixes(path: Path, frame, x0: float, y0: float, subjects, fix_parts, start_ms: int) -> int:
    """Write every subject's fixes (local metres, ms from ``start_ms``) as Parquet; return the row count."""
    counts = np.array([p[0].size for p in fix_parts])
    ts_ms, x, y, source, acc = (np.concatenate([p[k] for p in fix_parts]) for k in range(5))
    lon, lat = frame.unproject(x + x0, y + y0)
    ids = pa.array([s.sid for s in subjects], pa.string())
    subject_index = pa.array(np.repeat(np.arange(len(subjects), dtype=np.int32), counts))
    source_index = pa.array(source.astype(np.int32))
    fixes = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(subject_index, ids).cast(pa.string()),
            pa.array(start_ms + ts_ms, pa.int64()).cast(TS_TYPE),
            pa.array(lon, pa.float64()),
            pa.array(lat, pa.float64()),
            pa.DictionaryArray.from_arrays(source_index, pa.array(list(SOURCE_NAMES))).cast(pa.string()),
            pa.array(acc, pa.float32()),
        ],
        schema=FIX_SCHEMA,
    )
    pq.write_table(
        fixes,
        path,
        compression="zstd",
        use_dictionary=["subject_id", "source", "accuracy_m"],
        use_byte_stream_split=["lon", "lat"],
        column_encoding={"ts": "DELTA_BINARY_PACKED"},
    )
    return fixes.num_rows


def write_subjects(path: Path, geo, subjects) -> None:
    """Write the subject register; each subject's office is the jurisdiction containing the home."""
    homes = np.array([s.places[HOME] for s in subjects])
    office = np.full(len(subjects), -1)
    for k, cell in enumerate(geo.cells):
        office[shapely.contains_xy(cell, homes[:, 0], homes[:, 1])] = k
    for i in np.flatnonzero(office < 0):  # on a border: the nearest cell
        office[i] = int(np.argmin(shapely.distance(geo.cells, shapely.Point(homes[i]))))
    lines = ["subject_id,level,office_id,home_zone_id"]
    lines += [f"{s.sid},{s.level},office-{office[i] + 1:02d},home-{s.sid}" for i, s in enumerate(subjects)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _geojson_polygon(g: shapely.Polygon) -> dict:
    rings = [g.exterior, *g.interiors]
    return {"type": "Polygon", "coordinates": [shapely.get_coordinates(r).tolist() for r in rings]}


def zone_collection(frame, geoms_m, props: list[dict], *, x0: float = 0.0, y0: float = 0.0) -> dict:
    """A GeoJSON FeatureCollection of polygons given in metres of ``frame`` (shifted by ``x0``, ``y0``).

    Converted to WGS84 lon/lat, exterior rings counter-clockwise; ``props[i]``
    are the properties of ``geoms_m[i]``. Every simulator (and the latency
    benchmark) writes its zones through this.
    """
    def to_lonlat(xy):
        lon, lat = frame.unproject(xy[:, 0] + x0, xy[:, 1] + y0)
        return np.column_stack([lon, lat])

    geoms = shapely.orient_polygons(shapely.transform(np.asarray(geoms_m, dtype=object), to_lonlat),
                                    exterior_cw=False)
    features = [{"type": "Feature", "properties": p, "geometry": _geojson_polygon(g)} for p, g in zip(props, geoms)]
    return {"type": "FeatureCollection", "features": features}


def write_zones(path: Path, frame, x0, y0, geo, subjects) -> int:
    """Write every zone (county, jurisdictions, forbidden places, homes) as GeoJSON; return the feature count."""
    n_sub = len(subjects)
    geoms = np.concatenate(
        [
            [geo.county],
            geo.cells,
            geo.zone_poly,
            [shapely.Point(s.places[HOME]).buffer(s.home_r_m, quad_segs=4) for s in subjects],
        ]
    )

    props = [{"zone_id": "county", "kind": "permitted", "subject_ids": None, "office_id": None}]
    for k in range(N_OFFICES):
        zone_id, office_id = f"jurisdiction-{k + 1:02d}", f"office-{k + 1:02d}"
        props.append({"zone_id": zone_id, "kind": "jurisdiction", "subject_ids": None, "office_id": office_id})
    for i, (cat, owner) in enumerate(zip(geo.zone_category, geo.zone_owner)):
        props.append(
            {
                "zone_id": forbidden_id(i),
                "kind": "forbidden",
                "subject_ids": None if owner < 0 else [subjects[owner].sid],
                "office_id": None,
                "category": cat,
            }
        )
    props += [{"zone_id": f"home-{s.sid}", "kind": "home", "subject_ids": [s.sid], "office_id": None} for s in subjects]
    assert len(props) == len(geoms) == 1 + N_OFFICES + len(geo.zone_poly) + n_sub
    doc = zone_collection(frame, geoms, props, x0=x0, y0=y0)
    path.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    return len(props)
