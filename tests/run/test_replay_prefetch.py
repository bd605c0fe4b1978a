"""The replay's read-ahead: items in order, an error in the producer raised in its place, an early stop ends the
producer's thread."""

from __future__ import annotations

import threading

import pytest

from geomon.run.replay import prefetched


def test_items_come_in_order_and_a_producers_error_in_its_place():
    assert list(prefetched(iter(range(50)), ahead=2)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("row group 3 is not readable")

    got = []
    with pytest.raises(ValueError, match="row group 3"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_ends_the_producer():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    items = prefetched(endless(), ahead=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert not any(t.name == "geomon-feed" for t in threading.enumerate())
    assert len(produced) <= 3 + 2 + 1   # at most `ahead` items (and the one in hand) beyond those taken
