"""Pre-call tests: what one costs the worker (``humandesk precall-worker``), and how many a core
runs.

A real worker process answers aiortc clients in this process (:class:`PrecallProbe`, straight
to the worker's ``POST /offer``, ICE without servers on the machine's own addresses). Each
client sends a moving 640x480 picture (what a browser's camera sends by default; a flat
colour would flatter the encoder) and a tone for ``MEDIA_S`` seconds once its picture has come
back, as the visitor panel does, then hangs up. The worker decodes and re-encodes both ways
(aiortc cannot forward without decoding): that is the cost measured, as the worker process's
CPU time (utime + stime from /proc) over the run, divided by the tests.

Reported: the time from the offer to the first echoed frame (what the visitor waits before
seeing their picture come back); the worker's CPU seconds per test; the share of a core a
running test takes; tests one core runs at once (a core's second over that share) and per
minute. Baseline: the clients' own CPU per test (one aiortc endpoint's encoding and decoding
of the same media), measured in the same run.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import subprocess
import sys
import time
from typing import Any

import aiohttp
from aiortc import VideoStreamTrack
from av import VideoFrame

from benchmarks import Metric
from benchmarks.harness import free_port, log, median, pct, proc_cpu_seconds, python_env, wait_http
from humandesk.signaling.peers import PrecallProbe

MEDIA_S = 4.0  # as the panel (web/static/visitor/precall.js TEST_MS)
WIDTH, HEIGHT = 640, 480


class MovingTrack(VideoStreamTrack):
    """A camera-like picture: a bright bar that sweeps across a shaded background."""

    def __init__(self) -> None:
        super().__init__()
        # Smooth shading, like a face in a room; the sweeping bar keeps every frame changing.
        self._background = b"".join(
            bytes(40 + (x + y) * 160 // (WIDTH + HEIGHT) for x in range(WIDTH))
            for y in range(HEIGHT)
        )
        self._chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
        self._n = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        frame = VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        luma = bytearray(self._background)
        start = (self._n * 8) % WIDTH
        for y in range(0, HEIGHT, 2):
            offset = y * WIDTH + start
            luma[offset : offset + 48] = b"\xf0" * min(48, WIDTH - start)
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = pts
        frame.time_base = time_base or fractions.Fraction(1, 90_000)
        return frame


class CameraProbe(PrecallProbe):
    def video_track(self) -> VideoStreamTrack:
        return MovingTrack()


async def one_test(session: aiohttp.ClientSession, url: str) -> tuple[float, str, float]:
    """One pre-call test: the seconds to the first echoed frame, its outcome, and the echoed
    frames a second."""
    probe = CameraProbe(url + "/offer", session=session)
    started = time.monotonic()
    try:
        if not await probe.start(
            [], "all", extra={"ice_servers": [], "ice_transport_policy": "all"}
        ):
            return float("nan"), str(probe.refusal.get("error")), 0.0
        await probe.wait_for_frames(1)
        first = time.monotonic() - started
        await asyncio.sleep(MEDIA_S)
        fps = (probe.frames_received - 1) / MEDIA_S
        return first, "ok" if probe.frames_received > 10 else "few_frames", fps
    finally:
        await probe.close()


async def measure(tests: int, at_once: int) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = python_env(
        HUMANDESK_PRECALL_PEERS=str(at_once),
        HUMANDESK_PRECALL_QUEUE=str(tests),
        HUMANDESK_PRECALL_SECONDS="60",
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is timed)
        [sys.executable, "-m", "humandesk.server.cli", "precall-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(url + "/healthz", proc)
        async with aiohttp.ClientSession() as session:
            await one_test(session, url)  # warm-up: imports, codecs
            await asyncio.sleep(0.5)
            worker0, client0 = proc_cpu_seconds(proc.pid), time.process_time()
            t0 = time.monotonic()
            slots = asyncio.Semaphore(at_once)

            async def limited() -> tuple[float, str, float]:
                async with slots:
                    return await one_test(session, url)

            results = await asyncio.gather(*(limited() for _ in range(tests)))
            wall = time.monotonic() - t0
            await asyncio.sleep(0.5)  # the worker closes the last peers
            worker_cpu = proc_cpu_seconds(proc.pid) - worker0
            client_cpu = time.process_time() - client0
    finally:
        proc.terminate()
        proc.wait(10)
    firsts = [f for f, outcome, _ in results if outcome == "ok"]
    return {
        "tests": tests,
        "at_once": at_once,
        "ok": len(firsts),
        "outcomes": sorted({o for _, o, _ in results}),
        "echoed_fps": [round(fps, 1) for _, _, fps in results],
        "first_frame_s": firsts,
        "wall_s": wall,
        "worker_cpu_s": worker_cpu,
        "client_cpu_s": client_cpu,
    }


async def run(quick: bool) -> list[Metric]:
    tests, at_once = (3, 1) if quick else (8, 2)
    m = await measure(tests, at_once)
    log(f"precall: {m}")
    if m["ok"] < tests:
        raise RuntimeError(f"only {m['ok']}/{tests} tests came back: {m['outcomes']}")
    per_test = m["worker_cpu_s"] / tests
    client_per_test = m["client_cpu_s"] / tests
    duration = median(m["first_frame_s"]) + MEDIA_S  # how long a peer runs
    share = per_test / duration
    cores = os.cpu_count() or 1
    return [
        Metric.make(
            "precall.first_echo_ms.p50",
            median(m["first_frame_s"]) * 1000,
            "ms",
            baseline=None,
            target="< 2000 ms",
            ok=median(m["first_frame_s"]) < 2,
        ),
        Metric.make(
            "precall.first_echo_ms.max",
            pct(m["first_frame_s"], 100) * 1000,
            "ms",
            baseline=None,
            target=f"< 5000 ms ({at_once} at once on {cores} cores)",
            ok=pct(m["first_frame_s"], 100) < 5,
        ),
        Metric.make(
            "precall.worker_cpu_per_test",
            per_test,
            "cpu s",
            baseline=client_per_test,
            target=f"{MEDIA_S:g} s of 640x480 video + audio, echoed",
            ok=True,
        ),
        Metric.make(
            "precall.core_share_while_running",
            share * 100,
            "% core",
            baseline=None,
            target="< 60 % (DESIGN: 40-45 % for a decode + re-encode leg)",
            ok=share < 0.6,
        ),
        Metric.make(
            "precall.tests_per_core_at_once",
            1 / share,
            "tests",
            baseline=None,
            target=">= 1.5 (HUMANDESK_PRECALL_PEERS default 2 per worker)",
            ok=1 / share >= 1.5,
        ),
        Metric.make(
            "precall.tests_per_core_per_minute",
            60 / per_test,
            "tests/min",
            baseline=None,
            target="informational",
            ok=True,
        ),
    ]


if __name__ == "__main__":
    print(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3, 1)))
