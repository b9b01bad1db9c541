"""A working day for agents: sessions that renew, expire and are revoked on live sockets,
roles, and the agent socket's origin (docs/protocol.md, Sessions)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.queue.client import DeskQueue
from humandesk.server.accounts import Accounts
from humandesk.server.app import ACCOUNTS, QUEUE

from conftest import DeskClient, free_port, python_env
from helpers import HUMANDESK, Peer, SignedIn, add_agent, open_visitor, origin_of, wait_ready

Client = TestClient[Any, Any]
PASSWORD = "correct horse"
SHOP = "http://shop.example"


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client(allowed_origins=(SHOP,), metrics_token="scrape-me")
    await c.app[ACCOUNTS].add("ada", PASSWORD, ["support"], "Ada Lovelace")
    await c.app[ACCOUNTS].add("boss", PASSWORD, ["support"], role="supervisor")
    return c


async def join(client: Client, name: str = "Grace") -> Peer:
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": name, "topic": "Zip"})
    await visitor.expect("queued")
    return visitor


async def console(client: Client, name: str = "ada") -> tuple[SignedIn, Peer]:
    session = await SignedIn.open(client, name, PASSWORD)
    return session, await session.ws()


async def available(agent: Peer) -> None:
    await agent.send({"type": "status", "status": "available"})
    await agent.expect("status", status="available")


async def close_reason(peer: Peer, timeout: float = 5.0) -> tuple[int | None, str]:
    """Reads until the server closes the socket: its close code and reason."""
    while True:
        msg = await peer.ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            continue
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return int(msg.data), str(msg.extra or "")
        return peer.ws.close_code, ""


# Revocation --------------------------------------------------------------------------------


async def test_removing_an_agent_in_a_call_closes_the_console_and_ends_the_call(
    client: Client, redis: Redis, desk_name: str
) -> None:
    visitor = await join(client)
    session, agent = await console(client)
    await available(agent)
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await visitor.expect("call_started"))["call_id"]
    # Removed by the command line: another Redis client, as `humandesk agent remove` is.
    await Accounts(redis, DeskQueue(redis, desk_name)).remove("ada")
    assert await close_reason(agent) == (4403, "account_removed")
    ended = await visitor.expect("call_ended")
    assert ended["call_id"] == call and ended["reason"] == "agent_offline"
    # The old cookie is refused everywhere.
    me = await session.get("/api/me")
    assert me.status == 401 and (await me.json())["reason"] == "unknown_agent"
    await session.close()


async def test_disabling_an_offered_agent_returns_the_visitor_to_their_place(
    client: Client,
) -> None:
    first = await join(client, "First")
    await join(client, "Second")
    session, agent = await console(client)
    await available(agent)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "First"
    await client.app[ACCOUNTS].set_disabled("ada", True)
    assert await close_reason(agent) == (4403, "account_disabled")
    assert (await client.app[QUEUE].agent("ada") or {})["state"] == "offline"
    visitor_id = next(m for m in first.seen if m["type"] == "queued")["visitor_id"]
    assert await client.app[QUEUE].position(visitor_id) == 1  # first in line, still
    refused = await session.get("/api/me")
    assert refused.status == 401 and (await refused.json())["reason"] == "account_disabled"
    again = await client.post(
        "/api/login",
        json={"username": "ada", "password": PASSWORD},
        headers={"Origin": origin_of(client)},
    )
    assert again.status == 401
    await client.app[ACCOUNTS].set_disabled("ada", False)
    session2, agent2 = await console(client)
    await available(agent2)
    assert (await agent2.expect("offer"))["visitor"]["name"] == "First"
    await session.close()
    await session2.close()


async def test_password_change_and_queue_change_revoke_sessions(client: Client) -> None:
    session, agent = await console(client)
    await client.app[ACCOUNTS].set_password("ada", "a new password")
    assert await close_reason(agent) == (4403, "password_changed")
    stale = await session.get("/api/me")
    assert stale.status == 401 and (await stale.json())["reason"] == "revoked_token"
    await session.close()

    session = await SignedIn.open(client, "ada", "a new password")
    agent = await session.ws()
    await client.app[ACCOUNTS].update("ada", queues=["support", "sales"])
    assert await close_reason(agent) == (4403, "account_changed")
    await session.close()
    session = await SignedIn.open(client, "ada", "a new password")
    welcome = await (await session.ws()).expect("status")  # a new console sees both queues
    assert welcome["status"] == "offline"
    me = await (await session.get("/api/me")).json()
    assert me["agent"]["queues"] == ["sales", "support"]
    await session.close()


async def test_signing_out_revokes_every_session_of_the_agent(client: Client) -> None:
    laptop, agent = await console(client)
    phone = await SignedIn.open(client, "ada", PASSWORD)  # a second sign-in elsewhere
    await available(agent)
    out = await phone.post("/api/logout")
    assert out.status == 204
    assert await close_reason(agent) == (4403, "signed_out")
    state = await client.app[QUEUE].agent("ada") or {}
    assert state["state"] == "offline"
    assert (state["reason"], state["reason_code"]) == ("Signed out", "signed_out")
    for session in (laptop, phone):
        resp = await session.get("/api/me")
        assert resp.status == 401
        await session.close()


async def test_revocation_reaches_a_socket_on_another_server_process(
    redis_url: str, desk_name: str, tmp_path: Path
) -> None:
    """`humandesk agent remove` (a process of its own) closes a console held by a server
    process (another) within a second."""
    port = free_port()
    env = {
        **python_env(),
        "HUMANDESK_REDIS_URL": redis_url,
        "HUMANDESK_DESK": desk_name,
        "HUMANDESK_SECRET_KEY": "revocation-test-key-" + desk_name,
        "HUMANDESK_DATA_DIR": str(tmp_path),
        "HUMANDESK_PORT": str(port),
    }
    added = await asyncio.to_thread(add_agent, env, "ada", PASSWORD)
    assert added.returncode == 0, added.stderr
    server = await asyncio.to_thread(
        subprocess.Popen,
        [*HUMANDESK, "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_ready, base, server)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            resp = await http.post(
                base + "/api/login",
                json={"username": "ada", "password": PASSWORD},
                headers={"Origin": base},
            )
            assert resp.status == 200
            ws = await http.ws_connect(base.replace("http", "ws") + "/ws/agent", origin=base)
            agent = Peer(ws)
            await available(agent)
            started = time.monotonic()
            done = await asyncio.create_subprocess_exec(
                *HUMANDESK, "agent", "remove", "ada", env=env, stdout=asyncio.subprocess.DEVNULL
            )
            code = await close_reason(agent, timeout=5)
            closed = time.monotonic()
            assert await done.wait() == 0
            exited = time.monotonic()
            assert code == (4403, "account_removed")
            assert closed < exited + 1.0  # within a second of the command's end, at worst
            print(
                f"console closed {(closed - started) * 1000:.0f} ms after `humandesk agent "
                f"remove` started; the command took {(exited - started) * 1000:.0f} ms"
            )
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 10)


# Expiry and renewal ------------------------------------------------------------------------


@pytest.fixture
async def short_session_client(desk_client: DeskClient) -> Client:
    c = await desk_client(session_ttl_s=2, heartbeat_s=0.25)
    await c.app[ACCOUNTS].add("ada", PASSWORD, ["support"], "Ada Lovelace")
    return c


async def test_an_expired_session_is_refused_on_the_open_socket(
    short_session_client: Client,
) -> None:
    session, agent = await console(short_session_client)
    code = await close_reason(agent, timeout=6)
    assert code == (4401, "session_expired")
    resp = await session.get("/api/me")
    assert resp.status == 401
    await session.close()


async def test_a_renewed_session_keeps_the_console_open(short_session_client: Client) -> None:
    client = short_session_client
    session, agent = await console(client)
    await available(agent)
    visitor = await join(client)
    for _ in range(8):  # 4 s: twice the session's lifetime, renewed every half second
        renewed = await session.post("/api/session")
        assert renewed.status == 200
        body = await renewed.json()
        assert body["ttl_s"] == 2 and body["expires_at"] >= time.time() + 1
        await asyncio.sleep(0.5)
    assert not agent.ws.closed
    offer = await agent.expect("offer")  # and it still takes visitors
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    assert (await visitor.expect("call_started"))["call_id"]
    await session.close()


async def test_each_call_gets_fresh_turn_credentials(desk_client: DeskClient) -> None:
    client = await desk_client(
        turn_urls=("turn:127.0.0.1:3478",), turn_secret="turn-secret", turn_ttl_s=30
    )
    await client.app[ACCOUNTS].add("ada", PASSWORD, ["support"])
    visitor = await open_visitor(client)
    welcome_expiry = int(visitor.seen[0]["ice_servers"][0]["username"].split(":")[0])
    assert welcome_expiry <= time.time() + 31
    await asyncio.sleep(1.1)  # so that the call's credentials are visibly newer
    await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
    await visitor.expect("queued")
    session, agent = await console(client)
    await available(agent)
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    for peer, who in ((visitor, "v-"), (agent, "a-ada")):
        started = await peer.expect("call_started")
        (server,) = started["ice_servers"]
        expiry, _, user = server["username"].partition(":")
        assert int(expiry) > welcome_expiry and user.startswith(who)
        await peer.send({"type": "refresh_ice"})
        fresh = (await peer.expect("ice_servers"))["ice_servers"][0]
        assert int(fresh["username"].split(":")[0]) >= int(expiry)
    await session.close()


# Roles -------------------------------------------------------------------------------------

#: Every route of the desk and who may use it: "anyone", "agent" (any signed-in account),
#: "supervisor", "metrics" (a supervisor, or the bearer token).
ACCESS = {
    ("GET", "/"): "anyone",
    ("GET", "/visitor"): "anyone",
    ("GET", "/agent"): "anyone",
    ("GET", "/wallboard"): "page",
    ("GET", "/widget.js"): "anyone",
    ("GET", "/brand.css"): "anyone",
    ("GET", "/brand/logo"): "anyone",  # 404 without a logo
    ("POST", "/api/login"): "anyone",
    ("POST", "/api/logout"): "anyone",
    ("POST", "/api/session"): "agent",
    ("GET", "/api/me"): "agent",
    ("GET", "/api/queues/{queue}"): "anyone",
    ("POST", "/api/precall/ice"): "anyone",  # the visitor panel's origins (test_precall.py)
    ("POST", "/api/precall"): "anyone",
    ("GET", "/api/stats"): "supervisor",
    ("GET", "/api/agents"): "supervisor",
    ("GET", "/api/calls.csv"): "supervisor",
    ("GET", "/metrics"): "metrics",
    ("GET", "/ws/visitor"): "socket",
    ("GET", "/ws/agent"): "socket",
    ("GET", "/healthz"): "anyone",
    ("GET", "/readyz"): "anyone",
}


async def test_every_endpoint_for_every_role(client: Client) -> None:
    routes = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None and "static" not in r.resource.canonical
    }
    assert routes == set(ACCESS), "a route was added or removed: give it a role here"
    agent = await SignedIn.open(client, "ada", PASSWORD)
    boss = await SignedIn.open(client, "boss", PASSWORD)
    anonymous = SignedIn(client, aiohttp.ClientSession())
    try:
        for (method, path), who in ACCESS.items():
            if who in ("socket", "anyone") or method != "GET":
                continue
            path = path.replace("{queue}", "support")
            got = {}
            for role, session in (("anonymous", anonymous), ("agent", agent), ("boss", boss)):
                got[role] = (await session.get(path)).status
            expected = {
                "agent": {"anonymous": 401, "agent": 200, "boss": 200},
                "supervisor": {"anonymous": 401, "agent": 403, "boss": 200},
                "metrics": {"anonymous": 401, "agent": 403, "boss": 200},
                "page": {"anonymous": 200, "agent": 403, "boss": 200},
            }[who]
            assert got == expected, (path, got)
        # /metrics for a scraper: the bearer token, and nothing else.
        for token, status in (("scrape-me", 200), ("wrong", 401)):
            resp = await anonymous.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert resp.status == status, token
        scraped = await anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert "humandesk_waiting" in await scraped.text()
        # Posts: a session renews only a valid session.
        assert (await anonymous.post("/api/session")).status == 401
        assert (await agent.post("/api/session")).status == 200
        # Sockets: each role speaks only its own messages.
        ws = await agent.ws("/ws/agent")
        for kind in ("join", "resume", "leave", "callback", "rate"):
            await ws.send({"type": kind})
            assert (await ws.expect("error"))["code"] == "unknown_type", kind
        visitor = await open_visitor(client)
        for kind in ("status", "accept", "decline", "wrapup", "notes", "transfer"):
            await visitor.send({"type": kind})
            assert (await visitor.expect("error"))["code"] == "unknown_type", kind
        for kind in ("close_callback", "callbacks"):
            await visitor.send({"type": kind, "id": "x"})
            assert (await visitor.expect("error"))["code"] == "unknown_type", kind
    finally:
        for session in (agent, boss, anonymous):
            await session.close()


async def test_an_agent_sees_only_the_callbacks_of_their_queues(client: Client) -> None:
    await client.app[ACCOUNTS].add("sam", PASSWORD, ["sales"])
    visitor = await open_visitor(client)
    for queue in ("support", "sales"):
        await visitor.send(
            {"type": "callback", "queue": queue, "name": f"For {queue}", "contact": "x@y.z"}
        )
        await visitor.expect("callback_saved")
    session, ada = await console(client)
    items = (await ada.expect("callbacks"))["items"]
    assert [i["queue"] for i in items] == ["support"]
    sales_id = next(
        i["id"] for i in await client.app[QUEUE].open_callbacks() if i["queue"] == "sales"
    )
    await ada.send({"type": "close_callback", "id": sales_id, "outcome": "not mine"})
    assert (await ada.expect("error"))["code"] == "wrong_state"
    assert len(await client.app[QUEUE].open_callbacks()) == 2
    await session.close()


# Origins -----------------------------------------------------------------------------------


async def test_the_agent_socket_accepts_only_the_desks_own_origin(client: Client) -> None:
    session = await SignedIn.open(client, "ada", PASSWORD)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.session.ws_connect(client.make_url("/ws/agent"), origin=SHOP)
    assert refused.value.status == 403
    # The visitor panel, framed by the same embedding site, may connect.
    ws = await client.ws_connect("/ws/visitor", origin=SHOP)
    assert (await Peer(ws).expect("welcome"))["role"] == "visitor"
    own = await session.ws()
    assert own.seen[0]["role"] == "agent"
    # Sign-in and renewal refuse a foreign origin too.
    resp = await session.session.post(client.make_url("/api/session"), headers={"Origin": SHOP})
    assert resp.status == 403
    await session.close()
