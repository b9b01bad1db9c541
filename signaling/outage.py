"""Redis outages as an expected condition: recognised, logged once, answered with ``unavailable``.

While Redis cannot be reached, every request that needs it fails the same way. A traceback
per request would bury the one fact an operator needs, so the first failure of an outage is
logged as one line and its end as another, with its length.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from humandesk.queue.connection import CLUSTER_UNAVAILABLE

__all__ = ["UNAVAILABLE", "Outage"]

log = logging.getLogger("humandesk.redis")

#: Exceptions that mean "Redis cannot be reached now" (BusyLoadingError, a Redis loading its
#: data after a restart, is a ConnectionError; on a cluster, a slot without a primary for the
#: moment of a failover), as opposed to a bug.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
    ConnectionError,
    *CLUSTER_UNAVAILABLE,
)

#: How long clients are told to wait before they try again.
RETRY_AFTER_S = 2
#: An outage ends once Redis has answered with no failure for this long: connections made
#: before a Redis restart fail once each when next used, and belong to the same outage.
SETTLE_S = 1.0


class Outage:
    """Whether Redis is reachable, as this process last saw it.

    ``on_start`` runs when an outage begins: the server drops its idle pooled connections
    there, since each would fail once more after Redis is back (a restarted Redis has closed
    them), and a request on one would be refused after the outage had ended.
    """

    def __init__(self, on_start: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.since: float | None = None  # monotonic time the current outage began
        self.last_failure = 0.0
        self.failures = 0
        self._on_start = on_start
        self._task: asyncio.Task[Any] | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        """A Redis call failed with one of :data:`UNAVAILABLE`."""
        self.failures += 1
        self.last_failure = time.monotonic()
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "Redis is unreachable (%s); requests get 'unavailable' until it is back",
                type(exc).__name__ + (f": {exc}" if str(exc) else ""),
            )

    def recovered(self) -> None:
        """A Redis call succeeded."""
        if self.since is None or time.monotonic() - self.last_failure < SETTLE_S:
            return
        log.warning(
            "Redis is reachable again after %.1f s (%d requests were refused meanwhile)",
            time.monotonic() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0
