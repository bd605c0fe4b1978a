"""kernels/_warm.py: the list of signatures a first run compiles in a second process is the replay's own, and
compiling it skips what changed."""

from __future__ import annotations

import inspect
import json

import pyarrow.parquet as pq

from geomon.cli.main import SAMPLE_DIR
from geomon.kernels import _warm
from geomon.run.replay import replay


def test_every_listed_signature_is_one_a_replay_uses(tmp_path):
    entries = _warm._entries()
    assert len(entries) > 40
    fixes = pq.read_table(SAMPLE_DIR / "fixes.parquet").slice(0, 30_000)
    replay(fixes, SAMPLE_DIR / "zones.geojson", SAMPLE_DIR / "subjects.csv", db=tmp_path / "s.duckdb")
    checked = 0
    for entry in entries:
        dispatcher = _warm._dispatcher(entry)
        sig = _warm._types(entry)
        assert len(sig) == len(inspect.signature(dispatcher.py_func).parameters), entry
        if not entry["top"]:
            continue   # compiled while typing another kernel, whose cached code holds it: never loaded on its own
        # The kernels the replay called from Python: a stale entry (a kernel's arguments changed) fails here;
        # rerun `NUMBA_CACHE_DIR=$(mktemp -d) python -m benchmarks.record_signatures`.
        assert sig in dispatcher.overloads, (entry, list(dispatcher.overloads))
        checked += 1
    assert checked >= 10


def test_compiling_backwards_skips_a_stale_entry(tmp_path, monkeypatch):
    listed = [{"module": "geomon.kernels.tmerc", "name": "_wrap_pi", "args": ["float64"]},
              {"module": "geomon.kernels.tmerc", "name": "no_such_kernel", "args": ["float64"]},
              {"module": "geomon.kernels.tmerc", "name": "_wrap_pi", "args": ["int64", "int64"]}]
    manifest = tmp_path / "signatures.json"
    manifest.write_text(json.dumps({"kernels": listed}))
    monkeypatch.setattr(_warm, "MANIFEST", manifest)
    assert _warm.compile_backwards() == 1
    monkeypatch.setattr(_warm, "MANIFEST", tmp_path / "missing.json")
    assert _warm._entries() == [] and not _warm.cold() and _warm.start() is None
