"""The edges of a call under races: its end, the first wait shown, places in line.

Each race has a focused test here that provokes it with real parts (a real Redis, the desk
in process, real WebSockets; a proxy in front of Redis where a reply must be late or lost),
and the call's own races are checked together under a stress load through two real server
processes (tests/stress.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.server.app import ACCOUNTS, DESK, QUEUE, create_app

import stress
from conftest import DeskClient
from helpers import (
    JitterProxy,
    Peer,
    ReplyLossProxy,
    available_agent,
    desk_config,
    open_visitor,
)

Client = TestClient[Any, Any]


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client(heartbeat_s=0.2)
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    return c


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


async def test_a_joining_visitor_sees_queued_first_and_never_a_later_place(
    aiohttp_client: Any, redis_url: str, desk_name: str, tmp_path: Path
) -> None:
    """Position updates go out while visitors join, on a network whose Redis round trips
    vary (a fan-out that starts after a join may read the line before the join's own
    reads come back): ``queued`` is always a joining visitor's first word of their place,
    and no later message shows a later place or a longer wait without a reason."""
    proxy = JitterProxy(redis_url, max_ms=8)
    app = create_app(desk_config(await proxy.start(), desk_name, tmp_path))
    client: Client = await aiohttp_client(app)
    try:
        desk = app[DESK]
        stop = asyncio.Event()

        async def fan_outs() -> None:  # as a busy line makes them: one after the other
            while not stop.is_set():
                await desk.positions.push("support")
                await asyncio.sleep(0.002)

        pusher = asyncio.create_task(fan_outs())
        joined: list[Peer] = []
        try:
            for i in range(40):
                peer = await open_visitor(client)
                await peer.send({"type": "join", "queue": "support", "name": f"Visitor {i}"})
                await peer.expect("queued")
                joined.append(peer)
        finally:
            stop.set()
            await pusher
        for peer in joined:
            await peer.quiet(0.01)
            shown = [m for m in peer.seen if m["type"] in ("queued", "position")]
            assert shown[0]["type"] == "queued", shown
            places = [m["position"] for m in shown]
            assert places == sorted(places, reverse=True), shown
            etas = [m["eta_seconds"] for m in shown if not m.get("eta_reason")]
            assert etas == sorted(etas, reverse=True), shown
    finally:
        await client.close()  # the desk stops before its Redis connections do
        await proxy.stop()


@pytest.fixture
async def lossy(
    aiohttp_client: Any, redis_url: str, desk_name: str, tmp_path: Path
) -> AsyncIterator[tuple[Client, ReplyLossProxy]]:
    """The desk in process, its Redis behind a proxy that can lose one reply."""
    proxy = ReplyLossProxy(redis_url)
    client: Client = await aiohttp_client(
        create_app(desk_config(await proxy.start(), desk_name, tmp_path))
    )
    yield client, proxy
    await client.close()  # the desk stops before its Redis connections do
    await proxy.stop()


async def unanswered_join(client: Client, proxy: ReplyLossProxy, join: dict[str, Any]) -> Peer:
    """A visitor whose ``join`` Redis carries out while its answer is lost on the way back:
    they are told ``unavailable``."""
    visitor = await open_visitor(client)
    proxy.lose_reply_to(b'"visitor": {"id": ')  # the join script's arguments
    await visitor.send(join)
    refused = await visitor.expect("error")
    assert refused["code"] == "unavailable" and proxy.lost == 1
    return visitor


async def test_a_join_whose_answer_is_lost_keeps_one_place(
    lossy: tuple[Client, ReplyLossProxy],
) -> None:
    """Redis carries a join out, but the connection drops before its answer reaches the
    desk: the visitor is told ``unavailable`` and joins again, as the panel does. They get
    that place, not a second one beside it (which an agent would be offered with nobody
    there), and the call when an agent comes."""
    client, proxy = lossy
    await client.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    queue = client.app[QUEUE]
    join = {"type": "join", "queue": "support", "name": "Grace"}
    visitor = await unanswered_join(client, proxy, join)
    (entry, _), *others = await queue.line("support")
    assert others == []  # the join ran
    await visitor.send(join)
    queued = await visitor.expect("queued")
    assert queued["visitor_id"] == entry and queued["position"] == 1
    assert [v for v, _ in await queue.line("support")] == [entry]
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    started = await visitor.expect("call_started")
    assert started["call_id"] == (await agent.expect("call_started"))["call_id"]


async def test_a_join_answered_late_gives_its_place_up_for_another_queue(
    lossy: tuple[Client, ReplyLossProxy],
) -> None:
    """The same lost answer, but the visitor then joins another queue: the place the first
    join took is given up, and they wait in the queue they chose."""
    client, proxy = lossy
    queue = client.app[QUEUE]
    join = {"type": "join", "queue": "support", "name": "Grace"}
    visitor = await unanswered_join(client, proxy, join)
    (earlier, _), *_ = await queue.line("support")
    await visitor.send({**join, "queue": "sales"})
    queued = await visitor.expect("queued")
    assert queued["queue"] == "sales" and queued["visitor_id"] != earlier
    assert await queue.line("support") == [] and await queue.visitor(earlier) is None
    assert [v for v, _ in await queue.line("sales")] == [queued["visitor_id"]]


#: Overload (60 arrivals a second for 10 agents who can take 50), so that the line and the
#: desk are busy, and lease renewals every 0.1 s, so that many of them fall just after the
#: end of a call. ``python tests/stress.py --seconds 60 --agents 10 --heartbeat 0.1`` runs
#: the same load for longer.
STRESS = stress.Load(seconds=15, arrivals_per_s=60, agents=10, talk_s=0.2, heartbeat_s=0.1)


@pytest.mark.slow
async def test_the_edges_of_calls_hold_under_a_stress_load(redis_url: str) -> None:
    """Through two server processes, with agents who accept at once and hang up after a
    fraction of a second: every visitor whose call was accepted gets exactly one
    ``call_ended`` and no close before it; a visitor offered the moment they join is never
    shown a wait; nobody is shown a later place, or a longer wait without a reason."""
    report = await stress.run(redis_url, STRESS)
    counts = report.counts()
    assert report.errors == [], counts
    assert report.calls == report.visitors > 500 and report.unfinished == 0, counts
    assert report.served_at_once > 0, counts
    assert report.bad_ends == [], counts
    assert report.waits_shown_at_once == [], counts
    assert report.position_regressions == [], counts
    assert report.eta_rises_without_reason == [], counts
