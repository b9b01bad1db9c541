"""The wire format: typed messages of signaling protocol version 1 (see docs/protocol.md).

:func:`parse` turns one WebSocket text frame into a typed message or raises
:class:`ProtocolError` with a stable ``code`` (codes.py); the JSON itself is read strictly
by jsonwire.py. Nothing here does I/O.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from humandesk.signaling.codes import MAX_JSON_DEPTH, ProtocolError
from humandesk.signaling.fields import Fields, precall_result, signal_parts
from humandesk.signaling.jsonwire import holds_lone_surrogate, load_json

PROTOCOL_VERSION: Final = 1
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 80
MAX_TOPIC_CHARS: Final = 500
MAX_PAGE_CHARS: Final = 500
MAX_ERRORS_PER_SOCKET: Final = 50
MAX_CONTACT_CHARS: Final = 200
MAX_NOTE_CHARS: Final = 1_000
MAX_NOTES_CHARS: Final = 5_000
MAX_DISPOSITION_CHARS: Final = 64
#: A line of chat in a call (the calls hold at most HUMANDESK_CHAT_MAX_MESSAGES lines).
MAX_CHAT_CHARS: Final = 1_000

Role = Literal["visitor", "agent"]


# Messages from clients ---------------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    queue: str
    name: str
    topic: str
    audio_only: bool
    page: str
    priority_token: str = ""
    #: The pre-call test's result (``status``, ``rtt_ms``, ``loss_pct``, ``path``), or None.
    precall: dict[str, Any] | None = None
    type: Literal["join"] = "join"


@dataclass(frozen=True)
class Resume:
    ticket: str
    call_id: str = ""  # the call the page was in, if any (see VisitorSession.ended_while_away)
    type: Literal["resume"] = "resume"


@dataclass(frozen=True)
class Leave:
    type: Literal["leave"] = "leave"


@dataclass(frozen=True)
class Signal:
    """An SDP description or an ICE candidate (``None`` = end of candidates) for the peer."""

    call_id: str
    description: dict[str, str] | None
    candidate: dict[str, Any] | None
    has_candidate: bool
    type: Literal["signal"] = "signal"

    def to_wire(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "signal", "call_id": self.call_id}
        if self.description is not None:
            msg["description"] = self.description
        else:
            msg["candidate"] = self.candidate
        return msg


@dataclass(frozen=True)
class Media:
    """What a party sends of its own media: muted, camera off, and a screen shared in place of
    the camera (the other side shows that picture large, as a screen)."""

    muted: bool
    camera_off: bool
    screen: bool = False
    type: Literal["media"] = "media"

    def to_peer(self, call_id: str | None) -> dict[str, Any]:
        """The ``peer_media`` the other party of the call gets."""
        return {
            "type": "peer_media",
            "call_id": call_id,
            "muted": self.muted,
            "camera_off": self.camera_off,
            "screen": self.screen,
        }


@dataclass(frozen=True)
class Hangup:
    call_id: str
    type: Literal["hangup"] = "hangup"


@dataclass(frozen=True)
class Chat:
    """A line of chat for the other party of the call (stored on the call record)."""

    call_id: str
    text: str
    type: Literal["chat"] = "chat"


@dataclass(frozen=True)
class Ping:
    type: Literal["ping"] = "ping"


@dataclass(frozen=True)
class RefreshIce:
    """Fresh TURN credentials, for an ICE restart."""

    type: Literal["refresh_ice"] = "refresh_ice"


@dataclass(frozen=True)
class CallbacksPage:
    """The next page of open callback requests, from ``offset``."""

    offset: int
    type: Literal["callbacks"] = "callbacks"


@dataclass(frozen=True)
class SetStatus:
    status: Literal["available", "break", "offline"]
    type: Literal["status"] = "status"


@dataclass(frozen=True)
class Accept:
    offer_id: str
    type: Literal["accept"] = "accept"


@dataclass(frozen=True)
class Decline:
    offer_id: str
    type: Literal["decline"] = "decline"


@dataclass(frozen=True)
class Callback:
    """A visitor asks to be called back instead of waiting."""

    queue: str
    name: str
    contact: str
    note: str
    type: Literal["callback"] = "callback"


@dataclass(frozen=True)
class Rate:
    call_id: str
    score: int
    comment: str
    type: Literal["rate"] = "rate"


@dataclass(frozen=True)
class Wrapup:
    action: Literal["extend", "done"]
    type: Literal["wrapup"] = "wrapup"


@dataclass(frozen=True)
class Notes:
    call_id: str
    notes: str
    disposition: str
    type: Literal["notes"] = "notes"


@dataclass(frozen=True)
class Transfer:
    call_id: str
    queue: str
    type: Literal["transfer"] = "transfer"


@dataclass(frozen=True)
class CloseCallback:
    id: str
    outcome: str
    type: Literal["close_callback"] = "close_callback"


VisitorMessage = (
    Join | Resume | Leave | Signal | Media | Hangup | Ping | Callback | Rate | RefreshIce | Chat
)
AgentMessage = (
    SetStatus
    | Accept
    | Decline
    | Signal
    | Media
    | Hangup
    | Ping
    | Wrapup
    | Notes
    | Transfer
    | CloseCallback
    | RefreshIce
    | CallbacksPage
    | Chat
)
ClientMessage = VisitorMessage | AgentMessage

VISITOR_TYPES: Final = frozenset(
    {"join", "resume", "leave", "signal", "media", "hangup", "ping", "callback", "rate"}
    | {"refresh_ice", "chat"}
)
#: What the desk sends to sockets (docs/protocol.md, "Messages from the desk"). Messages
#: between the desk's processes start with "_" (or go on queue channels) and never reach one.
DESK_TYPES: Final = frozenset(
    {"welcome", "ice_servers", "queued", "position", "moved", "max_wait", "callback_saved"}
    | {"rated", "notes_saved", "desk_queues", "notes_restored", "status", "callbacks"}
    | {"callback_added", "callback_closed", "offer", "offer_cancelled", "call_started"}
    | {"signal", "peer_media", "call_ended", "queues", "left", "error", "pong"}
    | {"chat", "chat_history"}
)
AGENT_TYPES: Final = frozenset(
    {"status", "accept", "decline", "signal", "media", "hangup", "ping"}
    | {"wrapup", "notes", "transfer", "close_callback", "refresh_ice", "callbacks", "chat"}
)


def handler_table(*handlers: Callable[[Any, Any], Awaitable[None]]) -> dict[type, Any]:
    """Message type -> handler, read from each handler's annotated second parameter (a
    handler of ``Signal | Media`` serves both), so a type is named once, at its handler."""
    table: dict[type, Any] = {}
    for handler in handlers:
        hints = typing.get_type_hints(handler)
        name = list(inspect.signature(handler).parameters)[1]
        for kind in typing.get_args(hints[name]) or (hints[name],):
            if kind in table:
                raise ValueError(f"two handlers for {kind.__name__}")
            table[kind] = handler
    return table


def parse(frame: str | bytes, role: Role, *, max_depth: int = MAX_JSON_DEPTH) -> ClientMessage:
    """Validates one frame from a ``role`` client and returns its typed message."""
    if isinstance(frame, bytes):
        raise ProtocolError("bad_json", "binary frames are not accepted")
    data = load_json(frame, max_depth=max_depth)
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "the frame must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "'type' must be a string")
    # Lone surrogates arrive as \u escapes (or, from Python callers, as non-ASCII text); they
    # are refused here, before anything is stored, relayed or echoed.
    if (not frame.isascii() or "\\u" in frame) and holds_lone_surrogate(data):
        field = next(
            (k for k, v in data.items() if holds_lone_surrogate(k) or holds_lone_surrogate(v))
        )
        what = "a field name" if holds_lone_surrogate(field) else f"'{field}'"
        raise ProtocolError(
            "bad_message",
            f"{what} is not valid Unicode text (it holds a lone surrogate)",
            None if holds_lone_surrogate(kind) else kind,
        )
    allowed = VISITOR_TYPES if role == "visitor" else AGENT_TYPES
    if kind not in allowed:
        raise ProtocolError("unknown_type", f"no message type {kind[:40]!r} for {role}s", kind)
    fields = Fields(data, kind)
    match kind:
        case "join":
            return Join(
                queue=fields.text("queue", default="support", max_chars=64, min_chars=1),
                name=fields.text("name", max_chars=MAX_NAME_CHARS, min_chars=1, strip=True),
                topic=fields.text("topic", default="", max_chars=MAX_TOPIC_CHARS, strip=True),
                audio_only=fields.flag("audio_only", default=False),
                page=fields.text("page", default="", max_chars=MAX_PAGE_CHARS),
                priority_token=fields.text("priority_token", default="", max_chars=2048),
                precall=precall_result(fields),
            )
        case "resume":
            call_id = fields.ident("call_id") if fields.data.get("call_id") is not None else ""
            return Resume(
                ticket=fields.text("ticket", max_chars=2048, min_chars=1), call_id=call_id
            )
        case "leave":
            return Leave()
        case "signal":
            return Signal(fields.ident("call_id"), *signal_parts(fields))
        case "media":
            return Media(
                muted=fields.flag("muted"),
                camera_off=fields.flag("camera_off"),
                screen=fields.flag("screen", default=False),
            )
        case "hangup":
            return Hangup(call_id=fields.ident("call_id"))
        case "chat":
            text = fields.text("text", max_chars=MAX_CHAT_CHARS).strip()
            if not text:
                raise ProtocolError("bad_message", "'text' must not be empty", kind)
            return Chat(call_id=fields.ident("call_id"), text=text)
        case "ping":
            return Ping()
        case "refresh_ice":
            return RefreshIce()
        case "callbacks":
            offset = fields.data.get("offset", 0)
            if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 10**6:
                raise ProtocolError("bad_message", "'offset' must be a whole number >= 0", kind)
            return CallbacksPage(offset=offset)
        case "status":
            status = fields.text("status", max_chars=16)
            if status not in ("available", "break", "offline"):
                raise ProtocolError(
                    "bad_message", "'status' must be available, break or offline", kind
                )
            return SetStatus(status=status)  # type: ignore[arg-type]
        case "accept":
            return Accept(offer_id=fields.ident("offer_id"))
        case "decline":
            return Decline(offer_id=fields.ident("offer_id"))
        case "callback":
            return Callback(
                queue=fields.text("queue", default="support", max_chars=64, min_chars=1),
                name=fields.text("name", max_chars=MAX_NAME_CHARS, min_chars=1, strip=True),
                contact=fields.text(
                    "contact", max_chars=MAX_CONTACT_CHARS, min_chars=3, strip=True
                ),
                note=fields.text("note", default="", max_chars=MAX_NOTE_CHARS),
            )
        case "rate":
            score = fields.data.get("score")
            if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
                raise ProtocolError("bad_message", "'score' must be a whole number 1-5", kind)
            return Rate(
                call_id=fields.ident("call_id"),
                score=score,
                comment=fields.text("comment", default="", max_chars=MAX_NOTE_CHARS),
            )
        case "wrapup":
            action = fields.text("action", max_chars=8)
            if action not in ("extend", "done"):
                raise ProtocolError("bad_message", "'action' must be extend or done", kind)
            return Wrapup(action=action)  # type: ignore[arg-type]
        case "notes":
            return Notes(
                call_id=fields.ident("call_id"),
                notes=fields.text("notes", default="", max_chars=MAX_NOTES_CHARS),
                disposition=fields.text(
                    "disposition", default="", max_chars=MAX_DISPOSITION_CHARS, strip=True
                ),
            )
        case "transfer":
            return Transfer(
                call_id=fields.ident("call_id"),
                queue=fields.text("queue", max_chars=64, min_chars=1),
            )
        case "close_callback":
            return CloseCallback(
                id=fields.ident("id"),
                outcome=fields.text("outcome", default="", max_chars=MAX_NOTE_CHARS),
            )
    raise AssertionError(kind)
