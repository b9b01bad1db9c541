"""The pure protocol core: message parsing and the call state machine, without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humandesk.signaling.codes import MAX_JSON_DEPTH, ProtocolError
from humandesk.signaling.fields import MAX_SDP_CHARS
from humandesk.signaling.jsonwire import MAX_SAFE_INTEGER, holds_lone_surrogate, load_json
from humandesk.signaling.messages import (
    Accept,
    Join,
    Ping,
    SetStatus,
    Signal,
    parse,
)


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
        (frame(type="media", muted=False, camera_off=False, screen="yes"), "bad_message"),
    ],
)
def test_bad_visitor_frames(raw: str | bytes, code: str) -> None:
    assert error_code(raw) == code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # Lone surrogates, escaped (as JSON.stringify writes a cut emoji) or raw, anywhere.
        ('{"type":"join","name":"\\ud800"}', "bad_message"),
        ('{"type":"join","name":"A","topic":"x\\udfff"}', "bad_message"),
        ('{"type":"join","name":"\ud800"}', "bad_message"),
        ('{"type":"callback","name":"A","contact":"12345","note":"\\ude00\\ud83d"}', "bad_message"),
        ('{"type":"ping","\\ud800":1}', "bad_message"),
        ('{"type":"ping","x":[{"y":"\\udbff"}]}', "bad_message"),
        ('{"type":"\\ud800"}', "bad_message"),
        # Invalid escapes, constants that are not JSON, numbers no parser holds.
        ('{"type":"ping","x":"\\x41"}', "bad_json"),
        ('{"type":"ping","x":"\\u12"}', "bad_json"),
        ('{"type":"ping","x":NaN}', "bad_json"),
        ('{"type":"ping","x":-Infinity}', "bad_json"),
        ('{"type":"ping","x":1e999999}', "bad_json"),
        ('{"type":"rate","call_id":"1","score":1E400}', "bad_json"),
        ('{"type":"ping","x":' + "9" * 10_000 + "}", "bad_json"),
        ('{"type":"ping","x":' + str(MAX_SAFE_INTEGER + 2) + "}", "bad_json"),
        ('{"type":"ping","x":-' + str(MAX_SAFE_INTEGER + 2) + "}", "bad_json"),
        # Nesting.
        ("[" * 1_000 + "]" * 1_000, "too_deep"),
        ('{"type":"ping","x":' + "[" * 30_000 + "]" * 30_000 + "}", "too_deep"),
        ('{"type":"ping","x":' + '{"a":' * 40 + "1" + "}" * 40 + "}", "too_deep"),
        ("[" * 5_000, "too_deep"),
    ],
)
def test_frames_that_are_not_i_json(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse(raw, "visitor")
    assert err.value.code == code
    if code == "bad_message":
        assert "lone surrogate" in err.value.message


def test_the_error_names_the_field_with_a_lone_surrogate() -> None:
    with pytest.raises(ProtocolError) as err:
        parse('{"type":"join","name":"A","topic":"x\\udfff"}', "visitor")
    assert err.value.message.startswith("'topic'") and err.value.in_reply_to == "join"
    with pytest.raises(ProtocolError) as err:
        parse('{"type":"\\ud800x"}', "visitor")
    assert err.value.in_reply_to is None  # never echoed back


def test_valid_unicode_numbers_and_depth_pass() -> None:
    # A surrogate pair is one character (an emoji), not two lone halves.
    msg = parse('{"type":"join","name":"Ana \\ud83d\\ude00","topic":"\\u00e9\\u0000"}', "visitor")
    assert isinstance(msg, Join) and msg.name == "Ana \U0001f600" and msg.topic == "\u00e9\u0000"
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert parse(json.dumps({"type": "ping", "x": nested}), "visitor") == Ping()
    assert error_code(json.dumps({"type": "ping", "x": [nested]})) == "too_deep"
    # Brackets inside strings are text, not nesting.
    assert parse(json.dumps({"type": "ping", "x": "[{" * 1_000}), "visitor") == Ping()
    assert parse(json.dumps({"type": "ping", "x": -MAX_SAFE_INTEGER, "y": -1.5e300}), "visitor")
    with pytest.raises(ProtocolError) as err:
        parse(json.dumps({"type": "ping", "x": [[[[1]]]]}), "visitor", max_depth=4)
    assert err.value.code == "too_deep"


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=60,
)


@given(value=JSON, limit=st.integers(1, 12))
def test_the_depth_limit_counts_nesting_exactly(value: Any, limit: int) -> None:
    text = json.dumps(value)
    if _depth(value) > limit:
        with pytest.raises(ProtocolError) as err:
            load_json(text, max_depth=limit)
        assert err.value.code == "too_deep"
    else:
        assert load_json(text, max_depth=limit) == value


@given(
    text=st.one_of(
        st.text(st.sampled_from('[]{}",:1 \\'), max_size=200),
        st.integers(30, 3_000).map(lambda n: "[[]," * n),  # cut short, openers never in a row
    )
)
def test_any_text_parses_or_is_refused_with_a_documented_code(text: str) -> None:
    try:
        load_json(text)
    except ProtocolError as exc:
        assert exc.code in ("bad_json", "too_deep")


@given(text=st.text(st.characters(categories=["Cs"]) | st.characters(), max_size=8))
def test_lone_surrogates_are_exactly_what_utf8_cannot_encode(text: str) -> None:
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    assert holds_lone_surrogate({"k": [text]}) is not encodable
    assert holds_lone_surrogate({text: 1}) is not encodable


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
