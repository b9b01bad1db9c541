"""The per-socket message limit: a token bucket kept with the socket (no Redis needed)."""

from __future__ import annotations

import time

__all__ = ["MessageBucket"]


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
