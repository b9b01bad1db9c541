"""Model-based test of the queue: random operation sequences against a plain Python model.

A Hypothesis state machine drives the real Lua scripts (through ``DeskQueue``) on the real
redis-server of the test session with random sequences of joins, leaves, reloads, resumes,
agent state changes, accepts, declines (of current and of stale or foreign offers), time
outs, hang-ups, wrap-ups, transfers, callback requests, lost connections and lease renewals
that race the end of a call (a server renews the lease of a visitor whose call has just
ended before it has read the ``call_ended``), on a clock the test controls. Each run draws
the rules of the two queues (strategy, wrap-up, escalation, missed-offer limit, maximum
wait with a callback prompt or overflow) and which of the four agents (one or both queues,
some at level 2) start Available.

Beside it runs :class:`Model`, a plain-Python restatement of the queue rules: who waits
where in which order, who keeps a place while offered or away (socket gone), who is in a
call, in wrap-up, delayed, on a break or offline, who holds which lease, which places
visitors are told, which events the log must show and what the statistics must say.
The model predicts every offer exactly, including *which* agent gets it (level, escalation
and the queue's strategy), so each offer is also checked to be legal: the best waiting
visitor (priority, then join time, across the queues) with an eligible idle agent of theirs.

After every step the whole Redis state of the desk is read back and compared with the model
(lines and places in order with their scores, idle lines, serving sets, leases, delays,
wrap-ups, offers, calls, visitor and agent records, positions, call records, callbacks, the
event stream event by event, the statistics of ``queue/stats.py``), and model-independent
invariants are checked on it:
nobody is lost, duplicated, double-booked or in two places, lines follow priority then join
time, and every visitor ends in at most one terminal state.

Budget: ``HUMANDESK_MODEL_EXAMPLES`` (default 100) examples of ``HUMANDESK_MODEL_STEPS``
(default 50) steps. In CI (``CI=true``) the run is derandomized, so it is the same every time.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from humandesk.queue.client import (
    STRATEGIES,
    AgentInfo,
    CallbackRequest,
    DeskQueue,
    NewVisitor,
    QueueConfig,
    QueueError,
)
from humandesk.queue.stats import queue_stats

from cluster import Cluster, Listener
from conftest import CLUSTER_WAIT_MS
from helpers import T0

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = int(os.environ.get("HUMANDESK_MODEL_EXAMPLES", "100"))
STEPS = int(os.environ.get("HUMANDESK_MODEL_STEPS", "50"))

PRIORITY_STEP = 10**12
DAY_MS = 86_400_000
SL_THRESHOLD_S = 20.0
QUEUES = ["sales", "support"]  # the order the client passes them (sorted) and match scans
MAX_ACTIVE_VISITORS = 10
CFG = QueueConfig()  # desk defaults: 20 s offers, 5 s delays, 20 s / 60 s leases, 30 s wrap-up

AGENTS = [
    AgentInfo("ann", "Ann", ["support"]),
    AgentInfo("bob", "Bob", ["support", "sales"], {"support": 2}),
    AgentInfo("cat", "Cat", ["sales"]),
    AgentInfo("dan", "Dan", ["sales", "support"], {"sales": 2, "support": 2}),
]

# Time steps: small ones, and ones just around the offer timeout, delays, leases, wrap-up.
STEP_MS = st.one_of(
    st.integers(0, 3_000),
    st.sampled_from([4_999, 5_000, 5_001, 10_000, 19_999, 20_000, 20_001, 30_000, 60_001]),
)

T = TypeVar("T")


class Refused(Exception):
    """The model's prediction that a script refuses an operation with ``code``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# The model ------------------------------------------------------------------------------


@dataclass
class MVisitor:
    id: str
    queue: str
    priority: int
    joined: int
    score: int
    state: str = "waiting"  # waiting | offered | in_call | gone
    away: bool = False  # waiting, socket gone: keeps the place, offered to no one
    conn: str = ""  # the socket holding the entry
    offer: str | None = None
    call: str | None = None
    transferred_from: str | None = None
    overflowed_from: str | None = None
    max_wait_done: bool = False
    connected: bool = True  # a socket is open (and heartbeating)
    conns: int = 1  # sockets opened so far
    outcome: str | None = None  # terminal: "abandoned:<reason>" or "ended:<reason>"

    @property
    def active(self) -> bool:
        return self.state != "gone"


@dataclass
class MAgent:
    info: AgentInfo
    exists: bool = False  # has a record in Redis (set a status once)
    state: str = "offline"  # offline | available | break | offered | in_call | wrap_up
    connected: bool = True
    idle_since: int | None = None
    ready_at: int | None = None  # Available but delayed (reject / no-answer delay)
    offer: str | None = None
    call: str | None = None
    last_call: str | None = None
    missed: int = 0
    wrapup_until: int | None = None
    reason: str | None = None
    calls: int = 0
    calls_day: int | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def level(self, queue: str) -> int:
        return int(self.info.levels.get(queue, 1))


@dataclass
class MOffer:
    id: str
    visitor: str
    agent: str
    queue: str
    deadline: int
    created: int


@dataclass
class MCall:
    id: str
    visitor: str
    agent: str
    queue: str
    started: int
    waited_ms: int


@dataclass
class MStats:
    """What the statistics of one queue must say, counted by the model: ``counts`` by the
    name of the figure (offered, answered, abandoned, ...)."""

    counts: Counter[str] = field(default_factory=Counter)
    waits_ms: list[int] = field(default_factory=list)
    talks_ms: list[int] = field(default_factory=list)
    wrapups_ms: list[int] = field(default_factory=list)


