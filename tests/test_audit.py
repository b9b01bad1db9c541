"""The audit log on a real redis-server: what the running desk records for sign-ins, failed
sign-ins, logouts and exports (who, when, from which address), and the log's cap."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from humandesk.queue.keys import DeskKeys
from humandesk.server.app import ACCOUNTS, AUDIT, QUEUE
from humandesk.server.audit import AuditAction, AuditLog

from conftest import DeskClient
from helpers import origin_of

Client = TestClient[Any, Any]


@pytest.fixture
async def client(desk_client: DeskClient) -> Client:
    # Behind a trusted proxy: the client address is the one X-Forwarded-For names.
    c = await desk_client(trusted_proxies=("127.0.0.1",))
    await c.app[ACCOUNTS].add("ada", "correct horse", ["support"], "Ada Lovelace")
    await c.app[ACCOUNTS].add("boss", "correct horse", ["support"], role="supervisor")
    return c


async def post_login(client: Client, username: str, password: str, address: str) -> int:
    resp = await client.post(
        "/api/login",
        json={"username": username, "password": password},
        headers={"Origin": origin_of(client), "X-Forwarded-For": address},
    )
    return resp.status


async def test_audit_log_records_sign_ins_logouts_and_exports(client: Client) -> None:
    audit = client.app[AUDIT]
    clock = client.app[QUEUE].clock_ms
    start = await clock()
    assert await post_login(client, "ada", "wrong password", "203.0.113.7") == 401
    assert await post_login(client, "Hunter2!Secret", "x", "203.0.113.8") == 401
    assert await post_login(client, "boss", "correct horse", "198.51.100.4") == 200
    resp = await client.get(
        "/api/calls.csv?since=2030-01-01T00:00:00&until=2030-01-02T00:00:00",
        headers={"X-Forwarded-For": "198.51.100.4"},
    )
    assert resp.status == 200
    out = await client.post(
        "/api/logout", headers={"Origin": origin_of(client), "X-Forwarded-For": "198.51.100.4"}
    )
    assert out.status == 204
    # A logout without a session has nobody to name: nothing is recorded.
    client.session.cookie_jar.clear()
    assert (await client.post("/api/logout", headers={"Origin": origin_of(client)})).status == 204
    end = await clock()

    entries = await audit.entries()
    assert [e.action for e in entries] == [
        "logout",
        "export",
        "login",
        "login_failed",
        "login_failed",
    ]
    logout, export, login, failed_other, failed = entries
    assert (failed.actor, failed.address) == ("ada", "203.0.113.7")
    assert (failed_other.actor, failed_other.address) == ("(not an account name)", "203.0.113.8")
    assert (login.actor, login.address) == ("boss", "198.51.100.4")
    assert (export.actor, export.target, export.address) == ("boss", "calls.csv", "198.51.100.4")
    assert export.details == {
        "since": "2030-01-01T00:00:00+00:00",
        "until": "2030-01-02T00:00:00+00:00",
        "rows": "0",
    }
    assert (logout.actor, logout.address) == ("boss", "198.51.100.4")
    assert all(start <= e.time_ms <= end for e in entries)
    assert [e.action for e in await audit.entries(limit=2)] == ["logout", "export"]
    assert await audit.entries(since_ms=end + 1) == []


async def test_audit_log_is_capped_and_stores_any_text(redis: Redis, desk_name: str) -> None:
    audit = AuditLog(redis, DeskKeys(desk_name), max_entries=100)
    for i in range(1000):
        await audit.record(AuditAction.LOGIN_FAILED, f"user{i}", address="127.0.0.1")
    assert 100 <= await redis.xlen(DeskKeys(desk_name).audit) < 1000
    await audit.record(AuditAction.LOGIN_FAILED, "bad\ud800name" + "x" * 500, address="::1")
    newest = (await audit.entries(limit=1))[0]
    assert newest.actor.startswith("bad\\ud800name") and len(newest.actor) <= 200
