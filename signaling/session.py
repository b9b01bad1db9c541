"""The sessions of the desk's sockets, as pure code: no aiohttp, redis or asyncio.

As in websockets' protocol core, a session is fed and tells what to do: a
:class:`VisitorSession` or :class:`AgentSession` owns everything one socket knows of its
party (ids, phase, call and peer, the place and wait last shown, messages held back, the
session's epoch and expiry) and

- ``check(message)`` refuses a client message its phase does not allow (``wrong_state``);
- ``deliver(event)`` turns a desk message that arrived through Redis into :data:`Action` s:
  frames to send, a close, a queue to watch, the entry to forget.

The I/O adapters (:mod:`humandesk.signaling.connections`) only carry the actions out. The
queue in Redis is the truth; a session is the socket's view of it, used to refuse
wrong-state messages without a round trip, to relay signals only within the socket's own
call, and to never show a visitor a later place than one already shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from humandesk.queue.waits import QueueSnapshot, grew, growth_reason
from humandesk.signaling.actions import Action, Close, EntryGone, Forget, Send, Watch
from humandesk.signaling.codes import CloseCode, ProtocolError
from humandesk.signaling.messages import (
    Chat,
    ClientMessage,
    Hangup,
    Media,
    Notes,
    Rate,
    SetStatus,
    Signal,
    Transfer,
)
from humandesk.signaling.outbound import CallEnded, Position, Queued

__all__ = [
    "AgentPhase",
    "AgentSession",
    "VisitorPhase",
    "VisitorSession",
    "public",
]

IceServers = Callable[[str], list[dict[str, Any]]]


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


def public(message: dict[str, Any]) -> dict[str, Any]:
    """The message without the desk-internal ``_`` fields."""
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _wrong(msg: ClientMessage, phase: str) -> ProtocolError:
    return ProtocolError("wrong_state", f"'{msg.type}' is not allowed while {phase}", msg.type)


def _check_call(msg: Signal | Media | Hangup | Chat, call_id: str | None) -> None:
    wanted = getattr(msg, "call_id", call_id)
    if call_id is None or wanted != call_id:
        raise ProtocolError("wrong_state", "that is not your current call", msg.type)


# The phases in which each client message is allowed (None: any). `rate`, `notes` and
# `status` have conditions of their own, checked in the sessions' `check`.
_IN_CALL = dict.fromkeys(("signal", "media", "hangup", "chat"), frozenset({"in_call"}))
_VISITOR_MAY: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(("ping", "refresh_ice"), None),
    "callback": frozenset({"new", "waiting"}),
    **dict.fromkeys(("join", "resume"), frozenset({"new"})),
    "leave": frozenset({"waiting"}),
    **_IN_CALL,
}
_AGENT_MAY: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(("ping", "close_callback", "refresh_ice", "callbacks"), None),
    "wrapup": frozenset({"wrap_up"}),
    "transfer": frozenset({"in_call"}),
    **dict.fromkeys(("accept", "decline"), frozenset({"offered"})),
    **_IN_CALL,
}


def _check_phase(msg: ClientMessage, phase: str, may: dict[str, frozenset[str] | None]) -> None:
    allowed = may.get(msg.type, frozenset())
    if allowed is not None and phase not in allowed:
        raise _wrong(msg, phase)


def _call_ended(
    record: dict[str, Any] | None, visitor_id: str | None, call_id: str | None
) -> CallEnded | None:
    """The ``call_ended`` of ``call_id`` if its record says it ended for this visitor (and
    was not handed on by a transfer)."""
    if not call_id or record is None or record.get("visitor_id") != visitor_id:
        return None
    if record.get("ended") is None or record.get("end_reason") == "transferred":
        return None
    return CallEnded(call_id, record.get("end_reason"), record.get("ended_by"))


def _replaced(event: dict[str, Any], conn_id: str) -> list[Action]:
    """Another socket took the party over (not this one): this one closes (4009)."""
    if event.get("conn") == conn_id:
        return []
    return [Close(CloseCode.REPLACED, "replaced")]


# Visitors ----------------------------------------------------------------------------------


@dataclass
class VisitorSession:
    """One visitor socket's view of its queue entry and call."""

    conn_id: str
    ice: IceServers = field(default=lambda _user: [], repr=False)
    phase: VisitorPhase = VisitorPhase.NEW
    visitor_id: str | None = None
    queue: str | None = None
    call_id: str | None = None
    peer: str | None = None  # the agent of the current call
    rated: bool = False
    position: int | None = None  # the place last shown
    eta: int | None = None  # the wait last shown (seconds; None: nobody serving)
    basis: QueueSnapshot | None = None  # the queue as it was when that wait was worked out
    # While a join or a resume is answered, desk messages wait here, so that `queued` (with
    # the ticket) always comes first, even when an agent accepts within milliseconds.
    held: list[dict[str, Any]] | None = None
    # A join whose answer Redis did not give (it may have run): the next join asks for it.
    join_id: str | None = None

    def check(self, msg: ClientMessage) -> None:
        """Raises ``wrong_state`` unless ``msg`` is allowed now."""
        if isinstance(msg, Rate):
            if self.phase is not VisitorPhase.DONE or msg.call_id != self.call_id or self.rated:
                raise _wrong(msg, "not after a call of yours")
            return
        _check_phase(msg, self.phase, _VISITOR_MAY)
        if isinstance(msg, Signal | Media | Hangup | Chat):
            _check_call(msg, self.call_id)

    #: A visitor's session is never ended by the desk while its socket lives (an agent's
    #: is, on expiry or revocation): the frame loop asks both.
    closed_for: ClassVar[None] = None

    @property
    def live(self) -> bool:
        """In line or in a call: the socket holds a lease."""
        return self.phase in (VisitorPhase.WAITING, VisitorPhase.IN_CALL)

    def queued(self, visitor_id: str, queue: str) -> None:
        self.phase = VisitorPhase.WAITING
        self.visitor_id = visitor_id
        self.queue = queue

    def left(self) -> None:
        self.phase = VisitorPhase.DONE
        self.call_id = None

    def hold(self) -> None:
        """Holds desk messages back until :meth:`release` (a join or resume is answered)."""
        self.held = []

    def release(self) -> list[Action]:
        held, self.held = self.held or [], None
        return [action for event in held for action in self.deliver(event)]

    def deliver(self, event: dict[str, Any]) -> list[Action]:
        """A desk message published for this visitor."""
        kind = event.get("type")
        if kind == "_replaced":
            return _replaced(event, self.conn_id)
        if self.held is not None:
            self.held.append(event)
            return []
        if kind == "_lease_gone":
            live_call = self.call_id if self.phase is VisitorPhase.IN_CALL else None
            return [EntryGone(live_call)] if self.live else []
        if kind == "call_started":
            self.peer = str(event.get("_peer", ""))
            # TURN credentials minted for this call: the welcome's may have expired.
            event = {**event, "ice_servers": self.ice("v-" + self.conn_id)}
        queue_before, phase_before = self.queue, self.phase
        actions: list[Action] = []
        if self._apply(event):
            actions.append(Send(public(event)))
        if self.queue != queue_before and self.queue is not None:
            # Moved (overflow) or transferred to another queue: a new line, a new place.
            self.position = self.eta = self.basis = None
            actions.append(Watch(self.queue))
        if self.phase is VisitorPhase.DONE and phase_before is not VisitorPhase.DONE:
            actions.append(Forget())
        return actions

    def _apply(self, event: dict[str, Any]) -> bool:
        """Moves with a desk message; False means do not forward it."""
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
        elif kind in ("signal", "peer_media", "chat", "chat_history"):
            return self.phase is VisitorPhase.IN_CALL and event.get("call_id") == self.call_id
        return True

    def gone(self, call_id: str | None, record: dict[str, Any] | None) -> list[Action]:
        """After :class:`EntryGone`: ``record`` is the call record of ``call_id`` (or None).

        A call's end told by ``call_ended`` has made the session Done already: nothing to
        do. A session still in that call lost the message (pub/sub is at-most-once): the
        record says how the call ended, and the visitor is told so. Otherwise the place was
        given up or ran out: close 4004 (``entry_gone``).
        """
        if not self.live:
            return []
        ended = _call_ended(record, self.visitor_id, call_id)
        if ended is not None and call_id == self.call_id:
            return self.deliver(ended.to_wire())
        self.left()
        return [Forget(), Close(CloseCode.ENTRY_GONE, "entry_gone")]

    def ended_while_away(
        self, visitor_id: str, call_id: str, record: dict[str, Any] | None
    ) -> list[Action]:
        """A ``resume`` whose entry has ended. If it ended with the call ``call_id`` the page
        was in (its record says so: the visitor's, ended, not transferred), the end was
        published while no socket of theirs listened (a reconnect, a server restart): the
        visitor is told ``call_ended`` now, as if they had stayed. Otherwise 4004."""
        ended = _call_ended(record, visitor_id, call_id)
        if ended is not None:
            self.visitor_id, self.call_id, self.phase = visitor_id, call_id, VisitorPhase.IN_CALL
            return self.deliver(ended.to_wire())
        return [Close(CloseCode.ENTRY_GONE, "entry_gone")]

    def show_place(self, position: int, eta: int | None, snapshot: QueueSnapshot) -> list[Action]:
        """A ``position`` update, never moving the visitor backwards.

        A visitor never sees a later place than one already shown (a priority visitor who
        joins ahead is absorbed). A wait that grows is told with its reason, worked out
        against the queue as it was for the figure shown (not as the last fan-out saw it,
        which this visitor may not have been part of); a rise within the tolerance of
        waits.grew keeps the figure shown until the rises add up.
        """
        if self.position is not None:
            position = min(position, self.position)
        reason = None
        if grew(self.eta, eta):
            reason = growth_reason(self.basis, snapshot)
        elif eta is not None and self.eta is not None and eta > self.eta:
            eta = self.eta  # a small rise: not worth telling yet
        if (position, eta) == (self.position, self.eta):
            return []
        if eta != self.eta:
            self.basis = snapshot
        self.position, self.eta = position, eta
        return [Send(Position(position, eta, reason).to_wire(), bulk=True)]

    def queued_frame(
        self,
        ticket: str,
        position: int,
        eta: int | None,
        audio_only: bool,
        snapshot: QueueSnapshot | None = None,
    ) -> Send:
        """``queued``: the first word of a joining (or resuming) visitor's place, never a
        later place or a longer wait than one shown before."""
        assert self.visitor_id is not None and self.queue is not None
        if self.position is not None:
            position = min(position, self.position)
        if self.eta is not None and eta is not None:
            eta = min(eta, self.eta)
        self.position, self.eta, self.basis = position, eta, snapshot
        return Send(
            Queued(self.visitor_id, ticket, self.queue, position, eta, audio_only).to_wire()
        )


