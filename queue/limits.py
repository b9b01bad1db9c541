"""Abuse limits counted in Redis, so every server process of a desk shares them.

Each check is one atomic script: a token bucket (``bucket.lua``) for rates such as callback
requests per client address, and for a join both its rate and a reservation among the places
in line one address may hold at once (``admit.lua``), so a join pays one round trip for its
limits; the two share ``limit_lib.lua``. Limits per
socket (messages a second) need no sharing and live with the socket
(:class:`humandesk.signaling.limits.MessageBucket`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from humandesk.queue.connection import RedisClient
from humandesk.queue.keys import DeskKeys

__all__ = ["AbuseLimits", "Limiter", "Refusal"]

SCRIPTS_DIR = Path(__file__).parent / "scripts"


@dataclass(frozen=True)
class AbuseLimits:
    """The desk's abuse limits; each has a ``HUMANDESK_*`` variable (server/config.py)."""

    joins_per_minute: int = 20  # per client address
    waiting_per_address: int = 10  # visitors with a place in line at once, per address
    callbacks_per_hour: int = 5  # callback requests per client address
    open_callbacks: int = 1_000  # open callback requests the desk holds at once
    chat_messages: int = 200  # lines of chat one call holds (both parties together)
    messages_per_second: float = 20.0  # per socket, sustained
    message_burst: int = 60  # per socket, at once
    logins_per_account: int = 10  # failed sign-ins per account and address, per window
    logins_per_address: int = 100  # failed sign-ins per address, per window
    login_window_s: int = 900
    precalls_per_minute: int = 6  # pre-call tests per client address


@dataclass(frozen=True)
class Refusal:
    """Why a limited action was refused, and when it may be tried again."""

    limit: str  # "joins", "waiting", "callbacks", "precalls"
    retry_after_s: int


class Limiter:
    """The per-address limits of one desk."""

    #: How long a reserved place counts before its visitor's entry exists (the join follows
    #: the reservation at once; a join that failed frees the place after this).
    RESERVATION_GRACE_MS = 10_000

    #: How long this process refuses an address by itself after Redis refused it: a flood
    #: of joins then costs no Redis round trip each (measured: 10,000 refused joins in 4 s
    #: from 2,000 sockets were 10,000 scripts). Short for places in line, which free up as
    #: visitors are served; a rate refusal knows its own wait.
    LOCAL_WAITING_S = 1.0
    LOCAL_MAX = 10_000  # addresses remembered at most (older ones are forgotten first)

    def __init__(self, redis: RedisClient, keys: DeskKeys, limits: AbuseLimits) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        lib = (SCRIPTS_DIR / "limit_lib.lua").read_text() + "\n"
        self._bucket = redis.register_script(lib + (SCRIPTS_DIR / "bucket.lua").read_text())
        self._admit = redis.register_script(lib + (SCRIPTS_DIR / "admit.lua").read_text())
        self._refused: dict[tuple[str, str], tuple[float, Refusal]] = {}

    def _remembered(self, kind: str, who: str) -> Refusal | None:
        entry = self._refused.get((kind, who))
        if entry is None:
            return None
        until, refusal = entry
        left = until - time.monotonic()
        if left <= 0:
            del self._refused[(kind, who)]
            return None
        return Refusal(refusal.limit, max(1, math.ceil(left)))

    def _remember(self, kind: str, who: str, refusal: Refusal, seconds: float) -> Refusal:
        if len(self._refused) >= self.LOCAL_MAX:
            self._refused.pop(next(iter(self._refused)))
        self._refused[(kind, who)] = (time.monotonic() + seconds, refusal)
        return refusal

    async def take(self, kind: str, who: str, per_window: int, window_s: float) -> int:
        """Takes one token of ``kind`` for ``who`` (``per_window`` tokens refill evenly over
        ``window_s``); returns 0, or the seconds until one is available."""
        if per_window <= 0:
            return 0  # 0 turns a limit off
        taken, wait_ms = await self._bucket(
            keys=[self.keys.limit(kind, who)], args=[per_window / window_s, per_window]
        )
        return 0 if int(taken) else max(1, math.ceil(int(wait_ms) / 1000))

    async def admit_visitor(self, address: str, visitor_id: str) -> Refusal | None:
        """A join from ``address``: within the joins a minute and the places at once?"""
        known = self._remembered("join", address)
        if known is not None:
            return known
        per_minute = max(0, self.limits.joins_per_minute)
        places = max(0, self.limits.waiting_per_address)
        if not per_minute and not places:
            return None  # both turned off: no round trip
        outcome, wait_ms = await self._admit(
            keys=[
                self.keys.limit("join", address),
                self.keys.waiting_by_address(address),
                self.keys.visitors,
            ],
            args=[per_minute / 60, per_minute, visitor_id, places, self.RESERVATION_GRACE_MS],
        )
        if int(outcome) == 1:
            return None
        if int(outcome) == 0:
            wait = max(1, math.ceil(int(wait_ms) / 1000))
            return self._remember("join", address, Refusal("joins", wait), wait)
        return self._remember("join", address, Refusal("waiting", 30), self.LOCAL_WAITING_S)

    async def admit_precall(self, address: str) -> Refusal | None:
        """A pre-call test from ``address``: within the tests a minute?"""
        return await self._admit_rate(
            "precall", "precalls", address, self.limits.precalls_per_minute, 60
        )

    async def admit_callback(self, address: str) -> Refusal | None:
        """A callback request from ``address``: within the requests an hour?"""
        return await self._admit_rate(
            "callback", "callbacks", address, self.limits.callbacks_per_hour, 3600
        )

    async def _admit_rate(
        self, kind: str, limit: str, address: str, per_window: int, window_s: float
    ) -> Refusal | None:
        """One token of ``kind`` for ``address``, or the refusal (remembered here until its
        wait is over, so a flood costs no round trips)."""
        known = self._remembered(kind, address)
        if known is not None:
            return known
        wait = await self.take(kind, address, per_window, window_s)
        if not wait:
            return None
        return self._remember(kind, address, Refusal(limit, wait), wait)
