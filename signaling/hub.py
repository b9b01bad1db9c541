"""Cross-instance delivery: every message for a party travels through Redis pub/sub.

One :class:`Hub` per server process holds one pub/sub connection, subscribes to the channels
of the sockets this process holds, and hands each message to the local handlers. Redis
pub/sub is at-most-once and a dropped connection loses its subscriptions, so the hub runs a
reconnect loop that resubscribes everything and then calls the ``on_resync`` callbacks, which
re-read state from Redis. ``ready`` says whether the subscriptions are live (``/readyz``).

On a Redis Cluster (queue/connection.py) the hub uses sharded pub/sub: every channel of a desk
carries the desk's hash tag, so all of them live on one slot, and the hub holds one
connection to the primary that serves it (``SSUBSCRIBE``; the scripts ``SPUBLISH`` there).
When that primary fails or is failed over, the connection drops or the server takes the
subscriptions back (a ``sunsubscribe`` the hub did not ask for): the hub asks the cluster
where the slot lives now, subscribes there, and resynchronises as after any reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError

from humandesk.queue.connection import RedisClient, is_cluster, publish
from humandesk.signaling.outage import UNAVAILABLE, Outage

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

#: How long after a reconnect the hub counts as recovering (see :attr:`Hub.recovering`).
RECOVERY_S = 10.0
#: Longest wait between reconnects. On a cluster, where the slot is found again by asking
#: any node, it is shorter: a failover takes the node timeout and about a second more, and
#: the hub should be back soon after, not up to 5 s later.
MAX_DELAY_S = 5.0
CLUSTER_MAX_DELAY_S = 1.0


#: What ends a pub/sub connection without being a bug: Redis unreachable, or a socket error.
RECONNECT: tuple[type[BaseException], ...] = (*UNAVAILABLE, OSError)


class SlotMoved(RedisConnectionError):
    """The node took the desk's subscriptions back: its slot is served elsewhere now."""


