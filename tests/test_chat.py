"""Chat in a call, through the desk (docs/protocol.md, Chat): both ways over real sockets on
a real Redis, in order, bounded, replayed after a reconnect, on the call record and its CSV,
erased and purged with it, and across two server processes."""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from humandesk.queue.client import AgentInfo, DeskQueue, NewVisitor
from humandesk.queue.privacy import DAY_MS, Retention, erase, purge
from humandesk.server.app import ACCOUNTS, QUEUE
from humandesk.server.reports import CSV_COLUMNS

from conftest import DeskClient, free_port, python_env
from helpers import (
    HUMANDESK,
    ROOMY,
    Peer,
    SignedIn,
    add_agent,
    answering_agent,
    open_agent,
    open_visitor,
    wait_ready,
)

Client = TestClient[Any, Any]
PASSWORD = "correct horse"


async def make_client(desk_client: DeskClient, **settings: Any) -> Client:
    c = await desk_client(**settings)
    await c.app[ACCOUNTS].add("ada", PASSWORD, ["support"], "Ada Lovelace")
    await c.app[ACCOUNTS].add("boss", PASSWORD, ["support"], role="supervisor")
    return c


async def in_call(client: Client) -> tuple[Peer, Peer, str, str]:
    """A visitor in a call with ada: (visitor, agent, call id, the visitor's ticket)."""
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace", "topic": "zip"})
    ticket = (await visitor.expect("queued"))["ticket"]
    agent, _offer, call = await answering_agent(client)
    await visitor.expect("call_started")
    return visitor, agent, call, ticket


async def test_chat_goes_both_ways_in_order_and_to_the_call_record(
    desk_client: DeskClient,
) -> None:
    client = await make_client(desk_client)
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace", "topic": "zip"})
    await visitor.expect("queued")
    # Before the call: nothing to chat in.
    await visitor.send({"type": "chat", "call_id": "1", "text": "hello?"})
    assert (await visitor.expect("error"))["code"] == "wrong_state"
    agent, _offer, call = await answering_agent(client)
    await visitor.expect("call_started")

    await visitor.send({"type": "chat", "call_id": call, "text": "  My order is #1234  "})
    mine = await visitor.expect("chat")
    theirs = await agent.expect("chat")
    assert mine == theirs
    assert (mine["seq"], mine["from"], mine["text"]) == (1, "visitor", "My order is #1234")
    assert mine["call_id"] == call and isinstance(mine["at"], int)
    reply = 'See https://shop.example/r 😀 Grüße, "quoted" </script>\nnext line'
    await agent.send({"type": "chat", "call_id": call, "text": reply})
    assert (await agent.expect("chat"))["seq"] == 2
    line = await visitor.expect("chat")
    assert (line["seq"], line["from"], line["text"]) == (2, "agent", reply)
    # Each line reached the sender once (its confirmation) and the other party once.
    assert [m["seq"] for m in agent.seen if m["type"] == "chat"] == [1, 2]
    assert [m["seq"] for m in visitor.seen if m["type"] == "chat"] == [1, 2]

    # Only the socket's own call; bad lines are refused with documented errors.
    await agent.send({"type": "chat", "call_id": "999", "text": "wrong call"})
    assert (await agent.expect("error"))["code"] == "wrong_state"
    await visitor.send({"type": "chat", "call_id": call, "text": "x" * 1001})
    assert (await visitor.expect("error"))["code"] == "bad_message"

    await agent.send({"type": "hangup", "call_id": call})
    await visitor.expect("call_ended")
    await visitor.send({"type": "chat", "call_id": call, "text": "too late"})
    assert (await visitor.expect("error"))["code"] == "wrong_state"

    boss = await SignedIn.open(client, "boss", PASSWORD)
    body = await (await boss.get("/api/calls.csv")).text()
    await boss.close()
    assert "chat" in CSV_COLUMNS
    (row,) = list(csv.DictReader(io.StringIO(body)))
    chat = row["chat"].splitlines()
    assert len(chat) == 3
    assert chat[0].endswith(" visitor: My order is #1234")
    assert chat[1].endswith(' agent: See https://shop.example/r 😀 Grüße, "quoted" </script>')
    assert chat[2] == "next line"
    record = await client.app[QUEUE].call_record(call)
    assert [(m["seq"], m["from"], m["text"]) for m in record["chat"]] == [
        (1, "visitor", "My order is #1234"),
        (2, "agent", reply),
    ]


