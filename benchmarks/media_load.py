"""Media load: N aiortc visitor/agent pairs in calls at once through the real signaling.

Client worker processes run pairs of :class:`humandesk.signaling.peers.DeskPeer` (agents sign
in with ``POST /api/login``), with two changes that keep the clients cheap so that more calls
fit on two cores:

* video is **pre-encoded**: one VP8 key frame, encoded once, is sent 30 times a second through
  aiortc's encoded-frame path (a track that returns ``av.Packet``; the sender only packetizes);
  no audio track;
* nothing is **decoded**: the receivers' decoder thread is replaced by one that counts the
  frames it is handed (aiortc has no public receive-without-decoding API).

Media flows peer to peer on 127.0.0.1 (the clients' ICE is limited to loopback), never
through the server. Measured over a steady window once every call shows frames: the server
process's CPU time (utime + stime from /proc) per call, against the clients' CPU time per call
(the media work the server does not do).

``python -m benchmarks.media_load CONFIG`` is the client worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import queue as stdlib_queue
import threading
import time
import uuid
from typing import Any

from benchmarks import Metric, harness

FPS = 30


def _patch_aiortc() -> None:
    """Loopback-only ICE and a receiver that counts frames instead of decoding them."""
    import aioice.ice
    import aiortc.rtcrtpreceiver

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    def count_only(
        loop: asyncio.AbstractEventLoop,
        input_q: stdlib_queue.Queue[Any],
        output_q: asyncio.Queue[Any],
        decode_error: threading.Event,
    ) -> None:
        while True:
            task = input_q.get()
            if task is None:
                asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
                return
            asyncio.run_coroutine_threadsafe(output_q.put(task[1]), loop)

    aioice.ice.get_host_addresses = loopback
    aiortc.rtcrtpreceiver.decoder_worker = count_only


def _key_frame() -> bytes:
    """One VP8 key frame of a flat 320x240 picture."""
    import av
    from av import VideoFrame

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = 320, 240
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.bit_rate = 300_000
    frame = VideoFrame(width=320, height=240, format="yuv420p")
    for plane, value in zip(frame.planes, (90, 160, 90), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    frame.pts = 0
    packets = [bytes(p) for p in codec.encode(frame)] + [bytes(p) for p in codec.encode(None)]
    return packets[0]


def _peer_classes(key_frame: bytes) -> Any:
    import av
    from aiortc import RTCPeerConnection, VideoStreamTrack

    from humandesk.signaling.peers import DeskPeer

    class PreEncodedTrack(VideoStreamTrack):
        """The same encoded key frame, paced at 30 frames a second."""

        async def recv(self) -> Any:  # an av.Packet: aiortc's sender only packetizes it
            pts, time_base = await self.next_timestamp()
            packet = av.Packet(key_frame)
            packet.pts = pts
            packet.time_base = time_base
            return packet

    class LoadPeer(DeskPeer):
        async def _start_call(self, message: dict[str, Any]) -> None:
            await self._close_pc()
            self.call_id = str(message["call_id"])
            pc = RTCPeerConnection(self._configuration())
            self.pc = pc
            pc.addTrack(PreEncodedTrack())

            @pc.on("track")
            def on_track(track: Any) -> None:
                self._media_tasks.append(asyncio.create_task(self._count_frames(track)))

            if message.get("role") == "offerer":
                await pc.setLocalDescription(await pc.createOffer())
                await self._send_local_description()

    return LoadPeer


async def worker(config: dict[str, Any], io: harness.WorkerIO) -> None:
    _patch_aiortc()
    load_peer = _peer_classes(_key_frame())
    url: str = config["url"]
    pairs: list[tuple[Any, Any]] = []
    try:
        async for cmd in io.commands():
            if cmd["cmd"] == "call":
                started = time.monotonic()
                for name in cmd["agents"]:
                    agent = load_peer(url, "agent")
                    await agent.login(name, harness.PASSWORD)
                    await agent.connect()
                    await agent.go_available()
                    await agent.expect("status")
                    visitor = load_peer(url, "visitor")
                    await visitor.connect()
                    await visitor.join(f"Load {name}")
                    await agent.accept_next_offer()
                    pairs.append((visitor, agent))
                for visitor, agent in pairs:
                    await visitor.wait_for_frames(FPS, timeout=60)
                    await agent.wait_for_frames(FPS, timeout=60)
                io.reply({"calls": len(pairs), "seconds": time.monotonic() - started})
            elif cmd["cmd"] == "frames":
                io.reply({"frames": sum(v.frames_received + a.frames_received for v, a in pairs)})
            elif cmd["cmd"] == "hangup":
                for _visitor, agent in pairs:
                    with contextlib.suppress(Exception):
                        await agent.hangup()
                io.reply({"ok": True})
    finally:
        for visitor, agent in pairs:
            for peer in (visitor, agent):
                with contextlib.suppress(Exception):
                    await peer.close()


async def _frames(clients: list[harness.Worker]) -> int:
    replies = await asyncio.gather(*(c.call({"cmd": "frames"}) for c in clients))
    return sum(int(r["frames"]) for r in replies)


async def run(quick: bool) -> list[Metric]:
    n_workers = 2
    per_worker = 3 if quick else 15
    window = 8.0 if quick else 20.0
    desk = "md" + uuid.uuid4().hex[:8]
    names = [[f"m{w}x{i}" for i in range(per_worker)] for w in range(n_workers)]
    with harness.redis_server() as (redis_url, _redis):
        await harness.create_agents(
            redis_url, desk, {n: ["support"] for group in names for n in group}, {"wrapup_ms": 0}
        )
        with harness.desk_servers(redis_url, desk) as [server]:
            config = {"url": server.url}
            async with harness.workers("benchmarks.media_load", [config] * n_workers) as clients:
                idle0, t_idle0 = server.cpu_seconds(), time.monotonic()
                await asyncio.sleep(3.0)
                idle = (server.cpu_seconds() - idle0) / (time.monotonic() - t_idle0)
                replies = await asyncio.gather(
                    *(c.call({"cmd": "call", "agents": group}, timeout=300)
                      for c, group in zip(clients, names, strict=True))
                )  # fmt: skip
                calls = sum(int(r["calls"]) for r in replies)
                harness.log(
                    f"media load: {calls} calls up ({max(r['seconds'] for r in replies):.1f}s)"
                )
                await asyncio.sleep(2.0)  # past the call set-up
                frames0 = await _frames(clients)
                server0 = server.cpu_seconds()
                clients0 = sum(harness.proc_cpu_seconds(c.pid) for c in clients)
                t0 = time.monotonic()
                with harness.profiled([server.pid], "media-server"):
                    await asyncio.sleep(window)
                elapsed = time.monotonic() - t0
                server_busy = (server.cpu_seconds() - server0) / elapsed
                clients_busy = (
                    sum(harness.proc_cpu_seconds(c.pid) for c in clients) - clients0
                ) / elapsed
                frames1 = await _frames(clients)
                for c in clients:
                    await c.call({"cmd": "hangup"})
    fps = (frames1 - frames0) / elapsed / max(calls, 1) / 2
    per_call = 100 * server_busy / max(calls, 1)
    media_per_call = 100 * clients_busy / max(calls, 1)
    harness.log(
        f"media load: {calls} calls, {fps:.1f} frames/s received per side; server CPU "
        f"{100 * server_busy:.2f}% of a core ({100 * idle:.2f}% idle before the calls), "
        f"clients {100 * clients_busy:.0f}%"
    )
    ok = calls == n_workers * per_worker and fps >= 0.8 * FPS and per_call < 1.0
    return [
        Metric.make(
            f"media_load.server_cpu_per_call[n={calls}]",
            per_call,
            "% of a core",
            baseline=media_per_call,
            target="< 1 % of a core (baseline: the clients' media CPU per call)",
            ok=ok,
        )
    ]


if __name__ == "__main__":
    harness.worker_main(worker)
