"""Match latency: the time from the event that makes a match to the offer on the agent's socket.

One desk server process, 1,000 visitors waiting in ``support`` (a crowd worker process, each
receiving its position updates) and 200 agents (another worker process): 100 serve
``support``, 100 serve ``sales``. Measured at once:

* agent goes Available while visitors wait: a ``support`` agent sends ``status: available``
  and waits for its ``offer``; then takes a break (the visitor returns to their place) and
  goes again, at random intervals;
* visitor joins while agents are idle: a probe visitor joins ``sales``, where all 100 agents
  are idle, until the ``offer`` reaches one of them; then leaves.

Baseline, measured by the same worker process: one Redis EVALSHA round trip plus one
WebSocket message (half a WebSocket echo round trip) on loopback.

``python -m benchmarks.match_latency CONFIG`` is the agents worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import uuid
from typing import Any

import aiohttp
from redis.asyncio import Redis

from benchmarks import Metric, harness
from humandesk.queue.client import OPS, load_script_source

SUPPORT_AGENTS = 100
SALES_AGENTS = 100
WAITING = 1000
#: Pause of each support agent between two rounds: 100 agents make ~20 rounds (offers) a
#: second, each moving the line of 1,000 (two position fan-outs per round). A busy real desk
#: sees a few agent changes a second; this is several times that, not a saturation test.
PAUSE_S = (2.0, 8.0)


class Agent:
    def __init__(self, name: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.name = name
        self.ws = ws
        self.offers: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.status: asyncio.Queue[str] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def expect_status(self, wanted: str, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while await self.status.get() != wanted:
                pass


async def _read_agent(agent: Agent, sales_offers: asyncio.Queue[float] | None) -> None:
    async for t, data in harness.timed_messages(agent.ws):
        kind = data.get("type")
        if kind == "offer":
            if sales_offers is not None:
                sales_offers.put_nowait(t)
            else:
                agent.offers.put_nowait((t, data))
        elif kind == "status":
            agent.status.put_nowait(str(data.get("status")))


async def _baseline(redis_url: str, bare_url: str, count: int) -> tuple[list[float], list[float]]:
    """EVALSHA round trips of a trivial script, and one-way WebSocket message times."""
    redis = Redis.from_url(redis_url)
    evalsha: list[float] = []
    ws_one_way: list[float] = []
    try:
        script = redis.register_script("return 1")
        await script()
        for _ in range(count):
            t0 = harness.now()
            await script()
            evalsha.append(harness.now() - t0)
    finally:
        await redis.aclose()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(bare_url + "/ws")
        for i in range(count):
            t0 = harness.now()
            await ws.send_str(json.dumps({"type": "echo", "i": i}))
            await ws.receive()
            ws_one_way.append((harness.now() - t0) / 2)
        await ws.close()
    return evalsha, ws_one_way


async def worker(config: dict[str, Any], io: harness.WorkerIO) -> None:
    url, desk = config["url"], config["desk"]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    support: list[Agent] = []
    sales: list[Agent] = []
    sales_offers: asyncio.Queue[float] = asyncio.Queue()
    try:
        async for cmd in io.commands():
            if cmd["cmd"] == "connect":
                sem = asyncio.Semaphore(20)

                async def one(name: str, is_sales: bool, sem: asyncio.Semaphore = sem) -> Agent:
                    async with sem:
                        ws = await harness.connect_agent(session, url, desk, name)
                        agent = Agent(name, ws)
                        agent.task = asyncio.create_task(
                            _read_agent(agent, sales_offers if is_sales else None)
                        )
                        await agent.expect_status("offline")
                    return agent

                support = await asyncio.gather(*(one(n, False) for n in cmd["support"]))
                sales = await asyncio.gather(*(one(n, True) for n in cmd["sales"]))
                for agent in sales:
                    await agent.send({"type": "status", "status": "available"})
                    await agent.expect_status("available")
                io.reply({"ok": True})
            elif cmd["cmd"] == "baseline":
                evalsha, ws_one_way = await _baseline(
                    cmd["redis_url"], cmd["bare_url"], cmd["count"]
                )
                io.reply({"evalsha": evalsha, "ws_one_way": ws_one_way})
            elif cmd["cmd"] == "run":
                pause = tuple(cmd.get("pause", PAUSE_S))
                available, joined, errors = await _run(
                    session, url, support, sales_offers, cmd["seconds"], cmd["probes"], pause
                )
                io.reply({"available": available, "joined": joined, "errors": errors})
    finally:
        for agent in [*support, *sales]:
            with contextlib.suppress(Exception):
                await agent.ws.close()
        await session.close()


async def _run(
    session: aiohttp.ClientSession,
    url: str,
    support: list[Agent],
    sales_offers: asyncio.Queue[float],
    seconds: float,
    probes: int,
    pause: tuple[float, ...] = PAUSE_S,
) -> tuple[list[float], list[float], int]:
    deadline = harness.now() + seconds
    available: list[float] = []
    joined: list[float] = []
    errors = 0
    rng = random.Random(7)

    async def cycle(agent: Agent) -> None:
        nonlocal errors
        await asyncio.sleep(min(rng.uniform(0, pause[1]), max(0.0, deadline - harness.now())))
        while harness.now() < deadline:
            try:
                t0 = harness.now()
                await agent.send({"type": "status", "status": "available"})
                t1, _offer = await asyncio.wait_for(agent.offers.get(), 10)
                available.append(t1 - t0)
                await agent.send({"type": "status", "status": "break"})
                await agent.expect_status("break")
            except (TimeoutError, ConnectionError) as exc:
                errors += 1
                harness.log(f"match latency: agent {agent.name}: {type(exc).__name__}")
                return
            # No pause past the end: the run lasts ``seconds``, not up to a pause more.
            await asyncio.sleep(min(rng.uniform(*pause), max(0.0, deadline - harness.now())))

    async def probe() -> None:
        nonlocal errors
        gap = seconds / max(probes, 1)
        for i in range(probes):
            if harness.now() >= deadline:
                return
            ws = await session.ws_connect(url + "/ws/visitor", origin=url)
            try:
                welcome = await ws.receive_json(timeout=10)
                assert welcome["type"] == "welcome"
                while not sales_offers.empty():
                    sales_offers.get_nowait()
                t0 = harness.now()
                await ws.send_str(json.dumps({"type": "join", "queue": "sales", "name": f"p{i}"}))
                t1 = await asyncio.wait_for(sales_offers.get(), 10)
                joined.append(t1 - t0)
                await ws.send_str(json.dumps({"type": "leave"}))
                async with asyncio.timeout(10):
                    async for msg in ws:
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            break
            except (TimeoutError, ConnectionError, AssertionError) as exc:
                errors += 1
                harness.log(f"match latency: probe {i}: {type(exc).__name__} {exc}")
            finally:
                await ws.close()
            await asyncio.sleep(gap * rng.uniform(0.5, 1.5))

    await asyncio.gather(*(cycle(a) for a in support), probe())
    return available, joined, errors


async def _slow_scripts(redis: Redis) -> str:
    """The queue scripts Redis's slow log caught, by name: count and longest run."""
    names = {hashlib.sha1(load_script_source(op).encode()).hexdigest(): op for op in OPS}
    seen: dict[str, list[int]] = {}
    for entry in await redis.slowlog_get(128):
        command = entry.get("command", b"")
        parts = command.split() if isinstance(command, bytes) else []
        sha = parts[1].decode() if len(parts) > 1 and parts[0].upper() == b"EVALSHA" else ""
        op = names.get(sha, "other")
        seen.setdefault(op, []).append(int(entry.get("duration", 0)))
    return (
        ", ".join(f"{op} x{len(d)} (max {max(d) / 1000:.1f} ms)" for op, d in sorted(seen.items()))
        or "none"
    )


