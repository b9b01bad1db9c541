"""The visitor and agent WebSocket endpoints: read frames, check them, act, answer.

Authentication and the Origin check happen in :mod:`humandesk.server` before the upgrade;
these functions take an already-checked request and run the protocol of docs/protocol.md.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from humandesk.queue.client import (
    AgentInfo,
    CallbackRequest,
    JoinResult,
    NewVisitor,
    QueueError,
    estimate_wait_seconds,
)
from humandesk.queue.limits import Refusal
from humandesk.signaling.connections import AgentConn, VisitorConn
from humandesk.signaling.desk import SignalingDesk
from humandesk.signaling.limits import MessageBucket
from humandesk.signaling.messages import (
    MAX_ERRORS_PER_SOCKET,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Accept,
    Callback,
    CallbacksPage,
    ClientMessage,
    CloseCallback,
    CloseCode,
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
    Role,
    SetStatus,
    Signal,
    Transfer,
    Wrapup,
    parse,
)
from humandesk.signaling.outage import RETRY_AFTER_S, UNAVAILABLE
from humandesk.signaling.outbox import Outbox
from humandesk.signaling.session import VisitorPhase

log = logging.getLogger(__name__)

INFINITY = float("inf")

# Queue refusals a client can cause, mapped to protocol error codes.
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
}


class CloseSocket(Exception):
    """Ends the socket with a close code after the current frame."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


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
    handle: Any,
    outbox: Outbox,
    closed_for: Any = lambda: None,
) -> None:
    """The frame loop shared by both endpoints: parse, dispatch, answer errors, count them.

    A frame beyond the socket's message rate is refused with ``rate_limited`` and counted
    as an error, so a flood ends in a close instead of a queue. A frame that needs Redis
    while Redis cannot be reached is answered ``unavailable`` (not counted: it is not the
    client's fault); the socket stays open and the client tries again.
    """
    limits = desk.settings.limits
    bucket = MessageBucket(limits.messages_per_second, limits.message_burst)
    errors = 0
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            frame: str | bytes = msg.data
        elif msg.type is WSMsgType.BINARY:
            frame = msg.data
        elif msg.type is WSMsgType.ERROR:
            break
        else:
            continue
        if closed_for() is not None:
            break  # the session ended: the close is on its way
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
            outbox.send(_unavailable(message.type if message else None).to_wire())
        except CloseSocket as close:
            await ws.close(code=close.code, message=close.reason.encode())
            break


def _unavailable(kind: str | None) -> ProtocolError:
    return ProtocolError(
        "unavailable",
        "the desk cannot reach its database just now; try again in a moment",
        kind,
        {"retry_after_s": RETRY_AFTER_S},
    )


def _queue_error(exc: QueueError, kind: str) -> ProtocolError:
    code = QUEUE_ERRORS.get(exc.code)
    if code is None:
        raise exc
    return ProtocolError(code, str(exc), kind)


# Visitors ----------------------------------------------------------------------------------


async def visitor_socket(
    request: web.Request, desk: SignalingDesk, address: str
) -> web.WebSocketResponse:
    """A visitor's socket; ``address`` is the client's (behind trusted proxies, the
    forwarded one), which the per-address limits count."""
    ws = new_socket()
    await ws.prepare(request)
    conn = VisitorConn(desk, ws, request.transport)
    desk.anonymous.add(conn)
    conn.send(
        {
            "type": "welcome",
            "v": PROTOCOL_VERSION,
            "role": "visitor",
            "ice_servers": desk.ice_servers("v-" + conn.conn_id),
            "ice_transport_policy": desk.settings.ice_transport_policy,
        }
    )

    async def handle(message: ClientMessage) -> None:
        conn.session.check(message)
        if isinstance(message, Join):
            await _join(desk, conn, message, address)
        elif isinstance(message, Resume):
            await _resume(desk, conn, message)
        elif isinstance(message, Leave):
            vid = conn.session.visitor_id
            assert vid is not None
            try:
                await desk.queue.leave(vid, "left")
            except QueueError as exc:
                raise _queue_error(exc, message.type) from None
            conn.session.left()
            desk.forget_visitor(conn)
            conn.send({"type": "left", "reason": "left"})
            await conn.outbox.drain_and_close()
            raise CloseSocket(CloseCode.NORMAL, "left")
        elif isinstance(message, Signal):
            await desk.hub.publish(
                desk.keys.agent_channel(conn.session.peer or ""), message.to_wire()
            )
        elif isinstance(message, Media):
            await desk.hub.publish(
                desk.keys.agent_channel(conn.session.peer or ""),
                {
                    "type": "peer_media",
                    "call_id": conn.session.call_id,
                    "muted": message.muted,
                    "camera_off": message.camera_off,
                },
            )
        elif isinstance(message, Hangup):
            try:
                await desk.queue.end_call(
                    message.call_id, "visitor", conn.session.visitor_id or "", "hangup"
                )
            except QueueError as exc:
                raise _queue_error(exc, message.type) from None
        elif isinstance(message, Callback):
            await _callback(desk, conn, message, address)
        elif isinstance(message, Rate):
            try:
                await desk.queue.rate(
                    conn.session.visitor_id or "", message.call_id, message.score, message.comment
                )
            except QueueError as exc:
                raise _queue_error(exc, message.type) from None
            conn.session.rated = True
            conn.send({"type": "rated", "call_id": message.call_id})
        elif isinstance(message, RefreshIce):
            conn.send(_ice_message(desk, "v-" + conn.conn_id))
        elif isinstance(message, Ping):
            conn.send({"type": "pong"})

    try:
        await _serve(ws, desk, "visitor", handle, conn.outbox)
    except Exception:
        log.exception("visitor socket failed")
        await ws.close(code=CloseCode.INTERNAL, message=b"internal_error")
    finally:
        desk.anonymous.discard(conn)
        desk.forget_visitor(conn)
        await conn.outbox.drain_and_close()
        vid = conn.session.visitor_id
        if vid is not None and conn.session.phase is VisitorPhase.WAITING:
            desk.went_away(vid, conn.conn_id)
    return ws


