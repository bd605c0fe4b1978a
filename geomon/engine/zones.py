"""Zones compiled for the engine: projected once, indexed by role, with their assignments.

The Monitor asks three questions of zones, each answered by its own
:class:`geomon.ZoneIndex` in the local metric frame: which forbidden zones a
fix is in (and how deep), how far a fix is inside its subject's permitted area,
and which office's jurisdiction a position lies in. A zone applies to every
subject unless its ``subject_ids`` list names some; ``buffer_m`` (per zone, else
the rules') is how far across a boundary a fix must be to count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

from geomon.geo.crs import LocalFrame, choose_frame
from geomon.geo.geometry import ZoneIndex, _edges_of
from geomon.geo.schedule import Windows, parse_schedules
from geomon.io.common import ZoneLoad


def project_geometries(geoms: np.ndarray, frame: LocalFrame) -> np.ndarray:
    """Geometries in lon/lat degrees -> the same geometries in ``frame`` metres."""

    def to_metres(coords: np.ndarray) -> np.ndarray:
        x, y = frame.project(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), to_metres)


@dataclass(frozen=True)
class RoleIndex:
    """A ZoneIndex over the zones of one role, with their global zone codes and edges."""

    index: ZoneIndex
    codes: np.ndarray  # global zone code of each local zone
    edges: np.ndarray  # (n_edges, 4) all edges, metres
    edge_offsets: np.ndarray  # zone z's edges: edges[edge_offsets[z]:edge_offsets[z + 1]]

    @classmethod
    def build(cls, geoms_m: np.ndarray, codes: np.ndarray) -> RoleIndex:
        geoms = np.asarray(geoms_m, dtype=object)[codes] if len(codes) else np.empty(0, dtype=object)
        e = _edges_of(geoms) if len(codes) else None
        edges = e.edges if e is not None else np.zeros((0, 4))
        offsets = e.offsets if e is not None else np.zeros(1, np.int64)
        return cls(ZoneIndex(geoms), np.asarray(codes, np.int64), edges, offsets)


@dataclass(frozen=True)
class CompiledZones:
    """Every zone of a deployment, projected and indexed for the engine.

    Attributes
    ----------
    frame : LocalFrame
        The metric frame all geometry and fixes are projected to.
    zone_id, kind : numpy arrays of str
    geometry_m : numpy array of shapely geometries in ``frame`` metres
    buffer_m : float64 array, NaN where the zone sets none
    office_id, category : numpy arrays of str or None
    applies_to_all : bool array
    assignments : dict zone code -> frozenset of subject ids (zones not applying to all)
    forbidden, permitted, jurisdiction : RoleIndex
    windows : Windows
        When each zone applies (zones without a ``schedule`` always do).
    """

    frame: LocalFrame
    zone_id: np.ndarray
    kind: np.ndarray
    geometry_m: np.ndarray
    buffer_m: np.ndarray
    office_id: np.ndarray
    category: np.ndarray
    applies_to_all: np.ndarray
    assignments: dict
    forbidden: RoleIndex
    permitted: RoleIndex
    jurisdiction: RoleIndex
    windows: Windows

    @property
    def n_zones(self) -> int:
        return len(self.zone_id)

    def assignment_keys(self, subject_code: dict[str, int]) -> np.ndarray:
        """Sorted int64 keys ``subject_code * n_zones + zone_code`` of every explicit assignment."""
        keys = [subject_code[s] * self.n_zones + z for z, subjects in self.assignments.items()
                for s in subjects if s in subject_code]
        return np.unique(np.asarray(keys, dtype=np.int64))


def _column(props: pa.Table, name: str, n: int) -> list:
    return props.column(name).to_pylist() if name in props.column_names else [None] * n


def zones_frame(zones: ZoneLoad) -> LocalFrame:
    """The metric frame the engine works in for these zones (:func:`geomon.geo.crs.choose_frame` of their vertices)."""
    geoms = np.asarray(zones.geometry, dtype=object)
    coords = shapely.get_coordinates(geoms) if len(geoms) else np.array([[0.0, 0.0]])
    return choose_frame(coords[:, 0], coords[:, 1])


def compile_zones(zones: ZoneLoad, frame: LocalFrame | None = None) -> CompiledZones:
    """Project and index loaded zones; the frame is chosen from the zones' extent (:func:`zones_frame`) unless given."""
    geoms = np.asarray(zones.geometry, dtype=object)
    n = len(geoms)
    if frame is None:
        frame = zones_frame(zones)
    geoms_m = project_geometries(geoms, frame) if n else geoms
    props = zones.properties
    buffer_m = np.array([np.nan if v is None else float(v) for v in _column(props, "buffer_m", n)], dtype=np.float64)
    office_id = np.array(_column(props, "office_id", n), dtype=object)
    category = np.array(_column(props, "category", n), dtype=object)
    subject_lists = _column(props, "subject_ids", n)
    applies_to_all = np.array([not s for s in subject_lists], dtype=bool)
    assignments = {z: frozenset(s) for z, s in enumerate(subject_lists) if s}
    kind = np.asarray(zones.kind, dtype=object)

    def role(name: str) -> RoleIndex:
        return RoleIndex.build(geoms_m, np.flatnonzero(kind == name))

    return CompiledZones(
        frame=frame,
        zone_id=np.asarray(zones.zone_id, dtype=object),
        kind=kind,
        geometry_m=geoms_m,
        buffer_m=buffer_m,
        office_id=office_id,
        category=category,
        applies_to_all=applies_to_all,
        assignments=assignments,
        forbidden=role("forbidden"),
        permitted=role("permitted"),
        jurisdiction=role("jurisdiction"),
        windows=parse_schedules(_column(props, "schedule", n), zones.zone_id),
    )
