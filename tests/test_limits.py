"""Abuse limits on the open internet (docs/protocol.md, Limits): floods from one address do not
slow or displace visitors from other addresses, callback requests cannot drown the consoles,
and a socket cannot send without limit. Bots and honest visitors come from different loopback
addresses (Linux routes all of 127.0.0.0/8 to lo); every test sets its limits explicitly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from humandesk.queue.limits import AbuseLimits
from humandesk.server.app import ACCOUNTS, QUEUE

from conftest import DeskClient
from helpers import ROOMY, Peer, SignedIn, origin_of

Client = TestClient[Any, Any]
PASSWORD = "correct horse"


class From:
    """Sockets opened from one loopback address."""

    def __init__(self, client: Client, address: str) -> None:
        self.client = client
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
        )

    async def visitor(self) -> Peer:
        ws = await self.session.ws_connect(
            self.client.make_url("/ws/visitor"), origin=origin_of(self.client)
        )
        return await Peer.welcomed(ws)

    async def close(self) -> None:
        await self.session.close()


#: The ``addresses`` fixture: ``addresses(client, "127.0.0.2", ...)`` opens a source at each.

Sources = Callable[..., list[From]]


@pytest.fixture
def limited(desk_client: DeskClient) -> DeskClient:
    """Makes a desk with these abuse limits, the others out of the way:
    ``await limited(joins_per_minute=4)``."""

    async def make(**limits: Any) -> Client:
        return await desk_client(limits=AbuseLimits(**{**ROOMY.__dict__, **limits}))

    return make


@pytest.fixture
async def addresses() -> AsyncIterator[Sources]:
    """Opens sources at loopback addresses, all closed after the test:
    ``bots, honest = addresses(client, "127.0.0.2", "127.0.0.3")``."""
    opened: list[From] = []

    def open_from(client: Client, *names: str) -> list[From]:
        sources = [From(client, name) for name in names]
        opened.extend(sources)
        return sources

    yield open_from
    for source in opened:
        await source.close()


async def join(peer: Peer, name: str) -> dict[str, Any]:
    """Joins; the `queued` or `error` answer."""
    await peer.send({"type": "join", "queue": "support", "name": name})
    while True:
        msg = await peer.ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        peer.seen.append(data)
        if data["type"] in ("queued", "error"):
            return data


async def test_a_flood_from_one_address_does_not_displace_other_visitors(
    limited: DeskClient, addresses: Sources
) -> None:
    client = await limited(joins_per_minute=20, waiting_per_address=3)
    await client.app[ACCOUNTS].add("ada", PASSWORD, ["support"])
    bots, honest = addresses(client, "127.0.0.2", "127.0.0.3")

    sockets = await asyncio.gather(*(bots.visitor() for _ in range(200)))
    answers = await asyncio.gather(*(join(s, f"bot {i}") for i, s in enumerate(sockets)))
    queued = [a for a in answers if a["type"] == "queued"]
    refused = [a for a in answers if a["type"] == "error"]
    assert len(queued) == 3, answers[:5]
    assert {(a["code"], a["limit"]) for a in refused} <= {
        ("rate_limited", "waiting"),
        ("rate_limited", "joins"),
    }
    assert all(a["retry_after_s"] >= 1 for a in refused)

    person = await honest.visitor()
    mine = await join(person, "A real customer")
    assert mine["type"] == "queued" and mine["position"] == 4  # behind the 3 bots let in

    # The line: the 3 bots let in, then the customer; no other bot anywhere.
    line = await client.app[QUEUE].line_ids("support")
    assert sorted(line[:3]) == sorted(a["visitor_id"] for a in queued)
    assert line[3:] == [mine["visitor_id"]]


async def test_the_per_address_join_rate(limited: DeskClient, addresses: Sources) -> None:
    client = await limited(joins_per_minute=4, waiting_per_address=100)
    bots, other = addresses(client, "127.0.0.4", "127.0.0.5")
    answers = [await join(await bots.visitor(), f"b{i}") for i in range(6)]
    assert [a["type"] for a in answers] == ["queued"] * 4 + ["error"] * 2
    assert answers[4]["limit"] == "joins" and 1 <= answers[4]["retry_after_s"] <= 60
    assert (await join(await other.visitor(), "Someone else"))["position"] == 5


async def test_a_socket_flood_is_refused_then_closed(
    limited: DeskClient, addresses: Sources
) -> None:
    client = await limited(messages_per_second=20, message_burst=30)
    honest, bots = addresses(client, "127.0.0.6", "127.0.0.7")
    person = await honest.visitor()
    assert (await join(person, "Waiting"))["position"] == 1
    flooder = await bots.visitor()
    for _ in range(2000):
        if flooder.ws.closed:
            break
        await flooder.ws.send_str('{"type": "ping"}')
    code = await flooder.closed()
    assert code == 1008
    # At most the burst (and what refilled meanwhile) was answered; the rest were refused,
    # and 50 refusals closed the socket (answers still queued when it closed are dropped).
    pongs = [m for m in flooder.seen if m["type"] == "pong"]
    assert len(pongs) <= 60, len(pongs)
    assert all(m.get("code") == "rate_limited" for m in flooder.seen if m["type"] == "error")
    # The honest visitor is untouched.
    vid = next(m for m in person.seen if m["type"] == "queued")["visitor_id"]
    assert await client.app[QUEUE].position(vid) == 1 and not person.ws.closed


async def test_callback_requests_are_limited_and_reach_consoles_as_changes(
    limited: DeskClient, addresses: Sources
) -> None:
    """Before: every request re-sent the whole list to every console (2,000 requests of 900
    characters sent 2 GB to each console). Now a console gets each request once."""
    client = await limited(callbacks_per_hour=1000, open_callbacks=150)
    await client.app[ACCOUNTS].add("ada", PASSWORD, ["support"])
    session = await SignedIn.open(client, "ada", PASSWORD)
    console = await session.ws()
    assert (await console.expect("callbacks"))["total"] == 0
    received = 0

    async def count() -> None:
        nonlocal received
        async for msg in console.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                received += len(msg.data)
                console.seen.append(json.loads(msg.data))

    reader = asyncio.create_task(count())
    (source,) = addresses(client, "127.0.0.8")
    visitor = await source.visitor()
    note = "x" * 900
    saved = full = 0
    for i in range(160):  # (50 refusals on one socket would close it: see the error limit)
        await visitor.send(
            {
                "type": "callback",
                "queue": "support",
                "name": f"V{i}",
                "contact": "a@b.c",
                "note": note,
            }
        )
        while True:
            reply = await visitor.ws.receive(timeout=10)
            assert reply.type is aiohttp.WSMsgType.TEXT, (i, reply, visitor.ws.close_code)
            data = json.loads(reply.data)
            if data["type"] == "callback_saved":
                saved += 1
                break
            if data["type"] == "error":
                assert data["code"] == "callbacks_full", data
                full += 1
                break
    assert (saved, full) == (150, 10)
    await asyncio.sleep(0.5)
    added = [m for m in console.seen if m["type"] == "callback_added"]
    assert len(added) == 150
    assert received < 150 * 1500, received  # each request once, not the list per request
    print(f"150 callback requests sent {received:,} bytes to a console")

    # A console that connects now pages through them.
    reader.cancel()
    fresh = await session.ws()
    page = await fresh.expect("callbacks")
    assert (page["offset"], page["total"], len(page["items"])) == (0, 150, 50)
    names = {item["name"] for item in page["items"]}
    for offset in (50, 100):
        await fresh.send({"type": "callbacks", "offset": offset})
        more = await fresh.expect("callbacks")
        assert (more["offset"], len(more["items"])) == (offset, 50)
        names |= {item["name"] for item in more["items"]}
    assert names == {f"V{i}" for i in range(150)}
    await session.close()


async def test_callback_requests_per_address(limited: DeskClient, addresses: Sources) -> None:
    client = await limited(callbacks_per_hour=3)
    one, two = addresses(client, "127.0.0.9", "127.0.0.10")
    visitor = await one.visitor()
    for i in range(4):
        await visitor.send(
            {"type": "callback", "queue": "support", "name": f"V{i}", "contact": "a@b.c"}
        )
    answers = [await visitor.expect(t) for t in ("callback_saved",) * 3]
    refused = await visitor.expect("error")
    assert len(answers) == 3 and refused["code"] == "rate_limited"
    assert refused["limit"] == "callbacks" and 600 <= refused["retry_after_s"] <= 1200
    other = await two.visitor()
    await other.send({"type": "callback", "queue": "support", "name": "W", "contact": "a@b.c"})
    assert await other.expect("callback_saved")
