"""Both WebSockets and every HTTP endpoint, fed generated input (hypothesis).

Whatever a client sends, the desk answers with a documented error or a documented close:
never close 1011, never HTTP 500, never a logged traceback. A bad frame leaves its socket
open (until the documented error-count close), and a visitor who was waiting before the
fuzzing keeps their place through all of it. The generators cover arbitrary JSON values,
lone surrogates (escaped and raw), deep nesting, numbers no parser holds, random field types
for every message type of signaling/messages.py, and random bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import typing
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humandesk.server.app import ACCOUNTS, QUEUE, SIGNER
from humandesk.server.auth import SESSION_COOKIE
from humandesk.signaling import messages
from humandesk.signaling.codes import MAX_JSON_DEPTH, ProtocolError
from humandesk.signaling.messages import (
    MAX_ERRORS_PER_SOCKET,
    MAX_FRAME_BYTES,
    Ping,
    Resume,
    parse,
)

from conftest import REPO, DeskClient
from helpers import (
    Peer,
    answering_agent,
    open_agent,
    open_visitor,
    origin_of,
    raw_http,
)

Client = TestClient[Any, Any]
# Bounded: each test runs a few hundred examples in seconds. The desk, its bystander and the
# agent's call are function-scoped fixtures shared by every example on purpose: the fuzzing
# must not move a place that was taken before it began.
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
BYSTANDER_QUEUE = "bystanders"  # a queue no generator names and the agent does not serve


def _documented(section: str) -> set[str]:
    """The first column of a table in a section of docs/protocol.md."""
    text = (REPO / "docs" / "protocol.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `?([a-z_0-9]+)`? \|", body, re.MULTILINE)
    return set(rows[1:])  # the first row is the table's header


ERROR_CODES = _documented("Errors")
CLOSE_CODES = {int(code) for code in _documented("Close codes")} - {1011}


# Generators --------------------------------------------------------------------------------


class Raw(str):
    """JSON text put into a frame as it is: tokens json.dumps never writes."""


def dump(value: Any) -> str:
    """JSON text of a generated value, with its Raw parts verbatim (ASCII: lone surrogates
    become \\u escapes, as a browser's JSON.stringify writes them)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


RAW_TOKENS = st.sampled_from(
    [
        "1e999999",
        "-1e999999",
        "1E400",
        "9" * 10_000,
        "-" + "9" * 4_000,
        "9007199254740993",
        "123456789012345678901234567890",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e-999999",
        '"\\ud800"',
        '"a\\udfff\\ud800b"',
        '"\\ud83d"',
        '"\\ude00\\ud83d"',
        '"\\x41"',
        '"\\u12"',
        '"\\u0000"',
    ]
).map(Raw)
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
TEXTS = st.one_of(
    st.text(max_size=20),
    st.text(st.one_of(st.characters(), SURROGATES), min_size=1, max_size=12),
    st.sampled_from(
        [
            *("", " ", "support", "sales", "nope", "ada", "available", "break", "offline"),
            *("extend", "done", "offer", "answer", "x" * 81, "y" * 600, "=cmd|' /C calc'!A0"),
        ]
    ),
)
IDS = st.one_of(st.integers(-2, 40).map(str), st.integers(-2, 40), TEXTS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXTS, IDS, RAW_TOKENS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=8,
)
DESCRIPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["offer", "answer"]) | JSON_VALUES,
        "sdp": st.just("v=0\r\n") | TEXTS | JSON_VALUES,
    },
)
CANDIDATES = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "candidate": TEXTS | JSON_VALUES,
        "sdpMid": TEXTS | JSON_VALUES,
        "sdpMLineIndex": st.integers(-1, 70) | JSON_VALUES,
        "usernameFragment": TEXTS | JSON_VALUES,
    },
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "description": DESCRIPTIONS | JSON_VALUES,
    "candidate": CANDIDATES | JSON_VALUES,
    "score": st.integers(-1, 7) | JSON_VALUES,
}
ANY_FIELD = st.one_of(TEXTS, IDS, JSON_VALUES)
# Every client message type of the schema, with the names of its fields.
MESSAGE_FIELDS: dict[str, list[str]] = {
    cls.__dataclass_fields__["type"].default: [
        f.name for f in dataclasses.fields(cls) if f.name not in ("type", "has_candidate")
    ]
    for cls in typing.get_args(messages.ClientMessage)
}


