"""Rolling restarts: every server of three is stopped (SIGTERM) and started again, one after
another, while visitors wait, agents are offered and calls go on; every visitor is accounted
for exactly once and no call is dropped (docs/protocol.md, Rolling restarts).

The clients behave as the pages do: on **1012** they reconnect at once to another server (a
load balancer's job in production; here the next port) and resume, a visitor with the ticket
and an agent with the session cookie. Any other close, and any close while the clients only
reconnect on 1012, counts against the desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import free_port, python_env
from helpers import HUMANDESK, add_agent, stop_all, wait_ready

pytestmark = pytest.mark.slow

PASSWORD = "rolling-restart-password"
AGENTS = 6
VISITORS = 60
ARRIVALS_S = 10.0  # visitors arrive over this many seconds (6/s; 6 agents serve ~4/s)
TALK_S = (1.0, 2.0)
RESTART_AFTER_S = 2.0
SERVICE_RESTART = 1012


@dataclass
class Desk:
    """Three ``humandesk serve`` processes of one desk behind one public origin."""

    env: dict[str, str]
    ports: list[int]
    procs: list[subprocess.Popen[bytes]]
    public: str  # the origin the pages come from (the first server's), as behind a proxy

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}"

    def start(self, index: int) -> None:
        env = {**self.env, "HUMANDESK_PORT": str(self.ports[index])}
        self.procs[index] = subprocess.Popen(
            [*HUMANDESK, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


@contextlib.contextmanager
def three_servers(redis_url: str, desk_name: str, tmp_path: Path) -> Iterator[Desk]:
    ports = [free_port() for _ in range(3)]
    public = f"http://127.0.0.1:{ports[0]}"
    env = {
        **python_env(),
        "HUMANDESK_REDIS_URL": redis_url,
        "HUMANDESK_DESK": desk_name,
        "HUMANDESK_SECRET_KEY": "rolling-restart-key-" + desk_name,
        "HUMANDESK_DATA_DIR": str(tmp_path),
        "HUMANDESK_PUBLIC_URL": public,
        "HUMANDESK_DRAIN_TIMEOUT": "10",
        # Every client comes from 127.0.0.1: the per-address limits are off, explicitly.
        "HUMANDESK_JOINS_PER_MINUTE": "0",
        "HUMANDESK_WAITING_PER_ADDRESS": "0",
        "HUMANDESK_MESSAGES_PER_SECOND": "0",
    }
    for i in range(AGENTS):
        added = add_agent(env, f"agent{i}", PASSWORD)
        assert added.returncode == 0, added.stderr
    desk = Desk(env, ports, [], public)
    desk.procs = [None] * 3  # type: ignore[list-item]
    try:
        for i in range(3):
            desk.start(i)
        for i in range(3):
            wait_ready(desk.url(i), desk.procs[i])
        yield desk
    finally:
        stop_all([p for p in desk.procs if p is not None])


async def connect(
    http: aiohttp.ClientSession, desk: Desk, index: int, path: str
) -> tuple[aiohttp.ClientWebSocketResponse, int]:
    """A socket to the server at ``index``, or the next one that takes it (one may be
    restarting); returns it and the index it went to."""
    deadline = time.monotonic() + 30
    while True:
        try:
            url = desk.url(index).replace("http", "ws") + path
            return await http.ws_connect(url, origin=desk.public, max_msg_size=0), index
        except (aiohttp.ClientError, OSError):
            if time.monotonic() > deadline:
                raise
            index += 1
            await asyncio.sleep(0.05)


@dataclass
class Visitor:
    index: int
    calls: set[str] = field(default_factory=set)
    ends: list[dict[str, Any]] = field(default_factory=list)
    moved_waiting: int = 0
    moved_in_call: int = 0
    bad_closes: list[int | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


async def run_visitor(desk: Desk, record: Visitor) -> None:
    ticket: str | None = None
    where = record.index
    async with aiohttp.ClientSession() as http:
        while True:
            ws, where = await connect(http, desk, where, "/ws/visitor")
            if ticket is None:
                join = {"type": "join", "queue": "support", "name": f"Visitor {record.index}"}
                await ws.send_str(json.dumps(join))
            else:
                resume = {"type": "resume", "ticket": ticket}
                if record.calls:  # as the panel does: the call it is in
                    resume["call_id"] = next(iter(record.calls))
                await ws.send_str(json.dumps(resume))
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                m = json.loads(msg.data)
                if m["type"] == "queued":
                    ticket = m["ticket"]
                elif m["type"] == "call_started":
                    record.calls.add(str(m["call_id"]))
                    # The page's side of the negotiation: the agent's talk starts with it.
                    signal = {"type": "signal", "call_id": m["call_id"], "candidate": None}
                    await send(ws, signal)
                elif m["type"] == "call_ended":
                    record.ends.append(m)
                    await ws.close()
                    return
                elif m["type"] == "error":
                    record.errors.append(m)
            if ws.close_code != SERVICE_RESTART:
                record.bad_closes.append(ws.close_code)
                return
            if record.calls:
                record.moved_in_call += 1
            else:
                record.moved_waiting += 1
            where += 1  # to another server, at once


async def send(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
    """Sends, unless the socket is closing (as a page's send does): after the reconnect the
    desk tells the state again (the offer, the call, the wrap-up) and the agent answers."""
    with contextlib.suppress(ConnectionError):
        await ws.send_str(json.dumps(message))


@dataclass
class Agent:
    name: str
    calls: set[str] = field(default_factory=set)
    moved: int = 0
    bad_closes: list[int | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


async def run_agent(desk: Desk, record: Agent, index: int, stop: asyncio.Event) -> None:
    rng = random.Random(index)
    current: list[aiohttp.ClientWebSocketResponse] = []
    tasks: set[asyncio.Task[None]] = set()
    talking: set[str] = set()  # calls whose visitor has answered (their talk is timed)

    async def hang_up(call_id: str) -> None:
        await asyncio.sleep(rng.uniform(*TALK_S))
        while True:  # through whichever socket is open by then
            with contextlib.suppress(ConnectionError, RuntimeError, IndexError):
                await current[-1].send_str(json.dumps({"type": "hangup", "call_id": call_id}))
                return
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = await http.post(
            desk.url(index) + "/api/login",
            json={"username": record.name, "password": PASSWORD},
            headers={"Origin": desk.public},
        )
        assert login.status == 200, await login.text()
        where, first = index, True
        while not stop.is_set():
            ws, where = await connect(http, desk, where, "/ws/agent")
            current.append(ws)
            if first:
                await send(ws, {"type": "status", "status": "available"})
                first = False
            stopping = asyncio.ensure_future(stop.wait())
            while True:
                reading = asyncio.ensure_future(ws.receive())
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    await ws.close()
                    break
                msg = reading.result()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                m = json.loads(msg.data)
                if m["type"] == "offer":
                    await send(ws, {"type": "accept", "offer_id": m["offer_id"]})
                elif m["type"] == "call_started":
                    record.calls.add(str(m["call_id"]))
                elif m["type"] == "signal" and m["call_id"] not in talking:
                    # The visitor is there: the conversation starts (a real agent does not
                    # hang up on a visitor who is still connecting).
                    talking.add(str(m["call_id"]))
                    task = asyncio.create_task(hang_up(str(m["call_id"])))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif m["type"] == "status" and m.get("status") == "wrap_up":
                    await send(ws, {"type": "wrapup", "action": "done"})
                elif m["type"] == "error":
                    record.errors.append(m)
            stopping.cancel()
            if stop.is_set():
                break
            if ws.close_code != SERVICE_RESTART:
                record.bad_closes.append(ws.close_code)
                break
            record.moved += 1
            where += 1
        for task in list(tasks):
            task.cancel()


async def restart_each(desk: Desk, exits: list[tuple[int | None, float]]) -> None:
    """Stops every server in turn (SIGTERM), waits for it to exit, starts it again and
    waits until it is ready before the next: a rolling restart."""
    await asyncio.sleep(RESTART_AFTER_S)
    for i in range(3):
        proc = desk.procs[i]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        exits.append((code, time.monotonic() - started))
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 0, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        desk.start(i)
        await asyncio.to_thread(wait_ready, desk.url(i), desk.procs[i])
        await asyncio.sleep(0.5)


async def test_restarting_every_server_in_turn_loses_no_visitor_and_drops_no_call(
    redis_url: str, desk_name: str, tmp_path: Path
) -> None:
    with three_servers(redis_url, desk_name, tmp_path) as desk:
        stop = asyncio.Event()
        agents = [Agent(f"agent{i}") for i in range(AGENTS)]
        agent_tasks = [
            asyncio.create_task(run_agent(desk, a, i, stop)) for i, a in enumerate(agents)
        ]
        await asyncio.sleep(1.0)  # the agents are Available
        visitors = [Visitor(i) for i in range(VISITORS)]
        exits: list[tuple[int | None, float]] = []
        restarts = asyncio.create_task(restart_each(desk, exits))
        visitor_tasks = []
        for v in visitors:
            visitor_tasks.append(asyncio.create_task(run_visitor(desk, v)))
            await asyncio.sleep(ARRIVALS_S / VISITORS)
        await restarts
        _done, pending = await asyncio.wait(visitor_tasks, timeout=60)
        stuck = [
            (v.index, v.calls, v.bad_closes)
            for v, t in zip(visitors, visitor_tasks, strict=True)
            if t in pending
        ]
        assert not stuck, (stuck, [(a.name, len(a.calls), a.bad_closes) for a in agents])
        stop.set()
        await asyncio.gather(*agent_tasks)

    moved_waiting = sum(v.moved_waiting for v in visitors)
    moved_in_call = sum(v.moved_in_call for v in visitors)
    agent_moves = sum(a.moved for a in agents)
    print(
        f"rolling restart: {VISITORS} visitors, {AGENTS} agents, 3 servers restarted "
        f"(drain and exit in {', '.join(f'{s:.2f}' for _, s in exits)} s); sockets moved: "
        f"{moved_waiting} waiting visitors, {moved_in_call} visitors in a call, "
        f"{agent_moves} agents"
    )
    assert [code for code, _ in exits] == [0, 0, 0]
    # Every visitor exactly once: one call, ended once, by the agent's hang-up.
    for v in visitors:
        assert v.bad_closes == [], (v.index, v.bad_closes)
        assert len(v.calls) == 1, (v.index, v.calls)
        assert [e["reason"] for e in v.ends] == ["hangup"], (v.index, v.ends)
        assert v.errors == [], (v.index, v.errors)
    served = set().union(*(a.calls for a in agents))
    assert served == set().union(*(v.calls for v in visitors))
    assert sum(len(a.calls) for a in agents) == VISITORS  # no call offered twice
    for a in agents:
        assert a.bad_closes == [], (a.name, a.bad_closes)
    # The restarts met live sockets in every role: waiting, in a call, and consoles.
    assert moved_waiting > 0 and moved_in_call > 0 and agent_moves > 0
