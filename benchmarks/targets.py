"""The thresholds every benchmark metric is held to, read from ``benchmarks/targets.toml``.

Each metric a suite reports has a key (:func:`benchmarks.report.target`): a
base name, and after ``@`` the size or variant it was measured at. The file
has a table per suite of ``geomon bench`` and, in it, an entry per key. The
exact key is looked up first, then the base name, so one entry can cover
every size. An entry gives ``op`` (``>=``, ``<=``, ``<`` or ``in``) and
``value`` (the product's bar itself: a target the engine misses shows as
missed, never beside a looser gate), and optionally ``why``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from benchmarks import report

DEFAULT_PATH = Path(__file__).resolve().parent / "targets.toml"

#: The ``geomon bench`` suites whose table holds the targets of each suite's JSON (its ``suite`` field).
SECTIONS = {"pip": ("pip", "zones"), "staypoints": ("stay",), "huge": ("replay",)}


def load(path: Path | None = None) -> dict:
    """The targets file as {suite: {key: entry}}; checked, so that a typo fails here and not after a long run."""
    path = Path(path) if path is not None else DEFAULT_PATH
    with open(path, "rb") as f:
        data = tomllib.load(f)
    for suite, entries in data.items():
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: [{suite}] must be a table of metric keys")
        for key, e in entries.items():
            where = f"{path}: [{suite}] {key}"
            if not isinstance(e, dict) or "op" not in e or "value" not in e:
                raise ValueError(f"{where}: needs op and value")
            if e["op"] not in (">=", "<=", "<", "in"):
                raise ValueError(f"{where}: op must be >=, <=, < or in, got {e['op']!r}")
            if e["op"] == "in" and (not isinstance(e["value"], list) or len(e["value"]) != 2):
                raise ValueError(f"{where}: op 'in' needs value = [low, high]")
            unknown = set(e) - {"op", "value", "why"}
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    return data


def lookup(table: dict, suite: str, key: str | None) -> dict | None:
    """The entry for ``key`` of a suite's JSON (exact key, then its base before ``@``), or None."""
    if not key:
        return None
    for section in SECTIONS.get(suite, (suite,)):
        entries = table.get(section, {})
        for k in (key, key.split("@", 1)[0]):
            if k in entries:
                return entries[k]
    return None


def apply(targets: list[dict], suite: str, table: dict) -> list[dict]:
    """Hold each target to its entry in the file (a wrong or void measurement stays FAIL); mark those it lacks."""
    for t in targets:
        entry = lookup(table, suite, t.get("key"))
        if entry is None:
            t["source"] = "suite default"
            continue
        t["op"] = entry["op"]
        t["threshold"] = list(entry["value"]) if entry["op"] == "in" else entry["value"]
        t["source"] = "targets.toml"
        t.update(verdict(t["measured"], t, wrong=bool(t.get("void") or t.get("mismatches"))))
    return targets


def verdict(measured: float | None, target: dict, *, wrong: bool) -> dict:
    """``status`` of a measurement against a target's gate (FAIL whatever its value when it was found wrong)."""
    return {"status": "FAIL" if wrong else report.judge(measured, target["op"], target["threshold"])}
