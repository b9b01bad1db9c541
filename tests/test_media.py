"""aiortc visitor and agent through a real running desk: media frames arrive on both sides.

The second test runs two server processes on one Redis, with the visitor on one and the
agent on the other, so every signaling message crosses processes through Redis.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from humandesk.server.app import ACCOUNTS
from humandesk.signaling.peers import DeskPeer

from conftest import DeskClient, free_port, python_env
from helpers import HUMANDESK, add_agent, stop_all, wait_ready

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def close_to(colour: tuple[int, int, int] | None, expected: tuple[int, int, int]) -> bool:
    return colour is not None and all(
        abs(a - b) < 40 for a, b in zip(colour, expected, strict=True)
    )


async def call_through(
    visitor_url: str, agent_url: str, password: str
) -> tuple[DeskPeer, DeskPeer]:
    visitor = DeskPeer(visitor_url, "visitor", colour=RED)
    agent = DeskPeer(agent_url, "agent", colour=BLUE)
    await agent.login("ada", password)
    await agent.connect()
    await agent.go_available()
    await visitor.connect()
    await visitor.join("Grace", "camera test")
    await agent.accept_next_offer()
    await asyncio.gather(visitor.wait_for_frames(10), agent.wait_for_frames(10))
    return visitor, agent


async def test_aiortc_peers_see_each_other(desk_client: DeskClient) -> None:
    client = await desk_client()
    await client.app[ACCOUNTS].add("ada", "correct horse", ["support"])
    url = f"http://{client.host}:{client.port}"
    visitor, agent = await call_through(url, url, "correct horse")
    try:
        # Each side decodes the other's picture, not its own.
        assert close_to(visitor.received_colour(), BLUE), visitor.received_colour()
        assert close_to(agent.received_colour(), RED), agent.received_colour()
        before = visitor.frames_received
        await visitor.wait_for_frames(before + 10)
        await visitor.hangup()
        ended = await agent.expect("call_ended")
        assert ended["by"] == "visitor"
    finally:
        await visitor.close()
        await agent.close()


@pytest.fixture
def two_servers(redis_url: str, desk_name: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `humandesk serve` processes for one desk on one Redis."""
    env = python_env() | {
        "HUMANDESK_REDIS_URL": redis_url,
        "HUMANDESK_DESK": desk_name,
        "HUMANDESK_SECRET_KEY": "a-shared-secret-key-for-both-instances",
        "HUMANDESK_DATA_DIR": str(tmp_path),
    }
    add = add_agent(env, "ada", "correct horse")
    assert add.returncode == 0, add.stderr
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [*HUMANDESK, "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        yield urls
    finally:
        stop_all(procs)


@pytest.mark.slow
async def test_call_across_two_server_processes(two_servers: list[str]) -> None:
    visitor_url, agent_url = two_servers
    assert visitor_url != agent_url
    visitor, agent = await call_through(visitor_url, agent_url, "correct horse")
    try:
        assert close_to(visitor.received_colour(), BLUE)
        assert close_to(agent.received_colour(), RED)
        await agent.hangup()
        assert (await visitor.expect("call_ended"))["by"] == "agent"
    finally:
        await visitor.close()
        await agent.close()
