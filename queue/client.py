"""A thin typed asyncio client for the queue scripts.

The rules of the queue live in the Lua scripts beside this module (``scripts/``); this
client only gathers their keys and arguments, runs them with EVALSHA and turns their
replies and errors into Python values. It never reads-then-writes from Python: every
state change is one atomic script.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError

from humandesk.queue.connection import (
    CLUSTER_UNAVAILABLE,
    RedisClient,
    is_cluster,
    publish,
    publish_command,
)
from humandesk.queue.hours import HoursError, Schedule
from humandesk.queue.keys import NAME_RE, DeskKeys, lua_prelude
from humandesk.queue.waits import QueueSnapshot, estimate_wait_seconds

SCRIPTS_DIR = Path(__file__).parent / "scripts"
OPS = (
    "join",
    "leave",
    "agent_status",
    "accept",
    "decline",
    "end_call",
    "heartbeat",
    "reap",
    "wrapup",
    "notes",
    "rate",
    "transfer",
    "callback",
    "callback_close",
    "away",
    "back",
    "render",
    "chat",
)
#: How long scripts run without WAIT after a replica failed to confirm one in time.
UNREPLICATED_PAUSE_S = 1.0
STRATEGIES = ("longest-idle", "fewest-calls", "round-robin", "random")

AgentStatus = Literal["available", "break", "offline"]
Party = Literal["visitor", "agent", "desk"]


class QueueError(Exception):
    """A script refused an operation. ``code`` is a stable identifier such as ``stale_offer``."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class QueueConfig:
    """The desk's queue settings: the one set of defaults of every queue rule (a queue's
    own rules, stored with ``set_queue_rules``, override them; the scripts read them from
    here too), and the leases, which are the desk's alone."""

    # Queue rules (RULES): each queue may set its own.
    offer_timeout_ms: int = 20_000
    reject_delay_ms: int = 5_000
    no_answer_delay_ms: int = 5_000
    max_missed_offers: int = 3
    wrapup_ms: int = 30_000
    escalation_ms: int = 60_000
    max_wait_ms: int = 900_000  # 15 min, then a call-back is offered (0: no limit)
    strategy: str = "longest-idle"  # see STRATEGIES
    overflow: str = ""  # the queue a visitor moves to after max_wait ("": a callback form)
    sla: int = 20  # service-level threshold T, seconds
    priority: int = 0  # visitors' default priority, 0-9
    hours: str = ""  # business hours (queue/hours.py); "": always open
    timezone: str = "UTC"
    # The desk's own.
    lease_ms: int = 20_000  # an agent's socket may be silent this long
    visitor_lease_ms: int = 60_000  # the resume window of a visitor whose socket went away
    call_lease_ms: int = 20_000  # the grace period of a visitor in a call (then: peer_left)
    default_handle_s: float = 180.0

    def __post_init__(self) -> None:
        check_rules(self.rules())
        for name, (low, high) in LEASE_RANGES.items():
            check_range(name, getattr(self, name), low, high)

    def rules(self) -> dict[str, Any]:
        """The default of every queue rule, by the name a queue's stored rules use."""
        return {name: getattr(self, name) for name in RULES}


#: The settings of QueueConfig that each queue may set for itself.
RULES = (
    "offer_timeout_ms",
    "reject_delay_ms",
    "no_answer_delay_ms",
    "max_missed_offers",
    "wrapup_ms",
    "escalation_ms",
    "max_wait_ms",
    "strategy",
    "overflow",
    "sla",
    "priority",
    "hours",
    "timezone",
)

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS

#: The range (inclusive) of every number among the RULES, in QueueConfig's units: an offer
#: needs at least a second to be answered; delays, wrap-ups and waits of more than a day (an
#: hour for the delays and the wrap-up) are typing mistakes, not policies.
RULE_RANGES: dict[str, tuple[int, int]] = {
    "offer_timeout_ms": (1_000, _HOUR_MS),
    "reject_delay_ms": (0, _HOUR_MS),
    "no_answer_delay_ms": (0, _HOUR_MS),
    "max_missed_offers": (1, 100),
    "wrapup_ms": (0, _HOUR_MS),
    "escalation_ms": (0, _DAY_MS),
    "max_wait_ms": (0, _DAY_MS),  # 0: no limit
    "sla": (1, 3600),  # seconds
    "priority": (0, 9),
}
#: The desk's own leases: an agent's socket, a visitor's resume window.
LEASE_RANGES: dict[str, tuple[int, int]] = {
    "lease_ms": (1_000, _HOUR_MS),
    "visitor_lease_ms": (1_000, _DAY_MS),
    # A call's grace period: near the lease renewal (every 5 s) a live call could end by itself.
    "call_lease_ms": (10_000, 600_000),
}