class Model:
    """The queue rules in plain Python, step for step as the scripts apply them."""

    def __init__(self, rules: dict[str, dict[str, Any]]) -> None:
        self.now = T0
        self.rules = rules  # queue -> effective rules (queue config over the desk defaults)
        self.visitors: dict[str, MVisitor] = {}
        self.agents = {info.name: MAgent(info) for info in AGENTS}
        self.offers: dict[str, MOffer] = {}
        self.calls: dict[str, MCall] = {}
        self.leases: dict[str, int] = {}
        self.fence = 0
        self.round_robin: dict[str, str] = {}
        self.handle_s: dict[str, float] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, str]] = []
        self.stats = {q: MStats() for q in QUEUES}
        self.offer_notes: list[str] = []  # why each offer went where it went (diagnostics)

    # Derived views ------------------------------------------------------------------------

    def line(self, queue: str) -> list[MVisitor]:
        """Who may be offered now, in order: score (priority, then join time), then id (as
        Redis orders equal scores). Visitors who are away keep their place but are not here."""
        waiting = [
            v
            for v in self.visitors.values()
            if v.state == "waiting" and not v.away and v.queue == queue
        ]
        return sorted(waiting, key=lambda v: (v.score, v.id))

    def places(self, queue: str) -> list[MVisitor]:
        """Everyone with a place in the queue's line: waiting, offered or away."""
        placed = [
            v
            for v in self.visitors.values()
            if v.state in ("waiting", "offered") and v.queue == queue
        ]
        return sorted(placed, key=lambda v: (v.score, v.id))

    def idle(self, queue: str) -> list[MAgent]:
        """Idle agents of a queue (Available, no delay), longest idle first."""
        idle = [
            a
            for a in self.agents.values()
            if a.state == "available" and a.ready_at is None and queue in a.info.queues
        ]
        return sorted(idle, key=lambda a: (a.idle_since, a.name))

    def serving(self, queue: str) -> set[str]:
        return {
            a.name
            for a in self.agents.values()
            if queue in a.info.queues and a.state in ("available", "offered", "in_call", "wrap_up")
        }

    def active_visitors(self) -> list[MVisitor]:
        return [v for v in self.visitors.values() if v.active]

    # Helpers mirroring lib.lua --------------------------------------------------------------

    def log(self, kind: str, **fields: Any) -> None:
        event = {"event": kind, "ts": str(self.now)}
        event.update({k: str(v) for k, v in fields.items() if v is not None})
        self.events.append(event)

    def terminal(self, v: MVisitor, outcome: str) -> None:
        assert v.outcome is None, f"{v.id} would end twice: {v.outcome} and {outcome}"
        v.state = "gone"
        v.offer = None
        v.call = None
        v.outcome = outcome
        self.leases.pop("v:" + v.id, None)

    def finish_wrapup(self, a: MAgent) -> None:
        if a.state != "wrap_up":
            return
        if a.last_call:
            r = self.records.get(a.last_call)
            if r is not None and "ended" in r:
                r["wrapup_ms"] = self.now - r["ended"]
                self.log(
                    "wrapup_ended",
                    call=a.last_call,
                    agent=a.name,
                    queue=r["queue"],
                    wrapup_ms=r["wrapup_ms"],
                )
                self.stats[r["queue"]].wrapups_ms.append(r["wrapup_ms"])
        a.wrapup_until = None
        a.state = "offline"  # the caller sets the state that follows

    def withdraw(self, a: MAgent) -> None:
        self.finish_wrapup(a)

    def make_idle(self, a: MAgent, idle_since: int) -> None:
        self.finish_wrapup(a)
        a.state = "available"
        a.offer = None
        a.call = None
        a.reason = None
        a.idle_since = idle_since
        a.ready_at = None

    def delay(self, a: MAgent, ready_at: int) -> None:
        a.state = "available"
        a.offer = None
        a.call = None
        a.idle_since = self.now
        a.ready_at = ready_at

    def agent_wrapup(self, a: MAgent, call_id: str, queue: str) -> None:
        a.last_call = call_id
        wrapup_ms = int(self.rules[queue]["wrapup_ms"])
        if wrapup_ms <= 0:
            self.make_idle(a, self.now)
            return
        a.state = "wrap_up"
        a.offer = None
        a.call = None
        a.wrapup_until = self.now + wrapup_ms

    def release_offer(self, o: MOffer, reason: str) -> None:
        del self.offers[o.id]
        v = self.visitors[o.visitor]
        if v.active:  # back in line; or, if they left or went away, the caller goes on
            v.state = "waiting"
            v.offer = None
        a = self.agents[o.agent]
        rules = self.rules[o.queue]
        if reason == "declined":
            a.missed = 0
            self.delay(a, self.now + int(rules["reject_delay_ms"]))
        elif reason == "timeout":
            a.missed += 1
            if a.missed >= int(rules["max_missed_offers"]):
                self.withdraw(a)
                a.state = "break"
                a.offer = None
                a.reason = f"Missed {a.missed} offers in a row"
                self.log("agent_state", agent=a.name, state="break", reason="missed_offers")
            else:
                self.delay(a, self.now + int(rules["no_answer_delay_ms"]))
        elif reason == "visitor_left":
            self.make_idle(a, a.idle_since if a.idle_since is not None else self.now)
        a.offer = None
        kind = {
            "declined": "declined",
            "timeout": "timed_out",
            "visitor_left": "withdrawn",
            "status_change": "withdrawn",
        }[reason]
        self.log(kind, offer=o.id, visitor=o.visitor, agent=o.agent, queue=o.queue, reason=reason)
        if kind == "declined":
            self.stats[o.queue].counts["offers_declined"] += 1
        elif kind == "timed_out":
            self.stats[o.queue].counts["offers_timed_out"] += 1

    def choose_agent(self, queue: str, v: MVisitor) -> tuple[MAgent, list[str]]:
        """The agent the queue's strategy picks, and the eligible agents it picked from."""
        rules = self.rules[queue]
        escalated = self.now - v.joined >= int(rules["escalation_ms"])
        idle = self.idle(queue)
        best = min(1 if escalated else a.level(queue) for a in idle)
        eligible = [a for a in idle if (1 if escalated else a.level(queue)) == best]
        strategy = rules["strategy"]
        if strategy == "fewest-calls":
            day = self.now // DAY_MS
            pick = min(eligible, key=lambda a: a.calls if a.calls_day == day else 0)
        elif strategy == "round-robin":
            last = self.round_robin.get(queue, "")
            ordered = sorted(eligible, key=lambda a: a.name)
            pick = next((a for a in ordered if a.name > last), ordered[0])
        elif strategy == "random":
            pick = eligible[(self.now + self.fence * 7919) % len(eligible)]
        else:
            pick = eligible[0]
        return pick, [a.name for a in eligible]

    def make_offer(self, queue: str, v: MVisitor, a: MAgent) -> str:
        assert v.state == "waiting" and a.state == "available" and a.ready_at is None
        assert queue in a.info.queues and v.queue == queue
        self.fence += 1
        oid = str(self.fence)
        self.round_robin[queue] = a.name
        deadline = self.now + int(self.rules[queue]["offer_timeout_ms"])
        self.offers[oid] = MOffer(oid, v.id, a.name, queue, deadline, self.now)
        v.state = "offered"
        v.offer = oid
        a.state = "offered"
        a.offer = oid
        self.log("offered", offer=oid, visitor=v.id, agent=a.name, queue=queue)
        self.stats[queue].counts["offers_made"] += 1
        return oid

    def match(self) -> int:
        """The best visitor across queues with an idle agent of theirs, until none is left."""
        made = 0
        while True:
            best: tuple[str, MVisitor] | None = None
            for q in QUEUES:
                if not self.idle(q):
                    continue
                line = self.line(q)
                if line and (best is None or line[0].score < best[1].score):
                    best = (q, line[0])
            if best is None:
                return made
            q, v = best
            agent, eligible = self.choose_agent(q, v)
            self.offer_notes.append(
                f"t={self.now - T0}: {v.id} (queue {q}, priority {v.priority}) -> {agent.name}"
                f" of eligible {eligible} by {self.rules[q]['strategy']}"
            )
            self.make_offer(q, v, agent)
            made += 1

    def close_call(self, c: MCall, by: str, reason: str) -> None:
        del self.calls[c.id]
        talk_ms = self.now - c.started
        old = self.handle_s.get(c.queue, CFG.default_handle_s)
        self.handle_s[c.queue] = old * 0.8 + (talk_ms / 1000) * 0.2
        self.records[c.id].update(ended=self.now, talk_ms=talk_ms, ended_by=by, end_reason=reason)
        self.log(
            "ended",
            call=c.id,
            visitor=c.visitor,
            agent=c.agent,
            queue=c.queue,
            talk_ms=talk_ms,
            by=by,
            reason=reason,
        )
        self.stats[c.queue].talks_ms.append(talk_ms)
        a = self.agents[c.agent]
        if a.call == c.id:
            self.agent_wrapup(a, c.id, c.queue)

    def end_call(self, c: MCall, by: str, reason: str) -> None:
        v = self.visitors[c.visitor]
        if v.active:
            self.terminal(v, "ended:" + reason)
        self.close_call(c, by, reason)

    def remove_visitor(self, v: MVisitor, reason: str) -> None:
        if v.state == "in_call":
            assert v.call is not None
            self.end_call(self.calls[v.call], "desk", "peer_left")
            return
        if v.state == "offered":
            assert v.offer is not None
            self.release_offer(self.offers[v.offer], "visitor_left")
        waited = self.now - v.joined
        self.terminal(v, "abandoned:" + reason)
        self.log("abandoned", visitor=v.id, queue=v.queue, waited_ms=waited, reason=reason)
        if reason == "callback":
            self.stats[v.queue].counts["callbacks"] += 1
        else:
            self.stats[v.queue].counts["abandoned"] += 1
            if waited <= SL_THRESHOLD_S * 1000:
                self.stats[v.queue].counts["abandoned_within"] += 1

    def position(self, vid: str) -> int | None:
        """1-based place in line, counting everyone with a place ahead (waiting, offered or
        away): what the visitor is told, on joining, on coming back and afterwards."""
        v = self.visitors[vid]
        if v.state in ("waiting", "offered"):
            return 1 + self.places(v.queue).index(v)
        return None

    # Operations (each mirrors one script) -------------------------------------------------

    def join(self, vid: str, queue: str, priority: int, conn: str) -> tuple[int, int, bool]:
        if vid in self.visitors and self.visitors[vid].active:
            raise Refused("duplicate_visitor")
        v = MVisitor(vid, queue, priority, self.now, self.now - priority * PRIORITY_STEP)
        v.conn = conn
        self.visitors[vid] = v
        self.leases["v:" + vid] = self.now + CFG.visitor_lease_ms
        self.log("joined", visitor=vid, queue=queue, priority=priority)
        self.stats[queue].counts["offered"] += 1
        position = self.position(vid)
        self.match()
        return position, len(self.line(queue)), v.state == "offered"

    def away(self, vid: str, conn: str) -> bool:
        v = self.visitors.get(vid)
        if v is None or not v.active or v.conn != conn:
            return False
        if v.state == "offered":
            assert v.offer is not None
            self.release_offer(self.offers[v.offer], "visitor_left")
        if v.state != "waiting":
            return False
        v.away = True
        self.match()
        return True

    def come_back(self, vid: str, conn: str) -> dict[str, Any]:
        v = self.visitors.get(vid)
        if v is None or not v.active or "v:" + vid not in self.leases:
            raise Refused("unknown_visitor")
        self.leases["v:" + vid] = self.now + CFG.visitor_lease_ms
        v.conn = conn
        v.away = False
        self.match()
        return {"state": v.state, "queue": v.queue, "position": self.position(vid)}

    def leave(self, vid: str) -> None:
        v = self.visitors.get(vid)
        if v is None or not v.active:
            raise Refused("unknown_visitor")
        self.remove_visitor(v, "left")
        self.match()

    def agent_status(self, name: str, status: str) -> str:
        a = self.agents[name]
        if a.state == "in_call":
            if status != "offline":
                raise Refused("wrong_state")
            assert a.call is not None
            self.end_call(self.calls[a.call], "agent", "agent_offline")
        elif a.state == "offered":
            assert a.offer is not None
            self.release_offer(self.offers[a.offer], "status_change")
        was = a.state
        self.withdraw(a)
        a.exists = True
        a.missed = 0
        if status == "available":
            if was == "available" and a.ready_at is None:
                self.make_idle(a, a.idle_since if a.idle_since is not None else self.now)
            elif was == "available":
                assert a.ready_at is not None
                self.delay(a, a.ready_at)
            else:
                self.make_idle(a, self.now)
            self.leases["a:" + name] = self.now + CFG.lease_ms
        elif status == "break":
            a.state = "break"
            a.offer = None
            a.ready_at = None
            a.reason = ""
            self.leases["a:" + name] = self.now + CFG.lease_ms
        else:
            a.state = "offline"
            a.offer = None
            a.ready_at = None
            a.reason = ""
            self.leases.pop("a:" + name, None)
        if was != a.state:
            self.log("agent_state", agent=name, state=a.state, reason="")
        self.match()
        return a.state

    def accept(self, name: str, oid: str) -> str:
        o = self.offers.get(oid)
        if o is None or o.agent != name:
            raise Refused("stale_offer")
        if self.now > o.deadline:
            self.release_offer(o, "timeout")
            self.match()
            raise Refused("stale_offer")
        del self.offers[oid]
        v = self.visitors[o.visitor]
        a = self.agents[name]
        c = MCall(oid, v.id, name, o.queue, self.now, self.now - v.joined)
        self.calls[oid] = c
        record: dict[str, Any] = {
            "id": oid,
            "queue": o.queue,
            "agent": name,
            "agent_name": a.info.display_name,
            "visitor_id": v.id,
            "visitor_name": f"Visitor {v.id}",
            "topic": "",
            "page": "",
            "priority": v.priority,
            "joined": v.joined,
            "answered": self.now,
            "waited_ms": c.waited_ms,
        }
        if v.transferred_from is not None:
            record["transferred_from"] = v.transferred_from
        self.records[oid] = record
        v.state = "in_call"
        v.offer = None
        v.call = oid
        day = self.now // DAY_MS
        if a.calls_day != day:
            a.calls_day = day
            a.calls = 0
        a.calls += 1
        a.state = "in_call"
        a.offer = None
        a.call = oid
        a.missed = 0
        self.log(
            "accepted",
            offer=oid,
            call=oid,
            visitor=v.id,
            agent=name,
            queue=o.queue,
            waited_ms=c.waited_ms,
        )
        s = self.stats[o.queue]
        s.counts["answered"] += 1
        s.waits_ms.append(c.waited_ms)
        if c.waited_ms <= SL_THRESHOLD_S * 1000:
            s.counts["answered_within"] += 1
        return oid

    def decline(self, name: str, oid: str) -> None:
        o = self.offers.get(oid)
        if o is None or o.agent != name:
            raise Refused("stale_offer")
        self.release_offer(o, "declined")
        self.match()

    def hangup(self, call_id: str, by: str, party: str) -> None:
        c = self.calls.get(call_id)
        if c is None:
            raise Refused("unknown_call")
        if (by == "visitor" and c.visitor != party) or (by == "agent" and c.agent != party):
            raise Refused("not_a_party")
        self.end_call(c, by, "hangup")
        self.match()

    def wrapup(self, name: str, action: str, extend_ms: int) -> str:
        a = self.agents[name]
        if not a.exists or a.state != "wrap_up":
            raise Refused("wrong_state")
        if action == "extend":
            assert a.wrapup_until is not None
            a.wrapup_until = max(a.wrapup_until, self.now) + extend_ms
            self.log("wrapup_extended", agent=name, call=a.last_call or "")
        else:
            self.make_idle(a, self.now)
        self.match()
        return a.state

    def transfer(self, name: str, call_id: str, queue: str) -> None:
        c = self.calls.get(call_id)
        if c is None or c.agent != name:
            raise Refused("wrong_state")
        if queue == c.queue:
            raise Refused("bad_transfer")
        v = self.visitors[c.visitor]
        assert v.active
        line = self.line(queue)
        score = v.score
        if line and line[0].score <= score:
            score = line[0].score - 1
        self.records[c.id]["transferred_to"] = queue
        self.close_call(c, "agent", "transferred")
        v.state = "waiting"
        v.call = None
        v.transferred_from = c.queue
        v.queue = queue
        v.score = score
        self.log("transferred", call=c.id, visitor=v.id, agent=c.agent, queue=c.queue, to=queue)
        self.stats[c.queue].counts["transferred_out"] += 1
        self.match()

    def heartbeat(self, vids: list[str], names: list[str]) -> tuple[list[str], list[str]]:
        gone_v, gone_a = [], []
        for vid in vids:
            if "v:" + vid in self.leases:
                self.leases["v:" + vid] = self.now + CFG.visitor_lease_ms
            else:
                gone_v.append(vid)
        for name in names:
            if "a:" + name in self.leases:
                self.leases["a:" + name] = self.now + CFG.lease_ms
            else:
                gone_a.append(name)
        return gone_v, gone_a

    def reap(self) -> dict[str, int]:
        result = dict.fromkeys(
            ("offers_expired", "visitors_gone", "agents_gone", "agents_ready", "wrapups_ended"),
            0,
        )
        due_offers = sorted((o.deadline, o.id) for o in self.offers.values())
        for deadline, oid in due_offers:
            if deadline <= self.now:
                self.release_offer(self.offers[oid], "timeout")
                result["offers_expired"] += 1
        due_leases = sorted((t, m) for m, t in self.leases.items() if t <= self.now)
        for _t, member in due_leases:
            self.leases.pop(member, None)
            kind, ident = member[0], member[2:]
            if kind == "v":
                v = self.visitors[ident]
                if v.active:
                    self.remove_visitor(v, "lease_expired")
                result["visitors_gone"] += 1
                continue
            a = self.agents[ident]
            if a.state == "in_call":
                assert a.call is not None
                self.end_call(self.calls[a.call], "desk", "peer_left")
            elif a.state == "offered":
                assert a.offer is not None
                self.release_offer(self.offers[a.offer], "status_change")
            self.withdraw(a)
            a.state = "offline"
            a.offer = None
            a.ready_at = None
            a.reason = "Connection lost"
            self.leases.pop(member, None)
            self.log("agent_state", agent=ident, state="offline", reason="lease_expired")
            result["agents_gone"] += 1
        delayed = sorted(
            (a.ready_at, a.name) for a in self.agents.values() if a.ready_at is not None
        )
        for ready_at, name in delayed:
            a = self.agents[name]
            if ready_at <= self.now and a.state == "available":
                self.make_idle(a, a.idle_since if a.idle_since is not None else self.now)
                result["agents_ready"] += 1
        wrapups = sorted(
            (a.wrapup_until, a.name)
            for a in self.agents.values()
            if a.state == "wrap_up" and a.wrapup_until is not None
        )
        for until, name in wrapups:
            if until <= self.now:
                self.make_idle(self.agents[name], self.now)
                result["wrapups_ended"] += 1
        result["max_wait"] = 0
        for q in QUEUES:
            max_wait_ms = int(self.rules[q]["max_wait_ms"])
            if max_wait_ms <= 0:
                continue
            cutoff = self.now - max_wait_ms
            for v in [v for v in self.line(q) if v.score <= cutoff]:
                if v.joined > cutoff or v.max_wait_done:
                    continue
                v.max_wait_done = True
                target = self.rules[q]["overflow"]
                if target not in ("", q):
                    v.overflowed_from = q
                    v.queue = target
                    self.log(
                        "overflowed",
                        visitor=v.id,
                        queue=q,
                        to=target,
                        waited_ms=self.now - v.joined,
                    )
                else:
                    self.log("max_wait", visitor=v.id, queue=q, waited_ms=self.now - v.joined)
                result["max_wait"] += 1
        result["offers"] = self.match()
        return result

    def callback(self, cb_id: str, queue: str, vid: str) -> None:
        v = self.visitors.get(vid)
        waited = None
        if v is not None and v.active:
            if v.state == "in_call":
                raise Refused("wrong_state")
            waited = self.now - v.joined
            self.remove_visitor(v, "callback")
        cb: dict[str, Any] = {
            "id": cb_id,
            "queue": queue,
            "name": f"Caller {cb_id}",
            "contact": "+44 20 7946 0000",
            "note": "",
            "state": "open",
            "created": self.now,
        }
        if waited is not None and v is not None:
            cb["waited_ms"] = waited
            cb["visitor_id"] = v.id  # the visit it replaced, for erasure
        self.callbacks[cb_id] = cb
        self.log("callback_requested", callback=cb_id, queue=queue)
        self.match()

    def close_callback(self, cb_id: str, agent: str) -> None:
        cb = self.callbacks.get(cb_id)
        if cb is None or cb["state"] != "open":
            raise Refused("wrong_state")
        cb.update(state="closed", closed=self.now, closed_by=agent, outcome="called back")
        self.log("callback_closed", callback=cb_id, queue=cb["queue"], agent=agent)


