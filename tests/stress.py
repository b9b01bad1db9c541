"""A stress load at the edges of calls, on loopback, through real desk server processes.

Visitors arrive at random (Poisson) and join; agents accept every offer at once and hang up
after a short random talk (exponential); the queue has no wrap-up, so each agent is offered
the next visitor the moment a call ends. Visitors and agents are spread over two server
processes, so a visitor and their agent mostly sit on different processes and every message
crosses Redis. Each visitor keeps every message the desk sent it and how its socket ended;
the desk's event log says afterwards whom the join script offered at once. From those, the
edges of a call that must hold under any load:

- every visitor whose call was accepted receives exactly one ``call_ended``, and before any
  close by the desk;
- a visitor who is offered the moment they join is never shown a wait above 0;
- a visitor never sees a later place than one already shown, across ``queued`` and
  ``position``, and an expected wait never grows without a reason.

``tests/test_call_edges.py`` runs it for a few seconds; by hand, for a longer run with the
desk's own settings::

    PYTHONPATH=. python tests/stress.py --seconds 60

(from the repository's root, whose ``benchmarks`` package holds the process harness).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import aiohttp
from redis.asyncio import Redis

from helpers import find_redis_server, free_port, redis_server, stop_all, wait_ready

HOST = "127.0.0.1"
SECRET = "stress-secret-key-0123456789abcdef0123456789abcdef"
QUEUE = "support"


@dataclass(frozen=True)
class Load:
    """The shape of one stress run."""

    seconds: float = 15.0  # arrivals are made for this long
    arrivals_per_s: float = 60.0
    agents: int = 20
    talk_s: float = 0.2  # mean talk time (exponential)
    servers: int = 2
    heartbeat_s: float = 5.0  # the server processes' lease renewal interval
    seed: int = 1
    drain_s: float = 120.0  # at most this long for the last visitors to be served
    linger_s: float = 1.0  # a visitor keeps its socket open this long after call_ended


@dataclass
class VisitorLog:
    """What one visitor's socket saw."""

    index: int
    visitor_id: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None  # the desk's close code, when the desk closed the socket
    closed_by_desk_before_end: bool = False
    error: str | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def accepted(self) -> bool:
        return bool(self.of("call_started"))

    def before_call(self) -> list[dict[str, Any]]:
        """Messages up to the first ``call_started``."""
        out = []
        for m in self.messages:
            if m.get("type") == "call_started":
                break
            out.append(m)
        return out


@dataclass
class Report:
    """The counts of a run; the lists name the visitors (index, id, detail) for a report."""

    visitors: int = 0
    calls: int = 0
    served_at_once: int = 0
    unfinished: int = 0
    bad_ends: list[str] = field(default_factory=list)  # not exactly one call_ended, or closed
    closed_4004_instead_of_end: int = 0
    waits_shown_at_once: list[str] = field(default_factory=list)
    position_regressions: list[str] = field(default_factory=list)
    eta_rises_without_reason: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Each figure by its field's name; a list counts its entries."""
        return {
            name: len(value) if isinstance(value, list) else value
            for name, value in asdict(self).items()
        }


# Processes ------------------------------------------------------------------------------------


