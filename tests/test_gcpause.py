"""The collector around large builds: off while millions of objects are made (``paused_gc``), then
on for what a long write makes, without scanning the build again (``scanning_new_only``). A
Neo4j bulk import depends on the second: the driver's results are reference cycles, and with the
collector off for the whole write they piled up (3 GB over a million-CI import)."""

from __future__ import annotations

import gc
import weakref

from servicegraph.graph.gcpause import paused_gc, scanning_new_only


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_garbage_made_while_writing_is_collected_and_the_plan_is_not_rescanned() -> None:
    assert gc.isenabled()
    with paused_gc():
        plan = [[i] for i in range(5_000)]  # built with the collector off
        with scanning_new_only():
            assert gc.isenabled()
            assert gc.get_freeze_count() >= len(plan)  # out of the collector's sight
            garbage = Node()
            gone = weakref.ref(garbage)
            del garbage
            kept = [[] for _ in range(gc.get_threshold()[0] * 3)]  # enough to start a collection
            assert gone() is None
            assert len(kept) > 0
        assert not gc.isenabled()  # the pause around it goes on
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_without_it_the_same_garbage_stays_while_paused() -> None:
    with paused_gc():
        garbage = Node()
        gone = weakref.ref(garbage)
        del garbage
        kept = [[] for _ in range(gc.get_threshold()[0] * 3)]
        assert gone() is not None and len(kept) > 0
    gc.collect()
    assert gone() is None
