"""The Monitor's state as data: captured for a checkpoint, restored on resume, saved by the rows that changed.

Everything a :class:`geomon.engine.monitor.Monitor` learns from the fixes it has processed lives in the
declared state of its parts (:meth:`~geomon.engine.monitor.Monitor.parts`): the Monitor's own
:class:`~geomon.engine.monitor.MonitorState` and each detector's ``state`` dataclass, whose fields are
marked per subject (first axis: subject code) or global (:mod:`geomon.engine.contract`). This module
reads those declarations and nothing else: no attribute is named here, so a detector added or a field
renamed is checkpointed without an edit (``tests/run/test_live.py`` checks that nothing a Monitor holds
outside the declared state changes with the fixes).

Each checkpoint carries its state layout (:func:`state_layout`: every part, field, dtype and width) and
:data:`STATE_LAYOUT_VERSION`. A checkpoint whose layout is not this Monitor's, or that has none (written
before the detector contract), is refused with both layouts named, never silently misread.

A checkpoint of thousands of subjects is mostly unchanged between two saves, so :class:`StateTracker`
keeps the bytes of the last saved per-subject matrix and hands out only the rows that differ (a
vectorised comparison). Restoring starts from a freshly built Monitor (its initial state) and overwrites
the saved rows, then the global part.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from geomon.engine.contract import state_fields
from geomon.errors import GeomonError
from geomon.kernels.state_diff import copy_rows, encode_words, put_rows, rows_changed

__all__ = ["STATE_LAYOUT_VERSION", "CapturedCheckpoint", "CheckpointLayoutError", "StateTracker", "capture_global",
           "check_layout", "decode_rows", "encode_rows", "from_ipc", "state_layout", "to_ipc"]

#: Version of the checkpoint's state layout: 1 named private attributes (geomon 0.1 before the detector
#: contract); 2 is the declared state of each part, with its layout saved beside it; 3 the same with the
#: three-motion fusion filter's state row (a checkpoint of 2 holds the old filter's and is refused); 4 the
#: same row with the jump doubt's anchor velocity (a walker's anchor moves); 5 the geofence entries with their
#: evidence (Page's statistic); 6 the due times of the night, stay and lost-contact detectors (the watermark
#: advances only the subjects it has reached).
STATE_LAYOUT_VERSION = 6

_LAYOUT_KEY = "__layout__"


class CheckpointLayoutError(GeomonError):
    """A checkpoint written with another state layout than this Monitor's."""


def _states(monitor) -> list[tuple[str, object]]:
    """``(part name, state dataclass)`` of every part of the Monitor, in a fixed order."""
    return [(name, part.state) for name, part in monitor.parts().items()]


def _per_subject(monitor) -> list[tuple[str, str, object, tuple[int, ...]]]:
    """``(part, field, state, whole columns)`` of every per-subject field."""
    return [(part, name, state, whole) for part, state in _states(monitor)
            for name, scope, whole in state_fields(state) if scope == "subject"]


def _named_arrays(monitor) -> list[tuple[tuple[str, str], np.ndarray]]:
    n = len(monitor.subject_ids)
    out = []
    for part, name, state, _ in _per_subject(monitor):
        a = np.ascontiguousarray(getattr(state, name))
        if a.shape[:1] != (n,) or a.dtype == object or a.itemsize != 8:
            raise TypeError(f"{part}.{name} is not a 64-bit per-subject array (shape {a.shape}, {a.dtype})")
        out.append(((part, name), a))
    return out


def state_layout(monitor) -> str:
    """The Monitor's state layout as text: version, then ``part.field scope dtype shape-after-first-axis``."""
    lines = [f"version {STATE_LAYOUT_VERSION}"]
    for part, state in _states(monitor):
        for name, scope, whole in state_fields(state):
            value = getattr(state, name)
            if isinstance(value, np.ndarray):
                shape = value.shape[1:] if scope == "subject" else (value.ndim,)
                kind = f"{value.dtype.str} {shape}"
            else:
                kind = "int"
            lines.append(f"{part}.{name} {scope} {kind}" + (f" whole{list(whole)}" if whole else ""))
    return "\n".join(lines)


def _whole_columns(monitor):
    return [(part, name, state, col) for part, name, state, whole in _per_subject(monitor) for col in whole]


