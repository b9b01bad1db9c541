"""Shared fixtures: a real redis-server for the whole test session, one fresh desk per test.

A module runs its tests on a Redis Cluster too by setting ``CLUSTER_TOO = True``: each test
then runs once per ``REDIS_MODES`` (see ``pytest_generate_tests``), and in cluster mode
``redis``, ``desk_name`` and ``desk`` come from a real cluster of three primaries with a replica
each (tests/cluster.py), started once per session, with the desk's slot on a primary other
than the one the URL names."""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from humandesk.queue.client import DeskQueue, QueueConfig
from humandesk.queue.connection import RedisClient

from cluster import Cluster, cluster_redis_server, running_cluster
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


#: What ``redis_mode`` may be: a module that overrides it with these params runs twice.
REDIS_MODES = ("single", "cluster")
#: Cluster-mode desks wait this long for a replica after each script, as a server does.
CLUSTER_WAIT_MS = 100


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A real Redis Cluster (three primaries, a replica each) on loopback, for the session."""
    binary = cluster_redis_server()
    need(binary is not None, "redis-server 7+ (Debian's redis-server) for a Redis Cluster")
    assert binary is not None
    with running_cluster(binary) as cluster:
        yield cluster


@pytest.fixture
def redis_mode() -> str:
    """single: the session's one redis-server (a ``CLUSTER_TOO`` module's tests run on both)."""
    return "single"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs each test of a module with ``CLUSTER_TOO = True`` on one Redis and on a Redis
    Cluster: ``redis_mode`` is then each of ``REDIS_MODES`` in turn."""
    if getattr(metafunc.module, "CLUSTER_TOO", False) and "redis_mode" in metafunc.fixturenames:
        metafunc.parametrize("redis_mode", REDIS_MODES)


_cluster_desks = itertools.count()


@pytest.fixture
def desk_name(request: pytest.FixtureRequest, redis_mode: str) -> str:
    """A desk of its own for each test, so tests never see each other's keys; on a cluster,
    one whose slot sits on primary 1 or 2, never on node 0 (the one in the URL)."""
    name = "t" + uuid.uuid4().hex[:10]
    if redis_mode != "cluster":
        return name
    cluster: Cluster = request.getfixturevalue("redis_cluster")
    return cluster.desk_on(1 + next(_cluster_desks) % 2, stem=name)


#: ``make_redis()``: a new client of the test's Redis (one server or the cluster).
MakeRedis = Callable[[], RedisClient]


@pytest.fixture
async def make_redis(request: pytest.FixtureRequest, redis_mode: str) -> AsyncIterator[MakeRedis]:
    made: list[RedisClient] = []

    def make() -> RedisClient:
        client: RedisClient
        if redis_mode == "cluster":
            cluster: Cluster = request.getfixturevalue("redis_cluster")
            client = RedisCluster.from_url(cluster.url)
        else:
            client = Redis.from_url(request.getfixturevalue("redis_url"))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def redis(make_redis: MakeRedis) -> RedisClient:
    return make_redis()


@pytest.fixture
async def desk(redis: RedisClient, desk_name: str, redis_mode: str) -> DeskQueue:
    wait = CLUSTER_WAIT_MS if redis_mode == "cluster" else 0
    queue = DeskQueue(redis, desk_name, QueueConfig(), replica_wait_ms=wait)
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


# Browser suites that run against one `humandesk demo` per module (a module whose demo needs
# settings of its own defines its own `demo`).


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    """``humandesk demo`` on free ports, for the module's tests."""
    import pages

    pages.need_chromium()
    with pages.running_demo() as demo:
        yield demo


@pytest.fixture(scope="module")
def browser(demo: Any) -> Iterator[Any]:
    """Debian's Chromium through Playwright, for the module's demo desk."""
    from pages import launched_chromium

    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def errors() -> list[str]:
    """Errors the pages of a test report (console errors and warnings, uncaught exceptions;
    see pages.watch_console)."""
    return []


@pytest.fixture
def agent(browser: Any, demo: Any, errors: list[str]) -> Iterator[Any]:
    """The demo agent signed in to the console, Offline; out of any call and Offline again
    afterwards (pages.signed_in_agent)."""
    from pages import signed_in_agent

    with signed_in_agent(browser, demo, errors) as page:
        yield page
