"""Writing to many sockets without letting one slow socket hold up the rest.

An :class:`Outbox` per socket queues its messages; one :class:`Flusher` per process writes
them, offers and call signaling ahead of bulk news (places in line, queue counts). Measured
reasons are in the docstrings. :func:`spawn` runs the few fire-and-forget coroutines (a
close, a background read) with a reference kept until they end.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Coroutine
from typing import Any, cast

from aiohttp import web

from humandesk.signaling.codes import CloseCode

__all__ = ["OUTBOX_LIMIT", "Flusher", "Outbox", "spawn"]

log = logging.getLogger(__name__)

#: Messages one socket may have queued; a socket that does not keep up is closed (1008).
OUTBOX_LIMIT = 1000

_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Runs ``coro`` in the background, keeping a reference until it is done."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


class Flusher:
    """Writes the queued messages of many sockets from one task.

    A queue move tells every waiting visitor their new place: thousands of sockets get a
    message at once. One task writing them in turn costs a fraction of one task per socket
    (measured at 10,000 waiting visitors: ``create_task`` alone was 31 % of a move's CPU).
    A socket whose transport is backed up gets a task of its own, so it holds up no one.

    Two lanes: sockets with a message that someone is waiting for (an offer, a call's
    signaling) are written before sockets that only have bulk news (places in line, queue
    counts), so an offer does not wait behind a fan-out to thousands of sockets.
    """

    #: Sockets written between two yields to the event loop during a big fan-out (~1 ms).
    BATCH = 64

    def __init__(self) -> None:
        self._urgent: collections.deque[Outbox] = collections.deque()
        self._bulk: collections.deque[Outbox] = collections.deque()
        self._bulk_done = asyncio.Event()
        self._bulk_done.set()
        self._task: asyncio.Task[None] | None = None

    def schedule(self, outbox: Outbox, *, bulk: bool = False) -> None:
        if bulk:
            self._bulk.append(outbox)
            self._bulk_done.clear()
        else:
            self._urgent.append(outbox)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def bulk_written(self) -> None:
        """Returns once every bulk message queued so far has been written (or handed on)."""
        await self._bulk_done.wait()

    async def _run(self) -> None:
        urgent, bulk = self._urgent, self._bulk
        try:
            written = 0
            while urgent or bulk:
                outbox = urgent.popleft() if urgent else bulk.popleft()
                try:
                    await outbox.flush()
                except Exception:
                    log.exception("writing to a socket failed")
                if not bulk:
                    self._bulk_done.set()
                written += 1
                if written % self.BATCH == 0:
                    await asyncio.sleep(0)
        finally:
            self._task = None
            if not bulk:
                self._bulk_done.set()


class Outbox:
    """Sends one socket's messages in order without letting a slow socket hold up others.

    An idle socket holds no buffer and no task (an ``asyncio.Queue`` plus a parked task cost
    ~4 KiB per socket, a quarter of a waiting visitor). Messages are written by the desk's
    :class:`Flusher` while the socket's transport keeps up, which never waits; a socket that
    is backed up gets its own sender task until it has caught up.
    """

    __slots__ = (
        "_closing",
        "_flusher",
        "_pending",
        "_scheduled",
        "_scheduled_urgent",
        "_task",
        "_transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        flusher: Flusher | None = None,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self._flusher = flusher
        # Duck-typed: uvloop's transports have the methods but are not asyncio subclasses.
        self._transport = cast(
            asyncio.WriteTransport | None,
            transport if hasattr(transport, "get_write_buffer_size") else None,
        )
        self._pending: collections.deque[dict[str, Any]] | None = None
        self._scheduled = False  # waiting for the flusher, in either lane
        self._scheduled_urgent = False  # waiting in the flusher's urgent lane
        self._task: asyncio.Task[None] | None = None  # our own sender, while backed up
        self._closing = False

    def send(self, message: dict[str, Any], *, bulk: bool = False) -> None:
        """Queues ``message``; ``bulk``: news nobody waits for (see :class:`Flusher`)."""
        if self.ws.closed or self._closing:
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = collections.deque()
        elif len(pending) >= OUTBOX_LIMIT:
            log.warning("closing a socket that does not keep up with its messages")
            spawn(self.ws.close(code=CloseCode.POLICY, message=b"slow_consumer"))
            return
        pending.append(message)
        if self._task is not None:
            return
        if self._flusher is None or self._transport is None:
            self._task = asyncio.create_task(self._run())
        elif not bulk and not self._scheduled_urgent:
            self._scheduled = self._scheduled_urgent = True
            self._flusher.schedule(self)
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self, bulk=True)

    def _keeps_up(self, transport: asyncio.WriteTransport) -> bool:
        """Whether a write now completes without waiting: the transport's buffer is at or
        below its low-water mark, so aiohttp's writer is not paused and will not drain."""
        try:
            low, _high = transport.get_write_buffer_limits()
        except (AttributeError, NotImplementedError):
            low = 0
        return transport.get_write_buffer_size() <= low

    async def flush(self) -> None:
        """The flusher's turn: writes what is queued while the socket keeps up."""
        self._scheduled = self._scheduled_urgent = False
        pending, transport = self._pending, self._transport
        if pending is None or transport is None or self._task is not None:
            return
        while pending:
            if self.ws.closed or transport.is_closing():
                pending.clear()
                break
            if not self._keeps_up(transport):
                self._task = asyncio.create_task(self._run())
                return
            message = pending.popleft()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message))
        if self._pending is pending and not pending:
            self._pending = None

    async def _run(self) -> None:
        pending = self._pending
        try:
            while pending:
                message = pending.popleft()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_str(json.dumps(message))
        finally:
            self._task = None
            if self._pending is pending and not pending:
                self._pending = None

    async def drain_and_close(self) -> None:
        """Stops after the queued messages are written (at most 2 s); later ones are dropped."""
        self._closing = True
        if self._scheduled:
            await self.flush()
        task = self._task
        if task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout=2)
        task.cancel()