# The state machine -------------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class QueueMachine(RuleBasedStateMachine):
    """Drives ``DeskQueue`` on a real Redis and checks it against :class:`Model`."""

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis: Redis = target.client()
        self.desk = DeskQueue(
            self.redis, target.desk_name(), CFG, replica_wait_ms=target.replica_wait_ms
        )
        for q in QUEUES:
            self.run(self.desk.add_queue(q))
        self.model = Model({q: self._effective_rules({}) for q in QUEUES})
        self.next_visitor = 0
        self.seen_events: list[dict[str, str]] = []
        self.last_event_id = "0-0"
        self.checked_events = 0

    # Plumbing -----------------------------------------------------------------------------

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    @property
    def now(self) -> int:
        return self.model.now

    def both(self, real: Callable[[], Awaitable[T]], predicted: Callable[[], Any]) -> Any:
        """Runs an operation on Redis and in the model; both must agree on result or refusal."""
        got: Any = None
        got_code = None
        try:
            got = self.run(real())
        except QueueError as exc:
            got_code = exc.code
        want: Any = None
        want_code = None
        try:
            want = predicted()
        except Refused as refusal:
            want_code = refusal.code
        assert got_code == want_code, f"refusal: redis {got_code!r}, model {want_code!r}"
        assert got == want, f"result: redis {got!r}, model {want!r}"
        return got

    def _effective_rules(self, own: dict[str, Any]) -> dict[str, Any]:
        rules = {
            "offer_timeout_ms": CFG.offer_timeout_ms,
            "wrapup_ms": CFG.wrapup_ms,
            "escalation_ms": CFG.escalation_ms,
            "max_wait_ms": CFG.max_wait_ms,
            "reject_delay_ms": CFG.reject_delay_ms,
            "no_answer_delay_ms": CFG.no_answer_delay_ms,
            "max_missed_offers": CFG.max_missed_offers,
            "strategy": "longest-idle",
            "overflow": "",
        }
        rules.update(own)
        return rules

    def teardown(self) -> None:
        try:
            keys = self.run(self._desk_keys())
            if keys:
                self.run(self.redis.delete(*keys))
            self.run(self.redis.aclose())
        finally:
            self.loop.close()

    async def _desk_keys(self) -> list[bytes]:
        return [k async for k in self.redis.scan_iter(match=self.desk.keys.prefix + "*")]

    def pick(self, data: st.DataObject, items: list[T], label: str) -> T:
        return data.draw(st.sampled_from(items), label=label)

    # Candidates -----------------------------------------------------------------------------

    def connected_visitors(self) -> list[str]:
        return sorted(v.id for v in self.model.visitors.values() if v.active and v.connected)

    def silent_visitors(self) -> list[str]:
        """Visitors whose socket went away and who have not come back yet (maybe gone)."""
        return sorted(v.id for v in self.model.visitors.values() if not v.connected)

    def gone_visitors(self) -> list[str]:
        return sorted(v.id for v in self.model.visitors.values() if not v.active)

    def connected_agents(self, *states: str) -> list[str]:
        return [
            a.name
            for a in self.model.agents.values()
            if a.connected and (not states or a.state in states)
        ]

    def open_callbacks(self) -> list[str]:
        return sorted(i for i, cb in self.model.callbacks.items() if cb["state"] == "open")

    def calls_with_party(self, by: str) -> list[str]:
        out = []
        for c in self.model.calls.values():
            party_connected = (
                self.model.visitors[c.visitor].connected
                if by == "visitor"
                else self.model.agents[c.agent].connected
            )
            if party_connected:
                out.append(c.id)
        return sorted(out, key=int)

    # Setup -----------------------------------------------------------------------------------

    @initialize(
        strategies=st.tuples(st.sampled_from(STRATEGIES), st.sampled_from(STRATEGIES)),
        wrapups=st.tuples(st.sampled_from([30_000, 10_000, 0]), st.sampled_from([30_000, 0])),
        escalations=st.tuples(st.sampled_from([60_000, 15_000]), st.sampled_from([60_000, 0])),
        missed=st.tuples(st.sampled_from([3, 1]), st.sampled_from([3, 2])),
        max_waits=st.tuples(
            st.sampled_from([0, 0, 45_000, 90_000]), st.sampled_from([0, 0, 45_000, 90_000])
        ),
        overflows=st.tuples(st.booleans(), st.booleans()),
        online=st.lists(st.sampled_from([a.name for a in AGENTS]), unique=True),
    )
    def configure(
        self,
        strategies: tuple[str, str],
        wrapups: tuple[int, int],
        escalations: tuple[int, int],
        missed: tuple[int, int],
        max_waits: tuple[int, int],
        overflows: tuple[bool, bool],
        online: list[str],
    ) -> None:
        """Each queue gets its own strategy, wrap-up, escalation time, missed-offer limit and
        maximum wait (then a callback prompt, or overflow into the other queue); some agents
        start the shift Available (in this order)."""
        for i, q in enumerate(QUEUES):
            own = {
                "strategy": strategies[i],
                "wrapup_ms": wrapups[i],
                "escalation_ms": escalations[i],
                "max_missed_offers": missed[i],
                "max_wait_ms": max_waits[i],
                "overflow": QUEUES[1 - i] if overflows[i] else "",
            }
            self.run(self.desk.set_queue_rules(q, own))
            self.model.rules[q] = self._effective_rules(own)
        for name in online:
            info = self.model.agents[name].info
            self.both(
                lambda info=info: self.desk.set_agent_status(info, "available", now_ms=self.now),
                lambda name=name: self.model.agent_status(name, "available"),
            )

    # Visitors ------------------------------------------------------------------------------

    @precondition(lambda self: len(self.model.active_visitors()) < MAX_ACTIVE_VISITORS)
    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.sampled_from([0, 0, 5]),
        data=st.data(),
        again=st.sampled_from([False] * 7 + [True]),
    )
    def join(self, queue: str, priority: int, data: st.DataObject, again: bool) -> None:
        """A new visitor joins; now and then a join reuses the id of one still here (refused)."""
        active = [v.id for v in self.model.active_visitors()]
        if again and active:
            vid = self.pick(data, active, "visitor")
        else:
            self.next_visitor += 1
            vid = f"v{self.next_visitor:03d}"
        conn = f"{vid}-1"
        new = NewVisitor(id=vid, queue=queue, name=f"Visitor {vid}", priority=priority, conn=conn)

        async def real() -> tuple[int, int, bool]:
            result = await self.desk.join(new, now_ms=self.now)
            return result.position, result.waiting, result.offered

        self.both(real, lambda: self.model.join(vid, queue, priority, conn))

    @precondition(lambda self: bool(self.model.visitors))
    @rule(data=st.data(), gone=st.sampled_from([False] * 7 + [True]))
    def leave(self, data: st.DataObject, gone: bool) -> None:
        """A connected visitor leaves; now and then one who is already gone tries (refused)."""
        candidates = self.connected_visitors()
        if gone or not candidates:
            candidates = self.gone_visitors()
        if not candidates:
            return
        vid = self.pick(data, candidates, "visitor")
        was_gone = not self.model.visitors[vid].active
        before = len(self.model.events)
        self.both(lambda: self.desk.leave(vid, now_ms=self.now), lambda: self.model.leave(vid))
        if was_gone:
            assert len(self.model.events) == before

    @precondition(lambda self: bool(self.connected_visitors()))
    @rule(data=st.data(), then=st.sampled_from(["stays_away", "stays_away", "reload", "late"]))
    def visitor_socket_closes(self, data: st.DataObject, then: str) -> None:
        """A visitor's socket closes: they are away (keep their place, are offered to no one)
        and their lease runs down (stays_away); or the page reloads and a new socket resumes
        at once (reload); or the new socket resumes before the old one's close is handled,
        which then changes nothing (late)."""
        vid = self.pick(data, self.connected_visitors(), "visitor")
        old = self.model.visitors[vid].conn
        if then == "late":
            self._come_back(vid)
            before = len(self.model.events)
            assert self._away(vid, old) is False
            assert len(self.model.events) == before
            return
        self._away(vid, old)
        self.model.visitors[vid].connected = False
        if then == "reload":
            self._come_back(vid)

    @precondition(lambda self: bool(self.silent_visitors()))
    @rule(data=st.data())
    def visitor_resumes(self, data: st.DataObject) -> None:
        """A silent visitor's new socket takes their entry over; refused once it is gone."""
        self._come_back(self.pick(data, self.silent_visitors(), "silent visitor"))

    def _away(self, vid: str, conn: str) -> bool:
        return bool(
            self.both(
                lambda: self.desk.away(vid, conn, now_ms=self.now),
                lambda: self.model.away(vid, conn),
            )
        )

    def _come_back(self, vid: str) -> None:
        v = self.model.visitors[vid]
        v.conns += 1
        conn = f"{vid}-{v.conns}"

        def without_call_position(entry: dict[str, Any]) -> dict[str, Any]:
            # A visitor in a call has no place in line; the position is not meaningful.
            return {
                k: x for k, x in entry.items() if k != "position" or entry["state"] != "in_call"
            }

        async def real() -> dict[str, Any]:
            return without_call_position(await self.desk.come_back(vid, conn, now_ms=self.now))

        self.both(real, lambda: without_call_position(self.model.come_back(vid, conn)))
        v.connected = True

    @precondition(lambda self: bool(self.connected_visitors()))
    @rule(data=st.data(), with_visitor=st.sampled_from([True] * 5 + [False]))
    def request_callback(self, data: st.DataObject, with_visitor: bool) -> None:
        """A connected visitor gives up their place for a callback (refused during a call),
        or someone asks for one without joining (the queue was closed)."""
        candidates = self.connected_visitors()
        vid = self.pick(data, candidates, "visitor") if with_visitor and candidates else ""
        queue = self.model.visitors[vid].queue if vid else self.pick(data, QUEUES, "queue")
        cb_id = f"cb{len(self.model.callbacks) + 1}"
        request = CallbackRequest(cb_id, queue, f"Caller {cb_id}", "+44 20 7946 0000")
        self.both(
            lambda: self.desk.request_callback(request, vid, now_ms=self.now),
            lambda: self.model.callback(cb_id, queue, vid),
        )

    @precondition(lambda self: bool(self.open_callbacks()) and bool(self.connected_agents()))
    @rule(data=st.data(), closed=st.sampled_from([False] * 5 + [True]))
    def close_callback(self, data: st.DataObject, closed: bool) -> None:
        """An agent closes an open callback request; or one closed already (refused)."""
        done = sorted(set(self.model.callbacks) - set(self.open_callbacks()))
        cb_id = self.pick(data, done if closed and done else self.open_callbacks(), "callback")
        agent = self.pick(data, self.connected_agents(), "agent")
        self.both(
            lambda: self.desk.close_callback(cb_id, agent, "called back", now_ms=self.now),
            lambda: self.model.close_callback(cb_id, agent),
        )

    # Agents -----------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.connected_agents()))
    @rule(
        data=st.data(),
        status=st.sampled_from(["available"] * 4 + ["break", "offline", "disconnect"]),
        anyone=st.sampled_from([False] * 3 + [True]),
    )
    def agent_status(self, data: st.DataObject, status: str, anyone: bool) -> None:
        """An agent chooses a status (mostly one who is not Available or offered yet goes
        Available), or the console's socket goes away: heartbeats stop, the lease runs down."""
        candidates = self.connected_agents()
        if status == "available" and not anyone:
            candidates = [
                a for a in candidates if self.model.agents[a].state not in ("available", "offered")
            ] or candidates
        name = self.pick(data, candidates, "agent")
        if status == "disconnect":
            self.model.agents[name].connected = False
            return
        info = self.model.agents[name].info
        self.both(
            lambda: self.desk.set_agent_status(info, status, now_ms=self.now),  # type: ignore[arg-type]
            lambda: self.model.agent_status(name, status),
        )

    @precondition(lambda self: bool(self.connected_agents("offered")))
    @rule(data=st.data(), how=st.sampled_from(["accept"] * 3 + ["decline", "stale", "late"]))
    def answer_offer(self, data: st.DataObject, how: str) -> None:
        """An offered agent accepts or declines; or answers just after the deadline, before
        the lagging reaper has expired the offer (accept: refused, and it times out then);
        or an agent answers an offer id that is not their current offer (old, foreign, never
        made): refused, and nothing changes."""
        offered = self.connected_agents("offered")
        if how != "stale" and offered:
            name = self.pick(data, offered, "agent")
            oid = self.model.agents[name].offer
            assert oid is not None
            accept = how == "accept"
            if how == "late":
                self._tick(max(0, self.model.offers[oid].deadline + 1 - self.now), reap=False)
                accept = data.draw(st.booleans(), label="accept")
        else:
            name = self.pick(data, self.connected_agents(), "agent")
            own = self.model.agents[name].offer
            ids = [str(i) for i in range(1, self.model.fence + 1) if str(i) != own]
            oid = self.pick(data, [*ids, str(self.model.fence + 1000)], "offer id")
            accept = data.draw(st.booleans(), label="accept")
        before = len(self.model.events)
        if accept:
            self.both(
                lambda: self.desk.accept(name, oid, now_ms=self.now),
                lambda: self.model.accept(name, oid),
            )
        else:
            self.both(
                lambda: self.desk.decline(name, oid, now_ms=self.now),
                lambda: self.model.decline(name, oid),
            )
        if how == "stale" or not offered:
            assert len(self.model.events) == before

    @precondition(lambda self: bool(self.model.calls))
    @rule(
        data=st.data(),
        by=st.sampled_from(["visitor", "agent"]),
        wrongly=st.sampled_from([False] * 5 + [True]),
    )
    def hang_up(self, data: st.DataObject, by: str, wrongly: bool) -> None:
        """A party of a call hangs up; or a call that is over, or someone not in it, tries to
        (refused, nothing changes)."""
        calls = self.calls_with_party(by)
        if not calls:
            by = "agent" if by == "visitor" else "visitor"
            calls = self.calls_with_party(by)
        if calls and not wrongly:
            cid = self.pick(data, calls, "call")
            c = self.model.calls[cid]
            party = c.visitor if by == "visitor" else c.agent
        else:
            cid = self.pick(data, [str(i) for i in range(1, self.model.fence + 1)], "call")
            parties = list(self.model.visitors) if by == "visitor" else list(self.model.agents)
            party = self.pick(data, parties, "party")
            c = self.model.calls.get(cid)
            if c is not None and party == (c.visitor if by == "visitor" else c.agent):
                party += "-not"
        before = len(self.model.events)
        self.both(
            lambda: self.desk.end_call(cid, by, party, now_ms=self.now),  # type: ignore[arg-type]
            lambda: self.model.hangup(cid, by, party),
        )
        if not calls or wrongly:
            assert len(self.model.events) == before

    @precondition(lambda self: bool(self.calls_with_party("visitor")))
    @rule(data=st.data(), how=st.sampled_from(["visitor", "agent", "agent_offline"]))
    def lease_renewal_races_call_end(self, data: st.DataObject, how: str) -> None:
        """A call ends (the visitor or the agent hangs up, or the agent goes Offline) and the
        visitor's server renews the visitor's lease before it has read the ``call_ended``
        published for them (another server ended the call, or pub/sub lags or loses it).
        The renewal finds the lease gone, gives it no new life and changes nothing else;
        on the visitor's channel, ``_lease_gone`` comes behind the ``call_ended``, and the
        call record says how the call ended: what the server tells a visitor who still
        seems to be in the call when ``_lease_gone`` arrives."""
        cid = self.pick(data, self.calls_with_party("visitor"), "call")
        c = self.model.calls[cid]
        vid, name = c.visitor, c.agent
        if how != "visitor" and not self.model.agents[name].connected:
            how = "visitor"
        pubsub = self.run(Listener.open(self.redis, self.desk.keys.visitor_channel(vid)))
        try:
            assert self._next_published(pubsub)["type"] == "subscribe"
            if how == "agent_offline":
                info = self.model.agents[name].info
                self.both(
                    lambda: self.desk.set_agent_status(info, "offline", now_ms=self.now),
                    lambda: self.model.agent_status(name, "offline"),
                )
            else:
                party = vid if how == "visitor" else name
                self.both(
                    lambda: self.desk.end_call(cid, how, party, now_ms=self.now),  # type: ignore[arg-type]
                    lambda: self.model.hangup(cid, how, party),
                )
            before = len(self.model.events)
            visitors = [*self.connected_visitors(), vid]  # the server still holds the socket
            agents = [a for a in self.connected_agents() if self.model.agents[a].state != "offline"]
            gone, _ = self.both(
                lambda: self.desk.heartbeat(visitors, agents, now_ms=self.now),
                lambda: self.model.heartbeat(visitors, agents),
            )
            assert vid in gone and "v:" + vid not in self.model.leases
            assert len(self.model.events) == before
            published = [self._next_published(pubsub) for _ in range(2)]
        finally:
            self.run(pubsub.aclose())  # type: ignore[no-untyped-call]
        ended, barrier = (json.loads(m["data"]) for m in published)
        record = self.model.records[cid]
        assert ended == {
            "type": "call_ended",
            "call_id": cid,
            "reason": record["end_reason"],
            "by": record["ended_by"],
        }
        assert barrier == {"type": "_lease_gone"}

    def _next_published(self, pubsub: Any) -> dict[str, Any]:
        """The next message on a test subscription (the scripts publish synchronously, so
        it is on its way already)."""
        for _ in range(100):
            message = self.run(pubsub.get_message(timeout=0.1))
            if message is not None:
                return dict(message)
        raise AssertionError("nothing published")

    @precondition(lambda self: bool(self.connected_agents("wrap_up")))
    @rule(
        data=st.data(),
        action=st.sampled_from(["done", "done", "extend"]),
        wrongly=st.sampled_from([False] * 5 + [True]),
    )
    def wrapup(self, data: st.DataObject, action: str, wrongly: bool) -> None:
        """Finish (or extend) the wrap-up; or an agent not in wrap-up tries (refused)."""
        others = [a for a in self.connected_agents() if self.model.agents[a].state != "wrap_up"]
        in_wrapup = self.connected_agents("wrap_up")
        name = self.pick(data, others if wrongly and others else in_wrapup, "agent")
        self.both(
            lambda: self.desk.wrapup(name, action, 10_000, now_ms=self.now),  # type: ignore[arg-type]
            lambda: self.model.wrapup(name, action, 10_000),
        )

    @precondition(lambda self: bool(self.connected_agents("in_call")))
    @rule(data=st.data(), same_queue=st.sampled_from([False, False, False, True]))
    def transfer(self, data: st.DataObject, same_queue: bool) -> None:
        """A blind transfer to the other queue (or, refused, to the call's own queue)."""
        name = self.pick(data, self.connected_agents("in_call"), "agent")
        cid = self.model.agents[name].call
        assert cid is not None
        here = self.model.calls[cid].queue
        target = here if same_queue else next(q for q in QUEUES if q != here)
        self.both(
            lambda: self.desk.transfer(name, cid, target, now_ms=self.now),
            lambda: self.model.transfer(name, cid, target),
        )
        if not same_queue:
            # At the head of the target line, unless already offered to someone there.
            v = self.model.visitors[self.model.records[cid]["visitor_id"]]
            if v.state == "waiting":
                assert self.model.line(target)[0] is v

    @precondition(lambda self: not all(a.connected for a in self.model.agents.values()))
    @rule(data=st.data())
    def agent_reconnects(self, data: st.DataObject) -> None:
        """A silent console comes back and heartbeats: renewed if still leased, else told
        it has no lease (it was made Offline)."""
        silent = [a.name for a in self.model.agents.values() if not a.connected]
        name = self.pick(data, silent, "agent")
        self.both(
            lambda: self.desk.heartbeat([], [name], now_ms=self.now),
            lambda: self.model.heartbeat([], [name]),
        )
        self.model.agents[name].connected = True

    # Time ---------------------------------------------------------------------------------------

    @rule(ms=STEP_MS, reap=st.sampled_from([True, True, True, False]))
    def advance(self, ms: int, reap: bool) -> None:
        """Time passes: connected parties keep heartbeating; the reaper runs (or lags)."""
        self._tick(ms, reap)

    def _tick(self, ms: int, reap: bool) -> None:
        self.model.now += ms
        visitors = self.connected_visitors()
        agents = [a for a in self.connected_agents() if self.model.agents[a].state != "offline"]
        self.both(
            lambda: self.desk.heartbeat(visitors, agents, now_ms=self.now),
            lambda: self.model.heartbeat(visitors, agents),
        )
        if reap:
            self.both(lambda: self.desk.reap(now_ms=self.now), self.model.reap)

    # Invariants ------------------------------------------------------------------------------

    async def _read_state(self) -> dict[str, Any]:
        """Every key of the desk, in one round trip."""
        k = self.desk.keys
        hashes = ("visitors", "agents", "offers", "calls", "call_records", "callbacks")
        zsets = ("leases", "delayed", "wrapups", "offer_deadlines", "callbacks_open")
        pipe = self.redis.pipeline(transaction=False)
        for name in hashes:
            pipe.hgetall(getattr(k, name))
        pipe.hgetall(k.handle_times)
        pipe.hgetall(k.round_robin)
        for name in zsets:
            pipe.zrange(getattr(k, name), 0, -1, withscores=True)
        pipe.get(k.fence)
        pipe.xrange(k.events, min="(" + self.last_event_id)
        for q in QUEUES:
            pipe.zrange(k.queue_key(q, "waiting"), 0, -1, withscores=True)
            pipe.zrange(k.queue_key(q, "idle"), 0, -1, withscores=True)
            pipe.smembers(k.queue_key(q, "serving"))
            pipe.zrange(k.queue_key(q, "places"), 0, -1, withscores=True)
        rows = iter(await pipe.execute())

        state: dict[str, Any] = {}
        for name in hashes:
            state[name] = {
                _text(key): json.loads(_text(value)) for key, value in next(rows).items()
            }
        state["handle_times"] = {_text(q): float(v) for q, v in next(rows).items()}
        state["round_robin"] = {_text(q): _text(v) for q, v in next(rows).items()}
        for name in zsets:
            state[name] = [(_text(m), score) for m, score in next(rows)]
        state["fence"] = int(next(rows) or 0)
        state["new_events"] = [
            (_text(eid), {_text(a): _text(b) for a, b in fields.items()})
            for eid, fields in next(rows)
        ]
        state["waiting"], state["idle"], state["serving"], state["places"] = {}, {}, {}, {}
        for q in QUEUES:
            state["waiting"][q] = [(_text(m), score) for m, score in next(rows)]
            state["idle"][q] = [(_text(m), score) for m, score in next(rows)]
            state["serving"][q] = {_text(m) for m in next(rows)}
            state["places"][q] = [(_text(m), score) for m, score in next(rows)]
        return state

    @invariant()
    def redis_agrees_with_the_model(self) -> None:
        s = self.run(self._read_state())
        m = self.model
        self._check_structure(s)
        self._check_events(s)

        # Lines, in order, with their scores (those who may be offered now, and everyone with
        # a place); idle lines with idle-since; serving sets.
        for q in QUEUES:
            want_line = [(v.id, float(v.score)) for v in m.line(q)]
            assert s["waiting"][q] == want_line, f"line {q}: redis {s['waiting'][q]}"
            want_places = [(v.id, float(v.score)) for v in m.places(q)]
            assert s["places"][q] == want_places, f"places {q}: redis {s['places'][q]}"
            want_idle = [(a.name, float(a.idle_since or 0)) for a in m.idle(q)]
            assert s["idle"][q] == want_idle, f"idle {q}: redis {s['idle'][q]}, model {want_idle}"
            assert s["serving"][q] == m.serving(q), f"serving {q}: redis {s['serving'][q]}"

        # Visitor records: exactly the active visitors, each where the model has them.
        assert set(s["visitors"]) == {v.id for v in m.active_visitors()}
        for vid, rec in s["visitors"].items():
            v = m.visitors[vid]
            got = {k: rec.get(k) for k in ("state", "queue", "score", "joined", "priority")}
            got.update({k: rec.get(k) for k in ("offer", "call", "transferred_from")})
            got.update({k: rec.get(k) for k in ("max_wait_done", "overflowed_from")})
            got.update({k: rec.get(k) for k in ("away", "conn")})
            want = {
                "state": v.state,
                "queue": v.queue,
                "score": v.score,
                "joined": v.joined,
                "priority": v.priority,
                "offer": v.offer,
                "call": v.call,
                "transferred_from": v.transferred_from,
                "max_wait_done": True if v.max_wait_done else None,
                "overflowed_from": v.overflowed_from,
                "away": True if v.away else None,
                "conn": v.conn,
            }
            assert got == want, f"visitor {vid}: redis {got}, model {want}"

        # Places in line as visitors are told them.
        for v in m.visitors.values():
            got_place = self.run(self.desk.position(v.id))
            assert got_place == (m.position(v.id) if v.active else None), f"position of {v.id}"

        # Agent records.
        assert set(s["agents"]) == {a.name for a in m.agents.values() if a.exists}
        for name, rec in s["agents"].items():
            a = m.agents[name]
            keys = ("state", "offer", "call", "last_call", "ready_at", "idle_since", "missed")
            keys += ("wrapup_until", "reason", "calls", "calls_day")
            got = {k: rec.get(k) for k in keys}
            want = {
                "state": a.state,
                "offer": a.offer,
                "call": a.call,
                "last_call": a.last_call,
                "ready_at": a.ready_at,
                "idle_since": a.idle_since,
                "missed": a.missed,
                "wrapup_until": a.wrapup_until,
                "reason": a.reason,
                "calls": a.calls if a.calls_day is not None else None,
                "calls_day": a.calls_day,
            }
            assert got == want, f"agent {name}: redis {got}, model {want}"

        # Offers (with their deadlines), calls, the fence and the round-robin pointers. The
        # model's offer and call records have the fields of the scripts' records.
        want_offers = {o.id: asdict(o) for o in m.offers.values()}
        assert s["offers"] == want_offers, f"offers: redis {s['offers']}, model {want_offers}"
        assert sorted(s["offer_deadlines"]) == sorted(
            (o.id, float(o.deadline)) for o in m.offers.values()
        )
        want_calls = {c.id: asdict(c) for c in m.calls.values()}
        assert s["calls"] == want_calls, f"calls: redis {s['calls']}, model {want_calls}"
        assert s["fence"] == m.fence
        assert s["round_robin"] == m.round_robin

        # Leases, delays and wrap-ups.
        assert dict(s["leases"]) == {k: float(t) for k, t in m.leases.items()}, (
            f"leases: redis {dict(s['leases'])}, model {m.leases}"
        )
        want_delayed = {a.name: float(a.ready_at) for a in m.agents.values() if a.ready_at}
        assert dict(s["delayed"]) == want_delayed, f"delayed: redis {s['delayed']}"
        want_wrapups = {
            a.name: float(a.wrapup_until or 0) for a in m.agents.values() if a.state == "wrap_up"
        }
        assert dict(s["wrapups"]) == want_wrapups, f"wrap-ups: redis {s['wrapups']}"

        # Callback requests, the open ones oldest first.
        assert s["callbacks"] == m.callbacks, f"callbacks: redis {s['callbacks']}"
        open_ = sorted(
            (cb["created"], cb_id) for cb_id, cb in m.callbacks.items() if cb["state"] == "open"
        )
        assert s["callbacks_open"] == [(cb_id, float(t)) for t, cb_id in open_]

        # Call records and the handle-time averages.
        assert s["call_records"] == m.records, (
            f"call records: redis {s['call_records']}, model {m.records}"
        )
        assert set(s["handle_times"]) == set(m.handle_s)
        for q, value in m.handle_s.items():
            assert s["handle_times"][q] == pytest.approx(value, rel=1e-9)

    def _check_structure(self, s: dict[str, Any]) -> None:
        """Model-independent invariants of the Redis state alone."""
        places: Counter[str] = Counter()
        for q in QUEUES:
            places.update(vid for vid, _ in s["waiting"][q])
        places.update(o["visitor"] for o in s["offers"].values())
        places.update(c["visitor"] for c in s["calls"].values())
        places.update(vid for vid, v in s["visitors"].items() if v.get("away"))
        # Every visitor with a record is in exactly one place (the line, an offer, a call, or
        # away); nobody else is anywhere.
        for vid in s["visitors"]:
            assert places[vid] == 1, f"{vid} is in {places[vid]} places"
        # Places in line: exactly those waiting, away or offered, each in their own queue.
        placed = Counter(vid for q in QUEUES for vid, _ in s["places"][q])
        for vid, v in s["visitors"].items():
            in_place = vid in dict(s["places"][v["queue"]])
            assert in_place == (v["state"] in ("waiting", "offered")), (vid, v["state"])
            assert placed[vid] == (1 if in_place else 0), f"{vid} has {placed[vid]} places"
        assert set(placed) <= set(s["visitors"]), "a place is held by a lost visitor"
        assert set(places) <= set(s["visitors"]), "a line, offer or call holds a lost visitor"
        booked = Counter(o["agent"] for o in s["offers"].values())
        booked.update(c["agent"] for c in s["calls"].values())
        assert all(n == 1 for n in booked.values()), f"double-booked agents: {booked}"
        for oid, o in s["offers"].items():
            v, a = s["visitors"][o["visitor"]], s["agents"][o["agent"]]
            assert v["state"] == "offered" and v["offer"] == oid, (oid, v)
            assert a["state"] == "offered" and a["offer"] == oid, (oid, a)
            assert o["queue"] in a["queues"] and o["queue"] == v["queue"]
        for cid, c in s["calls"].items():
            v, a = s["visitors"][c["visitor"]], s["agents"][c["agent"]]
            assert v["state"] == "in_call" and v["call"] == cid, (cid, v)
            assert a["state"] == "in_call" and a["call"] == cid, (cid, a)
        for vid, v in s["visitors"].items():
            if v["state"] == "waiting" and not v.get("away"):
                assert vid in dict(s["waiting"][v["queue"]]), f"{vid} waits outside its line"
            if v.get("away"):
                assert v["state"] == "waiting", f"{vid} is away while {v['state']}"
        for name, a in s["agents"].items():
            if a["state"] in ("offered", "in_call"):
                assert booked[name] == 1, f"{name} is {a['state']} in nothing"
            for q in a["queues"]:
                in_idle = name in dict(s["idle"][q])
                assert in_idle == (a["state"] == "available" and not a.get("ready_at")), name
        # Leases: held by exactly the visitors still here and the agents not Offline.
        leased = {member for member, _ in s["leases"]}
        assert {m[2:] for m in leased if m.startswith("v:")} == set(s["visitors"])
        online = {name for name, a in s["agents"].items() if a["state"] != "offline"}
        assert {m[2:] for m in leased if m.startswith("a:")} == online
        # Order: priority, then join time (transferred visitors go to the head on arrival).
        for q in QUEUES:
            plain = [s["visitors"][vid] for vid, _ in s["places"][q]]
            plain = [v for v in plain if not v.get("transferred_from")]
            keys = [(-v["priority"], v["joined"], v["id"]) for v in plain]
            assert keys == sorted(keys), f"line {q} out of order: {keys}"

    def _check_events(self, s: dict[str, Any]) -> None:
        new = s["new_events"]
        if new:
            self.last_event_id = new[-1][0]
        self.seen_events.extend(fields for _eid, fields in new)
        want = self.model.events[self.checked_events :]
        got = [fields for _eid, fields in new]
        if got != want:
            lines = ["event log differs from the model", "redis:"]
            lines += [f"  {e}" for e in got]
            lines += ["model:"] + [f"  {e}" for e in want]
            lines += ["model's offer choices:"] + [f"  {n}" for n in self.model.offer_notes[-8:]]
            raise AssertionError("\n".join(lines))
        self.checked_events = len(self.model.events)

        # Counts by kind; every visitor joined once and ended at most once (left or lease ran
        # out: "abandoned"; or their call ended, except by a transfer, which keeps them here).
        kinds = Counter(e["event"] for e in self.seen_events)
        assert kinds == Counter(e["event"] for e in self.model.events)
        joined: Counter[str] = Counter()
        ends: Counter[str] = Counter()
        for e in self.seen_events:
            if "visitor" not in e:
                continue
            vid = e["visitor"]
            if e["event"] == "joined":
                joined[vid] += 1
            assert joined[vid] == 1, f"{vid} joined {joined[vid]} times before {e}"
            assert ends[vid] == 0, f"an event after {vid} ended: {e}"
            if e["event"] == "abandoned" or (
                e["event"] == "ended" and e["reason"] != "transferred"
            ):
                ends[vid] += 1
        for v in self.model.visitors.values():
            assert joined[v.id] == 1, f"{v.id} joined {joined[v.id]} times"
            assert ends[v.id] == (0 if v.active else 1), f"{v.id}: {ends[v.id]} terminal events"

    @invariant()
    def statistics_agree_with_the_model(self) -> None:
        stats = self.run(queue_stats(self.desk, T0, self.now, SL_THRESHOLD_S, self.now))
        m = self.model
        for q in QUEUES:
            got, want = stats[q], m.stats[q]
            counts = (
                "offered",
                "answered",
                "abandoned",
                "answered_within",
                "abandoned_within",
                "offers_made",
                "offers_declined",
                "offers_timed_out",
                "transferred_out",
            )
            for name in counts:
                assert getattr(got, name) == want.counts[name], f"{q}.{name}"
            assert got.offers_accepted == want.counts["answered"]
            assert got.callbacks == want.counts["callbacks"], f"{q}.callbacks"

            def mean_s(values: list[int]) -> float | None:
                return round(sum(values) / len(values) / 1000, 3) if values else None

            def close(a: float | None, b: float | None) -> bool:
                return a == b or (a is not None and b is not None and abs(a - b) < 0.0015)

            assert close(got.avg_wait_s, mean_s(want.waits_ms)), f"{q}.avg_wait_s"
            longest = round(max(want.waits_ms) / 1000, 3) if want.waits_ms else None
            assert close(got.longest_wait_s, longest), f"{q}.longest_wait_s"
            assert close(got.avg_talk_s, mean_s(want.talks_ms)), f"{q}.avg_talk_s"
            assert close(got.avg_wrapup_s, mean_s(want.wrapups_ms)), f"{q}.avg_wrapup_s"
            answered, abandoned = want.counts["answered"], want.counts["abandoned"]
            sl = round(want.counts["answered_within"] / answered, 4) if answered else None
            assert close(got.service_level, sl), f"{q}.service_level"
            both = answered + abandoned
            sl2 = (
                round((want.counts["answered_within"] + want.counts["abandoned_within"]) / both, 4)
                if both
                else None
            )
            assert close(got.service_level_2, sl2), f"{q}.service_level_2"
            # Live: the line (not counting offered visitors) and agents by state.
            line = [v for v in m.places(q) if v.state == "waiting"]  # away ones included
            assert got.waiting_now == len(line)
            longest_now = round((self.now - min(v.joined for v in line)) / 1000, 3) if line else 0
            assert close(got.longest_wait_now_s, longest_now)
            by_state = Counter(
                a.state for a in m.agents.values() if a.exists and q in a.info.queues
            )
            assert got.agents == dict(by_state), f"{q}.agents: {got.agents} vs {by_state}"


