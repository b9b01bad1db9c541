"""The signaling side of one server process: its sockets, leases, reaper and position updates.

A :class:`SignalingDesk` keeps no state that matters beyond its open sockets: queue state is
in Redis, and every message for a party is delivered through Redis by the :class:`Hub`, so
any number of processes can serve one desk.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from humandesk.queue.client import (
    DeskQueue,
)
from humandesk.queue.limits import AbuseLimits, Limiter
from humandesk.signaling.codes import MAX_JSON_DEPTH, CloseCode
from humandesk.signaling.connections import AgentConn, VisitorConn
from humandesk.signaling.consoles import ConsoleFeed
from humandesk.signaling.hub import Hub
from humandesk.signaling.messages import Media, Signal
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbound import (
    NewIceServers,
)
from humandesk.signaling.outbox import Flusher, spawn
from humandesk.signaling.positions import PositionUpdates
from humandesk.signaling.resync import resync
from humandesk.signaling.session import AgentPhase, VisitorPhase

log = logging.getLogger(__name__)

HEARTBEAT_SLICE = 200  # leases renewed per heartbeat script (~0.7 ms of Redis each)
AWAY_SLICE = 200  # visitors marked away per script
#: How long a relayed signal that reached nobody just after a reconnect is published again.
RELAY_RETRY_S = 5.0


class TicketSigner(Protocol):
    """Signs visitor tickets bound to one queue entry (see humandesk.server.auth)."""

    def issue(self, visitor_id: str) -> str: ...

    def verify(self, ticket: str) -> str: ...

    def priority(self, token: str) -> int: ...


IceServers = Callable[[str], list[dict[str, Any]]]
Housekeeping = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class SignalingSettings:
    heartbeat_s: float = 5.0
    reaper_interval_s: float = 0.5
    position_debounce_s: float = 0.05
    position_interval_s: float = 1.0
    ice_transport_policy: str = "all"  # "relay": media only through TURN (hides IPs)
    limits: AbuseLimits = field(default_factory=AbuseLimits)
    idle_signout_s: int = 0  # consoles sign out after this long without input (0: never)
    # The reaper's holder also runs the desk's housekeeping (the retention purge) this often,
    # and first soon after start (after a minute, or the interval if shorter).
    housekeeping_interval_s: float = 3600.0
    max_json_depth: int = MAX_JSON_DEPTH  # deeper frames are refused with too_deep


class SignalingDesk:
    """This process's sockets, and the loops that keep their leases, offers and positions."""

    def __init__(
        self,
        queue: DeskQueue,
        hub: Hub,
        tickets: TicketSigner,
        ice_servers: IceServers,
        settings: SignalingSettings | None = None,
        housekeeping: Housekeeping | None = None,
    ) -> None:
        self.queue = queue
        self.keys = queue.keys
        self.hub = hub
        self.tickets = tickets
        self.ice_servers = ice_servers
        self.settings = settings or SignalingSettings()
        self.instance_id = secrets.token_hex(8)
        self.flusher = Flusher()
        self.limiter = Limiter(queue.redis, queue.keys, self.settings.limits)
        self.outage = hub.outage
        self.visitors: dict[str, VisitorConn] = {}
        self.agents: dict[str, AgentConn] = {}
        self.anonymous: set[VisitorConn] = set()  # visitor sockets not in line yet
        self.draining = False  # stopping: new sockets are refused (see drain)
        self.positions = PositionUpdates(self)
        self.consoles = ConsoleFeed(self)
        self._away: list[tuple[str, str]] = []  # (visitor id, socket) to mark away
        self._away_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._housekeeping = housekeeping
        self._housekeeping_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.hub.on_resync(lambda: resync(self))
        await self.hub.start()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._reaper_loop(), name="reaper"),
        ]

    async def stop(self) -> None:
        # Cancelled again until done: a cancellation that arrives while redis-py reads a
        # reply can be swallowed, and the loop would carry on.
        pending = set(self._tasks)
        deadline = asyncio.get_running_loop().time() + 3
        while pending and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=0.1)
        for task in pending:
            log.warning("%s did not stop in time", task.get_name())
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
            await asyncio.wait([self._housekeeping_task], timeout=3)
        await self.close_all_sockets()
        if self._away_task is not None:
            await asyncio.wait([self._away_task], timeout=3)
        await self.hub.stop()

    async def close_all_sockets(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "server_shutdown"
    ) -> None:
        """Closes every socket of this process (by default with 1001)."""
        sockets = [c.ws for c in self.visitors.values()] + [c.ws for c in self.agents.values()]
        sockets += [c.ws for c in self.anonymous]
        await asyncio.gather(
            *(ws.close(code=code, message=reason.encode()) for ws in sockets),
            return_exceptions=True,
        )

    async def drain(self, timeout: float) -> int:
        """The first step of a rolling restart: refuses new sockets (``draining``), closes
        every open one with 1012 so that its page reconnects to another server at once and
        resumes there (place, offer and call are in Redis, and the leases outlast the move),
        and waits up to ``timeout`` seconds for their handlers to finish. Returns how many
        sockets were still open when it stopped waiting."""
        self.draining = True
        await self.close_all_sockets(CloseCode.SERVICE_RESTART, "server_restart")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Polled: sockets end in three registries; 20 looks a second, only while stopping.
        while self.open_sockets() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self._away_task is not None:  # the waiting visitors' "away", before Redis goes
            await asyncio.wait([self._away_task], timeout=max(0.0, deadline - loop.time()))
        return self.open_sockets()

    def open_sockets(self) -> int:
        return len(self.visitors) + len(self.agents) + len(self.anonymous)

    def close_soon(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        spawn(ws.close(code=code, message=reason.encode()))

    # Registration ------------------------------------------------------------------------

    async def register_visitor(
        self, conn: VisitorConn, visitor_id: str, queue: str, *, fresh: bool = False
    ) -> None:
        """Subscribes the visitor's channel (see Hub.subscribe_now) and replaces any older
        socket.

        ``fresh``: the id was made just now for this socket, so no other socket, here or on
        another instance, can hold it and there is nobody to tell that they are replaced.
        """
        old = self.visitors.get(visitor_id)
        self.visitors[visitor_id] = conn
        if old is not None and old is not conn:
            self.hub.unsubscribe(self.keys.visitor_channel(visitor_id), old.deliver)
            old.session.left()
            self.close_soon(old.ws, CloseCode.REPLACED, "replaced")
        self.positions.watch(queue)
        await self.hub.subscribe_now(self.keys.visitor_channel(visitor_id), conn.deliver)
        if not fresh:
            await self.hub.publish(
                self.keys.visitor_channel(visitor_id), {"type": "_replaced", "conn": conn.conn_id}
            )

    def forget_visitor(self, conn: VisitorConn) -> None:
        vid = conn.session.visitor_id
        if vid is None:
            return
        if self.visitors.get(vid) is conn:
            del self.visitors[vid]
        self.hub.unsubscribe(self.keys.visitor_channel(vid), conn.deliver)

    async def register_agent(self, conn: AgentConn) -> None:
        old = self.agents.get(conn.name)
        self.agents[conn.name] = conn
        if old is not None and old is not conn:
            self.hub.unsubscribe(self.keys.agent_channel(conn.name), old.deliver)
            self.close_soon(old.ws, CloseCode.REPLACED, "replaced")
        await self.hub.subscribe_now(self.keys.agent_channel(conn.name), conn.deliver)
        await self.hub.publish(
            self.keys.agent_channel(conn.name), {"type": "_replaced", "conn": conn.conn_id}
        )
        for q in conn.queues:
            self.positions.watch(q)
        await self.consoles.watch()

    def forget_agent(self, conn: AgentConn) -> None:
        if self.agents.get(conn.name) is conn:
            del self.agents[conn.name]
        self.hub.unsubscribe(self.keys.agent_channel(conn.name), conn.deliver)

    def went_away(self, visitor_id: str, conn_id: str) -> None:
        """A waiting visitor's socket closed: hold their place, but offer them to no one.

        Marked in batches: when thousands of sockets close at once (a network drop, a
        restart), a script each would wait for the connection pool, time out and leave the
        places held until the leases ran out; one script per 200 visitors does not.
        """
        self._away.append((visitor_id, conn_id))
        if self._away_task is None or self._away_task.done():
            self._away_task = spawn(self._mark_away())

    async def _mark_away(self) -> None:
        while self._away:
            batch, self._away = self._away[:AWAY_SLICE], self._away[AWAY_SLICE:]
            try:
                await asyncio.wait_for(self.queue.away_many(batch), 10)
            except UNAVAILABLE as exc:
                self.outage.failed(exc)
                log.warning(
                    "could not mark %d visitors away (their leases will run out)", len(batch)
                )
            except Exception:
                log.warning(
                    "could not mark %d visitors away (their leases will run out)",
                    len(batch),
                    exc_info=True,
                )

    async def relay(self, conn: VisitorConn | AgentConn, message: Signal | Media) -> None:
        """Relays a call's signal or media state to the other party of the call, through
        Redis (the session has checked that it is the socket's own call)."""
        session = conn.session
        to = self.keys.agent_channel if isinstance(conn, VisitorConn) else self.keys.visitor_channel
        payload = (
            message.to_wire() if isinstance(message, Signal) else message.to_peer(session.call_id)
        )
        channel = to(session.peer or "")
        if await self.hub.publish(channel, payload) or not self.hub.recovering:
            return  # heard; or the other party's socket is away (it will renegotiate)
        # Nobody heard it, just after a reconnect: the other party's process may still be
        # resubscribing (a failover cuts every process's pub/sub at once). Signaling has no
        # replay, so publish again until it is heard, for a bounded time.
        deadline = time.monotonic() + RELAY_RETRY_S
        while time.monotonic() < deadline and session.call_id is not None:
            await asyncio.sleep(0.05)
            if await self.hub.publish(channel, payload):
                return

    def ice_message(self, user_id: str) -> dict[str, Any]:
        """Fresh ICE servers (new TURN credentials), for an ICE restart."""
        return NewIceServers(self.ice_servers(user_id)).to_wire()

    async def agent_counts(self, queues: list[str]) -> dict[str, dict[str, int]]:
        result = {}
        for q in queues:
            snap = await self.queue.snapshot(q)
            result[q] = {"waiting": snap.waiting, "agents_available": snap.available}
        return result

    # Loops -------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            self.end_expired_sessions()
            try:
                await self.heartbeat()
            except UNAVAILABLE as exc:
                self.outage.failed(exc)
            except Exception:
                log.exception("heartbeat failed")
            else:
                self.outage.recovered()

    def end_expired_sessions(self, now: float | None = None) -> None:
        """Closes consoles whose session ran out without renewal (4401), as HTTP refuses it."""
        now = time.time() if now is None else now
        for conn in list(self.agents.values()):
            conn.perform(conn.session.expire(now))

    async def heartbeat(self) -> None:
        """Renews the leases of every party this process holds a socket for."""
        live = [(vid, c) for vid, c in self.visitors.items() if c.session.live]
        # A visitor in a call holds the call's grace period, one in line the resume window.
        # The grace runs from the last frame of a page that pings (it does so every few
        # seconds in a call): a socket whose network is gone stays open here for a while.
        now = time.monotonic()
        in_call = [(vid, c) for vid, c in live if c.session.phase is VisitorPhase.IN_CALL]
        callers = [vid for vid, _ in in_call]
        silence = [int((now - c.heard_at) * 1000) if c.pings else 0 for _, c in in_call]
        visitors = [vid for vid, c in live if c.session.phase is not VisitorPhase.IN_CALL]
        agents = [
            name for name, c in self.agents.items() if c.session.phase is not AgentPhase.OFFLINE
        ]
        if not visitors and not agents and not callers:
            return
        # In slices: one script renewing 10,000 leases holds Redis for ~25 ms, and every
        # match of every instance waits behind it; slices of 200 hold it well under 1 ms.
        # A visitor whose lease is gone is not closed here: the reply can arrive before the
        # call_ended of a call that just ended. The script tells the visitor's channel
        # (`_lease_gone`), behind every message published before; the session decides then.
        step = HEARTBEAT_SLICE
        for i in range(0, max(len(visitors), len(agents), len(callers)), step):
            await self.queue.heartbeat(
                visitors[i : i + step],
                agents[i : i + step],
                callers=callers[i : i + step],
                silence_ms=silence[i : i + step],
            )

    async def _reaper_loop(self) -> None:
        interval = self.settings.reaper_interval_s
        lease_ms = int(max(interval * 6, 3) * 1000)
        loop = asyncio.get_running_loop()
        every = self.settings.housekeeping_interval_s
        next_housekeeping = loop.time() + min(every, 60.0)
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.queue.try_reaper_lease(self.instance_id, lease_ms):
                    await self.queue.reap()
                    if loop.time() >= next_housekeeping:
                        next_housekeeping = loop.time() + every
                        self._start_housekeeping()
            except UNAVAILABLE as exc:
                self.outage.failed(exc)
            except Exception:
                log.exception("reaper failed")

    def _start_housekeeping(self) -> None:
        """Runs the housekeeping in its own task (it works in bounded steps and may take a
        while on a big desk; reaping goes on meanwhile), unless the last run is still going."""
        if self._housekeeping is None:
            return
        if self._housekeeping_task is not None and not self._housekeeping_task.done():
            return
        self._housekeeping_task = asyncio.create_task(self._run_housekeeping(self._housekeeping))

    async def _run_housekeeping(self, housekeeping: Housekeeping) -> None:
        try:
            await housekeeping()
        except UNAVAILABLE as exc:
            self.outage.failed(exc)  # it runs again at the next interval
        except Exception:
            log.exception("housekeeping failed")
