"""The sockets one server process holds: a session (pure) plus the I/O that carries out
what it decides (:mod:`humandesk.signaling.session`)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from humandesk.signaling.actions import Action, Close, EntryGone, Forget, Send, Watch
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbox import Outbox, spawn
from humandesk.signaling.session import AgentSession, VisitorSession

if TYPE_CHECKING:
    from humandesk.signaling.desk import SignalingDesk

__all__ = ["AgentConn", "Connection", "VisitorConn"]

log = logging.getLogger(__name__)


class Connection:
    """One socket: its outbox, and the actions of its session carried out."""

    session: VisitorSession | AgentSession

    def __init__(
        self,
        desk: SignalingDesk,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
    ) -> None:
        self.desk = desk
        self.ws = ws
        self.outbox = Outbox(ws, desk.flusher, transport)
        self.conn_id = secrets.token_hex(8)
        # When the desk last heard from this socket (monotonic), and whether its page pings:
        # such a page pings every few seconds in a call, so silence means its network is gone.
        self.heard_at = time.monotonic()
        self.pings = False

    def send(self, message: dict[str, Any], *, bulk: bool = False) -> None:
        self.outbox.send(message, bulk=bulk)

    def deliver(self, event: dict[str, Any]) -> None:
        """Handles a message published for this socket's party (a Hub handler)."""
        self.perform(self.session.deliver(event))

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.outbox.send(action.frame, bulk=action.bulk)
            elif isinstance(action, Close):
                self.desk.close_soon(self.ws, action.code, action.reason)
            else:
                self._perform(action)

    def _perform(self, action: Action) -> None:
        raise NotImplementedError(action)


class VisitorConn(Connection):
    """One visitor socket held by this process."""

    session: VisitorSession

    def __init__(
        self,
        desk: SignalingDesk,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        super().__init__(desk, ws, transport)
        self.session = VisitorSession(self.conn_id, desk.ice_servers)

    def release_held(self) -> None:
        self.perform(self.session.release())

    def _perform(self, action: Action) -> None:
        if isinstance(action, Forget):
            self.desk.forget_visitor(self)
        elif isinstance(action, Watch):
            self.desk.positions.watch(action.queue)
            self.desk.positions.mark_dirty(action.queue)
        elif isinstance(action, EntryGone):
            spawn(self._entry_gone(action.call_id))

    async def _entry_gone(self, call_id: str | None) -> None:
        """Reads how the call ended (if the session was in one) and lets the session say."""
        try:
            record = await self.desk.queue.call_record(call_id) if call_id else None
        except UNAVAILABLE as exc:
            self.desk.outage.failed(exc)  # the next renewal finds the entry gone again
            return
        self.perform(self.session.gone(call_id, record))


class AgentConn(Connection):
    """One agent socket held by this process, for one session of the agent."""

    session: AgentSession

    def __init__(
        self,
        desk: SignalingDesk,
        ws: web.WebSocketResponse,
        name: str,
        queues: list[str],
        transport: asyncio.BaseTransport | None = None,
        *,
        epoch: int = 0,
        expires_at: float = float("inf"),
    ) -> None:
        super().__init__(desk, ws, transport)
        self.session = AgentSession(
            self.conn_id, name, queues, desk.ice_servers, epoch=epoch, expires_at=expires_at
        )

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def queues(self) -> list[str]:
        return self.session.queues