class RuleError(ValueError):
    """A queue rule that cannot be used. ``rule`` names it (as in RULES); the message says
    what it must be, in the rule's own terms (seconds for the ``*_ms`` rules)."""

    def __init__(self, rule: str, must: str) -> None:
        super().__init__(f"{rule} {must}")
        self.rule = rule
        self.must = must


def check_range(name: str, value: Any, low: int, high: int) -> None:
    """Raises RuleError unless ``value`` is a finite number within ``low``..``high``."""
    seconds = name.endswith("_ms")
    whole = not seconds  # counts and levels are whole numbers; times may have fractions
    if seconds:
        must = f"must be a number of seconds from {low / 1000:g} to {high / 1000:g}"
    else:
        must = f"must be a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(name, must)
    if not math.isfinite(value) or (whole and value != int(value)) or not low <= value <= high:
        raise RuleError(name, must)


def check_rules(
    rules: Mapping[str, Any], *, queue: str = "", queues: Collection[str] | None = None
) -> None:
    """Raises RuleError for the first rule in ``rules`` (keys as in RULES, times in ms)
    that the scripts could not use: an unknown name, a number out of RULE_RANGES, an
    unknown strategy, business hours that cannot be read, or an ``overflow`` that is not
    another queue of the desk (``queues``, when given: the desk's queues)."""
    for name, value in rules.items():
        if name in RULE_RANGES:
            check_range(name, value, *RULE_RANGES[name])
        elif name == "strategy":
            if value not in STRATEGIES:
                raise RuleError(name, f"must be one of {', '.join(STRATEGIES)}")
        elif name == "overflow":
            if not isinstance(value, str) or (value and not NAME_RE.match(value)):
                raise RuleError(name, "must name another queue")
            if value and value == queue:
                raise RuleError(name, "must name another queue, not the queue itself")
            if value and queues is not None and value not in queues:
                known = ", ".join(sorted(q for q in queues if q != queue)) or "none"
                raise RuleError(name, f"names an unknown queue {value!r} (queues: {known})")
        elif name in ("hours", "timezone"):
            if not isinstance(value, str):
                raise RuleError(name, "must be text")
        else:
            raise RuleError(name, f"is not a queue rule (rules: {', '.join(RULES)})")
    if "hours" in rules or "timezone" in rules:
        try:
            Schedule.parse(str(rules.get("hours", "")), str(rules.get("timezone", "UTC")))
        except HoursError as exc:
            rule = "timezone" if "time zone" in str(exc) else "hours"
            raise RuleError(rule, f"cannot be read: {exc}") from None


@dataclass(frozen=True)
class NewVisitor:
    """What a visitor tells the desk when joining."""

    id: str
    queue: str
    name: str
    topic: str = ""
    page: str = ""
    audio_only: bool = False
    #: The pre-call test's result as the visitor's join carried it (shown on the offer).
    precall: dict[str, Any] | None = None
    priority: int = 0  # 0-9; higher goes first
    conn: str = ""  # the socket holding the entry (see away/come_back)


@dataclass(frozen=True)
class AgentInfo:
    """An agent's identity as the queue needs it."""

    name: str
    display_name: str
    queues: list[str] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)  # queue -> level (tier), default 1


@dataclass(frozen=True)
class CallbackRequest:
    id: str
    queue: str
    name: str
    contact: str
    note: str = ""


@dataclass(frozen=True)
class JoinResult:
    position: int
    waiting: int
    offered: bool = False  # the join itself offered the visitor to an agent