def serve(port: int, heartbeat_s: float) -> None:
    """One desk server process, as ``humandesk serve`` runs it, with a heartbeat interval of
    its own (the desk's settings come from the environment)."""
    import logging
    from collections.abc import AsyncIterator

    from aiohttp import web

    from humandesk.server.app import create_app
    from humandesk.server.cli import new_event_loop
    from humandesk.server.collector import collector_policy
    from humandesk.server.config import Config

    logging.basicConfig(
        level=os.environ.get("HUMANDESK_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = replace(Config.from_env(), host=HOST, port=port, heartbeat_s=heartbeat_s)
    app = create_app(config)

    async def collector(_app: web.Application) -> AsyncIterator[None]:
        async with collector_policy():
            yield

    app.cleanup_ctx.append(collector)
    web.run_app(app, host=HOST, port=port, print=None, loop=new_event_loop())


@contextlib.contextmanager
def desk_servers(redis_url: str, desk: str, load: Load) -> Iterator[list[str]]:
    """``load.servers`` server processes of one desk; yields their base URLs."""
    data_dir = tempfile.mkdtemp(prefix="hd-stress-data-")
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # benchmarks
        HUMANDESK_REDIS_URL=redis_url,
        HUMANDESK_DESK=desk,
        HUMANDESK_SECRET_KEY=SECRET,
        HUMANDESK_DATA_DIR=data_dir,
        HUMANDESK_QUEUES=QUEUE,
        HUMANDESK_LOG_LEVEL="WARNING",
        # Every client of this load comes from 127.0.0.1: the per-address and per-socket
        # limits are off, explicitly.
        HUMANDESK_JOINS_PER_MINUTE="0",
        HUMANDESK_WAITING_PER_ADDRESS="0",
        HUMANDESK_MESSAGES_PER_SECOND="0",
    )
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(load.servers):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "serve",
                        "--port",
                        str(port),
                        "--heartbeat",
                        str(load.heartbeat_s),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://{HOST}:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        yield urls
    finally:
        stop_all(procs)
        shutil.rmtree(data_dir, ignore_errors=True)


async def prepare_desk(redis_url: str, desk: str, load: Load) -> dict[str, str]:
    """The queue without wrap-up, and ``load.agents`` accounts; returns name -> session."""
    from humandesk.queue.client import DeskQueue
    from humandesk.server.accounts import Account
    from humandesk.server.auth import TokenSigner

    redis = Redis.from_url(redis_url)
    try:
        queue = DeskQueue(redis, desk)
        await queue.set_queue_rules(QUEUE, {"wrapup_ms": 0})
        names = [f"agent{i:02d}" for i in range(load.agents)]
        for name in names:
            account = Account(name=name, display_name=name.title(), queues=[QUEUE])
            await redis.hset(queue.keys.accounts, name, json.dumps(asdict(account)))
        signer = TokenSigner(SECRET, desk, 3600)
        return {name: signer.agent_session(name) for name in names}
    finally:
        await redis.aclose()


# Clients --------------------------------------------------------------------------------------


async def run_agent(
    url: str, token: str, load: Load, rng: random.Random, stop: asyncio.Event
) -> None:
    """Accepts every offer at once; hangs up after an exponential talk time."""
    async with aiohttp.ClientSession(cookies={"hd_session": token}) as session:
        ws = await session.ws_connect(url + "/ws/agent", origin=url, max_msg_size=0)
        hangups: set[asyncio.Task[None]] = set()

        async def hang_up(call_id: str, after: float) -> None:
            await asyncio.sleep(after)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"type": "hangup", "call_id": call_id}))

        await ws.send_str(json.dumps({"type": "status", "status": "available"}))
        reader = asyncio.ensure_future(ws.receive())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {reader, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if stopping in done:
                    break
                msg = reader.result()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"agent socket ended: {msg.type} {ws.close_code}")
                reader = asyncio.ensure_future(ws.receive())
                m = json.loads(msg.data)
                kind = m.get("type")
                if kind == "offer":
                    await ws.send_str(json.dumps({"type": "accept", "offer_id": m["offer_id"]}))
                elif kind == "call_started":
                    task = asyncio.create_task(
                        hang_up(str(m["call_id"]), rng.expovariate(1 / load.talk_s))
                    )
                    hangups.add(task)
                    task.add_done_callback(hangups.discard)
                elif kind == "status" and m.get("status") == "wrap_up":
                    await ws.send_str(json.dumps({"type": "wrapup", "action": "done"}))
        finally:
            reader.cancel()
            stopping.cancel()
            for task in list(hangups):
                task.cancel()
            await ws.close()


