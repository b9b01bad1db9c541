"""Test helpers: the queue's records as the tests build them (``T0``, ``visitor``, ``agent``),
a desk app on a real Redis, a small WebSocket client that waits for types, and the processes
tests start (redis-server, desk servers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from benchmarks.harness import HOST, free_port, start_redis, stop_process, wait_http
from benchmarks.harness import find_redis_server as find_redis_server  # for the tests
from humandesk.queue.client import AgentInfo, NewVisitor
from humandesk.queue.limits import AbuseLimits
from humandesk.server.config import Config

# The queue's records, as tests of the scripts build them ----------------------------------

#: The tests' clock starts here (epoch milliseconds); they pass ``now_ms=T0 + ...``.
T0 = 1_800_000_000_000


def visitor(n: int, queue: str = "support", priority: int = 0) -> NewVisitor:
    """Visitor ``n`` (id ``v{n}``) joining ``queue``."""
    return NewVisitor(
        id=f"v{n}", queue=queue, name=f"Visitor {n}", topic=f"topic {n}", priority=priority
    )


def agent(name: str, queues: list[str] | None = None, **levels: int) -> AgentInfo:
    """Agent ``name`` of ``queues`` (support unless given), at ``levels`` (queue=level)."""
    return AgentInfo(
        name=name, display_name=name.title(), queues=queues or ["support"], levels=levels
    )


# A desk app's settings ----------------------------------------------------------------------

#: Tests crowd one address (127.0.0.1) with many visitors and sign-ins: they set the limits
#: out of the way, and the tests of the limits set their own.
ROOMY = AbuseLimits(
    joins_per_minute=100_000,
    waiting_per_address=100_000,
    callbacks_per_hour=100_000,
    open_callbacks=100_000,
    messages_per_second=100_000,
    message_burst=100_000,
)


def desk_config(redis_url: str, desk: str, tmp_path: Any, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "desk": desk,
        "secret_key": "test-secret-key-of-desk-" + desk,
        "data_dir": tmp_path,
        "queues": ("support", "sales"),
        "heartbeat_s": 0.5,
        "reaper_interval_s": 0.2,
        "limits": ROOMY,
    }
    values.update(overrides)
    return Config(**values)


class Peer:
    """A WebSocket client that keeps every message and can wait for one of a given type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._cursor = 0

    @classmethod
    async def welcomed(cls, ws: aiohttp.ClientWebSocketResponse) -> Peer:
        """The peer of a socket just opened, once the desk's ``welcome`` came."""
        peer = cls(ws)
        await peer.expect("welcome")
        return peer

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def expect(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The next message of type ``kind`` (and matching fields), skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while self._cursor < len(self.seen):
                msg = self.seen[self._cursor]
                self._cursor += 1
                if msg.get("type") == kind and all(msg.get(k) == v for k, v in match.items()):
                    return msg
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {kind} {match} within {timeout}s; saw {self.seen}")
            msg = await self.ws.receive(timeout=remaining)
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.seen.append(json.loads(msg.data))
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                raise AssertionError(
                    f"socket closed ({self.ws.close_code}) waiting for {kind}; saw {self.seen}"
                )

    async def expect_any(self, kinds: tuple[str, ...], timeout: float = 10.0) -> dict[str, Any]:
        """The next message of any of the types ``kinds``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while self._cursor < len(self.seen):
                msg = self.seen[self._cursor]
                self._cursor += 1
                if msg.get("type") in kinds:
                    return msg
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"none of {kinds} within {timeout}s; saw {self.seen}")
            msg = await self.ws.receive(timeout=remaining)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket closed waiting for {kinds}; saw {self.seen}")
            self.seen.append(json.loads(msg.data))

    async def closed(self, timeout: float = 10.0) -> int | None:
        """Reads until the server closes; returns the close code."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.seen.append(json.loads(msg.data))
                continue
            if msg.type is aiohttp.WSMsgType.CLOSE:
                # The code the server sent (close_code may read 1006 once the server has
                # dropped the TCP connection before the client's close reply).
                return int(msg.data)
            if msg.type in (
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return self.ws.close_code

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Messages that arrive within ``seconds`` (to show that nothing happened)."""
        got: list[dict[str, Any]] = []
        try:
            while True:
                msg = await self.ws.receive(timeout=seconds)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                self.seen.append(data)
                got.append(data)
        except TimeoutError:
            pass
        self._cursor = len(self.seen)
        return got


def origin_of(client: TestClient[Any, Any]) -> str:
    return f"http://{client.host}:{client.port}"


async def open_visitor(client: TestClient[Any, Any]) -> Peer:
    return await Peer.welcomed(await client.ws_connect("/ws/visitor", origin=origin_of(client)))


async def login_agent(client: TestClient[Any, Any], name: str, password: str) -> None:
    resp = await client.post(
        "/api/login",
        json={"username": name, "password": password},
        headers={"Origin": origin_of(client)},
    )
    assert resp.status == 200, await resp.text()


class SignedIn:
    """An HTTP session of its own for one account, beside the test client's (which may be
    signed in as someone else): ``await SignedIn.open(client, "boss", pw)``."""

    def __init__(self, client: TestClient[Any, Any], session: aiohttp.ClientSession) -> None:
        self.client = client
        self.session = session

    @classmethod
    async def open(cls, client: TestClient[Any, Any], name: str, password: str) -> SignedIn:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        resp = await session.post(
            client.make_url("/api/login"),
            json={"username": name, "password": password},
            headers={"Origin": origin_of(client)},
        )
        assert resp.status == 200, await resp.text()
        return cls(client, session)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(self.client.make_url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        headers = {"Origin": origin_of(self.client), **kwargs.pop("headers", {})}
        return self.session.post(self.client.make_url(path), headers=headers, **kwargs)

    async def ws(self, path: str = "/ws/agent") -> Peer:
        url = self.client.make_url(path)
        return await Peer.welcomed(
            await self.session.ws_connect(url, origin=origin_of(self.client))
        )

    async def close(self) -> None:
        await self.session.close()


async def open_agent(client: TestClient[Any, Any]) -> Peer:
    return await Peer.welcomed(await client.ws_connect("/ws/agent", origin=origin_of(client)))


async def agent_in_status(
    client: TestClient[Any, Any], status: str, name: str = "ada", password: str = "correct horse"
) -> Peer:
    """A console signed in as ``name`` (on the test client's cookies) that has set ``status``
    and heard the desk confirm it."""
    await login_agent(client, name, password)
    agent = await open_agent(client)
    await agent.send({"type": "status", "status": status})
    await agent.expect("status", status=status)
    return agent


async def available_agent(
    client: TestClient[Any, Any], name: str = "ada", password: str = "correct horse"
) -> Peer:
    return await agent_in_status(client, "available", name, password)


async def answering_agent(
    client: TestClient[Any, Any], name: str = "ada", password: str = "correct horse"
) -> tuple[Peer, dict[str, Any], str]:
    """A console signed in as ``name`` that goes Available and accepts the offer it gets:
    the console, the offer and the call's id (once the console's ``call_started`` came)."""
    await login_agent(client, name, password)
    agent = await open_agent(client)
    await agent.send({"type": "status", "status": "available"})
    offer = await agent.expect("offer")
    await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
    call = (await agent.expect("call_started"))["call_id"]
    return agent, offer, str(call)


async def raw_http(
    client: TestClient[Any, Any], request: bytes, *, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Sends one request written byte for byte (headers an HTTP client would not send) on a
    connection of its own; returns the status, the headers (lower-case names) and the body."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        # Read by Content-Length, not to the end of the connection: with a request body left
        # unread, aiohttp lingers reading it for seconds before it closes.
        if head or status in (101, 204, 304):
            return status, headers, b""
        if "content-length" in headers:
            length = int(headers["content-length"])
            return status, headers, await asyncio.wait_for(reader.readexactly(length), 15)
        return status, headers, await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Waits for a ``humandesk serve`` process to answer ``/readyz``."""
    wait_http(url + "/readyz", proc, timeout)


#: The ``humandesk`` command, as the tests run it (the Python that runs them).
HUMANDESK = (sys.executable, "-m", "humandesk.server.cli")


@contextlib.contextmanager
def running_humandesk(
    *args: str, env: dict[str, str], port: int, stop: signal.Signals = signal.SIGTERM
) -> Iterator[subprocess.Popen[bytes]]:
    """``humandesk ARGS`` as a process (its stderr kept for a failure), once it is ready on
    ``port``; stopped with ``stop`` afterwards (killed if it lingers)."""
    proc = subprocess.Popen(
        [*HUMANDESK, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_humandesk(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``humandesk ARGS`` run to its end (as ``python -m humandesk.server.cli``), its output
    captured as text."""
    return subprocess.run(
        [*HUMANDESK, *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_agent(
    env: dict[str, str], name: str, password: str, queue: str = "support"
) -> subprocess.CompletedProcess[str]:
    """``humandesk agent add NAME --queue QUEUE --password-stdin``, the password on stdin."""
    args = ("agent", "add", name, "--queue", queue, "--password-stdin")
    return run_humandesk(*args, env=env, stdin=password + "\n")


def stop_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    """SIGTERM to every process at once, then a wait for each; one that does not go in
    ``timeout`` seconds is killed."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# A redis-server of a test's own -------------------------------------------------------------


@contextlib.contextmanager
def redis_server(binary: str, prefix: str = "hd-redis-") -> Iterator[str]:
    """A private redis-server without persistence on a free loopback port: yields its URL."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    try:
        port = free_port()
        proc = start_redis(binary, port, workdir, "--appendonly", "no")
        try:
            yield f"redis://{HOST}:{port}/0"
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class JitterProxy:
    """A TCP proxy in front of Redis whose replies take a random extra 0-``max_ms`` each
    (in order on each connection), like a network whose round trips vary: two requests
    made one after the other on different connections may be answered the other way round.
    """

    def __init__(self, target: str, max_ms: float, seed: int = 7) -> None:
        import random
        import urllib.parse

        parts = urllib.parse.urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.max_s = max_ms / 1000
        self.rng = random.Random(seed)
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        link: dict[str, Any] = {}  # what one connection's two directions share
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, link, request=True)),
            asyncio.create_task(self._pipe(up_reader, writer, link, request=False)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: dict[str, Any],
        *,
        request: bool,
    ) -> None:
        try:
            while data := await src.read(65536):
                if not await self._passes(data, link, request=request):
                    break  # the connection drops here
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def _passes(self, data: bytes, link: dict[str, Any], *, request: bool) -> bool:
        """Whether ``data`` goes on: a reply after its random delay."""
        if not request:
            await asyncio.sleep(self.rng.uniform(0, self.max_s))
        return True


class ReplyLossProxy(JitterProxy):
    """A TCP proxy in front of Redis that, once armed with :meth:`lose_reply_to`, lets the
    next request containing ``marker`` reach Redis and then drops the connection instead of
    passing Redis's reply back: the request ran, and the client never hears of it."""

    def __init__(self, target: str) -> None:
        super().__init__(target, max_ms=0)
        self.marker: bytes | None = None
        self.lost = 0

    def lose_reply_to(self, marker: bytes) -> None:
        self.marker = marker

    async def _passes(self, data: bytes, link: dict[str, Any], *, request: bool) -> bool:
        if request:
            if self.marker is not None and self.marker in data:
                link["marked"], self.marker = self.marker, None
            return True
        if "marked" not in link:
            return True
        if data.startswith(b"-NOSCRIPT"):  # not run: the script is loaded and sent again
            self.marker = link.pop("marked")
            return True
        self.lost += 1  # Redis answered the marked request: nobody hears it
        return False
