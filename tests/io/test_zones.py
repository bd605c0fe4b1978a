"""Tests of geomon.io.load.load_zones: GeoJSON and GeoParquet, quarantine and repairs."""

from __future__ import annotations

import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from geomon.errors import InputError
from geomon.io.load import load_zones
from geomon.schema import QUARANTINE_SCHEMA, REPAIR_SCHEMA, ZONE_PROPERTIES_SCHEMA

SQUARE_CCW = [[116.30, 39.90], [116.31, 39.90], [116.31, 39.91], [116.30, 39.91], [116.30, 39.90]]
SQUARE_CW = SQUARE_CCW[::-1]
BOW_TIE = [[116.30, 39.90], [116.31, 39.91], [116.31, 39.90], [116.30, 39.91], [116.30, 39.90]]
HOLE_CCW = [[116.303, 39.903], [116.306, 39.903], [116.306, 39.906], [116.303, 39.906], [116.303, 39.903]]


def feature(zone_id, kind="forbidden", rings=(SQUARE_CCW,), gtype="Polygon", **props):
    geometry = None if rings is None else {"type": gtype, "coordinates": [list(r) for r in rings]}
    return {"type": "Feature", "properties": {"zone_id": zone_id, "kind": kind, **props}, "geometry": geometry}


def write_geojson(path, features, **top):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **top}))
    return path


def test_valid_ccw_polygon_loads_unchanged_with_properties(tmp_path):
    path = write_geojson(
        tmp_path / "z.geojson",
        [
            feature(
                "z1", "permitted", buffer_m=25, schedule={"days": "mon-fri"}, subject_ids=["p1", 2],
                office_id="o1", note="x",
            ),
            feature("z2", "home", subject_ids="p1, p3", note="y"),
            feature("z3", "camera", subject_ids=""),
        ],
    )
    zones = load_zones(path)
    assert (zones.n_read, zones.n_accepted, zones.n_quarantined) == (3, 3, 0)
    assert list(zones.zone_id) == ["z1", "z2", "z3"] and list(zones.kind) == ["permitted", "home", "camera"]
    assert zones.repairs.num_rows == 0 and zones.repairs.schema.equals(REPAIR_SCHEMA)
    assert shapely.equals_exact(zones.geometry[0], shapely.Polygon(SQUARE_CCW), tolerance=0)
    props = zones.properties
    assert props.schema.names == ZONE_PROPERTIES_SCHEMA.names + ["note"]
    assert props.select(ZONE_PROPERTIES_SCHEMA.names).schema.equals(ZONE_PROPERTIES_SCHEMA)
    assert props.column("buffer_m").to_pylist() == [25.0, None, None]
    assert json.loads(props.column("schedule")[0].as_py()) == {"days": "mon-fri"}
    assert props.column("subject_ids").to_pylist() == [["p1", "2"], ["p1", "p3"], None]
    assert props.column("note").to_pylist() == ["x", "y", None]


def test_bow_tie_is_made_valid_and_reported(tmp_path):
    zones = load_zones(write_geojson(tmp_path / "z.geojson", [feature("bow", rings=[BOW_TIE])]))
    assert zones.n_accepted == 1
    (repair,) = zones.repairs.to_pylist()
    assert (repair["zone_id"], repair["repair"]) == ("bow", "made_valid")
    assert repair["detail"].startswith("Self-intersection")
    geom = zones.geometry[0]
    assert shapely.is_valid(geom) and geom.geom_type == "MultiPolygon"
    assert geom.area == pytest.approx(0.5 * 0.01 * 0.01)


def test_unclosed_ring_is_closed_and_reported(tmp_path):
    zones = load_zones(write_geojson(tmp_path / "z.geojson", [feature("open", rings=[SQUARE_CCW[:-1]])]))
    assert zones.repairs.column("repair").to_pylist() == ["ring_closed"]
    ring = shapely.get_coordinates(zones.geometry[0].exterior)
    assert np.array_equal(ring[0], ring[-1]) and len(ring) == 5


def test_clockwise_exterior_and_counter_clockwise_hole_are_reoriented_and_reported(tmp_path):
    path = write_geojson(
        tmp_path / "z.geojson", [feature("cw", rings=[SQUARE_CW]), feature("hole", rings=[SQUARE_CCW, HOLE_CCW])]
    )
    zones = load_zones(path)
    assert zones.repairs.column("zone_id").to_pylist() == ["cw", "hole"]
    assert set(zones.repairs.column("repair").to_pylist()) == {"winding_reoriented"}
    for geom in zones.geometry:
        assert shapely.is_ccw(geom.exterior)
        assert not any(shapely.is_ccw(r) for r in geom.interiors)
    assert zones.geometry[1].area == pytest.approx(0.01 * 0.01 - 0.003 * 0.003)


