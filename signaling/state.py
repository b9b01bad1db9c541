"""The call state machine of one socket, as pure code.

A :class:`VisitorState` or :class:`AgentState` knows which phase its party is in, which
client messages that phase allows, and how the desk's messages (arriving through Redis)
move it. The socket handlers in :mod:`humandesk.signaling.endpoints` do the I/O around it.
The queue in Redis is the truth; this is the socket's view of it, used to refuse
wrong-state messages without a round trip and to relay signals only within the socket's
own call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from humandesk.signaling.messages import (
    Accept,
    Callback,
    CallbacksPage,
    ClientMessage,
    CloseCallback,
    Decline,
    Hangup,
    Join,
    Leave,
    Media,
    Notes,
    Ping,
    ProtocolError,
    Rate,
    RefreshIce,
    Resume,
    SetStatus,
    Signal,
    Transfer,
    Wrapup,
)


class VisitorPhase(StrEnum):
    NEW = "new"  # connected, not in line yet
    WAITING = "waiting"  # in line (an offer to an agent does not change this for the visitor)
    IN_CALL = "in_call"
    DONE = "done"  # left, or the call ended: the entry is gone


class AgentPhase(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    BREAK = "break"
    OFFERED = "offered"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"


def _wrong(msg: ClientMessage, phase: str) -> ProtocolError:
    return ProtocolError("wrong_state", f"'{msg.type}' is not allowed while {phase}", msg.type)


def _check_call(msg: Signal | Media | Hangup, call_id: str | None) -> None:
    wanted = getattr(msg, "call_id", call_id)
    if call_id is None or wanted != call_id:
        raise ProtocolError("wrong_state", "that is not your current call", msg.type)


@dataclass
class VisitorState:
    """One visitor socket's view of its queue entry and call."""

    phase: VisitorPhase = VisitorPhase.NEW
    visitor_id: str | None = None
    queue: str | None = None
    call_id: str | None = None
    rated: bool = False

    def check(self, msg: ClientMessage) -> None:
        """Raises ``wrong_state`` unless ``msg`` is allowed now."""
        if isinstance(msg, Ping | RefreshIce):
            return
        if isinstance(msg, Callback):
            if self.phase not in (VisitorPhase.NEW, VisitorPhase.WAITING):
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, Rate):
            if self.phase is not VisitorPhase.DONE or msg.call_id != self.call_id or self.rated:
                raise _wrong(msg, "not after a call of yours")
            return
        if isinstance(msg, Join | Resume):
            if self.phase is not VisitorPhase.NEW:
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, Leave):
            if self.phase is not VisitorPhase.WAITING:
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, Signal | Media | Hangup):
            if self.phase is not VisitorPhase.IN_CALL:
                raise _wrong(msg, self.phase)
            _check_call(msg, self.call_id)
            return
        raise _wrong(msg, self.phase)

    def queued(self, visitor_id: str, queue: str) -> None:
        self.phase = VisitorPhase.WAITING
        self.visitor_id = visitor_id
        self.queue = queue

    def apply(self, event: dict[str, Any]) -> bool:
        """Moves with a desk message meant for this visitor; False means do not forward it."""
        kind = event.get("type")
        if kind == "call_started":
            self.phase = VisitorPhase.IN_CALL
            self.call_id = str(event["call_id"])
        elif kind == "call_ended":
            if event.get("call_id") != self.call_id or self.phase is not VisitorPhase.IN_CALL:
                return False  # another call's, or told already
            if event.get("reason") == "transferred":
                self.phase = VisitorPhase.WAITING
                self.queue = str(event.get("queue", self.queue))
            else:
                self.phase = VisitorPhase.DONE
        elif kind == "moved":
            self.queue = str(event["queue"])
        elif kind in ("signal", "peer_media"):
            return self.phase is VisitorPhase.IN_CALL and event.get("call_id") == self.call_id
        return True

    def left(self) -> None:
        self.phase = VisitorPhase.DONE
        self.call_id = None


@dataclass
class AgentState:
    """One agent socket's view of the agent's state, offer and call."""

    phase: AgentPhase = AgentPhase.OFFLINE
    offer_id: str | None = None
    call_id: str | None = None
    last_call_id: str | None = None  # the call whose notes may still be edited

    def check(self, msg: ClientMessage) -> None:
        """Raises ``wrong_state`` unless ``msg`` is allowed now."""
        if isinstance(msg, Ping | CloseCallback | RefreshIce | CallbacksPage):
            return
        if isinstance(msg, Wrapup):
            if self.phase is not AgentPhase.WRAP_UP:
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, Notes):
            if msg.call_id not in (self.call_id, self.last_call_id) or msg.call_id is None:
                raise _wrong(msg, "not for your current or last call")
            return
        if isinstance(msg, Transfer):
            if self.phase is not AgentPhase.IN_CALL or msg.call_id != self.call_id:
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, SetStatus):
            if self.phase is AgentPhase.IN_CALL and msg.status != "offline":
                raise _wrong(msg, "in a call")
            return
        if isinstance(msg, Accept | Decline):
            if self.phase is not AgentPhase.OFFERED:
                raise _wrong(msg, self.phase)
            return
        if isinstance(msg, Signal | Media | Hangup):
            if self.phase is not AgentPhase.IN_CALL:
                raise _wrong(msg, self.phase)
            _check_call(msg, self.call_id)
            return
        raise _wrong(msg, self.phase)

    def apply(self, event: dict[str, Any]) -> bool:
        """Moves with a desk message meant for this agent; False means do not forward it."""
        kind = event.get("type")
        if kind == "status":
            self.phase = AgentPhase(event["status"])
            if self.phase is not AgentPhase.OFFERED:
                self.offer_id = None
            if self.phase is not AgentPhase.IN_CALL:
                self.call_id = None
            if event.get("call_id"):
                self.last_call_id = str(event["call_id"])
        elif kind == "offer":
            self.phase = AgentPhase.OFFERED
            self.offer_id = str(event["offer_id"])
        elif kind == "offer_cancelled":
            if event.get("offer_id") == self.offer_id:
                self.offer_id = None
        elif kind == "call_started":
            self.phase = AgentPhase.IN_CALL
            self.offer_id = None
            self.call_id = self.last_call_id = str(event["call_id"])
        elif kind == "call_ended":
            if event.get("call_id") != self.call_id:
                return False
            self.call_id = None
        elif kind in ("signal", "peer_media"):
            return self.phase is AgentPhase.IN_CALL and event.get("call_id") == self.call_id
        return True
