"""The desk's side of the pre-call test: it hands the visitor's offer to a worker, and
starts one worker with the desk.

The echo peers run in worker processes (signaling/precall.py), never in the desk's event
loop. ``humandesk serve`` (and ``demo``) start one worker on a free loopback port as a child
process; ``HUMANDESK_PRECALL_URL`` names workers run separately instead (a comma-separated
list: a busy or unreachable worker passes the offer to the next), and ``off`` runs none.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

log = logging.getLogger(__name__)

#: How long the desk waits for a worker's answer: its wait for a slot, plus gathering.
ANSWER_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 2.0
#: The worker ``serve`` starts shares the desk's cores: it yields to the signaling (a test
#: that runs late is a small loss; a delayed offer or call signal is not).
CHILD_NICE: Final = 10


@dataclass(frozen=True)
class WorkerReply:
    """What the workers said: an answer (``status`` 200), ``precall_busy`` (503) when every
    worker that answered was full, ``precall_unavailable`` (503) when none answered."""

    status: int
    body: dict[str, Any]


@dataclass
class Workers:
    """The pre-call workers of this desk process, tried in turn from a rotating start."""

    urls: tuple[str, ...]
    _turn: Iterator[int] = field(default_factory=lambda: itertools.count())
    _session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def answer(self, offer: dict[str, Any]) -> WorkerReply:
        """Hands ``offer`` (``sdp``, ``ice_servers``, ``ice_transport_policy``) to a worker."""
        if not self.urls:
            return unavailable("this desk runs no pre-call test")
        start = next(self._turn) % len(self.urls)
        busy: WorkerReply | None = None
        for url in self.urls[start:] + self.urls[:start]:
            try:
                async with self.session().post(url.rstrip("/") + "/offer", json=offer) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("pre-call worker %s did not answer: %s", url, exc)
                continue
            if not isinstance(body, dict):
                continue
            if resp.status == 200:
                return WorkerReply(200, body)
            if resp.status == 503 and body.get("error") == "precall_busy":
                busy = WorkerReply(503, body)
                continue
            if resp.status == 400:
                return WorkerReply(400, body)  # the offer itself: another worker says the same
            log.warning("pre-call worker %s answered %s: %s", url, resp.status, body)
        return busy or unavailable("the pre-call test could not run just now")


def unavailable(reason: str) -> WorkerReply:
    return WorkerReply(503, {"error": "precall_unavailable", "reason": reason, "retry_after_s": 30})


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def child_worker(precall_urls: tuple[str, ...] | None) -> Iterator[tuple[str, ...]]:
    """The workers' URLs: those configured, or one worker started here as a child process
    (stopped with the desk). ``("off",)`` means none."""
    if precall_urls is not None:
        yield tuple(u for u in precall_urls if u != "off")
        return
    port = free_loopback_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "humandesk.server.cli",
            "precall-worker",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--nice",
            str(CHILD_NICE),
        ],
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )
    log.info("started a pre-call worker on 127.0.0.1:%d (pid %d)", port, proc.pid)
    try:
        yield (f"http://127.0.0.1:{port}",)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
