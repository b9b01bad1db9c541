"""The garbage-collection policy of a server process that holds thousands of sockets.

CPython's full collection walks every tracked object and stops the process while it does.
A desk process holding 10,000 waiting visitors tracks ~900,000 objects (83 per visitor), and
one full collection then takes 0.25-0.7 s on a quiet machine and up to 1.7 s on a loaded one:
every visitor's position update and every offer waits behind it. Full collections come each
time the long-lived objects have grown by a quarter, so they keep coming while a line fills
up and while visitors come and go.

The policy: objects that survived a full collection are *frozen* (``gc.freeze()``), so later
collections only walk what was created since. Frozen objects are not collected even when they
become garbage, so once the frozen set has grown to ``growth`` times its size after the last
thaw, everything is thawed and collected in one pass: the pause the collector would have made
anyway, made once per doubling instead of once per quarter.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)


class CollectorPolicy:
    """Freezes survivors of full collections; thaws and collects when the frozen set grew."""

    def __init__(self, growth: float = 2.0, floor: int = 200_000) -> None:
        self.growth = growth
        self.floor = floor  # no thaw while fewer objects than this are frozen
        self._full_seen = False
        self._thawed_size = 0
        self._frozen_since_thaw = 0
        self.thaws = 0

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self._full_seen = True

    def start(self) -> None:
        """Collects once and freezes what start-up made (modules, routes, templates)."""
        gc.collect()
        gc.freeze()
        self._thawed_size = gc.get_freeze_count()
        gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_collection)
        gc.unfreeze()

    def tick(self) -> None:
        """Freezes after a full collection; thaws and collects after enough growth."""
        if not self._full_seen:
            return
        self._full_seen = False
        # The survivors of the full collection are in the oldest generation, which is small
        # (everything older is frozen); counting the frozen set itself would walk all of it.
        self._frozen_since_thaw += len(gc.get_objects(generation=2))
        gc.freeze()
        frozen = self._thawed_size + self._frozen_since_thaw  # an upper bound
        if frozen > max(self.floor, self.growth * self._thawed_size):
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._thawed_size = gc.get_freeze_count()
            self._frozen_since_thaw = 0
            self.thaws += 1
            log.info(
                "collected up to %d frozen objects in %.0f ms; %d remain",
                frozen,
                1000 * (time.perf_counter() - started),
                self._thawed_size,
            )

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.tick()


@contextlib.asynccontextmanager
async def collector_policy(interval_s: float = 1.0) -> AsyncIterator[CollectorPolicy]:
    """Runs the policy for the life of a server process (not for apps inside tests)."""
    policy = CollectorPolicy()
    policy.start()
    task = asyncio.create_task(policy.run(interval_s), name="collector")
    try:
        yield policy
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        policy.stop()
