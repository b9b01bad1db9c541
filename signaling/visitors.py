"""What a visitor's messages do: one handler per message type (:data:`HANDLERS`).

Each handler gets the socket's :class:`Visit` (the desk, the connection, the client's
address) and a message its session has already allowed (session.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from humandesk.queue.client import (
    CallbackRequest,
    JoinResult,
    NewVisitor,
    QueueError,
)
from humandesk.queue.waits import estimate_wait_seconds
from humandesk.signaling.chat import say, send_history
from humandesk.signaling.codes import CloseCode, ProtocolError
from humandesk.signaling.connections import VisitorConn
from humandesk.signaling.desk import SignalingDesk
from humandesk.signaling.messages import (
    Callback,
    Chat,
    ClientMessage,
    Hangup,
    Join,
    Leave,
    Media,
    Ping,
    Rate,
    RefreshIce,
    Resume,
    Signal,
    handler_table,
)
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbound import CallbackSaved, Left, Pong, Rated
from humandesk.signaling.refusals import CloseSocket, limited, queue_error
from humandesk.signaling.resync import replay_call
from humandesk.signaling.session import VisitorPhase

__all__ = ["HANDLERS", "Visit"]


@dataclass(frozen=True)
class Visit:
    """One visitor socket, as its handlers see it."""

    desk: SignalingDesk
    conn: VisitorConn
    address: str  # the client's, as the per-address limits count it


async def leave(visit: Visit, message: Leave) -> None:
    desk, conn = visit.desk, visit.conn
    vid = conn.session.visitor_id
    assert vid is not None
    try:
        await desk.queue.leave(vid, "left")
    except QueueError as exc:
        raise queue_error(exc, message.type) from None
    await _gone_from_line(visit, "left")


async def _gone_from_line(visit: Visit, reason: str) -> None:
    """The visitor gave up their place (``reason``: left, callback): told, then closed."""
    visit.conn.session.left()
    visit.desk.forget_visitor(visit.conn)
    visit.conn.send(Left(reason).to_wire())
    await visit.conn.outbox.drain_and_close()
    raise CloseSocket(CloseCode.NORMAL, "left")


async def relay(visit: Visit, message: Signal | Media) -> None:
    await visit.desk.relay(visit.conn, message)


async def chat(visit: Visit, message: Chat) -> None:
    await say(visit.desk, visit.conn, message, "visitor", visit.conn.session.visitor_id or "")


async def hangup(visit: Visit, message: Hangup) -> None:
    session = visit.conn.session
    try:
        await visit.desk.queue.end_call(message.call_id, "visitor", session.visitor_id or "")
    except QueueError as exc:
        raise queue_error(exc, message.type) from None


async def rate(visit: Visit, message: Rate) -> None:
    session = visit.conn.session
    try:
        await visit.desk.queue.rate(
            session.visitor_id or "", message.call_id, message.score, message.comment
        )
    except QueueError as exc:
        raise queue_error(exc, message.type) from None
    session.rated = True
    visit.conn.send(Rated(message.call_id).to_wire())


async def refresh_ice(visit: Visit, _message: RefreshIce) -> None:
    visit.conn.send(visit.desk.ice_message("v-" + visit.conn.conn_id))


async def ping(visit: Visit, _message: Ping) -> None:
    visit.conn.send(Pong().to_wire())


async def callback(visit: Visit, message: Callback) -> None:
    """Stores a callback request; a waiting visitor gives up their place for it."""
    desk, conn, address = visit.desk, visit.conn, visit.address
    if message.queue not in await desk.queue.queue_names():
        raise ProtocolError("unknown_queue", f"no queue {message.queue!r}", message.type)
    refusal = await desk.limiter.admit_callback(address)
    if refusal is not None:
        raise limited(message.type, refusal)
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
        raise queue_error(exc, message.type) from None
    conn.send(CallbackSaved(callback_id, message.queue).to_wire())
    if waiting:
        await _gone_from_line(visit, "callback")


async def join(visit: Visit, message: Join) -> None:
    """Takes a place in line (within the address's limits), answered by ``queued``."""
    desk, conn, address = visit.desk, visit.conn, visit.address
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
    if conn.session.join_id is not None and await _join_answered_late(visit, message):
        return
    visitor_id = secrets.token_urlsafe(12)
    refusal = await desk.limiter.admit_visitor(address, visitor_id)
    if refusal is not None:
        raise limited(message.type, refusal)
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
                precall=message.precall,
                priority=admission.priority if token_priority is None else token_priority,
                conn=conn.conn_id,
            )
            try:
                return await desk.queue.join(visitor, rules_seen=admission.rules_seen)
            except QueueError as exc:
                if exc.code == "duplicate_visitor":  # a fresh id: redis-py sent the join again
                    raise RedisConnectionError("the join's answer was lost") from None
                if exc.code != "stale_rules" or attempt == 2:
                    raise
        raise AssertionError("unreachable")
    except BaseException as exc:
        desk.forget_visitor(conn)
        conn.session.visitor_id = None
        # Redis may have carried the join out though its answer was lost (the connection
        # dropped): the visitor is told `unavailable`, and their next join asks for that place.
        conn.session.join_id = visitor_id if isinstance(exc, UNAVAILABLE) else None
        if isinstance(exc, QueueError):
            raise queue_error(exc, message.type) from None
        raise


async def _join_answered_late(visit: Visit, message: Join) -> bool:
    """A join again after one that Redis did not answer: if that one took a place in the
    same queue, the socket takes it over, as a resume would (True); a place in another queue
    is given up, and the visitor joins afresh (False). While Redis cannot be reached, the
    earlier id is kept for the next try."""
    desk, conn = visit.desk, visit.conn
    earlier = conn.session.join_id
    assert earlier is not None
    record = await desk.queue.visitor(earlier)
    if record is not None and record.get("queue") != message.queue:
        await desk.queue.leave(earlier, "left")
        record = None
    conn.session.join_id = None
    if record is None:
        return False
    conn.session.hold()
    try:
        await _take_over(desk, conn, earlier, record)
    except UNAVAILABLE:
        conn.session.join_id = earlier
        raise
    finally:
        conn.release_held()
    return True


async def resume(visit: Visit, message: Resume) -> None:
    """Takes over the entry a ticket names (after a reload or a dropped connection)."""
    desk, conn = visit.desk, visit.conn
    try:
        visitor_id = desk.tickets.verify(message.ticket)
    except Exception:
        raise CloseSocket(CloseCode.INVALID_TICKET, "invalid_ticket") from None
    record = await desk.queue.visitor(visitor_id)
    if record is None:
        call = await desk.queue.call_record(message.call_id) if message.call_id else None
        conn.perform(conn.session.ended_while_away(visitor_id, message.call_id, call))
        return
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
        if await replay_call(desk, str(record["call"]), visitor=True, agent=True):
            # The page is built afresh: it shows the chat again, after the call_started.
            await send_history(desk, str(record["call"]), desk.keys.visitor_channel(visitor_id))
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
    snapshot = None if offered else await desk.queue.snapshot(queue)
    eta = 0 if snapshot is None else estimate_wait_seconds(position, snapshot)
    queued = session.queued_frame(desk.tickets.issue(vid), position, eta, audio_only, snapshot)
    conn.perform([queued])
    # Re-checks this place and those behind it, not the line.
    desk.positions.mark_dirty(queue, queued.frame["position"])


#: The visitor's message types and what they do.
HANDLERS: dict[type[ClientMessage], Callable[[Visit, Any], Awaitable[None]]] = handler_table(
    join, resume, leave, relay, chat, hangup, callback, rate, refresh_ice, ping
)
