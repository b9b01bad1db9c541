"""Shared fixtures: a real redis-server for the whole test session, one fresh desk per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.queue.client import DeskQueue, QueueConfig

from helpers import desk_config, find_redis_server, redis_server
from helpers import free_port as free_port  # tests import it from here

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
    found = find_redis_server()
    need(found is not None, "redis-server")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a loopback port, for the whole session."""
    with redis_server(redis_server_binary()) as url:
        yield url


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


#: ``await desk_client(**settings)``: see the fixture.
DeskClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def desk_client(aiohttp_client: Any, redis_url: str, desk_name: str, tmp_path: Path) -> DeskClient:
    """Makes the test client of a desk app on the session's Redis, with the settings of
    ``helpers.desk_config`` and these overrides; the test adds the accounts it needs."""

    async def make(**settings: Any) -> TestClient[Any, Any]:
        from humandesk.server.app import create_app  # not for the tests that need no app

        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(desk_config(redis_url, desk_name, tmp_path, **settings))
        )
        return client

    return make


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable


# Browser suites that run against one `humandesk demo` per module (each module defines `demo`).


@pytest.fixture(scope="module")
def browser(demo: Any) -> Iterator[Any]:
    """Debian's Chromium through Playwright, for the module's demo desk."""
    from pages import launched_chromium

    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def errors() -> list[str]:
    """Console errors the pages of a test report (see test_browser.watch_console)."""
    return []