QUARANTINE_CASES = [
    (
        feature("pt", gtype="Point", rings=None) | {"geometry": {"type": "Point", "coordinates": [116.3, 39.9]}},
        "geometry",
        "geometry_not_polygonal",
    ),
    (feature("none", rings=None), "geometry", "geometry_missing"),
    (feature("bad", rings=[[["a", "b"]]]), "geometry", "geometry_unparseable"),
    (feature("short", rings=[[[116.3, 39.9], [116.31, 39.9], [116.3, 39.9]]]), "geometry", "ring_too_short"),
    (feature("far", rings=[[[p[0] + 100, p[1]] for p in SQUARE_CCW]]), "geometry", "geometry_out_of_range"),
    (feature(None), "zone_id", "zone_id_missing"),
    (feature("k", kind="nightclub"), "kind", "kind_unknown"),
    (feature("k2", kind=None), "kind", "kind_missing"),
    (feature("buf", buffer_m="wide"), "buffer_m", "buffer_invalid"),
    (feature("sch", schedule="{not json"), "schedule", "schedule_invalid"),
    (feature("sub", subject_ids={"a": 1}), "subject_ids", "subject_ids_invalid"),
    ({"type": "Feature", "properties": 5, "geometry": None}, None, "feature_invalid"),
    (feature("ok"), "zone_id", "zone_id_duplicate"),  # "ok" is also the first feature
]


@pytest.mark.parametrize(("bad", "field", "reason"), QUARANTINE_CASES)
def test_each_zone_reason_is_quarantined(tmp_path, bad, field, reason):
    path = write_geojson(tmp_path / "z.geojson", [feature("ok"), bad, feature("ok2")])
    zones = load_zones(path)
    assert (zones.n_read, zones.n_accepted, zones.n_quarantined) == (3, 2, 1)
    assert zones.quarantine.schema.equals(QUARANTINE_SCHEMA)
    q = zones.quarantine.to_pylist()[0]
    assert (q["source_name"], q["row"], q["field"], q["reason"]) == (str(path), 1, field, reason)
    assert json.loads(q["raw"]) == json.loads(json.dumps(bad))
    assert list(zones.zone_id) == ["ok", "ok2"]


def geoparquet_table(geoms, zone_ids, kinds, crs=None, **extra):
    table = pa.table(
        {
            "zone_id": zone_ids,
            "kind": kinds,
            **extra,
            "geometry": pa.array(list(shapely.to_wkb(np.asarray(geoms, dtype=object))), pa.binary()),
        }
    )
    column = {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"]}
    if crs is not None:
        column["crs"] = crs
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})


def test_geoparquet_round_trip(tmp_path):
    geojson = load_zones(
        write_geojson(
            tmp_path / "z.geojson",
            [
                feature("a", "permitted", subject_ids=["p1"], buffer_m=10.0),
                feature("b", "forbidden", rings=[SQUARE_CCW, HOLE_CCW[::-1]], office_id="o2"),
            ],
        )
    )
    table = geoparquet_table(
        geojson.geometry,
        list(geojson.zone_id),
        list(geojson.kind),
        subject_ids=geojson.properties.column("subject_ids"),
        buffer_m=geojson.properties.column("buffer_m"),
        office_id=geojson.properties.column("office_id"),
        floor_count=pa.array([1, 2], pa.int32()),
    )
    pq.write_table(table, tmp_path / "z.parquet")
    zones = load_zones(tmp_path / "z.parquet")
    assert (zones.n_read, zones.n_accepted, zones.repairs.num_rows) == (2, 2, 0)
    assert list(zones.zone_id) == ["a", "b"]
    assert all(shapely.equals_exact(zones.geometry, geojson.geometry, tolerance=0))
    assert zones.properties.select(ZONE_PROPERTIES_SCHEMA.names).equals(geojson.properties)
    assert zones.properties.column("floor_count").type == pa.int32()


def unclosed_wkb_polygon(coords) -> bytes:
    blob = struct.pack("<BIII", 1, 3, 1, len(coords))
    return blob + b"".join(struct.pack("<dd", x, y) for x, y in coords)


