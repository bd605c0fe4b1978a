"""kernels/_pool.py: serial kernels shared out over threads. ``split`` covers every unit once, and every chunked
driver gives, cut anywhere, exactly what it gives in one piece (and what shapely gives, where it is the
reference)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomon.geo.geometry import ZoneIndex, contains_xy, signed_distance_xy
from geomon.kernels import _pool
from geomon.kernels.fusion import fuse_tracks
from geomon.kernels.smoother import rts_smooth
from geomon.kernels.staypoints import find_staypoints


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(1, 50), st.integers(1, _pool.numba.config.NUMBA_NUM_THREADS))
@example(0, 1, 1)
@example(1, 1, 1)
def test_split_covers_every_unit_once(n, units, threads):
    seen = np.zeros(n, np.int64)
    lock = threading.Lock()

    def call(lo, hi):
        assert 0 <= lo < hi <= n
        with lock:
            seen[lo:hi] += 1

    old = _pool.numba.get_num_threads()
    try:
        _pool.numba.set_num_threads(threads)   # numba's own knob limits the split
        _pool.split(n, call, min_units=units)
        assert _pool.threads() == threads
    finally:
        _pool.numba.set_num_threads(old)
    assert seen.tolist() == [1] * n


def test_an_error_in_any_chunk_is_raised_and_nested_splits_run_inline():
    def call(lo, hi):
        if lo > 0:
            raise ValueError("second chunk")

    with _pool.chunks_of(1), pytest.raises(ValueError, match="second chunk"):
        _pool.split(10, call)
    nested = {}

    def outer(lo, hi):
        ranges = []
        _pool.split(hi - lo, lambda a, b: ranges.append((a, b)))
        nested[threading.current_thread().name.startswith("geomon-kernel")] = sorted(ranges)

    with _pool.chunks_of(1):
        _pool.split(4, outer)
    # The pool thread's own split ran inline, as one range; the caller's split shared its two units out.
    assert nested == {True: [(0, 2)], False: [(0, 1), (1, 2)]}


_POLYS = [shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(3, 3), (6, 3), (6, 6), (3, 6)]]),
          shapely.MultiPolygon([shapely.box(12, 0, 15, 4), shapely.box(16, 1, 20, 9)]),
          shapely.Polygon([(0, 0), (20, 5), (2, 12)])]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 22), st.integers(-2, 12)), min_size=1, max_size=60),
       st.integers(1, 7))
@example([(0, 0), (3, 3), (10, 10), (14, 2)], 1)
def test_chunked_point_kernels_match_shapely(points, units):
    x = np.array([p[0] for p in points], float) * 1.0
    y = np.array([p[1] for p in points], float) * 1.0
    index = ZoneIndex(np.array(_POLYS, dtype=object))
    with _pool.chunks_of(units):
        for poly in _POLYS:
            np.testing.assert_array_equal(contains_xy(poly, x, y), shapely.contains_xy(poly, x, y))
        pi, zi = index.query_xy(x, y, predicate="intersects")
        chunked_distance = signed_distance_xy(_POLYS[0], x, y, 100.0)
    expected = sorted((i, j) for j, poly in enumerate(_POLYS)
                      for i in np.flatnonzero(shapely.intersects_xy(poly, x, y)))
    assert list(zip(pi.tolist(), zi.tolist())) == expected
    np.testing.assert_array_equal(chunked_distance, signed_distance_xy(_POLYS[0], x, y, 100.0))


def _tracks(seed, n_tracks):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 40, n_tracks)
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    t = np.concatenate([np.cumsum(rng.integers(1, 30_000, s)) for s in sizes]).astype(np.int64) if sizes.sum() \
        else np.zeros(0, np.int64)
    x = np.cumsum(rng.normal(0, 5, sizes.sum()))
    y = np.cumsum(rng.normal(0, 5, sizes.sum()))
    return offsets, t, x, y, np.full(sizes.sum(), 4.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 12), st.integers(1, 5))
@example(0, 0, 1)
def test_chunked_track_kernels_equal_the_whole(seed, n_tracks, units):
    offsets, t, x, y, sigma = _tracks(seed, n_tracks)
    whole = fuse_tracks(offsets, t, x, y, sigma)
    lon, lat = 116.0 + x * 1e-5, 39.0 + y * 1e-5
    stays = find_staypoints(offsets, t, lon, lat, 20.0, 60_000, two_pass=True)
    with _pool.chunks_of(units):
        cut = fuse_tracks(offsets, t, x, y, sigma)
        cut_stays = find_staypoints(offsets, t, lon, lat, 20.0, 60_000, two_pass=True)
    for a, b in zip(whole, cut):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(stays, cut_stays):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(seed)
    n = t.size
    link = rng.integers(0, 2, n).astype(np.int8)
    pred, filt = rng.normal(size=(n, 7)), rng.normal(size=(n, 7))
    pred[:, 2:] = filt[:, 2:] = np.abs(pred[:, 2:]) + 1.0
    smooth = rts_smooth(offsets, t, link, pred, filt)
    with _pool.chunks_of(units):
        np.testing.assert_array_equal(rts_smooth(offsets, t, link, pred, filt), smooth)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 25), st.floats(-5, 15), st.floats(-5, 25), st.floats(-5, 15)),
                min_size=1, max_size=40), st.integers(1, 6))
def test_chunked_pair_and_segment_kernels_equal_the_whole(segments, units):
    from geomon.engine.zone_distance import pair_signed_distance
    from geomon.engine.zones import RoleIndex
    from geomon.kernels.crossing import segment_crossings

    role = RoleIndex.build(np.array(_POLYS, dtype=object), np.arange(len(_POLYS)))
    ix = role.index
    a = np.array(segments, float)
    ax, ay, bx, by = (np.ascontiguousarray(a[:, i]) for i in range(4))

    def run():
        point = np.repeat(np.arange(ax.size), len(_POLYS))
        zone = np.tile(np.arange(len(_POLYS)), ax.size)
        signed = pair_signed_distance(ix, ax, ay, point, zone, 100.0)
        crossings = segment_crossings(ax, ay, bx, by, ix._coarse, ix._gnx, ix._gny, ix._g_offsets, ix._g_zones,
                                      ix._zone_grid, ix._zone_dims, ix._zone_cbase, *ix._cells.arrays(),
                                      role.edges, role.edge_offsets, 0.5)
        return signed, crossings

    whole_signed, whole_crossings = run()
    with _pool.chunks_of(units):
        cut_signed, cut_crossings = run()
    np.testing.assert_array_equal(cut_signed, whole_signed)
    for w, c in zip(whole_crossings, cut_crossings):
        np.testing.assert_array_equal(c, w)
    # The reference: shapely's distance to each zone's boundary, signed by its side.
    for m, (i, j) in enumerate(zip(np.repeat(np.arange(ax.size), len(_POLYS)), np.tile(np.arange(len(_POLYS)),
                                                                                          ax.size))):
        p = shapely.Point(ax[i], ay[i])
        d = min(_POLYS[j].boundary.distance(p), 100.0)
        assert abs(abs(whole_signed[m]) - d) < 1e-9
