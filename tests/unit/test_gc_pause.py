"""``collections_paused``: the collector is off inside, back on after the last of overlapping pauses.
``collector_after_start_up``: start-up's objects frozen, the youngest generation collected less often."""

from __future__ import annotations

import gc

import pytest

from shared.gc_pause import YOUNG_COLLECTION_THRESHOLD, collections_paused, collector_after_start_up


def test_the_collector_is_paused_inside_and_running_again_after() -> None:
    assert gc.isenabled()
    with collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_end_when_the_last_one_ends() -> None:
    first, second = collections_paused(), collections_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second is still building its answer
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failure_inside_still_ends_the_pause() -> None:
    with pytest.raises(RuntimeError), collections_paused():
        raise RuntimeError("query failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_after_start_up_the_collector_ignores_start_up_objects_and_waits_for_more_new_ones() -> None:
    thresholds = gc.get_threshold()
    try:
        collector_after_start_up()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