def _ice_message(desk: SignalingDesk, user_id: str) -> dict[str, Any]:
    """Fresh ICE servers (new TURN credentials), for an ICE restart."""
    return {"type": "ice_servers", "ice_servers": desk.ice_servers(user_id)}


def _limited(kind: str, refusal: Refusal) -> ProtocolError:
    text = {
        "joins": "too many joins from your network; try again in a moment",
        "waiting": "too many people from your network are waiting already",
        "callbacks": "too many call-back requests from your network; try again later",
    }[refusal.limit]
    return ProtocolError(
        "rate_limited", text, kind, {"limit": refusal.limit, "retry_after_s": refusal.retry_after_s}
    )


async def _callback(
    desk: SignalingDesk, conn: VisitorConn, message: Callback, address: str
) -> None:
    """Stores a callback request; a waiting visitor gives up their place for it."""
    if message.queue not in await desk.queue.queue_names():
        raise ProtocolError("unknown_queue", f"no queue {message.queue!r}", message.type)
    refusal = await desk.limiter.admit_callback(address)
    if refusal is not None:
        raise _limited(message.type, refusal)
    waiting = conn.session.visitor_id if conn.session.phase is VisitorPhase.WAITING else None
    callback_id = secrets.token_urlsafe(9)
    try:
        await desk.queue.request_callback(
            CallbackRequest(
                id=callback_id,
                queue=message.queue,
                name=message.name,
                contact=message.contact,
                note=message.note,
            ),
            visitor_id=waiting or "",
            max_open=desk.settings.limits.open_callbacks,
        )
    except QueueError as exc:
        raise _queue_error(exc, message.type) from None
    conn.send({"type": "callback_saved", "id": callback_id, "queue": message.queue})
    if waiting:
        conn.session.left()
        desk.forget_visitor(conn)
        conn.send({"type": "left", "reason": "callback"})
        await conn.outbox.drain_and_close()
        raise CloseSocket(CloseCode.NORMAL, "left")


async def _join(desk: SignalingDesk, conn: VisitorConn, message: Join, address: str) -> None:
    if message.queue not in await desk.queue.queue_names():
        raise ProtocolError("unknown_queue", f"no queue {message.queue!r}", message.type)
    token_priority = None
    if message.priority_token:
        try:
            token_priority = desk.tickets.priority(message.priority_token)
        except Exception:
            raise ProtocolError(
                "bad_message", "'priority_token' is not valid", message.type
            ) from None
    visitor_id = secrets.token_urlsafe(12)
    refusal = await desk.limiter.admit_visitor(address, visitor_id)
    if refusal is not None:
        raise _limited(message.type, refusal)
    conn.session.visitor_id = visitor_id
    conn.session.hold()
    try:
        result = await _enter_line(desk, conn, message, visitor_id, token_priority)
        conn.session.queued(visitor_id, message.queue)
        await _send_queued(
            desk, conn, result.position, offered=result.offered, audio_only=message.audio_only
        )
    finally:
        conn.release_held()