def _set_rows(monitor, codes: np.ndarray, rows: np.ndarray) -> None:
    """Write saved byte rows back into the per-subject arrays of ``codes``."""
    n = len(monitor.subject_ids)
    arrays = [(state, name, np.array(getattr(state, name), order="C"))   # copies, put back below
              for _, name, state, _ in _per_subject(monitor)]
    widths = [a.reshape(n, -1).view(np.uint8).shape[1] for _, _, a in arrays]
    if sum(widths) != rows.shape[1]:
        raise CheckpointLayoutError(f"checkpoint rows are {rows.shape[1]} bytes wide; this Monitor's are "
                                    f"{sum(widths)}")
    start = 0
    for (state, name, a), width in zip(arrays, widths):
        a.reshape(n, -1).view(np.uint8)[codes] = rows[:, start:start + width]
        setattr(state, name, a)
        start += width


def capture_global(monitor) -> bytes:
    """The global state (and the layout) as an ``.npz`` blob; refuses while a take_* buffer still holds rows."""
    if monitor._tracks or monitor._quarantine or any(d.holds_outputs() for d in monitor.detectors):
        raise RuntimeError("the Monitor holds tracks, quarantine or stays: take them (and store them) before a "
                           "checkpoint")
    arrays = {_LAYOUT_KEY: np.array(state_layout(monitor))}
    for part, state in _states(monitor):
        for name, scope, _ in state_fields(state):
            if scope == "global":
                arrays[f"{part}.{name}"] = np.asarray(getattr(state, name))
    for part, name, state, col in _whole_columns(monitor):
        arrays[f"{part}.{name}[:, {col}]"] = np.array(getattr(state, name)[:, col])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def check_layout(monitor, blob: bytes, what: str = "the checkpoint") -> None:
    """Refuse a checkpoint whose state layout is not this Monitor's, naming both (``what``: whose checkpoint)."""
    mine = state_layout(monitor)
    with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
        theirs = str(saved[_LAYOUT_KEY]) if _LAYOUT_KEY in saved.files else None
    if theirs is None:
        raise CheckpointLayoutError(
            f"{what} was checkpointed with state layout 1 (geomon before the detector contract); this geomon "
            f"reads state layout {STATE_LAYOUT_VERSION}: replay the stream's input from its start into a new "
            f"store or under another --stream-id (or finish it with the geomon that wrote it)")
    if theirs != mine:
        old, new = theirs.splitlines(), mine.splitlines()
        differ = sorted(set(old) ^ set(new))[:6]
        raise CheckpointLayoutError(
            f"{what} was checkpointed with state layout '{old[0]}', this Monitor's is '{new[0]}', and they "
            f"differ in: {'; '.join(differ)} (detectors or their state changed): replay the input from its start")


