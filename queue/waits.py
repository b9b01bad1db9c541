"""Expected waits, as a queueing model gives them: pure code, no Redis.

A queue served by ``c`` agents (``serving``: every agent working it, not on Break or Offline)
with an average handle time ``h`` frees an agent every ``h / c`` seconds on average when
they are all busy (for exponential handle times exactly, by memorylessness; M/M/c). The
visitor at place ``p`` behind ``a`` Available agents therefore waits for ``p - a`` of those
moments: ``(p - a) * h / c``. The earlier rule, ``ceil(p / c) * h``, told place 1 a full
handle time; driven through the desk as an M/M/5 line it overstated the mean wait 1.8x at
70 % utilisation and 1.3x at 90 % (tests/test_waits.py holds the model within 25 %).

With nobody serving there is no honest figure: the estimate is ``None`` and the visitor is
told that nobody is free right now (and offered a call-back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["RISE_TOLERANCE", "QueueSnapshot", "estimate_wait_seconds", "growth_reason"]

#: A wait shown again only grows when it grows by more than this share plus RISE_SLACK_S:
#: every ended call nudges the learned handle time, and a figure that ticks up by seconds
#: tells the visitor nothing but worry. The rise is kept, not lost: the next look compares
#: with the figure shown, so small rises add up until they are told.
RISE_TOLERANCE: Final = 0.10
RISE_SLACK_S: Final = 10


@dataclass(frozen=True)
class QueueSnapshot:
    """How one queue looks right now."""

    name: str
    waiting: int
    available: int  # agents idle and offerable now
    serving: int  # agents working the queue: idle, offered, in a call or wrapping up
    handle_s: float  # the queue's recent average handle time


def estimate_wait_seconds(position: int, snapshot: QueueSnapshot) -> int | None:
    """Expected wait for the visitor at ``position``; None when nobody serves the queue."""
    if position <= snapshot.available:
        return 0
    if snapshot.serving <= 0:
        return None
    ahead = position - snapshot.available
    return round(ahead * snapshot.handle_s / snapshot.serving)


def grew(shown: int | None, now: int | None) -> bool:
    """Whether ``now`` is a rise worth telling over the figure ``shown``."""
    if shown is None or now is None:
        return False
    return now > shown * (1 + RISE_TOLERANCE) + RISE_SLACK_S


def growth_reason(before: QueueSnapshot | None, now: QueueSnapshot) -> str:
    """Why a wait grew since the figure shown (computed on ``before``), in words for a
    visitor. There is always a reason to give: the figure is never raised silently."""
    if before is not None:
        if now.serving < before.serving:
            return "Fewer agents are free to help right now."
        if now.handle_s > before.handle_s * 1.05:
            return "Conversations are taking a little longer than usual."
        if now.available < before.available:
            return "An agent was called to another line."
    return "The line is moving more slowly than expected."
