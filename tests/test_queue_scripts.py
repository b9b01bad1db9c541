"""The queue's Lua scripts against a real redis-server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from humandesk.queue.client import DeskQueue, QueueConfig, QueueError
from humandesk.queue.connection import RedisClient
from humandesk.queue.stats import events_between
from humandesk.queue.waits import QueueSnapshot, estimate_wait_seconds

from cluster import Listener
from conftest import MakeRedis
from helpers import T0, agent, visitor

#: Every test here runs on one Redis and on a Redis Cluster.
CLUSTER_TOO = True


async def offer_of(desk: DeskQueue, name: str) -> str:
    record = await desk.agent(name)
    assert record is not None and record["state"] == "offered", record
    return str(record["offer"])


async def test_visitors_wait_in_join_order(desk: DeskQueue) -> None:
    for n in range(5):
        result = await desk.join(visitor(n), now_ms=T0 + n)
        assert result.position == n + 1
    assert [v for v, _ in await desk.line("support")] == ["v0", "v1", "v2", "v3", "v4"]
    assert await desk.position("v3") == 4


async def test_unknown_queue_is_refused(desk: DeskQueue) -> None:
    with pytest.raises(QueueError) as err:
        await desk.join(visitor(1, queue="nope"), now_ms=T0)
    assert err.value.code == "unknown_queue"
    with pytest.raises(QueueError) as dup:
        await desk.join(visitor(2), now_ms=T0)
        await desk.join(visitor(2), now_ms=T0)
    assert dup.value.code == "duplicate_visitor"


async def test_join_is_refused_when_the_rules_changed_since_admission(
    desk: DeskQueue, redis: RedisClient, desk_name: str
) -> None:
    admitted = await desk.admission("support", cached=True)
    assert admitted.open and admitted.priority == 0
    # Another process (say `humandesk queue set`) changes the rules in between.
    await DeskQueue(redis, desk_name).set_queue_rules("support", {"priority": 3})
    with pytest.raises(QueueError) as err:
        await desk.join(visitor(1), now_ms=T0, rules_seen=admitted.rules_seen)
    assert err.value.code == "stale_rules"
    assert await desk.line("support") == []
    again = await desk.admission("support", cached=True)  # the stale copy was dropped
    assert again.priority == 3
    await desk.join(visitor(1), now_ms=T0, rules_seen=again.rules_seen)
    assert [v for v, _ in await desk.line("support")] == ["v1"]


async def test_longest_waiting_visitor_meets_longest_idle_agent(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.join(visitor(2), now_ms=T0 + 10)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 20)
    await desk.set_agent_status(agent("al"), "available", now_ms=T0 + 30)
    bea = await desk.agent("bea")
    al = await desk.agent("al")
    assert bea and al
    offers = {bea["offer"]: "bea", al["offer"]: "al"}
    v1 = await desk.visitor("v1")
    v2 = await desk.visitor("v2")
    assert v1 and v2 and v1["state"] == v2["state"] == "offered"
    assert offers[v1["offer"]] == "bea"
    assert offers[v2["offer"]] == "al"

    # With two idle agents, the one idle longest is offered the next visitor.
    desk2 = DeskQueue(desk.redis, desk.keys.desk + "b", QueueConfig())
    await desk2.add_queue("support")
    await desk2.set_agent_status(agent("late"), "available", now_ms=T0 + 50)
    await desk2.set_agent_status(agent("early"), "available", now_ms=T0 + 5)
    await desk2.join(visitor(9), now_ms=T0 + 60)
    early = await desk2.agent("early")
    late = await desk2.agent("late")
    assert early and late and early["state"] == "offered" and late["state"] == "available"


async def test_agent_serves_only_their_queues(desk: DeskQueue) -> None:
    await desk.join(visitor(1, "sales"), now_ms=T0)
    await desk.set_agent_status(agent("sup", ["support"]), "available", now_ms=T0 + 1)
    sup = await desk.agent("sup")
    assert sup and sup["state"] == "available"
    await desk.set_agent_status(agent("multi", ["support", "sales"]), "available", now_ms=T0 + 2)
    multi = await desk.agent("multi")
    assert multi and multi["state"] == "offered"
    # An agent with several queues left the idle line of every one of them.
    assert await desk.redis.zcard(desk.keys.queue("support").idle) == 1


async def test_accept_starts_call_and_hangup_frees_agent(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 1)
    offer = await offer_of(desk, "bea")
    call = await desk.accept("bea", offer, now_ms=T0 + 2)
    v = await desk.visitor("v1")
    a = await desk.agent("bea")
    assert v and a and v["state"] == "in_call" and a["state"] == "in_call"
    assert v["call"] == a["call"] == call
    with pytest.raises(QueueError) as not_party:
        await desk.end_call(call, "agent", "someone-else", now_ms=T0 + 3)
    assert not_party.value.code == "not_a_party"
    await desk.end_call(call, "visitor", "v1", now_ms=T0 + 60_000)
    a = await desk.agent("bea")
    assert a and a["state"] == "wrap_up"
    assert a["wrapup_until"] == T0 + 60_000 + QueueConfig().wrapup_ms
    assert await desk.visitor("v1") is None
    await desk.heartbeat([], ["bea"], now_ms=T0 + 60_000 + QueueConfig().wrapup_ms)
    await desk.reap(now_ms=T0 + 60_000 + QueueConfig().wrapup_ms + 1)
    a = await desk.agent("bea")
    assert a and a["state"] == "available"
    kinds = [e["event"] for e in await desk.events()]
    assert kinds == ["joined", "agent_state", "offered", "accepted", "ended", "wrapup_ended"]
    snap = await desk.snapshot("support")
    # The handle-time average moved towards the 60 s call.
    assert snap.handle_s < QueueConfig().default_handle_s


async def test_decline_returns_visitor_to_original_place(desk: DeskQueue) -> None:
    for n in range(3):
        await desk.join(visitor(n), now_ms=T0 + n)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 10)
    offer = await offer_of(desk, "bea")
    assert [v for v, _ in await desk.line("support")] == ["v1", "v2"]
    await desk.join(visitor(3), now_ms=T0 + 11)
    await desk.decline("bea", offer, now_ms=T0 + 12)
    assert [v for v, _ in await desk.line("support")] == ["v0", "v1", "v2", "v3"]
    assert await desk.position("v0") == 1
    # The agent is not offered anything during the reject delay...
    a = await desk.agent("bea")
    assert a and a["state"] == "available"
    await desk.reap(now_ms=T0 + 12 + QueueConfig().reject_delay_ms - 1)
    a = await desk.agent("bea")
    assert a and a["state"] == "available"
    # ...and then gets the same first visitor again.
    await desk.reap(now_ms=T0 + 12 + QueueConfig().reject_delay_ms + 1)
    a = await desk.agent("bea")
    v0 = await desk.visitor("v0")
    assert a and v0 and a["state"] == "offered" and v0["offer"] == a["offer"]


async def test_timeout_returns_visitor_and_counts_missed_offers(desk: DeskQueue) -> None:
    cfg = QueueConfig()
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0 + 1)
    now = T0 + 10
    await desk.set_agent_status(agent("bea"), "available", now_ms=now)
    for missed in range(1, cfg.max_missed_offers + 1):
        offer = await offer_of(desk, "bea")
        v0 = await desk.visitor("v0")
        assert v0 and v0["offer"] == offer
        now += cfg.offer_timeout_ms + 1
        await desk.heartbeat(["v0", "v1"], ["bea"], now_ms=now - 1)
        result = await desk.reap(now_ms=now)
        assert result["offers_expired"] == 1
        assert [v for v, _ in await desk.line("support")] == ["v0", "v1"]
        a = await desk.agent("bea")
        assert a is not None
        if missed < cfg.max_missed_offers:
            assert a["state"] == "available" and a["missed"] == missed
            now += cfg.no_answer_delay_ms + 1
            await desk.heartbeat(["v0", "v1"], ["bea"], now_ms=now)
            await desk.reap(now_ms=now)
    a = await desk.agent("bea")
    assert a and a["state"] == "break" and "Missed" in a["reason"]
    assert a["reason_code"] == "missed_offers" and a["missed"] == cfg.max_missed_offers
    # Available again: no reason is left behind for the next Break the agent chooses.
    await desk.set_agent_status(agent("bea"), "available", now_ms=now)
    a = await desk.agent("bea")
    assert a and "reason" not in a and "reason_code" not in a


async def test_fence_token_rejects_stale_and_foreign_accepts(desk: DeskQueue) -> None:
    await desk.join(visitor(0), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 1)
    await desk.set_agent_status(agent("al"), "available", now_ms=T0 + 2)
    first = await offer_of(desk, "bea")
    with pytest.raises(QueueError) as foreign:
        await desk.accept("al", first, now_ms=T0 + 3)
    assert foreign.value.code == "stale_offer"
    # The offer times out and the visitor is offered to the next agent with a new token.
    await desk.heartbeat(["v0"], ["bea", "al"], now_ms=T0 + 10_000)
    await desk.reap(now_ms=T0 + 1 + QueueConfig().offer_timeout_ms + 1)
    second = await offer_of(desk, "al")
    assert int(second) > int(first)
    for late in (desk.accept("bea", first), desk.decline("bea", first)):
        with pytest.raises(QueueError) as stale:
            await late
        assert stale.value.code == "stale_offer"
    call = await desk.accept("al", second)
    with pytest.raises(QueueError):
        await desk.accept("al", second)
    v = await desk.visitor("v0")
    assert v and v["call"] == call


async def test_accept_after_deadline_is_refused_even_before_the_reaper(desk: DeskQueue) -> None:
    await desk.join(visitor(0), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0)
    offer = await offer_of(desk, "bea")
    with pytest.raises(QueueError) as late:
        await desk.accept("bea", offer, now_ms=T0 + QueueConfig().offer_timeout_ms + 5)
    assert late.value.code == "stale_offer"
    assert [v for v, _ in await desk.line("support")] == ["v0"]


async def test_break_while_offered_keeps_visitor_place(desk: DeskQueue) -> None:
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0 + 1)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 2)
    await desk.set_agent_status(agent("bea"), "break", "lunch", now_ms=T0 + 3)
    assert [v for v, _ in await desk.line("support")] == ["v0", "v1"]
    a = await desk.agent("bea")
    assert a and a["state"] == "break" and a["reason"] == "lunch"
    assert await desk.redis.zcard(desk.keys.offers) == 0


async def test_in_call_agent_cannot_take_a_break_but_offline_ends_call(desk: DeskQueue) -> None:
    await desk.join(visitor(0), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0)
    call = await desk.accept("bea", await offer_of(desk, "bea"), now_ms=T0 + 1)
    with pytest.raises(QueueError) as err:
        await desk.set_agent_status(agent("bea"), "break", now_ms=T0 + 2)
    assert err.value.code == "wrong_state"
    await desk.set_agent_status(agent("bea"), "offline", now_ms=T0 + 3)
    assert await desk.redis.hget(desk.keys.calls, call) is None
    assert await desk.visitor("v0") is None


async def test_leaving_visitor_while_offered_frees_agent_at_once(desk: DeskQueue) -> None:
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0 + 1)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 2)
    await desk.leave("v0", now_ms=T0 + 3)
    a = await desk.agent("bea")
    v1 = await desk.visitor("v1")
    assert a and v1 and a["state"] == "offered" and v1["offer"] == a["offer"]
    events = await desk.events()
    abandoned = [e for e in events if e["event"] == "abandoned"]
    assert abandoned and abandoned[0]["visitor"] == "v0" and abandoned[0]["waited_ms"] == "3"


async def test_reaper_removes_parties_whose_lease_ran_out(desk: DeskQueue) -> None:
    lease = QueueConfig().visitor_lease_ms
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0)
    await desk.join(visitor(2), now_ms=T0 + 1)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 2)
    call = await desk.accept("bea", await offer_of(desk, "bea"), now_ms=T0 + 3)
    # v1's connection keeps renewing; v0 (in the call) and v2 go silent.
    gone = await desk.heartbeat(["v1", "nobody"], ["bea"], now_ms=T0 + lease - 5)
    assert gone == (["nobody"], [])
    result = await desk.reap(now_ms=T0 + lease + 10)
    assert result["visitors_gone"] == 2
    assert await desk.visitor("v2") is None
    assert await desk.redis.hget(desk.keys.calls, call) is None
    # The agent's call ended; after the wrap-up, v1 is offered next.
    a = await desk.agent("bea")
    assert a and a["state"] == "wrap_up"
    wrapped = T0 + lease + 10 + QueueConfig().wrapup_ms + 1
    await desk.heartbeat(["v1"], ["bea"], now_ms=wrapped)
    await desk.reap(now_ms=wrapped)
    a = await desk.agent("bea")
    v1 = await desk.visitor("v1")
    assert a and v1 and a["state"] == "offered" and v1["state"] == "offered"
    # Then the agent goes silent too: offline, and v1 is back in line.
    agent_lease = QueueConfig().lease_ms
    await desk.heartbeat(["v1"], [], now_ms=wrapped + agent_lease)
    result = await desk.reap(now_ms=wrapped + agent_lease + 1)
    a = await desk.agent("bea")
    assert a and a["state"] == "offline" and a["reason"] == "Connection lost"
    assert a["reason_code"] == "connection_lost"
    assert [v for v, _ in await desk.line("support")] == ["v1"]


async def test_a_visitor_in_a_call_holds_only_the_calls_grace_period(desk: DeskQueue) -> None:
    """A visitor in line keeps the place for the resume window; one in a call whose socket is
    gone holds the call only for its grace period, then the call ends with peer_left."""
    grace = QueueConfig().call_lease_ms
    assert grace < QueueConfig().visitor_lease_ms
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 1)
    call = await desk.accept("bea", await offer_of(desk, "bea"), now_ms=T0 + 2)
    # The last renewal of both visitors' sockets; then both go silent. The agent stays.
    await desk.heartbeat(["v1"], ["bea"], callers=["v0"], now_ms=T0 + 3)
    await desk.heartbeat([], ["bea"], now_ms=T0 + grace)
    result = await desk.reap(now_ms=T0 + grace + 4)
    assert result["visitors_gone"] == 1
    assert await desk.redis.hget(desk.keys.calls, call) is None
    a = await desk.agent("bea")
    assert a and a["state"] == "wrap_up"
    ended = [e for e in await desk.events() if e["event"] == "ended"]
    assert ended and ended[0]["reason"] == "peer_left", ended
    # The visitor in line still has their place.
    assert [v for v, _ in await desk.line("support")] == ["v1"]


async def test_the_grace_period_runs_from_when_the_desk_last_heard_from_the_caller(
    desk: DeskQueue,
) -> None:
    """A socket whose network is gone stays open at the desk for a while; the renewal counts
    the grace from the caller's last frame, so the call ends on time all the same."""
    grace = QueueConfig().call_lease_ms
    await desk.join(visitor(0), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 1)
    call = await desk.accept("bea", await offer_of(desk, "bea"), now_ms=T0 + 2)
    later = T0 + grace
    # Still renewed, but silent for nearly the grace period: the call ends 2 ms later.
    await desk.heartbeat([], ["bea"], callers=["v0"], silence_ms=[grace - 2], now_ms=later)
    assert (await desk.reap(now_ms=later + 1))["visitors_gone"] == 0
    result = await desk.reap(now_ms=later + 3)
    assert result["visitors_gone"] == 1
    assert await desk.redis.hget(desk.keys.calls, call) is None


