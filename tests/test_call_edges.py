"""The edges of a call under races: its end, the first wait shown, places in line.

Each race has a focused test here that provokes it with real parts (a real Redis, the desk
in process, real WebSockets).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.server.app import ACCOUNTS, QUEUE, create_app

from helpers import Peer, desk_config, login_agent, open_agent, open_visitor

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any, redis_url: str, desk_name: str, tmp_path: Path) -> Client:
    app = create_app(desk_config(redis_url, desk_name, tmp_path, heartbeat_s=0.2))
    c: Client = await aiohttp_client(app)
    await app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    return c


async def available_agent(client: Client) -> Peer:
    await login_agent(client, "ada", "correct horse")
    agent = await open_agent(client)
    await agent.send({"type": "status", "status": "available"})
    await agent.expect("status", status="available")
    return agent


async def test_a_call_end_lost_by_pub_sub_still_reaches_the_visitor(
    client: Client, redis: Redis
) -> None:
    """Ending a call removes the visitor's lease; if the ``call_ended`` published for the
    visitor is lost (pub/sub is at-most-once: here the server's subscription connection
    drops just then), the next lease renewal finds the lease gone. The visitor still gets
    one ``call_ended`` (from the call record), never a close 4004, and can rate the call."""
    agent = await available_agent(client)
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await visitor.expect("call_started"))["call_id"]
    await agent.expect("call_started")

    assert await redis.client_kill_filter(_type="pubsub") >= 1  # the server's subscriptions
    await client.app[QUEUE].end_call(call, "agent", "ada", "hangup")  # published to no one

    ended = await visitor.expect("call_ended", timeout=15)
    assert ended == {"type": "call_ended", "call_id": call, "reason": "hangup", "by": "agent"}
    await visitor.send({"type": "rate", "call_id": call, "score": 5})
    await visitor.expect("rated")
    await asyncio.sleep(1)  # several lease renewals: the socket is left alone
    assert not visitor.ws.closed
    assert [m["type"] for m in visitor.seen].count("call_ended") == 1


async def test_a_visitor_offered_the_moment_they_join_is_shown_no_wait(client: Client) -> None:
    """The join script gives the last free agent to the visitor: ``queued`` says 0 s (not a
    handle time estimated after the agent is taken), and no position says otherwise while
    the offer waits. The next visitor, with nobody free, is shown a wait."""
    agent = await available_agent(client)
    first = await open_visitor(client)
    await first.send({"type": "join", "queue": "support", "name": "First"})
    queued = await first.expect("queued")
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "First"
    assert (queued["position"], queued["eta_seconds"]) == (1, 0)

    second = await open_visitor(client)
    await second.send({"type": "join", "queue": "support", "name": "Second"})
    behind = await second.expect("queued")
    assert behind["position"] == 2 and behind["eta_seconds"] > 0

    await asyncio.sleep(0.5)  # position updates for both (the second joined behind)
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    await first.expect("call_started")
    shown = [m for m in first.seen if m["type"] in ("queued", "position")]
    assert [m["eta_seconds"] for m in shown] == [0] * len(shown), shown