async def test_a_call_holds_at_most_the_configured_lines(desk_client: DeskClient) -> None:
    client = await make_client(desk_client, limits=replace(ROOMY, chat_messages=3))
    visitor, agent, call, _ticket = await in_call(client)
    for n in range(3):
        sender = visitor if n % 2 == 0 else agent
        await sender.send({"type": "chat", "call_id": call, "text": f"line {n}"})
        await sender.expect("chat", seq=n + 1)
    await agent.send({"type": "chat", "call_id": call, "text": "one more"})
    refused = await agent.expect("error")
    assert (refused["code"], refused["in_reply_to"]) == ("chat_full", "chat")
    # Refused means nothing changed: the visitor saw no fourth line, the call goes on.
    await visitor.quiet(0.3)
    assert [m["seq"] for m in visitor.seen if m["type"] == "chat"] == [1, 2, 3]
    await agent.send({"type": "signal", "call_id": call, "candidate": None})
    await visitor.expect("signal")


async def test_a_party_that_reconnects_gets_the_chat_again(desk_client: DeskClient) -> None:
    client = await make_client(desk_client)
    visitor, agent, call, ticket = await in_call(client)
    for seq, (who, text) in enumerate(((visitor, "one"), (agent, "two"), (visitor, "three")), 1):
        await who.send({"type": "chat", "call_id": call, "text": text})
        await who.expect("chat", seq=seq)
    await visitor.ws.close()
    visitor = await open_visitor(client)
    await visitor.send({"type": "resume", "ticket": ticket})
    await visitor.expect("call_started")
    history = await visitor.expect("chat_history")
    assert history["call_id"] == call
    assert [(m["seq"], m["from"], m["text"]) for m in history["messages"]] == [
        (1, "visitor", "one"),
        (2, "agent", "two"),
        (3, "visitor", "three"),
    ]
    # The call_started came first: the page builds its call, then shows the chat.
    kinds = [m["type"] for m in visitor.seen]
    assert kinds.index("call_started") < kinds.index("chat_history")
    # The console reloads: it gets the chat again too.
    await agent.ws.close()
    agent = await open_agent(client)
    await agent.expect("call_started")
    again = await agent.expect("chat_history")
    assert [m["seq"] for m in again["messages"]] == [1, 2, 3]
    # And the chat goes on where it was.
    await agent.send({"type": "chat", "call_id": call, "text": "four"})
    assert (await visitor.expect("chat"))["seq"] == 4


ADA = AgentInfo("ada", "Ada", ["support"])


async def chatted_call(desk: DeskQueue, vid: str, at: int) -> str:
    """A call answered at ``at`` with two lines of chat, then ended."""
    await desk.join(NewVisitor(id=vid, queue="support", name=f"Name {vid}"), now_ms=at)
    agent = await desk.agent("ada")
    assert agent is not None
    call = await desk.accept("ada", str(agent["offer"]), now_ms=at + 1000)
    await desk.chat(call, "visitor", vid, f"secret of {vid}", max_messages=10, now_ms=at + 2000)
    await desk.chat(call, "agent", "ada", "noted", max_messages=10, now_ms=at + 3000)
    await desk.end_call(call, "visitor", vid, now_ms=at + 4000)
    return call


async def test_erasure_and_the_retention_purge_take_the_chat_with_the_record(
    desk: DeskQueue,
) -> None:
    now = await desk.clock_ms()
    await desk.set_queue_rules("support", {"wrapup_ms": 0})
    await desk.set_agent_status(ADA, "available", now_ms=now - 200 * DAY_MS)
    old = await chatted_call(desk, "v-old", now - 100 * DAY_MS)
    kept = await chatted_call(desk, "v-kept", now - 2000)
    erased = await chatted_call(desk, "v-erased", now - 1000)
    assert [m["text"] for m in await desk.transcript(erased)] == ["secret of v-erased", "noted"]
    assert [m["seq"] for m in await desk.transcript(old)] == [1, 2]

    await erase(desk, visitor_ids=["v-erased"])
    assert await desk.transcript(erased) == []
    await purge(desk, Retention(days=90, audit_days=365))
    assert await desk.transcript(old) == []
    assert [m["seq"] for m in await desk.transcript(kept)] == [1, 2]
    raw = await desk.redis.hgetall(desk.keys.call_records)
    assert not any(b"secret of v-erased" in v or b"secret of v-old" in v for v in raw.values())


# Two server processes ------------------------------------------------------------------------