def message(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A message of one type with any subset of its fields, each of any JSON type."""
    optional = {name: FIELD_VALUES.get(name, ANY_FIELD) for name in MESSAGE_FIELDS[kind]}
    return st.fixed_dictionaries({"type": st.just(kind)}, optional={**optional, "x": JSON_VALUES})


@dataclasses.dataclass(frozen=True)
class Frame:
    data: str | bytes
    opcode: WSMsgType  # TEXT frames with bytes are not valid UTF-8

    def __repr__(self) -> str:
        data = self.data if len(self.data) <= 200 else self.data[:200]
        return f"Frame({data!r}{'...' if data is not self.data else ''}, {self.opcode.name})"


def _deep(depth: int, style: int) -> str:
    inner = (
        "[" * depth + "]" * depth,
        '{"a":' * depth + "1" + "}" * depth,
        "[" * depth,
        '[{"b":' * (depth // 2) + "0" + "}]" * (depth // 2),
    )[style]
    return inner if style == 2 else '{"type":"ping","x":' + inner + "}"


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def frames(role: str) -> st.SearchStrategy[Frame]:
    kinds = sorted(messages.VISITOR_TYPES if role == "visitor" else messages.AGENT_TYPES)
    typed = st.sampled_from(kinds).flatmap(message)
    text = st.one_of(
        typed.map(dump),
        typed.map(dump),
        st.tuples(typed.map(dump), st.integers(0, 200)).map(lambda t: t[0][: t[1]]),
        JSON_VALUES.map(dump),
        st.builds(_deep, st.integers(MAX_JSON_DEPTH - 2, 30_000), st.integers(0, 3)),
        st.text(max_size=60),
        st.just("x" * (MAX_FRAME_BYTES + 1)),
    ).map(lambda text: Frame(text, WSMsgType.TEXT))
    not_utf8 = st.one_of(
        # A raw (not escaped) lone surrogate in a frame's text is not UTF-8.
        typed.map(lambda m: json.dumps(m, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        st.binary(min_size=1, max_size=40),
    ).filter(_not_utf8)
    return st.one_of(
        text,
        st.binary(max_size=80).map(lambda b: Frame(b, WSMsgType.BINARY)),
        not_utf8.map(lambda b: Frame(b, WSMsgType.TEXT)),
    )


# Driving a socket --------------------------------------------------------------------------


def _would_parse_as(frame: Frame, role: str) -> type | None:
    if not isinstance(frame.data, str):
        return None
    try:
        return type(parse(frame.data, role))  # type: ignore[arg-type]
    except ProtocolError:
        return None


async def exchange(peer: Peer, frame: Frame, role: str) -> tuple[list[dict[str, Any]], int | None]:
    """Sends one frame and then a ping; returns what came back before the ping's pong (the
    socket is open), or before the socket closed and the close code."""
    ws = peer.ws
    if isinstance(frame.data, bytes):
        await ws.send_frame(frame.data, frame.opcode)
    else:
        await ws.send_str(frame.data)
    await ws.send_str('{"type":"ping"}')
    pongs = 2 if _would_parse_as(frame, role) is Ping else 1
    got: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=15)
        if msg.type is WSMsgType.TEXT:
            data = json.loads(msg.data)
            if data.get("type") == "pong":
                pongs -= 1
                if not pongs:
                    return got, None
            else:
                got.append(data)
        elif msg.type is WSMsgType.CLOSE:
            return got, int(msg.data)
        elif msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
            return got, ws.close_code


async def fuzz_socket(peer: Peer, role: str, prior_errors: int, batch: list[Frame]) -> None:
    """Sends ``prior_errors`` bad frames, then the batch; checks every answer and close."""
    errors = 0
    for _ in range(prior_errors):
        await peer.ws.send_str("{")
    if prior_errors:
        got, closed = await exchange(peer, Frame('{"type":"ping"}', WSMsgType.TEXT), role)
        codes = [m["code"] for m in got if m.get("type") == "error"]
        assert closed is None and codes == ["bad_json"] * prior_errors
        errors = prior_errors
    for frame in batch:
        got, closed = await exchange(peer, frame, role)
        answers = [m for m in got if m.get("type") == "error"]
        assert all(m["code"] in ERROR_CODES for m in answers), (frame, answers)
        errors += len(answers)
        assert errors <= MAX_ERRORS_PER_SOCKET
        if closed is None:
            continue  # the socket is open: its pong came back
        size = len(frame.data if isinstance(frame.data, bytes) else frame.data.encode())
        justified = {
            1000: any(m.get("type") == "left" for m in got),
            1007: frame.opcode is WSMsgType.TEXT and isinstance(frame.data, bytes),
            1008: errors == MAX_ERRORS_PER_SOCKET,
            1009: size > MAX_FRAME_BYTES,
            4001: _would_parse_as(frame, role) is Resume,
            4004: _would_parse_as(frame, role) is Resume,
        }
        assert closed in CLOSE_CODES and justified.get(closed), (closed, frame, got)
        return


async def read_all(peer: Peer) -> None:
    """Keeps reading a socket (which also answers the desk's WebSocket pings)."""
    async for msg in peer.ws:
        if msg.type is WSMsgType.TEXT:
            peer.seen.append(json.loads(msg.data))


class Bystander:
    """A visitor waiting since before the fuzzing, reading their socket all along."""

    def __init__(self, peer: Peer, visitor_id: str) -> None:
        self.peer = peer
        self.visitor_id = visitor_id
        self.reader = asyncio.create_task(read_all(peer))

    async def check(self, client: Client) -> None:
        queue = client.app[QUEUE]
        assert await queue.position(self.visitor_id) == 1
        record = await queue.visitor(self.visitor_id)
        assert record is not None and record["state"] == "waiting"
        assert not self.reader.done(), self.peer.ws.close_code
        moves = [m["position"] for m in self.peer.seen if m.get("type") == "position"]
        assert all(p == 1 for p in moves), moves


async def add_bystander(client: Client) -> Bystander:
    peer = await open_visitor(client)
    await peer.send({"type": "join", "queue": BYSTANDER_QUEUE, "name": "Bystander"})
    queued = await peer.expect("queued")
    assert queued["position"] == 1
    return Bystander(peer, queued["visitor_id"])


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing logged an error during this example (the log is cleared for the next)."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.clear()
    assert not bad, [(r.name, r.getMessage(), (r.exc_text or "")[-2000:]) for r in bad]


# Fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def client(desk_client: DeskClient) -> AsyncIterator[Client]:
    c = await desk_client(
        queues=("support", "sales", BYSTANDER_QUEUE),
        trusted_proxies=("127.0.0.1",),  # so X-Forwarded-For reaches the login throttle
        metrics_token="fuzz-metrics-token",
    )
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    yield c


@pytest.fixture
async def bystander(client: Client) -> AsyncIterator[Bystander]:
    watcher = await add_bystander(client)
    yield watcher
    watcher.reader.cancel()


# The sockets -------------------------------------------------------------------------------

PRIOR_ERRORS = st.sampled_from([0, 0, 0, 0, MAX_ERRORS_PER_SOCKET - 3, MAX_ERRORS_PER_SOCKET - 1])


async def fuzz_new_socket(
    client: Client,
    bystander: Bystander,
    caplog: pytest.LogCaptureFixture,
    role: str,
    prior: int,
    batch: list[Frame],
) -> None:
    """Fuzzes a socket of ``role`` opened for this example; then the bystander is still
    served and nothing logged an error."""
    caplog.clear()
    peer = await (open_visitor if role == "visitor" else open_agent)(client)
    try:
        await fuzz_socket(peer, role, prior, batch)
    finally:
        await peer.ws.close()
    await bystander.check(client)
    no_tracebacks(caplog)


@FUZZ
@given(prior=PRIOR_ERRORS, batch=st.lists(frames("visitor"), min_size=1, max_size=4))
async def test_visitor_socket_survives_any_frame(
    client: Client,
    bystander: Bystander,
    caplog: pytest.LogCaptureFixture,
    prior: int,
    batch: list[Frame],
) -> None:
    await fuzz_new_socket(client, bystander, caplog, "visitor", prior, batch)


@pytest.fixture
async def agent_in_call(client: Client) -> AsyncIterator[Peer]:
    """ada, signed in and in a call with a visitor of "support" (whose socket is read)."""
    caller = await open_visitor(client)
    await caller.send({"type": "join", "queue": "support", "name": "Caller"})
    await caller.expect("queued")
    agent, _offer, _call = await answering_agent(client)
    await agent.ws.close()
    reader = asyncio.create_task(read_all(caller))
    yield caller
    reader.cancel()


@FUZZ
@given(prior=PRIOR_ERRORS, batch=st.lists(frames("agent"), min_size=1, max_size=4))
async def test_agent_socket_survives_any_frame(
    client: Client,
    bystander: Bystander,
    agent_in_call: Peer,
    caplog: pytest.LogCaptureFixture,
    prior: int,
    batch: list[Frame],
) -> None:
    await fuzz_new_socket(client, bystander, caplog, "agent", prior, batch)


# HTTP --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    target: str  # ASCII: the path and query, percent-encoded
    headers: tuple[tuple[str, bytes], ...]
    body: bytes
    content_length: int | None  # None: the body's length

    def __repr__(self) -> str:
        body = self.body[:200] + (b"..." if len(self.body) > 200 else b"")
        return (
            f"Request({self.method} {self.target[:300]}, {self.headers!r}, {body!r}, "
            f"{self.content_length})"
        )


def _encoded(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


SEGMENTS = st.one_of(
    st.sampled_from(["support", "sales", BYSTANDER_QUEUE, "nope", "..", ".", "%", "widget.js"]),
    st.text(st.one_of(st.characters(), SURROGATES), max_size=40),
    st.just("a" * 2_000),
)
QUERY_VALUES = st.one_of(
    st.sampled_from(
        [
            *("", "0", "1", "-1", "nan", "inf", "-inf", "1e400", "1e5", "²", "٣", "9" * 5_000),
            *("99999999999999999999999", "0001-01-01", "9999-12-31T23:59:59+14:00"),
            *("2024-02-30", "2024-01-01T00:00:00Z", "support", "https://shop.example"),
            *('"><script>alert(1)</script>', "http://[::1]:99999", "javascript:alert(1)"),
        ]
    ),
    st.text(st.one_of(st.characters(), SURROGATES), max_size=30),
    st.integers().map(str),
    st.floats().map(str),
)
QUERY_NAMES = st.sampled_from(["since", "until", "threshold", "queue", "host"]) | st.text(
    max_size=8
)
HEADER_BYTES = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128)
)


