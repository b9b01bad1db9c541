"""The visitor and agent WebSocket endpoints: one frame loop, and a handler table per role.

Authentication and the Origin check happen in :mod:`humandesk.server` before the upgrade;
these functions take an already-checked request and run the protocol of docs/protocol.md:
each frame is parsed (messages.py), allowed or refused by the socket's session
(session.py), and handed to its handler (visitors.py, agents.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from humandesk.queue.client import AgentInfo
from humandesk.signaling import agents, visitors
from humandesk.signaling.codes import CloseCode, ProtocolError
from humandesk.signaling.connections import AgentConn, Connection, VisitorConn
from humandesk.signaling.desk import SignalingDesk
from humandesk.signaling.limits import MessageBucket
from humandesk.signaling.messages import (
    MAX_ERRORS_PER_SOCKET,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    ClientMessage,
    Ping,
    Role,
    parse,
)
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbound import VisitorWelcome
from humandesk.signaling.refusals import CloseSocket, unavailable
from humandesk.signaling.session import VisitorPhase

__all__ = ["agent_socket", "visitor_socket"]

log = logging.getLogger(__name__)


def new_socket() -> web.WebSocketResponse:
    return web.WebSocketResponse(
        max_msg_size=MAX_FRAME_BYTES,
        compress=False,
        heartbeat=25.0,
        autoping=True,
        timeout=2.0,
    )


async def _serve(
    ws: web.WebSocketResponse,
    desk: SignalingDesk,
    role: Role,
    conn: Connection,
    handle: Callable[[ClientMessage], Awaitable[None]],
) -> None:
    """The frame loop of both endpoints: parse, check, dispatch, answer errors, count them.

    A frame beyond the socket's message rate is refused with ``rate_limited`` and counted
    as an error, so a flood ends in a close instead of a queue. A frame that needs Redis
    while Redis cannot be reached is answered ``unavailable`` (not counted: it is not the
    client's fault); the socket stays open and the client tries again.
    """
    limits = desk.settings.limits
    bucket = MessageBucket(limits.messages_per_second, limits.message_burst)
    session, outbox = conn.session, conn.outbox
    errors = 0
    async for msg in ws:
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            frame: str | bytes = msg.data
        elif msg.type is WSMsgType.ERROR:
            break
        else:
            continue
        if session.closed_for is not None:
            break  # the session ended: the close is on its way
        conn.heard_at = time.monotonic()
        message: ClientMessage | None = None
        try:
            if not bucket.take():
                raise ProtocolError(
                    "rate_limited",
                    f"more than {limits.messages_per_second:g} messages a second",
                    None,
                    {"limit": "messages", "retry_after_s": 1},
                )
            message = parse(frame, role, max_depth=desk.settings.max_json_depth)
            if isinstance(message, Ping):
                conn.pings = True
            session.check(message)
            await handle(message)
        except ProtocolError as exc:
            errors += 1
            outbox.send(exc.to_wire())
            if errors >= MAX_ERRORS_PER_SOCKET:
                await outbox.drain_and_close()  # the last error goes out before the close
                await ws.close(code=CloseCode.POLICY, message=b"too_many_errors")
                break
        except UNAVAILABLE as exc:
            desk.outage.failed(exc)
            outbox.send(unavailable(message.type if message else None).to_wire())
        except CloseSocket as close:
            await ws.close(code=close.code, message=close.reason.encode())
            break


async def _run(ws: web.WebSocketResponse, role: Role, serve: Awaitable[None]) -> None:
    """Runs a socket's loop; anything unforeseen is a bug: logged, and closed with 1011."""
    try:
        await serve
    except Exception:
        log.exception("%s socket failed", role)
        await ws.close(code=CloseCode.INTERNAL, message=b"internal_error")


async def visitor_socket(
    request: web.Request, desk: SignalingDesk, address: str
) -> web.WebSocketResponse:
    """A visitor's socket; ``address`` is the client's (behind trusted proxies, the
    forwarded one), which the per-address limits count."""
    ws = new_socket()
    await ws.prepare(request)
    conn = VisitorConn(desk, ws, request.transport)
    desk.anonymous.add(conn)
    welcome = VisitorWelcome(
        PROTOCOL_VERSION,
        desk.ice_servers("v-" + conn.conn_id),
        desk.settings.ice_transport_policy,
        desk.queue.config.call_lease_ms // 1000,
    )
    conn.send(welcome.to_wire())
    visit = visitors.Visit(desk, conn, address)

    async def handle(message: ClientMessage) -> None:
        await visitors.HANDLERS[type(message)](visit, message)

    try:
        await _run(ws, "visitor", _serve(ws, desk, "visitor", conn, handle))
    finally:
        desk.anonymous.discard(conn)
        desk.forget_visitor(conn)
        await conn.outbox.drain_and_close()
        vid = conn.session.visitor_id
        if vid is not None and conn.session.phase is VisitorPhase.WAITING:
            desk.went_away(vid, conn.conn_id)
    return ws


async def agent_socket(
    request: web.Request,
    desk: SignalingDesk,
    agent: AgentInfo,
    *,
    epoch: int = 0,
    expires_at: float = float("inf"),
) -> web.WebSocketResponse:
    """An agent's console socket, for a session of ``epoch`` valid until ``expires_at``
    (Unix seconds; renewals over HTTP extend it, see ``AgentSession.deliver``)."""
    ws = new_socket()
    await ws.prepare(request)
    conn = AgentConn(
        desk,
        ws,
        agent.name,
        list(agent.queues),
        request.transport,
        epoch=epoch,
        expires_at=expires_at,
    )
    try:
        await agents.greet(desk, conn, agent)
    except UNAVAILABLE as exc:
        desk.outage.failed(exc)
        desk.forget_agent(conn)
        await ws.close(code=CloseCode.TRY_AGAIN, message=b"unavailable")
        return ws
    shift = agents.Shift(desk, conn, agent)

    async def handle(message: ClientMessage) -> None:
        await agents.handle(shift, message)

    try:
        await _run(ws, "agent", _serve(ws, desk, "agent", conn, handle))
    finally:
        desk.forget_agent(conn)
        await conn.outbox.drain_and_close()
    return ws
