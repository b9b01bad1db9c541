"""Cross-instance delivery: every message for a party travels through Redis pub/sub.

One :class:`Hub` per server process holds one pub/sub connection, subscribes to the channels
of the sockets this process holds, and hands each message to the local handlers. Redis
pub/sub is at-most-once and a dropped connection loses its subscriptions, so the hub runs a
reconnect loop that resubscribes everything and then calls the ``on_resync`` callbacks, which
re-read state from Redis. ``ready`` says whether the subscriptions are live (``/readyz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from humandesk.signaling.outage import Outage

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


class Hub:
    """Subscribes channels for local sockets and dispatches their messages."""

    def __init__(self, redis: Redis, outage: Outage | None = None) -> None:
        self.redis = redis
        self.outage = outage or Outage()  # a lost connection is logged once per outage
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

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self.redis.publish(channel, json.dumps(message))

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
                await pubsub.subscribe(*add[i : i + 500])
            for i in range(0, len(drop), 500):
                await pubsub.unsubscribe(*drop[i : i + 500])
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._pending |= set(pending)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            self._ready.clear()
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.ping()
                channels = list(self._handlers)
                for i in range(0, len(channels), 500):
                    await pubsub.subscribe(*channels[i : i + 500])
                if not channels:
                    # A pub/sub connection needs one subscription before it can be read.
                    await pubsub.subscribe("hd:hub:keepalive")
                self._pubsub = pubsub
                self._pending.clear()
                self._ready.set()
                delay = 0.1
                for callback in self._resync:
                    callback()
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.outage.failed(exc)
            except Exception:
                log.exception("pub/sub reader failed; reconnecting")
            finally:
                self._ready.clear()
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _read(self, pubsub: PubSub) -> None:
        pinger = asyncio.create_task(self._ping(pubsub))
        try:
            while True:
                if pinger.done():
                    pinger.result()  # re-raises the connection error that ended it
                # A blocking read: redis-py's timed reads can swallow a task cancellation.
                message = await pubsub.get_message(timeout=None)
                if message is None or message.get("type") != "message":
                    continue
                self._dispatch(message)
        finally:
            pinger.cancel()

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
