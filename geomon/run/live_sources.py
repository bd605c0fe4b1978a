"""Sources of the live watch: files landing in a directory, and JSON lines from stdin or a socket.

Each source's ``poll(live)`` offers what arrived since the last poll to a
:class:`geomon.run.live.LiveMonitor` with the position it reached (the file
names consumed, or the number of lines), which the Monitor saves with its next
checkpoint, so that a restart resumes after it. Input a source cannot read
(a corrupt file, a line that is not a JSON object) goes to the quarantine, not
into an exception that would stop the stream. :func:`run` polls the sources and
ticks the LiveMonitor. Import the names from :mod:`geomon.run.live`, which
re-exports them.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from geomon.errors import GeomonError
from geomon.io.common import FixLoad
from geomon.schema import QUARANTINE_SCHEMA

if TYPE_CHECKING:   # for annotations only: geomon.run.live imports this module
    from geomon.run.live import LiveMonitor

__all__ = ["DirectorySource", "LineSource", "StaleDataError", "read_json_lines", "run"]


class StaleDataError(GeomonError):
    """A new stream on the wall clock starts with data hours old (recorded files: use the event clock)."""

_FIX_TEXT_COLUMNS = ("subject_id", "ts", "lon", "lat", "source", "accuracy_m")


def read_json_lines(lines: list[str], *, name: str, first_line: int) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """Parse JSON-lines fixes: text columns (validated later by the loader), their line numbers, the lines refused.

    Each line is one JSON object with the fix columns; a line that is not a JSON
    object is quarantined (``bad_json``) under ``name`` and its line number
    (``first_line`` for the first of ``lines``). Blank lines are skipped.
    """
    rows, numbers, bad = [], [], []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:   # RecursionError: hostile nesting
            reason = getattr(exc, "msg", None) or str(exc).strip().splitlines()[0][:200]
            bad.append((first_line + i, f"not JSON ({reason})", text))
            continue
        if not isinstance(obj, dict):
            bad.append((first_line + i, "not a JSON object", text))
            continue
        try:
            row = {c: None if obj.get(c) is None else str(obj[c]) for c in _FIX_TEXT_COLUMNS}
            for v in row.values():
                if v is not None:
                    v.encode("utf-8")        # a lone surrogate ("\ud800") is not text Arrow can hold
        except (ValueError, UnicodeEncodeError) as exc:   # ValueError: an integer too long to print
            bad.append((first_line + i, f"not usable text ({str(exc).strip().splitlines()[0][:200]})", text))
            continue
        rows.append(row)
        numbers.append(first_line + i)
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in _FIX_TEXT_COLUMNS})
    refused = pa.table({"source_name": pa.array([name] * len(bad), pa.string()),
                        "row": pa.array([b[0] for b in bad], pa.int64()),
                        "field": pa.array([None] * len(bad), pa.string()),
                        "reason": pa.array(["bad_json"] * len(bad), pa.string()),
                        "raw": pa.array([f"{b[1]}: {b[2][:500]}".encode("utf-8", "backslashreplace").decode("utf-8")
                                         for b in bad], pa.string())},
                       schema=QUARANTINE_SCHEMA)
    return table, np.array(numbers, dtype=np.int64), refused


def _offer_lines(live: LiveMonitor, lines: list[str], *, name: str, first_line: int,
                 position: tuple[str, object]) -> int:
    table, numbers, refused = read_json_lines(lines, name=name, first_line=first_line)
    live.refuse(refused)
    load = _renumber(live.load(table, name=name), numbers)
    return live.offer(load, source=name, position=position)


def _renumber(load: FixLoad, line_of_row: np.ndarray) -> FixLoad:
    """The same load with quarantine rows and input rows mapped through ``line_of_row``."""
    from dataclasses import replace

    q = load.quarantine
    if q.num_rows:
        i = q.schema.get_field_index("row")
        q = q.set_column(i, q.schema.field(i), pa.array(line_of_row[q.column("row").to_numpy()], pa.int64()))
    rows = load.input_row if load.input_row is not None else np.arange(load.table.num_rows, dtype=np.int64)
    return replace(load, quarantine=q, input_row=line_of_row[rows] if line_of_row.size else rows)


class DirectorySource:
    """Files landing in a directory: ``*.parquet``, ``*.csv``, ``*.csv.gz``, ``*.jsonl`` (JSON lines).

    Each file is read whole once, in name order, when it appears. Write files
    under a temporary name (a leading ``.`` or a ``.tmp``/``.part`` suffix) and
    rename them when complete: those are never read. The names consumed are
    saved with the checkpoint, so a restart reads only the files after it.
    """

    SUFFIXES = (".parquet", ".csv", ".csv.gz", ".jsonl", ".ndjson")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such directory")

    def _ready(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.name.endswith(self.SUFFIXES))

    def poll(self, live: LiveMonitor, *, limit: int | None = None) -> int:
        """Offer every new complete file (at most ``limit``); return how many files were read."""
        done = set(live.positions.get("files", []))
        n = 0
        for path in self._ready():
            if path.name in done:
                continue
            if limit is not None and n >= limit:
                break
            consumed = sorted(done | {path.name})
            try:
                if path.name.endswith((".jsonl", ".ndjson")):
                    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                    _offer_lines(live, lines, name=str(path), first_line=0, position=("files", consumed))
                else:
                    live.offer(path, source=str(path), position=("files", consumed))
            except StaleDataError:
                raise                    # the stream's clock, not the file, is wrong: stop and say so
            except (GeomonError, OSError, ValueError, pa.ArrowException) as exc:
                live.refuse_file(str(path), f"unreadable file: {exc}", position=("files", consumed))
            done.add(path.name)
            n += 1
        return n


class LineSource:
    """JSON lines from a stream (stdin, or connections to a local socket), read by a background thread.

    ``poll`` offers every complete line received so far. Lines are numbered
    from 0 in arrival order; the count is saved with the checkpoint. A stream
    cannot be read again, so after a crash the lines received since the last
    checkpoint are lost unless the sender sends them again (see the module notes).
    """

    def __init__(self, stream=None, *, socket_path: str | Path | None = None, name: str | None = None):
        self._queue: queue.Queue[str] = queue.Queue()
        self.closed = threading.Event()
        self.name = name or ("stdin" if socket_path is None else str(socket_path))
        if socket_path is not None:
            self._serve(Path(socket_path))
        else:
            thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
            thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self.closed.set()

    def _serve(self, path: Path) -> None:
        import socketserver

        if path.is_socket():          # left by an earlier run
            path.unlink()
        elif path.exists():
            raise FileExistsError(f"{path} exists and is not a socket; not replacing it")
        source = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for raw in self.rfile:
                    source._queue.put(raw.decode("utf-8", errors="replace"))

        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    @property
    def drained(self) -> bool:
        """The stream has closed and every line it sent was offered."""
        return self.closed.is_set() and self._queue.empty()

    def poll(self, live: LiveMonitor) -> int:
        """Offer the lines received since the last poll; return how many."""
        lines = []
        while True:
            try:
                lines.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not lines:
            return 0
        first = int(live.positions.get("lines", 0))
        _offer_lines(live, lines, name=self.name, first_line=first, position=("lines", first + len(lines)))
        return len(lines)


def run(live: LiveMonitor, sources: list, *, tick_s: float = 1.0, once: bool = False,
        idle_exit_s: float | None = None, on_tick=None, stop: threading.Event | None = None) -> int:
    """Poll ``sources`` and tick every ``tick_s`` seconds until stopped; return the number of ticks.

    ``once``: read what the sources hold now (a directory: one file per tick,
    so each file is its own micro-batch; a stream: until it closes), tick, and
    return. ``idle_exit_s``: return after that long without input. ``on_tick``
    is called with each :class:`TickResult`; ``stop`` ends the loop when set
    (a final tick commits what was read).
    """
    stop = stop or threading.Event()
    ticks = 0
    last_input = time.monotonic()
    while True:
        started = time.monotonic()
        got = 0
        for source in sources:
            got += source.poll(live, limit=1) if once and isinstance(source, DirectorySource) else source.poll(live)
        if got:
            last_input = started
        result = live.tick()
        ticks += 1
        if on_tick is not None:
            on_tick(result)
        if stop.is_set():
            return ticks
        if once:
            streams_open = any(isinstance(s, LineSource) and not s.drained for s in sources)
            if not got and not streams_open:
                return ticks
            if not got:
                stop.wait(min(tick_s, 0.05))
            continue
        if idle_exit_s is not None and time.monotonic() - last_input > idle_exit_s:
            return ticks
        stop.wait(max(0.0, tick_s - (time.monotonic() - started)))
