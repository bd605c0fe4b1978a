"""The Monitor's state as data: captured for a checkpoint, restored on resume, saved by the rows that changed.

Everything a :class:`geomon.engine.monitor.Monitor` learns from the fixes it has
processed lives in numeric arrays: per subject (the fusion filter's row, the
last fix, each detector's state row and night rings) or global (the open
geofence entries, the counters, each detector's watermark). :data:`PER_SUBJECT`
and :data:`GLOBAL` name them; nothing else a Monitor holds changes with the
fixes (``tests/test_checkpoint.py`` checks this against every attribute of a
Monitor that has processed the sample with every detector on, so a new piece of
state cannot be forgotten here).

A checkpoint of thousands of subjects is mostly unchanged between two saves,
so :class:`StateTracker` keeps the bytes of the last saved per-subject matrix
and hands out only the rows that differ (a vectorised comparison). Restoring
starts from a freshly built Monitor (its initial state) and overwrites the
saved rows, then the global part.
"""

from __future__ import annotations

import io

import numpy as np

from geomon.kernels.night import NS_CLOCK
from geomon.kernels.state_diff import rows_changed

__all__ = ["GLOBAL", "PER_SUBJECT", "WHOLE_COLUMNS", "StateTracker", "capture_global", "decode_rows", "encode_rows",
           "restore_global"]

#: Per-subject state arrays (first axis: subject code) of each part of a Monitor.
PER_SUBJECT = {
    "monitor": ("_fusion_state", "_seen_t", "_run_source", "_run_length", "_last_t", "_last_x", "_last_y"),
    "contact": ("_state", "_last_set", "_last_lon", "_last_lat"),
    "checkins": ("_state",),
    "dwell": ("_state",),
    "night": ("_state", "_ring_travel", "_ring_away"),
}

#: Global state: arrays and integers.
GLOBAL = {
    "monitor": ("_ent_i", "_ent_f", "n_read", "n_accepted", "n_quarantined", "n_vague"),
    "contact": ("watermark_ms",),
    "checkins": ("watermark_ms",),
    "dwell": ("watermark_ms",),
    "night": ("watermark_ms",),
    # Frequent contact and victim protection: the other people's filters, the recent positions, the open
    # stretches and meetings and the counted ones (empty unless a concern list or protection orders are given).
    "meetings": ("_fusion_state", "_seen_t", "_run_source", "_run_length", "_hist", "_last_t", "_done_ms", "_open",
                 "_counted", "watermark_ms", "n_late"),
}

#: Columns of per-subject arrays that change for every subject at every tick (the night detector's clock
#: follows the watermark): saved whole with the global state, and left out of the row comparison, so that a
#: subject without fixes since the last checkpoint keeps its row.
WHOLE_COLUMNS = {("night", "_state"): (NS_CLOCK,)}

#: Buffers a caller must drain (take_tracks, take_stays, take_quarantine) before a capture.
_DRAINED = (("monitor", "_tracks"), ("monitor", "_quarantine"), ("dwell", "_stays"))


def _parts(monitor) -> dict:
    b = monitor.behaviour
    return {"monitor": monitor, "contact": b.contact, "checkins": b.checkins, "dwell": b.dwell, "night": b.night,
            "meetings": monitor.meetings}


def _named_arrays(monitor) -> list[tuple[tuple[str, str], np.ndarray]]:
    parts = _parts(monitor)
    n = len(monitor.subject_ids)
    out = []
    for part, names in PER_SUBJECT.items():
        for name in names:
            a = np.ascontiguousarray(getattr(parts[part], name))
            if a.shape[:1] != (n,) or a.dtype == object or a.itemsize != 8:
                raise TypeError(f"{part}.{name} is not a 64-bit per-subject array (shape {a.shape}, {a.dtype})")
            out.append(((part, name), a))
    return out


def _set_rows(monitor, codes: np.ndarray, rows: np.ndarray) -> None:
    """Write saved byte rows back into the per-subject arrays of ``codes``."""
    n = len(monitor.subject_ids)
    parts = _parts(monitor)
    arrays = [(parts[part], name, np.array(getattr(parts[part], name), order="C"))   # copies, put back below
              for part, names in PER_SUBJECT.items() for name in names]
    widths = [a.reshape(n, -1).view(np.uint8).shape[1] for _, _, a in arrays]
    if sum(widths) != rows.shape[1]:
        raise ValueError(f"checkpoint rows are {rows.shape[1]} bytes wide; this Monitor's are {sum(widths)}")
    start = 0
    for (owner, name, a), width in zip(arrays, widths):
        a.reshape(n, -1).view(np.uint8)[codes] = rows[:, start:start + width]
        setattr(owner, name, a)
        start += width


