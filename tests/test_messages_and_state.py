"""The pure protocol core: message parsing and the call state machine, without I/O."""

from __future__ import annotations

import json

import pytest

from humandesk.signaling.messages import (
    MAX_SDP_CHARS,
    Accept,
    Join,
    ProtocolError,
    SetStatus,
    Signal,
    parse,
)
from humandesk.signaling.state import AgentPhase, AgentState, VisitorPhase, VisitorState


def frame(**fields: object) -> str:
    return json.dumps(fields)


def error_code(raw: str | bytes, role: str = "visitor") -> str:
    with pytest.raises(ProtocolError) as err:
        parse(raw, role)  # type: ignore[arg-type]
    return err.value.code


def test_join_is_normalised() -> None:
    msg = parse(frame(type="join", name="  Grace   Hopper ", topic="a\n b"), "visitor")
    assert msg == Join(queue="support", name="Grace Hopper", topic="a b", audio_only=False, page="")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"type": "ping"}', "bad_json"),
        ("null", "bad_json"),
        ('"join"', "bad_json"),
        (frame(), "bad_message"),
        (frame(type="join"), "bad_message"),
        (frame(type="join", name="   "), "bad_message"),
        (frame(type="join", name="x", queue=""), "bad_message"),
        (frame(type="join", name="x", topic=5), "bad_message"),
        (frame(type="resume"), "bad_message"),
        (frame(type="status", status="available"), "unknown_type"),
        (frame(type="signal", call_id="1"), "bad_message"),
        (frame(type="signal", call_id="1", candidate=None, description={}), "bad_message"),
        (
            frame(type="signal", call_id="1", description={"type": "pranswer", "sdp": ""}),
            "bad_message",
        ),
        (frame(type="signal", call_id="1", candidate={"candidate": 1}), "bad_message"),
        (frame(type="signal", call_id="1", candidate={"candidate": "x" * 2000}), "too_large"),
        (
            frame(type="signal", call_id="1", candidate={"candidate": "c", "sdpMLineIndex": True}),
            "bad_message",
        ),
        (frame(type="signal", call_id="", candidate=None), "bad_message"),
        (frame(type="signal", call_id=["1"], candidate=None), "bad_message"),
        (
            frame(
                type="signal",
                call_id="1",
                description={"type": "offer", "sdp": "v" * (MAX_SDP_CHARS + 1)},
            ),
            "too_large",
        ),
        (frame(type="media", muted=1, camera_off=False), "bad_message"),
    ],
)
def test_bad_visitor_frames(raw: str | bytes, code: str) -> None:
    assert error_code(raw) == code


def test_agent_messages() -> None:
    assert parse(frame(type="status", status="break"), "agent") == SetStatus(status="break")
    assert parse(frame(type="accept", offer_id=12), "agent") == Accept(offer_id="12")
    assert error_code(frame(type="status", status="asleep"), "agent") == "bad_message"
    assert error_code(frame(type="join", name="x"), "agent") == "unknown_type"


def test_signal_keeps_only_known_candidate_fields() -> None:
    msg = parse(
        frame(
            type="signal",
            call_id="7",
            candidate={
                "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
                "usernameFragment": "abcd",
                "evil": "<script>",
            },
        ),
        "visitor",
    )
    assert isinstance(msg, Signal)
    assert msg.to_wire()["candidate"] == {
        "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    }
    end = parse(frame(type="signal", call_id="7", candidate=None), "visitor")
    assert end.to_wire() == {"type": "signal", "call_id": "7", "candidate": None}


def test_visitor_state_machine() -> None:
    state = VisitorState()
    join = parse(frame(type="join", name="x"), "visitor")
    leave = parse(frame(type="leave"), "visitor")
    state.check(join)
    with pytest.raises(ProtocolError):
        state.check(leave)
    state.queued("v1", "support")
    assert state.phase is VisitorPhase.WAITING
    with pytest.raises(ProtocolError):
        state.check(join)
    state.check(leave)
    # Signals for a call are refused until the call starts, and only for that call.
    signal = parse(frame(type="signal", call_id="5", candidate=None), "visitor")
    with pytest.raises(ProtocolError):
        state.check(signal)
    assert state.apply({"type": "signal", "call_id": "5"}) is False
    assert state.apply({"type": "call_started", "call_id": "5"}) is True
    state.check(signal)
    with pytest.raises(ProtocolError):
        state.check(parse(frame(type="signal", call_id="6", candidate=None), "visitor"))
    assert state.apply({"type": "signal", "call_id": "6"}) is False
    assert state.apply({"type": "call_ended", "call_id": "6"}) is False
    assert state.phase is VisitorPhase.IN_CALL
    assert state.apply({"type": "call_ended", "call_id": "5"}) is True
    assert state.phase is VisitorPhase.DONE


def test_agent_state_machine() -> None:
    state = AgentState()
    accept = parse(frame(type="accept", offer_id="3"), "agent")
    with pytest.raises(ProtocolError):
        state.check(accept)
    state.apply({"type": "status", "status": "available"})
    state.apply({"type": "offer", "offer_id": "3"})
    assert state.phase is AgentPhase.OFFERED and state.offer_id == "3"
    state.check(accept)
    state.apply({"type": "status", "status": "in_call"})
    state.apply({"type": "call_started", "call_id": "3"})
    assert state.call_id == "3" and state.offer_id is None
    with pytest.raises(ProtocolError):
        state.check(parse(frame(type="status", status="break"), "agent"))
    state.check(parse(frame(type="status", status="offline"), "agent"))
    state.apply({"type": "call_ended", "call_id": "3"})
    state.apply({"type": "status", "status": "available"})
    assert state.phase is AgentPhase.AVAILABLE and state.call_id is None
