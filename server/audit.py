"""The audit log: who signed in (or failed to), changed an account, exported or erased
personal data, and when.

A capped Redis stream (``DeskKeys.audit``) shared by every server process and the CLI, kept
for ``HUMANDESK_AUDIT_RETENTION_DAYS`` and at most ``HUMANDESK_AUDIT_MAX_ENTRIES`` entries.
Whatever needs auditing calls :meth:`AuditLog.record` with an action from
:class:`AuditAction` (or a new one), the actor (an agent's account name, ``cli:<os user>``,
``server``), what it was done to, the client address for HTTP requests, and details as
short strings. An entry's time is its stream id (Redis's clock when it was written).

The log names staff and addresses, never what an erasure removed: an erasure's entry says
how much went, not whose data it was.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from humandesk.queue.client import DeskQueue
from humandesk.queue.connection import RedisClient
from humandesk.queue.keys import DeskKeys
from humandesk.queue.privacy import PurgeResult, Retention, purge

DEFAULT_MAX_ENTRIES = 100_000
#: Longest value stored in an entry's field; longer ones are cut (an audit log is no place
#: for whatever a client sent).
MAX_VALUE = 200
#: Entry fields that are not details.
FIELDS = ("action", "actor", "target", "address")


class AuditAction(StrEnum):
    """What the audit log records. Add members here for new kinds of audited actions."""

    LOGIN = "login"  # actor: the agent; address
    LOGIN_FAILED = "login_failed"  # actor: the name tried; address
    LOGOUT = "logout"  # actor: the agent; address
    AGENT_ADDED = "agent_added"  # target: the account; details: role, queues
    AGENT_REMOVED = "agent_removed"  # target: the account
    AGENT_CHANGED = "agent_changed"  # target: the account; details: what changed
    AGENT_DISABLED = "agent_disabled"  # target: the account
    AGENT_ENABLED = "agent_enabled"  # target: the account
    PASSWORD_CHANGED = "password_changed"  # target: the account
    SESSIONS_REVOKED = "sessions_revoked"  # target: the account
    EXPORT = "export"  # target: what (calls.csv); details: since, until, rows
    ERASE = "erase"  # target: by what (visitor, contact, call); details: counts
    PURGE = "purge"  # details: counts deleted after the retention period


@dataclass(frozen=True)
class AuditEntry:
    id: str  # the stream id
    time_ms: int
    action: str
    actor: str
    target: str = ""
    address: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def time(self) -> str:
        moment = dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def public(self) -> dict[str, Any]:
        return {"time": self.time, **asdict(self)}


def _clean(value: object) -> str:
    """A value as stored: text that Redis accepts (lone surrogates escaped), cut short."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def cli_actor() -> str:
    """The actor of a CLI command: ``cli:`` and the operating-system user running it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


class AuditLog:
    """The audit log of one desk."""

    def __init__(
        self, redis: RedisClient, keys: DeskKeys, *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self.redis = redis
        self.key = keys.audit
        self.max_entries = max_entries

    async def record(
        self, action: str, actor: str, *, target: str = "", address: str = "", **details: str
    ) -> None:
        """Appends an entry. The stream is capped near ``max_entries`` (the oldest go)."""
        fields = {"action": str(action), "actor": actor, "target": target, "address": address}
        fields.update(details)
        await self.redis.xadd(
            self.key,
            {_clean(k): _clean(v) for k, v in fields.items()},
            maxlen=self.max_entries,
            approximate=True,
        )

    async def entries(self, *, since_ms: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries (written at ``since_ms`` or later), newest first."""
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrevrange(  # type: ignore[assignment]
            self.key, max="+", min="-" if since_ms is None else str(since_ms), count=limit
        )
        return [_entry(raw_id, raw) for raw_id, raw in rows]


def _entry(raw_id: bytes, raw: dict[bytes, bytes]) -> AuditEntry:
    entry_id = raw_id.decode()
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return AuditEntry(
        id=entry_id,
        time_ms=int(entry_id.split("-", 1)[0]),
        action=fields.get("action", ""),
        actor=fields.get("actor", ""),
        target=fields.get("target", ""),
        address=fields.get("address", ""),
        details={k: v for k, v in fields.items() if k not in FIELDS},
    )


async def purge_and_record(
    desk: DeskQueue, audit: AuditLog, retention: Retention, actor: str = "server"
) -> PurgeResult:
    """Runs the retention purge and records it in the audit log: always when an operator
    (``actor`` not "server") asked, otherwise only when something was deleted."""
    result = await purge(desk, retention)
    if result.total or actor != "server":
        counts = {part: str(count) for part, count in result.counts().items()}
        await audit.record(
            AuditAction.PURGE,
            actor,
            retention_days=str(retention.days),
            audit_retention_days=str(retention.audit_days),
            **counts,
        )
    return result
