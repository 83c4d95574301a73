"""paused_gc: nests, overlaps across threads, and restores exactly the collector state it found."""

from __future__ import annotations

import gc
import threading

import pytest

from incidentlib.kube.client import paused_gc


@pytest.fixture(autouse=True)
def _collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_pauses_and_resumes() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_resume_only_at_the_outermost() -> None:
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumes_after_an_exception() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads() -> None:
    """Thread A pauses, B pauses, A ends (still paused for B), B ends (resumed)."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def a() -> None:
        with paused_gc():
            a_in.set()
            b_in.wait(5)
        seen["after A left"] = gc.isenabled()
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with paused_gc():
            b_in.set()
            a_out.wait(5)
            seen["B inside"] = gc.isenabled()
        seen["after B left"] = gc.isenabled()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start()
    tb.start()
    ta.join(10)
    tb.join(10)
    assert seen == {"after A left": False, "B inside": False, "after B left": True}


def test_decoding_a_big_list_leaves_no_garbage_behind() -> None:
    """Decoded JSON has no cycles: after a paused decode, a collection finds nothing of it to
    free."""
    import json

    doc = json.dumps(
        {
            "items": [
                {"metadata": {"name": f"p{i}", "labels": {"a": "b"}}, "spec": {"c": [1, 2]}}
                for i in range(20_000)
            ]
        }
    )
    gc.collect()
    with paused_gc():
        items = json.loads(doc)["items"]
    assert len(items) == 20_000
    del items
    assert gc.collect() == 0


def test_freeze_heap_hides_what_is_there_and_a_second_run_collects_the_first_runs_cycles() -> None:
    """After the reads everything alive is frozen (a collection no longer walks it, nor frees a
    cycle in it); the next run's freeze hands the frozen objects back and collects them once, so
    a cycle left by the first run does not outlive the second."""
    import weakref

    from incidentlib.kube.client import freeze_heap

    class Node:
        pass

    try:
        gc.unfreeze()  # whatever an earlier test of this process froze
        gc.disable()  # no collection between making the cycle and freezing it
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
        freeze_heap()  # the first run: nothing frozen before, nothing collected
        gc.enable()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert gone() is not None  # frozen: not collected
        freeze_heap()  # a second run of the notebook in this kernel
        assert gone() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_second_freeze_by_the_same_reading_adds_to_the_first_without_a_full_collection() -> None:
    """The outage read-ahead freezes the decoded lists and the reading then the tables, as one
    owner: the second freeze keeps what the first froze (no unfreeze and full collection in the
    middle of the notebook); another owner's freeze (the next run) hands it back and collects."""
    import weakref

    from incidentlib.kube.client import freeze_heap

    class Node:
        pass

    reading, next_run = object(), object()
    try:
        gc.unfreeze()
        gc.disable()
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
        freeze_heap(reading)  # the read-ahead
        first = gc.get_freeze_count()
        later = [Node() for _ in range(100)]
        freeze_heap(reading)  # the reading, after building its tables
        gc.enable()
        assert gone() is not None  # not collected by the second freeze
        assert gc.get_freeze_count() >= first + len(later)
        freeze_heap(next_run)
        assert gone() is None
    finally:
        gc.enable()
        gc.unfreeze()
