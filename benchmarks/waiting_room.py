"""Waiting-room capacity: thousands of visitors waiting on one server process.

Client worker processes open the visitor sockets and join the line. Measured:

* server RSS per waiting visitor, against a bare aiohttp WebSocket server (same socket
  settings) holding the same number of idle sockets;
* the time for a queue move (the visitor at the head leaves) to reach every waiting visitor as
  a ``position`` frame, against the bare server sending one frame to every socket it holds.

``python -m benchmarks.waiting_room CONFIG`` is the client worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.asyncio import Redis

from benchmarks import Metric, harness
from humandesk.queue.client import DeskQueue

CONNECT_CONCURRENCY = 24


@dataclass
class Held:
    ws: aiohttp.ClientWebSocketResponse
    visitor_id: str = ""
    shown: int = 0  # the place the visitor was shown when the log was last reset
    # (arrival, place) of each queued/position frame since: a page shows the latest one
    log: list[tuple[float, int]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


async def _reader(held: Held, first: asyncio.Future[dict[str, Any]] | None) -> None:
    async for t, data in harness.timed_messages(held.ws):
        kind = data.get("type")
        if kind == "position":
            held.log.append((t, int(data["position"])))
        elif kind == "queued":  # a position frame may arrive before it: keep the order
            held.visitor_id = str(data["visitor_id"])
            held.log.append((t, int(data["position"])))
        if first is not None and not first.done() and kind in ("queued", "echo", "error"):
            first.set_result(data)


async def _open(
    session: aiohttp.ClientSession, url: str, origin: str, join: bool, name: str
) -> Held:
    ws = await session.ws_connect(url, origin=origin, max_msg_size=1 << 20)
    if join:
        welcome = await ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome
    first: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    held = Held(ws)
    held.task = asyncio.create_task(_reader(held, first))
    if join:
        await ws.send_str(json.dumps({"type": "join", "queue": "support", "name": name}))
    else:
        await ws.send_str(json.dumps({"type": "echo"}))
    reply = await asyncio.wait_for(first, 30)
    if reply["type"] == "error":
        raise RuntimeError(f"join refused: {reply}")
    return held


async def _open_many(session: aiohttp.ClientSession, cmd: dict[str, Any]) -> list[Held]:
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> Held:
        async with sem:
            name = f"{cmd['prefix']}{i}"
            return await _open(session, cmd["url"], cmd["origin"], cmd["join"], name)

    return await asyncio.gather(*(one(i) for i in range(cmd["count"])))


async def worker(config: dict[str, Any], io: harness.WorkerIO) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    held: list[Held] = []
    try:
        async for cmd in io.commands():
            kind = cmd["cmd"]
            if kind == "connect":
                start = harness.now()
                held.extend(await _open_many(session, cmd))
                # The sockets live until "close": keep them out of this client's collections,
                # so that its pauses do not show up as the server's delivery times.
                gc.collect()
                gc.freeze()
                io.reply({"connected": len(held), "seconds": harness.now() - start})
            elif kind == "reset":
                for h in held:
                    if h.log:
                        h.shown = h.log[-1][1]
                    h.log.clear()
                io.reply({"ok": True})
            elif kind == "log":
                io.reply({"visitors": [[h.visitor_id, h.shown, h.log] for h in held]})
            elif kind == "close":
                await asyncio.gather(*(h.ws.close() for h in held), return_exceptions=True)
                for h in held:
                    if h.task is not None:
                        h.task.cancel()
                held.clear()
                gc.unfreeze()
                gc.collect()
                io.reply({"ok": True})
    finally:
        await session.close()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass
class Visitor:
    visitor_id: str
    shown: int  # the place shown before the first move
    log: list[tuple[float, int]]  # (arrival, place) of each position frame since


def _deliveries(
    visitors: list[Visitor], moves: list[float], ranks: list[dict[str, int]] | None, end: float
) -> tuple[list[float], list[float], int, int]:
    """Delays of the frames that told visitors of each move, the time each move took to reach
    its last visitor, and (reached, expected) counted over all moves.

    A visitor is expected to hear of a move when their place in the line after it is ahead of
    the place they were shown (``ranks`` is the line after each move; None: everyone is)."""
    delays: list[float] = []
    reach_all: list[float] = []
    reached = expected = 0
    bounds = [*moves[1:], end]
    for k, (t0, t1) in enumerate(zip(moves, bounds, strict=True)):
        worst = 0.0
        for v in visitors:
            shown = v.shown
            for t, place in v.log:
                if t < t0:
                    shown = place
            if ranks is not None:
                rank = ranks[k].get(v.visitor_id)
                if rank is None or rank >= shown:
                    continue
            expected += 1
            hit = next((t for t, _place in v.log if t0 <= t < t1), None)
            if hit is not None:
                reached += 1
                delays.append(hit - t0)
                worst = max(worst, hit - t0)
        reach_all.append(worst)
    return delays, reach_all, reached, expected


async def _connect_all(
    ws_workers: list[harness.Worker], url: str, origin: str, n: int, join: bool
) -> float:
    start = harness.now()
    await asyncio.gather(
        *(
            w.call(
                {
                    "cmd": "connect",
                    "url": url,
                    "origin": origin,
                    "count": k,
                    "join": join,
                    "prefix": f"w{i}-",
                },
                timeout=600,
            )
            for i, (w, k) in enumerate(zip(ws_workers, _split(n, len(ws_workers)), strict=True))
        )
    )
    return harness.now() - start


async def _logs(ws_workers: list[harness.Worker]) -> list[Visitor]:
    replies = await asyncio.gather(*(w.call({"cmd": "log"}) for w in ws_workers))
    return [
        Visitor(vid, shown, [(t, p) for t, p in log])
        for r in replies
        for vid, shown, log in r["visitors"]
    ]


async def _settle(pid: int, seconds: float) -> int:
    """RSS after the process has been quiet for a moment (the lowest of a few reads)."""
    reads = []
    for _ in range(int(seconds / 0.25)):
        await asyncio.sleep(0.25)
        reads.append(harness.proc_rss_kib(pid))
    return min(reads[-4:])


@dataclass
class Side:
    rss_per_socket_kib: float
    delays: list[float]
    reach_all: list[float]
    reached: int
    expected: int
    connect_s: float


async def _side(
    ws_workers: list[harness.Worker],
    rss_per_socket_kib: float,
    connect_s: float,
    moves: list[float],
    ranks: list[dict[str, int]] | None,
    end: float,
) -> Side:
    """One side's numbers from the workers' logs of the moves; the workers' sockets close."""
    delays, reach_all, reached, expected = _deliveries(await _logs(ws_workers), moves, ranks, end)
    await asyncio.gather(*(w.call({"cmd": "close"}) for w in ws_workers))
    return Side(rss_per_socket_kib, delays, reach_all, reached, expected, connect_s)


