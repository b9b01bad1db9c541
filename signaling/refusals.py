"""How the endpoints refuse: protocol errors for queue refusals and limits, and the close of
a socket after the current frame."""

from __future__ import annotations

from humandesk.queue.client import QueueError
from humandesk.queue.limits import Refusal
from humandesk.signaling.codes import ProtocolError
from humandesk.signaling.outage import RETRY_AFTER_S

__all__ = ["QUEUE_ERRORS", "CloseSocket", "limited", "queue_error", "unavailable"]

#: Queue refusals a client can cause, mapped to protocol error codes.
QUEUE_ERRORS = {
    "unknown_queue": "unknown_queue",
    "stale_queues": "unknown_queue",
    "bad_transfer": "bad_message",
    "stale_offer": "stale_offer",
    "wrong_state": "wrong_state",
    "unknown_call": "wrong_state",
    "not_a_party": "wrong_state",
    "unknown_visitor": "wrong_state",
    "callbacks_full": "callbacks_full",
    "chat_full": "chat_full",
}

_LIMITED = {
    "joins": "too many joins from your network; try again in a moment",
    "waiting": "too many people from your network are waiting already",
    "callbacks": "too many call-back requests from your network; try again later",
}


class CloseSocket(Exception):
    """Ends the socket with a close code after the current frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def queue_error(exc: QueueError, kind: str) -> ProtocolError:
    """The protocol error for a refusal of the queue scripts; any other is a bug (raised)."""
    code = QUEUE_ERRORS.get(exc.code)
    if code is None:
        raise exc
    return ProtocolError(code, str(exc), kind)


def limited(kind: str, refusal: Refusal) -> ProtocolError:
    return ProtocolError(
        "rate_limited",
        _LIMITED[refusal.limit],
        kind,
        {"limit": refusal.limit, "retry_after_s": refusal.retry_after_s},
    )


def unavailable(kind: str | None) -> ProtocolError:
    return ProtocolError(
        "unavailable",
        "the desk cannot reach its database just now; try again in a moment",
        kind,
        {"retry_after_s": RETRY_AFTER_S},
    )
