"""The per-socket message limit (a token bucket kept with the socket, no Redis needed), and
the pre-call workers' limits."""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["MessageBucket", "PrecallLimits"]


class MessageBucket:
    """``rate`` messages a second, ``burst`` at once. A socket over it gets ``rate_limited``
    errors for the frames it sends too fast (which count towards the error limit that closes
    it), so a flood is refused or closed, never queued."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True  # no limit
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass(frozen=True)
class PrecallLimits:
    """The worker's limits; each has a ``HUMANDESK_PRECALL_*`` variable (server/config.py)."""

    max_peers: int = 2  # echo peers at once: about 40-45 % of a core each
    queue: int = 8  # requests that may wait for a slot; more are refused at once
    wait_s: float = 10.0  # how long a request waits for a slot before it is refused
    max_seconds: float = 15.0  # a peer is closed this long after it was made