async def test_reaper_lease_has_one_holder(desk: DeskQueue) -> None:
    assert await desk.try_reaper_lease("a", 1000)
    assert not await desk.try_reaper_lease("b", 1000)
    assert await desk.try_reaper_lease("a", 1000)


async def test_no_double_booking_when_many_agents_go_available_at_once(
    make_redis: MakeRedis, desk_name: str
) -> None:
    # Many independent clients (as many server instances would) race on one desk.
    clients = [make_redis() for _ in range(8)]
    desks = [DeskQueue(c, desk_name) for c in clients]
    await desks[0].add_queue("support")
    await asyncio.gather(*(desks[i % 8].join(visitor(i)) for i in range(30)))
    await asyncio.gather(
        *(desks[i % 8].set_agent_status(agent(f"a{i}"), "available") for i in range(50))
    )
    offers = await clients[0].hgetall(desks[0].keys.offers)
    parsed = [json.loads(v) for v in offers.values()]
    assert len(parsed) == 30
    assert len({o["visitor"] for o in parsed}) == 30
    assert len({o["agent"] for o in parsed}) == 30
    # Every agent who got an offer is in exactly that one offer.
    for o in parsed:
        a = await desks[0].agent(o["agent"])
        assert a and a["offer"] == o["id"]
    # All accept at once; each accept succeeds exactly once even when sent twice.
    results: list[Any] = await asyncio.gather(
        *(desks[i % 8].accept(o["agent"], o["id"]) for i, o in enumerate(parsed * 2)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, str) for r in results) == 30
    assert all(
        isinstance(r, QueueError) and r.code == "stale_offer"
        for r in results
        if not isinstance(r, str)
    )
    assert await clients[0].hlen(desks[0].keys.calls) == 30


