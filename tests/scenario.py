"""A tiny hand-made county for engine tests: known zones, subjects and paths.

Geometry is made in a local metric frame (UTM 50N around 117.7E, 37.5N) and
converted to lon/lat, so tests can reason in metres.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from geomon.geo.crs import LocalFrame
from geomon.io.load import load_subjects, load_zones
from geomon.rules.load import Rules, default_rules

FRAME = LocalFrame("EPSG:32650")
X0, Y0 = 563_000.0, 4_150_000.0  # county centre, metres
T0_MS = 1_762_041_600_000  # 2025-11-02T00:00:00Z


def to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    def f(c):
        lon, lat = FRAME.unproject(c[:, 0], c[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, f)


def feature(zone_id, kind, geom_m, **props):
    return {"type": "Feature", "properties": {"zone_id": zone_id, "kind": kind, **props},
            "geometry": shapely.geometry.mapping(to_lonlat(geom_m))}


def zones():
    """County 10 km square; a 100 m bar at +2 km east; a victim's home (s1 only) at +2 km north; 2 offices."""
    county = shapely.box(X0 - 5000, Y0 - 5000, X0 + 5000, Y0 + 5000)
    feats = [
        feature("county", "permitted", county),
        feature("bar", "forbidden", shapely.Point(X0 + 2000, Y0).buffer(100, 32), category="bar"),
        feature("victim-1", "forbidden", shapely.Point(X0, Y0 + 2000).buffer(150, 32), category="victim_home",
                subject_ids=["s1"]),
        feature("west", "jurisdiction", shapely.box(X0 - 5000, Y0 - 5000, X0, Y0 + 5000), office_id="office-w"),
        feature("east", "jurisdiction", shapely.box(X0, Y0 - 5000, X0 + 5000, Y0 + 5000), office_id="office-e"),
    ]
    return load_zones({"type": "FeatureCollection", "features": feats})


def subjects(n=3):
    ids = [f"s{i + 1}" for i in range(n)]
    return load_subjects(pa.table({"subject_id": ids,
                                   "level": ["ordinary", "strict"] * (n // 2) + ["ordinary"] * (n % 2),
                                   "office_id": ["office-w"] * n}))


def legacy_rules() -> Rules:
    """The packaged rules with every profile on the legacy breach rule (``breach_by_fixes``): fixes and seconds."""
    return default_rules().with_values(breach_by_fixes=True)


def fixes(subject_id, x_m, y_m, t_ms, accuracy_m=3.0):
    x_m = np.asarray(x_m, float)
    lon, lat = FRAME.unproject(x_m, np.asarray(y_m, float))
    n = len(lon)
    return pa.table({
        "subject_id": pa.array([subject_id] * n, pa.string()),
        "ts": pa.array(np.asarray(t_ms, np.int64), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "lon": lon, "lat": lat,
        "source": pa.array(["gnss"] * n, pa.string()),
        "accuracy_m": pa.array(np.full(n, accuracy_m, np.float32)),
    })


def walk(subject_id, start_m, end_m, *, t0_ms=T0_MS, step_s=30, speed_mps=1.2):
    """Straight walk from start to end at constant speed, one fix every ``step_s``."""
    start = np.asarray(start_m, float)
    end = np.asarray(end_m, float)
    length = float(np.hypot(*(end - start)))
    n = int(length / (speed_mps * step_s)) + 1
    frac = np.linspace(0.0, 1.0, n)
    pts = start + frac[:, None] * (end - start)
    t = t0_ms + np.round(frac * length / speed_mps * 1000).astype(np.int64)
    return fixes(subject_id, pts[:, 0], pts[:, 1], t)


def companion(fixes: pa.Table, subject: str, person: str, starts_ms, east_m: float, minutes: float = 20.0) -> pa.Table:
    """Fixes of ``person`` one second behind ``subject`` and ``east_m`` east of it for ``minutes`` from each start:
    someone walking with the subject (a person of concern, or a protected person it comes near)."""
    import pyarrow.compute as pc

    ts = fixes.column("ts").cast(pa.int64()).to_numpy()
    keep = np.zeros(fixes.num_rows, bool)
    for start in starts_ms:
        keep |= (ts >= start) & (ts < start + minutes * 60_000)
    keep &= pc.equal(fixes.column("subject_id"), subject).to_numpy(zero_copy_only=False)
    c = fixes.filter(pa.array(keep))
    lon = c.column("lon").to_numpy() + east_m / (111_320.0 * np.cos(np.radians(c.column("lat").to_numpy())))
    c = c.set_column(c.schema.get_field_index("lon"), "lon", pa.array(lon))
    later = pc.add(c.column("ts").cast(pa.int64()), 1000).cast(fixes.schema.field("ts").type)
    c = c.set_column(c.schema.get_field_index("ts"), "ts", later)
    return c.set_column(0, "subject_id", pa.array([person] * c.num_rows, pa.string())).cast(fixes.schema)


def write_county(folder) -> tuple:
    """This county's zones (GeoJSON) and three subjects (CSV) written into ``folder``, for commands reading files."""
    import json
    from pathlib import Path

    import pyarrow.csv as pacsv

    folder = Path(folder)
    loaded = zones()
    feats = [{"type": "Feature", "properties": {k: v for k, v in props.items() if v is not None},
              "geometry": json.loads(shapely.to_geojson(geom))}
             for geom, props in zip(loaded.geometry, loaded.properties.to_pylist())]
    (folder / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    pacsv.write_csv(subjects(3).table.drop_columns(["home_zone_id"]), folder / "subjects.csv")
    return folder / "zones.geojson", folder / "subjects.csv"
