"""Headless aiortc peers that act as a visitor or an agent through the real signaling.

They serve the tests and load tests: each peer speaks protocol version 1 over a real
WebSocket, sends a synthetic video (frames stamped with a per-peer colour) and audio, and
counts the frames it decodes from the other side. Media goes peer to peer, never through
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

VIDEO_CLOCK = 90_000


class ColourTrack(VideoStreamTrack):
    """A small video of one flat colour, so a receiver can tell whose picture arrived."""

    def __init__(self, rgb: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        r, g, b = rgb
        y = int(0.257 * r + 0.504 * g + 0.098 * b + 16)
        u = int(-0.148 * r - 0.291 * g + 0.439 * b + 128)
        v = int(0.439 * r - 0.368 * g - 0.071 * b + 128)
        self._planes = (
            bytes([y]) * (width * height),
            bytes([u]) * (width * height // 4),
            bytes([v]) * (width * height // 4),
        )

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        frame.pts = pts
        frame.time_base = time_base or fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class MediaPeer:
    """What both clients do with a peer connection: send a coloured picture and a tone, and
    count (and keep the last of) the frames that come back."""

    def __init__(self) -> None:
        self.pc: RTCPeerConnection | None = None
        self.frames_received = 0
        self.first_frame_at: float | None = None
        self.last_frame: VideoFrame | None = None
        self._media_tasks: list[asyncio.Task[None]] = []
        self._sink = MediaBlackhole()

    def _media(self, pc: RTCPeerConnection, video: VideoStreamTrack) -> None:
        """Adds the picture and a tone to ``pc`` and counts the video it receives."""
        self.pc = pc
        pc.addTrack(video)
        pc.addTrack(AudioStreamTrack())

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                self._media_tasks.append(asyncio.create_task(self._count_frames(track)))
            else:
                self._sink.addTrack(track)

    async def _count_frames(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                self.frames_received += 1
                self.last_frame = frame
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()

    async def wait_for_frames(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames_received < count:
            if time.monotonic() > deadline:
                state = self.pc.connectionState if self.pc else "no peer connection"
                raise TimeoutError(f"{self} got {self.frames_received}/{count} frames ({state})")
            await asyncio.sleep(0.05)

    def received_colour(self) -> tuple[int, int, int] | None:
        """The RGB at the middle of the last decoded frame."""
        if self.last_frame is None:
            return None
        rgb = self.last_frame.to_rgb()
        plane = bytes(rgb.planes[0])
        mid = (rgb.height // 2) * rgb.planes[0].line_size + (rgb.width // 2) * 3
        return plane[mid], plane[mid + 1], plane[mid + 2]

    async def _close_pc(self) -> None:
        for task in self._media_tasks:
            task.cancel()
        self._media_tasks = []
        if self.pc is not None:
            await self.pc.close()
            self.pc = None


class DeskPeer(MediaPeer):
    """A visitor or agent client: one WebSocket to the desk plus, in a call, one peer."""

    def __init__(
        self,
        base_url: str,
        role: str,
        *,
        session: aiohttp.ClientSession | None = None,
        colour: tuple[int, int, int] = (200, 40, 40),
        origin: str | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.role = role
        self.colour = colour
        self.origin = origin or self.base_url
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.ice_servers: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self._reader: asyncio.Task[None] | None = None

    def __str__(self) -> str:
        return f"the {self.role}"

    # Connection ----------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> None:
        async with self.session.post(
            f"{self.base_url}/api/login",
            json={"username": username, "password": password},
            headers={"Origin": self.origin},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"login failed: {resp.status} {await resp.text()}")

    async def connect(self) -> dict[str, Any]:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws/{self.role}"
        self.ws = await self.session.ws_connect(ws_url, origin=self.origin)
        self._reader = asyncio.create_task(self._read())
        welcome = await self.expect("welcome")
        self.ice_servers = list(welcome.get("ice_servers", []))
        return welcome

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.seen.append(data)
            if data.get("type") == "signal":
                await self._on_signal(data)
            elif data.get("type") == "call_started":
                await self._start_call(data)
            await self.messages.put(data)

    async def expect(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        """Waits for the next message of type ``kind``, dropping other messages."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.messages.get()
                if msg.get("type") == kind:
                    return msg

    # Visitor and agent actions --------------------------------------------------------------

    async def join(self, name: str, topic: str = "", queue: str = "support") -> dict[str, Any]:
        await self.send({"type": "join", "queue": queue, "name": name, "topic": topic})
        return await self.expect("queued")

    async def go_available(self) -> None:
        await self.send({"type": "status", "status": "available"})

    async def accept_next_offer(self, timeout: float = 15.0) -> str:
        offer = await self.expect("offer", timeout)
        await self.send({"type": "accept", "offer_id": offer["offer_id"]})
        return str(offer["offer_id"])

    async def hangup(self) -> None:
        await self.send({"type": "hangup", "call_id": self.call_id})

    # Media ---------------------------------------------------------------------------------

    def _configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.ice_servers
        ]
        # Always an explicit list: with None, aiortc would use a public STUN server.
        return RTCConfiguration(iceServers=servers)

    async def _start_call(self, message: dict[str, Any]) -> None:
        await self._close_pc()
        self.call_id = str(message["call_id"])
        pc = RTCPeerConnection(self._configuration())
        self._media(pc, ColourTrack(self.colour))
        if message.get("role") == "offerer":
            await pc.setLocalDescription(await pc.createOffer())
            await self._send_local_description()

    async def _send_local_description(self) -> None:
        assert self.pc is not None and self.pc.localDescription is not None
        desc = self.pc.localDescription
        await self.send(
            {
                "type": "signal",
                "call_id": self.call_id,
                "description": {"type": desc.type, "sdp": desc.sdp},
            }
        )
        # aiortc puts every candidate in its SDP; say that there are no more.
        await self.send({"type": "signal", "call_id": self.call_id, "candidate": None})

    async def _on_signal(self, message: dict[str, Any]) -> None:
        pc = self.pc
        if pc is None or message.get("call_id") != self.call_id:
            return
        if "description" in message:
            desc = message["description"]
            await pc.setRemoteDescription(RTCSessionDescription(desc["sdp"], desc["type"]))
            if desc["type"] == "offer":
                await pc.setLocalDescription(await pc.createAnswer())
                await self._send_local_description()
        elif message.get("candidate"):
            cand = message["candidate"]
            text = str(cand["candidate"])
            candidate = candidate_from_sdp(text.split(":", 1)[1] if ":" in text else text)
            candidate.sdpMid = cand.get("sdpMid")
            candidate.sdpMLineIndex = cand.get("sdpMLineIndex")
            with contextlib.suppress(Exception):
                await pc.addIceCandidate(candidate)

    async def close(self) -> None:
        await self._close_pc()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._own_session:
            await self.session.close()


