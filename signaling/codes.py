"""The codes of the protocol: WebSocket close codes, and the error every refusal raises
(docs/protocol.md lists both, and a test holds them to it)."""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "CloseCode", "ProtocolError"]

#: Default nesting limit of a frame (``HUMANDESK_MAX_JSON_DEPTH``). Real messages nest two
#: levels; without a limit a 64 KiB frame can nest 32,000 deep and exhaust the
#: parser's recursion.
MAX_JSON_DEPTH: Final = 32


class CloseCode(enum.IntEnum):
    """WebSocket close codes the desk uses, beyond the standard ones."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    SERVICE_RESTART = 1012  # the server is stopping or restarting: reconnect elsewhere, resume
    TRY_AGAIN = 1013  # the desk cannot reach Redis just now
    INVALID_TICKET = 4001
    SESSION_EXPIRED = 4401
    REVOKED = 4403  # the agent's sessions were revoked (reason: why)
    ENTRY_GONE = 4004
    REPLACED = 4009


class ProtocolError(Exception):
    """A frame the desk refuses. ``code`` is one of the documented error codes."""

    def __init__(
        self,
        code: str,
        message: str,
        in_reply_to: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.in_reply_to = in_reply_to
        self.details = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "error",
            "code": self.code,
            "message": self.message,
            "in_reply_to": self.in_reply_to,
            **self.details,
        }
