"""Queue rules through the running desk: business hours and callbacks, priority from the host
site, transfers, positions that never go backwards, statistics, Prometheus and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.queue.client import DeskQueue, QueueConfig
from humandesk.queue.stats import summarise
from humandesk.server.app import ACCOUNTS, QUEUE

from conftest import DeskClient
from helpers import Peer, SignedIn, answering_agent, login_agent, open_agent, open_visitor

Client = TestClient[Any, Any]
PRIORITY_SECRET = "a-priority-secret-shared-with-the-shop"


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client(priority_secret=PRIORITY_SECRET, queue=QueueConfig(wrapup_ms=0))
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support", "sales"], "Ada Lovelace")
    await c.app[ACCOUNTS].add("boss", "correct horse", ["support"], role="supervisor")
    return c


def not_today() -> str:
    """A day of the week that is not today (UTC): hours on that day only are closed now."""
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(time.gmtime().tm_wday + 3) % 7]


def priority_token(sub: str, priority: int, secret: str = PRIORITY_SECRET) -> str:
    """What the host site signs to give its visitor ``sub`` a priority (valid 5 minutes)."""
    now = int(time.time())
    claims = {
        "sub": sub,
        "priority": priority,
        "aud": "humandesk:priority",
        "iss": "humandesk",
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


async def supervisor_json(client: Client, path: str) -> Any:
    boss = await SignedIn.open(client, "boss", "correct horse")
    try:
        resp = await boss.get(path)
        assert resp.status == 200, await resp.text()
        return await (resp.json() if path != "/api/calls.csv" else resp.text())
    finally:
        await boss.close()


async def join(client: Client, name: str, queue: str = "support", **extra: Any) -> Peer:
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": queue, "name": name, **extra})
    await visitor.expect("queued")
    return visitor


async def rated_call(
    client: Client, visitor: Peer, notes: str, disposition: str, score: int, comment: str
) -> str:
    """Ada answers ``visitor`` and saves her notes; the visitor hangs up and rates the call.
    Returns the call's id."""
    agent, _offer, call = await answering_agent(client)
    await visitor.expect("call_started")
    await agent.send({"type": "notes", "call_id": call, "notes": notes, "disposition": disposition})
    await agent.expect("notes_saved")
    await visitor.send({"type": "hangup", "call_id": call})
    await visitor.expect("call_ended")
    await visitor.send({"type": "rate", "call_id": call, "score": score, "comment": comment})
    await visitor.expect("rated")
    return call


async def test_rules_changed_by_another_process_apply_to_the_next_join(
    client: Client, redis: Redis, desk_name: str
) -> None:
    first = await join(client, "Ada")  # this process has now read the queue's rules
    elsewhere = DeskQueue(redis, desk_name)
    await elsewhere.set_queue_rules("support", {"hours": f"{not_today()} 09:00-17:00"})
    late = await open_visitor(client)
    await late.send({"type": "join", "queue": "support", "name": "Grace"})
    assert (await late.expect("error"))["code"] == "queue_closed"
    await elsewhere.set_queue_rules("support", {"priority": 2})
    await late.send({"type": "join", "queue": "support", "name": "Grace"})
    queued = await late.expect("queued")
    assert queued["position"] == 1  # the queue's priority now puts her ahead of Ada
    assert (await client.app[QUEUE].visitor(queued["visitor_id"]) or {})["priority"] == 2
    await first.ws.close()


async def test_closed_queue_refuses_join_and_takes_a_callback(client: Client) -> None:
    desk = client.app[QUEUE]
    # Open only on a day that is not today: closed now, with a next opening.
    await desk.set_queue_rules(
        "support", {"hours": f"{not_today()} 09:00-17:00", "timezone": "UTC"}
    )
    status = await (await client.get("/api/queues/support")).json()
    assert status["open"] is False and status["opens_at"]
    assert status["agents_online"] == 0
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
    error = await visitor.expect("error")
    assert error["code"] == "queue_closed" and error["callback"] is True
    await visitor.send(
        {
            "type": "callback",
            "queue": "support",
            "name": "Grace",
            "contact": "grace@example.com",
            "note": "About order 42",
        }
    )
    saved = await visitor.expect("callback_saved")
    # Agents see open callback requests, and one can close them.
    await login_agent(client, "ada", "correct horse")
    agent = await open_agent(client)
    callbacks = await agent.expect("callbacks")
    assert [c["contact"] for c in callbacks["items"]] == ["grace@example.com"]
    assert callbacks["total"] == 1 and callbacks["offset"] == 0
    await agent.send({"type": "close_callback", "id": saved["id"], "outcome": "called"})
    assert (await agent.expect("callback_closed")) == {"type": "callback_closed", "id": saved["id"]}


