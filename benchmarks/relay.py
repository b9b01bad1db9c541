"""Cross-instance relay: a signaling message from a visitor on process A to an agent on B.

Two desk server processes share one Redis. A visitor socket on A and an agent socket on B are
put in a call (join, offer, accept); then the visitor sends ICE-candidate ``signal`` frames one
at a time and the agent's socket receives them: visitor socket -> A -> Redis PUBLISH -> B's
subscription -> agent socket. Both sockets live in this process, so one clock times both ends.

Baseline: a bare Redis PUBLISH -> subscriber round trip (redis-py asyncio, the same frame as
payload), timed the same way in this process.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
from redis.asyncio import Redis

from benchmarks import Metric, harness

CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.10 52760 typ srflx raddr "
    "10.0.0.2 rport 52760 generation 0 ufrag Kq3x network-cost 999",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def _expect(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 15) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed waiting for {kind}: {msg}")
            data = json.loads(msg.data)
            if data.get("type") == kind:
                return data


async def _desk_relay(a_url: str, b_url: str, desk: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        agent = await harness.connect_agent(session, b_url, desk, "relay")
        await _expect(agent, "welcome")
        await agent.send_str(json.dumps({"type": "status", "status": "available"}))
        visitor = await session.ws_connect(a_url + "/ws/visitor", origin=a_url)
        await _expect(visitor, "welcome")
        await visitor.send_str(json.dumps({"type": "join", "queue": "support", "name": "Rel"}))
        offer = await _expect(agent, "offer")
        await agent.send_str(json.dumps({"type": "accept", "offer_id": offer["offer_id"]}))
        call = await _expect(visitor, "call_started")
        await _expect(agent, "call_started")
        frame = json.dumps({"type": "signal", "call_id": call["call_id"], "candidate": CANDIDATE})
        samples: list[float] = []
        for i in range(count + 20):
            t0 = harness.now()
            await visitor.send_str(frame)
            await _expect(agent, "signal")
            if i >= 20:  # the first frames warm the paths up
                samples.append(harness.now() - t0)
        await visitor.close()
        await agent.close()
    return samples


async def _bare_publish(redis_url: str, count: int) -> list[float]:
    publisher = Redis.from_url(redis_url)
    subscriber = Redis.from_url(redis_url)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    channel = "bench:relay:" + uuid.uuid4().hex
    payload = json.dumps({"type": "signal", "call_id": "1", "candidate": CANDIDATE})
    samples: list[float] = []
    try:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        for i in range(count + 20):
            t0 = harness.now()
            await publisher.publish(channel, payload)
            while True:
                msg = await pubsub.get_message(timeout=5)
                if msg is not None and msg.get("type") == "message":
                    break
            if i >= 20:
                samples.append(harness.now() - t0)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await publisher.aclose()
        await subscriber.aclose()
    return samples


async def run(quick: bool) -> list[Metric]:
    count = 1000 if quick else 2000  # p99 of 400 frames was the 4th slowest: too noisy
    desk = "rl" + uuid.uuid4().hex[:8]
    with harness.redis_server() as (redis_url, _redis):
        await harness.create_agents(redis_url, desk, {"relay": ["support"]}, {})
        with harness.desk_servers(redis_url, desk, count=2) as [a, b]:
            base = await _bare_publish(redis_url, count)
            with harness.profiled([a.pid, b.pid], "relay"):
                relay = await _desk_relay(a.url, b.url, desk, count)
            base += await _bare_publish(redis_url, count // 2)  # before and after
    relay_ms = [x * 1000 for x in relay]
    base_ms = [x * 1000 for x in base]
    p50, p99 = harness.pct(relay_ms, 50), harness.pct(relay_ms, 99)
    b50, b99 = harness.pct(base_ms, 50), harness.pct(base_ms, 99)
    harness.log(
        f"relay: {len(relay_ms)} frames A->B p50 {p50:.3f} ms p99 {p99:.3f} ms; "
        f"bare PUBLISH->subscriber p50 {b50:.3f} ms p99 {b99:.3f} ms"
    )
    return [
        Metric.make(
            "relay.p50",
            p50,
            "ms",
            baseline=b50,
            target="ratio <= 3",
            ok=p50 <= 3 * b50,
        ),
        Metric.make(
            "relay.p99",
            p99,
            "ms",
            baseline=b99,
            target="< 5 ms and ratio <= 3",
            ok=p99 < 5 and p99 <= 3 * b99,
        ),
    ]
