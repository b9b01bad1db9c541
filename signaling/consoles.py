"""What every console of this process follows besides its own calls: the open callback
requests of its queues (as deltas) and the desk's list of queues (for transfers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from humandesk.signaling.outage import UNAVAILABLE
from humandesk.signaling.outbound import CallbackAdded, CallbackClosed, Callbacks, DeskQueues
from humandesk.signaling.outbox import spawn

if TYPE_CHECKING:
    from humandesk.signaling.desk import SignalingDesk

__all__ = ["CALLBACKS_PAGE", "ConsoleFeed"]

CALLBACKS_PAGE: Final = 50  # open callback requests per `callbacks` message


class ConsoleFeed:
    """Subscribes once, when the first agent connects, and fans the changes out."""

    def __init__(self, desk: SignalingDesk) -> None:
        self.desk = desk
        self._watched = False

    async def callbacks_message(self, queues: list[str], offset: int = 0) -> dict[str, Any]:
        """A page of the open callback requests of ``queues``, oldest first, with the total."""
        items = await self.desk.queue.open_callbacks(queues)
        page = items[offset : offset + CALLBACKS_PAGE]
        return Callbacks(page, offset, len(items)).to_wire()

    async def watch(self) -> None:
        """Once an agent is here: follow the callback requests and the desk's queues."""
        if self._watched:
            return
        self._watched = True

        def queues_changed(_event: dict[str, Any]) -> None:
            spawn(self._push_desk_queues())

        await self.desk.hub.subscribe_now(self.desk.keys.callbacks_channel, self._callback_changed)
        await self.desk.hub.subscribe_now(self.desk.keys.queues_channel, queues_changed)

    def _callback_changed(self, event: dict[str, Any]) -> None:
        """One request added or closed: consoles that serve its queue get just that change
        (re-sending the whole list per change made 2,000 requests cost 2 GB per console)."""
        kind = event.get("type")
        if kind == "callback_added" and isinstance(event.get("item"), dict):
            message = CallbackAdded(event["item"]).to_wire()
            queue = event["item"].get("queue")
        elif kind == "callback_closed":
            message = CallbackClosed(event.get("id")).to_wire()
            queue = event.get("queue")
        else:
            return
        for conn in list(self.desk.agents.values()):
            if queue in conn.queues:
                conn.send(message)

    async def _push_desk_queues(self) -> None:
        """A queue was added or removed: consoles offer the new list for transfers."""
        try:
            names = await self.desk.queue.queue_names(refresh=True)
        except UNAVAILABLE as exc:
            self.desk.outage.failed(exc)
            return
        for conn in list(self.desk.agents.values()):
            conn.send(DeskQueues(names).to_wire())