async def test_priority_token_from_the_host_site(client: Client) -> None:
    await join(client, "First")
    token = priority_token("shop-user-7", 5)
    vip = await open_visitor(client)
    await vip.send({"type": "join", "name": "VIP", "priority_token": token})
    assert (await vip.expect("queued"))["position"] == 1
    forged = priority_token("x", 9, secret="not-the-secret")
    bad = await open_visitor(client)
    await bad.send({"type": "join", "name": "Faker", "priority_token": forged})
    assert (await bad.expect("error"))["code"] == "bad_message"


async def test_position_never_moves_backwards(client: Client) -> None:
    await join(client, "First")
    second = await join(client, "Second")
    assert second.seen[-1]["position"] == 2
    await join(client, "VIP", priority_token=priority_token("v", 5))
    # The VIP went ahead of both, but the second visitor is not told "3rd" after "2nd".
    assert all(m.get("position", 2) <= 2 for m in await second.quiet(0.5))


async def test_transfer_moves_the_visitor_to_the_head_of_another_queue(client: Client) -> None:
    await join(client, "Sales visitor", "sales")
    agent, offer, _call = await answering_agent(client)
    assert offer["queue"] == "sales"
    # A support visitor talks to Ada next; she transfers them to sales.
    await agent.send({"type": "hangup", "call_id": offer["offer_id"]})
    visitor = await join(client, "Support visitor", "support")
    await join(client, "Sales second", "sales")
    offer2 = await agent.expect("offer")
    assert offer2["visitor"]["name"] == "Support visitor"
    await agent.send({"type": "accept", "offer_id": offer2["offer_id"]})
    call = (await agent.expect("call_started"))["call_id"]
    await visitor.expect("call_started")
    await agent.send({"type": "status", "status": "break"})  # takes effect after the call
    await agent.expect("error")
    await agent.send({"type": "transfer", "call_id": call, "queue": "sales"})
    ended = await visitor.expect("call_ended")
    assert ended["reason"] == "transferred" and ended["queue"] == "sales"
    moved = await visitor.expect("moved")
    assert moved["queue"] == "sales" and moved["position"] == 1
    # Back in line, the visitor can leave again like anyone waiting.
    await visitor.send({"type": "leave"})
    await visitor.expect("left")


async def test_consoles_hear_of_queues_added_and_removed(
    client: Client, redis: Redis, desk_name: str
) -> None:
    await login_agent(client, "ada", "correct horse")
    agent = await open_agent(client)
    welcome = next(m for m in agent.seen if m["type"] == "welcome")
    assert welcome["desk_queues"] == ["sales", "support"]
    elsewhere = DeskQueue(redis, desk_name)  # say, `humandesk queue set billing ...`
    await elsewhere.set_queue_rules("billing", {"priority": 1})
    assert (await agent.expect("desk_queues"))["queues"] == ["billing", "sales", "support"]
    await elsewhere.remove_queue("billing")
    assert (await agent.expect("desk_queues"))["queues"] == ["sales", "support"]