async def test_scripts_publish_offers_to_the_agent_channel(desk: DeskQueue) -> None:
    pubsub = await Listener.open(
        desk.redis, desk.keys.agent_channel("bea"), desk.keys.queue_channel("support")
    )
    await desk.join(visitor(0), now_ms=T0)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 1500)
    got: list[dict[str, Any]] = []
    for _ in range(50):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg:
            got.append(json.loads(msg["data"]))
        if any(m["type"] == "status" and m["status"] == "offered" for m in got):
            break
    await pubsub.aclose()
    offer = next(m for m in got if m["type"] == "offer")
    assert offer["visitor"] == {
        "priority": 0,
        "name": "Visitor 0",
        "topic": "topic 0",
        "audio_only": False,
        "page": "",
        "precall": None,  # the join carried no pre-call result
    }
    assert offer["waited_seconds"] == 1 and offer["timeout_ms"] == 20_000
    assert any(m["type"] == "status" and m["status"] == "offered" for m in got)


def test_wait_estimate_follows_the_queueing_model() -> None:
    # Place p behind a Available agents, c agents serving, handle time h: (p - a) * h / c.
    snap = QueueSnapshot("support", waiting=5, available=1, serving=2, handle_s=120)
    assert estimate_wait_seconds(1, snap) == 0
    assert estimate_wait_seconds(2, snap) == 60
    assert estimate_wait_seconds(3, snap) == 120
    assert estimate_wait_seconds(4, snap) == 180
    # Place 1 of five busy agents waits a fifth of a handle time, not a whole one.
    busy = QueueSnapshot("support", waiting=1, available=0, serving=5, handle_s=300)
    assert estimate_wait_seconds(1, busy) == 60
    # Nobody serving (all on Break or Offline): no figure at all.
    nobody = QueueSnapshot("support", waiting=1, available=0, serving=0, handle_s=60)
    assert estimate_wait_seconds(1, nobody) is None


