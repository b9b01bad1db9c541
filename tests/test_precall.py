"""The pre-call test against a real worker process (`humandesk precall-worker`), through the
desk's ``/api/precall``, from an aiortc client that does what the visitor panel does: the
client's own picture comes back through the echo peer, and its statistics give the round
trip, the loss and the path. Also: relay-only through a real coturn, a full pool, a worker
that is down, the limits at the desk's door, and the result travelling with the join to the
agent's offer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from benchmarks.harness import stop_process
from humandesk.server.app import ACCOUNTS
from humandesk.server.config import Config
from humandesk.signaling.peers import PrecallProbe

from conftest import DeskClient, free_port, need, python_env
from helpers import (
    HUMANDESK,
    ROOMY,
    available_agent,
    open_visitor,
    origin_of,
    running_humandesk,
)

Client = TestClient[Any, Any]
GREEN = (40, 160, 40)


@dataclass
class Worker:
    url: str
    proc: subprocess.Popen[bytes]

    def load(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
            body: dict[str, Any] = json.load(resp)
            return body

    def wait_idle(self, timeout: float = 20) -> dict[str, Any]:
        """The worker's load once no peer runs (the last test's peers are closed)."""
        deadline = time.monotonic() + timeout
        while True:
            load = self.load()
            if load["peers"] == 0 and load["waiting"] == 0:
                return load
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker still runs peers: {load}")
            time.sleep(0.1)


@contextlib.contextmanager
def running_worker(**limits: str) -> Iterator[Worker]:
    """``humandesk precall-worker`` with these ``HUMANDESK_PRECALL_*`` limits."""
    port = free_port()
    env = python_env() | {f"HUMANDESK_PRECALL_{k.upper()}": v for k, v in limits.items()}
    proc = subprocess.Popen(
        [*HUMANDESK, "precall-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    worker = Worker(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                stderr = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"the worker exited: {stderr!r}")
            with contextlib.suppress(OSError):
                worker.load()
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not start")
            time.sleep(0.1)
        yield worker
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """One test at a time, none waiting, each peer closed after 6 s."""
    with running_worker(peers="1", queue="0", seconds="6") as worker:
        yield worker


@contextlib.asynccontextmanager
async def probe(client: Client, **kwargs: Any) -> Any:
    """A pre-call client of the desk: ICE servers from ``/api/precall/ice``, then the offer."""
    async with aiohttp.ClientSession() as session:
        test = PrecallProbe(
            str(client.make_url("/api/precall")),
            session=session,
            headers={"Origin": origin_of(client)},
            **kwargs,
        )
        try:
            yield test
        finally:
            await test.close()


async def start(client: Client, test: PrecallProbe) -> bool:
    servers, policy = await test.ice(str(client.make_url("/api/precall/ice")))
    return await test.start(servers, policy)


def close_to(colour: tuple[int, int, int] | None, expected: tuple[int, int, int]) -> bool:
    return colour is not None and all(
        abs(a - b) < 40 for a, b in zip(colour, expected, strict=True)
    )


async def wait_measured(test: PrecallProbe) -> dict[str, Any]:
    """The statistics once the echo peer's receiver reports gave a round-trip time."""
    for _ in range(100):
        measured = await test.measure()
        if measured["rtt_ms"] is not None and measured["packets_sent"] > 0:
            return measured
        await asyncio.sleep(0.1)
    raise AssertionError(f"no round-trip time measured: {measured}")


async def test_the_visitor_sees_their_own_picture_come_back_with_numbers(
    desk_client: DeskClient, worker: Worker
) -> None:
    worker.wait_idle()
    served = worker.load()["served"]
    client = await desk_client(precall_urls=(worker.url,))
    async with probe(client, colour=GREEN) as test:
        assert await start(client, test), (test.status, test.refusal)
        await test.wait_for_frames(20)
        # The picture that came back is the one sent: it went through the echo peer.
        assert close_to(test.received_colour(), GREEN), test.received_colour()
        measured = await wait_measured(test)
    assert measured["connection"] == "connected"
    assert measured["path"] == "direct"
    assert 0 <= measured["rtt_ms"] < 60_000
    assert measured["loss_pct"] == 0.0  # loopback
    assert worker.load()["served"] == served + 1
    print("pre-call on loopback:", measured)