async def _enter_line(
    desk: SignalingDesk,
    conn: VisitorConn,
    message: Join,
    visitor_id: str,
    token_priority: int | None,
) -> JoinResult:
    """Subscribes the new visitor's channel and runs the join script if the queue is open.

    The path from a visitor's click to an agent's offer: the queue's rules are taken as last
    read (the join script refuses if they changed, and a refusal is decided on fresh rules),
    and the subscription is written without waiting, so the join script is the one round
    trip.
    """
    try:
        await desk.register_visitor(conn, visitor_id, message.queue, fresh=True)
        for attempt in (1, 2):
            admission = await desk.queue.admission(message.queue, cached=attempt == 1)
            if not admission.open and attempt == 1:
                continue  # refused only on the rules as they are now
            if not admission.open:
                raise ProtocolError(
                    "queue_closed",
                    "this queue is closed now; you can ask to be called back",
                    message.type,
                    {"opens_at": admission.opens_at, "callback": True},
                )
            visitor = NewVisitor(
                id=visitor_id,
                queue=message.queue,
                name=message.name,
                topic=message.topic,
                page=message.page,
                audio_only=message.audio_only,
                priority=admission.priority if token_priority is None else token_priority,
                conn=conn.conn_id,
            )
            try:
                return await desk.queue.join(visitor, rules_seen=admission.rules_seen)
            except QueueError as exc:
                if exc.code != "stale_rules" or attempt == 2:
                    raise
        raise AssertionError("unreachable")
    except BaseException as exc:
        desk.forget_visitor(conn)
        conn.session.visitor_id = None
        if isinstance(exc, QueueError):
            raise _queue_error(exc, message.type) from None
        raise


async def _resume(desk: SignalingDesk, conn: VisitorConn, message: Resume) -> None:
    try:
        visitor_id = desk.tickets.verify(message.ticket)
    except Exception:
        raise CloseSocket(CloseCode.INVALID_TICKET, "invalid_ticket") from None
    record = await desk.queue.visitor(visitor_id)
    if record is None:
        raise CloseSocket(CloseCode.ENTRY_GONE, "entry_gone")
    conn.session.hold()
    try:
        await _take_over(desk, conn, visitor_id, record)
    finally:
        conn.release_held()


async def _take_over(
    desk: SignalingDesk, conn: VisitorConn, visitor_id: str, record: dict[str, Any]
) -> None:
    """The resume of an entry that exists: this socket takes it over (desk messages for the
    visitor wait in ``conn.held`` until then, as during a join)."""
    conn.session.visitor_id = visitor_id
    try:
        await desk.register_visitor(conn, visitor_id, str(record["queue"]))
        entry = await desk.queue.come_back(visitor_id, conn.conn_id)
    except QueueError:
        desk.forget_visitor(conn)
        raise CloseSocket(CloseCode.ENTRY_GONE, "entry_gone") from None
    except BaseException:
        desk.forget_visitor(conn)  # e.g. Redis unreachable: the visitor may resume again
        conn.session.visitor_id = None
        raise
    record["queue"] = entry["queue"]
    conn.session.queued(visitor_id, str(record["queue"]))
    if record["state"] == "in_call":
        # A reload during a call: both sides start a fresh peer connection.
        if await desk.replay_call(str(record["call"]), visitor=True, agent=True):
            return
        desk.forget_visitor(conn)
        raise CloseSocket(CloseCode.ENTRY_GONE, "entry_gone")
    await _send_queued(
        desk,
        conn,
        int(entry["position"]) or 1,
        offered=entry["state"] == "offered",
        audio_only=bool(record.get("audio_only")),
    )


async def _send_queued(
    desk: SignalingDesk, conn: VisitorConn, position: int, *, offered: bool, audio_only: bool
) -> None:
    """Tells a joining (or resuming) visitor their place and wait: ``queued``, the first
    word of either, since no position update reaches the socket before its ``conn.held`` is
    released (see PositionUpdates.push).

    ``offered``: an agent was offered this visitor already (by the join itself, the moment
    they joined): their wait is over, whatever the line looks like after that agent is
    taken, so 0.
    """
    session = conn.session
    vid, queue = session.visitor_id, session.queue
    assert vid is not None and queue is not None
    eta = 0 if offered else estimate_wait_seconds(position, await desk.queue.snapshot(queue))
    queued = session.queued_frame(desk.tickets.issue(vid), position, eta, audio_only)
    conn.perform([queued])
    # Re-checks this place and those behind it, not the line.
    desk.positions.mark_dirty(queue, queued.frame["position"])


# Agents ------------------------------------------------------------------------------------