async def run_visitor(
    url: str, session: aiohttp.ClientSession, entry: VisitorLog, load: Load
) -> None:
    """Joins, waits, takes the call; keeps every message and how the socket ended."""
    try:
        ws = await session.ws_connect(url + "/ws/visitor", origin=url, max_msg_size=0)
    except Exception as exc:
        entry.error = f"connect: {type(exc).__name__}: {exc}"
        return
    try:
        await ws.send_str(
            json.dumps({"type": "join", "queue": QUEUE, "name": f"Visitor {entry.index}"})
        )
        ended_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            timeout = None if ended_at is None else max(0.0, ended_at + load.linger_s - loop.time())
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                break  # lingered after call_ended: nothing more came
            if msg.type is aiohttp.WSMsgType.TEXT:
                m = json.loads(msg.data)
                entry.messages.append(m)
                if m.get("type") == "queued":
                    entry.visitor_id = str(m.get("visitor_id"))
                elif m.get("type") == "call_ended" and ended_at is None:
                    ended_at = loop.time()
                continue
            if msg.type is aiohttp.WSMsgType.CLOSE:
                entry.close_code = int(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                entry.close_code = ws.close_code
            else:
                entry.error = f"socket: {msg.type} {msg.data!r}"
            entry.closed_by_desk_before_end = ended_at is None
            break
    except Exception as exc:
        entry.error = f"{type(exc).__name__}: {exc}"
    finally:
        await ws.close()


async def drive(urls: list[str], sessions: dict[str, str], load: Load) -> list[VisitorLog]:
    """Runs the agents and the arrivals; returns every visitor's log once all are done."""
    rng = random.Random(load.seed)
    stop = asyncio.Event()
    agents = [
        asyncio.create_task(
            run_agent(urls[i % len(urls)], token, load, random.Random(load.seed * 1000 + i), stop)
        )
        for i, token in enumerate(sessions.values())
    ]
    logs: list[VisitorLog] = []
    visitors: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(0.5)  # the agents are Available
            start = next_at = loop.time()
            while next_at - start < load.seconds:
                wait = next_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                entry = VisitorLog(index=len(logs))
                logs.append(entry)
                url = urls[entry.index % len(urls)]
                visitors.append(asyncio.create_task(run_visitor(url, session, entry, load)))
                next_at += rng.expovariate(load.arrivals_per_s)
            for agent in agents:
                if agent.done():
                    agent.result()  # an agent that failed fails the run
            await asyncio.wait(visitors, timeout=load.drain_s)
    finally:
        stop.set()
        for task in visitors:
            task.cancel()
        results = await asyncio.gather(*agents, return_exceptions=True)
        await asyncio.gather(*visitors, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise RuntimeError(f"an agent failed: {result!r}")
    return logs


async def offered_at_join(redis_url: str, desk: str) -> set[str]:
    """Visitors whose offer the join script itself made, from the desk's event log.

    A script's events are contiguous in the log. A join logs ``joined`` and then, from its
    match, one ``offered`` per offer it makes: so an ``offered`` for the visitor in the run
    of ``offered`` events right behind their ``joined`` (same script time) is the join's.
    No other script in this load offers without logging something else first (offers never
    time out, agents have no delay and no wrap-up, visitors never come back)."""
    from humandesk.queue.keys import DeskKeys

    redis = Redis.from_url(redis_url)
    try:
        rows = await redis.xrange(DeskKeys(desk).events)
    finally:
        await redis.aclose()
    events = [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]
    found: set[str] = set()
    joining: dict[str, str] | None = None
    for event in events:
        kind = event.get("event")
        if kind == "joined":
            joining = event
        elif kind == "offered" and joining is not None and event["ts"] == joining["ts"]:
            if event["visitor"] == joining["visitor"]:
                found.add(event["visitor"])
        else:
            joining = None
    return found


def judge(logs: list[VisitorLog], at_once: set[str]) -> Report:
    report = Report(visitors=len(logs))
    for entry in logs:
        who = f"#{entry.index} {entry.visitor_id}"
        if entry.error:
            report.errors.append(f"{who}: {entry.error}")
        if entry.accepted:
            report.calls += 1
            ends = len(entry.of("call_ended"))
            if ends != 1 or entry.closed_by_desk_before_end:
                report.bad_ends.append(f"{who}: {ends} call_ended, close {entry.close_code}")
                if ends == 0 and entry.close_code == 4004:
                    report.closed_4004_instead_of_end += 1
        elif not entry.of("call_ended"):
            report.unfinished += 1
        shown = [m for m in entry.before_call() if m.get("type") in ("queued", "position")]
        if entry.visitor_id in at_once:
            report.served_at_once += 1
            waits = [m["eta_seconds"] for m in shown if m.get("eta_seconds", 0) > 0]
            if waits:
                report.waits_shown_at_once.append(f"{who}: shown {waits}")
        places = [(m["type"], m["position"]) for m in shown if "position" in m]
        best = None
        for _kind, place in places:
            if best is not None and place > best:
                report.position_regressions.append(f"{who}: {places}")
                break
            best = place if best is None else min(best, place)
        eta = None
        for m in shown:
            if "eta_seconds" not in m:
                continue
            if eta is not None and m["eta_seconds"] > eta and not m.get("eta_reason"):
                report.eta_rises_without_reason.append(
                    f"{who}: {[(x['type'], x.get('eta_seconds')) for x in shown]}"
                )
                break
            eta = m["eta_seconds"]
    return report


async def run(redis_url: str, load: Load) -> Report:
    """One stress run on a fresh desk of the Redis at ``redis_url``."""
    desk = "stress" + uuid.uuid4().hex[:8]
    sessions = await prepare_desk(redis_url, desk, load)
    with desk_servers(redis_url, desk, load) as urls:
        logs = await drive(urls, sessions, load)
    return judge(logs, await offered_at_join(redis_url, desk))


#: The command's options that shape the load, and the field of ``Load`` each sets (its
#: default is the field's, but for a run of a minute).
LOAD_OPTIONS = {
    "--seconds": "seconds",
    "--rate": "arrivals_per_s",
    "--agents": "agents",
    "--talk": "talk_s",
    "--heartbeat": "heartbeat_s",
    "--seed": "seed",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="(internal) one desk server process")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--heartbeat", type=float, default=5.0)
    defaults = Load(seconds=60.0)
    for option, name in LOAD_OPTIONS.items():
        default = getattr(defaults, name)
        parser.add_argument(
            option, dest=name, type=type(default), default=default, metavar=option[2:].upper()
        )
    parser.add_argument("--examples", type=int, default=5, help="offending visitors shown")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.heartbeat)
        return
    load = Load(**{name: getattr(args, name) for name in LOAD_OPTIONS.values()})
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server")
    with redis_server(binary, prefix="hd-stress-redis-") as url:
        report = asyncio.run(run(url, load))
    print(json.dumps({"load": asdict(load), **report.counts()}, indent=1))
    for name in ("bad_ends", "waits_shown_at_once", "position_regressions",
                 "eta_rises_without_reason", "errors"):  # fmt: skip
        for line in getattr(report, name)[: args.examples]:
            print(f"{name}: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
