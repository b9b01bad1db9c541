"""Agent accounts: who may log in, with which password, serving which queues."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from humandesk.queue.client import AgentInfo, DeskQueue
from humandesk.queue.connection import RedisClient, publish
from humandesk.queue.keys import NAME_RE, DeskKeys
from humandesk.server.auth import DUMMY_HASH, hash_password, verify_password


class AccountError(ValueError):
    """An account operation was refused; the message says why."""


class AccountValueError(AccountError):
    """A value an account cannot have (a name, a password, a role, a queue): the command
    ends with exit code 2 for it, where a refusal by the desk's state ends with 1."""


ROLES = ("agent", "supervisor")


class Revoked(StrEnum):
    """Why an agent's sessions were revoked: the close reason their consoles get."""

    SIGNED_OUT = "signed_out"
    REMOVED = "account_removed"
    DISABLED = "account_disabled"
    PASSWORD = "password_changed"
    CHANGED = "account_changed"


#: What the agent's queue state records as the reason they went Offline.
_OFFLINE_REASON = {
    Revoked.SIGNED_OUT: "Signed out",
    Revoked.REMOVED: "Account removed",
    Revoked.DISABLED: "Account disabled",
    Revoked.PASSWORD: "Password changed",
    Revoked.CHANGED: "Account changed",
}


@dataclass(frozen=True)
class Account:
    name: str
    display_name: str
    queues: list[str] = field(default_factory=list)
    password_hash: str = ""
    created: float = 0.0
    levels: dict[str, int] = field(default_factory=dict)  # queue -> level (tier); default 1
    role: str = "agent"  # supervisors also see the desk's statistics
    epoch: int = 0  # session epoch: tokens issued under an older one are revoked
    disabled: bool = False  # may not sign in; existing sessions were revoked

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "queues": self.queues,
            "levels": {q: self.levels.get(q, 1) for q in self.queues},
            "role": self.role,
        }

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"

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
                raise AccountValueError(f"the level in {spec!r} must be 1-9")
            levels[name] = int(level)
        queues.append(name)
    return queues, levels


