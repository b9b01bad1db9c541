"""Contact-centre routing in the Lua scripts: priority, levels, strategies, wrap-up,
transfers, maximum wait, callbacks and call records, against a real redis-server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from humandesk.queue.client import CallbackRequest, DeskQueue, QueueConfig, QueueError

from cluster import Listener
from helpers import T0, agent, visitor

#: Every test here runs on one Redis and on a Redis Cluster.
CLUSTER_TOO = True

CFG = QueueConfig()


async def offered_to(desk: DeskQueue, vid: str) -> str | None:
    v = await desk.visitor(vid)
    if not v or v["state"] != "offered":
        return None
    offer = await desk.offer(v["offer"])
    return None if offer is None else str(offer["agent"])


async def call_with(desk: DeskQueue, name: str, now: int) -> str:
    a = await desk.agent(name)
    assert a and a["state"] == "offered", a
    return await desk.accept(name, a["offer"], now_ms=now)


async def test_priority_goes_first_then_join_time(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.join(visitor(2), now_ms=T0 + 1)
    vip = await desk.join(visitor(3, priority=5), now_ms=T0 + 2)
    await desk.join(visitor(4, priority=5), now_ms=T0 + 3)
    assert vip.position == 1
    assert [v for v, _ in await desk.line("support")] == ["v3", "v4", "v1", "v2"]
    await desk.set_agent_status(agent("ada"), "available", now_ms=T0 + 4)
    assert await offered_to(desk, "v3") == "ada"


async def test_longest_waiting_across_the_queues_an_agent_serves(desk: DeskQueue) -> None:
    await desk.join(visitor(1, "sales"), now_ms=T0)
    await desk.join(visitor(2, "support"), now_ms=T0 + 1)
    await desk.set_agent_status(agent("ada", ["support", "sales"]), "available", now_ms=T0 + 2)
    assert await offered_to(desk, "v1") == "ada"


async def test_level_two_only_when_no_level_one_or_after_escalation(desk: DeskQueue) -> None:
    # Level 2 (ben) has been idle longest, but level 1 (ada) is free: ada gets the visitor.
    await desk.set_agent_status(agent("ben", support=2), "available", now_ms=T0)
    await desk.set_agent_status(agent("ada", support=1), "available", now_ms=T0 + 1)
    await desk.join(visitor(1), now_ms=T0 + 2)
    assert await offered_to(desk, "v1") == "ada"
    # With no level-1 agent free, level 2 takes the next visitor at once.
    await desk.join(visitor(2), now_ms=T0 + 3)
    assert await offered_to(desk, "v2") == "ben"


@pytest.mark.parametrize(("escalation_ms", "expected"), [(600_000, "cy"), (1_000, "ben")])
async def test_escalation_time_opens_level_two(
    desk: DeskQueue, escalation_ms: int, expected: str
) -> None:
    await desk.set_queue_rules("support", {"escalation_ms": escalation_ms})
    await desk.join(visitor(0), now_ms=T0)
    await desk.join(visitor(1), now_ms=T0)
    await desk.set_agent_status(agent("ben", support=2), "available", now_ms=T0 + 1)
    await desk.set_agent_status(agent("cy", support=1), "available", now_ms=T0 + 2)
    # Both decline (ben first), so both come back together after the reject delay, with the
    # visitors still waiting and ben idle the longest.
    for name in ("ben", "cy"):
        a = await desk.agent(name)
        assert a is not None
        await desk.decline(name, a["offer"], now_ms=T0 + (3 if name == "ben" else 4))
    later = T0 + 4 + CFG.reject_delay_ms + 1
    await desk.heartbeat(["v0", "v1"], ["ben", "cy"], now_ms=later)
    await desk.reap(now_ms=later)
    # Before the escalation time the level-1 agent is preferred; after it, the longest idle.
    assert await offered_to(desk, "v0") == expected


@pytest.mark.parametrize("strategy", ["fewest-calls", "round-robin", "random", "longest-idle"])
async def test_strategies_pick_an_idle_agent(desk: DeskQueue, strategy: str) -> None:
    await desk.set_queue_rules("support", {"strategy": strategy, "wrapup_ms": 0})
    now = T0
    names = ["ann", "bob", "cat"]
    for i, name in enumerate(names):
        await desk.set_agent_status(agent(name), "available", now_ms=now + i)
    picks = []
    for n in range(6):
        now += 1000
        await desk.join(visitor(n), now_ms=now)
        v = await desk.visitor(f"v{n}")
        assert v is not None
        picked = await offered_to(desk, f"v{n}")
        assert picked in names
        picks.append(picked)
        call = await desk.accept(str(picked), v["offer"], now_ms=now + 1)
        await desk.heartbeat([], names, now_ms=now + 2)
        await desk.end_call(call, "agent", str(picked), now_ms=now + 2)
    if strategy == "round-robin":
        assert picks == ["ann", "bob", "cat", "ann", "bob", "cat"]
    if strategy == "fewest-calls":
        assert sorted(picks[:3]) == names and sorted(picks[3:]) == names
    if strategy == "longest-idle":
        assert picks == ["ann", "bob", "cat", "ann", "bob", "cat"]


async def test_wrapup_extend_and_done_and_notes(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.set_agent_status(agent("ada"), "available", now_ms=T0)
    call = await call_with(desk, "ada", T0 + 1)
    await desk.save_notes("ada", call, "Refund issued", "resolved", now_ms=T0 + 2)
    with pytest.raises(QueueError):
        await desk.wrapup("ada", "done", now_ms=T0 + 2)  # still in the call
    await desk.end_call(call, "visitor", "v1", now_ms=T0 + 10_000)
    a = await desk.agent("ada")
    assert a and a["state"] == "wrap_up" and a["wrapup_until"] == T0 + 10_000 + CFG.wrapup_ms
    await desk.wrapup("ada", "extend", 30_000, now_ms=T0 + 11_000)
    a = await desk.agent("ada")
    assert a and a["wrapup_until"] == T0 + 10_000 + CFG.wrapup_ms + 30_000
    # Notes can still be changed during wrap-up, and only by the call's agent.
    await desk.save_notes("ada", call, "Refund issued; follow up", "resolved", now_ms=T0 + 12_000)
    with pytest.raises(QueueError):
        await desk.save_notes("bob", call, "x", "y")
    # A visitor who joins now waits: the agent is wrapping up.
    await desk.join(visitor(2), now_ms=T0 + 13_000)
    assert await offered_to(desk, "v2") is None
    await desk.wrapup("ada", "done", now_ms=T0 + 20_000)
    assert await offered_to(desk, "v2") == "ada"
    record = await desk.call_record(call)
    assert record is not None
    assert record["notes"] == "Refund issued; follow up" and record["disposition"] == "resolved"
    assert record["talk_ms"] == 9_999 and record["wrapup_ms"] == 10_000
    assert record["waited_ms"] == 1 and record["visitor_name"] == "Visitor 1"


async def test_rating_once_by_the_calls_visitor(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.set_agent_status(agent("ada"), "available", now_ms=T0)
    call = await call_with(desk, "ada", T0 + 1)
    await desk.end_call(call, "agent", "ada", now_ms=T0 + 5000)
    with pytest.raises(QueueError):
        await desk.rate("v2", call, 5)
    await desk.rate("v1", call, 4, "Friendly and quick")
    with pytest.raises(QueueError):
        await desk.rate("v1", call, 1)
    record = await desk.call_record(call)
    assert record and record["rating"] == 4 and record["rating_comment"] == "Friendly and quick"


async def test_blind_transfer_puts_visitor_at_head_of_other_queue(desk: DeskQueue) -> None:
    await desk.join(visitor(1, "sales"), now_ms=T0)
    await desk.join(visitor(2, "sales"), now_ms=T0 + 1)
    await desk.join(visitor(3), now_ms=T0 + 2)
    await desk.set_agent_status(agent("ada"), "available", now_ms=T0 + 3)
    call = await call_with(desk, "ada", T0 + 4)
    assert (await desk.visitor("v3") or {})["call"] == call
    with pytest.raises(QueueError) as err:
        await desk.transfer("ada", call, "nowhere", now_ms=T0 + 5)
    assert err.value.code in ("unknown_queue", "stale_queues")
    await desk.transfer("ada", call, "sales", now_ms=T0 + 6)
    assert [v for v, _ in await desk.line("sales")] == ["v3", "v1", "v2"]
    v3 = await desk.visitor("v3")
    assert v3 and v3["state"] == "waiting" and v3["transferred_from"] == "support"
    a = await desk.agent("ada")
    assert a and a["state"] == "wrap_up"
    record = await desk.call_record(call)
    assert record and record["transferred_to"] == "sales"
    kinds = [e["event"] for e in await desk.events()]
    assert "transferred" in kinds


async def test_max_wait_offers_callback_or_overflows(desk: DeskQueue) -> None:
    await desk.set_queue_rules("support", {"max_wait_ms": 60_000})
    await desk.set_queue_rules("sales", {"max_wait_ms": 60_000, "overflow": "support"})
    await desk.join(visitor(1, "support"), now_ms=T0 + 10)
    await desk.join(visitor(2, "sales"), now_ms=T0)
    pubsub = await Listener.open(
        desk.redis, desk.keys.visitor_channel("v1"), desk.keys.visitor_channel("v2")
    )
    await desk.heartbeat(["v1", "v2"], [], now_ms=T0 + 59_000)
    result = await desk.reap(now_ms=T0 + 60_011)
    assert result["max_wait"] == 2
    # v2 moved to support keeping its join time: ahead of v1.
    assert [v for v, _ in await desk.line("support")] == ["v2", "v1"]
    assert await desk.line("sales") == []
    got: dict[str, Any] = {}
    for _ in range(20):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if msg:
            data = json.loads(msg["data"])
            got[data["type"]] = data
        if "moved" in got and "max_wait" in got:
            break
    await pubsub.aclose()
    assert got["moved"]["queue"] == "support" and got["moved"]["reason"] == "max_wait"
    assert got["max_wait"]["queue"] == "support"
    # Reported once only.
    assert (await desk.reap(now_ms=T0 + 61_000))["max_wait"] == 0


async def test_callbacks_are_stored_listed_and_closed(desk: DeskQueue) -> None:
    await desk.join(visitor(1), now_ms=T0)
    await desk.request_callback(
        CallbackRequest(
            id="cb1", queue="support", name="Grace", contact="+44 20 7946 0000", note="after 5pm"
        ),
        visitor_id="v1",
        now_ms=T0 + 5000,
    )
    assert await desk.visitor("v1") is None  # the place was given up for the callback
    await desk.request_callback(
        CallbackRequest(id="cb2", queue="sales", name="Alan", contact="alan@example.com"),
        now_ms=T0 + 6000,
    )
    open_ = await desk.open_callbacks()
    assert [c["id"] for c in open_] == ["cb1", "cb2"]
    assert open_[0]["waited_ms"] == 5000 and open_[0]["note"] == "after 5pm"
    await desk.close_callback("cb1", "ada", "called back", now_ms=T0 + 7000)
    with pytest.raises(QueueError):
        await desk.close_callback("cb1", "ada")
    assert [c["id"] for c in await desk.open_callbacks()] == ["cb2"]
    events = await desk.events()
    abandoned = [e for e in events if e["event"] == "abandoned"]
    assert abandoned[0]["reason"] == "callback"
    assert [e["event"] for e in events].count("callback_requested") == 2
