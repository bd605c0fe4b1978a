"""Fuzz the loaders with hostile input and check the loading contract (docs/loading.md, docs/fuzzing.md).

Every loader either returns a result whose counts add up (and whose quarantine
rows each have a reason and a row number) or refuses the input with a clear
:class:`geomon.errors.InputError`; nothing else may escape. The number of
examples per test is ``GEOMON_FUZZ_EXAMPLES`` (default 40); run with ``-s`` to
see how many cases each loader was given.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomon.errors import InputError
from geomon.io.load import load_fixes, load_rules, load_subjects, load_zones
from geomon.run.live import read_json_lines
from geomon.run.meetings import load_concern, load_protections
from geomon.schema import FIX_SCHEMA, QUARANTINE_SCHEMA, SUBJECT_SCHEMA
from tests import fuzz_inputs as fz

FUZZ = settings(
    max_examples=fz.EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
WORKDIR = Path(tempfile.mkdtemp(prefix="geomon-fuzz-"))


@pytest.fixture(scope="module", autouse=True)
def _case_report():
    """Print the cases tried per loader at the end of the module (shown with ``pytest -s``)."""
    yield
    print(f"\nfuzzed loader cases (GEOMON_FUZZ_EXAMPLES={fz.EXAMPLES}):\n{fz.report()}")
    shutil.rmtree(WORKDIR, ignore_errors=True)


def _fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=WORKDIR))


# --------------------------------------------------------------------------- property tests


@FUZZ
@given(st.data())
def test_fixes_from_hostile_tables_and_files(data):
    source = data.draw(fz.tabular_sources(fz.fix_rows(), FIX_SCHEMA.names, _fresh_dir()))
    datum = data.draw(st.sampled_from(["wgs84", "wgs84", "gcj02", "bd09"]))
    fz.check_outcome("fixes", lambda: load_fixes(source, datum=datum))


@FUZZ
@given(st.data())
def test_subjects_from_hostile_tables_and_files(data):
    source = data.draw(fz.tabular_sources(fz.subject_rows(), SUBJECT_SCHEMA.names, _fresh_dir()))
    fz.check_outcome("subjects", lambda: load_subjects(source))


@FUZZ
@given(st.data())
def test_zones_from_hostile_geojson_and_geoparquet(data):
    source = data.draw(fz.zone_sources(_fresh_dir()))
    datum = data.draw(st.sampled_from(["wgs84", "wgs84", "gcj02"]))
    fz.check_outcome("zones", lambda: load_zones(source, datum=datum))


@FUZZ
@given(fz.rules_texts())
def test_rules_from_hostile_toml(text):
    path = _fresh_dir() / "rules.toml"
    path.write_bytes(text)
    fz.check_outcome("rules", lambda: load_rules(path))


@st.composite
def _concern_rows(draw):
    return [{"person_id": draw(st.one_of(st.none(), fz.texts)), "subject_id": draw(st.one_of(st.none(), fz.texts))}
            for _ in range(draw(st.integers(0, 8)))]


@st.composite
def _order_rows(draw):
    radius = st.one_of(st.none(), st.sampled_from(["100", "50", "0", "-5", "nan", "inf", "x", "1e400", ""]),
                       st.floats().map(repr))
    return [{"subject_id": draw(st.one_of(st.none(), fz.texts)), "victim_id": draw(st.one_of(st.none(), fz.texts)),
             "warning_m": draw(radius), "alert_m": draw(radius)} for _ in range(draw(st.integers(0, 6)))]


@FUZZ
@given(st.data())
def test_persons_of_concern_from_hostile_input(data):
    source = data.draw(fz.tabular_sources(_concern_rows(), ["person_id", "subject_id"], _fresh_dir()))
    fz.check_outcome("concern", lambda: load_concern(source))


@FUZZ
@given(st.data())
def test_protection_orders_from_hostile_input(data):
    names = ["subject_id", "victim_id", "warning_m", "alert_m"]
    source = data.draw(fz.tabular_sources(_order_rows(), names, _fresh_dir()))
    fz.check_outcome("protections", lambda: load_protections(source))


@FUZZ
@given(fz.json_lines())
def test_json_lines_then_fixes(lines):
    table, numbers, refused = read_json_lines(lines, name="feed", first_line=1)
    assert refused.schema.equals(QUARANTINE_SCHEMA)
    assert len(numbers) == table.num_rows
    assert table.num_rows + refused.num_rows == sum(1 for line in lines if line.strip())
    fz.check_outcome("json_lines", lambda: load_fixes(table, name="feed"))


# --------------------------------------------------------------------------- single hostile cases


def _ring(n: int, *, random: bool) -> list:
    if random:  # a million random vertices: edges cross everywhere
        xy = np.random.default_rng(7).uniform([116.0, 39.0], [117.0, 40.0], (n, 2))
    else:
        a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        xy = np.column_stack([116.3 + 0.1 * np.cos(a), 39.9 + 0.1 * np.sin(a)])
    return np.vstack([xy, xy[:1]]).tolist()


@pytest.mark.parametrize("random", [False, True], ids=["circle", "self-intersecting"])
def test_a_million_vertex_polygon_is_decided_in_seconds(random):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": "big", "kind": "permitted"},
         "geometry": {"type": "Polygon", "coordinates": [_ring(1_000_000, random=random)]}}]}
    started = time.perf_counter()
    zones = fz.check_outcome("zones", lambda: load_zones(doc))
    elapsed = time.perf_counter() - started
    assert elapsed < 20.0, f"{elapsed:.1f} s"  # about 1 s and 3 s on a 2-core machine
    if random:
        assert zones.reason_counts() == {"geometry_unrepairable": 1}
    else:
        assert zones.n_accepted == 1 and zones.repairs.num_rows == 0


def test_a_few_crossings_in_a_large_polygon_are_still_repaired():
    ring = _ring(20_000, random=False)
    ring[10], ring[11] = ring[11], ring[10]
    doc = {"type": "Feature", "properties": {"zone_id": "county", "kind": "permitted"},
           "geometry": {"type": "Polygon", "coordinates": [ring]}}
    zones = fz.check_outcome("zones", lambda: load_zones(doc))
    assert zones.n_accepted == 1 and zones.repairs.column("repair").to_pylist() == ["made_valid"]


@pytest.mark.parametrize("inner", ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_geojson_nested_ten_thousand_levels_is_a_clear_error(tmp_path, inner):
    path = tmp_path / "deep.geojson"
    path.write_text('{"type": "FeatureCollection", "features": ' + inner + "}")
    with pytest.raises(InputError, match="nested too deeply"):
        load_zones(path)


def test_a_geojson_dict_nested_ten_thousand_levels_is_quarantined():
    deep = fz._deep(10_000, "list")
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": "a", "kind": "home", "x": deep},
         "geometry": {"type": "Polygon", "coordinates": [fz.SQUARE]}},
        {"type": "Feature", "properties": {"zone_id": "b", "kind": "home"},
         "geometry": {"type": "Polygon", "coordinates": deep}}]}
    zones = fz.check_outcome("zones", lambda: load_zones(doc))
    assert zones.quarantine.column("reason").to_pylist() == ["feature_invalid", "geometry_unparseable"]


def test_a_byte_order_mark_is_read_as_if_absent(tmp_path):
    csv = "subject_id,ts,lon,lat,source\ns1,2024-05-01T00:00:00Z,116.4,39.9,gnss\n"
    (tmp_path / "plain.csv").write_text(csv)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + csv.encode())
    assert load_fixes(tmp_path / "bom.csv").table.equals(load_fixes(tmp_path / "plain.csv").table)
    doc = json.dumps({"type": "Feature", "properties": {"zone_id": "a", "kind": "home"},
                      "geometry": {"type": "Polygon", "coordinates": [fz.SQUARE]}})
    (tmp_path / "bom.geojson").write_bytes(b"\xef\xbb\xbf" + doc.encode())
    assert list(load_zones(tmp_path / "bom.geojson").zone_id) == ["a"]
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf[profiles.ordinary]\nconfirm_s = 60\n[profiles.strict]\n")
    assert load_rules(tmp_path / "bom.toml").profile("ordinary")["confirm_s"] == 60


def test_header_only_csv_without_a_line_end_is_an_empty_load(tmp_path):
    (tmp_path / "a.csv").write_text("subject_id,ts,lon,lat,source")
    fixes = load_fixes(tmp_path / "a.csv")
    assert (fixes.n_read, fixes.n_quarantined) == (0, 0)


def test_carriage_return_line_ends_are_read(tmp_path):
    (tmp_path / "a.csv").write_text("subject_id,ts,lon,lat,source\rs1,2024-05-01T00:00:00Z,116.4,39.9,gnss\r")
    assert load_fixes(tmp_path / "a.csv").n_accepted == 1


@pytest.mark.parametrize("ts", [
    pa.array([2**62], pa.timestamp("s")),      # wrapped silently to 1970 before the fix
    pa.array([2**60], pa.timestamp("ms")),     # crashed writing the quarantine before the fix
    pa.array([999_999_999_999_999_999], pa.int64()),
    pa.array(["999999999999999999"]),
])
def test_times_beyond_2262_are_out_of_range_not_wrapped_or_fatal(ts):
    table = pa.table({"subject_id": ["s1"], "ts": ts, "lon": [116.4], "lat": [39.9], "source": ["gnss"]})
    fixes = fz.check_outcome("fixes", lambda: load_fixes(table))
    assert fixes.reason_counts() == {"ts_out_of_range": 1}


def test_integers_beyond_two_to_the_53_are_out_of_range_not_fatal():
    table = pa.table({"subject_id": ["s1", "s1"], "ts": ["2024-05-01T00:00:00Z", "2024-05-01T00:00:01Z"],
                      "lon": pa.array([2**64 - 180, 116], pa.uint64()), "lat": pa.array([39, 2**63 - 1], pa.int64()),
                      "source": ["gnss", "gnss"]})
    fixes = fz.check_outcome("fixes", lambda: load_fixes(table))
    assert fixes.reason_counts() == {"lat_out_of_range": 1, "lon_out_of_range": 1}


def test_an_inheritance_chain_of_thousands_of_profiles_resolves(tmp_path):
    chain = "".join(f'[profiles.p{i}]\ninherits = "p{i + 1}"\n' for i in range(3000))
    path = tmp_path / "rules.toml"
    path.write_text('[profiles.ordinary]\nconfirm_s = 60\n[profiles.strict]\ninherits = "p0"\n' + chain
                    + '[profiles.p3000]\ninherits = "ordinary"\n')
    assert load_rules(path).profile("strict")["confirm_s"] == 60


def test_protection_radii_must_be_numbers_and_ids_are_trimmed():
    table = pa.table({"subject_id": [" s1 "], "victim_id": ["v1"], "warning_m": [True], "alert_m": [True]})
    with pytest.raises(InputError, match="bool"):
        load_protections(table)
    table = pa.table({"subject_id": [" s1 "], "victim_id": ["v1"], "warning_m": ["100"], "alert_m": ["x"]})
    with pytest.raises(InputError, match="not a number") as info:
        load_protections(table)
    assert (info.value.row, info.value.field) == (0, "alert_m")
    assert load_concern(pa.table({"person_id": [" P1 "], "subject_id": ["  "]})) == {"P1": None}


# --------------------------------------------------------------------------- JSON lines (geomon/run/live.py)


def test_json_lines_nested_ten_thousand_levels_are_refused_as_bad_json():
    _, _, refused = read_json_lines(["[" * 10_000 + "]" * 10_000], name="feed", first_line=1)
    assert refused.column("reason").to_pylist() == ["bad_json"]


def test_json_lines_with_an_integer_of_5000_digits_is_refused_as_bad_json():
    _, _, refused = read_json_lines(['{"ts": ' + "9" * 5000 + "}"], name="feed", first_line=1)
    assert refused.column("reason").to_pylist() == ["bad_json"]


def test_json_lines_with_a_lone_surrogate_is_refused_as_one_line():
    _, _, refused = read_json_lines(['{"subject_id": "\\ud800"}'], name="feed", first_line=1)
    assert refused.num_rows == 1
