"""Places in line and expected waits, fanned out to this process's waiting visitors.

The scripts announce each change on the queue's channel with the first place that may have
moved; changes coalesce, and fan-outs run at a pace the process can afford. What each
visitor is shown never moves backwards (``VisitorSession.show_place``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from humandesk.queue.waits import QueueSnapshot, estimate_wait_seconds
from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbound import Queues
from humandesk.signaling.session import VisitorPhase

if TYPE_CHECKING:
    from humandesk.signaling.desk import SignalingDesk

__all__ = ["PositionUpdates"]

log = logging.getLogger(__name__)


def _first_changed_place(event: dict[str, Any]) -> int:
    """The ``from`` of a queue announcement (1, everything, when missing or odd)."""
    value = event.get("from")
    return value if isinstance(value, int) and value >= 1 else 1


class PositionUpdates:
    """The position fan-out of one server process."""

    def __init__(self, desk: SignalingDesk) -> None:
        self.desk = desk
        self._watched: set[str] = set()
        self._dirty: dict[str, int] = {}  # queue -> first place that may have changed
        self._snapshots: dict[str, QueueSnapshot] = {}
        self._task: asyncio.Task[None] | None = None
        self._next_fanout = 0.0  # loop time before which no fan-out starts

    @property
    def watched(self) -> set[str]:
        return self._watched

    def watch(self, queue: str) -> None:
        """Follows the announcements of ``queue`` (once per process)."""
        if queue in self._watched:
            return
        self._watched.add(queue)

        def changed(event: dict[str, Any]) -> None:
            self.mark_dirty(queue, _first_changed_place(event))

        self.desk.hub.subscribe(self.desk.keys.queue_channel(queue), changed)

    def mark_dirty(self, queue: str, from_place: int = 1) -> None:
        """Schedules one recomputation of the queue's positions (changes coalesce).

        ``from_place`` is the first place in line that may have changed: places ahead of it
        are left alone (unless the agents' counts changed, which moves every wait).
        """
        seen = self._dirty.get(queue)
        self._dirty[queue] = from_place if seen is None else min(seen, from_place)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Sends positions after changes, coalesced, at a pace the process can afford.

        Changes within ``position_debounce_s`` make one fan-out. Two fan-outs start at
        least ``position_interval_s`` apart and at least four times as long as the last one
        took to write, so a busy line (many moves a second, thousands waiting) costs the
        process at most about a fifth of its time, and offers never queue behind it.
        """
        settings = self.desk.settings
        loop = asyncio.get_running_loop()
        while self._dirty:
            await asyncio.sleep(settings.position_debounce_s)
            wait = self._next_fanout - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            dirty, self._dirty = self._dirty, {}
            started = loop.time()
            for queue, from_place in dirty.items():
                try:
                    await self.push(queue, from_place)
                except UNAVAILABLE as exc:
                    self.desk.outage.failed(exc)
                except Exception:
                    log.exception("position update for %s failed", queue)
            await self.desk.flusher.bulk_written()
            took = loop.time() - started
            self._next_fanout = started + max(settings.position_interval_s, 4 * took)

    async def push(self, queue: str, from_place: int = 1) -> None:
        """Sends changed positions to this process's waiting visitors and counts to agents.

        A move at the head changes every place: that costs one pass over the line, and one
        message per waiting visitor. A join at the back changes no one else's place, and
        costs nothing here: only the places at or behind ``from_place`` are re-read (the
        scripts announce it), and only visitors shown such a place are looked at.
        """
        desk = self.desk
        waiting = [
            c
            for c in desk.visitors.values()
            if c.session.queue == queue and c.session.phase is VisitorPhase.WAITING
        ]
        agents = [c for c in desk.agents.values() if queue in c.queues]
        if not waiting and not agents:
            return
        snapshot = await desk.queue.snapshot(queue)
        previous = self._snapshots.get(queue)
        self._snapshots[queue] = snapshot
        if previous is None or (previous.available, previous.serving, previous.handle_s) != (
            snapshot.available,
            snapshot.serving,
            snapshot.handle_s,
        ):
            from_place = 1  # every expected wait may have changed
        from_place = max(1, from_place)
        # A socket whose join (or resume) is still being answered is left out: its `queued`
        # must come first, and it asks for a recheck of its place when sent.
        todo = [
            c
            for c in waiting
            if c.session.held is None
            and (c.session.position is None or c.session.position >= from_place)
        ]
        if todo:
            ids, offered = await desk.queue.line_from(queue, from_place - 1)
            rank = {vid: place for place, vid in enumerate(ids, start=from_place)}
            for conn in todo:
                vid = conn.session.visitor_id or ""
                position = rank.get(vid)
                if position is None or conn.session.phase is not VisitorPhase.WAITING:
                    continue  # out of line by now (in a call, moved, gone)
                # Offered to an agent right now: their wait is over.
                eta = 0 if vid in offered else estimate_wait_seconds(position, snapshot)
                conn.perform(conn.session.show_place(position, eta, snapshot))
        counts = {"waiting": snapshot.waiting, "agents_available": snapshot.available}
        for agent in agents:
            agent.send(Queues({queue: counts}).to_wire(), bulk=True)
