"""The pure session core (signaling/session.py), tested as websockets tests its protocol:
fed messages and events, checked by the actions it returns. No sockets, no Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from humandesk.queue.waits import QueueSnapshot
from humandesk.signaling.actions import Close, EntryGone, Forget, Send, Watch
from humandesk.signaling.codes import CloseCode, ProtocolError
from humandesk.signaling.messages import Role, parse
from humandesk.signaling.session import AgentPhase, AgentSession, VisitorPhase, VisitorSession

CALL = "5"


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def ice(user: str) -> list[dict[str, Any]]:
    return [{"urls": ["turn:t"], "username": f"99:{user}", "credential": "c"}]


VISITOR_MESSAGES = {
    "join": frame(type="join", name="Ada"),
    "resume": frame(type="resume", ticket="t"),
    "leave": frame(type="leave"),
    "signal": frame(type="signal", call_id=CALL, candidate=None),
    "media": frame(type="media", muted=True, camera_off=False),
    "hangup": frame(type="hangup", call_id=CALL),
    "ping": frame(type="ping"),
    "callback": frame(type="callback", name="Ada", contact="a@b.c"),
    "rate": frame(type="rate", call_id=CALL, score=5),
    "refresh_ice": frame(type="refresh_ice"),
    "chat": frame(type="chat", call_id=CALL, text="order 1234"),
}
ALWAYS_VISITOR = {"ping", "refresh_ice"}
VISITOR_ALLOWED = {
    VisitorPhase.NEW: {"join", "resume", "callback"} | ALWAYS_VISITOR,
    VisitorPhase.WAITING: {"leave", "callback"} | ALWAYS_VISITOR,
    VisitorPhase.IN_CALL: {"signal", "media", "hangup", "chat"} | ALWAYS_VISITOR,
    VisitorPhase.DONE: {"rate"} | ALWAYS_VISITOR,
}


def visitor_in(phase: VisitorPhase) -> VisitorSession:
    session = VisitorSession("c1", ice)
    if phase is VisitorPhase.NEW:
        return session
    session.queued("v1", "support")
    if phase is VisitorPhase.WAITING:
        return session
    session.deliver({"type": "call_started", "call_id": CALL, "_peer": "ada"})
    if phase is VisitorPhase.IN_CALL:
        return session
    session.deliver({"type": "call_ended", "call_id": CALL, "reason": "hangup"})
    return session


AGENT_MESSAGES = {
    "status_available": frame(type="status", status="available"),
    "status_offline": frame(type="status", status="offline"),
    "accept": frame(type="accept", offer_id="3"),
    "decline": frame(type="decline", offer_id="3"),
    "signal": frame(type="signal", call_id=CALL, candidate=None),
    "media": frame(type="media", muted=False, camera_off=False),
    "hangup": frame(type="hangup", call_id=CALL),
    "ping": frame(type="ping"),
    "wrapup": frame(type="wrapup", action="done"),
    "notes": frame(type="notes", call_id=CALL, notes="n"),
    "transfer": frame(type="transfer", call_id=CALL, queue="sales"),
    "close_callback": frame(type="close_callback", id="x"),
    "refresh_ice": frame(type="refresh_ice"),
    "callbacks": frame(type="callbacks", offset=0),
    "chat": frame(type="chat", call_id=CALL, text="see https://example.com/help"),
}
ALWAYS_AGENT = {"ping", "close_callback", "refresh_ice", "callbacks"}
STATUS = {"status_available", "status_offline"}
AGENT_ALLOWED = {
    AgentPhase.OFFLINE: STATUS | ALWAYS_AGENT,
    AgentPhase.AVAILABLE: STATUS | ALWAYS_AGENT,
    AgentPhase.BREAK: STATUS | ALWAYS_AGENT,
    AgentPhase.OFFERED: STATUS | {"accept", "decline"} | ALWAYS_AGENT,
    AgentPhase.IN_CALL: {"status_offline", "signal", "media", "hangup", "notes", "transfer"}
    | {"chat"}
    | ALWAYS_AGENT,
    AgentPhase.WRAP_UP: STATUS | {"wrapup", "notes"} | ALWAYS_AGENT,
}


def agent_in(phase: AgentPhase) -> AgentSession:
    session = AgentSession("c2", "ada", ["support"], ice)
    if phase is AgentPhase.OFFERED:
        session.deliver({"type": "offer", "offer_id": "3"})
    elif phase is AgentPhase.IN_CALL:
        session.deliver({"type": "call_started", "call_id": CALL, "_peer": "v1"})
    elif phase is AgentPhase.WRAP_UP:
        session.deliver({"type": "status", "status": "wrap_up", "call_id": CALL})
    elif phase is not AgentPhase.OFFLINE:
        session.deliver({"type": "status", "status": str(phase)})
    return session


#: Each role: its phases, a session in a given phase, a frame of each kind of message it
#: sends, and the kinds each phase allows.
ROLES: dict[Role, tuple[Any, Callable[[Any], Any], dict[str, str], dict[Any, set[str]]]] = {
    "visitor": (VisitorPhase, visitor_in, VISITOR_MESSAGES, VISITOR_ALLOWED),
    "agent": (AgentPhase, agent_in, AGENT_MESSAGES, AGENT_ALLOWED),
}


@pytest.mark.parametrize(
    ("role", "phase", "kind"),
    [
        (role, phase, kind)
        for role, (phases, _in, messages, _allowed) in ROLES.items()
        for phase in phases
        for kind in sorted(messages)
    ],
)
def test_every_message_in_every_phase(role: Role, phase: Any, kind: str) -> None:
    _phases, session_in, messages, allowed = ROLES[role]
    session = session_in(phase)
    assert session.phase is phase
    message = parse(messages[kind], role)
    if kind in allowed[phase]:
        session.check(message)
    else:
        with pytest.raises(ProtocolError) as refused:
            session.check(message)
        assert refused.value.code == "wrong_state"
        assert refused.value.in_reply_to == message.type  # the kind itself, for visitors


def test_a_visitor_call_from_start_to_rating() -> None:
    session = visitor_in(VisitorPhase.WAITING)
    # Signals of no call of theirs are not forwarded.
    assert session.deliver({"type": "signal", "call_id": CALL}) == []
    started = session.deliver({"type": "call_started", "call_id": CALL, "_peer": "ada"})
    (send,) = started
    assert isinstance(send, Send) and "_peer" not in send.frame
    assert send.frame["ice_servers"] == ice("v-c1")  # minted for this call
    assert session.peer == "ada" and session.phase is VisitorPhase.IN_CALL
    assert session.deliver({"type": "signal", "call_id": "6"}) == []
    assert session.deliver({"type": "call_ended", "call_id": "6"}) == []
    ended = session.deliver({"type": "call_ended", "call_id": CALL, "reason": "hangup"})
    assert ended == [Send({"type": "call_ended", "call_id": CALL, "reason": "hangup"}), Forget()]
    # Told once: a second word of the same end is not forwarded.
    assert session.deliver({"type": "call_ended", "call_id": CALL}) == []
    session.check(parse(VISITOR_MESSAGES["rate"], "visitor"))


def test_a_transfer_puts_the_visitor_in_another_line() -> None:
    session = visitor_in(VisitorPhase.IN_CALL)
    session.position, session.eta = 3, 60
    actions = session.deliver(
        {"type": "call_ended", "call_id": CALL, "reason": "transferred", "queue": "sales"}
    )
    assert actions[1:] == [Watch("sales")]
    assert session.phase is VisitorPhase.WAITING and session.queue == "sales"
    assert (session.position, session.eta) == (None, None)  # a new line, a new place


def test_messages_wait_while_a_join_is_answered() -> None:
    session = VisitorSession("c1", ice)
    session.hold()
    assert session.deliver({"type": "call_started", "call_id": CALL}) == []
    session.queued("v1", "support")
    queued = session.queued_frame("ticket", 2, 30, False)
    assert queued.frame["type"] == "queued" and queued.frame["position"] == 2
    released = session.release()
    assert [a.frame["type"] for a in released if isinstance(a, Send)] == ["call_started"]
    assert session.held is None


def snap(serving: int, handle_s: float = 60.0, available: int = 0) -> QueueSnapshot:
    return QueueSnapshot(
        "support", waiting=5, available=available, serving=serving, handle_s=handle_s
    )


def test_a_place_shown_never_moves_backwards_and_a_longer_wait_says_why() -> None:
    session = visitor_in(VisitorPhase.WAITING)
    three = snap(3)
    assert session.queued_frame("t", 3, 120, False, three).frame["position"] == 3
    # A later place is absorbed; so is a rise within the tolerance (the figure stays).
    assert session.show_place(5, 125, three) == []
    assert session.position == 3 and session.eta == 120
    assert session.show_place(3, 120, three) == []
    # A fan-out this visitor was not part of saw the queue at 2 agents; this one sees 2 too:
    # the reason is worked out against the queue as it was for the figure shown (3 agents).
    grew = session.show_place(2, 300, snap(2))
    assert grew == [
        Send(
            {
                "type": "position",
                "position": 2,
                "eta_seconds": 300,
                "eta_reason": "Fewer agents are free to help right now.",
            },
            bulk=True,
        )
    ]
    # Longer calls, on the same staff: said so.
    [longer] = session.show_place(2, 400, snap(2, handle_s=90))
    assert isinstance(longer, Send)
    assert longer.frame["eta_reason"] == "Conversations are taking a little longer than usual."
    # Nobody serving: no figure at all, and a figure again when someone is back.
    [nobody] = session.show_place(2, None, snap(0))
    assert isinstance(nobody, Send) and nobody.frame["eta_seconds"] is None
    [back] = session.show_place(2, 60, snap(1))
    assert isinstance(back, Send) and back.frame == {
        "type": "position",
        "position": 2,
        "eta_seconds": 60,
    }
    # `queued` after a resume shows no later place or longer wait either.
    assert session.queued_frame("t", 4, 900, False, snap(1)).frame == {
        "type": "queued",
        "visitor_id": "v1",
        "ticket": "t",
        "queue": "support",
        "position": 2,
        "eta_seconds": 60,
        "audio_only": False,
    }


def test_a_gone_entry_ends_the_call_it_was_in_or_closes() -> None:
    in_call = visitor_in(VisitorPhase.IN_CALL)
    assert in_call.deliver({"type": "_lease_gone"}) == [EntryGone(CALL)]
    record = {"visitor_id": "v1", "ended": 1, "end_reason": "hangup", "ended_by": "agent"}
    told = in_call.gone(CALL, record)
    assert told[0] == Send(
        {"type": "call_ended", "call_id": CALL, "reason": "hangup", "by": "agent"}
    )
    assert in_call.gone(CALL, record) == []  # Done: nothing more
    waiting = visitor_in(VisitorPhase.WAITING)
    assert waiting.deliver({"type": "_lease_gone"}) == [EntryGone(None)]
    assert waiting.gone(None, None) == [Forget(), Close(CloseCode.ENTRY_GONE, "entry_gone")]
    assert visitor_in(VisitorPhase.NEW).deliver({"type": "_lease_gone"}) == []


def test_another_socket_replaces_this_one() -> None:
    session = VisitorSession("mine", ice)
    assert session.deliver({"type": "_replaced", "conn": "mine"}) == []
    assert session.deliver({"type": "_replaced", "conn": "theirs"}) == [
        Close(CloseCode.REPLACED, "replaced")
    ]


def test_an_agent_session_expires_renews_and_is_revoked() -> None:
    session = AgentSession("c", "ada", ["support"], ice, epoch=2, expires_at=100.0)
    assert session.expire(99.0) == []
    assert session.deliver({"type": "_session", "epoch": 1, "expires_at": 500}) == []
    assert session.expires_at == 100.0  # an older session's renewal does not count
    session.deliver({"type": "_session", "epoch": 2, "expires_at": 500})
    assert session.expire(200.0) == [] and session.expires_at == 500
    assert session.deliver({"type": "_revoked", "epoch": 2, "reason": "x"}) == []
    revoked = session.deliver({"type": "_revoked", "epoch": 3, "reason": "signed_out"})
    assert revoked == [Close(CloseCode.REVOKED, "signed_out")]
    assert session.closed_for == "signed_out"
    assert session.expire(10_000.0) == []  # one close only
    expired = AgentSession("c", "ada", ["support"], ice, expires_at=1.0)
    assert expired.expire(2.0) == [Close(CloseCode.SESSION_EXPIRED, "session_expired")]


def test_an_agent_call_and_its_wrap_up() -> None:
    session = agent_in(AgentPhase.AVAILABLE)
    (offer,) = session.deliver({"type": "offer", "offer_id": "3"})
    assert session.offer_id == "3" and offer == Send({"type": "offer", "offer_id": "3"})
    session.deliver({"type": "offer_cancelled", "offer_id": "3"})
    assert session.offer_id is None
    (started,) = session.deliver({"type": "call_started", "call_id": CALL, "_peer": "v1"})
    assert isinstance(started, Send) and started.frame["ice_servers"] == ice("a-ada")
    assert session.peer == "v1" and session.last_call_id == CALL
    assert session.deliver({"type": "call_ended", "call_id": "9"}) == []
    session.deliver({"type": "call_ended", "call_id": CALL})
    session.deliver({"type": "status", "status": "wrap_up", "call_id": CALL})
    assert session.phase is AgentPhase.WRAP_UP and session.call_id is None
    session.check(parse(AGENT_MESSAGES["notes"], "agent"))  # the last call's notes


@pytest.mark.parametrize("role", ["visitor", "agent"])
def test_chat_only_for_the_current_call_and_only_its_lines_are_forwarded(role: Role) -> None:
    session: Any = (
        visitor_in(VisitorPhase.IN_CALL) if role == "visitor" else agent_in(AgentPhase.IN_CALL)
    )
    session.check(parse(frame(type="chat", call_id=CALL, text="hi"), role))
    with pytest.raises(ProtocolError) as refused:
        session.check(parse(frame(type="chat", call_id="6", text="hi"), role))
    assert (refused.value.code, refused.value.in_reply_to) == ("wrong_state", "chat")
    line = {"type": "chat", "call_id": CALL, "seq": 1, "from": "agent", "text": "hi", "at": 1}
    assert session.deliver(line) == [Send(line)]
    history = {"type": "chat_history", "call_id": CALL, "messages": [line]}
    assert session.deliver(history) == [Send(history)]
    # Another call's lines never reach this socket.
    assert session.deliver({**line, "call_id": "6"}) == []
    assert session.deliver({**history, "call_id": "6"}) == []


def test_a_chat_line_is_checked_field_by_field() -> None:
    from humandesk.signaling.messages import Chat

    ok = parse(frame(type="chat", call_id=CALL, text="  two\nlines  "), "visitor")
    assert isinstance(ok, Chat) and ok.text == "two\nlines"
    for bad in (
        frame(type="chat", call_id=CALL, text="   "),
        frame(type="chat", call_id=CALL, text="x" * 1001),
        frame(type="chat", call_id=CALL),
        frame(type="chat", text="hi"),
        frame(type="chat", call_id=CALL, text=5),
    ):
        with pytest.raises(ProtocolError) as refused:
            parse(bad, "agent")
        assert refused.value.code == "bad_message"