async def _restore_notes(desk: SignalingDesk, conn: AgentConn, call_id: str | None) -> None:
    """A console (re)connecting in a call or its wrap-up gets the notes saved for it."""
    saved = await desk.queue.call_record(call_id) if call_id else None
    if saved and (saved.get("notes") or saved.get("disposition")):
        conn.send(
            {
                "type": "notes_restored",
                "call_id": call_id,
                "notes": saved.get("notes") or "",
                "disposition": saved.get("disposition") or "",
            }
        )


async def agent_socket(
    request: web.Request,
    desk: SignalingDesk,
    agent: AgentInfo,
    *,
    epoch: int = 0,
    expires_at: float = float("inf"),
) -> web.WebSocketResponse:
    """An agent's console socket, for a session of ``epoch`` valid until ``expires_at``
    (Unix seconds; renewals over HTTP extend it, see ``AgentConn.deliver``)."""
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
        await _greet_agent(desk, conn, agent)
    except UNAVAILABLE as exc:
        desk.outage.failed(exc)
        desk.forget_agent(conn)
        await ws.close(code=CloseCode.TRY_AGAIN, message=b"unavailable")
        return ws

    async def handle(message: ClientMessage) -> None:
        conn.session.check(message)
        try:
            if isinstance(message, SetStatus):
                await desk.queue.set_agent_status(agent, message.status)
            elif isinstance(message, Accept):
                await desk.queue.accept(agent.name, message.offer_id)
            elif isinstance(message, Decline):
                await desk.queue.decline(agent.name, message.offer_id)
            elif isinstance(message, Hangup):
                await desk.queue.end_call(message.call_id, "agent", agent.name, "hangup")
            elif isinstance(message, Wrapup):
                await desk.queue.wrapup(agent.name, message.action)
            elif isinstance(message, Notes):
                await desk.queue.save_notes(
                    agent.name, message.call_id, message.notes, message.disposition
                )
                conn.send({"type": "notes_saved", "call_id": message.call_id})
            elif isinstance(message, Transfer):
                await desk.queue.transfer(agent.name, message.call_id, message.queue)
            elif isinstance(message, CloseCallback):
                await desk.queue.close_callback(
                    message.id, agent.name, message.outcome, queues=conn.queues
                )
        except QueueError as exc:
            raise _queue_error(exc, message.type) from None
        if isinstance(message, Signal):
            await desk.hub.publish(
                desk.keys.visitor_channel(conn.session.peer or ""), message.to_wire()
            )
        elif isinstance(message, Media):
            await desk.hub.publish(
                desk.keys.visitor_channel(conn.session.peer or ""),
                {
                    "type": "peer_media",
                    "call_id": conn.session.call_id,
                    "muted": message.muted,
                    "camera_off": message.camera_off,
                },
            )
        elif isinstance(message, CallbacksPage):
            conn.send(await desk.callbacks_message(conn.queues, message.offset))
        elif isinstance(message, RefreshIce):
            conn.send(_ice_message(desk, "a-" + agent.name))
        elif isinstance(message, Ping):
            conn.send({"type": "pong"})

    try:
        await _serve(ws, desk, "agent", handle, conn.outbox, lambda: conn.session.closed_for)
    except Exception:
        log.exception("agent socket failed")
        await ws.close(code=CloseCode.INTERNAL, message=b"internal_error")
    finally:
        desk.forget_agent(conn)
        await conn.outbox.drain_and_close()
    return ws


async def _greet_agent(desk: SignalingDesk, conn: AgentConn, agent: AgentInfo) -> None:
    """Registers a new console and tells it everything it needs to pick up where it was."""
    await desk.register_agent(conn)
    welcome = {
        "type": "welcome",
        "v": PROTOCOL_VERSION,
        "role": "agent",
        "agent": {
            "name": agent.name,
            "display_name": agent.display_name,
            "queues": list(agent.queues),
        },
        "desk_queues": await desk.queue.queue_names(refresh=True),
        "ice_servers": desk.ice_servers("a-" + agent.name),
        "ice_transport_policy": desk.settings.ice_transport_policy,
        "session": {
            "expires_at": None if conn.session.expires_at == INFINITY else conn.session.expires_at,
            "idle_signout_s": desk.settings.idle_signout_s,
        },
    }
    rendered = await desk.queue.render(agent=agent.name)
    conn.send({**welcome, "status": rendered.state})
    desk.tell_agent(conn, rendered)
    await _restore_notes(
        desk, conn, {"in_call": rendered.call, "wrap_up": rendered.last_call}.get(rendered.state)
    )
    if rendered.state == "in_call" and rendered.call:
        # A reloaded console: re-offer the call so the visitor sees the agent again.
        await desk.replay_call(rendered.call, visitor=False, agent=True)
    conn.send({"type": "queues", "queues": await desk.agent_counts(conn.queues)})
    conn.send(await desk.callbacks_message(conn.queues))
