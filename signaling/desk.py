"""The signaling side of one server process: its sockets, leases, reaper and position updates.

A :class:`SignalingDesk` keeps no state that matters beyond its open sockets: queue state is
in Redis, and every message for a party is delivered through Redis by the :class:`Hub`, so
any number of processes can serve one desk.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from aiohttp import web

from humandesk.queue.client import (
    DeskQueue,
    QueueSnapshot,
    estimate_wait_seconds,
)
from humandesk.queue.limits import AbuseLimits, Limiter
from humandesk.signaling.hub import Hub
from humandesk.signaling.messages import MAX_JSON_DEPTH, CloseCode
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.state import AgentPhase, AgentState, VisitorPhase, VisitorState

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 1000
CALLBACKS_PAGE = 50  # open callback requests per `callbacks` message
HEARTBEAT_SLICE = 200  # leases renewed per heartbeat script (~0.7 ms of Redis each)
AWAY_SLICE = 200  # visitors marked away per script

_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Runs ``coro`` in the background, keeping a reference until it is done."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


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


class Flusher:
    """Writes the queued messages of many sockets from one task.

    A queue move tells every waiting visitor their new place: thousands of sockets get a
    message at once. One task writing them in turn costs a fraction of one task per socket
    (measured at 10,000 waiting visitors: ``create_task`` alone was 31 % of a move's CPU).
    A socket whose transport is backed up gets a task of its own, so it holds up no one.

    Two lanes: sockets with a message that someone is waiting for (an offer, a call's
    signaling) are written before sockets that only have bulk news (places in line, queue
    counts), so an offer does not wait behind a fan-out to thousands of sockets.
    """

    #: Sockets written between two yields to the event loop during a big fan-out (~1 ms).
    BATCH = 64

    def __init__(self) -> None:
        self._urgent: collections.deque[Outbox] = collections.deque()
        self._bulk: collections.deque[Outbox] = collections.deque()
        self._bulk_done = asyncio.Event()
        self._bulk_done.set()
        self._task: asyncio.Task[None] | None = None

    def schedule(self, outbox: Outbox, *, bulk: bool = False) -> None:
        if bulk:
            self._bulk.append(outbox)
            self._bulk_done.clear()
        else:
            self._urgent.append(outbox)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def bulk_written(self) -> None:
        """Returns once every bulk message queued so far has been written (or handed on)."""
        await self._bulk_done.wait()

    async def _run(self) -> None:
        urgent, bulk = self._urgent, self._bulk
        try:
            written = 0
            while urgent or bulk:
                outbox = urgent.popleft() if urgent else bulk.popleft()
                try:
                    await outbox.flush()
                except Exception:
                    log.exception("writing to a socket failed")
                if not bulk:
                    self._bulk_done.set()
                written += 1
                if written % self.BATCH == 0:
                    await asyncio.sleep(0)
        finally:
            self._task = None
            if not bulk:
                self._bulk_done.set()


class Outbox:
    """Sends one socket's messages in order without letting a slow socket hold up others.

    An idle socket holds no buffer and no task (an ``asyncio.Queue`` plus a parked task cost
    ~4 KiB per socket, a quarter of a waiting visitor). Messages are written by the desk's
    :class:`Flusher` while the socket's transport keeps up, which never waits; a socket that
    is backed up gets its own sender task until it has caught up.
    """

    __slots__ = (
        "_closing",
        "_flusher",
        "_pending",
        "_scheduled",
        "_scheduled_urgent",
        "_task",
        "_transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        flusher: Flusher | None = None,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self._flusher = flusher
        # Duck-typed: uvloop's transports have the methods but are not asyncio subclasses.
        self._transport = cast(
            asyncio.WriteTransport | None,
            transport if hasattr(transport, "get_write_buffer_size") else None,
        )
        self._pending: collections.deque[dict[str, Any]] | None = None
        self._scheduled = False  # waiting for the flusher, in either lane
        self._scheduled_urgent = False  # waiting in the flusher's urgent lane
        self._task: asyncio.Task[None] | None = None  # our own sender, while backed up
        self._closing = False

    def send(self, message: dict[str, Any], *, bulk: bool = False) -> None:
        """Queues ``message``; ``bulk``: news nobody waits for (see :class:`Flusher`)."""
        if self.ws.closed or self._closing:
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = collections.deque()
        elif len(pending) >= OUTBOX_LIMIT:
            log.warning("closing a socket that does not keep up with its messages")
            spawn(self.ws.close(code=CloseCode.POLICY, message=b"slow_consumer"))
            return
        pending.append(message)
        if self._task is not None:
            return
        if self._flusher is None or self._transport is None:
            self._task = asyncio.create_task(self._run())
        elif not bulk and not self._scheduled_urgent:
            self._scheduled = self._scheduled_urgent = True
            self._flusher.schedule(self)
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self, bulk=True)

    def _keeps_up(self, transport: asyncio.WriteTransport) -> bool:
        """Whether a write now completes without waiting: the transport's buffer is at or
        below its low-water mark, so aiohttp's writer is not paused and will not drain."""
        try:
            low, _high = transport.get_write_buffer_limits()
        except (AttributeError, NotImplementedError):
            low = 0
        return transport.get_write_buffer_size() <= low

    async def flush(self) -> None:
        """The flusher's turn: writes what is queued while the socket keeps up."""
        self._scheduled = self._scheduled_urgent = False
        pending, transport = self._pending, self._transport
        if pending is None or transport is None or self._task is not None:
            return
        while pending:
            if self.ws.closed or transport.is_closing():
                pending.clear()
                break
            if not self._keeps_up(transport):
                self._task = asyncio.create_task(self._run())
                return
            message = pending.popleft()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message))
        if self._pending is pending and not pending:
            self._pending = None

    async def _run(self) -> None:
        pending = self._pending
        try:
            while pending:
                message = pending.popleft()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_str(json.dumps(message))
        finally:
            self._task = None
            if self._pending is pending and not pending:
                self._pending = None

    async def drain_and_close(self) -> None:
        """Stops after the queued messages are written (at most 2 s); later ones are dropped."""
        self._closing = True
        if self._scheduled:
            await self.flush()
        task = self._task
        if task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout=2)
        task.cancel()


