"""Arrow schemas of geomon's inputs and of the quarantine that loading produces.

Every table geomon reads is checked against one of these schemas by
:mod:`geomon.io.load`. Columns listed here have fixed names and types; any other
column a user supplies is kept, after the canonical ones, and never rejected.

Coordinates are longitude/latitude in degrees on WGS84 (CGCS2000 coincides with
WGS84 to a few centimetres, far below fix accuracy). Times are UTC.
"""

from __future__ import annotations

import pyarrow as pa

#: Kinds of fix a device or app reports. ``gnss`` is a satellite fix
#: (BeiDou/GPS), ``cell`` a base-station fix, ``wifi`` an access-point fix,
#: ``checkin`` a fix taken at a supervised check-in.
SOURCES: tuple[str, ...] = ("gnss", "cell", "wifi", "checkin")

#: Supervision levels of a subject.
LEVELS: tuple[str, ...] = ("strict", "ordinary")

#: Zone kinds geomon understands.
ZONE_KINDS: tuple[str, ...] = (
    "permitted",
    "forbidden",
    "home",
    "office",
    "place_of_concern",
    "camera",
    "jurisdiction",
)

#: Timestamp type of every event time: epoch milliseconds, UTC.
TS_TYPE = pa.timestamp("ms", tz="UTC")

#: Position fixes.
#:
#: ``accuracy_m`` is the per-axis 1-sigma horizontal accuracy in metres (a
#: device's 68 % radius, CEP, 95 % radius or HDOP is converted to it on load:
#: :mod:`geomon.io.accuracy`). It may be null (the device did not report one);
#: filling it with a per-source default is the fusion step's job, not loading's.
#: Canonical columns are non-null except ``accuracy_m``.
FIX_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("accuracy_m", pa.float32(), nullable=True),
    ]
)

#: Columns a fix input must have. A missing ``accuracy_m`` column is read as
#: all-null accuracy.
FIX_REQUIRED: tuple[str, ...] = ("subject_id", "ts", "lon", "lat", "source")

#: Subjects under supervision. ``home_zone_id`` and ``work_zone_id`` (the
#: zone of the subject's workplace) may be null; a missing column of either is
#: read as all null.
SUBJECT_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),
        pa.field("office_id", pa.string(), nullable=False),
        pa.field("home_zone_id", pa.string(), nullable=True),
        pa.field("work_zone_id", pa.string(), nullable=True),
    ]
)

#: Stay points (:func:`geomon.staypoints`), one row each, sorted by
#: ``subject_id`` then ``started_at``; the Monitor's stays
#: (:data:`geomon.store.alert_store.STAY_SCHEMA`) begin with the same columns.
STAYPOINT_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("started_at", TS_TYPE, nullable=False),
        pa.field("finished_at", TS_TYPE, nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("n_fixes", pa.int64(), nullable=False),
    ]
)

#: Columns a subject input must have.
SUBJECT_REQUIRED: tuple[str, ...] = ("subject_id", "level", "office_id")

#: Canonical zone properties, in the order :func:`geomon.io.load.load_zones`
#: returns them. ``subject_ids`` null means the zone applies to every subject;
#: ``schedule`` is kept as JSON text for the schedule parser; ``buffer_m`` is a
#: distance in metres (negative shrinks the zone).
ZONE_PROPERTIES_SCHEMA = pa.schema(
    [
        pa.field("zone_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("buffer_m", pa.float64(), nullable=True),
        pa.field("schedule", pa.string(), nullable=True),
        pa.field("subject_ids", pa.list_(pa.string()), nullable=True),
        pa.field("office_id", pa.string(), nullable=True),
    ]
)

#: Rows a load refused, one per refused input row, with the first reason found.
#:
#: ``source_name`` is the file path or table name, ``row`` the 0-based row (or
#: feature) number in the input (for CSV: the data record, header excluded),
#: ``field`` the offending column (null when the whole row is at fault, as for
#: duplicates), ``reason`` a stable reason code such as ``lon_out_of_range``
#: and ``raw`` the input row as JSON text, values as read.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_name", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("field", pa.string(), nullable=True),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=True),
    ]
)