async def test_chat_between_two_server_processes(
    redis_url: str, desk_name: str, tmp_path: Path
) -> None:
    """A visitor on one `humandesk serve`, the agent on another, one Redis: the chat goes
    both ways, in order. Prints the latency of a line from sender to the other party."""
    ports = [free_port(), free_port()]
    env = {
        **python_env(),
        "HUMANDESK_REDIS_URL": redis_url,
        "HUMANDESK_DESK": desk_name,
        "HUMANDESK_SECRET_KEY": "chat-test-key-" + desk_name,
        "HUMANDESK_DATA_DIR": str(tmp_path),
        "HUMANDESK_MESSAGES_PER_SECOND": "1000",
        "HUMANDESK_MESSAGE_BURST": "1000",
    }
    added = await asyncio.to_thread(add_agent, env, "ada", PASSWORD)
    assert added.returncode == 0, added.stderr
    servers = [
        await asyncio.to_thread(
            subprocess.Popen,
            [*HUMANDESK, "serve"],
            env={**env, "HUMANDESK_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    a_base, b_base = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        for base, server in zip((a_base, b_base), servers, strict=True):
            await asyncio.to_thread(wait_ready, base, server)
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as on_a,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as on_b,
        ):
            ws_url = "/ws/visitor"
            visitor = await Peer.welcomed(
                await on_a.ws_connect(a_base.replace("http", "ws") + ws_url, origin=a_base)
            )
            resp = await on_b.post(
                b_base + "/api/login",
                json={"username": "ada", "password": PASSWORD},
                headers={"Origin": b_base},
            )
            assert resp.status == 200
            agent = await Peer.welcomed(
                await on_b.ws_connect(b_base.replace("http", "ws") + "/ws/agent", origin=b_base)
            )
            await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
            await visitor.expect("queued")
            await agent.send({"type": "status", "status": "available"})
            offer = await agent.expect("offer")
            await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
            call = (await agent.expect("call_started"))["call_id"]
            await visitor.expect("call_started")

            latencies: list[float] = []
            rounds = 60
            for n in range(rounds):
                sender, receiver = (visitor, agent) if n % 2 == 0 else (agent, visitor)
                sent = time.perf_counter()
                await sender.send({"type": "chat", "call_id": call, "text": f"line {n}"})
                line = await receiver.expect("chat", seq=n + 1)
                latencies.append((time.perf_counter() - sent) * 1000)
                await sender.expect("chat", seq=n + 1)  # the sender's confirmation
                assert line["text"] == f"line {n}"
                assert line["from"] == ("visitor" if n % 2 == 0 else "agent")
            for peer in (visitor, agent):
                seqs = [m["seq"] for m in peer.seen if m["type"] == "chat"]
                assert sorted(seqs) == list(range(1, rounds + 1)) and len(set(seqs)) == rounds
            ordered = sorted(latencies)
            print(
                f"chat across two server processes: {rounds} lines, latency from the sender's "
                f"send to the other party: median {statistics.median(ordered):.1f} ms, "
                f"p95 {ordered[int(0.95 * (rounds - 1))]:.1f} ms, max {ordered[-1]:.1f} ms"
            )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            await asyncio.to_thread(server.wait, 15)


@pytest.mark.parametrize("role", ["visitor", "agent"])
async def test_chat_counts_against_the_socket_message_limit(
    desk_client: DeskClient, role: str
) -> None:
    client = await make_client(
        desk_client, limits=replace(ROOMY, messages_per_second=0.01, message_burst=40)
    )
    visitor, agent, call, _ticket = await in_call(client)
    sender = visitor if role == "visitor" else agent
    for n in range(40):
        await sender.send({"type": "chat", "call_id": call, "text": f"{n}"})
    got = await sender.expect_any(("error",), timeout=10)
    assert (got["code"], got["limit"]) == ("rate_limited", "messages")


async def test_a_transfer_hands_the_chat_to_the_next_agent(desk_client: DeskClient) -> None:
    client = await make_client(desk_client)
    await client.app[ACCOUNTS].add("bob", PASSWORD, ["sales"], "Bob")
    visitor, ada, call, _ticket = await in_call(client)
    await visitor.send({"type": "chat", "call_id": call, "text": "It is order 1234"})
    await ada.expect("chat", seq=1)
    await ada.send({"type": "transfer", "call_id": call, "queue": "sales"})
    await visitor.expect("call_ended", reason="transferred")
    bob = await SignedIn.open(client, "bob", PASSWORD)
    try:
        console = await bob.ws()
        await console.send({"type": "status", "status": "available"})
        offer = await console.expect("offer")
        chat = offer["handover"]["chat"]
        assert [(m["from"], m["text"]) for m in chat] == [("visitor", "It is order 1234")]
        await console.send({"type": "accept", "offer_id": offer["offer_id"]})
        new_call = (await console.expect("call_started"))["call_id"]
        # The new call has a chat of its own, counted from 1.
        await visitor.expect("call_started", call_id=new_call)
        await console.send({"type": "chat", "call_id": new_call, "text": "Hello, Bob here"})
        assert (await visitor.expect("chat", call_id=new_call))["seq"] == 1
    finally:
        await bob.close()