class Accounts:
    """The agent accounts of one desk, kept in Redis beside its queues."""

    def __init__(self, redis: RedisClient, queue: DeskQueue) -> None:
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
            raise AccountValueError(
                "agent names are 1-32 lowercase letters, digits, '.', '_' or '-'"
            )
        _check_password(password)
        _check_queues(queues, role)
        if await self.redis.hexists(self.key, name):
            raise AccountError(f"agent {name!r} already exists")
        account = Account(
            name=name,
            display_name=display_name or name.replace(".", " ").replace("_", " ").title(),
            queues=sorted(set(queues)),
            password_hash=await _hash(password),
            created=time.time(),
            levels={q: lvl for q, lvl in (levels or {}).items() if q in queues and lvl != 1},
            role=role,
        )
        for q in account.queues:
            await self.queue.add_queue(q)
        await self._save(account)
        return account

    async def set_password_or_add(
        self,
        name: str,
        password: str,
        queues: list[str],
        display_name: str = "",
        *,
        role: str = "agent",
    ) -> Account:
        """Sets a new password (and role), creating the account if there is none (used by
        the demo)."""
        account = await self.get(name)
        if account is None:
            return await self.add(name, password, queues, display_name, role=role)
        _check_password(password)
        account = replace(account, password_hash=await _hash(password), role=role)
        return await self.revoke(account, Revoked.PASSWORD)

    async def set_password(self, name: str, password: str) -> Account:
        """A new password; every session of the agent is revoked."""
        _check_password(password)
        account = replace(await self._existing(name), password_hash=await _hash(password))
        return await self.revoke(account, Revoked.PASSWORD)

    async def update(
        self,
        name: str,
        *,
        queues: list[str] | None = None,
        levels: dict[str, int] | None = None,
        display_name: str | None = None,
        role: str | None = None,
    ) -> Account:
        """Changes an account's queues (with ``levels``), display name or role; every session
        of the agent is revoked, so their console reconnects with the new account."""
        account = await self._existing(name)
        if queues is not None:
            _check_queues(queues, role or account.role)
            account = replace(
                account,
                queues=sorted(set(queues)),
                levels={q: lvl for q, lvl in (levels or {}).items() if q in queues and lvl != 1},
            )
            for q in account.queues:
                await self.queue.add_queue(q)
        if display_name is not None:
            if not display_name.strip() or len(display_name) > 80:
                raise AccountValueError("a display name is 1-80 characters")
            account = replace(account, display_name=display_name.strip())
        if role is not None:
            if role not in ROLES:
                raise AccountValueError(f"role must be one of {', '.join(ROLES)}")
            account = replace(account, role=role)
        return await self.revoke(account, Revoked.CHANGED)

    async def set_disabled(self, name: str, disabled: bool) -> Account:
        """Disables an account (its sessions are revoked; it cannot sign in) or enables it."""
        account = replace(await self._existing(name), disabled=disabled)
        if disabled:
            return await self.revoke(account, Revoked.DISABLED)
        await self._save(account)
        return account

    async def remove(self, name: str) -> None:
        account = await self._existing(name)
        await self.redis.hdel(self.key, name)
        await self._end_sessions(replace(account, epoch=account.epoch + 1), Revoked.REMOVED)

    async def revoke(self, account: Account, reason: Revoked) -> Account:
        """Saves ``account`` under a new session epoch and ends the agent's sessions
        everywhere: every server process closes their consoles (4403), a pending offer goes
        back to the line and a call in progress ends for the visitor."""
        account = replace(account, epoch=account.epoch + 1)
        await self._save(account)
        await self._end_sessions(account, reason)
        return account

    async def _end_sessions(self, account: Account, reason: Revoked) -> None:
        """Closes the consoles of sessions older than ``account.epoch`` and puts the agent
        Offline. Sockets first, so a console cannot choose Available after the Offline."""
        message = {"type": "_revoked", "reason": str(reason), "epoch": account.epoch}
        await publish(self.redis, self.queue.keys.agent_channel(account.name), json.dumps(message))
        if await self.queue.agent(account.name) is not None:
            await self.queue.set_agent_status(
                account.info(), "offline", _OFFLINE_REASON[reason], reason_code=str(reason)
            )

    async def _existing(self, name: str) -> Account:
        account = await self.get(name)
        if account is None:
            raise AccountError(f"no agent named {name!r}")
        return account

    async def _save(self, account: Account) -> None:
        await self.redis.hset(self.key, account.name, json.dumps(asdict(account)))

    async def get(self, name: str) -> Account | None:
        raw = await self.redis.hget(self.key, name)
        if raw is None:
            return None
        return Account(**json.loads(raw))

    async def all(self) -> list[Account]:
        rows = await self.redis.hgetall(self.key)
        return sorted((Account(**json.loads(v)) for v in rows.values()), key=lambda a: a.name)

    async def authenticate(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right and the account enabled; the same work is
        done for unknown names."""
        account = await self.get(name) if NAME_RE.match(name) else None
        stored = account.password_hash if account else DUMMY_HASH
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, verify_password, password, stored)
        return account if ok and account and not account.disabled else None


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AccountValueError("passwords need at least 8 characters")
    if len(password) > 1024:
        raise AccountValueError("passwords have at most 1,024 characters")


def _check_queues(queues: list[str], role: str) -> None:
    if not queues:
        raise AccountValueError("an agent needs at least one queue")
    if role not in ROLES:
        raise AccountValueError(f"role must be one of {', '.join(ROLES)}")
    for q in queues:
        if not NAME_RE.match(q):
            raise AccountValueError(f"invalid queue name {q!r}")


async def _hash(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, hash_password, password)


class LoginThrottle:
    """Refuses sign-ins after too many failures for one account from one address, or from
    one address at all.

    Counted per account *and* address, so guessing one agent's password from somewhere
    cannot lock that agent out everywhere. Counts live in Redis, so every instance of a desk
    shares them, and expire with the window. Every attempt is counted *before* its password
    is hashed, in one transaction, so concurrent guesses cannot all pass a check made before
    any of them failed (measured: 60 at once for one account used to check all 60
    passwords), and a refused attempt costs the desk no scrypt time. A successful sign-in
    takes its attempt back and clears its account's count.
    """

    def __init__(
        self,
        redis: RedisClient,
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

    async def attempt(self, account: str, address: str) -> int:
        """Counts a sign-in attempt; returns 0 if it may go on, else the seconds to wait."""
        keys = self._keys(account, address)
        pipe = self.redis.pipeline(transaction=True)
        for key in keys.values():
            pipe.set(key, 0, ex=self.window_s, nx=True)  # the window starts at the first try
            pipe.incr(key)
            pipe.ttl(key)
        replies = await pipe.execute()
        wait = 0
        for i, kind in enumerate(keys):
            count, ttl = int(replies[3 * i + 1]), int(replies[3 * i + 2])
            if 0 < self.limits[kind] < count:  # 0: no limit
                wait = max(wait, ttl if ttl > 0 else self.window_s)
        return wait

    async def succeeded(self, account: str, address: str) -> None:
        keys = self._keys(account, address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(keys["account"])
        pipe.set(keys["address"], 0, ex=self.window_s, nx=True)  # never a key without expiry
        pipe.decr(keys["address"])
        await pipe.execute()