def _paths(app_paths: list[str]) -> st.SearchStrategy[str]:
    def fill(template: str, segment: str) -> str:
        if "{" in template:
            return re.sub(r"\{[^}]+\}", _encoded(segment), template)
        if template.startswith("/static"):
            return "/static/" + _encoded(segment)
        return template

    known = st.builds(fill, st.sampled_from(app_paths), SEGMENTS)
    other = st.lists(SEGMENTS, max_size=3).map(lambda s: "/" + "/".join(map(_encoded, s)))
    return st.one_of(known, known, known, other)


def requests(app_paths: list[str], token: str) -> st.SearchStrategy[Request]:
    query = st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=3).map(
        lambda pairs: "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in pairs)
    )
    # Within the 8 KiB request line aiohttp parses (longer ones are refused before the app).
    target = st.builds(lambda p, q: p + ("?" + q if q else ""), _paths(app_paths), query).map(
        lambda t: t[:8_000]
    )
    json_bodies = st.one_of(
        st.fixed_dictionaries(
            {}, optional={"username": ANY_FIELD | st.just("ada"), "password": ANY_FIELD}
        ).map(dump),
        JSON_VALUES.map(dump),
        st.builds(_deep, st.integers(MAX_JSON_DEPTH - 2, 3_000), st.integers(0, 3)),
    ).map(lambda text: text.encode())
    raw_bodies = st.one_of(
        st.fixed_dictionaries({"username": TEXTS, "password": TEXTS}).map(
            lambda m: json.dumps(m, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=200),
        st.just(b" " * 5_000),
    )
    headers = st.lists(
        st.one_of(
            st.tuples(st.just("Cookie"), st.just(f"{SESSION_COOKIE}={token}".encode())),
            st.tuples(
                st.just("Cookie"), HEADER_BYTES.map(lambda b: SESSION_COOKIE.encode() + b"=" + b)
            ),
            st.tuples(
                st.sampled_from(["Origin", "X-Forwarded-For", "Host", "Content-Type", "Upgrade"]),
                HEADER_BYTES,
            ),
            st.tuples(st.just("Upgrade"), st.just(b"websocket")),
            st.tuples(st.just("Authorization"), HEADER_BYTES.map(lambda b: b"Bearer " + b)),
            st.tuples(st.just("X-Forwarded-For"), st.sampled_from([b"203.0.113.9", b"::1"])),
        ),
        max_size=4,
        unique_by=lambda h: h[0],
    )
    return st.builds(
        Request,
        method=st.sampled_from(["GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE"]),
        target=target,
        headers=headers.map(tuple),
        body=json_bodies | raw_bodies | st.just(b""),
        content_length=st.none() | st.none() | st.just(10**12),
    )


async def send(client: Client, request: Request) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own, written byte for byte."""
    names = {name.lower() for name, _ in request.headers}
    lines = [f"{request.method} {request.target} HTTP/1.1".encode()]
    if "host" not in names:
        lines.append(f"Host: {client.host}:{client.port}".encode())
    if "origin" not in names:
        lines.append(f"Origin: {origin_of(client)}".encode())
    lines += [name.encode() + b": " + value for name, value in request.headers]
    length = len(request.body) if request.content_length is None else request.content_length
    lines += [f"Content-Length: {length}".encode(), b"Connection: close"]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + request.body
    return await raw_http(client, data, head=request.method == "HEAD")


@FUZZ
@given(data=st.data())
async def test_http_endpoints_answer_any_request(
    client: Client, bystander: Bystander, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    caplog.clear()
    paths = sorted({r.canonical for r in client.app.router.resources()})
    token = client.app[SIGNER].agent_session("ada")
    request = data.draw(requests(paths, token))
    status, headers, body = await send(client, request)
    assert status < 500, (request, status, body[:300])
    assert headers.get("x-content-type-options") == "nosniff", (request, status, headers)
    if request.target.startswith("/api/") and status >= 400 and request.method != "HEAD":
        # API refusals are JSON with an error code (docs: README, docs/protocol.md).
        assert isinstance(json.loads(body)["error"], str), (request, status, body[:300])
    await bystander.check(client)
    no_tracebacks(caplog)


def test_generated_frames_cover_every_message_type() -> None:
    assert set(MESSAGE_FIELDS) == messages.VISITOR_TYPES | messages.AGENT_TYPES
    assert {"bad_json", "too_deep", "bad_message"} <= ERROR_CODES
    assert {1000, 1007, 1008, 1009, 4001} <= CLOSE_CODES
