"""The outbox and the flusher (signaling/outbox.py) on fake sockets and transports: order,
lanes, a backed-up socket that holds up no one, the limit, and the drain before a close."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from aiohttp import web

from humandesk.signaling.outbox import OUTBOX_LIMIT, Flusher, Outbox


class FakeTransport:
    """A write transport whose buffer the test fills and empties."""

    def __init__(self) -> None:
        self.buffered = 0
        self.closing = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 64 * 1024)

    def is_closing(self) -> bool:
        return self.closing


class FakeSocket:
    """What the outbox uses of a WebSocketResponse; each write may be made to wait."""

    def __init__(self, name: str, log: list[tuple[str, Any]]) -> None:
        self.name = name
        self.log = log
        self.closed = False
        self.gate: asyncio.Event | None = None
        self.close_code: int | None = None

    async def send_str(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.log.append((self.name, json.loads(text)))

    async def close(self, *, code: int, message: bytes = b"") -> None:
        self.closed = True
        self.close_code = code


def outbox(name: str, log: list[tuple[str, Any]], flusher: Flusher) -> tuple[Outbox, Any, Any]:
    ws, transport = FakeSocket(name, log), FakeTransport()
    return Outbox(cast(web.WebSocketResponse, ws), flusher, cast(Any, transport)), ws, transport


async def test_messages_go_out_in_order_and_offers_before_bulk_news() -> None:
    log: list[tuple[str, Any]] = []
    flusher = Flusher()
    boxes = [outbox(f"v{i}", log, flusher)[0] for i in range(3)]
    for i, box in enumerate(boxes):
        box.send({"n": 1, "place": i}, bulk=True)
        box.send({"n": 2, "place": i}, bulk=True)
    agent, _ws, _t = outbox("agent", log, flusher)
    agent.send({"type": "offer"})  # queued after the bulk news, written before it
    await flusher.bulk_written()
    assert log[0] == ("agent", {"type": "offer"})
    for i in range(3):
        mine = [m for name, m in log if name == f"v{i}"]
        assert mine == [{"n": 1, "place": i}, {"n": 2, "place": i}]


async def test_a_backed_up_socket_holds_up_no_one() -> None:
    log: list[tuple[str, Any]] = []
    flusher = Flusher()
    slow, slow_ws, slow_transport = outbox("slow", log, flusher)
    fast, _ws, _t = outbox("fast", log, flusher)
    slow_transport.buffered = 1_000_000  # the peer reads nothing
    slow_ws.gate = asyncio.Event()
    slow.send({"to": "slow"})
    fast.send({"to": "fast"})
    await asyncio.sleep(0.05)
    assert log == [("fast", {"to": "fast"})]  # the slow one has a sender task of its own
    slow_transport.buffered = 0
    slow_ws.gate.set()
    await slow.drain_and_close()
    assert log[-1] == ("slow", {"to": "slow"})


async def test_a_socket_that_does_not_keep_up_is_closed_not_queued_without_end() -> None:
    log: list[tuple[str, Any]] = []
    flusher = Flusher()
    box, ws, transport = outbox("stuck", log, flusher)
    transport.buffered = 1_000_000
    ws.gate = asyncio.Event()  # never set: nothing is written
    for n in range(OUTBOX_LIMIT + 5):
        box.send({"n": n})
    await asyncio.sleep(0.05)
    assert ws.closed and ws.close_code == 1008


async def test_drain_and_close_writes_what_is_queued_then_nothing_more() -> None:
    log: list[tuple[str, Any]] = []
    flusher = Flusher()
    box, _ws, _t = outbox("leaving", log, flusher)
    box.send({"type": "left"})
    await box.drain_and_close()
    box.send({"type": "late"})
    await asyncio.sleep(0.01)
    assert log == [("leaving", {"type": "left"})]