#: Zone geometries a load changed, one row per change. ``repair`` is one of
#: ``ring_closed``, ``winding_reoriented``, ``made_valid``; ``detail`` says
#: what was wrong (for ``made_valid`` the text of ``shapely.is_valid_reason``).
REPAIR_SCHEMA = pa.schema(
    [
        pa.field("source_name", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=True),
        pa.field("repair", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=True),
    ]
)


# ---------------------------------------------------------------- engine outputs

#: Alert severities, most urgent first.
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

#: Alerts as the Monitor hands them to :meth:`AlertStore.write_alerts`.
#:
#: ``alert_id`` is deterministic, so a replay of the same input yields the same
#: ids. ``office_id`` is the subject's supervising office,
#: ``location_office_id`` the office whose jurisdiction the position lies in.
#: ``onset_ts`` / ``confirmed_ts`` / ``ended_ts`` are event times (ended is null
#: while the alert is still running), ``emitted_at`` the wall-clock time the
#: engine emitted it. ``lon``/``lat`` are degrees (WGS84), ``accuracy_m`` the
#: 1-sigma horizontal uncertainty in metres, ``probability`` the detector's
#: confidence in [0, 1], ``details`` detector-specific JSON text and ``run_id``
#: the run that produced it.
ALERT_SCHEMA = pa.schema(
    [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=True),
        pa.field("office_id", pa.string(), nullable=True),
        pa.field("location_office_id", pa.string(), nullable=True),
        pa.field("onset_ts", TS_TYPE, nullable=False),
        pa.field("confirmed_ts", TS_TYPE, nullable=False),
        pa.field("ended_ts", TS_TYPE, nullable=True),
        pa.field("emitted_at", TS_TYPE, nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("accuracy_m", pa.float32(), nullable=True),
        pa.field("probability", pa.float64(), nullable=True),
        pa.field("details", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

#: Stays the Monitor's dwell walk closed (:meth:`geomon.engine.monitor.Monitor.take_stays`), one row each.
#:
#: A stay starts at its first fix (``started_at``) and finishes at the fix that
#: left it or, when a silence longer than ``lost_contact_s`` broke it, at the
#: last fix before the silence (``ended_by`` ``moved`` or ``silence``);
#: ``n_fixes`` fixes from the first up to the last before its finish are its
#: members and ``lon``/``lat`` (degrees, WGS84) their fused mean.
#: ``concern_zone_id`` is the place of concern its first fix was at (within
#: ``dwell_radius_m``), ``home_distance_m``/``work_distance_m`` the distance
#: in metres from its centroid to the subject's home and work zones (0 inside;
#: null without such a zone).
STAY_SCHEMA = pa.schema(
    [
        *STAYPOINT_SCHEMA,
        pa.field("office_id", pa.string(), nullable=True),
        pa.field("concern_zone_id", pa.string(), nullable=True),
        pa.field("home_distance_m", pa.float64(), nullable=True),
        pa.field("work_distance_m", pa.float64(), nullable=True),
        pa.field("ended_by", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

#: The fused track the Monitor kept (:meth:`geomon.engine.monitor.Monitor.take_tracks`), one row per admitted fix:
#: the causal fused position (WGS84 degrees) and the 1-sigma (m) a decision may lean on
#: (:func:`geomon.tracks.fusion.trusted_sigma_m`). Read by the incident look-back (:mod:`geomon.office.lookback`).
TRACK_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),
        pa.field("sigma_m", pa.float64(), nullable=False),
    ]
)

#: How a stay of :data:`STAY_SCHEMA` ended.
STAY_ENDINGS: tuple[str, ...] = ("moved", "silence")