async def run(quick: bool) -> list[Metric]:
    seconds = 15.0 if quick else 30.0  # ~500 samples, so p99 is not the 3rd slowest
    probes = 250 if quick else 500
    desk = "ml" + uuid.uuid4().hex[:8]
    support_names = [f"s{i:03d}" for i in range(SUPPORT_AGENTS)]
    sales_names = [f"b{i:03d}" for i in range(SALES_AGENTS)]
    bare, bare_url = harness.start_bare("ws")
    try:
        with harness.redis_server() as (redis_url, _redis):
            agents = {n: ["support"] for n in support_names}
            agents.update({n: ["sales"] for n in sales_names})
            await harness.create_agents(redis_url, desk, agents, {})
            with harness.desk_servers(redis_url, desk, queues="support,sales") as [server]:
                async with (
                    harness.workers("benchmarks.waiting_room", [{}]) as [crowd],
                    harness.workers(
                        "benchmarks.match_latency", [{"url": server.url, "desk": desk}]
                    ) as [agent_worker],
                ):
                    await agent_worker.call(
                        {"cmd": "connect", "support": support_names, "sales": sales_names}
                    )
                    await crowd.call(
                        {
                            "cmd": "connect",
                            "url": server.url + "/ws/visitor",
                            "origin": server.url,
                            "count": WAITING,
                            "join": True,
                            "prefix": "crowd-",
                        },
                        timeout=300,
                    )
                    harness.log(f"match latency: {WAITING} waiting, {len(agents)} agents connected")
                    base = await agent_worker.call(
                        {
                            "cmd": "baseline",
                            "redis_url": redis_url,
                            "bare_url": bare_url,
                            "count": 300 if quick else 1000,
                        }
                    )
                    redis = Redis.from_url(redis_url)
                    await redis.config_resetstat()
                    await redis.config_set("slowlog-log-slower-than", 500)
                    await redis.slowlog_reset()
                    cpu0, t0 = server.cpu_seconds(), harness.now()
                    with harness.profiled([server.pid], "match"):
                        result = await agent_worker.call(
                            {"cmd": "run", "seconds": seconds, "probes": probes},
                            timeout=seconds + 120,
                        )
                    busy = (server.cpu_seconds() - cpu0) / (harness.now() - t0)
                    stats = await redis.info("commandstats")
                    slow = await _slow_scripts(redis)
                    await redis.aclose()
                    evalsha_us = stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0)
                    harness.log(
                        f"match latency: server CPU {100 * busy:.0f}% of a core during the run; "
                        f"Redis runs a script in {evalsha_us} us on average; scripts over "
                        f"0.5 ms: {slow}"
                    )
    finally:
        harness.stop_process(bare)
    available = [x * 1000 for x in result["available"]]
    joined = [x * 1000 for x in result["joined"]]
    both = available + joined
    evalsha = [x * 1000 for x in base["evalsha"]]
    one_way = [x * 1000 for x in base["ws_one_way"]]
    base50 = harness.pct(evalsha, 50) + harness.pct(one_way, 50)
    base99 = harness.pct(evalsha, 99) + harness.pct(one_way, 99)
    harness.log(
        f"match latency: {len(available)} 'available' samples, {len(joined)} 'join' samples, "
        f"{result['errors']} errors; EVALSHA p50 {harness.pct(evalsha, 50):.3f} ms, "
        f"WebSocket one-way p50 {harness.pct(one_way, 50):.3f} ms"
    )
    clean = result["errors"] == 0 and len(available) > 20 and len(joined) > 20
    target = "p99 < 10 ms and < 20x baseline"

    def row(name: str, samples: list[float], q: float, baseline: float) -> Metric:
        value = harness.pct(samples, q)
        ok = clean and value < 10 and value < 20 * baseline if q == 99 else clean
        return Metric.make(
            name,
            value,
            "ms",
            baseline=baseline,
            target=target if q == 99 else "reported (p99 is the target)",
            ok=ok,
        )

    return [
        row("match_latency.p50", both, 50, base50),
        row("match_latency.p99", both, 99, base99),
        row("match_latency.agent_available.p99", available, 99, base99),
        row("match_latency.visitor_joins.p99", joined, 99, base99),
    ]


if __name__ == "__main__":
    harness.worker_main(worker)