@pytest.fixture
def turn() -> Iterator[Any]:
    """Debian's coturn with ``use-auth-secret`` (see test_turn.py)."""
    from test_turn import TURNSERVER, running_coturn

    need(Path(TURNSERVER).exists() or shutil.which(TURNSERVER) is not None, "coturn")
    with running_coturn() as turn:
        yield turn


async def test_relay_only_goes_through_coturn(
    desk_client: DeskClient, worker: Worker, turn: Any
) -> None:
    worker.wait_idle()
    client = await desk_client(
        precall_urls=(worker.url,),
        turn_urls=(turn.url,),
        turn_secret=turn.secret,
        ice_policy="relay",
    )
    async with probe(client) as test:
        servers, policy = await test.ice(str(client.make_url("/api/precall/ice")))
        # A call's policy, and TURN credentials of the pre-call's own.
        assert policy == "relay"
        (server,) = servers
        expiry, _, user = server["username"].partition(":")
        assert user.startswith("p-") and time.time() < int(expiry) <= time.time() + 125
        assert await test.start(servers, policy), (test.status, test.refusal)
        await test.wait_for_frames(20)
        assert close_to(test.received_colour(), test.colour)
        measured = await wait_measured(test)
    assert measured["path"] == "relay", measured
    # coturn allocated for the client and for the worker, under the desk's REST names.
    log = turn.output()
    for who in ("p-", "pw-"):
        assert re.search(
            rf"user <\d+:{who}[^>]*>: incoming packet ALLOCATE processed, success", log
        ), (who, log[-3000:])
    print("pre-call through TURN:", measured)


async def test_a_full_pool_refuses_and_says_so(desk_client: DeskClient, worker: Worker) -> None:
    worker.wait_idle()
    refused = worker.load()["refused"]
    client = await desk_client(precall_urls=(worker.url,))
    async with probe(client) as first, probe(client) as second:
        assert await start(client, first)
        assert not await start(client, second)
        assert second.status == 503
        assert second.refusal["error"] == "precall_busy", second.refusal
        assert worker.load()["refused"] == refused + 1
    # The join works all the same.
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
    await visitor.expect("queued")


async def test_an_offer_without_media_is_refused(desk_client: DeskClient, worker: Worker) -> None:
    """An empty offer would hold a slot without sending anything: the worker refuses it."""
    worker.wait_idle()
    client = await desk_client(precall_urls=(worker.url,))
    empty = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    for sdp in (empty, "v=0 and nothing an SDP has"):
        resp = await client.post(
            "/api/precall",
            json={"type": "offer", "sdp": sdp},
            headers={"Origin": origin_of(client)},
        )
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_offer"
    assert worker.load()["peers"] == 0


async def test_a_test_waits_for_a_slot_in_the_queue(desk_client: DeskClient) -> None:
    """One slot, one place in the queue: the second test waits, and runs once the first ends."""
    with running_worker(peers="1", queue="1", wait="60", seconds="30") as worker:
        client = await desk_client(precall_urls=(worker.url,))
        async with probe(client) as first, probe(client) as second:
            assert await start(client, first)
            await first.wait_for_frames(3)
            waiting = asyncio.create_task(start(client, second))
            for _ in range(200):
                if worker.load()["waiting"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert worker.load()["waiting"] == 1
            assert not waiting.done()
            await first.close()  # the visitor's test ends: the slot goes to the one waiting
            assert await waiting, (second.status, second.refusal)
            await second.wait_for_frames(3)
            load = worker.load()
            assert (load["served"], load["refused"], load["waiting"]) == (2, 0, 0)


async def test_a_peer_is_closed_after_its_time(desk_client: DeskClient, worker: Worker) -> None:
    """The client never hangs up; the worker closes the peer after HUMANDESK_PRECALL_SECONDS."""
    worker.wait_idle()
    client = await desk_client(precall_urls=(worker.url,))
    async with probe(client) as test:
        assert await start(client, test)
        await test.wait_for_frames(5)
        assert worker.load()["peers"] == 1
        worker.wait_idle(timeout=30)
        assert test.pc is not None
        for _ in range(100):
            if test.pc.connectionState != "connected":
                break
            await asyncio.sleep(0.1)
        assert test.pc.connectionState in ("closed", "failed"), test.pc.connectionState


async def test_a_worker_that_is_down_leaves_the_join_working(desk_client: DeskClient) -> None:
    client = await desk_client(precall_urls=(f"http://127.0.0.1:{free_port()}",))
    async with probe(client) as test:
        assert not await start(client, test)
    assert test.status == 503
    assert test.refusal["error"] == "precall_unavailable", test.refusal
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "queue": "support", "name": "Grace"})
    await visitor.expect("queued")