def test_geoparquet_repairs_and_quarantine(tmp_path):
    table = geoparquet_table(
        [shapely.Polygon(BOW_TIE), shapely.Polygon(SQUARE_CW), shapely.Point(116.3, 39.9), shapely.Polygon(SQUARE_CCW)],
        ["bow", "cw", "point", "open"],
        ["forbidden", "forbidden", "camera", "home"],
    )
    wkb = table.column("geometry").to_pylist()
    wkb[3] = unclosed_wkb_polygon(SQUARE_CCW[:-1])
    table = table.set_column(2, "geometry", pa.array(wkb, pa.binary()))
    pq.write_table(table, tmp_path / "z.parquet")
    zones = load_zones(tmp_path / "z.parquet")
    assert (zones.n_read, zones.n_accepted, zones.n_quarantined) == (4, 3, 1)
    assert zones.quarantine.column("reason").to_pylist() == ["geometry_not_polygonal"]
    repairs = list(zip(zones.repairs.column("zone_id").to_pylist(), zones.repairs.column("repair").to_pylist()))
    assert repairs == [("bow", "made_valid"), ("cw", "winding_reoriented"), ("open", "ring_closed")]
    assert all(shapely.is_valid(zones.geometry))


@pytest.mark.parametrize(
    ("filename", "write", "problem"),
    [
        ("z.geojson", lambda p: p.write_bytes(b"\x00\x01binary"), "not a GeoJSON file"),
        ("z.json", lambda p: p.write_text('{"type": "Topology"}'), "not a GeoJSON FeatureCollection"),
        ("z.parquet", lambda p: pq.write_table(pa.table({"zone_id": ["a"]}), p), "no 'geo' metadata"),
        ("z.parquet", lambda p: p.write_text("zone_id,kind\n"), "not a readable Parquet file"),
        ("z.shp", lambda p: p.write_bytes(b"\x00\x00\x27\x0a"), "unsupported file type"),
        (
            "z.parquet",
            lambda p: pq.write_table(
                geoparquet_table(
                    [shapely.Polygon(SQUARE_CCW)], ["a"], ["home"], crs={"id": {"authority": "EPSG", "code": 32650}}
                ),
                p,
            ),
            "unsupported CRS",
        ),
        (
            "z.geojson",
            lambda p: write_geojson(p, [feature("a")], crs={"type": "name", "properties": {"name": "EPSG:3857"}}),
            "unsupported CRS",
        ),
    ],
)
def test_zone_files_that_are_not_what_they_claim_raise_input_error(tmp_path, filename, write, problem):
    path = tmp_path / filename
    write(path)
    with pytest.raises(InputError) as info:
        load_zones(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_lon_lat_crs_declarations_are_accepted(tmp_path):
    crs84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    assert load_zones(write_geojson(tmp_path / "a.geojson", [feature("a")], crs=crs84)).n_accepted == 1
    table = geoparquet_table(
        [shapely.Polygon(SQUARE_CCW)], ["a"], ["home"], crs={"id": {"authority": "EPSG", "code": 4490}}
    )
    pq.write_table(table, tmp_path / "a.parquet")
    assert load_zones(tmp_path / "a.parquet").n_accepted == 1


def test_gcj02_zone_is_shifted_by_a_few_hundred_metres(tmp_path):
    path = write_geojson(tmp_path / "z.geojson", [feature("a")])
    wgs, gcj = load_zones(path), load_zones(path, datum="gcj02")
    (x0, y0), (x1, y1) = shapely.get_coordinates(wgs.geometry[0])[0], shapely.get_coordinates(gcj.geometry[0])[0]
    dx_m = np.radians(x1 - x0) * 6_371_000 * np.cos(np.radians(y0))
    dy_m = np.radians(y1 - y0) * 6_371_000
    assert 100 < np.hypot(dx_m, dy_m) < 700
    assert shapely.is_valid(gcj.geometry[0]) and shapely.is_ccw(gcj.geometry[0].exterior)


def test_nan_at_ring_start_is_quarantined_not_a_crash():
    nan = float("nan")
    z = load_zones({"type": "FeatureCollection", "features": [{"type": "Feature",
                    "properties": {"zone_id": "z", "kind": "home"},
                    "geometry": {"type": "Polygon",
                                 "coordinates": [[[nan, 39.9], [116.31, 39.9], [116.31, 39.91], [116.3, 39.9]]]}}]})
    assert z.quarantine.column("reason").to_pylist() == ["geometry_not_finite"]
    assert z.n_read == z.n_accepted + z.n_quarantined == 1


def test_directory_instead_of_zone_file_is_an_input_error(tmp_path):
    d = tmp_path / "zones.geojson"
    d.mkdir()
    with pytest.raises(InputError, match="directory"):
        load_zones(d)
