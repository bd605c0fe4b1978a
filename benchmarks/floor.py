"""The memory-bandwidth floor: how fast a kernel could go if it only had to stream its arrays once.

A streaming kernel cannot beat ``bandwidth / bytes per item``. The probe here
measures the machine's bandwidth with the same tools the kernels use: numba,
parallel over every thread, on arrays far larger than the caches. It measures
two things: a read (summing 1 GiB of float64) and a copy (reading one array
and writing another). :func:`gaps` then sets each throughput a bench run
measured against the floor of the bytes that kernel must touch per item:

- ``contains_xy``: reads x, y (16 B), writes one bool (1 B);
- ``fuse_tracks``: reads t, x, y, sigma (32 B), writes x, y, three covariances, two velocities (56 B) and a status
  (1 B);
- ``find_staypoints``: reads t, x, y (24 B) and writes one row per stay (nothing per fix);
- the encounter search: reads t, x, y (24 B) once; it is bound by pairs, not bytes;
- ``geomon replay`` end to end: reads the Parquet bytes per fix (compressed on disk; decoded, the rows hold about
  50 B).
"""

from __future__ import annotations

import statistics
import time

import numba
import numpy as np

#: (bench suite, label, bytes read per item, bytes written per item).
BYTES = (
    ("pip", "contains_xy (points)", 16, 1),
    ("fusion", "fuse_tracks (fixes)", 32, 57),
    ("stay", "find_staypoints (fixes)", 24, 0),
    ("encounters", "encounter search (fixes)", 24, 0),
    ("replay", "geomon replay, end to end (fixes)", 50, 0),
)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _read(a):
    # fastmath lets the sum reassociate, so it vectorises: without it, one addition waits for the last, and the
    # probe measures the adder, not the memory.
    s = 0.0
    for i in numba.prange(a.size):
        s += a[i]
    return s


@numba.njit(parallel=True, cache=True, nogil=True)
def _copy(a, b):
    for i in numba.prange(a.size):
        b[i] = a[i]


def memory_bandwidth(gib: float = 1.0, repeat: int = 5) -> dict:
    """Read and copy bandwidth (GB/s, 1e9 bytes) over ``gib`` GiB arrays, median of ``repeat`` after a warm-up."""
    a = np.ones(int(gib * 2**30 / 8))
    b = np.empty_like(a)
    _read(a[:1000])
    _copy(a[:1000], b[:1000])
    reads, copies = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        _read(a)
        reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        _copy(a, b)
        copies.append(time.perf_counter() - t)
    return {"read_gbs": a.nbytes / statistics.median(reads) / 1e9,
            "copy_gbs": 2 * a.nbytes / statistics.median(copies) / 1e9,
            "gib": gib, "threads": numba.get_num_threads()}


def measured_rates(suites: dict) -> dict:
    """Items per second each streaming kernel reached in a bench run (its suites' JSON, read by the caller)."""
    out = {}
    pip = suites.get("pip")
    if pip:
        rows = [r for r in pip["cases"] if r["outline"] != "zones"]
        if rows:
            out["pip"] = max(r["geomon"]["points_per_s"] for r in rows)
    if suites.get("fusion"):
        out["fusion"] = suites["fusion"]["throughput"]["geomon"]["fixes_per_s"]
    if suites.get("stay"):
        out["stay"] = suites["stay"]["kernel"]["fixes_per_s"]
    growth = [r for r in (suites.get("encounters") or {}).get("growth") or [] if "fixes_per_s" in r]
    if growth:
        out["encounters"] = max(growth, key=lambda r: r["n_tracks"])["fixes_per_s"]
    if suites.get("replay"):
        out["replay"] = suites["replay"]["runs"][0]["fixes_per_s"]
    return out


def gaps(rates: dict, bandwidth: dict) -> list[dict]:
    """Each kernel's throughput against its floor: the bandwidth over the bytes it must move per item."""
    rows = []
    for suite, label, read_b, write_b in BYTES:
        if suite not in rates:
            continue
        # Reading alone streams at the read bandwidth; reading and writing, at the copy bandwidth.
        gbs = bandwidth["copy_gbs"] if write_b else bandwidth["read_gbs"]
        floor = gbs * 1e9 / (read_b + write_b)
        rows.append({"suite": suite, "what": label, "bytes_per_item": read_b + write_b, "items_per_s": rates[suite],
                     "floor_items_per_s": floor, "share_of_floor": rates[suite] / floor})
    return rows
