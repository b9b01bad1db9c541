"""The desk's messages to sockets, typed, with one serializer (:meth:`Outbound.to_wire`).

messages.py parses what clients send; this module writes what the desk sends from Python.
The messages that scripts publish atomically with a change (``offer``, ``call_started``,
``status``, ``call_ended``, ``moved``, ...) have their one author in the scripts
(queue/scripts/lib.lua) and reach sockets through the sessions. Every type is listed in
``DESK_TYPES`` and in docs/protocol.md (a test holds the three together).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AgentWelcome",
    "CallEnded",
    "CallbackAdded",
    "CallbackClosed",
    "CallbackSaved",
    "Callbacks",
    "ChatHistory",
    "DeskQueues",
    "Left",
    "NewIceServers",
    "NotesRestored",
    "NotesSaved",
    "Outbound",
    "Pong",
    "Position",
    "Queued",
    "Queues",
    "Rated",
    "VisitorWelcome",
]


@dataclass(frozen=True)
class Outbound:
    """A message from the desk: its ``TYPE`` and its fields, in order."""

    TYPE: ClassVar[str]
    #: Fields left out of the frame when they are None.
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OPTIONAL:
                continue
            frame[f.name] = value
        return frame


@dataclass(frozen=True)
class VisitorWelcome(Outbound):
    TYPE = "welcome"
    v: int
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: str
    call_grace_s: int  # a call ends this long after the desk last heard from the visitor
    role: str = "visitor"


@dataclass(frozen=True)
class AgentWelcome(Outbound):
    TYPE = "welcome"
    v: int
    agent: dict[str, Any]  # name, display_name, queues
    status: str
    desk_queues: list[str]
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: str
    session: dict[str, Any]  # expires_at, idle_signout_s
    role: str = "agent"


@dataclass(frozen=True)
class Queued(Outbound):
    TYPE = "queued"
    visitor_id: str
    ticket: str
    queue: str
    position: int
    eta_seconds: int | None  # None: nobody serves the queue right now (no figure)
    audio_only: bool


@dataclass(frozen=True)
class Position(Outbound):
    TYPE = "position"
    OPTIONAL = frozenset({"eta_reason"})
    position: int
    eta_seconds: int | None  # None: nobody serves the queue right now (no figure)
    eta_reason: str | None = None


@dataclass(frozen=True)
class Left(Outbound):
    TYPE = "left"
    reason: str  # left, callback


@dataclass(frozen=True)
class CallbackSaved(Outbound):
    TYPE = "callback_saved"
    id: str
    queue: str


@dataclass(frozen=True)
class Rated(Outbound):
    TYPE = "rated"
    call_id: str


@dataclass(frozen=True)
class NotesSaved(Outbound):
    TYPE = "notes_saved"
    call_id: str


@dataclass(frozen=True)
class NotesRestored(Outbound):
    TYPE = "notes_restored"
    call_id: str
    notes: str
    disposition: str


@dataclass(frozen=True)
class Callbacks(Outbound):
    TYPE = "callbacks"
    items: list[dict[str, Any]]
    offset: int
    total: int


@dataclass(frozen=True)
class CallbackAdded(Outbound):
    TYPE = "callback_added"
    item: dict[str, Any]


@dataclass(frozen=True)
class CallbackClosed(Outbound):
    TYPE = "callback_closed"
    id: str | None


@dataclass(frozen=True)
class DeskQueues(Outbound):
    TYPE = "desk_queues"
    queues: list[str]


@dataclass(frozen=True)
class Queues(Outbound):
    TYPE = "queues"
    queues: dict[str, dict[str, int]]  # name -> waiting, agents_available


@dataclass(frozen=True)
class NewIceServers(Outbound):
    TYPE = "ice_servers"
    ice_servers: list[dict[str, Any]]


@dataclass(frozen=True)
class CallEnded(Outbound):
    TYPE = "call_ended"
    call_id: str
    reason: str | None
    by: str | None


@dataclass(frozen=True)
class ChatHistory(Outbound):
    """The chat of a call so far, for a party that (re)connects during it."""

    TYPE = "chat_history"
    call_id: str
    messages: list[dict[str, Any]]  # seq, from, text, at (Unix ms), oldest first


@dataclass(frozen=True)
class Pong(Outbound):
    TYPE = "pong"