def capture_global(monitor) -> bytes:
    """The global state as an ``.npz`` blob (refuses while a take_* buffer still holds rows)."""
    parts = _parts(monitor)
    for part, name in _DRAINED:
        if len(getattr(parts[part], name)):
            raise RuntimeError(f"{part}.{name} holds rows: take them (and store them) before a checkpoint")
    arrays = {f"{part}.{name}": np.asarray(getattr(parts[part], name))
              for part, names in GLOBAL.items() for name in names}
    for (part, name), columns in WHOLE_COLUMNS.items():
        for col in columns:
            arrays[f"{part}.{name}[:, {col}]"] = np.array(getattr(parts[part], name)[:, col])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def restore_global(monitor, blob: bytes) -> None:
    """Set the global state from :func:`capture_global`'s blob."""
    parts = _parts(monitor)
    with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
        for part, names in GLOBAL.items():
            for name in names:
                value = saved[f"{part}.{name}"]
                current = getattr(parts[part], name)
                setattr(parts[part], name, value.copy() if isinstance(current, np.ndarray) else int(value))
        for (part, name), columns in WHOLE_COLUMNS.items():
            for col in columns:
                getattr(parts[part], name)[:, col] = saved[f"{part}.{name}[:, {col}]"]


class StateTracker:
    """Which subjects' state changed since the last save, and their rows.

    Parameters
    ----------
    monitor : geomon.engine.monitor.Monitor
        Freshly built (or just restored): its current state counts as saved.

    Notes
    -----
    It keeps a copy of every per-subject array as last saved and compares
    them as 64-bit words (every state array is float64 or int64, and NaN
    compares equal to itself as bits), so a check costs one pass over the
    state: about 1.8 kB per subject. :data:`WHOLE_COLUMNS` are left out of
    the comparison (they are saved whole, with the global state).
    """

    def __init__(self, monitor):
        self.monitor = monitor
        self._saved = [self._words(a).copy() for a in [a for _, a in _named_arrays(monitor)]]

    def _words(self, a: np.ndarray) -> np.ndarray:
        n = len(self.monitor.subject_ids)
        return np.ascontiguousarray(a).reshape(n, -1).view(np.uint64)

    def changes(self) -> tuple[np.ndarray, np.ndarray]:
        """Subject codes whose state differs from the last save, and their current rows (uint8)."""
        named = _named_arrays(self.monitor)
        arrays = [a for _, a in named]
        n = len(self.monitor.subject_ids)
        changed = np.zeros(n, bool)
        for (key, a), saved in zip(named, self._saved):
            skip = np.zeros(saved.shape[1], bool)
            skip[list(WHOLE_COLUMNS.get(key, ()))] = True      # saved whole with the global state, not per row
            rows_changed(self._words(a), saved, skip, changed)
        codes = np.flatnonzero(changed)
        parts = []
        for a in arrays:
            rows_of_a = np.ascontiguousarray(np.ascontiguousarray(a).reshape(n, -1)[codes])
            parts.append(rows_of_a.view(np.uint8).reshape(codes.size, rows_of_a.shape[1] * a.itemsize))
        rows = np.concatenate(parts, axis=1) if parts else np.zeros((codes.size, 0), np.uint8)
        return codes, rows

    def saved(self, codes: np.ndarray, rows: np.ndarray) -> None:
        """Record that these rows are now saved (call after the transaction that wrote them commits)."""
        start = 0
        for saved in self._saved:
            width = saved.shape[1] * saved.itemsize
            saved[codes] = np.ascontiguousarray(rows[:, start:start + width]).view(saved.dtype)
            start += width

    @property
    def row_bytes(self) -> int:
        """Width of one subject's row, in bytes."""
        return sum(saved.shape[1] * 8 for saved in self._saved)

    def restore(self, codes: np.ndarray, blobs: list[bytes], global_blob: bytes) -> None:
        """Put saved rows (:func:`encode_rows` blobs) and the global state into the (freshly built) Monitor."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size:
            if codes.min() < 0 or codes.max() >= len(self.monitor.subject_ids):
                raise ValueError("checkpoint names subject codes this Monitor does not have")
            _set_rows(self.monitor, codes, decode_rows(blobs, self.row_bytes))
        restore_global(self.monitor, global_blob)
        self._saved = [self._words(a).copy() for a in [a for _, a in _named_arrays(self.monitor)]]


def encode_rows(rows: np.ndarray) -> list[bytes]:
    """Each row (uint8, a multiple of 8 bytes wide) as a bitmap of its non-zero 64-bit words, then those words.

    Most of a subject's state is zeros (rings not filled, detectors idle), so
    this is about five times smaller than the row, as small as zlib's and
    much cheaper. :func:`decode_rows` inverts it.
    """
    k, width = rows.shape
    words = np.ascontiguousarray(rows).view(np.uint64).reshape(k, width // 8)
    nonzero = words != 0
    bitmap = np.packbits(nonzero, axis=1, bitorder="little")
    values = words[nonzero]
    ends = np.cumsum(nonzero.sum(axis=1))
    starts = ends - nonzero.sum(axis=1)
    return [bitmap[i].tobytes() + values[starts[i]:ends[i]].tobytes() for i in range(k)]


def decode_rows(blobs: list[bytes], width: int) -> np.ndarray:
    """Rows of ``width`` bytes from :func:`encode_rows`' blobs (uint8, one row per blob)."""
    n_words = width // 8
    head = (n_words + 7) // 8
    out = np.zeros((len(blobs), n_words), np.uint64)
    for i, blob in enumerate(blobs):
        bits = np.unpackbits(np.frombuffer(blob[:head], np.uint8), count=n_words, bitorder="little").astype(bool)
        out[i, bits] = np.frombuffer(blob[head:], np.uint64)
    return out.view(np.uint8).reshape(len(blobs), width)
