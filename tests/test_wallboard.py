"""The supervisors' wallboard through the running desk: the page (strict CSP, its test ids)
and GET /api/agents, the per-agent rows it shows beside /api/stats."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from humandesk.queue.client import QueueConfig
from humandesk.server.app import ACCOUNTS, QUEUE

from conftest import DeskClient
from helpers import (
    Peer,
    SignedIn,
    agent_in_status,
    available_agent,
    login_agent,
    open_visitor,
)

Client = TestClient[Any, Any]


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client(queue=QueueConfig(wrapup_ms=0))
    accounts = c.app[ACCOUNTS]
    await accounts.add("ada", "correct horse", ["support", "sales"], "Ada Lovelace")
    await accounts.add("grace", "correct horse", ["sales"], "Grace Hopper")
    await accounts.add("boss", "correct horse", ["support"], "<b>The Boss</b>", role="supervisor")
    return c


async def join(client: Client, name: str, queue: str = "support") -> Peer:
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": queue, "name": name})
    await visitor.expect("queued")
    return visitor


async def agent_board(client: Client) -> tuple[int, dict[str, dict[str, Any]]]:
    """/api/agents as the supervisor sees it: the desk's clock and the rows by name."""
    boss = await SignedIn.open(client, "boss", "correct horse")
    try:
        resp = await boss.get("/api/agents")
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    finally:
        await boss.close()
    assert isinstance(body["now_ms"], int)
    return body["now_ms"], {row["name"]: row for row in body["agents"]}


async def agent_rows(client: Client) -> dict[str, dict[str, Any]]:
    return (await agent_board(client))[1]


async def test_wallboard_page_is_served_with_a_strict_csp(client: Client) -> None:
    # The page itself is public (it holds no data); the data needs a session.
    resp = await client.get("/wallboard")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    for testid in (
        "wallboard",
        "wallboard-queues",
        "wallboard-agents",
        "wallboard-updated",
        "wallboard-offline",
        "wallboard-login-view",
        "wallboard-login-form",
    ):
        assert f'data-testid="{testid}"' in html, testid
    assert '<script type="module" src="/static/wallboard/main.js?v=' in html
    assert "<script>" not in html  # no inline scripts: the CSP would refuse them
    assert ' style="' not in html
    assert 'href="/agent"' in html  # the way to sign in
    for module in ("main", "model", "view"):
        script = await client.get(f"/static/wallboard/{module}.js")
        assert script.status == 200
        js = await script.text()
        assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    index = await (await client.get("/")).text()
    assert 'href="/wallboard"' in index


async def test_agents_needs_a_session(client: Client) -> None:
    resp = await client.get("/api/agents")
    assert resp.status == 401
    assert (await resp.json()) == {"error": "unauthorized", "reason": "missing_token"}
    client.session.cookie_jar.update_cookies({"hd_session": "not-a-token"})
    resp = await client.get("/api/agents")
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    post = await client.post("/api/agents")
    assert post.status == 405 and (await post.json())["error"] == "method_not_allowed"


async def test_agents_lists_every_account_with_its_live_state(client: Client) -> None:
    await login_agent(client, "grace", "correct horse")  # a plain agent may not look
    refused = await client.get("/api/agents")
    assert refused.status == 403
    assert (await refused.json()) == {"error": "forbidden", "reason": "supervisors_only"}
    # The page says so, in the page's own words and styles, with the same status.
    page = await client.get("/wallboard")
    assert page.status == 403 and page.content_type == "text/html"
    html = await page.text()
    assert 'data-phase="forbidden"' in html
    assert 'data-testid="wallboard-forbidden" role="alert">' in html  # not hidden
    assert "This screen is for supervisors" in html
    rows = await agent_rows(client)
    assert sorted(rows) == ["ada", "boss", "grace"]
    assert rows["boss"] == {
        "name": "boss",
        "display_name": "<b>The Boss</b>",  # as given: the page inserts it as text
        "role": "supervisor",
        "queues": ["support"],
        "state": "offline",
        "since_ms": None,
        "until_ms": None,
        "reason": None,
        "reason_code": None,
        "missed": None,
    }
    assert rows["ada"]["queues"] == ["sales", "support"] and rows["ada"]["role"] == "agent"

    client.session.cookie_jar.clear()
    ada = await available_agent(client)
    rows = await agent_rows(client)
    assert rows["ada"]["state"] == "available"
    assert isinstance(rows["ada"]["since_ms"], int)
    assert rows["grace"]["state"] == "offline" and rows["boss"]["state"] == "offline"
    boss = await SignedIn.open(client, "boss", "correct horse")
    stats = await (await boss.get("/api/stats")).json()
    await boss.close()
    assert stats["queues"]["support"]["agents"] == {"available": 1}

    visitor = await join(client, "Visitor")
    offer = await ada.expect("offer")
    rows = await agent_rows(client)
    assert rows["ada"]["state"] == "offered" and isinstance(rows["ada"]["since_ms"], int)
    await ada.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await ada.expect("call_started"))["call_id"]
    await visitor.expect("call_started")
    rows = await agent_rows(client)
    assert rows["ada"]["state"] == "in_call"
    assert rows["ada"]["since_ms"] <= int(time.time() * 1000) + 1000
    started = rows["ada"]["since_ms"]

    await ada.send({"type": "status", "status": "offline"})  # ends the call
    await visitor.expect("call_ended")
    await ada.expect("status", status="offline")
    rows = await agent_rows(client)
    # Offline too shows since when: from the moment she went.
    assert rows["ada"]["state"] == "offline" and rows["ada"]["since_ms"] >= started
    assert call


async def test_agents_on_break_carry_their_reason(client: Client) -> None:
    _ada = await agent_in_status(client, "break")  # her console stays open meanwhile

    now, rows = await agent_board(client)
    row = rows["ada"]
    # A Break she chose: since when, and no reason of the desk's.
    assert row["state"] == "break" and row["reason"] is None
    assert isinstance(row["since_ms"], int) and row["since_ms"] <= now
    boss = await SignedIn.open(client, "boss", "correct horse")
    stats = await (await boss.get("/api/stats")).json()
    await boss.close()
    assert stats["queues"]["sales"]["agents"] == {"break": 1}


async def test_a_break_the_desk_chose_shows_why_and_since_when(client: Client) -> None:
    await client.app[QUEUE].set_queue_rules(
        "support", {"offer_timeout_ms": 1000, "max_missed_offers": 1}
    )
    ada = await available_agent(client)
    visitor = await join(client, "Visitor")  # stays in line meanwhile
    await ada.expect("offer")  # and no answer
    told = await ada.expect("status", status="break")
    # The console words the code in its language; `reason` is the desk's English, for logs.
    assert told["reason_code"] == "missed_offers" and told["missed"] == 1
    now, rows = await agent_board(client)
    assert rows["ada"]["state"] == "break"
    assert rows["ada"]["reason"] == "Missed 1 offers in a row"
    assert rows["ada"]["reason_code"] == "missed_offers" and rows["ada"]["missed"] == 1
    assert isinstance(rows["ada"]["since_ms"], int) and rows["ada"]["since_ms"] <= now
    # A second look keeps the time the Break began.
    assert (await agent_rows(client))["ada"]["since_ms"] == rows["ada"]["since_ms"]
    assert visitor
