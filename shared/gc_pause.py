"""The cyclic garbage collector paused while a query builds a large answer.

Why: the statistics queries read tens of thousands of fact records (a dict each, from JSON) and
build a record per meeting. Every 700 new containers start a collection, and the older generations'
collections walk everything built so far, so a year's statistics spent ≈ 20 % of their time in
collections that found nothing: the records hold no cycles (bench/README.md, sixteenth session).
Reference counting still frees everything as usual; only cycles wait until the pause ends, and the
collector then runs as it would have.

Pauses nest and overlap (two queries at once on one event loop): the collector runs again when the
last one ends, and only if it was running when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()  # the collector is the process's: a worker thread may pause it too
_paused = 0
_was_enabled = False


@contextmanager
def collections_paused() -> Iterator[None]:
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
