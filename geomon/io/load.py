"""Load fixes, zones, subjects and rules, validating them into a quarantine.

Every loader returns the rows it accepted, in a canonical schema
(:mod:`geomon.schema`), and a quarantine table holding each refused input row
with the first reason found, so that ``n_read == n_accepted + n_quarantined``
always holds and nothing is dropped unseen. A file that is not what it claims
to be (wrong format, missing columns, column types that cannot be read) raises
one :class:`geomon.errors.InputError` naming the file and the problem.

Validation of fixes and subjects is vectorised with ``pyarrow.compute`` and
numpy; only refused rows are touched one by one (to write their JSON). Zones are
few, so they are validated feature by feature and their geometries repaired in
bulk with shapely.

Conventions (decided here, relied on downstream):

- Timestamps: ``timestamp`` columns of any unit or time zone are converted to
  ``timestamp[ms, tz=UTC]``, truncating sub-millisecond digits; time-zone-naive
  timestamps and ISO-8601 text without an offset are taken as UTC. Integers
  (and all-digit text) are epoch milliseconds. Floats and dates are refused.
- Text: surrounding whitespace is not part of a value; ``source`` and ``level``
  must match their vocabulary exactly (lower case).
- Exact duplicates are rows whose parsed values are all equal, extra columns
  included; the first is kept.
- Coordinates are range-checked in the input datum, then converted to WGS84.

GeoJSON follows RFC 7946 (exterior rings counter-clockwise, rings closed);
GeoParquet follows the GeoParquet 1.x specification (WKB geometry column,
``geo`` file metadata).

A fix's ``accuracy_m`` may be reported as a 68 %, 50 % or 95 % radius or as
HDOP: ``load_fixes(..., accuracy=...)`` converts it once to the per-axis sigma
the engine reads (:mod:`geomon.io.accuracy`).

The loaders live in :mod:`geomon.io.tables` (fixes, subjects),
:mod:`geomon.io.zones` and :mod:`geomon.rules.load`, with the shared result
types, readers and quarantine in :mod:`geomon.io.common`; import them from
here.
"""

from __future__ import annotations

from geomon.io.accuracy import ACCURACY_KINDS, sigma_from_accuracy
from geomon.io.common import FixLoad, SubjectLoad, ZoneLoad
from geomon.io.tables import load_fixes, load_subjects
from geomon.io.zones import load_zones
from geomon.rules.load import UNIT_SUFFIXES, UNITLESS_KEYS, Rules, default_rules, load_rules

__all__ = [
    "ACCURACY_KINDS",
    "FixLoad",
    "Rules",
    "SubjectLoad",
    "UNITLESS_KEYS",
    "UNIT_SUFFIXES",
    "ZoneLoad",
    "default_rules",
    "load_fixes",
    "load_rules",
    "load_subjects",
    "load_zones",
    "sigma_from_accuracy",
]
