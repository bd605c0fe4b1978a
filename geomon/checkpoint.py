"""The Monitor's state as data: captured for a checkpoint, restored on resume, saved by the rows that changed.

Everything a :class:`geomon.monitor.Monitor` learns from the fixes it has
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

__all__ = ["GLOBAL", "PER_SUBJECT", "StateTracker", "capture_global", "restore_global"]

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
}

#: Buffers a caller must drain (take_tracks, take_stays, take_quarantine) before a capture.
_DRAINED = (("monitor", "_tracks"), ("monitor", "_quarantine"), ("dwell", "_stays"))


def _parts(monitor) -> dict:
    b = monitor.behaviour
    return {"monitor": monitor, "contact": b.contact, "checkins": b.checkins, "dwell": b.dwell, "night": b.night}


def _per_subject_arrays(monitor) -> list[np.ndarray]:
    parts = _parts(monitor)
    n = len(monitor.subject_ids)
    out = []
    for part, names in PER_SUBJECT.items():
        for name in names:
            a = np.ascontiguousarray(getattr(parts[part], name))
            if a.shape[:1] != (n,) or a.dtype == object:
                raise TypeError(f"{part}.{name} is not a numeric per-subject array (shape {a.shape}, {a.dtype})")
            out.append(a)
    return out


def per_subject_matrix(monitor) -> np.ndarray:
    """One row of bytes per subject: every per-subject array's row, concatenated (uint8, C order)."""
    arrays = _per_subject_arrays(monitor)
    n = len(monitor.subject_ids)
    return np.concatenate([a.reshape(n, -1).view(np.uint8).reshape(n, -1) for a in arrays], axis=1) if n else \
        np.zeros((0, 0), np.uint8)


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


class StateTracker:
    """Which subjects' state changed since the last save, and their rows.

    Parameters
    ----------
    monitor : geomon.monitor.Monitor
        Freshly built (or just restored): its current state counts as saved.
    """

    def __init__(self, monitor):
        self.monitor = monitor
        self._saved = per_subject_matrix(monitor)

    @property
    def row_bytes(self) -> int:
        return self._saved.shape[1] if self._saved.ndim == 2 else 0

    def changes(self) -> tuple[np.ndarray, np.ndarray]:
        """Subject codes whose state differs from the last save, and their current rows (uint8)."""
        now = per_subject_matrix(self.monitor)
        codes = np.flatnonzero((now != self._saved).any(axis=1)) if now.size else np.zeros(0, np.int64)
        return codes, now[codes]

    def saved(self, codes: np.ndarray, rows: np.ndarray) -> None:
        """Record that these rows are now saved (call after the transaction that wrote them commits)."""
        self._saved[codes] = rows

    def restore(self, codes: np.ndarray, rows: np.ndarray, global_blob: bytes) -> None:
        """Put saved rows and the global state into the (freshly built) Monitor, and count them as saved."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size:
            if codes.min() < 0 or codes.max() >= len(self.monitor.subject_ids):
                raise ValueError("checkpoint names subject codes this Monitor does not have")
            _set_rows(self.monitor, codes, np.asarray(rows, dtype=np.uint8).reshape(codes.size, -1))
        restore_global(self.monitor, global_blob)
        self._saved = per_subject_matrix(self.monitor)