async def _product(n: int, ws_workers: list[harness.Worker], moves: int, gap: float) -> Side:
    desk = "wr" + uuid.uuid4().hex[:8]
    with (
        harness.redis_server() as (redis_url, _redis),
        harness.desk_servers(redis_url, desk) as [server],
    ):
        await asyncio.sleep(0.5)
        rss0 = await _settle(server.pid, 1.0)
        connect_s = await _connect_all(
            ws_workers, server.url + "/ws/visitor", server.url, n, join=True
        )
        harness.log(f"waiting room: {n} visitors joined in {connect_s:.1f}s")
        rss1 = await _settle(server.pid, 3.0)
        redis = Redis.from_url(redis_url)
        try:
            queue = DeskQueue(redis, desk)
            await asyncio.gather(*(w.call({"cmd": "reset"}) for w in ws_workers))
            starts: list[float] = []
            ranks: list[dict[str, int]] = []
            with harness.profiled([server.pid], "waiting_room-moves"):
                for _ in range(moves):
                    head = (await queue.line("support"))[0][0]
                    starts.append(harness.now())
                    await queue.leave(head, "left")
                    line = await queue.line("support")
                    ranks.append({vid: i + 1 for i, (vid, _score) in enumerate(line)})
                    await asyncio.sleep(gap)
            end = harness.now()
        finally:
            await redis.aclose()
        return await _side(ws_workers, (rss1 - rss0) / n, connect_s, starts, ranks, end)


