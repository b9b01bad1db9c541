"""Chat in a call, through the desk: a line goes to Redis (chat.lua stores it in order on the
call record and publishes it to the other party), so it survives a reconnect, reaches the
call record and its CSV, and is erased with the visitor's data.

The session has already checked that the line is for the sender's own live call
(session.py, as for ``signal``); the script checks it again against Redis and bounds the
call's transcript (``chat_full``).
"""

from __future__ import annotations

from typing import Literal

from humandesk.queue.client import QueueError
from humandesk.signaling.connections import AgentConn, VisitorConn
from humandesk.signaling.desk import SignalingDesk
from humandesk.signaling.messages import Chat
from humandesk.signaling.outbound import ChatHistory
from humandesk.signaling.refusals import queue_error

__all__ = ["say", "send_history"]


async def say(
    desk: SignalingDesk,
    conn: VisitorConn | AgentConn,
    message: Chat,
    sender: Literal["visitor", "agent"],
    party: str,
) -> None:
    """Stores and relays one line; the sender gets it back with its ``seq`` and time."""
    try:
        line = await desk.queue.chat(
            message.call_id,
            sender,
            party,
            message.text,
            max_messages=desk.settings.limits.chat_messages,
        )
    except QueueError as exc:
        raise queue_error(exc, message.type) from None
    conn.send(line)


async def send_history(desk: SignalingDesk, call_id: str, channel: str) -> None:
    """The call's transcript so far, published on a party's own channel after its replayed
    ``call_started`` (so the page, built afresh, shows the chat again, in order)."""
    lines = await desk.queue.transcript(call_id)
    if lines:
        await desk.hub.publish(channel, ChatHistory(call_id, lines).to_wire())
