"""The garbage collector paused while a read decodes JSON, and running again after."""

from __future__ import annotations

import gc
import threading

from komeet_sync import collector


def test_the_collector_runs_again_when_the_last_pause_ends():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still under way
    assert gc.isenabled()


def test_pauses_overlapping_across_threads_restore_it_once_all_have_ended():
    first_in, first_may_end = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector.paused():
            first_in.set()
            first_may_end.wait(10)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with collector.paused():  # begins in the first's pause, ends before it
        pass
    assert not gc.isenabled()
    first_may_end.set()
    thread.join(10)
    assert seen == [False] and gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failure_inside_ends_the_pause():
    try:
        with collector.paused():
            raise ValueError("a read failed")
    except ValueError:
        pass
    assert gc.isenabled()