def _restore_global(monitor, blob: bytes) -> None:
    """Set the global state from :func:`capture_global`'s blob (its layout checked by the caller)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
        for part, state in _states(monitor):
            for name, scope, _ in state_fields(state):
                if scope == "global":
                    value = saved[f"{part}.{name}"]
                    current = getattr(state, name)
                    setattr(state, name, value.copy() if isinstance(current, np.ndarray) else int(value))
        for part, name, state, col in _whole_columns(monitor):
            getattr(state, name)[:, col] = saved[f"{part}.{name}[:, {col}]"]


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
    state: about 1.8 kB per subject. Whole columns (declared with
    ``subject_state(whole_columns=...)``) are left out of the comparison:
    they are saved whole, with the global state.
    """

    def __init__(self, monitor):
        self.monitor = monitor
        self._whole = {(part, name): whole for part, name, _, whole in _per_subject(monitor)}
        self._saved = [self._words(a).copy() for _, a in _named_arrays(monitor)]
        self._block = np.empty((0, sum(saved.shape[1] for saved in self._saved)), np.uint64)

    def _words(self, a: np.ndarray) -> np.ndarray:
        n = len(self.monitor.subject_ids)
        return np.ascontiguousarray(a).reshape(n, -1).view(np.uint64)

    def changes(self) -> tuple[np.ndarray, np.ndarray]:
        """Subject codes whose state differs from the last save, and their current rows (uint8).

        The rows are a copy of the state, held in a buffer this tracker reuses: valid until the next call.
        """
        named = _named_arrays(self.monitor)
        n = len(self.monitor.subject_ids)
        changed = np.zeros(n, bool)
        for (key, a), saved in zip(named, self._saved):
            skip = np.zeros(saved.shape[1], bool)
            skip[list(self._whole.get(key, ()))] = True      # saved whole with the global state, not per row
            rows_changed(self._words(a), saved, skip, changed)
        codes = np.flatnonzero(changed)
        width = sum(saved.shape[1] for saved in self._saved)
        if self._block.shape[0] < codes.size:
            # Kept from one checkpoint to the next: a fresh block of tens of MB costs more in page faults than
            # the copy into it.
            self._block = np.empty((max(codes.size, 2 * self._block.shape[0]), width), np.uint64)
        block = self._block[:codes.size]
        col = 0
        for _, a in named:
            words = self._words(a)
            copy_rows(words, codes, block, np.int64(col))
            col += words.shape[1]
        return codes, block.view(np.uint8)

    def saved(self, codes: np.ndarray, rows: np.ndarray) -> None:
        """Record that these rows are now saved (call after the transaction that wrote them commits)."""
        block = np.ascontiguousarray(rows).view(np.uint64)
        col = 0
        for saved in self._saved:
            put_rows(block, np.int64(col), np.asarray(codes, np.int64), saved)
            col += saved.shape[1]

    @property
    def row_bytes(self) -> int:
        """Width of one subject's row, in bytes."""
        return sum(saved.shape[1] * 8 for saved in self._saved)

    def restore(self, codes: np.ndarray, blobs: list[bytes], global_blob: bytes) -> None:
        """Put saved rows (:func:`encode_rows` blobs) and the global state into the (freshly built) Monitor.

        Refuses (:class:`CheckpointLayoutError`) a checkpoint of another state layout before touching anything.
        """
        check_layout(self.monitor, global_blob)
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size:
            if codes.min() < 0 or codes.max() >= len(self.monitor.subject_ids):
                raise ValueError("checkpoint names subject codes this Monitor does not have")
            _set_rows(self.monitor, codes, decode_rows(blobs, self.row_bytes))
        _restore_global(self.monitor, global_blob)
        self._saved = [self._words(a).copy() for _, a in _named_arrays(self.monitor)]


def encode_rows(rows: np.ndarray) -> pa.Array:
    """Each row (uint8, a multiple of 8 bytes wide) as a bitmap of its non-zero 64-bit words, then those words.

    Most of a subject's state is zeros (rings not filled, detectors idle), so
    this is about five times smaller than the row, as small as zlib's and
    much cheaper. Returns one blob per row as a pyarrow ``large_binary`` array, built without a Python
    object per row. :func:`decode_rows` inverts it.
    """
    k, width = rows.shape
    raw = np.ascontiguousarray(rows)
    words = raw.view(np.uint64).reshape(k, width // 8)
    data = np.empty(k * ((width // 8 + 7) // 8 + width), np.uint8)
    offsets = np.empty(k + 1, np.int64)
    encode_words(words, raw, data, offsets)
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), k, [None, pa.py_buffer(offsets),
                                                                   pa.py_buffer(data[:offsets[-1]])])


def decode_rows(blobs, width: int) -> np.ndarray:
    """Rows of ``width`` bytes from :func:`encode_rows`' blobs (bytes, or a pyarrow binary array; uint8, one row
    per blob)."""
    if isinstance(blobs, (pa.Array, pa.ChunkedArray)):
        blobs = blobs.to_pylist()
    n_words = width // 8
    head = (n_words + 7) // 8
    out = np.zeros((len(blobs), n_words), np.uint64)
    for i, blob in enumerate(blobs):
        bits = np.unpackbits(np.frombuffer(blob[:head], np.uint8), count=n_words, bitorder="little").astype(bool)
        out[i, bits] = np.frombuffer(blob[head:], np.uint64)
    return out.view(np.uint8).reshape(len(blobs), width)


def to_ipc(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream (the fixes a live checkpoint holds back for lateness)."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(blob: bytes) -> pa.Table:
    """The table of :func:`to_ipc`'s stream."""
    return pa.ipc.open_stream(blob).read_all()


@dataclass
class CapturedCheckpoint:
    """A live checkpoint captured at the end of a tick, to be stored (:class:`geomon.run.live.LiveMonitor`)."""

    seq: int
    watermark_ms: int
    positions: dict
    global_state: bytes
    pending: bytes
    codes: np.ndarray
    rows: np.ndarray
    deferred: dict