async def test_the_door_of_the_precall_endpoints(desk_client: DeskClient) -> None:
    client = await desk_client(
        precall_urls=(f"http://127.0.0.1:{free_port()}",),
        limits=replace(ROOMY, precalls_per_minute=1),
    )
    own = {"Origin": origin_of(client)}
    # A site that embeds the widget frames the panel, which may test as it may connect.
    shop = await desk_client(allowed_origins=("https://shop.example",))
    for origin, status in (("https://shop.example", 200), ("https://evil.example", 403)):
        resp = await shop.post("/api/precall/ice", headers={"Origin": origin})
        assert resp.status == status, origin
    for path in ("/api/precall/ice", "/api/precall"):
        for headers in ({}, {"Origin": "https://evil.example"}):
            resp = await client.post(path, json={}, headers=headers)
            assert resp.status == 403, path
            assert (await resp.json())["error"] == "origin_not_allowed"
    for body, error in (
        ("not json", "bad_json"),
        ("[]", "bad_json"),
        ('{"type": "answer", "sdp": "v=0"}', "bad_request"),
        ('{"type": "offer", "sdp": 5}', "bad_request"),
        ('{"type": "offer", "sdp": "v=0\\ud800"}', "bad_request"),
        ('{"type": "offer", "sdp": "v=0' + "x" * 30_000 + '"}', "too_large"),
    ):
        resp = await client.post("/api/precall", data=body, headers=own)
        assert resp.status in (400, 413), body[:40]
        assert (await resp.json())["error"] == error, body[:40]
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    first = await client.post("/api/precall", json=offer, headers=own)
    assert (await first.json())["error"] == "precall_unavailable"
    second = await client.post("/api/precall", json=offer, headers=own)
    assert second.status == 429
    body = await second.json()
    assert body["error"] == "rate_limited" and body["limit"] == "precalls"
    assert int(second.headers["Retry-After"]) == body["retry_after_s"] > 0


RESULT = {"status": "poor", "rtt_ms": 412.6, "loss_pct": 4.25, "path": "relay"}


async def test_the_result_travels_with_the_join_to_the_offer(desk_client: DeskClient) -> None:
    client = await desk_client()
    await client.app[ACCOUNTS].add("ada", "correct horse", ["support"])
    await client.app[ACCOUNTS].add("bob", "battery staple", ["support"])
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "name": "Grace", "precall": RESULT})
    await visitor.expect("queued")
    plain = await open_visitor(client)
    await plain.send({"type": "join", "name": "Alan"})
    await plain.expect("queued")
    agent = await available_agent(client)
    offer = await agent.expect("offer")
    assert offer["visitor"]["name"] == "Grace"
    assert offer["visitor"]["precall"] == {
        "status": "poor",
        "rtt_ms": 413,
        "loss_pct": 4.2,
        "path": "relay",
    }
    other = await available_agent(client, "bob", "battery staple")
    second = await other.expect("offer")
    assert second["visitor"]["name"] == "Alan"
    assert second["visitor"]["precall"] is None


