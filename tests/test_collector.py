"""The server process's garbage-collection policy (humandesk.server.collector)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from humandesk.server.collector import CollectorPolicy


class Node:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[CollectorPolicy]:
    policy = CollectorPolicy(growth=2.0, floor=0)
    policy.start()
    try:
        yield policy
    finally:
        policy.stop()


def test_start_freezes_what_exists(policy: CollectorPolicy) -> None:
    assert gc.get_freeze_count() > 0
    assert len(gc.get_objects(generation=2)) < gc.get_freeze_count()


def test_survivors_of_a_full_collection_are_frozen(policy: CollectorPolicy) -> None:
    policy.growth = 1000.0  # no thaw in this test
    before = gc.get_freeze_count()
    survivors = [Node() for _ in range(5000)]
    gc.collect()  # a full collection, seen by the policy's callback
    policy.tick()
    assert gc.get_freeze_count() >= before + 5000
    assert not gc.get_objects(generation=2) or len(gc.get_objects(generation=2)) < 5000
    del survivors


def test_frozen_cycles_are_freed_when_the_frozen_set_has_grown(policy: CollectorPolicy) -> None:
    policy.growth = 1000.0
    nodes = [Node() for _ in range(2000)]
    gc.collect()
    policy.tick()  # the nodes are frozen now
    probe = weakref.ref(nodes[0])
    del nodes
    gc.collect()  # frozen: the collector does not look at them
    policy.tick()
    assert probe() is not None
    policy.growth = 1.0  # any growth thaws now
    _more = [Node() for _ in range(100)]
    gc.collect()
    policy.tick()
    assert policy.thaws == 1
    assert probe() is None


def test_stop_unfreezes() -> None:
    policy = CollectorPolicy()
    policy.start()
    policy.stop()
    assert gc.get_freeze_count() == 0
