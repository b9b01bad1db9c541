"""Every Redis key and channel name humandesk uses, in one place.

All names of one desk share the hash tag ``{desk}``, so every script touches a single
Redis Cluster slot. Names are computed once per desk (``keys.visitors``, ``keys.queue(q).
waiting``), as saq and arq do. Scripts receive their keys in ``KEYS`` in the order of
:data:`STATIC_KEYS`, followed by the :data:`QUEUE_KEYS` of each queue of the desk; the Lua
table that names them (``K.visitors``, ``QK[q].waiting``) and the channel prefixes the scripts
publish on are generated from this module (:func:`lua_prelude`), never written by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

__all__ = ["NAME_RE", "QUEUE_KEYS", "STATIC_KEYS", "DeskKeys", "QueueKeys", "lua_prelude"]

#: What a queue or an agent may be called: both end up in key and channel names.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")

#: The desk-wide keys, in the order scripts receive them in ``KEYS``.
STATIC_KEYS: tuple[str, ...] = (
    "visitors",  # HASH visitor id -> JSON record
    "agents",  # HASH agent name -> JSON runtime record
    "offers",  # HASH offer id -> JSON offer (a reservation)
    "offer_deadlines",  # ZSET offer id -> deadline (ms)
    "calls",  # HASH call id -> JSON call
    "leases",  # ZSET "v:<id>" / "a:<name>" -> lease expiry (ms)
    "delayed",  # ZSET agent -> time the agent may be offered again (ms)
    "fence",  # STRING, INCR gives fence tokens (offer ids)
    "events",  # STREAM, append-only event log
    "handle_times",  # HASH queue -> average handle time (s), an EWMA
    "queue_config",  # HASH queue -> JSON rules (timeouts, wrap-up, strategy, max wait, ...)
    "wrapups",  # ZSET agent -> end of their wrap-up (ms)
    "call_records",  # HASH call id -> JSON record (who, waits, talk, notes, rating)
    "records_by_time",  # ZSET call id -> time the call was answered (ms)
    "callbacks",  # HASH callback id -> JSON callback request
    "callbacks_open",  # ZSET open callback id -> time requested (ms)
    "round_robin",  # HASH queue -> name of the agent offered last (round-robin strategy)
)

#: Keys per queue, in the order scripts receive them after the static keys.
QUEUE_KEYS: tuple[str, ...] = (
    "waiting",  # ZSET visitor id -> join time (ms): the line
    "idle",  # ZSET agent -> idle since (ms): Available agents with no offer
    "serving",  # SET agents Available, Offered or In call for the queue
    "places",  # ZSET every visitor with a place in line: waiting, offered or away (positions)
)

#: Channel prefixes (after the desk's prefix): to one visitor, to one agent, about a queue.
TO_VISITOR, TO_AGENT, ABOUT_QUEUE = "to:v:", "to:a:", "queue:"


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue of a desk (see :data:`QUEUE_KEYS`)."""

    waiting: str
    idle: str
    serving: str
    places: str