@dataclass(frozen=True)
class Target:
    """Where a machine runs: a new client of the test's Redis, and a new desk on it."""

    client: Callable[[], Any]
    desk_name: Callable[[], str]
    replica_wait_ms: int = 0


#: The model runs on one Redis and on a Redis Cluster.
CLUSTER_TOO = True


# Passing takes ~15 s. A failure is shrunk for up to 300 s (Hypothesis' own limit) before the
# minimal failing sequence is printed: allow that rather than the suite-wide per-test limit.
@pytest.mark.timeout(600)
def test_queue_matches_the_model(redis_mode: str, request: pytest.FixtureRequest) -> None:
    examples = EXAMPLES
    if redis_mode == "cluster":
        # The scripts' rules do not change with the mode: a quarter of the examples shows
        # them holding through the cluster client, WAIT after each script and SPUBLISH.
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        target = Target(
            lambda: RedisCluster.from_url(cluster.url),
            lambda: cluster.desk_on(1, stem="m" + uuid.uuid4().hex[:12]),
            CLUSTER_WAIT_MS,
        )
        examples = max(1, EXAMPLES // 4)
    else:
        url = request.getfixturevalue("redis_url")
        target = Target(lambda: Redis.from_url(url), lambda: "m" + uuid.uuid4().hex[:12])
    run_state_machine_as_test(
        lambda: QueueMachine(target),
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=IN_CI,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
