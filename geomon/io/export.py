"""Exports of alerts, stay points and fused tracks, with subject ids replaced by keyed pseudonyms.

Identities are never exposed where they need not be: by default every
``subject_id`` written out becomes ``pseudonym(subject_id, key)``, an HMAC-SHA256
of the id under a secret key (from a file, or the ``GEOMON_PSEUDONYM_KEY``
environment variable), so the same person has the same pseudonym across
exports made with one key, and only a holder of the key can map it back
(:func:`reidentify`, given the ids it may be). Clear ids are written only when
asked for *and* the key is given. The key itself is never written anywhere.

Formats: Parquet, CSV and GeoJSON (points at ``lon``/``lat``, the other
columns as properties).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from geomon.errors import GeomonError

__all__ = ["KEY_ENV", "export_table", "load_key", "pseudonym", "reidentify", "store_table"]

#: Environment variable holding the pseudonym key when no key file is given.
KEY_ENV = "GEOMON_PSEUDONYM_KEY"
_MIN_KEY_BYTES = 16


def load_key(path: str | Path | None = None) -> bytes:
    """The pseudonym key: the bytes of ``path`` (stripped), else of ``$GEOMON_PSEUDONYM_KEY``."""
    if path is not None:
        key = Path(path).read_bytes().strip()
        where = str(path)
    else:
        key = os.environ.get(KEY_ENV, "").encode()
        where = f"${KEY_ENV}"
    if len(key) < _MIN_KEY_BYTES:
        problem = f"the pseudonym key in {where} is {len(key)} bytes, fewer than {_MIN_KEY_BYTES}" if key else \
            f"no pseudonym key ({where} is not set and no --key-file was given)"
        raise GeomonError(
            f"{problem}: exports and reports replace subject ids with keyed pseudonyms, and --clear-ids needs the "
            f"key too, as proof that you may see ids. Make one and keep it (the same key gives the same "
            f"pseudonyms): export {KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(16))'), or put "
            f"it in a file and pass --key-file FILE")
    return key


def pseudonym(subject_id: str, key: bytes) -> str:
    """``p_`` and the first 20 hex digits of HMAC-SHA256(key, subject_id)."""
    return "p_" + hmac.new(key, subject_id.encode(), hashlib.sha256).hexdigest()[:20]


def _replace_ids(table: pa.Table, key: bytes) -> pa.Table:
    for name in ("subject_id", "subject_a", "subject_b"):
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            ids = [None if v is None else pseudonym(v, key) for v in table.column(name).to_pylist()]
            table = table.set_column(i, table.schema.field(i), pa.array(ids, table.schema.field(i).type))
    return table


def reidentify(table: pa.Table, subject_ids, key: bytes) -> pa.Table:
    """Map the pseudonyms of an export back to ids, given the ids they may be and the key (unknown ones stay)."""
    back = {pseudonym(s, key): s for s in subject_ids}
    for name in ("subject_id", "subject_a", "subject_b"):
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            ids = [None if v is None else back.get(v, v) for v in table.column(name).to_pylist()]
            table = table.set_column(i, table.schema.field(i), pa.array(ids, table.schema.field(i).type))
    return table


def store_table(store, what: str) -> pa.Table:
    """``alerts``, ``stays`` or ``tracks`` of an open :class:`geomon.store.alert_store.AlertStore`."""
    from datetime import datetime, timezone

    if what == "alerts":
        return store.list_alerts()
    if what == "stays":
        return store.list_stays()
    if what == "tracks":
        return store.list_tracks(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc))
    raise ValueError(f"what must be alerts, stays or tracks, not {what!r}")


def export_table(table: pa.Table, out: str | Path, *, key: bytes | None = None, clear_ids: bool = False) -> Path:
    """Write ``table`` to ``out`` (format from its suffix: .parquet, .csv, .geojson) with pseudonymised ids.

    ``key`` is required: with ``clear_ids`` it proves the caller may see the
    ids; otherwise it keys the pseudonyms.
    """
    if key is None:
        raise GeomonError(f"exporting needs the pseudonym key (a key file, or ${KEY_ENV})")
    table = table if clear_ids else _replace_ids(table, key)
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, out)
    elif suffix == ".csv":
        pcsv.write_csv(table, out)
    elif suffix == ".geojson":
        if "lon" not in table.column_names or "lat" not in table.column_names:
            raise ValueError("GeoJSON export needs lon and lat columns")
        features = []
        for row in table.to_pylist():
            lon, lat = row.pop("lon"), row.pop("lat")
            props = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                             "properties": props})
        out.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    else:
        raise ValueError(f"unsupported export format {suffix!r}; use .parquet, .csv or .geojson")
    return out
