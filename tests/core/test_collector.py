"""core.collector: automatic collection is off inside, restored after, nested and
concurrent uses included; checkpoints still free garbage cycles."""

from __future__ import annotations

import gc
import threading
import weakref

from core import collector


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_collection_is_deferred_and_restored() -> None:
    assert gc.isenabled()
    with collector.deferred_collection():
        assert not gc.isenabled()
        with collector.deferred_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer use is still running
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collector.deferred_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_checkpoints_free_cycles_made_inside() -> None:
    with collector.deferred_collection():
        for young in (True, False):
            node = _Node()
            ref = weakref.ref(node)
            del node
            assert ref() is not None  # a cycle: reference counting cannot free it
            collector.collect(young=young)
            assert ref() is None


def test_concurrent_uses_restore_once_the_last_ends() -> None:
    inside = threading.Barrier(2)
    release = threading.Event()

    def run() -> None:
        with collector.deferred_collection():
            inside.wait()
            release.wait()

    worker = threading.Thread(target=run)
    worker.start()
    with collector.deferred_collection():
        inside.wait()
    assert not gc.isenabled()  # the worker's use is still running
    release.set()
    worker.join()
    assert gc.isenabled()


def test_an_exception_restores_the_collector() -> None:
    try:
        with collector.deferred_collection():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()