async def test_service_level_uses_each_queues_own_threshold(client: Client) -> None:
    await client.app[QUEUE].set_queue_rules("support", {"sla": 0.001})  # 1 ms: nobody makes it
    visitor = await join(client, "Grace")
    await asyncio.sleep(0.05)
    await answering_agent(client)
    await visitor.expect("call_started")
    own = await supervisor_json(client, "/api/stats")
    assert own["threshold_s"] is None
    assert own["queues"]["support"]["threshold_s"] == 0.001
    assert own["queues"]["sales"]["threshold_s"] == 20
    assert own["queues"]["support"]["answered"] == 1
    assert own["queues"]["support"]["answered_within"] == 0
    assert own["queues"]["support"]["service_level"] == 0
    one = await supervisor_json(client, "/api/stats?threshold=20")
    assert one["queues"]["support"]["threshold_s"] == 20
    assert one["queues"]["support"]["answered_within"] == 1
    # /metrics names each queue's threshold next to the service level it is used for.
    boss = await SignedIn.open(client, "boss", "correct horse")
    try:
        text = await (await boss.get("/metrics")).text()
    finally:
        await boss.close()
    assert 'humandesk_service_level_threshold_seconds{queue="support"} 0.001' in text
    assert 'humandesk_service_level_threshold_seconds{queue="sales"} 20.0' in text
    assert 'humandesk_today_service_level{queue="support"} 0.0' in text
    assert "20 s" not in text


async def test_a_console_reloaded_in_wrap_up_gets_its_saved_notes(client: Client) -> None:
    await client.app[QUEUE].set_queue_rules("support", {"wrapup_ms": 60_000})
    visitor = await join(client, "Grace")
    agent, _offer, call = await answering_agent(client)
    notes = {"type": "notes", "call_id": call, "notes": "<b>refund</b>", "disposition": "solved"}
    await agent.send(notes)
    await agent.expect("notes_saved")
    reloaded = await open_agent(client)  # a reload in the call
    restored = await reloaded.expect("notes_restored")
    assert restored == {
        "type": "notes_restored",
        "call_id": call,
        "notes": "<b>refund</b>",
        "disposition": "solved",
    }
    await reloaded.expect("call_started", call_id=call)  # the call, replayed
    await reloaded.send({"type": "hangup", "call_id": call})
    await reloaded.expect("status", status="wrap_up")
    again = await open_agent(client)  # and one in the wrap-up
    assert (await again.expect("status"))["status"] == "wrap_up"
    assert (await again.expect("notes_restored"))["notes"] == "<b>refund</b>"
    await visitor.expect("call_ended")


async def test_stats_metrics_and_calls_csv(client: Client) -> None:
    visitor = await join(client, '=HYPERLINK("http://evil")')
    await join(client, "Leaves")
    await rated_call(client, visitor, "ok", "solved", 4, "nice")

    stats = await supervisor_json(client, "/api/stats?threshold=20")
    support = stats["queues"]["support"]
    assert support["offered"] == 2 and support["answered"] == 1
    assert support["answered_within"] == 1 and support["service_level"] == 1.0
    assert support["offers_made"] >= 1 and support["offers_accepted"] == 1
    assert support["waiting_now"] in (0, 1)
    boss = await SignedIn.open(client, "boss", "correct horse")
    bad = await boss.get("/api/stats?since=yesterday")
    assert bad.status == 400 and (await bad.json())["error"] == "bad_request"

    text = await (await boss.get("/metrics")).text()
    assert 'humandesk_today_answered{queue="support"} 1.0' in text
    assert "# TYPE humandesk_waiting gauge" in text

    body = await (await boss.get("/api/calls.csv")).text()
    await boss.close()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 1
    row = rows[0]
    assert row["visitor_name"].startswith("'=HYPERLINK")  # no formula injection
    assert (row["disposition"], row["rating"], row["rating_comment"]) == ("solved", "4", "nice")
    assert row["agent"] == "ada" and row["queue"] == "support"

    client.session.cookie_jar.clear()
    assert (await client.get("/api/stats")).status == 401
    assert (await client.get("/api/calls.csv")).status == 401


async def test_calls_csv_holds_no_formula_for_any_separator(client: Client) -> None:
    """The export through the real endpoint, with attacks in every field a visitor or an
    agent writes (see tests/test_reports.py for the rule)."""
    visitor = await join(client, "x;=cmd|' /C calc'!A0", topic="\0=1+1", page="a,@SUM(1)")
    notes = 'ok\n=HYPERLINK("http://evil.example")\tfine'
    await rated_call(client, visitor, notes, "-2+3", 5, "fine,\t+1")

    body = await supervisor_json(client, "/api/calls.csv")
    row = next(csv.DictReader(io.StringIO(body, newline="")))
    assert row["visitor_name"] == "x;'=cmd|' /C calc'!A0"
    assert row["topic"] == "'=1+1"
    assert row["page"] == "a,'@SUM(1)"
    assert row["notes"] == 'ok\n\'=HYPERLINK("http://evil.example")\tfine'
    assert row["disposition"] == "'-2+3"
    assert row["rating_comment"] == "fine,\t'+1"
    assert "\0" not in body
    # A spreadsheet that splits at ";" (or "," or tab), quotes or not, finds no formula.
    for separator in (";", ",", "\t"):
        for line in body.splitlines():
            for part in line.split(separator):
                assert part.lstrip(' "')[:1] not in ("=", "+", "-", "@"), (separator, part)


