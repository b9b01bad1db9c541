"""TURN end to end: Debian's coturn with ``use-auth-secret``, the desk handing out time-limited
TURN REST credentials, and two Chromium pages told ``iceTransportPolicy: "relay"``.

With the relay policy a browser may only use relay candidates, so a call whose video decodes
proves that the credentials the desk minted were accepted by coturn. The selected candidate
pair on each side (``transport.selectedCandidatePairId``) must be a relay one. A desk with the
wrong secret gets no allocation at all, and the call cannot connect.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import stop_process

import pages as ui
from conftest import free_port, need

pytestmark = pytest.mark.browser

TURNSERVER = os.environ.get("HUMANDESK_TURNSERVER") or shutil.which("turnserver") or "turnserver"
# Chromium offers no loopback host candidates, but it does talk to a TURN server on 127.0.0.1,
# and coturn relays between two of its own loopback allocations with --allow-loopback-peers.
TURN_HOST = "127.0.0.1"
REALM = "humandesk.test"

# ICE candidates a page has gathered, from its peer connection's statistics.
LOCAL_CANDIDATES_JS = """async () => {
    const pc = window.hdPeer;
    if (!pc) return null;
    const stats = await pc.getStats();
    const types = [];
    stats.forEach((r) => { if (r.type === "local-candidate") types.push(r.candidateType); });
    return { types, gathering: pc.iceGatheringState, ice: pc.iceConnectionState };
}"""


def gathered_candidates(page: Any) -> dict[str, Any] | None:
    """The page's local candidate types once ICE gathering is complete (else None)."""
    found: dict[str, Any] | None = page.evaluate(LOCAL_CANDIDATES_JS)
    return found if found and found["gathering"] == "complete" else None


