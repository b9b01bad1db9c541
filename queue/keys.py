"""Every Redis key and channel name humandesk uses, in one place.

All names of one desk share the hash tag ``{desk}``, so every script touches a single
Redis Cluster slot. Scripts receive their keys in ``KEYS`` in the order of
:data:`STATIC_KEYS`, followed by the :data:`QUEUE_KEYS` of each queue of the desk.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DeskKeys:
    """Names of one desk's keys and channels."""

    desk: str

    @property
    def prefix(self) -> str:
        return f"hd:{{{self.desk}}}:"

    def key(self, name: str) -> str:
        return self.prefix + name

    def queue_key(self, queue: str, name: str) -> str:
        return f"{self.prefix}q:{queue}:{name}"

    def script_keys(self, queues: list[str]) -> list[str]:
        """The ``KEYS`` list every queue script receives."""
        keys = [self.key(name) for name in STATIC_KEYS]
        for queue in queues:
            keys.extend(self.queue_key(queue, name) for name in QUEUE_KEYS)
        return keys

    @property
    def queues(self) -> str:
        """SET of the desk's queue names."""
        return self.key("queues")

    @property
    def accounts(self) -> str:
        """HASH agent name -> JSON account (display name, queues, password hash)."""
        return self.key("accounts")

    def login_failures(self, kind: str, who: str) -> str:
        """STRING count of failed logins for an account at an address (``kind`` "account",
        ``who`` "name@address") or from an address ("address"); it expires with the
        throttling window."""
        return f"{self.prefix}login-failures:{kind}:{who}"

    def limit(self, kind: str, who: str) -> str:
        """HASH token bucket of one abuse limit (``kind`` "join", "callback", ...) for one
        client address; it expires once full again (see queue/limits.py)."""
        return f"{self.prefix}limit:{kind}:{who}"

    def waiting_by_address(self, address: str) -> str:
        """ZSET visitor id -> reserved at (ms): the places in line one address holds."""
        return f"{self.prefix}addr-waiting:{address}"

    @property
    def audit(self) -> str:
        """STREAM, capped: who signed in, changed accounts, exported or erased what, when."""
        return self.key("audit")

    @property
    def anonymous_events(self) -> str:
        """ZSET JSON event -> its time (ms): events of erased visitors, without any ids, so
        that statistics keep counting them (see queue/privacy.py)."""
        return self.key("anonymous_events")

    @property
    def reaper_lease(self) -> str:
        """STRING held with ``SET NX PX`` by the instance that runs the reaper."""
        return self.key("reaper")

    # Pub/sub channels. Scripts publish on these too; their names are built in Lua from
    # the prefix, so keep the two in step (see scripts/lib.lua).
    def visitor_channel(self, visitor_id: str) -> str:
        return f"{self.prefix}to:v:{visitor_id}"

    def agent_channel(self, agent: str) -> str:
        return f"{self.prefix}to:a:{agent}"

    def queue_channel(self, queue: str) -> str:
        return f"{self.prefix}queue:{queue}"

    @property
    def queues_channel(self) -> str:
        """Told when a queue is added to the desk or removed from it."""
        return f"{self.prefix}queues-changed"

    @property
    def callbacks_channel(self) -> str:
        return f"{self.prefix}callbacks"