@dataclass(frozen=True)
class DeskKeys:
    """Names of one desk's keys and channels, computed once."""

    desk: str
    prefix: str = field(init=False)
    # The static keys (STATIC_KEYS), in their order.
    visitors: str = field(init=False)
    agents: str = field(init=False)
    offers: str = field(init=False)
    offer_deadlines: str = field(init=False)
    calls: str = field(init=False)
    leases: str = field(init=False)
    delayed: str = field(init=False)
    fence: str = field(init=False)
    events: str = field(init=False)
    handle_times: str = field(init=False)
    queue_config: str = field(init=False)
    wrapups: str = field(init=False)
    call_records: str = field(init=False)
    records_by_time: str = field(init=False)
    callbacks: str = field(init=False)
    callbacks_open: str = field(init=False)
    round_robin: str = field(init=False)
    # Keys no script receives.
    queues: str = field(init=False)  # SET of the desk's queue names
    accounts: str = field(init=False)  # HASH agent name -> JSON account
    #: STREAM, capped: who signed in, changed accounts, exported or erased what, when.
    audit: str = field(init=False)
    #: ZSET JSON event -> its time (ms): events of erased visitors, without any ids, so
    #: that statistics keep counting them (see queue/privacy.py).
    anonymous_events: str = field(init=False)
    reaper_lease: str = field(init=False)  # STRING held (SET NX PX) by the reaper's instance
    # Channels.
    queues_channel: str = field(init=False)  # a queue was added to the desk or removed
    callbacks_channel: str = field(init=False)  # a callback request was added or closed

    def __post_init__(self) -> None:
        prefix = f"hd:{{{self.desk}}}:"
        names = {name: prefix + name for name in STATIC_KEYS}
        names |= {
            "prefix": prefix,
            "queues": prefix + "queues",
            "accounts": prefix + "accounts",
            "audit": prefix + "audit",
            "anonymous_events": prefix + "anonymous_events",
            "reaper_lease": prefix + "reaper",
            "queues_channel": prefix + "queues-changed",
            "callbacks_channel": prefix + "callbacks",
        }
        for name, value in names.items():
            object.__setattr__(self, name, value)

    def queue(self, queue: str) -> QueueKeys:
        """The keys of one queue."""
        return QueueKeys(*(self.queue_key(queue, name) for name in QUEUE_KEYS))

    def queue_key(self, queue: str, name: str) -> str:
        return f"{self.prefix}q:{queue}:{name}"

    def script_keys(self, queues: list[str]) -> list[str]:
        """The ``KEYS`` list every queue script receives."""
        keys = [self.prefix + name for name in STATIC_KEYS]
        for queue in queues:
            keys.extend(self.queue_key(queue, name) for name in QUEUE_KEYS)
        return keys

    def login_failures(self, kind: str, who: str) -> str:
        """STRING count of sign-in attempts for an account at an address (``kind``
        "account", ``who`` "name@address") or from an address ("address"); it expires with
        the throttling window."""
        return f"{self.prefix}login-failures:{kind}:{who}"

    def limit(self, kind: str, who: str) -> str:
        """HASH token bucket of one abuse limit (``kind`` "join", "callback", ...) for one
        client address; it expires once full again (see queue/limits.py)."""
        return f"{self.prefix}limit:{kind}:{who}"

    def waiting_by_address(self, address: str) -> str:
        """ZSET visitor id -> reserved at (ms): the places in line one address holds."""
        return f"{self.prefix}addr-waiting:{address}"

    def visitor_channel(self, visitor_id: str) -> str:
        return f"{self.prefix}{TO_VISITOR}{visitor_id}"

    def agent_channel(self, agent: str) -> str:
        return f"{self.prefix}{TO_AGENT}{agent}"

    def queue_channel(self, queue: str) -> str:
        return f"{self.prefix}{ABOUT_QUEUE}{queue}"


@cache
def lua_prelude(publish: str = "PUBLISH") -> str:
    """The Lua that names the scripts' keys (``K``, ``NSTATIC``, ``QUEUE_KEY_NAMES``) and
    channel prefixes, from the tables above: the scripts never count ``KEYS`` by hand.

    ``publish`` is the command the scripts publish with (``PUBLISH``, or ``SPUBLISH`` on a
    cluster: queue/connection.py). It is chosen once per client, so a script's source, and
    with it its SHA, differs between the two kinds and the hot path never asks which."""
    entries = ", ".join(f"{name} = KEYS[{i}]" for i, name in enumerate(STATIC_KEYS, start=1))
    queue_names = ", ".join(f"'{name}'" for name in QUEUE_KEYS)
    return (
        "-- Generated from queue/keys.py: the KEYS of every queue script, by name.\n"
        f"local K = {{ {entries} }}\n"
        f"local NSTATIC = {len(STATIC_KEYS)}\n"
        f"local QUEUE_KEY_NAMES = {{ {queue_names} }}\n"
        f"local PREFIX = string.sub(KEYS[1], 1, #KEYS[1] - #'{STATIC_KEYS[0]}')\n"
        f"local TO_VISITOR, TO_AGENT, ABOUT_QUEUE = '{TO_VISITOR}', '{TO_AGENT}', "
        f"'{ABOUT_QUEUE}'\n"
        "local CALLBACKS_CHANNEL = PREFIX .. 'callbacks'\n"
        f"local PUBLISH = '{publish}'\n"
    )
