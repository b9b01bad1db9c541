"""Queue throughput: visitors served per second through the real scripts, agents turning over.

Visitors arrive at a fixed rate (open loop, 2,000 a second) through ``DeskQueue.join`` in
one process; in another, agents hear their offers on Redis pub/sub (as a desk server does)
and answer each with ``accept`` and ``end_call`` (the call id is the offer id), which puts the
agent straight back in line (the queue's wrap-up is set to 0). Served = offers made; the
backlog is the line's length, sampled every half second.

Baseline: the raw throughput of the same ``join`` script (same keys, same arguments, no agent
free so it only queues), called with EVALSHA from a pipelined client, in the same Redis.

``python -m benchmarks.queue_throughput CONFIG`` is the worker (role ``arrivals`` or
``agents``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from benchmarks import Metric, harness
from humandesk.queue.client import AgentInfo, DeskQueue, NewVisitor, load_script_source

TARGET_RATE = 2000  # visitor arrivals per second
GROWTH_LIMIT = 100  # visitors the line may grow by over the second half of the run
AGENTS = 200


class Scripts:
    """The queue's own scripts called with EVALSHA, many per round trip.

    The payload is the one :class:`DeskQueue` sends (queues, desk config, op arguments); only
    the round trips are batched, so the Python client is not what is measured.
    """

    def __init__(self, redis: Redis, queue: DeskQueue) -> None:
        self.redis = redis
        self.queue = queue
        self.sha: dict[str, str] = {}
        self.keys: list[str] = []
        self.queues: list[str] = []

    async def load(self) -> None:
        for op in ("join", "accept", "end_call"):
            self.sha[op] = await self.redis.script_load(load_script_source(op))
        self.queues = await self.queue.queue_names(refresh=True)
        self.keys = self.queue.keys.script_keys(self.queues)

    def add(self, pipe: Any, op: str, args: dict[str, Any]) -> None:
        payload = {"queues": self.queues, "cfg": asdict(self.queue.config), **args}
        pipe.evalsha(self.sha[op], len(self.keys), *self.keys, json.dumps(payload))

    async def run(self, calls: list[tuple[str, dict[str, Any]]]) -> int:
        """Runs the calls in one round trip; returns how many the scripts refused."""
        pipe = self.redis.pipeline(transaction=False)
        for op, args in calls:
            self.add(pipe, op, args)
        results = await pipe.execute(raise_on_error=False)
        return sum(1 for r in results if isinstance(r, Exception))


async def _arrivals(scripts: Scripts, rate: float, seconds: float) -> dict[str, Any]:
    """Joins ``rate`` visitors a second for ``seconds``, in 10 ms ticks (open loop: a tick
    that runs late sends what has fallen due)."""
    tick = 0.01
    lease = scripts.queue.config.visitor_lease_ms
    start = harness.now()
    sent = 0
    lag = 0.0
    errors = 0
    k = 0
    while True:
        k += 1
        due = int(min(k * tick, seconds) * rate)
        calls = [
            (
                "join",
                {
                    "visitor": asdict(NewVisitor(id=f"v{i}", queue="support", name=f"V {i}")),
                    "lease_ms": lease,
                },
            )
            for i in range(sent, due)
        ]
        sent = due
        if calls:
            errors += await scripts.run(calls)
        if k * tick >= seconds:
            break
        delay = start + k * tick - harness.now()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
    return {"sent": sent, "seconds": harness.now() - start, "max_lag": lag, "errors": errors}


async def _agents(
    scripts: Scripts, names: list[str], pattern: str, seconds: float
) -> dict[str, Any]:
    """Answers every offer: accept, then hang up at once; notes when each offer came."""
    queue = scripts.queue
    pubsub = scripts.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(queue.keys.agent_channel(pattern))
    for name in names:
        await queue.set_agent_status(AgentInfo(name, name, ["support"]), "available")
    offers: list[float] = []
    errors = 0
    deadline = harness.now() + seconds
    while harness.now() < deadline:
        calls: list[tuple[str, dict[str, Any]]] = []
        message = await pubsub.get_message(timeout=0.2)
        while message is not None:
            data = message.get("data")
            if (
                message.get("type") == "pmessage"
                and isinstance(data, bytes)
                and b'"type":"offer"' in data
            ):
                agent = message["channel"].decode().rsplit(":", 1)[1]
                offer_id = str(json.loads(data)["offer_id"])
                offers.append(harness.now())
                calls.append(("accept", {"agent": agent, "offer_id": offer_id}))
                calls.append(
                    (
                        "end_call",
                        {"call_id": offer_id, "by": "agent", "party": agent, "reason": "hangup"},
                    )
                )
            message = await pubsub.get_message(timeout=0)
        if calls:
            errors += await scripts.run(calls)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    return {"offers": offers, "errors": errors}


async def worker(config: dict[str, Any], io: harness.WorkerIO) -> None:
    # A blocking pool: in-flight scripts wait for one of 64 connections (Redis runs scripts
    # one at a time anyway) instead of opening a connection each.
    pool = BlockingConnectionPool.from_url(config["redis_url"], max_connections=64, timeout=60)
    redis = Redis(connection_pool=pool)
    scripts = Scripts(redis, DeskQueue(redis, config["desk"]))
    await scripts.load()
    try:
        async for cmd in io.commands():
            if cmd["cmd"] == "arrivals":
                io.reply(await _arrivals(scripts, cmd["rate"], cmd["seconds"]))
            elif cmd["cmd"] == "agents":
                io.reply(await _agents(scripts, cmd["names"], cmd["pattern"], cmd["seconds"]))
    finally:
        await redis.aclose()


async def _raw_join_rate(redis_url: str, desk: str, count: int) -> float:
    """Joins per second of the join script called with pipelined EVALSHA (no agent free)."""
    redis = Redis.from_url(redis_url)
    try:
        queue = DeskQueue(redis, desk)
        await queue.add_queue("support")
        queues = await queue.queue_names(refresh=True)
        keys = queue.keys.script_keys(queues)
        sha = await redis.script_load(load_script_source("join"))
        cfg = asdict(queue.config)
        batch = 200
        start = harness.now()
        for first in range(0, count, batch):
            pipe = redis.pipeline(transaction=False)
            for i in range(first, min(first + batch, count)):
                payload = {
                    "queues": queues,
                    "cfg": cfg,
                    "visitor": asdict(NewVisitor(id=f"r{i}", queue="support", name=f"V {i}")),
                    "lease_ms": queue.config.visitor_lease_ms,
                }
                pipe.evalsha(sha, len(keys), *keys, json.dumps(payload))
            await pipe.execute()
        return count / (harness.now() - start)
    finally:
        await redis.aclose()


@dataclass
class Round:
    arrival_rate: float
    served_rate: float
    growth: int
    final: int
    errors: int
    redis_busy: float
    max_lag: float


async def _round(redis_url: str, redis_pid: int, rate: float, seconds: float) -> Round:
    """One load: visitors arriving at ``rate`` for ``seconds``, 200 agents turning over."""
    names = [f"t{i:03d}" for i in range(AGENTS)]
    desk = "qt" + uuid.uuid4().hex[:8]
    redis = Redis.from_url(redis_url)
    queue = DeskQueue(redis, desk)
    await queue.set_queue_rules("support", {"wrapup_ms": 0})
    config = {"redis_url": redis_url, "desk": desk}
    backlog: list[tuple[float, int]] = []
    try:
        async with harness.workers("benchmarks.queue_throughput", [config] * 3) as [arr, ag1, ag2]:
            # Two agent processes: a Python client parses ~6 pub/sub messages per visitor.
            for ag, digit in ((ag1, "0"), (ag2, "1")):
                group = [n for n in names if n[1] == digit]
                await ag.send(
                    {
                        "cmd": "agents",
                        "names": group,
                        "pattern": f"t{digit}*",
                        "seconds": seconds + 6,
                    }
                )
            await asyncio.sleep(2)  # agents Available and subscribed

            async def sample() -> None:
                while True:
                    snap = await queue.snapshot("support")
                    backlog.append((harness.now(), snap.waiting))
                    await asyncio.sleep(0.25)

            sampler = asyncio.create_task(sample())
            redis_cpu0 = harness.proc_cpu_seconds(redis_pid)
            with harness.profiled([redis_pid, arr.pid], f"throughput-{int(rate)}"):
                start = harness.now()
                arrivals = await arr.call(
                    {"cmd": "arrivals", "rate": rate, "seconds": seconds},
                    timeout=seconds + 120,
                )
                redis_busy = (harness.proc_cpu_seconds(redis_pid) - redis_cpu0) / (
                    harness.now() - start
                )
                replies = [await ag.recv(timeout=seconds + 120) for ag in (ag1, ag2)]
            sampler.cancel()
        final = (await queue.snapshot("support")).waiting
    finally:
        await redis.aclose()
    window = float(arrivals["seconds"])
    offers = sum(1 for r in replies for t in r["offers"] if start <= t <= start + window)
    half = [w for t, w in backlog if start + window / 2 <= t <= start + window]
    return Round(
        arrival_rate=arrivals["sent"] / window,
        served_rate=offers / window,
        growth=(half[-1] - half[0]) if len(half) >= 2 else 0,
        final=final,
        errors=int(arrivals["errors"]) + sum(int(r["errors"]) for r in replies),
        redis_busy=redis_busy,
        max_lag=float(arrivals["max_lag"]),
    )


async def run(quick: bool) -> list[Metric]:
    seconds = 5.0 if quick else 20.0
    with harness.redis_server() as (redis_url, redis_proc):
        raw = await _raw_join_rate(redis_url, "qr" + uuid.uuid4().hex[:8], 5000 if quick else 20000)
        target = await _round(redis_url, redis_proc.pid, TARGET_RATE, seconds)
    r = target
    harness.log(
        f"queue throughput: arrivals {r.arrival_rate:.0f}/s (driver late by up to "
        f"{1000 * r.max_lag:.0f} ms), served {r.served_rate:.0f}/s, backlog growth over the "
        f"second half {r.growth}, left at the end {r.final}, errors {r.errors}, Redis CPU "
        f"{100 * r.redis_busy:.0f}%"
    )
    capacity = r.served_rate / r.redis_busy if r.redis_busy > 0 else float("nan")
    harness.log(f"queue throughput: the join script alone, pipelined: {raw:.0f}/s")
    ok = (
        target.arrival_rate >= 0.97 * TARGET_RATE
        and target.served_rate >= 0.97 * TARGET_RATE
        and target.growth <= GROWTH_LIMIT
        and target.errors == 0
    )
    return [
        Metric.make(
            "queue_throughput.served_at_2000",
            target.served_rate,
            "visitors/s",
            baseline=raw,
            target=f">= {TARGET_RATE}/s served, backlog not growing",
            ok=ok,
        ),
        Metric.make(
            "queue_throughput.backlog_growth_at_2000",
            float(target.growth),
            "visitors",
            baseline=None,
            target=f"<= {GROWTH_LIMIT} over the second half",
            ok=target.growth <= GROWTH_LIMIT and target.errors == 0,
        ),
        Metric.make(
            "queue_throughput.redis_bound_capacity",
            capacity,
            "visitors/s",
            baseline=raw,
            target=f">= {TARGET_RATE}/s (served / Redis CPU share; 3 scripts per visitor)",
            ok=capacity >= TARGET_RATE,
        ),
    ]


if __name__ == "__main__":
    harness.worker_main(worker)