class PrecallProbe(MediaPeer):
    """A pre-call test from a headless client, as the visitor panel runs it: ICE servers from
    the desk, a complete offer with a coloured picture and a tone, the echo peer's answer,
    then the echoed frames counted and the statistics read.

    ``offer_url`` is the desk's ``/api/precall`` (or a worker's ``/offer``, given
    ``ice_servers`` itself, for the benchmark)."""

    def __init__(
        self,
        offer_url: str,
        *,
        session: aiohttp.ClientSession,
        colour: tuple[int, int, int] = (40, 160, 40),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.offer_url = offer_url
        self.session = session
        self.colour = colour
        self.headers = headers or {}
        self.status = 0
        self.refusal: dict[str, Any] = {}

    def __str__(self) -> str:
        return "the pre-call test"

    async def ice(self, ice_url: str) -> tuple[list[dict[str, Any]], str]:
        async with self.session.post(ice_url, headers=self.headers) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"pre-call ICE servers: {resp.status} {body}")
        return list(body["ice_servers"]), str(body["ice_transport_policy"])

    async def start(
        self, ice_servers: list[dict[str, Any]], policy: str, *, extra: dict[str, Any] | None = None
    ) -> bool:
        """Offers and sets the answer; False (with ``status`` and ``refusal``) if refused."""
        from humandesk.signaling.precall import ice_configuration

        pc = RTCPeerConnection(ice_configuration(ice_servers, policy))
        self._media(pc, self.video_track())

        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        offer = {"type": "offer", "sdp": pc.localDescription.sdp, **(extra or {})}
        async with self.session.post(self.offer_url, json=offer, headers=self.headers) as resp:
            self.status = resp.status
            body = await resp.json(content_type=None)
        if resp.status != 200:
            self.refusal = body
            return False
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        return True

    def video_track(self) -> VideoStreamTrack:
        """The picture sent (a subclass may send another)."""
        return ColourTrack(self.colour)

    async def measure(self) -> dict[str, Any]:
        """Round-trip time (RTCP), packets lost and sent, and the path of the selected pair."""
        assert self.pc is not None
        stats = await self.pc.getStats()
        rtts, lost, sent = [], 0, 0
        for report in stats.values():
            if report.type == "remote-inbound-rtp":
                lost += max(0, int(report.packetsLost or 0))
                if report.roundTripTime is not None:
                    rtts.append(float(report.roundTripTime))
            elif report.type == "outbound-rtp":
                sent += int(report.packetsSent or 0)
        local_type = None
        for transceiver in self.pc.getTransceivers():
            transport = transceiver.sender.transport
            if transport is None:
                continue
            nominated = transport.transport.iceGatherer._connection._nominated
            for pair in nominated.values():
                local_type = pair.local_candidate.type
            break
        return {
            "rtt_ms": round(max(rtts) * 1000, 1) if rtts else None,
            "packets_lost": lost,
            "packets_sent": sent,
            "loss_pct": round(100 * lost / sent, 2) if sent else None,
            "path": None if local_type is None else "relay" if local_type == "relay" else "direct",
            "connection": self.pc.connectionState,
        }

    async def close(self) -> None:
        await self._close_pc()