class Hub:
    """Subscribes channels for local sockets and dispatches their messages."""

    def __init__(
        self, redis: RedisClient, outage: Outage | None = None, *, slot_key: str = ""
    ) -> None:
        """``slot_key``: on a cluster, a key of the desk (its channels share its slot)."""
        self.redis = redis
        self.outage = outage or Outage()  # a lost connection is logged once per outage
        self.sharded = is_cluster(redis)
        if self.sharded and not slot_key:
            raise ValueError("a hub on a cluster needs the desk's slot key")
        self._slot_key = slot_key
        # A pub/sub connection needs one subscription before it can be read.
        self._keepalive = slot_key + "hub" if self.sharded else "hd:hub:keepalive"
        self._node_client: Redis | None = None  # on a cluster: the slot's primary
        self.node = ""  # on a cluster: host:port of the node the hub listens on
        self._reconnected_at: float | None = None  # monotonic time of the last resubscribe
        self._handlers: dict[str, list[Handler]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._resync: list[Callable[[], None]] = []
        self._pending: set[str] = set()
        self._flush_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def on_resync(self, callback: Callable[[], None]) -> None:
        """Registers a callback run after every reconnect of the pub/sub connection."""
        self._resync.append(callback)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub")
        await asyncio.wait_for(self._ready.wait(), timeout=15)

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._flush_task) if t is not None]
        for task in tasks:
            task.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=2) if tasks else (set(), set())
        pubsub = self._pubsub
        if pending and pubsub is not None and pubsub.connection is not None:
            # A read that does not notice the cancellation ends when its connection does.
            log.warning("pub/sub reader did not stop; closing its connection")
            with contextlib.suppress(Exception):
                await pubsub.connection.disconnect()
            await asyncio.wait(pending, timeout=2)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2)  # type: ignore[no-untyped-call]

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Publishes ``message``; returns how many subscribed connections (server processes
        listening for that party) it reached."""
        return await publish(self.redis, channel, json.dumps(message))

    @property
    def recovering(self) -> bool:
        """Whether this hub reconnected a short while ago: other processes' hubs, which
        lost their connections at the same moment (a Redis restart, a failover), may still be
        resubscribing, and a message published now can reach nobody."""
        at = self._reconnected_at
        return at is not None and time.monotonic() - at < RECOVERY_S

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Adds a handler; the channel is subscribed (in a batch, soon) if it is new."""
        handlers = self._handlers.setdefault(channel, [])
        handlers.append(handler)
        if len(handlers) == 1:
            self._pending.add(channel)
            self._schedule_flush()

    async def subscribe_now(self, channel: str, handler: Handler) -> None:
        """Like :meth:`subscribe`, but the SUBSCRIBE has been written to Redis on return.

        redis-py does not wait for the reply. That is enough where this is used: the first
        message for a new visitor needs an agent's answer to an offer made after this
        returns, by which time Redis has long run the SUBSCRIBE.
        """
        self.subscribe(channel, handler)
        await self._flush()

    def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        with contextlib.suppress(ValueError):
            handlers.remove(handler)
        if not handlers:
            del self._handlers[channel]
            self._pending.add(channel)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        """Sends the pending SUBSCRIBE/UNSUBSCRIBE commands in batches."""
        pubsub = self._pubsub
        if pubsub is None or not self.ready:
            return  # the reconnect loop subscribes everything
        pending, self._pending = self._pending, set()
        add = [c for c in pending if c in self._handlers]
        drop = [c for c in pending if c not in self._handlers]
        try:
            for i in range(0, len(add), 500):
                await self._subscribe(pubsub, add[i : i + 500])
            for i in range(0, len(drop), 500):
                await self._unsubscribe(pubsub, drop[i : i + 500])
        except RECONNECT:
            self._pending |= set(pending)

    async def _subscribe(self, pubsub: PubSub, channels: list[str]) -> None:
        if self.sharded:
            await pubsub.ssubscribe(*channels)
        else:
            await pubsub.subscribe(*channels)

    async def _unsubscribe(self, pubsub: PubSub, channels: list[str]) -> None:
        if self.sharded:
            await pubsub.sunsubscribe(*channels)
        else:
            await pubsub.unsubscribe(*channels)

    async def _open(self, refresh: bool) -> PubSub:
        """A pub/sub connection: to the one Redis, or to the primary of the desk's slot (asking
        the cluster where that is now when ``refresh``, i.e. after a lost connection)."""
        if not is_cluster(self.redis):
            return self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await self.redis.initialize()  # once: the client learns the slots on first use
            if refresh:
                await self.redis.nodes_manager.initialize()
            node = self.redis.get_node_from_key(self._slot_key)
        except RedisClusterException as exc:  # no node could be asked, or none serves it
            raise RedisConnectionError(str(exc)) from exc
        if node is None:
            raise RedisConnectionError("no node serves the desk's slot")
        kwargs = node.connection_kwargs
        self._node_client = Redis(
            host=node.host,
            port=int(node.port),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            socket_connect_timeout=kwargs.get("socket_connect_timeout") or 5,
            socket_keepalive=True,
        )
        self.node = node.name
        # The slot map may be a moment behind a failover: a node that is no longer a primary
        # would take subscriptions its new primary's messages never reach.
        role = await self._node_client.role()
        kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
        if kind != "master":
            await self._close(None)
            raise SlotMoved(f"Redis node {node.name} is a {kind} now")
        # Subscribe confirmations are read: a `sunsubscribe` the hub did not ask for means
        # the slot has moved.
        return self._node_client.pubsub(ignore_subscribe_messages=False)

    async def _close(self, pubsub: PubSub | None) -> None:
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        client, self._node_client = self._node_client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _run(self) -> None:
        delay = 0.1
        refresh = False
        max_delay = CLUSTER_MAX_DELAY_S if self.sharded else MAX_DELAY_S
        while True:
            self._ready.clear()
            pubsub: PubSub | None = None
            try:
                pubsub = await self._open(refresh)
                await pubsub.ping()
                channels = list(self._handlers)
                for i in range(0, len(channels), 500):
                    await self._subscribe(pubsub, channels[i : i + 500])
                if not channels:
                    await self._subscribe(pubsub, [self._keepalive])
                self._pubsub = pubsub
                # Channels added or dropped while the subscribes above were under way stay
                # pending, and are flushed now that the connection is ready.
                self._pending -= set(channels)
                self._ready.set()
                if self._pending:
                    self._schedule_flush()
                if refresh:
                    self._reconnected_at = time.monotonic()
                    log.info(
                        "pub/sub resubscribed %d channel(s)%s",
                        len(channels),
                        f" on Redis node {self.node}" if self.sharded else "",
                    )
                delay = 0.1
                for callback in self._resync:
                    callback()
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except SlotMoved as exc:
                log.warning("%s; following the desk's slot", exc)
                delay = 0.05
            except RECONNECT as exc:
                self.outage.failed(exc)
            except ResponseError as exc:
                if not str(exc).startswith("MOVED"):
                    log.exception("pub/sub reader failed; reconnecting")
                else:  # subscribed where the slot map said, a moment before it changed
                    log.warning("%s; following the desk's slot", exc)
                    delay = 0.05
            except Exception:
                log.exception("pub/sub reader failed; reconnecting")
            finally:
                self._ready.clear()
                self._pubsub = None
                await self._close(pubsub)
            refresh = True
            await asyncio.sleep(delay)
            delay = min(max(delay, 0.05) * 2, max_delay)

    async def _read(self, pubsub: PubSub) -> None:
        pinger = asyncio.create_task(self._ping(pubsub))
        try:
            while True:
                if pinger.done():
                    pinger.result()  # re-raises the connection error that ended it
                # A blocking read: redis-py's timed reads can swallow a task cancellation.
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message.get("type")
                if kind in ("message", "smessage"):
                    self._dispatch(message)
                elif kind == "sunsubscribe" and self._taken_back(message["channel"]):
                    raise SlotMoved(f"Redis node {self.node} no longer serves the desk's slot")
        finally:
            pinger.cancel()

    def _taken_back(self, channel: bytes | str) -> bool:
        """Whether the server dropped a subscription the hub still wants (the slot moved),
        rather than confirming one the hub dropped."""
        name = channel.decode() if isinstance(channel, bytes) else channel
        return (name in self._handlers or name == self._keepalive) and name not in self._pending

    async def _ping(self, pubsub: PubSub) -> None:
        """Detects a silently dead connection: a PING that is not answered in time fails."""
        while True:
            await asyncio.sleep(5.0)
            try:
                await asyncio.wait_for(pubsub.ping(), timeout=5.0)
            except Exception:
                # Breaks the blocked reader out of its read, into the reconnect loop.
                if pubsub.connection is not None:
                    await pubsub.connection.disconnect()
                raise

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        try:
            payload = json.loads(message["data"])
        except ValueError:
            log.warning("dropped a non-JSON message on %s", channel)
            return
        for handler in list(handlers):
            try:
                handler(payload)
            except Exception:
                log.exception("handler for %s failed", channel)