# Agents ------------------------------------------------------------------------------------


@dataclass
class AgentSession:
    """One agent socket's view of the agent's state, offer and call, for one session."""

    conn_id: str
    name: str
    queues: list[str]
    ice: IceServers = field(default=lambda _user: [], repr=False)
    epoch: int = 0  # the account's session epoch when the socket opened
    expires_at: float = float("inf")  # Unix seconds; renewed while the console is open
    closed_for: str | None = None  # why the desk is closing it: take no more messages
    phase: AgentPhase = AgentPhase.OFFLINE
    offer_id: str | None = None
    call_id: str | None = None
    last_call_id: str | None = None  # the call whose notes may still be edited
    peer: str | None = None  # the visitor of the current call

    def check(self, msg: ClientMessage) -> None:
        """Raises ``wrong_state`` unless ``msg`` is allowed now."""
        if isinstance(msg, Notes):
            if msg.call_id not in (self.call_id, self.last_call_id) or msg.call_id is None:
                raise _wrong(msg, "not for your current or last call")
            return
        if isinstance(msg, SetStatus):
            if self.phase is AgentPhase.IN_CALL and msg.status != "offline":
                raise _wrong(msg, "in a call")
            return
        _check_phase(msg, self.phase, _AGENT_MAY)
        if isinstance(msg, Transfer) and msg.call_id != self.call_id:
            raise _wrong(msg, self.phase)
        if isinstance(msg, Signal | Media | Hangup | Chat):
            _check_call(msg, self.call_id)

    def end(self, code: int, reason: str) -> list[Action]:
        """Ends the session for good (expired, revoked): one close, then nothing more."""
        if self.closed_for is not None:
            return []
        self.closed_for = reason
        return [Close(code, reason)]

    def expire(self, now: float) -> list[Action]:
        """Closes the socket once the session ran out without renewal (4401)."""
        if self.expires_at > now:
            return []
        return self.end(CloseCode.SESSION_EXPIRED, "session_expired")

    def deliver(self, event: dict[str, Any]) -> list[Action]:
        """A desk message published for this agent."""
        kind = event.get("type")
        if kind == "_replaced":
            return _replaced(event, self.conn_id)
        if kind == "_revoked":
            if int(event.get("epoch", 0)) > self.epoch:
                return self.end(CloseCode.REVOKED, str(event.get("reason", "revoked")))
            return []
        if kind == "_session":  # renewed over HTTP: the socket lives as long
            if int(event.get("epoch", -1)) == self.epoch:
                self.expires_at = max(self.expires_at, float(event.get("expires_at", 0)))
            return []
        if kind == "call_started":
            self.peer = str(event.get("_peer", ""))
            event = {**event, "ice_servers": self.ice("a-" + self.name)}
        return [Send(public(event))] if self._apply(event) else []

    def _apply(self, event: dict[str, Any]) -> bool:
        """Moves with a desk message; False means do not forward it."""
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
        elif kind in ("signal", "peer_media", "chat", "chat_history"):
            return self.phase is AgentPhase.IN_CALL and event.get("call_id") == self.call_id
        return True
