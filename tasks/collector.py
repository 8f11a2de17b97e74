"""Python's cycle collector kept off the start-up's objects while a run streams its objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Every object alive when the block starts is out of the cycle collector's sight until
    it ends.

    A listing makes millions of short-lived objects (XML elements, dicts, planned objects).
    Every 700 of them start a collection, and every so often one scans the whole heap: the
    160,000 objects that importing Prefect, pydantic and botocore leave. Frozen, they are not
    scanned. Objects are still freed when no longer referenced; only cycles among the frozen
    ones wait until the block ends. Nested and concurrent blocks share one freeze, lifted
    when the last of them ends.
    """
    global _holders  # one freeze per process, counted across threads
    with _lock:
        _holders += 1
        if _holders == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.unfreeze()
