"""What an agent's messages do: one handler per message type (:data:`HANDLERS`), and the
greeting of a console that connects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from humandesk.queue.client import AgentInfo, QueueError
from humandesk.signaling.chat import say, send_history
from humandesk.signaling.connections import AgentConn
from humandesk.signaling.desk import SignalingDesk
from humandesk.signaling.messages import (
    PROTOCOL_VERSION,
    Accept,
    CallbacksPage,
    Chat,
    ClientMessage,
    CloseCallback,
    Decline,
    Hangup,
    Media,
    Notes,
    Ping,
    RefreshIce,
    SetStatus,
    Signal,
    Transfer,
    Wrapup,
    handler_table,
)
from humandesk.signaling.outbound import AgentWelcome, NotesRestored, NotesSaved, Pong, Queues
from humandesk.signaling.refusals import queue_error
from humandesk.signaling.resync import replay_call, tell_agent

__all__ = ["HANDLERS", "Shift", "greet"]

INFINITY = float("inf")


@dataclass(frozen=True)
class Shift:
    """One console socket, as its handlers see it."""

    desk: SignalingDesk
    conn: AgentConn
    agent: AgentInfo


async def set_status(shift: Shift, message: SetStatus) -> None:
    await shift.desk.queue.set_agent_status(shift.agent, message.status)


async def accept(shift: Shift, message: Accept) -> None:
    await shift.desk.queue.accept(shift.agent.name, message.offer_id)


async def decline(shift: Shift, message: Decline) -> None:
    await shift.desk.queue.decline(shift.agent.name, message.offer_id)


async def hangup(shift: Shift, message: Hangup) -> None:
    await shift.desk.queue.end_call(message.call_id, "agent", shift.agent.name, "hangup")


async def wrapup(shift: Shift, message: Wrapup) -> None:
    await shift.desk.queue.wrapup(shift.agent.name, message.action)


async def notes(shift: Shift, message: Notes) -> None:
    await shift.desk.queue.save_notes(
        shift.agent.name, message.call_id, message.notes, message.disposition
    )
    shift.conn.send(NotesSaved(message.call_id).to_wire())


async def transfer(shift: Shift, message: Transfer) -> None:
    await shift.desk.queue.transfer(shift.agent.name, message.call_id, message.queue)


async def close_callback(shift: Shift, message: CloseCallback) -> None:
    await shift.desk.queue.close_callback(
        message.id, shift.agent.name, message.outcome, queues=shift.conn.queues
    )


async def relay(shift: Shift, message: Signal | Media) -> None:
    await shift.desk.relay(shift.conn, message)


async def chat(shift: Shift, message: Chat) -> None:
    await say(shift.desk, shift.conn, message, "agent", shift.agent.name)


async def callbacks_page(shift: Shift, message: CallbacksPage) -> None:
    shift.conn.send(await shift.desk.consoles.callbacks_message(shift.conn.queues, message.offset))


async def refresh_ice(shift: Shift, _message: RefreshIce) -> None:
    shift.conn.send(shift.desk.ice_message("a-" + shift.agent.name))


async def ping(shift: Shift, _message: Ping) -> None:
    shift.conn.send(Pong().to_wire())


#: The agent's message types and what they do: the shift and its calls, then the work around them.
HANDLERS: dict[type[ClientMessage], Callable[[Shift, Any], Awaitable[None]]] = handler_table(
    set_status, accept, decline, hangup, relay, chat, refresh_ice, ping
)
HANDLERS.update(handler_table(wrapup, notes, transfer, close_callback, callbacks_page))


async def handle(shift: Shift, message: ClientMessage) -> None:
    """Runs the handler of an allowed message; the scripts' refusals become errors."""
    try:
        await HANDLERS[type(message)](shift, message)
    except QueueError as exc:
        raise queue_error(exc, message.type) from None


async def _restore_notes(desk: SignalingDesk, conn: AgentConn, call_id: str | None) -> None:
    """A console (re)connecting in a call or its wrap-up gets the notes saved for it."""
    if not call_id:
        return
    saved = await desk.queue.call_record(call_id)
    if saved and (saved.get("notes") or saved.get("disposition")):
        notes = NotesRestored(call_id, saved.get("notes") or "", saved.get("disposition") or "")
        conn.send(notes.to_wire())


async def greet(desk: SignalingDesk, conn: AgentConn, agent: AgentInfo) -> None:
    """Registers a new console and tells it everything it needs to pick up where it was."""
    await desk.register_agent(conn)
    desk_queues = await desk.queue.queue_names(refresh=True)
    rendered = await desk.queue.render(agent=agent.name)
    expires_at = conn.session.expires_at
    welcome = AgentWelcome(
        v=PROTOCOL_VERSION,
        agent={"name": agent.name, "display_name": agent.display_name, "queues": agent.queues},
        status=rendered.state,
        desk_queues=desk_queues,
        ice_servers=desk.ice_servers("a-" + agent.name),
        ice_transport_policy=desk.settings.ice_transport_policy,
        session={
            "expires_at": None if expires_at == INFINITY else expires_at,
            "idle_signout_s": desk.settings.idle_signout_s,
        },
    )
    conn.send(welcome.to_wire())
    tell_agent(conn, rendered)
    await _restore_notes(
        desk, conn, {"in_call": rendered.call, "wrap_up": rendered.last_call}.get(rendered.state)
    )
    # A reloaded console: re-offer the call so the visitor sees the agent again, and the chat.
    call = rendered.call if rendered.state == "in_call" else None
    if call and await replay_call(desk, call, visitor=False, agent=True):
        await send_history(desk, call, desk.keys.agent_channel(agent.name))
    conn.send(Queues(await desk.agent_counts(conn.queues)).to_wire())
    conn.send(await desk.consoles.callbacks_message(conn.queues))
