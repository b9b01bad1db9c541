"""What a socket may have missed, delivered again: after the hub's pub/sub connection was
lost (places, statuses, offers and calls re-read) and when a party reconnects into a call
(``call_started`` replayed, so both sides negotiate afresh).

Every payload is the one the queue's scripts rendered (:meth:`DeskQueue.render`); nothing
here writes a message of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from humandesk.queue.client import Rendered
from humandesk.signaling.connections import AgentConn, VisitorConn
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbox import spawn

if TYPE_CHECKING:
    from humandesk.signaling.desk import SignalingDesk

__all__ = ["replay_call", "resync", "tell_agent"]


def resync(desk: SignalingDesk) -> None:
    """After a pub/sub reconnect: messages may have been lost, so re-read what matters:
    places in line, each agent's status and offer, and the ``call_started`` of a call
    that began while the hub was away (a call's end is found by the heartbeat)."""
    desk.outage.recovered()
    for queue in list(desk.positions.watched):
        desk.positions.mark_dirty(queue)
    for conn in list(desk.agents.values()):
        spawn(_resync_agent(desk, conn))
    for visitor in list(desk.visitors.values()):
        spawn(_resync_visitor(desk, visitor))


async def _resync_agent(desk: SignalingDesk, conn: AgentConn) -> None:
    try:
        rendered = await desk.queue.render(agent=conn.name)
        tell_agent(conn, rendered)
        call = rendered.call if rendered.state == "in_call" else None
        if call and conn.session.call_id != call:
            await _tell_call(desk, conn, call, offerer=True)
    except UNAVAILABLE as exc:
        desk.outage.failed(exc)


async def _resync_visitor(desk: SignalingDesk, conn: VisitorConn) -> None:
    visitor_id = conn.session.visitor_id
    if visitor_id is None:
        return
    try:
        record = await desk.queue.visitor(visitor_id)
        if record is None or record.get("state") != "in_call" or not record.get("call"):
            return
        if conn.session.call_id != record["call"]:
            await _tell_call(desk, conn, str(record["call"]), offerer=False)
    except UNAVAILABLE as exc:
        desk.outage.failed(exc)


async def _tell_call(
    desk: SignalingDesk, conn: AgentConn | VisitorConn, call_id: str, *, offerer: bool
) -> None:
    """Delivers a call's ``call_started`` that the socket never got, as a replay."""
    rendered = await desk.queue.render(call=call_id)
    if rendered.call_started is not None:
        conn.deliver({**rendered.call_started[0 if offerer else 1], "replay": True})


def tell_agent(conn: AgentConn, rendered: Rendered) -> None:
    """Tells a console the agent's status and pending offer (after a connect or a lost
    pub/sub connection), as the scripts render them."""
    if rendered.status is not None:
        conn.deliver(rendered.status)
    if rendered.offer is not None:
        conn.deliver(rendered.offer)


async def replay_call(desk: SignalingDesk, call_id: str, *, visitor: bool, agent: bool) -> bool:
    """Re-sends ``call_started`` after a reconnect, so the parties negotiate afresh.

    The agent, as offerer, then makes a new offer; the visitor's page notices the new
    DTLS fingerprint and answers with a new connection. Returns False if the call ended.
    """
    rendered = await desk.queue.render(call=call_id)
    if rendered.call_started is None:
        return False
    offerer, answerer = rendered.call_started
    if agent:
        channel = desk.keys.agent_channel(str(rendered.agent))
        await desk.hub.publish(channel, {**offerer, "replay": True})
    if visitor:
        channel = desk.keys.visitor_channel(str(rendered.visitor))
        await desk.hub.publish(channel, {**answerer, "replay": True})
    return True
