"""One table of geomon functions and their peers, read by the benchmarks and the tests.

numbagg keeps the same kind of table in its test ``conftest.py``: each function
maps to its fast version and to the libraries it must agree with. Here each
:class:`Case` names the geomon attribute it exercises, builds the timed call for
geomon and for every peer from the same inputs, and says how to compare their
results. A new suite adds rows; it never times a function the table does not
list, so what is benchmarked is what is tested.

A setup function does the untimed preparation (``shapely.prepare``, building an
``STRtree`` or a ``ZoneIndex``) and returns a zero-argument callable that does
only the work being timed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely


class GeomonMissing(RuntimeError):
    """A geomon function named in the registry cannot be imported."""


@dataclass(frozen=True)
class PolygonPoints:
    """One Polygon or MultiPolygon and float64 point coordinates (projected metres)."""

    polygon: shapely.Geometry
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class ZonePoints:
    """Many zones and float64 point coordinates; ``points`` are built before timing."""

    zones: np.ndarray
    x: np.ndarray
    y: np.ndarray
    points: np.ndarray

    @classmethod
    def build(cls, zones: np.ndarray, x: np.ndarray, y: np.ndarray) -> ZonePoints:
        return cls(zones=np.asarray(zones, dtype=object), x=x, y=y, points=shapely.points(x, y))


Setup = Callable[[Any], Callable[[], Any]]


@dataclass(frozen=True)
class Case:
    """One geomon function, how to call it, and the peers it must agree with."""

    name: str
    #: Attribute of the ``geomon`` package (``geomon.<geomon>``).
    geomon: str
    #: ``(geomon attribute, inputs) -> timed call``.
    setup_geomon: Callable[[Any, Any], Callable[[], Any]]
    #: Peer label -> ``inputs -> timed call``. The first peer is the reference.
    peers: Mapping[str, Setup]
    #: Inputs class the setups expect.
    inputs: type
    #: "mask" (bool per point) or "pairs" (point index, zone index).
    result: str
    doc: str

    @property
    def label(self) -> str:
        return f"geomon.{self.geomon}"

    @property
    def reference(self) -> str:
        return next(iter(self.peers))


# --- setups ---------------------------------------------------------------------


def _shapely_xy(predicate: Callable, data: PolygonPoints) -> Callable[[], np.ndarray]:
    shapely.prepare(data.polygon)
    return functools.partial(predicate, data.polygon, data.x, data.y)


def _geomon_xy(function: Callable, data: PolygonPoints) -> Callable[[], np.ndarray]:
    return functools.partial(function, data.polygon, data.x, data.y)


def _strtree_query(predicate: str, data: ZonePoints) -> Callable[[], np.ndarray]:
    tree = shapely.STRtree(data.zones)
    return functools.partial(tree.query, data.points, predicate=predicate)


def _zone_index_query(predicate: str, zone_index_class: Callable, data: ZonePoints) -> Callable[[], Any]:
    index = zone_index_class(data.zones)
    return functools.partial(index.query_xy, data.x, data.y, predicate=predicate)


CASES: dict[str, Case] = {
    case.name: case
    for case in [
        Case(
            name="contains_xy",
            geomon="contains_xy",
            setup_geomon=_geomon_xy,
            peers={"shapely.contains_xy": functools.partial(_shapely_xy, shapely.contains_xy)},
            inputs=PolygonPoints,
            result="mask",
            doc="points strictly inside one polygon; shapely's polygon prepared",
        ),
        Case(
            name="intersects_xy",
            geomon="intersects_xy",
            setup_geomon=_geomon_xy,
            peers={"shapely.intersects_xy": functools.partial(_shapely_xy, shapely.intersects_xy)},
            inputs=PolygonPoints,
            result="mask",
            doc="points inside or on the boundary of one polygon; shapely's polygon prepared",
        ),
        Case(
            name="zone_index_intersects",
            geomon="ZoneIndex",
            setup_geomon=functools.partial(_zone_index_query, "intersects"),
            peers={"shapely.STRtree.query": functools.partial(_strtree_query, "intersects")},
            inputs=ZonePoints,
            result="pairs",
            doc="(point, zone) pairs, point in zone or on its boundary; tree and index built before timing",
        ),
        Case(
            name="zone_index_contains",
            geomon="ZoneIndex",
            setup_geomon=functools.partial(_zone_index_query, "contains"),
            # Zone contains point is point within zone, from the tree's side.
            peers={"shapely.STRtree.query": functools.partial(_strtree_query, "within")},
            inputs=ZonePoints,
            result="pairs",
            doc="(point, zone) pairs, point strictly inside zone; tree and index built before timing",
        ),
    ]
}


# --- resolving geomon -----------------------------------------------------------


def resolve_geomon(name: str, *, stand_in: bool = False) -> tuple[Any, bool]:
    """``geomon.<name>`` and whether it is a stand-in.

    With ``stand_in=True`` a missing function is replaced by its shapely-based
    stand-in from :mod:`benchmarks.standin` (to exercise the harness before the
    fast path exists); otherwise a missing function raises :class:`GeomonMissing`.
    """
    try:
        import geomon

        return getattr(geomon, name), False
    except Exception as exc:  # noqa: BLE001 - a half-written module may fail in any way
        if stand_in:
            from benchmarks import standin

            return getattr(standin, name), True
        raise GeomonMissing(
            f"geomon.{name} is not available ({type(exc).__name__}: {exc}). "
            "The benchmark times the real geomon function; pass --stand-in to run the "
            "harness end to end with shapely-based stand-ins instead."
        ) from exc


def setups(case: Case, *, stand_in: bool = False) -> dict[str, tuple[Setup, bool]]:
    """Label -> (setup, is_stand_in) for geomon and every peer of ``case``; geomon first."""
    function, is_stand_in = resolve_geomon(case.geomon, stand_in=stand_in)
    out: dict[str, tuple[Setup, bool]] = {case.label: (functools.partial(case.setup_geomon, function), is_stand_in)}
    out.update({label: (setup, False) for label, setup in case.peers.items()})
    return out


# --- comparing results ----------------------------------------------------------


def normalise(case: Case, raw: Any, data: Any) -> np.ndarray:
    """Result in a comparable form: a bool array, or sorted unique pair keys (point·n_zones + zone)."""
    if case.result == "mask":
        return np.asarray(raw, dtype=bool)
    if case.result == "pairs":
        point_index, zone_index = raw  # geomon returns a tuple, STRtree a (2, k) array
        keys = np.asarray(point_index, dtype=np.int64) * len(data.zones) + np.asarray(zone_index, dtype=np.int64)
        return np.unique(keys)
    raise ValueError(f"unknown result kind {case.result!r}")


def mismatches(case: Case, a: np.ndarray, b: np.ndarray) -> int:
    """Points (mask) or pairs (pairs) on which two normalised results disagree."""
    if case.result == "mask":
        if a.shape != b.shape:
            return max(a.size, b.size)
        return int(np.count_nonzero(a != b))
    return int(np.setxor1d(a, b, assume_unique=True).size)
