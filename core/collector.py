"""The cyclic garbage collector during long batch work.

A bill run keeps a chunk's quantities and contexts alive (hundreds of thousands of
small objects) while it allocates millions more; Python's automatic full collections
then rescan that live heap again and again (measured: a quarter of a 100,000-
subscription run). Inside `deferred_collection`, objects that existed before are
frozen out of the scans, automatic collection is off, and the work calls `collect()`
at its own checkpoints (once per chunk), so garbage cycles are still freed, at a
bounded cost. Nested or concurrent uses (two bill runs in one process) keep the
collector off until the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = True


@contextmanager
def deferred_collection() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()


def collect(*, young: bool = False) -> None:
    """A checkpoint: free the garbage cycles made since the last one. `young` scans only
    what was allocated since the last checkpoint (cheap: for every batch of work); a
    full one (once per chunk) also frees cycles among what survived earlier ones."""
    gc.collect(0 if young else 2)