async def test_many_visitors_go_away_in_one_script(desk: DeskQueue) -> None:
    for n in range(4):
        await desk.join(replace(visitor(n), conn=f"c{n}"), now_ms=T0 + n)
    await desk.set_agent_status(agent("bea"), "available", now_ms=T0 + 10)
    offered = await offer_of(desk, "bea")  # to v0
    marked = await desk.away_many(
        [("v0", "c0"), ("v1", "c1"), ("v2", "someone-else"), ("v9", "c9")], now_ms=T0 + 20
    )
    # v0's offer is withdrawn (v0 went away); v2's entry belongs to another socket; v9 is gone.
    assert sorted(marked) == ["v0", "v1"]
    for vid in ("v0", "v1"):
        record = await desk.visitor(vid)
        assert record is not None and record["away"] is True and record["state"] == "waiting"
    # Both keep their places but are offered to no one: the agent gets the next visitor.
    assert [await desk.position(v) for v in ("v0", "v1", "v2", "v3")] == [1, 2, 3, 4]
    assert [v for v, _ in await desk.line("support")] == ["v3"]  # v2 is being offered
    assert await offer_of(desk, "bea") != offered
    offer = await desk.offer(await offer_of(desk, "bea"))
    assert offer is not None and offer["visitor"] == "v2"
    assert await desk.away_many([], now_ms=T0 + 30) == []


async def test_events_between_reads_the_interval_from_the_newest_back(desk: DeskQueue) -> None:
    key = desk.keys.events
    pipe = desk.redis.pipeline(transaction=False)
    for ts in range(3000):  # three pages and a bit
        pipe.xadd(key, {"event": "joined", "ts": str(ts), "n": str(ts)})
    await pipe.execute()
    middle = await events_between(desk, 2500, 2600)
    assert [int(e["n"]) for e in middle] == list(range(2500, 2601))
    first = await events_between(desk, 0, 10)  # the walk goes all the way back
    assert [int(e["n"]) for e in first] == list(range(11))
    assert len(await events_between(desk, 0, 10**13)) == 3000
    assert await events_between(desk, 5000, 6000) == []