def test_service_level_formulas() -> None:
    events = [
        {"event": "joined", "queue": "q"},
        {"event": "accepted", "queue": "q", "waited_ms": "5000"},
        {"event": "accepted", "queue": "q", "waited_ms": "30000"},
        {"event": "abandoned", "queue": "q", "waited_ms": "10000", "reason": "left"},
        {"event": "abandoned", "queue": "q", "waited_ms": "50000", "reason": "lease_expired"},
        {"event": "abandoned", "queue": "q", "waited_ms": "1000", "reason": "callback"},
        {"event": "ended", "queue": "q", "talk_ms": "60000"},
        {"event": "wrapup_ended", "queue": "q", "wrapup_ms": "30000"},
    ]
    s = summarise(events, ["q"], 20)["q"]
    assert (s.answered, s.abandoned, s.callbacks) == (2, 2, 1)
    assert s.service_level == 0.5  # 1 of 2 answered within 20 s
    assert s.service_level_2 == 0.5  # (1 + 1) / (2 + 2)
    assert s.avg_wait_s == 17.5 and s.longest_wait_s == 30.0
    assert s.avg_handle_s == 90.0


async def test_the_notes_follow_a_transfer_to_the_next_agents_offer(
    desk_client: DeskClient, redis: Redis, desk_name: str
) -> None:
    # Wrap-ups last: Ada stays in hers after the transfer, and may still write notes there.
    client = await desk_client(queue=QueueConfig(wrapup_ms=60_000))
    await client.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    await client.app[ACCOUNTS].add("bea", "correct horse", ["sales"], "Bea")
    visitor = await join(client, "Grace", page="https://shop.example/shoes/red")
    ada, offer, call = await answering_agent(client)
    assert "handover" not in offer  # a visitor nobody passed on
    assert offer["visitor"]["page"] == "https://shop.example/shoes/red"
    await visitor.expect("call_started")
    await ada.send(
        {
            "type": "notes",
            "call_id": call,
            "notes": "Refund for order 42",
            "disposition": "escalated",
        }
    )
    await ada.expect("notes_saved")
    await ada.send({"type": "transfer", "call_id": call, "queue": "sales"})
    await visitor.expect("moved")
    # Written in the wrap-up, after the transfer: it still reaches the next agent.
    more = "Refund for order 42\nThe box is damaged too."
    await ada.send({"type": "notes", "call_id": call, "notes": more, "disposition": "escalated"})
    await ada.expect("notes_saved")
    # The chat of the call, where the call record keeps one, goes along as it is stored.
    chat = [{"from": "visitor", "text": "Hello?"}]
    keys = DeskQueue(redis, desk_name).keys
    record = json.loads(await redis.hget(keys.call_records, call))
    await redis.hset(keys.call_records, call, json.dumps({**record, "chat": chat}))

    bea = await SignedIn.open(client, "bea", "correct horse")
    try:
        console = await bea.ws()
        await console.send({"type": "status", "status": "available"})
        offer2 = await console.expect("offer")
        assert offer2["visitor"]["transferred_from"] == "support"
        assert offer2["visitor"]["page"] == "https://shop.example/shoes/red"
        assert offer2["handover"] == {
            "call_id": call,
            "queue": "support",
            "agent": "Ada Lovelace",
            "notes": more,
            "disposition": "escalated",
            "chat": chat,
        }
        # A console that reconnects while offered gets the same offer, handover and all.
        await console.ws.close()
        again = await bea.ws()
        replayed = await again.expect("offer")
        assert replayed["handover"] == offer2["handover"]
        await again.ws.close()
    finally:
        await bea.close()