async def _bare(n: int, ws_workers: list[harness.Worker], moves: int, gap: float) -> Side:
    proc, url = harness.start_bare("ws")
    try:
        await asyncio.sleep(0.5)
        rss0 = await _settle(proc.pid, 1.0)
        connect_s = await _connect_all(ws_workers, url + "/ws", url, n, join=False)
        rss1 = await _settle(proc.pid, 3.0)
        await asyncio.gather(*(w.call({"cmd": "reset"}) for w in ws_workers))
        starts: list[float] = []
        async with aiohttp.ClientSession() as session:
            control = await session.ws_connect(url + "/ws")
            for k in range(moves):
                starts.append(harness.now())
                await control.send_str(json.dumps({"type": "broadcast", "seq": k}))
                async with asyncio.timeout(60):
                    while True:
                        msg = await control.receive_json()
                        if msg.get("type") == "broadcast_done":
                            break
                await asyncio.sleep(gap)
            end = harness.now()
            await control.close()
        return await _side(ws_workers, (rss1 - rss0) / n, connect_s, starts, None, end)
    finally:
        harness.stop_process(proc)


async def run(quick: bool) -> list[Metric]:
    n = 2000 if quick else 10_000
    n_workers = 2 if quick else 4
    moves = 3 if quick else 8
    gap = 1.0 if quick else 2.0
    tag = f"[n={n}]"
    async with harness.workers(
        "benchmarks.waiting_room", [{} for _ in range(n_workers)]
    ) as ws_workers:
        product = await _product(n, ws_workers, moves, gap)
        bare = await _bare(n, ws_workers, moves, gap)
    harness.log(
        f"waiting room: product {product.rss_per_socket_kib:.1f} KiB/visitor "
        f"(connect {product.connect_s:.1f}s), bare {bare.rss_per_socket_kib:.1f} KiB/socket; "
        f"reached {product.reached}/{product.expected}, bare {bare.reached}; each move reached "
        f"everyone in {', '.join(f'{1000 * r:.0f}' for r in product.reach_all)} ms "
        f"(bare {', '.join(f'{1000 * r:.0f}' for r in bare.reach_all)} ms)"
    )
    complete = product.reached == product.expected and product.expected > 0
    p99 = harness.pct(product.delays, 99) * 1000
    bare_p99 = harness.pct(bare.delays, 99) * 1000
    reach = max(product.reach_all) * 1000 if product.reach_all else float("nan")
    bare_reach = max(bare.reach_all) * 1000 if bare.reach_all else float("nan")
    rss_ratio = product.rss_per_socket_kib / bare.rss_per_socket_kib
    return [
        Metric.make(
            f"waiting_room.rss_per_visitor{tag}",
            product.rss_per_socket_kib,
            "KiB",
            baseline=bare.rss_per_socket_kib,
            target="ratio <= 1.5",
            ok=rss_ratio <= 1.5,
        ),
        Metric.make(
            f"waiting_room.move_p99{tag}",
            p99,
            "ms",
            baseline=bare_p99,
            target="< 1000 ms (every visitor reached)",
            ok=p99 < 1000 and complete,
        ),
        Metric.make(
            f"waiting_room.move_reach_all{tag}",
            reach,
            "ms",
            baseline=bare_reach,
            target="< 1000 ms (every visitor reached)",
            ok=reach < 1000 and complete,
        ),
    ]


if __name__ == "__main__":
    harness.worker_main(worker)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
