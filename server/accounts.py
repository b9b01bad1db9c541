"""Agent accounts: who may log in, with which password, serving which queues."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from humandesk.queue.client import AgentInfo, DeskQueue
from humandesk.queue.keys import DeskKeys
from humandesk.server.auth import DUMMY_HASH, hash_password, verify_password

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")


class AccountError(ValueError):
    """An account operation was refused; the message says why."""


ROLES = ("agent", "supervisor")


@dataclass(frozen=True)
class Account:
    name: str
    display_name: str
    queues: list[str] = field(default_factory=list)
    password_hash: str = ""
    created: float = 0.0
    levels: dict[str, int] = field(default_factory=dict)  # queue -> level (tier); default 1
    role: str = "agent"  # supervisors also see the desk's statistics

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "queues": self.queues,
            "levels": {q: self.levels.get(q, 1) for q in self.queues},
            "role": self.role,
        }

    def info(self) -> AgentInfo:
        return AgentInfo(
            name=self.name,
            display_name=self.display_name,
            queues=self.queues,
            levels={q: self.levels.get(q, 1) for q in self.queues},
        )


def parse_queue_levels(specs: list[str]) -> tuple[list[str], dict[str, int]]:
    """``["support", "sales:2"]`` -> the queues and their levels (1 when not given)."""
    queues, levels = [], {}
    for spec in specs:
        name, _, level = spec.partition(":")
        if level:
            if not level.isdigit() or not 1 <= int(level) <= 9:
                raise AccountError(f"the level in {spec!r} must be 1-9")
            levels[name] = int(level)
        queues.append(name)
    return queues, levels


class Accounts:
    """The agent accounts of one desk, kept in Redis beside its queues."""

    def __init__(self, redis: Redis, queue: DeskQueue) -> None:
        self.redis = redis
        self.queue = queue
        self.key = queue.keys.accounts

    async def add(
        self,
        name: str,
        password: str,
        queues: list[str],
        display_name: str = "",
        *,
        levels: dict[str, int] | None = None,
        role: str = "agent",
    ) -> Account:
        if not NAME_RE.match(name):
            raise AccountError("agent names are 1-32 lowercase letters, digits, '.', '_' or '-'")
        if len(password) < 8:
            raise AccountError("passwords need at least 8 characters")
        if not queues:
            raise AccountError("an agent needs at least one queue")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        for q in queues:
            if not NAME_RE.match(q):
                raise AccountError(f"invalid queue name {q!r}")
        if await self.redis.hexists(self.key, name):
            raise AccountError(f"agent {name!r} already exists")
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(None, hash_password, password)
        account = Account(
            name=name,
            display_name=display_name or name.replace(".", " ").replace("_", " ").title(),
            queues=sorted(set(queues)),
            password_hash=hashed,
            created=time.time(),
            levels={q: lvl for q, lvl in (levels or {}).items() if q in queues and lvl != 1},
            role=role,
        )
        for q in account.queues:
            await self.queue.add_queue(q)
        await self.redis.hset(self.key, name, json.dumps(asdict(account)))
        return account

    async def set_password_or_add(
        self, name: str, password: str, queues: list[str], display_name: str = ""
    ) -> Account:
        """Sets a new password, creating the account if there is none (used by the demo)."""
        account = await self.get(name)
        if account is None:
            return await self.add(name, password, queues, display_name)
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(None, hash_password, password)
        account = replace(account, password_hash=hashed)
        await self.redis.hset(self.key, name, json.dumps(asdict(account)))
        return account

    async def remove(self, name: str) -> None:
        account = await self.get(name)
        if account is None:
            raise AccountError(f"no agent named {name!r}")
        await self.queue.set_agent_status(account.info(), "offline", "account removed")
        await self.redis.hdel(self.key, name)

    async def get(self, name: str) -> Account | None:
        raw = await self.redis.hget(self.key, name)
        if raw is None:
            return None
        return Account(**json.loads(raw))

    async def all(self) -> list[Account]:
        rows = await self.redis.hgetall(self.key)
        return sorted((Account(**json.loads(v)) for v in rows.values()), key=lambda a: a.name)

    async def authenticate(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right; the same work is done for unknown names."""
        account = await self.get(name) if NAME_RE.match(name) else None
        stored = account.password_hash if account else DUMMY_HASH
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, verify_password, password, stored)
        return account if ok and account else None


class LoginThrottle:
    """Refuses logins after too many failures for one account from one address, or from
    one address at all.

    Counted per account *and* address, so guessing one agent's password from somewhere
    cannot lock that agent out everywhere. Counts live in Redis, so every instance of a desk
    shares them, and expire with the window. A refused login is refused before its password
    is hashed, so guessing costs the desk no scrypt time either. A successful login clears
    its own count.
    """

    def __init__(
        self,
        redis: Redis,
        keys: DeskKeys,
        *,
        per_account: int = 10,
        per_address: int = 100,
        window_s: int = 900,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = {"account": per_account, "address": per_address}
        self.window_s = window_s

    def _keys(self, account: str, address: str) -> dict[str, str]:
        return {
            "account": self.keys.login_failures("account", f"{account}@{address}"),
            "address": self.keys.login_failures("address", address),
        }

    async def retry_after(self, account: str, address: str) -> int:
        """Seconds until a login may be tried again; 0 if it may be tried now."""
        keys = self._keys(account, address)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys.values():
            pipe.get(key)
            pipe.ttl(key)
        replies = await pipe.execute()
        wait = 0
        for i, kind in enumerate(keys):
            count, ttl = replies[2 * i], replies[2 * i + 1]
            if count is not None and int(count) >= self.limits[kind]:
                wait = max(wait, int(ttl) if ttl and int(ttl) > 0 else self.window_s)
        return wait

    async def failed(self, account: str, address: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(account, address).values():
            pipe.set(key, 0, ex=self.window_s, nx=True)  # the window starts at the first failure
            pipe.incr(key)
        await pipe.execute()

    async def succeeded(self, account: str, address: str) -> None:
        await self.redis.delete(self._keys(account, address)["account"])
