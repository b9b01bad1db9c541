"""What a session tells its socket to do (:mod:`humandesk.signaling.session`): the actions
the I/O adapters (:mod:`humandesk.signaling.connections`) carry out, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "Close", "EntryGone", "Forget", "Send", "Watch"]


@dataclass(frozen=True)
class Send:
    """Write ``frame``; ``bulk``: news nobody waits for (see outbox.Flusher)."""

    frame: dict[str, Any]
    bulk: bool = False


@dataclass(frozen=True)
class Close:
    """Close the socket with ``code`` and ``reason``."""

    code: int
    reason: str


@dataclass(frozen=True)
class Forget:
    """The visitor's entry ended: stop delivering their messages to this socket."""


@dataclass(frozen=True)
class Watch:
    """The visitor is in ``queue``'s line now: follow it and recheck their place."""

    queue: str


@dataclass(frozen=True)
class EntryGone:
    """A lease renewal found the entry gone: read how its call ended (see gone())."""

    call_id: str | None


Action = Send | Close | Forget | Watch | EntryGone
