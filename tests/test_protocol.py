"""The signaling protocol over real WebSockets, on a real Redis (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient

from humandesk.queue.client import QueueConfig
from humandesk.server.app import ACCOUNTS, QUEUE, REDIS, SIGNER, create_app
from humandesk.server.auth import SESSION_COOKIE
from humandesk.server.config import Config

from conftest import DeskClient
from helpers import (
    Peer,
    available_agent,
    desk_config,
    login_agent,
    open_agent,
    open_visitor,
    origin_of,
    raw_http,
)

Client = TestClient[Any, Any]
OFFER_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client()
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    await c.app[ACCOUNTS].add("bob", "battery staple", ["support", "sales"])
    return c


async def join(client: Client, name: str = "Grace", queue: str = "support") -> Peer:
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": queue, "name": name, "topic": "Broken zip"})
    await visitor.expect("queued")
    return visitor


async def test_full_call_flow(client: Client) -> None:
    visitor = await open_visitor(client)
    await visitor.send(
        {
            "type": "join",
            "queue": "support",
            "name": "Grace <b>Hopper</b>",
            "topic": "My order #42 never arrived",
            "audio_only": False,
        }
    )
    queued = await visitor.expect("queued")
    assert queued["position"] == 1 and queued["ticket"]
    assert queued["eta_seconds"] is None  # nobody serves the queue yet: no figure

    agent = await available_agent(client)
    offer = await agent.expect("offer")
    # Visitor text reaches the agent as the exact text typed, for the console to show as text.
    assert offer["visitor"]["name"] == "Grace <b>Hopper</b>"
    assert offer["visitor"]["topic"] == "My order #42 never arrived"
    assert offer["queue"] == "support" and offer["timeout_ms"] == 20_000
    assert "_peer" not in json.dumps(offer)

    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    started_a = await agent.expect("call_started")
    started_v = await visitor.expect("call_started")
    call = started_a["call_id"]
    assert started_v["call_id"] == call
    assert started_a["role"] == "offerer" and started_v["role"] == "answerer"
    assert started_v["peer"] == {"name": "Ada Lovelace"}
    assert "_peer" not in started_v and "_peer" not in started_a

    await agent.send(
        {"type": "signal", "call_id": call, "description": {"type": "offer", "sdp": OFFER_SDP}}
    )
    got = await visitor.expect("signal")
    assert got == {
        "type": "signal",
        "call_id": call,
        "description": {"type": "offer", "sdp": OFFER_SDP},
    }
    await visitor.send(
        {"type": "signal", "call_id": call, "description": {"type": "answer", "sdp": OFFER_SDP}}
    )
    assert (await agent.expect("signal"))["description"]["type"] == "answer"
    cand = {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await visitor.send({"type": "signal", "call_id": call, "candidate": cand})
    assert (await agent.expect("signal"))["candidate"] == cand
    await visitor.send({"type": "signal", "call_id": call, "candidate": None})
    end_of_candidates = await agent.expect("signal")
    assert "candidate" in end_of_candidates and end_of_candidates["candidate"] is None
    await agent.send({"type": "media", "muted": True, "camera_off": False})
    told = await visitor.expect("peer_media")
    assert told["muted"] is True and told["screen"] is False  # screen: false unless sent
    # The visitor shares their screen in place of the camera, and stops: the agent is told.
    await visitor.send({"type": "media", "muted": False, "camera_off": False, "screen": True})
    shared = await agent.expect("peer_media")
    assert shared == {
        "type": "peer_media",
        "call_id": call,
        "muted": False,
        "camera_off": False,
        "screen": True,
    }
    await visitor.send({"type": "media", "muted": False, "camera_off": False, "screen": False})
    assert (await agent.expect("peer_media"))["screen"] is False

    await visitor.send({"type": "hangup", "call_id": call})
    ended_v = await visitor.expect("call_ended")
    ended_a = await agent.expect("call_ended")
    assert ended_v["by"] == ended_a["by"] == "visitor" and ended_a["reason"] == "hangup"
    # Wrap-up: notes and a disposition, a countdown the agent can extend or end early.
    wrap = await agent.expect("status", status="wrap_up")
    assert wrap["call_id"] == call and 0 < wrap["remaining_ms"] <= 30_000
    await agent.send(
        {"type": "notes", "call_id": call, "notes": "Reshipped", "disposition": "resolved"}
    )
    await agent.expect("notes_saved")
    await agent.send({"type": "wrapup", "action": "extend"})
    longer = await agent.expect("status", status="wrap_up")
    assert longer["wrapup_until"] > wrap["wrapup_until"]
    await agent.send({"type": "wrapup", "action": "done"})
    await agent.expect("status", status="available")
    # The visitor rates the call, once.
    await visitor.send({"type": "rate", "call_id": call, "score": 5, "comment": "Great"})
    await visitor.expect("rated")
    await visitor.send({"type": "rate", "call_id": call, "score": 1})
    assert (await visitor.expect("error"))["code"] == "wrong_state"
    record = await client.app[QUEUE].call_record(call)
    assert record is not None
    assert (record["notes"], record["disposition"], record["rating"]) == (
        "Reshipped",
        "resolved",
        5,
    )


async def test_positions_update_live_and_leave(client: Client) -> None:
    first = await join(client, "First")
    second = await join(client, "Second")
    third = await join(client, "Third")
    assert third.seen[-1]["position"] == 3
    await first.send({"type": "leave"})
    await first.expect("left")
    assert await first.closed() == 1000
    assert (await second.expect("position"))["position"] == 1
    assert (await third.expect("position"))["position"] == 2


async def test_decline_returns_visitor_to_same_place(client: Client) -> None:
    first = await join(client, "First")
    await join(client, "Second")
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "First"
    await agent.send({"type": "decline", "offer_id": offer["offer_id"]})
    cancelled = await agent.expect("offer_cancelled")
    assert cancelled["reason"] == "declined"
    first_pos = await first.quiet(0.5)
    assert all(m.get("position", 1) == 1 for m in first_pos)


async def test_resume_keeps_place_and_forged_ticket_is_refused(client: Client) -> None:
    await join(client, "First")
    second = await join(client, "Second")
    ticket = next(m for m in second.seen if m["type"] == "queued")["ticket"]
    await second.ws.close()
    again = await open_visitor(client)
    await again.send({"type": "resume", "ticket": ticket})
    resumed = await again.expect("queued")
    assert resumed["position"] == 2

    forged = jwt.encode(
        {
            "sub": "x",
            "aud": "humandesk:visitor",
            "iss": "humandesk",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "desk": "x",
        },
        "wrong-key",
        algorithm="HS256",
    )
    bad = await open_visitor(client)
    await bad.send({"type": "resume", "ticket": forged})
    assert await bad.closed() == 4001
    # An agent session token is not a ticket either.
    agent_token = client.app[SIGNER].agent_session("ada")
    bad2 = await open_visitor(client)
    await bad2.send({"type": "resume", "ticket": agent_token})
    assert await bad2.closed() == 4001


async def test_resume_in_second_tab_replaces_first(client: Client) -> None:
    visitor = await join(client)
    ticket = next(m for m in visitor.seen if m["type"] == "queued")["ticket"]
    tab2 = await open_visitor(client)
    await tab2.send({"type": "resume", "ticket": ticket})
    await tab2.expect("queued")
    assert await visitor.closed() == 4009


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"type": "fly"}), "unknown_type"),
        (json.dumps({"type": 7}), "bad_message"),
        (json.dumps({"type": "join", "name": ""}), "bad_message"),
        (json.dumps({"type": "join", "name": "x" * 81}), "bad_message"),
        (json.dumps({"type": "join", "name": "A", "audio_only": "yes"}), "bad_message"),
        (json.dumps({"type": "join", "name": "A", "queue": "nope"}), "unknown_queue"),
        (json.dumps({"type": "leave"}), "wrong_state"),
        (json.dumps({"type": "hangup", "call_id": "1"}), "wrong_state"),
        (json.dumps({"type": "accept", "offer_id": "1"}), "unknown_type"),
        (json.dumps({"type": "signal", "call_id": "1", "candidate": None}), "wrong_state"),
    ],
)
async def test_bad_visitor_frames_get_errors_and_change_nothing(
    client: Client, frame: str, code: str
) -> None:
    bystander = await join(client, "Bystander")
    bad = await open_visitor(client)
    await bad.send(frame)
    error = await bad.expect("error")
    assert error["code"] == code, error
    # The socket stays open and usable, and the bystander's place is untouched.
    await bad.send({"type": "ping"})
    await bad.expect("pong")
    assert await bystander.quiet(0.3) == []
    status = await client.get("/api/queues/support")
    assert (await status.json())["waiting"] == 1


async def test_wrong_state_and_oversized_sdp_in_a_call(client: Client) -> None:
    visitor = await join(client)
    other = await join(client, "Other")
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": "999999"})
    assert (await agent.expect("error"))["code"] == "stale_offer"
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await agent.expect("call_started"))["call_id"]
    await visitor.expect("call_started")
    huge = {
        "type": "signal",
        "call_id": call,
        "description": {"type": "offer", "sdp": "a" * 30_000},
    }
    await agent.send(huge)
    assert (await agent.expect("error"))["code"] == "too_large"
    await agent.send({"type": "signal", "call_id": "12345", "candidate": None})
    assert (await agent.expect("error"))["code"] == "wrong_state"
    await agent.send({"type": "status", "status": "break"})
    assert (await agent.expect("error"))["code"] == "wrong_state"
    await visitor.send({"type": "join", "name": "again"})
    assert (await visitor.expect("error"))["code"] == "wrong_state"
    # Nothing reached the visitor, and the call is still on.
    assert [m["type"] for m in await visitor.quiet(0.3)] == []
    await other.quiet(0.1)
    await agent.send({"type": "signal", "call_id": call, "candidate": None})
    assert (await visitor.expect("signal"))["candidate"] is None


async def test_oversized_frame_closes_with_1009(client: Client) -> None:
    visitor = await open_visitor(client)
    bystander = await join(client, "Bystander")
    await visitor.send("x" * (70 * 1024))
    assert await visitor.closed() == 1009
    assert await bystander.quiet(0.3) == []


async def test_too_many_errors_close_with_1008(client: Client) -> None:
    visitor = await open_visitor(client)
    for _ in range(50):
        await visitor.send("{")
    assert await visitor.closed() == 1008
    # Every error was answered, the 50th too, before the close.
    assert [m.get("code") for m in visitor.seen[1:]] == ["bad_json"] * 50


async def test_frames_that_are_not_i_json_get_errors_and_the_socket_stays_open(
    client: Client,
) -> None:
    bystander = await join(client, "Bystander")
    visitor = await open_visitor(client)
    for frame, code in [
        ('{"type":"join","name":"\\ud800"}', "bad_message"),
        ('{"type":"join","name":"A","topic":"x\\udfff"}', "bad_message"),
        ('{"type":"callback","name":"A","contact":"12345","note":"\\ud800"}', "bad_message"),
        ('{"type":"ping","x":' + "[" * 1_000 + "]" * 1_000 + "}", "too_deep"),
        ('{"type":"rate","call_id":"1","score":1e999999}', "bad_json"),
        ('{"type":"ping","x":' + "9" * 10_000 + "}", "bad_json"),
        ('{"type":"ping","x":NaN}', "bad_json"),
    ]:
        await visitor.send(frame)
        assert (await visitor.expect("error"))["code"] == code, frame[:40]
    await visitor.send({"type": "ping"})
    await visitor.expect("pong")
    # A raw lone surrogate is not UTF-8: the WebSocket layer closes with 1007 (RFC 6455).
    await visitor.ws.send_frame(
        '{"type":"join","name":"\ud800"}'.encode("utf-8", "surrogatepass"), aiohttp.WSMsgType.TEXT
    )
    assert await visitor.closed() == 1007
    agent = await available_agent(client, "bob", "battery staple")
    await agent.send('{"type":"close_callback","id":"\\ud800"}')
    assert (await agent.expect("error"))["code"] == "bad_message"
    await agent.send("[" * 100 + "]" * 100)
    assert (await agent.expect("error"))["code"] == "too_deep"
    await agent.send({"type": "ping"})
    await agent.expect("pong")
    assert await client.app[QUEUE].position(bystander.seen[1]["visitor_id"]) == 1


async def test_the_depth_limit_is_a_setting(desk_client: DeskClient) -> None:
    client = await desk_client(max_json_depth=4)
    visitor = await open_visitor(client)
    await visitor.send({"type": "ping", "x": [[[1]]]})
    await visitor.expect("pong")
    await visitor.send({"type": "ping", "x": [[[[1]]]]})
    assert (await visitor.expect("error"))["code"] == "too_deep"
    login = await client.post(
        "/api/login", data=b'{"username":[[[["a"]]]]}', headers={"Origin": origin_of(client)}
    )
    assert login.status == 400 and (await login.json())["error"] == "too_deep"


async def test_login_refuses_bodies_that_are_not_i_json(client: Client) -> None:
    origin = {"Origin": origin_of(client)}
    for body, error in [
        (b'{"username":"\\ud800","password":"x"}', "bad_request"),
        (b'{"username":"ada","password":"\\udfff"}', "bad_request"),
        ('{"username":"\ud800","password":"x"}'.encode("utf-8", "surrogatepass"), "bad_json"),
        (b"\xff\xfe{}", "bad_json"),
        (b"[" * 1_000 + b"]" * 1_000, "too_deep"),
        (b'{"username":"a","password":' + b"9" * 4_000 + b"}", "bad_json"),
        (b'{"username":"a","password":"b","n":1e999999}', "bad_json"),
        (b'{"username":"a","password":"b","n":NaN}', "bad_json"),
        (b"[]", "bad_json"),
    ]:
        resp = await client.post("/api/login", data=body, headers=origin)
        answer = await resp.json()
        assert resp.status == 400 and answer["error"] == error, (body[:40], answer)
        assert answer["reason"]

    # A body without a Content-Length (chunked) is held to the same 4 KiB.
    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * 1_000

    big = await client.post("/api/login", data=chunks(), headers=origin)
    assert big.status == 413


async def test_stats_refuse_moments_outside_the_event_log(client: Client) -> None:
    await client.app[ACCOUNTS].add("boss", "correct horse", ["support"], role="supervisor")
    await login_agent(client, "boss", "correct horse")
    for query in (
        "since=²",  # str.isdigit() takes it, int() does not
        "since=" + "9" * 5_000,  # beyond Python's digit limit
        "until=99999999999999999999",
        "since=0001-01-01",
        "until=9999-12-31T23:59:59-14:00",
    ):
        resp = await client.get("/api/stats?" + query)
        assert resp.status == 400 and (await resp.json())["error"] == "bad_request", query
    ok = await client.get("/api/stats?since=1970-01-01&until=9999-12-31T23:59:59.999Z")
    assert ok.status == 200


async def test_header_text_that_is_not_utf8_is_refused_not_a_500(
    desk_client: DeskClient,
) -> None:
    client = await desk_client(trusted_proxies=("127.0.0.1",), metrics_token="t0ken")
    host = f"{client.host}:{client.port}".encode()
    body = b'{"username":"ada","password":"wrong"}'
    login = b"POST /api/login HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (host, len(body))
    # A session cookie whose bytes are not UTF-8: not a token.
    status, _, answer = await raw_http(
        client,
        b"GET /api/me HTTP/1.1\r\nHost: %s\r\nCookie: hd_session=\xed\xa0\x80\r\n\r\n" % host,
    )
    assert status == 401 and json.loads(answer)["reason"] == "invalid_token"
    # A bearer token for /metrics whose bytes are not UTF-8: not the token.
    status, _, answer = await raw_http(
        client, b"GET /metrics HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer \x80\r\n\r\n" % host
    )
    assert status == 401 and json.loads(answer)["reason"] == "invalid_token"
    # A Host that is not a host name: the desk's origin cannot be derived from it.
    for bad_host in (b"\xff", b"a b", b"x;y", b""):
        status, _, answer = await raw_http(client, b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % bad_host)
        assert status == 400 and json.loads(answer)["error"] == "bad_host", bad_host
    # X-Forwarded-For from a trusted proxy holding text, not an address: the proxy's own
    # address is as far as the desk can know.
    status, _, _ = await raw_http(
        client, login + b"X-Forwarded-For: \xed\xa0\x80, junk\r\n\r\n" + body
    )
    assert status == 401
    keys = client.app[QUEUE].keys
    assert await client.app[REDIS].get(keys.login_failures("address", "127.0.0.1")) == b"1"


async def test_static_files_are_looked_up_by_name(client: Client) -> None:
    css = await client.get("/static/css/base.css")
    assert css.status == 200 and "css" in css.headers["Content-Type"]
    # A name longer than a file name may be (aiohttp's static route answered 500), none.
    for path in ("/static/" + "a" * 300, "/static/x", "/static/css/base.css/x", "/static/.x"):
        assert (await client.get(path)).status == 404, path


async def test_foreign_origin_is_refused_before_upgrade(client: Client) -> None:
    for origin in ("https://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await client.ws_connect("/ws/visitor", headers=headers)
        assert err.value.status == 403
    resp = await client.get("/ws/visitor", headers={"Origin": origin_of(client)})
    assert resp.status == 400
    assert (await resp.json())["error"] == "websocket_required"


def _agent_token(claims: dict[str, Any], key: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_agent_socket_needs_a_valid_session(client: Client, desk_name: str) -> None:
    now = int(time.time())
    good = {
        "sub": "ada",
        "aud": "humandesk:agent",
        "iss": "humandesk",
        "iat": now,
        "exp": now + 60,
        "desk": desk_name,
    }
    key = "test-secret-key-of-desk-" + desk_name
    cases = {
        "missing_token": None,
        "invalid_token": _agent_token(good, "forged-key"),
        "expired_token": _agent_token({**good, "iat": now - 120, "exp": now - 60}, key),
    }
    no_exp = {k: v for k, v in good.items() if k != "exp"}
    unsigned = jwt.encode(good, None, algorithm="none")  # type: ignore[arg-type]
    cases_invalid = [
        _agent_token(no_exp, key),
        unsigned,
        _agent_token({**good, "aud": "humandesk:visitor"}, key),
    ]
    for reason, token in cases.items():
        await _expect_401(client, token, reason)
    for token in cases_invalid:
        await _expect_401(client, token, "invalid_token")
    # The same checks guard the API.
    client.session.cookie_jar.clear()
    resp = await client.get("/api/me")
    assert resp.status == 401 and (await resp.json())["reason"] == "missing_token"


async def _expect_401(client: Client, token: str | None, reason: str) -> None:
    headers = {"Origin": origin_of(client)}
    if token is not None:
        headers["Cookie"] = f"{SESSION_COOKIE}={token}"
    client.session.cookie_jar.clear()
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/ws/agent", headers=headers)
    assert err.value.status == 401, reason


async def test_failed_logins_are_throttled_per_account_and_per_address(client: Client) -> None:
    origin = {"Origin": origin_of(client)}

    async def login(username: str, password: str) -> aiohttp.ClientResponse:
        return await client.post(
            "/api/login", json={"username": username, "password": password}, headers=origin
        )

    for _ in range(10):
        assert (await login("ada", "guess")).status == 401
    # Now even the right password is refused, before it is checked, with a time to wait.
    refused = await login("Ada", "correct horse")
    assert refused.status == 429 and (await refused.json())["error"] == "too_many_attempts"
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    keys = client.app[QUEUE].keys
    failures = keys.login_failures("account", "ada@127.0.0.1")
    assert int(await client.app[REDIS].get(failures) or 0) == 11  # every attempt counts
    await client.app[REDIS].delete(failures)  # as when the window ends
    assert (await login("ada", "correct horse")).status == 200
    # From one address, failures across accounts add up (10 above, 90 here, 100 allowed).
    await asyncio.gather(*(login(f"nobody{n}", "x") for n in range(90)))
    assert (await login("ada", "correct horse")).status == 429


async def test_concurrent_guesses_check_at_most_the_limit(client: Client) -> None:
    """Attempts are counted before any password is hashed: 60 guesses at once for one
    account get at most 10 passwords checked, and the right one among them gets no
    further than any other once the limit is reached."""
    origin = {"Origin": origin_of(client)}

    async def login(password: str) -> int:
        response = await client.post(
            "/api/login", json={"username": "ada", "password": password}, headers=origin
        )
        return response.status

    statuses = await asyncio.gather(
        *(login(f"guess {n}") for n in range(59)), login("correct horse")
    )
    checked = [s for s in statuses if s in (200, 401)]
    print(f"60 concurrent guesses: {len(checked)} passwords checked, {statuses.count(429)} refused")
    assert len(checked) <= 10, statuses
    assert statuses.count(429) >= 50, statuses


async def test_behind_a_trusted_proxy_failures_count_for_the_forwarded_client(
    desk_client: DeskClient,
) -> None:
    client = await desk_client(trusted_proxies=("127.0.0.0/8",))
    app = client.app
    await app[ACCOUNTS].add("ada", "correct horse", ["support"])
    keys, redis = app[QUEUE].keys, app[REDIS]

    async def fail(forwarded: str) -> None:
        response = await client.post(
            "/api/login",
            json={"username": "ada", "password": "guess"},
            headers={"Origin": origin_of(client), "X-Forwarded-For": forwarded},
        )
        assert response.status == 401

    # The nearest untrusted hop is the client; a forged entry further left changes nothing.
    await fail("198.51.100.7, 203.0.113.9")
    await fail("forged, 203.0.113.9, 127.0.0.1")
    assert await redis.get(keys.login_failures("address", "203.0.113.9")) == b"2"
    assert await redis.get(keys.login_failures("address", "127.0.0.1")) is None


async def test_without_trusted_proxies_forwarded_headers_are_ignored(client: Client) -> None:
    response = await client.post(
        "/api/login",
        json={"username": "ada", "password": "guess"},
        headers={"Origin": origin_of(client), "X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status == 401
    keys, redis = client.app[QUEUE].keys, client.app[REDIS]
    assert await redis.get(keys.login_failures("address", "127.0.0.1")) == b"1"
    assert await redis.get(keys.login_failures("address", "203.0.113.9")) is None


async def test_login_errors_and_cookie_flags(client: Client) -> None:
    origin = {"Origin": origin_of(client)}
    bad = await client.post(
        "/api/login", json={"username": "ada", "password": "nope"}, headers=origin
    )
    assert bad.status == 401 and (await bad.json())["error"] == "invalid_credentials"
    nobody = await client.post(
        "/api/login", json={"username": "zed", "password": "x"}, headers=origin
    )
    assert nobody.status == 401
    junk = await client.post("/api/login", data="{", headers=origin)
    assert junk.status == 400 and (await junk.json())["error"] == "bad_json"
    cross = await client.post(
        "/api/login",
        json={"username": "ada", "password": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status == 403
    ok = await client.post(
        "/api/login", json={"username": "ada", "password": "correct horse"}, headers=origin
    )
    assert ok.status == 200
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    me = await client.get("/api/me")
    assert (await me.json())["agent"]["name"] == "ada"


async def test_second_console_replaces_first(client: Client) -> None:
    await login_agent(client, "ada", "correct horse")
    first = await open_agent(client)
    second = await open_agent(client)
    assert await first.closed() == 4009
    await second.send({"type": "ping"})
    await second.expect("pong")


async def test_agent_counters_and_offer_countdown(client: Client) -> None:
    await login_agent(client, "bob", "battery staple")
    agent = await open_agent(client)
    queues = await agent.expect("queues")
    assert set(queues["queues"]) == {"sales", "support"}
    await join(client, queue="sales")
    update = await agent.expect("queues")
    assert update["queues"]["sales"]["waiting"] == 1


async def test_visitor_left_while_offered_cancels_offer(client: Client) -> None:
    visitor = await join(client)
    agent = await available_agent(client)
    await agent.expect("offer")
    await visitor.send({"type": "leave"})
    cancelled = await agent.expect("offer_cancelled")
    assert cancelled["reason"] == "visitor_left"
    await agent.expect("status", status="available")


async def test_health_endpoints(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


async def test_pages_and_widget(client: Client) -> None:
    widget = await client.get("/widget.js")
    assert widget.status == 200 and "javascript" in widget.headers["Content-Type"]
    page = await client.get("/visitor?queue=support&host=https://shop.example")
    assert page.status == 200
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert 'data-host-origin="https://shop.example"' in await page.text()
    hostile = await client.get('/visitor?queue=support&host="><script>alert(1)</script>')
    assert "<script>alert(1)" not in await hostile.text()
    assert (await client.get("/visitor?queue=../../etc")).status == 400
    agent = await client.get("/agent")
    assert "frame-ancestors 'none'" in agent.headers["Content-Security-Policy"]
    missing = await client.get("/api/nothing")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


async def test_every_response_says_nosniff(client: Client) -> None:
    """Handler returns, raised HTTP errors, static files, 404s and 405s alike."""
    await login_agent(client, "ada", "correct horse")
    paths = [
        ("GET", "/"),
        ("GET", "/visitor"),
        ("GET", "/agent"),
        ("GET", "/wallboard"),
        ("GET", "/widget.js"),
        ("GET", "/static/css/base.css"),
        ("HEAD", "/static/shared/protocol.js"),
        ("GET", "/static/missing.js"),  # 404 from a handler
        ("GET", "/visitor?queue=../x"),  # 400 raised as an HTTPException, not under /api/
        ("GET", "/nothing/here"),  # 404 from the router
        ("GET", "/api/nothing"),  # the same, answered as JSON
        ("DELETE", "/agent"),  # 405
        ("POST", "/api/me"),  # 405 under /api/
        ("GET", "/api/me"),
        ("GET", "/api/queues/support"),
        ("GET", "/api/queues/nope"),
        ("GET", "/api/stats"),
        ("GET", "/api/stats?since=x"),
        ("GET", "/api/agents"),
        ("GET", "/api/calls.csv"),
        ("POST", "/api/login"),
        ("POST", "/api/logout"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/ws/visitor"),  # 400: not an upgrade
    ]
    for method, path in paths:
        resp = await client.request(method, path, headers={"Origin": origin_of(client)})
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", (method, path, resp.status)
    client.session.cookie_jar.clear()
    resp = await client.get("/api/me")
    assert resp.status == 401 and resp.headers.get("X-Content-Type-Options") == "nosniff"
    host = f"{client.host}:{client.port}"
    upgrade = (
        f"GET /ws/visitor HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    status, headers, _ = await raw_http(client, upgrade.encode())
    assert status == 101 and headers.get("x-content-type-options") == "nosniff"


def connect_src(response: aiohttp.ClientResponse) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


async def test_csp_connects_to_the_desk_own_socket_origin_only(
    client: Client, aiohttp_client: Any, redis_url: str, tmp_path: Path
) -> None:
    for path in ("/", "/visitor", "/agent", "/wallboard"):
        sources = connect_src(await client.get(path))
        assert sources == ["'self'", f"ws://{client.host}:{client.port}"], (path, sources)
    for public, socket_origin in [
        ("https://desk.example", "wss://desk.example"),
        ("https://desk.example:8443/help", "wss://desk.example:8443"),
        ("http://desk.internal:8080", "ws://desk.internal:8080"),
    ]:
        config = desk_config(redis_url, "csp" + uuid.uuid4().hex[:8], tmp_path, public_url=public)
        other: Client = await aiohttp_client(create_app(config))
        for path in ("/visitor", "/agent"):
            assert connect_src(await other.get(path)) == ["'self'", socket_origin], public


async def test_reconnects_replay_the_call(client: Client) -> None:
    visitor = await join(client)
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    # A console reloaded while an offer waits gets the offer again.
    await agent.ws.close()
    agent = await open_agent(client)
    again = await agent.expect("offer")
    assert again["offer_id"] == offer["offer_id"] and 0 < again["timeout_ms"] <= 20_000
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await agent.expect("call_started"))["call_id"]
    await visitor.expect("call_started")
    # The visitor reloads during the call: both sides start over on the same call.
    ticket = next(m for m in visitor.seen if m["type"] == "queued")["ticket"]
    await visitor.ws.close()
    visitor = await open_visitor(client)
    await visitor.send({"type": "resume", "ticket": ticket})
    replay_v = await visitor.expect("call_started")
    replay_a = await agent.expect("call_started")
    assert replay_v["call_id"] == replay_a["call_id"] == call
    assert replay_v["replay"] is True and replay_a["role"] == "offerer"
    await agent.send({"type": "signal", "call_id": call, "candidate": None})
    assert (await visitor.expect("signal"))["call_id"] == call
    # The agent reloads during the call: it is asked to offer again.
    await agent.ws.close()
    agent = await open_agent(client)
    assert (await agent.expect("call_started"))["call_id"] == call
    await agent.send({"type": "hangup", "call_id": call})
    await visitor.expect("call_ended")


async def test_a_call_that_ended_while_the_visitor_was_away_is_told_on_resume(
    client: Client,
) -> None:
    """The agent hangs up while the visitor's socket is gone (a reconnect, a server
    restart): the ``call_ended`` went to nobody. A resume with the call the page was in is
    answered with that ``call_ended``, and the visitor can still rate the call; without the
    call id (or with another's) the place is gone: 4004."""
    visitor = await join(client)
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await visitor.expect("call_started"))["call_id"]
    ticket = next(m for m in visitor.seen if m["type"] == "queued")["ticket"]
    await visitor.ws.close()
    await agent.send({"type": "hangup", "call_id": call})
    await agent.expect("call_ended")
    lost = await open_visitor(client)
    await lost.send({"type": "resume", "ticket": ticket})
    assert (await lost.ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
    assert lost.ws.close_code == 4004
    back = await open_visitor(client)
    await back.send({"type": "resume", "ticket": ticket, "call_id": call})
    ended = await back.expect("call_ended")
    assert (ended["call_id"], ended["reason"], ended["by"]) == (call, "hangup", "agent")
    await back.send({"type": "rate", "call_id": call, "score": 5, "comment": "fine"})
    await back.expect("rated")


@pytest.fixture
async def short_lease_client(desk_client: DeskClient) -> Client:
    c = await desk_client(
        heartbeat_s=0.2,
        queue=QueueConfig(lease_ms=1200, visitor_lease_ms=1200, offer_timeout_ms=20_000),
    )
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    return c


async def test_dead_connections_are_cleaned_up(short_lease_client: Client) -> None:
    client = short_lease_client
    gone = await join(client, "Gone")
    stays = await join(client, "Stays")
    await asyncio.sleep(2)  # live sockets keep their leases well past the lease time
    assert next(m for m in stays.seen if m["type"] == "queued")["position"] == 2
    await gone.ws.close()
    assert (await stays.expect("position", timeout=10))["position"] == 1
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "Stays"
    # The agent's console dies while the offer waits: the agent goes offline and the visitor
    # keeps their place for the next agent.
    await agent.ws.close()
    for _ in range(100):
        status = await (await client.get("/api/queues/support")).json()
        if status["waiting"] == 1 and status["agents_serving"] == 0:
            break
        await asyncio.sleep(0.1)
    assert status["waiting"] == 1 and status["agents_serving"] == 0
    agent = await open_agent(client)
    state = await agent.expect("status")
    assert state["status"] == "offline" and state["reason"] == "Connection lost"


async def test_queued_always_comes_before_call_started(client: Client) -> None:
    agent = await available_agent(client)
    for _ in range(8):
        visitor = await open_visitor(client)
        await visitor.send({"type": "join", "name": "Quick"})
        offer = await agent.expect("offer")
        await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
        await visitor.expect("call_started")
        kinds = [m["type"] for m in visitor.seen]
        assert kinds.index("queued") < kinds.index("call_started"), kinds
        await agent.send({"type": "hangup", "call_id": offer["offer_id"]})
        await agent.expect("status", status="wrap_up")
        await agent.send({"type": "wrapup", "action": "done"})
        await agent.expect("status", status="available")
        await visitor.ws.close()


async def test_away_visitor_keeps_place_but_is_not_offered(client: Client) -> None:
    first = await join(client, "Reloads")
    await join(client, "Second")
    ticket = next(m for m in first.seen if m["type"] == "queued")["ticket"]
    await first.ws.close()
    await asyncio.sleep(0.3)  # the desk marks the first visitor away
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "Second"  # nobody is offered a visitor who is not there
    await agent.send({"type": "decline", "offer_id": offer["offer_id"]})
    back = await open_visitor(client)
    await back.send({"type": "resume", "ticket": ticket})
    assert (await back.expect("queued"))["position"] == 1  # the original place


async def test_many_sockets_closing_at_once_are_all_marked_away(client: Client) -> None:
    # 90: the test client's connection pool holds 100 (the benchmarks close 10,000 at once).
    crowd = [await join(client, f"Crowd {n}") for n in range(90)]
    stays = await join(client, "Stays")
    await asyncio.gather(*(v.ws.close() for v in crowd))
    desk = client.app[QUEUE]
    ids = [next(m for m in v.seen if m["type"] == "queued")["visitor_id"] for v in crowd]
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        records = [await desk.visitor(vid) for vid in ids]
        if all(r and r.get("away") for r in records):
            break
        assert asyncio.get_running_loop().time() < deadline, "not every visitor marked away"
        await asyncio.sleep(0.1)
    # All 90 keep their places (ahead of the one still here), and none is offered.
    assert await desk.position(stays.seen[1]["visitor_id"]) == 91
    agent = await available_agent(client)
    assert (await agent.expect("offer"))["visitor"]["name"] == "Stays"


async def test_an_offered_visitor_keeps_their_place_for_the_others(client: Client) -> None:
    await join(client, "First")
    second = await join(client, "Second")
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "First"
    # The first visitor is being offered, not gone: the second is still 2nd...
    assert all(m["position"] == 2 for m in await second.quiet(0.4) if m["type"] == "position")
    await agent.send({"type": "decline", "offer_id": offer["offer_id"]})
    await agent.expect("offer_cancelled")
    # ...and stays 2nd when the first is back in line after the decline.
    assert all(m["position"] == 2 for m in await second.quiet(0.4) if m["type"] == "position")
    assert await client.app[QUEUE].position(second.seen[1]["visitor_id"]) == 2


def test_json_depth_from_the_environment() -> None:
    assert Config.from_env({}).max_json_depth == 32
    assert Config.from_env({"HUMANDESK_MAX_JSON_DEPTH": "8"}).max_json_depth == 8
    for bad in ("3", "1000", "deep"):
        with pytest.raises(ValueError):
            Config.from_env({"HUMANDESK_MAX_JSON_DEPTH": bad})


def test_trusted_proxies_from_the_environment() -> None:
    config = Config.from_env({"HUMANDESK_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"})
    assert config.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    with pytest.raises(ValueError):
        Config.from_env({"HUMANDESK_TRUSTED_PROXIES": "the-proxy"})
