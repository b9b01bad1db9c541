"""Personal data on a real redis-server: the retention purge, erasing one visitor, the audit
log, through the queue, the running desk and the `humandesk` command."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import subprocess
from dataclasses import asdict
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from humandesk.queue.client import AgentInfo, CallbackRequest, DeskQueue, NewVisitor, QueueConfig
from humandesk.queue.privacy import (
    DAY_MS,
    ErasureError,
    Retention,
    contact_key,
    erase,
    purge,
)
from humandesk.queue.stats import events_between, summarise
from humandesk.server.app import ACCOUNTS, AUDIT, QUEUE
from humandesk.server.config import Config

from conftest import DeskClient, python_env
from helpers import add_agent, open_visitor, run_humandesk

Client = TestClient[Any, Any]
ADA = AgentInfo(name="ada", display_name="Ada", queues=["support"])
BEA = AgentInfo(name="bea", display_name="Bea", queues=["sales"])


async def offer_of(desk: DeskQueue, name: str) -> str:
    record = await desk.agent(name)
    assert record is not None and record["state"] == "offered", record
    return str(record["offer"])


async def visit(desk: DeskQueue, vid: str, at: int, *, transfer: bool = False) -> list[str]:
    """A whole visit through the scripts at time ``at``: joined, answered by ada, notes, ended
    (or transferred to sales and answered by bea there), rated. Returns the call ids."""
    await desk.join(
        NewVisitor(
            id=vid, queue="support", name=f"Name of {vid}", topic="my order", page="https://s/p"
        ),
        now_ms=at,
    )
    call = await desk.accept("ada", await offer_of(desk, "ada"), now_ms=at + 1000)
    await desk.save_notes("ada", call, f"notes about {vid}", "solved", now_ms=at + 2000)
    calls = [call]
    if transfer:
        await desk.transfer("ada", call, "sales", now_ms=at + 3000)
        call = await desk.accept("bea", await offer_of(desk, "bea"), now_ms=at + 4000)
        calls.append(call)
    await desk.end_call(call, "visitor", vid, now_ms=at + 60_000)
    await desk.rate(vid, call, 4, "kind", now_ms=at + 61_000)
    return calls


async def staffed(desk: DeskQueue, at: int) -> None:
    """ada (support) and bea (sales) Available, with no wrap-up after calls."""
    await desk.set_queue_rules("support", {"wrapup_ms": 0})
    await desk.set_queue_rules("sales", {"wrapup_ms": 0})
    await desk.set_agent_status(ADA, "available", now_ms=at)
    await desk.set_agent_status(BEA, "available", now_ms=at)


async def all_events(desk: DeskQueue) -> list[tuple[str, dict[str, str]]]:
    rows = await desk.redis.xrange(desk.keys.events)
    return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]


async def interval_stats(desk: DeskQueue, since: int, until: int) -> dict[str, Any]:
    events = await events_between(desk, since, until)
    return {q: asdict(s) for q, s in summarise(events, ["support", "sales"], 20.0).items()}


async def records(desk: DeskQueue) -> dict[str, dict[str, Any]]:
    raw = await desk.redis.hgetall(desk.keys.call_records)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def callback(desk: DeskQueue, cb_id: str, contact: str, at: int, vid: str = "") -> None:
    await desk.request_callback(
        CallbackRequest(id=cb_id, queue="support", name=f"Name {cb_id}", contact=contact),
        visitor_id=vid,
        now_ms=at,
    )


# Retention ----------------------------------------------------------------------------------


async def test_retention_deletes_what_is_older_and_keeps_the_rest(desk: DeskQueue) -> None:
    k = desk.keys
    now = await desk.clock_ms()
    old = now - 100 * DAY_MS
    # 1,200 old events (their stream ids are their times), before anything new is logged.
    pipe = desk.redis.pipeline(transaction=False)
    for i in range(1200):
        fields = {"event": "joined", "ts": str(old), "queue": "support", "visitor": f"o{i}"}
        pipe.xadd(k.events, fields, id=f"{old}-{i + 1}")
    await pipe.execute()
    # 250 old call records written as they are stored, two old visits and one new one.
    pipe = desk.redis.pipeline(transaction=False)
    for i in range(250):
        record = {"id": f"old{i}", "visitor_id": f"o{i}", "visitor_name": "Old", "answered": old}
        pipe.hset(k.call_records, f"old{i}", json.dumps(record))
        pipe.zadd(k.records_by_time, {f"old{i}": old})
    await pipe.execute()
    await staffed(desk, old - 10_000)
    old_calls = await visit(desk, "vold", old) + await visit(desk, "vold2", old + 100_000)
    new_calls = await visit(desk, "vnew", now - 3000)
    # Callback requests: old open, old closed, new open, new closed.
    await callback(desk, "cb-old-open", "old@example.com", old)
    await callback(desk, "cb-old-closed", "old2@example.com", old)
    await desk.close_callback("cb-old-closed", "ada", "done", now_ms=old + 1000)
    await callback(desk, "cb-new-open", "new@example.com", now)
    await callback(desk, "cb-new-closed", "new2@example.com", now)
    await desk.close_callback("cb-new-closed", "ada", "done", now_ms=now)
    # Anonymised events of erased visitors, and audit entries, old and new.
    await desk.redis.zadd(k.anonymous_events, {'{"event":"joined","n":"1"}': old})
    await desk.redis.zadd(k.anonymous_events, {'{"event":"joined","n":"2"}': now})
    await desk.redis.xadd(k.audit, {"action": "login", "actor": "ada"}, id=f"{now - 400 * DAY_MS}")
    await desk.redis.xadd(k.audit, {"action": "login", "actor": "ada"}, id=f"{now - 100 * DAY_MS}")
    await desk.redis.xadd(k.audit, {"action": "login", "actor": "ada"})
    events_before = await all_events(desk)
    today = await interval_stats(desk, now - DAY_MS, now)

    pubsub = desk.redis.pubsub()
    await pubsub.subscribe(k.callbacks_channel)
    result = await purge(desk, Retention(days=90, audit_days=365), batch=100)

    assert result.records == 250 + len(old_calls)
    assert result.callbacks == 2
    assert result.events == 1200
    assert result.anonymous_events == 1 and result.audit == 1
    assert result.runs > 3  # in bounded runs, not at once
    assert set(await records(desk)) == set(new_calls)
    assert await desk.redis.zcard(k.records_by_time) == len(new_calls)
    callbacks = await desk.redis.hkeys(k.callbacks)
    assert sorted(c.decode() for c in callbacks) == ["cb-new-closed", "cb-new-open"]
    assert [c["id"] for c in await desk.open_callbacks()] == ["cb-new-open"]
    # Every entry logged since the cutoff is still there, none from before it.
    events_after = await all_events(desk)
    cutoff = now - 90 * DAY_MS
    assert events_after == [(i, f) for i, f in events_before if int(i.split("-")[0]) >= cutoff]
    assert await desk.redis.zcard(k.anonymous_events) == 1
    audit = [int(i.split(b"-")[0]) for i, _f in await desk.redis.xrange(k.audit)]
    assert audit[0] == now - 100 * DAY_MS and len(audit) == 2
    # The statistics of the period are whole; older intervals have nothing left to count.
    assert await interval_stats(desk, now - DAY_MS, now) == today
    assert not [e for _i, e in events_after if e.get("visitor", "").startswith("o")]
    # Consoles were told that open requests went.
    told = []
    for _ in range(3):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message:
            told.append(json.loads(message["data"]))
    assert {"type": "callback_closed", "id": "cb-old-open", "queue": "support"} in told
    assert len(told) == 1  # only the open one was on the consoles' list
    await pubsub.aclose()
    # Nothing more to delete: a second purge deletes nothing.
    assert (await purge(desk, Retention(days=90, audit_days=365))).total == 0


async def test_retention_zero_keeps_everything(desk: DeskQueue) -> None:
    now = await desk.clock_ms()
    old = now - 1000 * DAY_MS
    await staffed(desk, old - 1000)
    calls = await visit(desk, "v1", old)
    await callback(desk, "cb1", "a@example.com", old)
    await desk.redis.xadd(desk.keys.audit, {"action": "login"}, id=f"{old}")
    result = await purge(desk, Retention(days=0, audit_days=0))
    assert result.total == 0 and result.runs == 0
    assert set(await records(desk)) == set(calls)
    assert len(await desk.open_callbacks()) == 1
    assert await desk.redis.xlen(desk.keys.audit) == 1
    with pytest.raises(ValueError):
        Retention(days=-1)


# Erasure ------------------------------------------------------------------------------------


async def test_erase_by_visitor_id_removes_theirs_and_nothing_else(desk: DeskQueue) -> None:
    now = await desk.clock_ms()
    t = now - 3_600_000
    await staffed(desk, t - 1000)
    a_calls = await visit(desk, "va", t, transfer=True)
    b_calls = await visit(desk, "vb", t + 100_000)
    await callback(desk, "cb-b", "b@example.com", t + 200_000)
    assert len(a_calls) == 2
    before = await all_events(desk)
    stats = await interval_stats(desk, t - 1000, now)
    b_events = [e for e in before if e[1].get("visitor") == "vb" or e[1].get("call") in b_calls]

    result = await erase(desk, visitor_ids=["va"])

    assert result.visitors == ["va"] and result.live == 0
    assert result.call_records == 2 and result.callbacks == 0
    left = await records(desk)
    assert set(left) == set(b_calls)
    assert left[b_calls[0]]["notes"] == "notes about vb" and left[b_calls[0]]["rating"] == 4
    assert "va" not in json.dumps(left) and "Name of va" not in json.dumps(left)
    after = await all_events(desk)
    gone = [e for e in before if e not in after]
    assert len(gone) == result.events > 0
    for _id, fields in after:
        assert fields.get("visitor") != "va" and fields.get("call") not in a_calls
    assert all(e in after for e in b_events)  # another visitor's events are untouched
    # The rating event named only the call: it went too, and so did the transfer's.
    assert {f["event"] for _i, f in gone} >= {"joined", "accepted", "transferred", "rated"}
    # The statistics count exactly what they counted before.
    assert await interval_stats(desk, t - 1000, now) == stats
    anonymous = await desk.redis.zrange(desk.keys.anonymous_events, 0, -1)
    assert len(anonymous) == result.events
    for member in anonymous:
        kept = json.loads(member)
        assert not {"visitor", "call", "offer", "callback"} & set(kept)
        assert "va" not in member.decode()
    assert [c["id"] for c in await desk.open_callbacks()] == ["cb-b"]


async def test_erase_takes_a_waiting_visitor_out_of_the_line_and_ends_a_call(
    desk: DeskQueue,
) -> None:
    await desk.set_agent_status(ADA, "available")
    await desk.join(NewVisitor(id="v0", queue="support", name="In a call"))
    call = await desk.accept("ada", await offer_of(desk, "ada"))
    for n in (1, 2, 3):
        await desk.join(NewVisitor(id=f"v{n}", queue="support", name=f"Waiting {n}"))
    assert await desk.position("v3") == 3

    waiting = await erase(desk, visitor_ids=["v2"])
    assert waiting.live == 1 and waiting.call_records == 0
    assert [v for v, _ in await desk.line("support")] == ["v1", "v3"]
    assert await desk.position("v3") == 2
    assert await desk.visitor("v2") is None
    assert await desk.redis.zscore(desk.keys.leases, "v:v2") is None
    assert not [e for _i, e in await all_events(desk) if e.get("visitor") == "v2"]

    talking = await erase(desk, visitor_ids=["v0"])
    assert talking.live == 1 and talking.call_records == 1
    assert await desk.call(call) is None and await desk.call_record(call) is None
    ada = await desk.agent("ada")
    assert ada is not None and ada["state"] != "in_call"
    # Nothing of anyone else went, and an unknown id erases nothing.
    assert [v for v, _ in await desk.line("support")] == ["v1", "v3"]
    nothing = await erase(desk, visitor_ids=["nobody"])
    assert nothing.counts() == {
        "visitors": 1,
        "live": 0,
        "call_records": 0,
        "callbacks": 0,
        "events": 0,
    }


async def test_erase_by_contact_removes_their_callback_requests_and_visit(
    desk: DeskQueue,
) -> None:
    now = await desk.clock_ms()
    await desk.join(NewVisitor(id="vj", queue="support", name="Jane"), now_ms=now - 9000)
    await callback(desk, "cb-j1", "Jane.Doe@Example.com", now - 8000, vid="vj")
    await callback(desk, "cb-j2", " jane.doe@example.com ", now - 7000)
    await callback(desk, "cb-bob", "bob@example.com", now - 6000)
    await callback(desk, "cb-p1", "+49 (30) 1234-567", now - 5000)
    await callback(desk, "cb-p2", "+49 30 7654321", now - 4000)
    await desk.close_callback("cb-j2", "ada", "reached her", now_ms=now - 3000)
    stats = await interval_stats(desk, now - DAY_MS, now)
    bob_events = [e for e in await all_events(desk) if e[1].get("callback") == "cb-bob"]

    result = await erase(desk, contact="JANE.DOE@example.com")

    assert result.callbacks == 2 and result.visitors == ["vj"]
    # vj joined and gave up the place; two requests; one closed: five entries.
    assert result.events == 5
    ids = sorted(c.decode() for c in await desk.redis.hkeys(desk.keys.callbacks))
    assert ids == ["cb-bob", "cb-p1", "cb-p2"]
    events = await all_events(desk)
    assert not [e for _i, e in events if e.get("visitor") == "vj"]
    assert not [e for _i, e in events if e.get("callback") in ("cb-j1", "cb-j2")]
    assert all(e in events for e in bob_events)
    assert await interval_stats(desk, now - DAY_MS, now) == stats
    # Phone numbers match by their digits.
    phone = await erase(desk, contact="+49 30 1234567")
    assert phone.callbacks == 1
    assert sorted(c["id"] for c in await desk.open_callbacks()) == ["cb-bob", "cb-p2"]
    assert contact_key("+49 (30) 1234-567") == contact_key("49301234567") == "49301234567"
    assert contact_key(" Jane.Doe@Example.COM") == "jane.doe@example.com"
    with pytest.raises(ErasureError):
        await erase(desk, contact="  ---  ")
    with pytest.raises(ErasureError):
        await erase(desk)


async def test_callback_items_for_consoles_carry_no_visitor_id(desk: DeskQueue) -> None:
    await desk.join(NewVisitor(id="vj", queue="support", name="Jane"))
    pubsub = desk.redis.pubsub()
    await pubsub.subscribe(desk.keys.callbacks_channel)
    await callback(desk, "cb1", "jane@example.com", await desk.clock_ms(), vid="vj")
    message = None
    for _ in range(3):  # the subscription's confirmation comes first, as None
        message = message or await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await pubsub.aclose()
    assert message is not None
    added = json.loads(message["data"])
    assert added["type"] == "callback_added" and added["item"]["id"] == "cb1"
    assert "visitor_id" not in added["item"]
    stored = json.loads(await desk.redis.hget(desk.keys.callbacks, "cb1"))
    assert stored["visitor_id"] == "vj"  # kept so that erasing finds the visit
    assert "visitor_id" not in (await desk.open_callbacks())[0]


# The running desk: the purge under the reaper lease, erasing a live visitor --------------


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    c = await desk_client(
        queue=QueueConfig(wrapup_ms=0), trusted_proxies=("127.0.0.1",), purge_interval_s=0.2
    )
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    return c


async def test_the_server_purges_under_the_reaper_lease(client: Client) -> None:
    queue: DeskQueue = client.app[QUEUE]
    old = await queue.clock_ms() - 91 * DAY_MS
    record = {"id": "old", "visitor_id": "vold", "visitor_name": "Old", "answered": old}
    await queue.redis.hset(queue.keys.call_records, "old", json.dumps(record))
    await queue.redis.zadd(queue.keys.records_by_time, {"old": old})
    for _ in range(200):  # up to 20 s: the purge runs every 0.2 s in this desk
        if await queue.call_record("old") is None:
            break
        await asyncio.sleep(0.1)
    assert await queue.call_record("old") is None
    for _ in range(50):
        purges = [e for e in await client.app[AUDIT].entries() if e.action == "purge"]
        if purges:
            break
        await asyncio.sleep(0.1)
    assert purges and purges[-1].actor == "server" and purges[-1].details["records"] == "1"
    assert purges[-1].details["retention_days"] == "90"


async def test_erasing_a_waiting_visitor_closes_their_socket_and_moves_the_line(
    client: Client,
) -> None:
    first = await open_visitor(client)
    await first.send({"type": "join", "queue": "support", "name": "First"})
    vid = (await first.expect("queued"))["visitor_id"]
    second = await open_visitor(client)
    await second.send({"type": "join", "queue": "support", "name": "Second"})
    assert (await second.expect("queued"))["position"] == 2

    result = await erase(client.app[QUEUE], visitor_ids=[vid])

    assert result.live == 1
    assert await first.closed() == 4004  # entry_gone, at the next heartbeat
    await second.expect("position", position=1)


# Configuration and the command ---------------------------------------------------------------


def test_retention_settings_come_from_the_environment() -> None:
    config = Config.from_env({})
    assert (config.retention_days, config.audit_retention_days) == (90, 365)
    assert config.audit_max_entries == 100_000
    env = {
        "HUMANDESK_RETENTION_DAYS": "0",
        "HUMANDESK_AUDIT_RETENTION_DAYS": "30",
        "HUMANDESK_AUDIT_MAX_ENTRIES": "500",
    }
    config = Config.from_env(env)
    assert config.retention() == Retention(days=0, audit_days=30)
    assert config.audit_max_entries == 500
    for name, bad in (
        ("HUMANDESK_RETENTION_DAYS", "-1"),
        ("HUMANDESK_RETENTION_DAYS", "ninety"),
        ("HUMANDESK_AUDIT_MAX_ENTRIES", "0"),
    ):
        with pytest.raises(ValueError, match=name):
            Config.from_env({name: bad})


async def test_privacy_and_audit_commands(desk: DeskQueue, redis_url: str, desk_name: str) -> None:
    env = python_env() | {"HUMANDESK_REDIS_URL": redis_url, "HUMANDESK_DESK": desk_name}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_humandesk(*args, env=env, stdin=stdin)

    now = await desk.clock_ms()
    await staffed(desk, now - 100_000)
    a_calls = await visit(desk, "va", now - 90_000)
    b_calls = await visit(desk, "vb", now - 80_000)
    await callback(desk, "cb-c", "carol@example.com", now - 70_000)
    old = now - 200 * DAY_MS
    await desk.redis.hset(desk.keys.call_records, "old", json.dumps({"id": "old"}))
    await desk.redis.zadd(desk.keys.records_by_time, {"old": old})
    me = f"cli:{getpass.getuser()}"

    added = await asyncio.to_thread(add_agent, env, "cy", "battery staple")
    assert added.returncode == 0, added.stderr
    by_id = await asyncio.to_thread(cli, "privacy", "erase", "--visitor", "va")
    assert by_id.returncode == 0, by_id.stderr
    assert "erased 1 visitor(s)" in by_id.stdout and "1 call records" in by_id.stdout
    assert await desk.call_record(a_calls[0]) is None
    by_contact = await asyncio.to_thread(
        cli, "privacy", "erase", "--contact", "Carol@Example.com", "--json"
    )
    assert by_contact.returncode == 0, by_contact.stderr
    assert json.loads(by_contact.stdout)["callbacks"] == 1
    by_call = await asyncio.to_thread(cli, "privacy", "erase", "--call", b_calls[0])
    assert by_call.returncode == 0 and "1 call records" in by_call.stdout
    assert set(await records(desk)) == {"old"}
    unknown = await asyncio.to_thread(cli, "privacy", "erase", "--call", "nope")
    assert unknown.returncode == 1 and "no call record" in unknown.stderr
    empty = await asyncio.to_thread(cli, "privacy", "erase")
    assert empty.returncode == 2 and "visitor id or a contact" in empty.stderr
    purged = await asyncio.to_thread(cli, "privacy", "purge", "--days", "30")
    assert purged.returncode == 0, purged.stderr
    assert "deleted 1 call records" in purged.stdout
    assert await desk.call_record("old") is None
    for change in (
        ("disable", "cy"),
        ("enable", "cy"),
        ("passwd", "cy", "--password-stdin"),
        ("set", "cy", "--role", "supervisor", "--queue", "support", "--queue", "sales:2"),
        ("remove", "cy"),
    ):
        done = await asyncio.to_thread(cli, "agent", *change, stdin="correct battery\n")
        assert done.returncode == 0, done.stderr

    listing = await asyncio.to_thread(cli, "audit", "--json")
    assert listing.returncode == 0, listing.stderr
    entries = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [e["action"] for e in entries] == [
        "agent_removed",
        "agent_changed",
        "password_changed",
        "agent_enabled",
        "agent_disabled",
        "purge",
        "erase",
        "erase",
        "erase",
        "agent_added",
    ]
    assert {e["actor"] for e in entries} == {me}
    assert entries[0]["target"] == "cy" and entries[-1]["target"] == "cy"
    assert entries[-1]["details"] == {"role": "agent", "queues": "support"}
    assert {e["target"] for e in entries[:5]} == {"cy"}
    assert entries[1]["details"] == {
        "role": "supervisor",
        "queues": "support,sales",
        "levels": "sales:2",
    }
    assert "correct battery" not in listing.stdout  # passwords never
    assert [e["target"] for e in entries[6:9]] == ["call", "contact", "visitor"]
    assert entries[8]["details"]["call_records"] == "1"
    assert "carol" not in listing.stdout.lower()  # what was erased is not named
    assert entries[5]["details"]["records"] == "1"
    times = [e["time_ms"] for e in entries]
    assert times == sorted(times, reverse=True)

    text = await asyncio.to_thread(cli, "audit", "--limit", "2")
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and "agent_removed" in lines[0] and me in lines[0]
    assert "agent_changed" in lines[1] and dt.datetime.now(dt.UTC).strftime("%Y-") in lines[1]
    recent = await asyncio.to_thread(cli, "audit", "--since", "1h", "--json")
    assert len(recent.stdout.splitlines()) == 10
    future = await asyncio.to_thread(cli, "audit", "--since", "2999-01-01")
    assert future.returncode == 0 and "no audit entries since 2999-01-01" in future.stdout
    bad = await asyncio.to_thread(cli, "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
