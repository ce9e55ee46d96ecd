"""How the services use the cyclic garbage collector: tuned once after start-up, and paused while a
query builds a large answer.

After start-up (``collector_after_start_up``):
- What start-up built (modules, schemas, compiled statements, templates) lives as long as the
  process, so it is moved out of the collector's sight (``gc.freeze``).
- The youngest generation is collected after 10,000 new objects instead of Python's 700. A consumed
  batch keeps ≈ 10,000–20,000 objects alive until its transaction ends (messages, events, rows): at
  700 the collector walked that live batch again every few hundred allocations, ≈ 4–5 % of the
  services' CPU per referral. What a transaction held is freed by reference counting when it ends
  (``UnitOfWork._detach``), so the higher threshold delays little garbage, and a collection walks at
  most that many young objects: none took over 3 ms at 119 referrals/s (bench/README.md, nineteenth
  session).

Paused for a query (``collections_paused``): the statistics queries read tens of thousands of fact
records (a dict each, from JSON) and build a record per meeting. The older generations' collections
walk everything built so far, so a year's statistics spent ≈ 20 % of their time in collections that
found nothing: the records hold no cycles (bench/README.md, sixteenth session). Reference counting
still frees everything as usual; only cycles wait until the pause ends, and the collector then runs
as it would have.

Pauses nest and overlap (two queries at once on one event loop): the collector runs again when the
last one ends, and only if it was running when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_COLLECTION_THRESHOLD = 10_000


def collector_after_start_up() -> None:
    """Once a service is ready: start-up's objects frozen, then the youngest generation's threshold
    raised (the older generations' thresholds stay)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)


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
