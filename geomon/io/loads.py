"""What a loader returns: the accepted rows, the quarantine and the counts that must add up.

:class:`FixLoad`, :class:`SubjectLoad` and :class:`ZoneLoad` are the results of
:func:`geomon.io.load.load_fixes`, ``load_subjects`` and ``load_zones``; each checks on creation that
``n_read == n_accepted + n_quarantined`` and that its tables agree with its counts. Import them from
:mod:`geomon.io` or :mod:`geomon.io.common`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FixLoad", "SubjectLoad", "ZoneLoad"]


@dataclass(frozen=True, kw_only=True)
class _Load:
    """Counts and quarantine common to every load result."""

    quarantine: pa.Table
    n_read: int
    n_accepted: int
    n_quarantined: int
    source_name: str

    def __post_init__(self) -> None:
        # Raised, not asserted: the guarantee must hold under ``python -O`` too.
        if self.n_read != self.n_accepted + self.n_quarantined:
            raise RuntimeError(
                f"{self.source_name}: read {self.n_read} != accepted {self.n_accepted}"
                f" + quarantined {self.n_quarantined}"
            )
        if self.quarantine.num_rows != self.n_quarantined:
            raise RuntimeError(f"{self.source_name}: quarantine table length disagrees with its count")

    @property
    def balanced(self) -> bool:
        """True when ``n_read == n_accepted + n_quarantined`` (always, by construction)."""
        return self.n_read == self.n_accepted + self.n_quarantined

    def reason_counts(self) -> dict[str, int]:
        """Return the number of quarantined rows per reason code."""
        counts = pc.value_counts(self.quarantine.column("reason")).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


@dataclass(frozen=True, kw_only=True)
class _TableLoad(_Load):
    """A load result whose accepted rows are one Arrow table."""

    table: pa.Table

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.table.num_rows != self.n_accepted:
            raise RuntimeError(f"{self.source_name}: accepted table length disagrees with its count")


@dataclass(frozen=True, kw_only=True)
class FixLoad(_TableLoad):
    """Result of :func:`load_fixes`.

    Attributes
    ----------
    table : pyarrow.Table
        Accepted fixes in :data:`geomon.schema.FIX_SCHEMA` (extra input columns
        follow), lon/lat in WGS84 degrees, sorted stably by ``(subject_id, ts)``.
    quarantine : pyarrow.Table
        Refused rows in :data:`geomon.schema.QUARANTINE_SCHEMA`, by input row.
    n_read, n_accepted, n_quarantined : int
        Row counts; ``n_read == n_accepted + n_quarantined``.
    source_name : str
        File path or table name used in messages and in the quarantine.
    datum : str
        Datum the input coordinates were given in.
    input_row : numpy.ndarray of int64, optional
        Input row number (as in the quarantine) of each accepted row, so later
        stages can quarantine an accepted row by the number its author knows.
    """

    datum: str = "wgs84"
    input_row: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class SubjectLoad(_TableLoad):
    """Result of :func:`load_subjects`.

    Attributes
    ----------
    table : pyarrow.Table
        Accepted subjects in :data:`geomon.schema.SUBJECT_SCHEMA` (extra input
        columns follow), in input order.
    """


@dataclass(frozen=True, kw_only=True)
class ZoneLoad(_Load):
    """Result of :func:`load_zones`.

    Attributes
    ----------
    zone_id, kind : numpy.ndarray of str (object dtype)
        One entry per accepted zone, in input order.
    geometry : numpy.ndarray of shapely Polygon or MultiPolygon (object dtype)
        Valid, exterior rings counter-clockwise, lon/lat degrees in WGS84.
    properties : pyarrow.Table
        :data:`geomon.schema.ZONE_PROPERTIES_SCHEMA` columns, then extra
        properties, one row per accepted zone.
    repairs : pyarrow.Table
        Geometry changes in :data:`geomon.schema.REPAIR_SCHEMA`, for accepted
        zones only.
    """

    zone_id: np.ndarray
    kind: np.ndarray
    geometry: np.ndarray
    properties: pa.Table
    repairs: pa.Table
    datum: str = "wgs84"
