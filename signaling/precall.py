"""The pre-call test's server peer: an aiortc echo peer, in a worker process of its own.

A visitor's browser sends a few seconds of camera and microphone to this peer, which sends
both straight back: the visitor sees their own picture return through the desk, and the
browser's statistics give the round-trip time, the packet loss and the path (direct or
through TURN) that a call would take, because the peer is given the ICE servers and the
transport policy of a call.

Why a worker process: aiortc cannot forward media without decoding it, so echoing a picture
decodes and re-encodes it, about 40-45 % of a core while a test runs (benchmarks/precall.py
measures it). In the signaling process that would stall every socket; here it stalls only
other tests, and those are capped: at most ``max_peers`` peers at once, up to ``queue`` more
requests waiting ``wait_s`` seconds for a slot, anything beyond refused at once with 503
``precall_busy``. Every peer is closed ``max_seconds`` after it was made, or 10 s after it if
it has not connected by then; an offer with neither audio nor video is refused (400
``bad_offer``), so an empty one cannot hold a slot.

The worker is a small aiohttp app on a local port (``humandesk precall-worker``):
``POST /offer`` takes a complete SDP offer (non-trickle: every candidate in it) and answers
with a complete SDP answer (aiortc gathers every candidate before it answers);
``GET /healthz`` reports its load. The desk proxies visitors' offers to it (server/precall.py);
it is not meant to face the internet itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Final

from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from humandesk.signaling.fields import MAX_SDP_CHARS
from humandesk.signaling.limits import PrecallLimits

log = logging.getLogger(__name__)

BUSY: Final = "precall_busy"
MAX_ICE_SERVERS: Final = 4
CLOSE_TIMEOUT_S: Final = 3.0
#: A peer not connected this long after its answer is closed: a browser connects in a second
#: or two, through TURN included; one that does not will not.
CONNECT_S: Final = 10.0


class Busy(Exception):
    """Every slot is taken and the wait queue is full (or the wait ran out)."""


class BadOffer(Exception):
    """The offer could not be read or answered."""


def ice_configuration(servers: list[dict[str, Any]], policy: str) -> RTCConfiguration:
    """An aiortc configuration from ``RTCIceServer`` dictionaries, as the desk mints them.

    Always an explicit list: with none, aiortc would use a public STUN server."""
    ice = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in servers
    ]
    transport = RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=ice, iceTransportPolicy=transport)


class EchoPool:
    """The echo peers of one worker, within its limits."""

    def __init__(self, limits: PrecallLimits) -> None:
        self.limits = limits
        self.peers: set[RTCPeerConnection] = set()
        self.waiting = 0
        self.served = 0
        self.refused = 0
        self._slots = asyncio.Semaphore(max(1, limits.max_peers))
        self._tasks: set[asyncio.Task[None]] = set()

    async def _take_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self.waiting >= self.limits.queue:
            self.refused += 1
            raise Busy("every test slot is taken and the queue is full")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.limits.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            self.refused += 1
            raise Busy("no test slot came free in time") from None
        finally:
            self.waiting -= 1

    async def answer(self, offer_sdp: str, servers: list[dict[str, Any]], policy: str) -> str:
        """The SDP answer of a new echo peer for ``offer_sdp``; raises Busy or BadOffer."""
        await self._take_slot()
        pc = RTCPeerConnection(ice_configuration(servers, policy))
        try:

            @pc.on("track")
            def echo(track: MediaStreamTrack) -> None:
                pc.addTrack(track)  # what arrives goes back: decoded and encoded again

            try:
                await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            except Exception as exc:  # aiortc raises many kinds for an SDP it cannot read
                raise BadOffer(f"the offer could not be read: {exc}") from None
            if not any(t.kind in ("audio", "video") for t in pc.getTransceivers()):
                raise BadOffer("the offer sends neither audio nor video")
            await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
        except BaseException:
            await pc.close()
            self._slots.release()
            raise
        self.peers.add(pc)
        self.served += 1
        task = asyncio.create_task(self._run(pc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return answer

    async def _run(self, pc: RTCPeerConnection) -> None:
        """Keeps the peer until it fails or closes, or ``max_seconds`` have passed; one that
        has not connected within ``CONNECT_S`` goes sooner (its slot is wanted)."""
        over = asyncio.Event()
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def changed() -> None:
            if pc.connectionState == "connected":
                connected.set()
            if pc.connectionState in ("failed", "closed"):
                over.set()

        loop = asyncio.get_running_loop()
        late = loop.call_later(
            min(CONNECT_S, self.limits.max_seconds),
            lambda: None if connected.is_set() else over.set(),
        )
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.limits.max_seconds):
                    await over.wait()
        finally:
            late.cancel()
            # Bounded: a TURN server that has gone away makes aioice wait for its answers
            # to the deallocation for half a minute; the media stopped at the start of close.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await pc.close()
            self.peers.discard(pc)
            self._slots.release()

    def load(self) -> dict[str, Any]:
        return {
            "status": "alive",
            "peers": len(self.peers),
            "waiting": self.waiting,
            "max_peers": self.limits.max_peers,
            "queue": self.limits.queue,
            "max_seconds": self.limits.max_seconds,
            "served": self.served,
            "refused": self.refused,
        }

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


POOL: Final = web.AppKey("pool", EchoPool)


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": "bad_request", "reason": reason}, status=400)


def read_offer(body: Any) -> tuple[str, list[dict[str, Any]], str]:
    """The offer's SDP, ICE servers and policy from a ``POST /offer`` body; ValueError names
    what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer" or not isinstance(sdp, str) or not sdp:
        raise ValueError("'type' must be offer and 'sdp' a non-empty string")
    if len(sdp) > MAX_SDP_CHARS:
        raise ValueError(f"the SDP is longer than {MAX_SDP_CHARS} characters")
    servers = body.get("ice_servers", [])
    if not isinstance(servers, list) or len(servers) > MAX_ICE_SERVERS:
        raise ValueError(f"'ice_servers' must be a list of at most {MAX_ICE_SERVERS}")
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("urls"), str | list):
            raise ValueError("each ICE server needs 'urls'")
    policy = body.get("ice_transport_policy", "all")
    if policy not in ("all", "relay"):
        raise ValueError("'ice_transport_policy' must be all or relay")
    return sdp, servers, policy


async def offer(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.text())
        sdp, servers, policy = read_offer(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad(str(exc))
    pool = request.app[POOL]
    started = time.monotonic()
    try:
        answer = await pool.answer(sdp, servers, policy)
    except Busy as exc:
        return web.json_response(
            {"error": BUSY, "reason": str(exc), "retry_after_s": int(pool.limits.wait_s)},
            status=503,
            headers={"Retry-After": str(int(pool.limits.wait_s))},
        )
    except BadOffer as exc:
        return web.json_response({"error": "bad_offer", "reason": str(exc)}, status=400)
    log.debug("answered a pre-call offer in %.0f ms", (time.monotonic() - started) * 1000)
    return web.json_response(
        {"type": "answer", "sdp": answer, "max_seconds": pool.limits.max_seconds}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[POOL].load())


def worker_app(limits: PrecallLimits) -> web.Application:
    """The worker: ``POST /offer`` and ``GET /healthz``."""
    app = web.Application(client_max_size=64 * 1024)
    app[POOL] = EchoPool(limits)
    app.router.add_post("/offer", offer)
    app.router.add_get("/healthz", healthz)

    async def close(app: web.Application) -> None:
        await app[POOL].close()

    app.on_shutdown.append(close)
    return app
