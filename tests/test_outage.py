"""A Redis outage is an expected condition: sockets stay open, messages that need Redis are
answered `unavailable`, upgrades and API calls 503 with a JSON reason, one log line marks the
outage and one its end, and everything works again once Redis is back (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from humandesk.server.app import ACCOUNTS, DESK, create_app

from conftest import free_port, redis_server_binary
from helpers import Peer, SignedIn, desk_config, open_visitor, start_redis

Client = TestClient[Any, Any]
PASSWORD = "correct horse"
#: Every write is in the append-only file before it is answered: a restart keeps it.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


class OwnRedis:
    """A redis-server of the test's own, with its data in an append-only file, that the test
    stops and starts again on the same port."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hd-outage-")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(redis_server_binary(), self.port, self.dir, *DURABLE)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


async def test_a_redis_outage_is_answered_unavailable_and_logged_once(
    aiohttp_client: Any,
    own_redis: OwnRedis,
    desk_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(desk_config(own_redis.url, desk_name, tmp_path))
    client: Client = await aiohttp_client(app)
    await app[ACCOUNTS].add("ada", PASSWORD, ["support"])
    waiting = await open_visitor(client)
    await waiting.send({"type": "join", "queue": "support", "name": "Before"})
    before = await waiting.expect("queued")
    session = await SignedIn.open(client, "ada", PASSWORD)
    agent = await session.ws()
    newcomer = await open_visitor(client)

    caplog.clear()
    caplog.set_level(logging.INFO)
    await asyncio.to_thread(own_redis.stop)
    await asyncio.sleep(1.5)  # heartbeats, reaper and the pub/sub reader all notice

    await newcomer.send({"type": "join", "queue": "support", "name": "During"})
    refused = await newcomer.expect("error")
    assert refused["code"] == "unavailable" and refused["in_reply_to"] == "join"
    assert refused["retry_after_s"] >= 1
    await agent.send({"type": "status", "status": "available"})
    assert (await agent.expect("error"))["code"] == "unavailable"
    me = await session.get("/api/me")
    assert me.status == 503 and (await me.json())["error"] == "unavailable"
    assert int(me.headers["Retry-After"]) >= 1
    with pytest.raises(aiohttp.WSServerHandshakeError) as upgrade:
        await session.ws()
    assert upgrade.value.status == 503
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200  # alive: a restart would not help
    for peer in (waiting, newcomer, agent):
        assert not peer.ws.closed
    await asyncio.sleep(1.0)

    await asyncio.to_thread(own_redis.start)
    deadline = time.monotonic() + 20
    while (await client.get("/readyz")).status != 200:
        assert time.monotonic() < deadline, "the desk did not recover"
        await asyncio.sleep(0.2)
    for _attempt in range(5):  # as the panel does: `unavailable` means send it again
        await newcomer.send({"type": "join", "queue": "support", "name": "During"})
        answer = await newcomer.expect_any(("queued", "error"))
        if answer["type"] == "queued":
            break
        assert answer["code"] == "unavailable", answer
        await asyncio.sleep(answer["retry_after_s"])
    after = answer
    assert after["position"] == 2  # the visitor from before kept their place (AOF)
    assert before["position"] == 1

    deadline = time.monotonic() + 10
    while app[DESK].outage.down:  # the end is logged once Redis has answered for a while
        assert time.monotonic() < deadline
        await client.get("/readyz")
        await asyncio.sleep(0.3)
    records = [r for r in caplog.records if r.name.startswith("humandesk")]
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]
    outage = [r.getMessage() for r in records if r.name == "humandesk.redis"]
    assert len(outage) == 2, "\n".join(outage)
    assert "unreachable" in outage[0] and "reachable again" in outage[1]
    await session.close()
    assert isinstance(waiting, Peer)