@pytest.mark.parametrize(
    "precall",
    [
        "good",
        [],
        {},
        {"status": "great"},
        {"status": "ok", "rtt_ms": -1},
        {"status": "ok", "rtt_ms": 60_001},
        {"status": "ok", "rtt_ms": "12"},
        {"status": "ok", "rtt_ms": True},
        {"status": "ok", "loss_pct": 101},
        {"status": "ok", "path": "tcp"},
        {"status": "ok", "jitter_ms": 3},
    ],
)
async def test_a_bad_result_is_refused(desk_client: DeskClient, precall: Any) -> None:
    client = await desk_client()
    visitor = await open_visitor(client)
    await visitor.send({"type": "join", "name": "Grace", "precall": precall})
    error = await visitor.expect("error")
    assert error["code"] == "bad_message" and "precall" in error["message"], error
    assert error["in_reply_to"] == "join"


def worker_children(pid: int) -> list[int]:
    """The pre-call workers a process started (its children running ``precall-worker``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if parent == pid and b"precall-worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def serve(redis_url: str, desk_name: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``humandesk serve`` as it is run, with no pre-call settings: its URL and pid."""
    port = free_port()
    env = {k: v for k, v in python_env().items() if not k.startswith("HUMANDESK_")}
    env |= {
        "HUMANDESK_REDIS_URL": redis_url,
        "HUMANDESK_DESK": desk_name,
        "HUMANDESK_SECRET_KEY": "a-secret-key-for-the-serve-test",
        "HUMANDESK_DATA_DIR": str(tmp_path),
        "HUMANDESK_PRECALLS_PER_MINUTE": "0",  # the test asks until the worker is up
    }
    with running_humandesk("serve", "--port", str(port), env=env, port=port) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


@pytest.mark.slow
async def test_serve_starts_a_worker_of_its_own_and_stops_it(serve: tuple[str, int]) -> None:
    url, pid = serve
    (worker,) = worker_children(pid)
    async with aiohttp.ClientSession() as session:
        test = PrecallProbe(url + "/api/precall", session=session, headers={"Origin": url})
        try:
            servers, policy = await test.ice(url + "/api/precall/ice")
            # Up right after the desk, or a moment later: the test says "not now" meanwhile.
            for _ in range(100):
                if await test.start(servers, policy):
                    break
                assert test.refusal["error"] == "precall_unavailable", test.refusal
                await test.close()
                test = PrecallProbe(url + "/api/precall", session=session, headers={"Origin": url})
                await asyncio.sleep(0.2)
            await test.wait_for_frames(10)
            assert close_to(test.received_colour(), test.colour)
        finally:
            await test.close()
    assert running(worker)
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not running(worker):
            break
        await asyncio.sleep(0.1)
    assert not running(worker), "the worker outlived the desk"


def test_the_precall_settings() -> None:
    assert Config.from_env({}).precall_urls is None  # serve starts a worker
    assert Config.from_env({"HUMANDESK_PRECALL_URL": "off"}).precall_urls == ()
    urls = Config.from_env({"HUMANDESK_PRECALL_URL": "http://a:1/, http://b:2"}).precall_urls
    assert urls == ("http://a:1", "http://b:2")
    env = {
        "HUMANDESK_PRECALL_PEERS": "4",
        "HUMANDESK_PRECALL_QUEUE": "0",
        "HUMANDESK_PRECALL_WAIT": "2.5",
        "HUMANDESK_PRECALL_SECONDS": "8",
        "HUMANDESK_PRECALLS_PER_MINUTE": "3",
    }
    config = Config.from_env(env)
    assert (config.precall.max_peers, config.precall.queue) == (4, 0)
    assert (config.precall.wait_s, config.precall.max_seconds) == (2.5, 8.0)
    assert config.limits.precalls_per_minute == 3
    for name, value in (
        ("HUMANDESK_PRECALL_URL", "ftp://a"),
        ("HUMANDESK_PRECALL_PEERS", "0"),
        ("HUMANDESK_PRECALL_SECONDS", "soon"),
        ("HUMANDESK_PRECALLS_PER_MINUTE", "-1"),
    ):
        with pytest.raises(ValueError, match=name):
            Config.from_env({name: value})
