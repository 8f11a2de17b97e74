"""The start-up's objects frozen while a run streams: counted across blocks and threads."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from tasks.collector import startup_objects_frozen


class Node:
    """An object the cycle collector tracks (and weakref can watch)."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_freezes_what_is_alive_and_lifts_it_when_the_block_ends() -> None:
    gc.collect()
    assert gc.get_freeze_count() == 0
    alive_before = cycle()  # unreachable already, but not yet collected

    with startup_objects_frozen():
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert alive_before() is not None  # frozen: the collector does not look at it
        made_inside = cycle()
        gc.collect()
        assert made_inside() is None  # objects made in the block are collected as usual

    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive_before() is None


def test_nested_and_concurrent_blocks_share_one_freeze_when_they_overlap() -> None:
    inside = threading.Event()
    leave = threading.Event()

    def other_run() -> None:
        with startup_objects_frozen():
            inside.set()
            leave.wait(10)

    with startup_objects_frozen():
        thread = threading.Thread(target=other_run)
        thread.start()
        assert inside.wait(10)
        with startup_objects_frozen():
            pass
        assert gc.get_freeze_count() > 0  # the nested block's end did not lift it
    assert gc.get_freeze_count() > 0  # the other thread's block still holds it
    leave.set()
    thread.join(10)

    assert gc.get_freeze_count() == 0


def test_lifts_the_freeze_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), startup_objects_frozen():
        raise RuntimeError("listing failed")

    assert gc.get_freeze_count() == 0