@dataclass
class Turn:
    port: int
    secret: str
    log: Path
    host: str = TURN_HOST

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def running_coturn(host: str = TURN_HOST) -> Iterator[Turn]:
    """coturn listening and relaying on ``host``."""
    workdir = Path(tempfile.mkdtemp(prefix="hdturn", dir="/tmp"))
    port = free_port()
    low = random.randrange(40000, 60000, 100)
    turn = Turn(port=port, secret=secrets.token_urlsafe(24), log=workdir / "turn.log", host=host)
    proc = subprocess.Popen(
        [
            TURNSERVER,
            "-n",  # no configuration file: everything is on this command line
            "--listening-ip",
            host,
            "--relay-ip",
            host,
            "--listening-port",
            str(port),
            "--min-port",
            str(low),
            "--max-port",
            str(low + 99),
            "--use-auth-secret",
            "--static-auth-secret",
            turn.secret,
            "--realm",
            REALM,
            "--no-tls",
            "--no-dtls",
            "--no-tcp-relay",
            "--no-cli",
            "--allow-loopback-peers",
            "--fingerprint",
            "--userdb",
            str(workdir / "turndb"),
            "--pidfile",
            str(workdir / "turn.pid"),
            "--log-file",
            str(turn.log),
            "--simple-log",
            "--verbose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # coturn listens on TCP and UDP alike; TCP says when it is up
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited ({proc.returncode}):\n{turn.output()}")
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"turnserver did not start:\n{turn.output()}")
            time.sleep(0.05)
        yield turn
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def relay_env(turn: Turn, secret: str) -> dict[str, str]:
    return {
        "HUMANDESK_TURN_URLS": turn.url,
        "HUMANDESK_TURN_SECRET": secret,
        "HUMANDESK_ICE_POLICY": "relay",
    }


@pytest.fixture(scope="module")
def turn() -> Iterator[Turn]:
    ui.need_chromium()
    need(Path(TURNSERVER).exists() or shutil.which(TURNSERVER) is not None, "coturn (turnserver)")
    with running_coturn() as turn:
        yield turn


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with ui.launched_chromium() as browser:
        yield browser


def accept_offer(agent: Any, panel: Any) -> None:
    """The agent accepts the offer; both pages have their peer connection."""
    ui.wait_for(lambda: agent.locator(ui.sel("offer-card")).is_visible(), "the offer card")
    agent.locator(ui.sel("offer-accept")).click()
    ui.wait_for(lambda: panel.evaluate("!!window.hdPeer"), "the visitor's peer connection")
    ui.wait_for(lambda: agent.evaluate("!!window.hdPeer"), "the agent's peer connection")


def relayed_call_pairs(panel: Any, agent: Any, turn: Turn) -> list[tuple[str, dict[str, Any]]]:
    """Both sides in the call with video flowing: each side's selected candidate pair."""
    ui.wait_for(
        lambda: ui.visitor_phase(panel) == "in-call" and ui.agent_phase(agent) == "in-call",
        "both sides in the call",
        explain=lambda: (ui.call_report(panel, agent), turn.output()[-3000:]),
    )
    ui.assert_video_flows(panel, agent)
    return [
        (side, ui.wait_for(partial(ui.selected_pair, page), f"the {side}'s pair"))
        for side, page in (("visitor", panel), ("agent", agent))
    ]


def start_call(browser: Any, demo: ui.Demo) -> tuple[Any, Any, list[Any]]:
    """An agent Available, a visitor joined from the shop, the offer accepted."""
    agent_ctx = browser.new_context(viewport=ui.VIEWPORT)
    visitor_ctx = browser.new_context(viewport=ui.VIEWPORT)
    agent = agent_ctx.new_page()
    ui.login_agent(agent, demo)
    ui.set_agent_status(agent, "available")
    _, panel = ui.open_panel(visitor_ctx, demo)
    ui.fill_and_join(panel, "Relayed Visitor", "through TURN")
    accept_offer(agent, panel)
    return panel, agent, [agent_ctx, visitor_ctx]


def test_call_through_turn_with_time_limited_credentials(browser: Any, turn: Turn) -> None:
    log_start = len(turn.output())
    with ui.running_demo(relay_env(turn, turn.secret)) as demo:
        panel, agent, contexts = start_call(browser, demo)
        try:
            # Both pages were told to use only the relay, with a time-limited REST credential.
            for page in (panel, agent):
                config = page.evaluate("window.hdPeer.getConfiguration()")
                assert config["iceTransportPolicy"] == "relay", config
                (server,) = config["iceServers"]
                assert server["urls"] == [turn.url] or server["urls"] == turn.url, server
                expiry, _, user = server["username"].partition(":")
                assert int(expiry) > time.time() and user, server["username"]
                assert server["credential"] != turn.secret

            for side, pair in relayed_call_pairs(panel, agent, turn):
                assert pair["local"] == "relay", (side, pair)
                assert pair["remote"] == "relay", (side, pair)  # the other side is relayed too
                assert pair["localAddress"] == TURN_HOST, (side, pair)
            # coturn allocated for both parties under the REST usernames the desk minted.
            log = turn.output()[log_start:]
            for who in ("a-demo", "v-"):
                assert re.search(
                    rf"user <\d+:{who}[^>]*>: incoming packet ALLOCATE processed, "
                    r"success",
                    log,
                ), (who, log[-3000:])
        finally:
            for context in contexts:
                context.close()


def test_wrong_turn_secret_gets_no_relay(browser: Any, turn: Turn) -> None:
    log_start = len(turn.output())
    with ui.running_demo(relay_env(turn, "not-" + turn.secret)) as demo:
        panel, agent, contexts = start_call(browser, demo)
        try:
            # Gathering completes without a single candidate: coturn refuses the credentials.
            for page in (panel, agent):
                gathered = ui.wait_for(
                    partial(gathered_candidates, page), "ICE gathering to finish"
                )
                assert gathered["types"] == [], gathered
            time.sleep(2)
            assert ui.visitor_phase(panel) == "call-connecting"
            assert ui.agent_phase(agent) == "call-connecting"
            assert agent.evaluate("window.hdPeer.connectionState") != "connected"
            # coturn refused the (well-formed, wrongly signed) REST usernames.
            log = turn.output()[log_start:]
            assert re.search(
                r"user <\d+:a-demo>: incoming packet message processed, error 401", log
            ), log[-3000:]
            assert "ALLOCATE processed, success" not in log, log[-3000:]
        finally:
            for context in contexts:
                context.close()


def test_a_shift_outlives_its_credentials(browser: Any, turn: Turn) -> None:
    """Sessions and TURN credentials of 20 s, relay-only ICE: a console signed in once, and a
    visitor who waited in line, still meet through coturn three lifetimes later. The console
    renews its session while it is open; each call gets credentials minted for it."""
    ttl = 20
    env = relay_env(turn, turn.secret) | {
        "HUMANDESK_SESSION_TTL": str(ttl),
        "HUMANDESK_TURN_TTL": str(ttl),
    }
    log_start = len(turn.output())
    with ui.running_demo(env) as demo:
        agent_ctx = browser.new_context(viewport=ui.VIEWPORT)
        visitor_ctx = browser.new_context(viewport=ui.VIEWPORT)
        try:
            agent = agent_ctx.new_page()
            ui.login_agent(agent, demo)
            signed_in = time.time()
            _, panel = ui.open_panel(visitor_ctx, demo)
            ui.fill_and_join(panel, "Patient Visitor", "waited a while")
            ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "the visitor in line")
            # Three lifetimes pass; the console never meets the sign-in form.
            while time.time() < signed_in + 3 * ttl + 5:
                assert ui.agent_phase(agent) != "login"
                assert ui.page_data(agent, "connected") == "true"
                time.sleep(2)
            me = agent.evaluate("fetch('/api/me').then((r) => r.status)")
            assert me == 200, "the console's session was not renewed"

            ui.set_agent_status(agent, "available")
            accept_offer(agent, panel)
            for page in (panel, agent):
                (server,) = page.evaluate("window.hdPeer.getConfiguration()")["iceServers"]
                expiry = int(server["username"].partition(":")[0])
                # Minted for this call, long after the sign-in and the join.
                assert signed_in + 3 * ttl < expiry <= time.time() + ttl + 5, server
            for side, pair in relayed_call_pairs(panel, agent, turn):
                assert pair["local"] == "relay" and pair["remote"] == "relay", (side, pair)
            log = turn.output()[log_start:]
            assert re.search(r"ALLOCATE processed, success", log), log[-3000:]
        finally:
            agent_ctx.close()
            visitor_ctx.close()