def load_script_source(op: str, publish: str = "PUBLISH") -> str:
    """The full source EVALSHA runs for ``op``: the key table generated from queue/keys.py
    (with the command the scripts publish with), the shared prelude (lib.lua) and the op
    script."""
    lib = (SCRIPTS_DIR / "lib.lua").read_text()
    body = (SCRIPTS_DIR / f"{op}.lua").read_text()
    return lua_prelude(publish) + lib + "\n" + body


class DeskQueue:
    """The queue of one desk: named queues of visitors and the agents who serve them."""

    def __init__(
        self,
        redis: RedisClient,
        desk: str = "main",
        config: QueueConfig | None = None,
        *,
        replica_wait_ms: int = 0,
    ) -> None:
        """``replica_wait_ms`` (on a cluster client only; 0: off): after each script, wait up
        to this long for a replica to confirm it has the script's writes (``WAIT 1``), so a
        failover to that replica loses nothing the script's caller was told (docs/cluster.md).
        """
        self.redis = redis
        self.keys = DeskKeys(desk)
        self.config = config or QueueConfig()
        command = publish_command(redis)
        self._scripts: dict[str, AsyncScript] = {
            op: redis.register_script(load_script_source(op, command)) for op in OPS
        }
        self.replica_wait_ms = replica_wait_ms if is_cluster(redis) else 0
        #: Scripts whose writes no replica confirmed within ``replica_wait_ms``.
        self.unreplicated = 0
        self._unreplicated_until = 0.0  # monotonic time until which scripts skip WAIT
        self._queues: list[str] | None = None
        self._rules_seen: dict[str, str] = {}  # queue -> its stored rules, as last read

    # Queue names -------------------------------------------------------------------------

    async def queue_names(self, *, refresh: bool = False) -> list[str]:
        """The desk's queues, sorted; cached until ``refresh``."""
        if self._queues is None or refresh:
            names = await self.redis.smembers(self.keys.queues)
            self._queues = sorted(_text(n) for n in names)
        return self._queues

    async def add_queue(self, name: str) -> None:
        if await self.redis.sadd(self.keys.queues, name):
            await self._queues_changed(name)
        self._queues = None

    async def remove_queue(self, name: str) -> None:
        """Removes a queue and its own rules."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self.keys.queues, name)
        pipe.hdel(self.keys.queue_config, name)
        removed, _ = await pipe.execute()
        if removed:
            await self._queues_changed(name)
        self._queues = None
        self._rules_seen.pop(name, None)

    async def _queues_changed(self, name: str) -> None:
        message = {"type": "queues_changed", "queue": name}
        await publish(self.redis, self.keys.queues_channel, json.dumps(message))

    # Operations ----------------------------------------------------------------------------

    async def _run(self, op: str, args: dict[str, Any], now_ms: int | None) -> Any:
        for attempt in (1, 2):
            queues = await self.queue_names(refresh=attempt == 2)
            payload: dict[str, Any] = {
                "queues": queues,
                "cfg": asdict(self.config),
                **args,
            }
            if now_ms is not None:
                payload["now"] = now_ms
            keys = self.keys.script_keys(queues)
            try:
                if self.replica_wait_ms:
                    raw = await self._replicated(self._scripts[op], keys, json.dumps(payload))
                else:
                    raw = await self._scripts[op](keys=keys, args=[json.dumps(payload)])
            except CLUSTER_UNAVAILABLE:
                raise
            except ResponseError as exc:
                code, _, detail = str(exc).partition(" ")
                if code in ("stale_queues", "unknown_queue") and attempt == 1:
                    continue
                raise QueueError(code, detail) from None
            return json.loads(_text(raw))
        raise AssertionError("unreachable")

    async def _replicated(self, script: AsyncScript, keys: list[str], arg: str) -> Any:
        """Runs ``script`` and ``WAIT 1 <replica_wait_ms>`` in one round trip on the
        connection to the desk's primary (WAIT counts the writes of its own connection).

        A replica that does not confirm in time (it is down or far behind) does not fail the
        operation: the primary has made the change and told its subscribers; the count of such
        scripts is kept in ``unreplicated`` (and shown in /metrics). For UNREPLICATED_PAUSE_S
        after that the scripts run without WAIT, so a primary left without a replica (a
        failover promoted it, and the failed node is not back yet) costs one wait a second,
        not one per change."""
        assert is_cluster(self.redis)
        if time.monotonic() < self._unreplicated_until:
            self.unreplicated += 1
            return await script(keys=keys, args=[arg])
        for attempt in (1, 2):
            node = self.redis.get_node_from_key(keys[0])
            pipe = self.redis.pipeline(transaction=False)
            # EVALSHA through execute_command: redis-py refuses the pipelined evalsha method
            # on a cluster, though the command is routed by its first key like any other.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, arg)
            pipe.execute_command("WAIT", 1, self.replica_wait_ms, target_nodes=node)
            try:
                raw, acked = await pipe.execute(raise_on_error=False)
            except RedisClusterException as exc:
                # redis-py retried the pipeline after a lost connection and could not route
                # it as built (the slot moved): nothing ran this time; ask again later.
                raise RedisConnectionError(f"the desk's slot is moving: {exc}") from exc
            if isinstance(raw, NoScriptError) and attempt == 1:
                # A promoted replica, or a node that restarted, has an empty script cache.
                await self.redis.script_load(script.script)
                continue
            if isinstance(raw, Exception):
                raise raw
            if not isinstance(acked, int) or acked < 1:
                self.unreplicated += 1
                self._unreplicated_until = time.monotonic() + UNREPLICATED_PAUSE_S
            return raw
        raise AssertionError("unreachable")

    async def join(
        self, visitor: NewVisitor, *, now_ms: int | None = None, rules_seen: str | None = None
    ) -> JoinResult:
        """Adds a visitor at the back of their queue's line; matches at once if possible.

        ``rules_seen``: the queue's rules the visitor was admitted on (``Admission``); if
        they have changed since, nothing happens and QueueError("stale_rules") is raised.
        """
        args: dict[str, Any] = {
            "visitor": asdict(visitor),
            "lease_ms": self.config.visitor_lease_ms,
        }
        if rules_seen is not None:
            args["rules_seen"] = rules_seen
        try:
            reply = await self._run("join", args, now_ms)
        except QueueError as exc:
            if exc.code == "stale_rules":
                self._rules_seen.pop(visitor.queue, None)
            raise
        return JoinResult(
            position=int(reply["position"]),
            waiting=int(reply["waiting"]),
            offered=bool(reply["offered"]),
        )

    async def away(self, visitor_id: str, conn: str, *, now_ms: int | None = None) -> bool:
        """The visitor's socket ``conn`` went away: keep the place, make no offers to them."""
        return visitor_id in await self.away_many([(visitor_id, conn)], now_ms=now_ms)

    async def away_many(
        self, parties: list[tuple[str, str]], *, now_ms: int | None = None
    ) -> list[str]:
        """:meth:`away` for many ``(visitor_id, conn)`` in one script; returns those marked."""
        payload = [{"visitor_id": vid, "conn": conn} for vid, conn in parties]
        reply = await self._run("away", {"parties": payload}, now_ms)
        return [str(vid) for vid in reply["away"]]

    async def come_back(
        self, visitor_id: str, conn: str, *, now_ms: int | None = None
    ) -> dict[str, Any]:
        """Socket ``conn`` takes over the entry; an away visitor returns to their place.

        Raises ``QueueError("unknown_visitor")`` if the entry or its lease is gone.
        """
        reply = await self._run(
            "back",
            {"visitor_id": visitor_id, "conn": conn, "lease_ms": self.config.visitor_lease_ms},
            now_ms,
        )
        return dict(reply)

    async def leave(
        self, visitor_id: str, reason: str = "left", *, now_ms: int | None = None
    ) -> None:
        """Removes a visitor for good, withdrawing an offer or ending a call they are in."""
        await self._run("leave", {"visitor_id": visitor_id, "reason": reason}, now_ms)

    async def set_agent_status(
        self,
        agent: AgentInfo,
        status: AgentStatus,
        reason: str = "",
        *,
        reason_code: str | None = None,
        now_ms: int | None = None,
    ) -> str:
        """Sets an agent's chosen state; returns the state the agent is in afterwards.

        ``reason`` (English, for logs) and ``reason_code`` (what the pages translate): why
        the desk, not the agent, changed it."""
        args: dict[str, Any] = {
            "agent": asdict(agent),
            "status": status,
            "reason": reason,
            "lease_ms": self.config.lease_ms,
        }
        if reason_code:
            args["reason_code"] = reason_code
        reply = await self._run("agent_status", args, now_ms)
        return str(reply["status"])

    async def accept(self, agent: str, offer_id: str, *, now_ms: int | None = None) -> str:
        """Accepts an offer (checked against its fence token); returns the call id."""
        reply = await self._run("accept", {"agent": agent, "offer_id": offer_id}, now_ms)
        return str(reply["call_id"])

    async def decline(self, agent: str, offer_id: str, *, now_ms: int | None = None) -> None:
        await self._run("decline", {"agent": agent, "offer_id": offer_id}, now_ms)

    async def end_call(
        self,
        call_id: str,
        by: Party,
        party: str = "",
        reason: str = "hangup",
        *,
        now_ms: int | None = None,
    ) -> None:
        await self._run(
            "end_call", {"call_id": call_id, "by": by, "party": party, "reason": reason}, now_ms
        )

    async def heartbeat(
        self,
        visitors: list[str],
        agents: list[str],
        *,
        callers: list[str] | None = None,
        silence_ms: list[int] | None = None,
        now_ms: int | None = None,
    ) -> tuple[list[str], list[str]]:
        """Renews leases; returns the (visitors, agents) that no longer hold one.

        ``visitors`` in line keep their place for the resume window; ``callers`` (visitors in
        a call) only for the call's grace period, counted from when the desk last heard from
        each (``silence_ms`` ago, 0 by default), after which the call ends (``peer_left``)."""
        callers = callers or []
        reply = await self._run(
            "heartbeat",
            {
                "visitors": visitors,
                "callers": callers,
                "silence_ms": silence_ms or [0] * len(callers),
                "agents": agents,
                "lease_ms": self.config.lease_ms,
                "visitor_lease_ms": self.config.visitor_lease_ms,
                "call_lease_ms": self.config.call_lease_ms,
            },
            now_ms,
        )
        return _list(reply["visitors"]), _list(reply["agents"])

    async def reap(self, *, now_ms: int | None = None) -> dict[str, int]:
        """Expires offers and leases, releases delayed agents, then matches."""
        reply = await self._run("reap", {"batch": 500}, now_ms)
        return {str(k): int(v) for k, v in reply.items()}

    async def wrapup(
        self,
        agent: str,
        action: Literal["extend", "done"],
        extend_ms: int = 30_000,
        *,
        now_ms: int | None = None,
    ) -> str:
        """Extends or finishes the agent's wrap-up; returns the agent's state afterwards."""
        reply = await self._run(
            "wrapup", {"agent": agent, "action": action, "extend_ms": extend_ms}, now_ms
        )
        return str(reply["status"])

    async def save_notes(
        self, agent: str, call_id: str, notes: str, disposition: str, *, now_ms: int | None = None
    ) -> None:
        await self._run(
            "notes",
            {"agent": agent, "call_id": call_id, "notes": notes, "disposition": disposition},
            now_ms,
        )

    async def rate(
        self,
        visitor_id: str,
        call_id: str,
        score: int,
        comment: str = "",
        *,
        now_ms: int | None = None,
    ) -> None:
        await self._run(
            "rate",
            {"visitor_id": visitor_id, "call_id": call_id, "score": score, "comment": comment},
            now_ms,
        )

    async def chat(
        self,
        call_id: str,
        sender: Literal["visitor", "agent"],
        party: str,
        text: str,
        *,
        max_messages: int,
        now_ms: int | None = None,
    ) -> dict[str, Any]:
        """Stores a line of a call's chat on its call record, in order, and publishes it to
        the other party (chat.lua); returns it as sent (``seq``, ``from``, ``text``, ``at``).
        Refused with ``chat_full`` once the call holds ``max_messages`` lines."""
        args = {"call_id": call_id, "from": sender, "party": party, "text": text}
        return dict(await self._run("chat", {**args, "max": max_messages}, now_ms))

    async def transcript(self, call_id: str) -> list[dict[str, Any]]:
        """The chat of a call so far (from its call record), oldest first."""
        record = await self.call_record(call_id)
        lines = (record or {}).get("chat")
        return list(lines) if isinstance(lines, list) else []

    async def render(self, *, agent: str | None = None, call: str | None = None) -> Rendered:
        """What a reconnecting console or panel is told again, rendered by the scripts'
        own functions: the agent's ``status`` (and ``offer``, if offered), the call's two
        ``call_started`` (the offerer's, then the answerer's)."""
        args: dict[str, Any] = {}
        if agent is not None:
            args["agent"] = agent
        if call is not None:
            args["call"] = call
        reply = await self._run("render", args, None)
        started = reply.get("call_started")
        return Rendered(
            status=reply.get("status"),
            state=str(reply.get("state", "offline")),
            call=reply.get("call"),
            last_call=reply.get("last_call"),
            offer=reply.get("offer"),
            call_started=tuple(started) if isinstance(started, list) else None,
            visitor=reply.get("visitor"),
            agent=reply.get("agent"),
        )

    async def transfer(
        self, agent: str, call_id: str, queue: str, *, now_ms: int | None = None
    ) -> None:
        """Blind transfer: the visitor goes to the head of ``queue``, the agent to wrap-up."""
        await self._run("transfer", {"agent": agent, "call_id": call_id, "queue": queue}, now_ms)

    async def request_callback(
        self,
        callback: CallbackRequest,
        visitor_id: str = "",
        *,
        max_open: int = 0,
        now_ms: int | None = None,
    ) -> None:
        """Stores a callback request; ``max_open`` (0: no cap) refuses it with
        QueueError("callbacks_full") when that many are open already."""
        await self._run(
            "callback",
            {"callback": asdict(callback), "visitor_id": visitor_id, "max_open": max_open},
            now_ms,
        )

    async def close_callback(
        self,
        callback_id: str,
        agent: str,
        outcome: str = "",
        *,
        queues: list[str] | None = None,
        now_ms: int | None = None,
    ) -> None:
        """Closes an open request; ``queues``: the closing agent's (a request of another
        queue is refused as if it were not open)."""
        args: dict[str, Any] = {"id": callback_id, "agent": agent, "outcome": outcome}
        if queues is not None:
            args["agent_queues"] = queues
        await self._run("callback_close", args, now_ms)

    async def open_callbacks(self, queues: list[str] | None = None) -> list[dict[str, Any]]:
        """The open callback requests (of ``queues``, if given), oldest first."""
        ids: list[bytes] = await self.redis.zrange(  # type: ignore[assignment]
            self.keys.callbacks_open, 0, -1
        )
        if not ids:
            return []
        rows = await self.redis.hmget(self.keys.callbacks, ids)
        items = [dict(json.loads(_text(r))) for r in rows if r is not None]
        for item in items:
            item.pop("visitor_id", None)  # kept for erasure; agents never see visitor ids
        return items if queues is None else [i for i in items if i.get("queue") in queues]

    async def set_queue_rules(self, queue: str, rules: dict[str, Any]) -> None:
        """Stores a queue's own rules (keys as in QueueConfig, plus strategy and overflow)."""
        await self.add_queue(queue)
        await self.redis.hset(self.keys.queue_config, queue, json.dumps(rules))

    async def own_rules(self, queue: str) -> dict[str, Any]:
        """The rules stored for ``queue`` itself, without the desk defaults ({} if none)."""
        raw = await self._stored_rules(queue)
        return dict(json.loads(raw)) if raw else {}

    async def queue_rules(self, queue: str) -> dict[str, Any]:
        """The rules in force for ``queue``: its own over the desk defaults."""
        return self._rules_from(await self._stored_rules(queue))

    async def _stored_rules(self, queue: str, *, cached: bool = False) -> str:
        """The queue's own rules as stored (JSON text, "" for none); ``cached``: as last read."""
        if not cached or queue not in self._rules_seen:
            raw = await self.redis.hget(self.keys.queue_config, queue)
            self._rules_seen[queue] = "" if raw is None else _text(raw)
        return self._rules_seen[queue]

    def _rules_from(self, raw: str) -> dict[str, Any]:
        rules = self.config.rules() | {
            "visitor_lease_ms": self.config.visitor_lease_ms,
            "default_handle_s": self.config.default_handle_s,
        }
        if raw:
            rules.update(json.loads(raw))
        return rules

    async def admission(
        self, queue: str, now: dt.datetime | None = None, *, cached: bool = False
    ) -> Admission:
        """Whether the queue takes visitors now (business hours), and at what priority.

        A join needs this on the path from a visitor's click to an agent's offer, so it
        reads the queue's rules and nothing else; ``cached`` uses the rules as last read,
        and :meth:`join` with ``rules_seen`` refuses the join if they changed since.
        """
        raw = await self._stored_rules(queue, cached=cached)
        rules = self._rules_from(raw)
        schedule = Schedule.parse(str(rules.get("hours", "")), str(rules.get("timezone", "UTC")))
        now = now or dt.datetime.now(dt.UTC)
        is_open = schedule.is_open(now)
        opening = None if is_open else schedule.next_opening(now)
        return Admission(
            open=is_open,
            opens_at=opening.isoformat() if opening else None,
            priority=int(rules.get("priority", 0)),
            rules_seen=raw,
        )

    async def availability(self, queue: str, now: dt.datetime | None = None) -> Availability:
        """Whether the queue is open (business hours) and anyone is logged in to serve it."""
        admission = await self.admission(queue, now)
        online = 0
        for agent in (await self.agents()).values():
            if agent.get("state") != "offline" and queue in agent.get("queues", []):
                online += 1
        return Availability(
            queue=queue,
            open=admission.open,
            opens_at=admission.opens_at,
            agents_online=online,
            snapshot=await self.snapshot(queue),
            priority=admission.priority,
        )

    async def call_record(self, call_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.call_records, call_id)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def call_records(self, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """Call records of calls answered in [since_ms, until_ms], oldest first."""
        ids: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
            self.keys.records_by_time, since_ms, until_ms
        )
        if not ids:
            return []
        rows = await self.redis.hmget(self.keys.call_records, ids)
        return [dict(json.loads(_text(r))) for r in rows if r is not None]

    async def try_reaper_lease(self, holder: str, ttl_ms: int) -> bool:
        """Takes or renews the reaper lease; only its holder runs :meth:`reap`."""
        key = self.keys.reaper_lease
        if await self.redis.set(key, holder, nx=True, px=ttl_ms):
            return True
        current = await self.redis.get(key)
        if current is not None and _text(current) == holder:
            await self.redis.pexpire(key, ttl_ms)
            return True
        return False

    # Reads -------------------------------------------------------------------------------

    async def visitor(self, visitor_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.visitors, visitor_id)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def agent(self, name: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.agents, name)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def agents(self) -> dict[str, dict[str, Any]]:
        """Every agent's live record (state, queues, offer or call, ...), by name."""
        raw = await self.redis.hgetall(self.keys.agents)
        return {_text(name): dict(json.loads(_text(record))) for name, record in raw.items()}

    async def offer(self, offer_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.offers, offer_id)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def call(self, call_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.calls, call_id)
        return None if raw is None else dict(json.loads(_text(raw)))

    async def clock_ms(self) -> int:
        """Redis's clock, the one the scripts use, in Unix milliseconds."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def position(self, visitor_id: str) -> int | None:
        """The visitor's 1-based place in line, or None if not in line.

        Visitors being offered, or away for a moment, keep their places and are counted.
        """
        visitor = await self.visitor(visitor_id)
        if visitor is None or visitor["state"] not in ("waiting", "offered"):
            return None
        rank = await self.redis.zrank(self.keys.queue(visitor["queue"]).places, visitor_id)
        return None if rank is None else int(rank) + 1  # type: ignore[arg-type]

    async def line_from(self, queue: str, start: int) -> tuple[list[str], set[str]]:
        """:meth:`line_ids` from ``start``, and the visitors being offered to an agent right
        now (any queue), in one round trip. The offers are as many as the agents at most,
        however long the line."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.queue(queue).places, start, -1)
        pipe.hvals(self.keys.offers)
        places, offers = await pipe.execute()
        offered = {str(json.loads(_text(raw))["visitor"]) for raw in offers}
        return [_text(member) for member in places], offered

    async def line_ids(self, queue: str, start: int = 0) -> list[str]:
        """The ids of everyone with a place in a queue's line (waiting, offered or away),
        from 0-based place ``start`` to the back."""
        rows: list[bytes] = await self.redis.zrange(  # type: ignore[assignment]
            self.keys.queue(queue).places, start, -1
        )
        return [_text(member) for member in rows]

    async def line(self, queue: str) -> list[tuple[str, float]]:
        """The waiting visitors of a queue, first in line first, with their scores."""
        rows: list[tuple[bytes, float]] = await self.redis.zrange(
            self.keys.queue(queue).waiting, 0, -1, withscores=True
        )  # type: ignore[assignment]
        return [(_text(member), float(score)) for member, score in rows]

    async def snapshot(self, queue: str) -> QueueSnapshot:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.keys.queue(queue).waiting)
        pipe.zcard(self.keys.queue(queue).idle)
        pipe.scard(self.keys.queue(queue).serving)
        pipe.hget(self.keys.handle_times, queue)
        waiting, available, serving, handle = await pipe.execute()
        return QueueSnapshot(
            name=queue,
            waiting=int(waiting),
            available=int(available),
            serving=int(serving),
            handle_s=float(handle) if handle is not None else self.config.default_handle_s,
        )

    async def events(self, count: int = 1000) -> list[dict[str, str]]:
        """The newest ``count`` events of the log, oldest first."""
        return [event for _id, event in reversed(await self.events_before("+", count))]

    async def events_before(self, newest: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` (id, event) of the log, newest first, from the id ``newest``
        ("+": the newest; "(id": just before id) backwards."""
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrevrange(
            self.keys.events, max=newest, min="-", count=count
        )  # type: ignore[assignment]
        return [
            (_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
            for entry_id, fields in rows
        ]

    async def anonymous_events(self, since_ms: int, until_ms: int) -> list[str]:
        """The id-free copies of erased visitors' events logged in [since_ms, until_ms]."""
        rows: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
            self.keys.anonymous_events, since_ms, until_ms
        )
        return [_text(row) for row in rows]

    async def visitors(self) -> list[dict[str, Any]]:
        """Every visitor's live record (waiting, offered, in a call)."""
        raw = await self.redis.hgetall(self.keys.visitors)
        return [dict(json.loads(_text(record))) for record in raw.values()]


@dataclass(frozen=True)
class Rendered:
    """Messages rendered by render.lua (None where there is nothing to tell)."""

    status: dict[str, Any] | None  # the agent's `status`
    state: str  # the agent's state ("offline" if unknown)
    call: str | None  # the agent's call, in a call
    last_call: str | None  # the call their wrap-up is for
    offer: dict[str, Any] | None  # the agent's pending `offer`
    call_started: tuple[dict[str, Any], dict[str, Any]] | None  # offerer's, answerer's
    visitor: str | None  # the call's visitor
    agent: str | None  # the call's agent


@dataclass(frozen=True)
class Admission:
    """Whether a queue takes visitors now, and the priority it gives them."""

    open: bool
    opens_at: str | None  # ISO time of the next opening, when closed
    priority: int  # the queue's default visitor priority
    rules_seen: str  # the rules this was decided on, for join(rules_seen=...)


@dataclass(frozen=True)
class Availability:
    """What a visitor may know before joining a queue."""

    queue: str
    open: bool
    opens_at: str | None  # ISO time of the next opening, when closed
    agents_online: int  # agents logged in for the queue (any state but Offline)
    snapshot: QueueSnapshot
    priority: int  # the queue's default visitor priority

    def public(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "open": self.open,
            "opens_at": self.opens_at,
            "agents_online": self.agents_online,
            "agents_available": self.snapshot.available,
            "agents_serving": self.snapshot.serving,
            "waiting": self.snapshot.waiting,
            "eta_seconds": estimate_wait_seconds(self.snapshot.waiting + 1, self.snapshot),
        }


def now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _list(value: Any) -> list[str]:
    # cjson encodes an empty Lua table as {} rather than [].
    return [str(v) for v in value] if isinstance(value, list) else []