def eta_growth_reason(before: QueueSnapshot | None, now: QueueSnapshot) -> str | None:
    """Why expected waits grew since the last look at the queue, in words for visitors."""
    if before is None:
        return None
    if now.serving < before.serving:
        return "Fewer agents are free to help right now."
    if now.handle_s > before.handle_s * 1.05:
        return "Conversations are taking a little longer than usual."
    return None


def agent_status_message(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """The ``status`` message for an agent record, as the scripts send it."""
    message: dict[str, Any] = {
        "type": "status",
        "status": record["state"],
        "reason": record.get("reason"),
    }
    if record["state"] == "wrap_up":
        message["wrapup_until"] = record["wrapup_until"]
        message["remaining_ms"] = max(0, int(record["wrapup_until"]) - now_ms)
        message["call_id"] = record.get("last_call")
    return message


def public(message: dict[str, Any]) -> dict[str, Any]:
    """The message without the desk-internal ``_`` fields."""
    return {k: v for k, v in message.items() if not k.startswith("_")}


class VisitorConn:
    """One visitor socket held by this process."""

    def __init__(
        self,
        desk: SignalingDesk,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.desk = desk
        self.ws = ws
        self.outbox = Outbox(ws, desk.flusher, transport)
        self.state = VisitorState()
        self.conn_id = secrets.token_hex(8)
        self.peer: str | None = None  # the agent of the current call
        self.position: int | None = None
        self.eta: int | None = None
        # While joining, desk messages wait here so that `queued` (with the ticket) always
        # comes first, even when an agent accepts within milliseconds.
        self.held: list[dict[str, Any]] | None = None

    def send(self, message: dict[str, Any], *, bulk: bool = False) -> None:
        self.outbox.send(message, bulk=bulk)

    def release_held(self) -> None:
        held, self.held = self.held or [], None
        for event in held:
            self.deliver(event)

    def deliver(self, event: dict[str, Any]) -> None:
        """Handles a message published for this visitor."""
        if event.get("type") == "_replaced":
            if event.get("conn") != self.conn_id:
                self.desk.close_soon(self.ws, CloseCode.REPLACED, "replaced")
            return
        if self.held is not None:
            self.held.append(event)
            return
        if event.get("type") == "_lease_gone":
            self.desk.entry_gone(self)
            return
        if event.get("type") == "call_started":
            self.peer = str(event.get("_peer", ""))
            # TURN credentials minted for this call: an old socket's would have expired.
            event = {**event, "ice_servers": self.desk.ice_servers("v-" + self.conn_id)}
        queue_before = self.state.queue
        if self.state.apply(event):
            self.send(public(event))
        if self.state.queue != queue_before and self.state.queue is not None:
            # Moved (overflow) or transferred to another queue: a new line, a new place.
            self.position = self.eta = None
            self.desk.watch_queue(self.state.queue)
            self.desk.mark_dirty(self.state.queue)
        if self.state.phase is VisitorPhase.DONE:
            self.desk.forget_visitor(self)


class AgentConn:
    """One agent socket held by this process, for one session of the agent."""

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
        self.desk = desk
        self.ws = ws
        self.outbox = Outbox(ws, desk.flusher, transport)
        self.name = name
        self.queues = queues
        self.state = AgentState()
        self.conn_id = secrets.token_hex(8)
        self.peer: str | None = None  # the visitor of the current call
        self.epoch = epoch  # the session epoch of the account when the socket opened
        self.expires_at = expires_at  # Unix seconds; renewed while the console is open
        self.closed_for: str | None = None  # why the desk is closing it: take no more messages

    def send(self, message: dict[str, Any], *, bulk: bool = False) -> None:
        self.outbox.send(message, bulk=bulk)

    def end_session(self, code: int, reason: str) -> None:
        """Closes the socket for good: the session expired or was revoked."""
        if self.closed_for is None:
            self.closed_for = reason
            self.desk.close_soon(self.ws, code, reason)

    def deliver(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "_replaced":
            if event.get("conn") != self.conn_id:
                self.desk.close_soon(self.ws, CloseCode.REPLACED, "replaced")
            return
        if kind == "_revoked":
            if int(event.get("epoch", 0)) > self.epoch:
                self.end_session(CloseCode.REVOKED, str(event.get("reason", "revoked")))
            return
        if kind == "_session":  # renewed over HTTP: the socket lives as long
            if int(event.get("epoch", -1)) == self.epoch:
                self.expires_at = max(self.expires_at, float(event.get("expires_at", 0)))
            return
        if kind == "call_started":
            self.peer = str(event.get("_peer", ""))
            event = {**event, "ice_servers": self.desk.ice_servers("a-" + self.name)}
        if self.state.apply(event):
            self.send(public(event))


def _first_changed_place(event: dict[str, Any]) -> int:
    """The ``from`` of a queue announcement (1, everything, when missing or odd)."""
    value = event.get("from")
    return value if isinstance(value, int) and value >= 1 else 1


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
        self._queue_watch: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._dirty: dict[str, int] = {}  # queue -> first place that may have changed
        self._snapshots: dict[str, QueueSnapshot] = {}
        self._desk_watched = False
        self._positions_task: asyncio.Task[None] | None = None
        self._next_fanout = 0.0  # loop time before which no position fan-out starts
        self._away: list[tuple[str, str]] = []  # (visitor id, socket) to mark away
        self._away_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._housekeeping = housekeeping
        self._housekeeping_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.hub.on_resync(self._resync)
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

    async def close_all_sockets(self) -> None:
        """Closes every socket with 1001 so clients reconnect (to another instance)."""
        sockets = [c.ws for c in self.visitors.values()] + [c.ws for c in self.agents.values()]
        sockets += [c.ws for c in self.anonymous]
        await asyncio.gather(
            *(ws.close(code=CloseCode.GOING_AWAY, message=b"server_shutdown") for ws in sockets),
            return_exceptions=True,
        )

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
            old.state.left()
            self.close_soon(old.ws, CloseCode.REPLACED, "replaced")
        self.watch_queue(queue)
        await self.hub.subscribe_now(self.keys.visitor_channel(visitor_id), conn.deliver)
        if not fresh:
            await self.hub.publish(
                self.keys.visitor_channel(visitor_id), {"type": "_replaced", "conn": conn.conn_id}
            )

    def forget_visitor(self, conn: VisitorConn) -> None:
        vid = conn.state.visitor_id
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
            self.watch_queue(q)
        await self._watch_desk()

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

    # Position updates ----------------------------------------------------------------------

    def watch_queue(self, queue: str) -> None:
        if queue in self._queue_watch:
            return

        def changed(event: dict[str, Any], queue: str = queue) -> None:
            self.mark_dirty(queue, _first_changed_place(event))

        self._queue_watch[queue] = changed
        self.hub.subscribe(self.keys.queue_channel(queue), changed)

    def mark_dirty(self, queue: str, from_place: int = 1) -> None:
        """Schedules one recomputation of the queue's positions (changes coalesce).

        ``from_place`` is the first place in line that may have changed: places ahead of it
        are left alone (unless the agents' counts changed, which moves every wait).
        """
        seen = self._dirty.get(queue)
        self._dirty[queue] = from_place if seen is None else min(seen, from_place)
        if self._positions_task is None or self._positions_task.done():
            self._positions_task = asyncio.create_task(self._update_positions())

    async def _update_positions(self) -> None:
        """Sends positions after changes, coalesced, at a pace the process can afford.

        Changes within ``position_debounce_s`` make one fan-out. Two fan-outs start at
        least ``position_interval_s`` apart and at least four times as long as the last one
        took to write, so a busy line (many moves a second, thousands waiting) costs the
        process at most about a fifth of its time, and offers never queue behind it.
        """
        loop = asyncio.get_running_loop()
        while self._dirty:
            await asyncio.sleep(self.settings.position_debounce_s)
            wait = self._next_fanout - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            dirty, self._dirty = self._dirty, {}
            started = loop.time()
            for queue, from_place in dirty.items():
                try:
                    await self.push_queue_state(queue, from_place)
                except UNAVAILABLE as exc:
                    self.outage.failed(exc)
                except Exception:
                    log.exception("position update for %s failed", queue)
            await self.flusher.bulk_written()
            took = loop.time() - started
            self._next_fanout = started + max(self.settings.position_interval_s, 4 * took)

    async def push_queue_state(self, queue: str, from_place: int = 1) -> None:
        """Sends changed positions to this process's waiting visitors and counts to agents.

        A move at the head changes every place: that costs one pass over the line, and one
        message per waiting visitor. A join at the back changes no one else's place, and
        costs nothing here: only the places at or behind ``from_place`` are re-read (the
        scripts announce it), and only visitors shown such a place are looked at.
        """
        waiting = [
            c
            for c in self.visitors.values()
            if c.state.queue == queue and c.state.phase is VisitorPhase.WAITING
        ]
        agents = [c for c in self.agents.values() if queue in c.queues]
        if not waiting and not agents:
            return
        snapshot = await self.queue.snapshot(queue)
        previous = self._snapshots.get(queue)
        self._snapshots[queue] = snapshot
        if previous is None or (previous.available, previous.serving, previous.handle_s) != (
            snapshot.available,
            snapshot.serving,
            snapshot.handle_s,
        ):
            from_place = 1  # every expected wait may have changed
        from_place = max(1, from_place)
        # A socket whose join (or resume) is still being answered is left out: its `queued`
        # must come first, and it asks for a recheck of its place when sent.
        todo = [
            c
            for c in waiting
            if c.held is None and (c.position is None or c.position >= from_place)
        ]
        if todo:
            ids, offered = await self.queue.line_from(queue, from_place - 1)
            rank = {vid: place for place, vid in enumerate(ids, start=from_place)}
            reason = eta_growth_reason(previous, snapshot)
            for conn in todo:
                vid = conn.state.visitor_id or ""
                position = rank.get(vid)
                if position is None or conn.state.phase is not VisitorPhase.WAITING:
                    continue  # out of line by now (in a call, moved, gone)
                # Offered to an agent right now: their wait is over.
                eta = 0 if vid in offered else estimate_wait_seconds(position, snapshot)
                self.send_position(conn, position, eta, reason)
        counts = {"waiting": snapshot.waiting, "agents_available": snapshot.available}
        for agent in agents:
            agent.send({"type": "queues", "queues": {queue: counts}}, bulk=True)

    def send_position(
        self, conn: VisitorConn, position: int, eta: int, reason: str | None = None
    ) -> None:
        """Sends the visitor's place and wait, never moving them backwards.

        A visitor never sees a later place than one already shown (a priority visitor who
        joins ahead is absorbed), and the expected wait only grows when there is a reason to
        tell them, which goes with it.
        """
        if conn.position is not None:
            position = min(position, conn.position)
        grew = conn.eta is not None and eta > conn.eta
        if grew and reason is None:
            eta = conn.eta or 0
        if (position, eta) != (conn.position, conn.eta):
            conn.position, conn.eta = position, eta
            message: dict[str, Any] = {
                "type": "position",
                "position": position,
                "eta_seconds": eta,
            }
            if grew and reason:
                message["eta_reason"] = reason
            conn.send(message, bulk=True)

    async def callbacks_message(self, queues: list[str], offset: int = 0) -> dict[str, Any]:
        """A page of the open callback requests of ``queues``, oldest first, with the total."""
        items = await self.queue.open_callbacks(queues)
        page = items[offset : offset + CALLBACKS_PAGE]
        return {"type": "callbacks", "items": page, "offset": offset, "total": len(items)}

    async def _watch_desk(self) -> None:
        """Once an agent is here: follow the callback requests and the desk's queues."""
        if self._desk_watched:
            return
        self._desk_watched = True

        def queues_changed(_event: dict[str, Any]) -> None:
            spawn(self._push_desk_queues())

        await self.hub.subscribe_now(self.keys.callbacks_channel, self._callback_changed)
        await self.hub.subscribe_now(self.keys.queues_channel, queues_changed)

    def _callback_changed(self, event: dict[str, Any]) -> None:
        """One request added or closed: consoles that serve its queue get just that change
        (re-sending the whole list per change made 2,000 requests cost 2 GB per console)."""
        kind = event.get("type")
        if kind == "callback_added" and isinstance(event.get("item"), dict):
            message: dict[str, Any] = {"type": "callback_added", "item": event["item"]}
            queue = event["item"].get("queue")
        elif kind == "callback_closed":
            message = {"type": "callback_closed", "id": event.get("id")}
            queue = event.get("queue")
        else:
            return
        for conn in list(self.agents.values()):
            if queue in conn.queues:
                conn.send(message)

    async def _push_desk_queues(self) -> None:
        """A queue was added or removed: consoles offer the new list for transfers."""
        try:
            names = await self.queue.queue_names(refresh=True)
        except UNAVAILABLE as exc:
            self.outage.failed(exc)
            return
        for conn in list(self.agents.values()):
            conn.send({"type": "desk_queues", "queues": names})

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
            if conn.expires_at <= now:
                conn.end_session(CloseCode.SESSION_EXPIRED, "session_expired")

    async def heartbeat(self) -> None:
        """Renews the leases of every party this process holds a socket for."""
        visitors = [
            vid
            for vid, c in self.visitors.items()
            if c.state.phase in (VisitorPhase.WAITING, VisitorPhase.IN_CALL)
        ]
        agents = [
            name for name, c in self.agents.items() if c.state.phase is not AgentPhase.OFFLINE
        ]
        if not visitors and not agents:
            return
        # In slices: one script renewing 10,000 leases holds Redis for ~25 ms, and every
        # match of every instance waits behind it; slices of 200 hold it well under 1 ms.
        # A visitor whose lease is gone is not closed here: the reply can arrive before the
        # call_ended of a call that just ended. The script tells the visitor's channel
        # (`_lease_gone`), behind every message published before, and entry_gone acts then.
        step = HEARTBEAT_SLICE
        for i in range(0, max(len(visitors), len(agents)), step):
            await self.queue.heartbeat(visitors[i : i + step], agents[i : i + step])

    def entry_gone(self, conn: VisitorConn) -> None:
        """The lease renewal found the visitor's entry gone, and every message published for
        them before that has been handed to ``conn`` (see heartbeat.lua).

        A call's end told by ``call_ended`` has made the socket Done already, and nothing is
        left to do. A socket still in a call lost that message (pub/sub is at-most-once):
        the call record says how the call ended, and the visitor gets that ``call_ended``.
        Otherwise the place was given up or ran out: close 4004 (``entry_gone``).
        """
        if conn.state.phase in (VisitorPhase.WAITING, VisitorPhase.IN_CALL):
            spawn(self._end_gone_entry(conn))

    async def _end_gone_entry(self, conn: VisitorConn) -> None:
        call_id = conn.state.call_id if conn.state.phase is VisitorPhase.IN_CALL else None
        try:
            record = await self.queue.call_record(call_id) if call_id else None
        except Exception:
            log.warning("could not read a call record (the next renewal retries)", exc_info=True)
            return
        if conn.state.phase not in (VisitorPhase.WAITING, VisitorPhase.IN_CALL):
            return  # the socket closed or moved on meanwhile
        ended = (
            record is not None
            and call_id == conn.state.call_id
            and record.get("visitor_id") == conn.state.visitor_id
            and record.get("ended") is not None
            and record.get("end_reason") != "transferred"
        )
        if ended and record is not None:
            conn.deliver(
                {
                    "type": "call_ended",
                    "call_id": call_id,
                    "reason": record.get("end_reason"),
                    "by": record.get("ended_by"),
                }
            )
            return
        conn.state.left()
        self.forget_visitor(conn)
        self.close_soon(conn.ws, CloseCode.ENTRY_GONE, "entry_gone")

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

    def _resync(self) -> None:
        """After a pub/sub reconnect: messages may have been lost, so re-read what matters."""
        self.outage.recovered()
        for queue in list(self._queue_watch):
            self.mark_dirty(queue)
        for conn in list(self.agents.values()):
            spawn(self._resync_agent(conn))

    async def _resync_agent(self, conn: AgentConn) -> None:
        try:
            record = await self.queue.agent(conn.name)
            if record is None:
                return
            conn.deliver(agent_status_message(record, await self.queue.clock_ms()))
            if record["state"] == "offered":
                await self.replay_offer(conn, str(record["offer"]))
        except UNAVAILABLE as exc:
            self.outage.failed(exc)

    async def replay_call(self, call_id: str, *, visitor: bool, agent: bool) -> bool:
        """Re-sends ``call_started`` after a reconnect, so the parties negotiate afresh.

        The agent, as offerer, then makes a new offer; the visitor's page notices the new
        DTLS fingerprint and answers with a new connection. Returns False if the call ended.
        """
        call = await self.queue.call(call_id)
        if call is None:
            return False
        v = await self.queue.visitor(str(call["visitor"])) or {}
        a = await self.queue.agent(str(call["agent"])) or {}
        if agent:
            await self.hub.publish(
                self.keys.agent_channel(str(call["agent"])),
                {
                    "type": "call_started",
                    "call_id": call_id,
                    "role": "offerer",
                    "peer": {
                        "name": v.get("name", ""),
                        "topic": v.get("topic", ""),
                        "audio_only": bool(v.get("audio_only")),
                    },
                    "queue": call["queue"],
                    "_peer": call["visitor"],
                    "replay": True,
                },
            )
        if visitor:
            await self.hub.publish(
                self.keys.visitor_channel(str(call["visitor"])),
                {
                    "type": "call_started",
                    "call_id": call_id,
                    "role": "answerer",
                    "peer": {"name": a.get("display_name") or a.get("name", "")},
                    "_peer": call["agent"],
                    "replay": True,
                },
            )
        return True

    async def replay_offer(self, conn: AgentConn, offer_id: str) -> None:
        """Re-sends a pending offer to a console that may have missed it."""
        offer = await self.queue.offer(offer_id)
        if offer is None:
            return
        visitor = await self.queue.visitor(str(offer["visitor"])) or {}
        now = await self.queue.clock_ms()
        conn.deliver(
            {
                "type": "offer",
                "offer_id": offer_id,
                "queue": offer["queue"],
                "visitor": {
                    "name": visitor.get("name", ""),
                    "topic": visitor.get("topic", ""),
                    "audio_only": bool(visitor.get("audio_only")),
                    "page": visitor.get("page", ""),
                    "priority": visitor.get("priority", 0),
                    "transferred_from": visitor.get("transferred_from"),
                },
                "waited_seconds": max(0, (now - int(visitor.get("joined", now))) // 1000),
                "timeout_ms": max(0, int(offer["deadline"]) - now),
                "expires_at_ms": int(offer["deadline"]),
            }
        )
