"""A simulated scenario's fixes as the kernels see them: ms times, projected metres, CSR track offsets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def times_ms(fixes: pa.Table) -> np.ndarray:
    """``ts`` as int64 epoch milliseconds (UTC)."""
    ts = pc.cast(fixes.column("ts"), pa.timestamp("ms", tz="UTC"), safe=False)
    return np.asarray(pc.cast(ts, pa.int64()).to_numpy(), dtype=np.int64)


def projected(fixes: pa.Table, frame) -> tuple[np.ndarray, np.ndarray]:
    """Raw fix positions in ``frame`` (a :class:`geomon.geo.crs.LocalFrame`), metres."""
    lon = np.asarray(fixes.column("lon").to_numpy(), dtype=np.float64)
    lat = np.asarray(fixes.column("lat").to_numpy(), dtype=np.float64)
    x, y = frame.project(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def subject_codes(subject_id) -> np.ndarray:
    """int64 code per fix, one per distinct subject (in sorted id order)."""
    ids = subject_id.to_numpy(zero_copy_only=False) if hasattr(subject_id, "to_numpy") else subject_id
    return np.unique(np.asarray(ids, dtype=object), return_inverse=True)[1].astype(np.int64).ravel()


def track_offsets(codes: np.ndarray) -> np.ndarray:
    """CSR offsets of the runs of equal subject codes (fixes already grouped by subject)."""
    n = codes.size
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    return np.concatenate([[0], starts, [n]] if n else [[0]]).astype(np.int64)


def first_tracks(offsets: np.ndarray, n_fixes: int) -> np.ndarray:
    """Offsets of the first ``n_fixes`` fixes: whole tracks, the last one cut."""
    n_fixes = min(int(n_fixes), int(offsets[-1]))
    return np.append(offsets[offsets < n_fixes], n_fixes).astype(np.int64)


def tile_tracks(offsets: np.ndarray, arrays: tuple[np.ndarray, ...], n_target: int):
    """Repeat every track until there are at least ``n_target`` fixes; each copy is a track of its own.

    Returns ``(offsets, arrays, copies)``.
    """
    n = int(offsets[-1])
    copies = max(1, -(-int(n_target) // n))
    shifted = offsets[1:][None, :] + n * np.arange(copies, dtype=np.int64)[:, None]
    tiled_offsets = np.concatenate([[0], shifted.ravel()]).astype(np.int64)
    return tiled_offsets, tuple(np.tile(a, copies) for a in arrays), copies
