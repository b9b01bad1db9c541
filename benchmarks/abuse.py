"""Abuse: a flood of visitor sockets from one address against honest visitors from others,
and a flood of callback requests against the agents' consoles.

``flood``: one server with the desk's default per-address limits (this suite measures them,
so it keeps them). 2,000 sockets (400 quick) from 127.0.0.2 try to join, each again every
200 ms when refused, five times; meanwhile 20 honest visitors, each from an address of their
own (127.0.0.23...), join one after another. Their join latency (``join`` sent to ``queued``
received) is compared with the same 20 joins on the quiet desk just before (baseline), and
their places with what the limits promise: at most ``HUMANDESK_WAITING_PER_ADDRESS`` bots
ahead of them.

``callbacks``: one server, one console connected; 2,000 callback requests (500 quick) of 900
characters from one visitor socket (the per-address limit off, the open cap above the count).
The bytes the console receives are compared with the bytes of one ``callback_added`` message
per request (baseline); the server's RSS growth is reported against the requests' own bytes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import aiohttp

from benchmarks import Metric, harness

DEFAULT_WAITING_PER_ADDRESS = 10
HONEST = 20
NOTE = "n" * 900


async def _connect(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url + "/ws/visitor", origin=url)
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type is aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "welcome":
            return ws


async def _answer(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {msg}")
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] in ("queued", "error"):
            return data


def _from(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0))


async def _honest_joins(url: str, first_octet: int) -> tuple[list[float], list[int], list[Any]]:
    """HONEST visitors, each from 127.0.0.<first_octet + i>, join one after another."""
    latencies, places, keep = [], [], []
    for i in range(HONEST):
        session = _from(f"127.0.0.{first_octet + i}")
        ws = await _connect(session, url)
        t0 = time.perf_counter()
        await ws.send_str(json.dumps({"type": "join", "queue": "support", "name": f"Honest {i}"}))
        answer = await _answer(ws)
        latencies.append((time.perf_counter() - t0) * 1000)
        places.append(int(answer.get("position", 0)) if answer["type"] == "queued" else -1)
        keep.append((session, ws))
        await asyncio.sleep(0.05)
    return latencies, places, keep


async def _bot(session: aiohttp.ClientSession, url: str, i: int, stats: dict[str, int]) -> Any:
    try:
        ws = await _connect(session, url)
    except Exception:
        stats["failed_connects"] += 1
        return None
    for _ in range(5):
        await ws.send_str(json.dumps({"type": "join", "queue": "support", "name": f"Bot {i}"}))
        answer = await _answer(ws)
        if answer["type"] == "queued":
            stats["queued"] += 1
            return ws
        stats["refused"] += 1
        await asyncio.sleep(0.2)
    return ws


async def _bots(url: str, count: int) -> None:
    """The flood, in its own process: prints "started", then its counts as JSON."""
    stats = {"queued": 0, "refused": 0, "failed_connects": 0}
    started = time.perf_counter()
    async with _from("127.0.0.2") as flooder:
        pending = asyncio.gather(*(_bot(flooder, url, i, stats) for i in range(count)))
        print("started", flush=True)
        sockets = await pending
        seconds = time.perf_counter() - started
        print(json.dumps({**stats, "seconds": seconds}), flush=True)
        for ws in sockets:
            if ws is not None:
                await ws.close()


async def _flood(quick: bool) -> list[Metric]:
    bots = 400 if quick else 2000
    desk = "ab" + uuid.uuid4().hex[:8]
    with (
        harness.redis_server() as (redis_url, _redis),
        harness.desk_servers(
            redis_url,
            desk,
            HUMANDESK_JOINS_PER_MINUTE="20",
            HUMANDESK_WAITING_PER_ADDRESS=str(DEFAULT_WAITING_PER_ADDRESS),
        ) as (server,),
    ):
        quiet, _places, quiet_keep = await _honest_joins(server.url, 3)
        for session, ws in quiet_keep:  # the quiet round leaves the line again
            await ws.send_str(json.dumps({"type": "leave"}))
            await ws.receive(timeout=10)
            await ws.close()
            await session.close()
        await asyncio.sleep(1)
        # The bots run in a process of their own, so that they do not slow the honest
        # clients' event loop here (the desk is what is measured).
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.abuse", server.url, str(bots),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert flood.stdout is not None
        await flood.stdout.readline()  # "started": the flood is under way
        await asyncio.sleep(0.5)
        loud, places, keep = await _honest_joins(server.url, 23)
        stats = json.loads(await flood.stdout.readline())
        await flood.wait()
        harness.log(
            f"abuse: {bots} bot sockets in {stats['seconds']:.1f}s: {stats['queued']} let in, "
            f"{stats['refused']} joins refused, {stats['failed_connects']} failed to connect; "
            f"honest places {places}"
        )
        for session, ws in keep:
            await ws.close()
            await session.close()
    promised = all(0 < p <= DEFAULT_WAITING_PER_ADDRESS + i + 1 for i, p in enumerate(places))
    return [
        Metric.make(
            "abuse.flood_honest_join.p50",
            harness.median(loud),
            "ms",
            baseline=harness.median(quiet),
            target="ratio <= 5",
            ok=harness.median(loud) <= 5 * harness.median(quiet),
        ),
        Metric.make(
            "abuse.flood_honest_join.max",
            max(loud),
            "ms",
            baseline=max(quiet),
            target="< 1000 ms (the server also accepts the flood's sockets)",
            ok=max(loud) < 1000,
        ),
        Metric.make(
            "abuse.flood_bots_let_in",
            stats["queued"],
            "visitors",
            baseline=DEFAULT_WAITING_PER_ADDRESS,
            target=f"<= {DEFAULT_WAITING_PER_ADDRESS}; honest places behind at most as many",
            ok=stats["queued"] <= DEFAULT_WAITING_PER_ADDRESS and promised,
        ),
    ]


async def _callbacks(quick: bool) -> list[Metric]:
    count = 500 if quick else 2000
    desk = "cb" + uuid.uuid4().hex[:8]
    with (
        harness.redis_server() as (redis_url, _redis),
        harness.desk_servers(redis_url, desk, HUMANDESK_MAX_OPEN_CALLBACKS=str(count + 1)) as (
            server,
        ),
    ):
        await harness.create_agents(redis_url, desk, {"cbagent": ["support"]}, {})
        async with aiohttp.ClientSession() as session:
            console = await harness.connect_agent(session, server.url, desk, "cbagent")
            received = {"bytes": 0, "added": 0, "one": 0}

            async def read() -> None:
                async for msg in console:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        received["bytes"] += len(msg.data)
                        if '"callback_added"' in msg.data:
                            received["added"] += 1
                            received["one"] = len(msg.data)

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.5)
            rss_before = server.rss_kib()
            base = received["bytes"]
            visitor = await session.ws_connect(server.url + "/ws/visitor", origin=server.url)
            sent = 0
            for i in range(count):
                frame = json.dumps(
                    {"type": "callback", "queue": "support", "name": f"Visitor {i}",
                     "contact": f"v{i}@example.com", "note": NOTE}
                )  # fmt: skip
                sent += len(frame)
                await visitor.send_str(frame)
                while True:
                    msg = await visitor.receive(timeout=30)
                    if msg.type is aiohttp.WSMsgType.TEXT and '"callback_saved"' in msg.data:
                        break
                    if msg.type is not aiohttp.WSMsgType.TEXT or '"error"' in msg.data:
                        raise RuntimeError(f"callback refused: {msg}")
            deadline = time.monotonic() + 30
            while received["added"] < count and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            rss_after = server.rss_kib()
            reader.cancel()
            await visitor.close()
            await console.close()
    to_console = received["bytes"] - base
    harness.log(
        f"abuse: {count} callback requests sent {to_console:,} bytes to one console "
        f"({received['added']} callback_added); server RSS {rss_before:,} -> {rss_after:,} KiB"
    )
    return [
        Metric.make(
            "abuse.callbacks_bytes_to_console",
            to_console / 1024,
            "KiB",
            baseline=received["one"] * count / 1024,
            target="ratio <= 1.1 (each request once)",
            ok=to_console <= 1.1 * received["one"] * count,
        ),
        Metric.make(
            "abuse.callbacks_server_rss_growth",
            max(0, rss_after - rss_before),
            "KiB",
            baseline=sent / 1024,
            target="ratio <= 2",
            ok=max(0, rss_after - rss_before) <= 2 * sent / 1024,
        ),
    ]


async def run(quick: bool) -> list[Metric]:
    return [*await _flood(quick), *await _callbacks(quick)]


if __name__ == "__main__":
    asyncio.run(_bots(sys.argv[1], int(sys.argv[2])))
