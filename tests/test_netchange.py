"""Network changes in a call, with real network namespaces.

The visitor's Chromium runs inside a network namespace joined to this host by a veth pair;
the demo listens on the host side of the pair, so both browsers reach it. Mid-call the
namespace side gets a new address and loses the old one (Wi-Fi to mobile), or loses its path
for longer than the grace period.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_turn import TURNSERVER, relay_env, running_coturn

from benchmarks.harness import CHROMIUM

import pages as ui
from conftest import need

pytestmark = pytest.mark.browser

IP = shutil.which("ip") or "/usr/sbin/ip"
SHOTS = ui.RESULTS / "netchange"  # what the indicator looked like, to look at (not committed)


def run_ip(*args: str, netns: str | None = None) -> None:
    prefix = [IP, "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, IP, *args] if netns else [IP, *args], check=True, capture_output=True)


@dataclass
class Netns:
    """A namespace ``name`` whose ``inner`` veth end has ``address``; ``host`` is this side."""

    name: str
    host_dev: str
    inner_dev: str
    prefix: str  # "10.213.7"
    address: str
    wrapper: Path  # runs Chromium inside the namespace

    @property
    def host(self) -> str:
        return f"{self.prefix}.1"

    def move(self, last_octet: int) -> str:
        """The namespace side takes a new address and drops the old one at once."""
        new = f"{self.prefix}.{last_octet}"
        script = (
            f"{IP} addr add {new}/24 dev {self.inner_dev} && "
            f"{IP} addr del {self.address}/24 dev {self.inner_dev} && "
            f"{IP} route replace default via {self.host}"
        )
        subprocess.run([IP, "netns", "exec", self.name, "sh", "-c", script], check=True)
        self.address = new
        return new

    def cut(self) -> None:
        """The path is gone (the link is down) and stays gone."""
        subprocess.run([IP, "link", "set", self.host_dev, "down"], check=True)


def can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not Path(IP).exists():
        return "iproute2 (ip) is not installed"
    return None


@contextlib.contextmanager
def namespace() -> Iterator[Netns]:
    reason = can_make_namespaces()
    need(reason is None, reason or "")
    tag = f"{os.getpid() % 100000:05d}{random.randrange(16**3):03x}"
    name, host_dev, inner_dev = f"hdns{tag}", f"hdh{tag}", f"hdi{tag}"
    used = subprocess.run([IP, "-o", "-4", "addr"], capture_output=True, text=True).stdout
    while True:
        prefix = f"10.{random.randrange(200, 255)}.{random.randrange(1, 255)}"
        if f" {prefix}." not in used:
            break
    workdir = Path(tempfile.mkdtemp(prefix="hdns", dir="/tmp"))
    wrapper = workdir / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec {IP} netns exec {name} {CHROMIUM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    ns = Netns(name, host_dev, inner_dev, prefix, f"{prefix}.2", wrapper)
    try:
        try:
            run_ip("netns", "add", name)
        except subprocess.CalledProcessError as exc:  # e.g. a container without CAP_SYS_ADMIN
            need(False, f"network namespaces ({exc.stderr.decode(errors='replace').strip()})")
        run_ip("link", "add", host_dev, "type", "veth", "peer", "name", inner_dev, "netns", name)
        run_ip("addr", "add", f"{ns.host}/24", "dev", host_dev)
        run_ip("link", "set", host_dev, "up")
        run_ip("link", "set", "lo", "up", netns=name)
        run_ip("addr", "add", f"{ns.address}/24", "dev", inner_dev, netns=name)
        run_ip("link", "set", inner_dev, "up", netns=name)
        # Dropping the old (primary) address must keep the new one (a secondary) and its routes.
        subprocess.run(
            [
                IP,
                "netns",
                "exec",
                name,
                "sh",
                "-c",
                f"echo 1 > /proc/sys/net/ipv4/conf/{inner_dev}/promote_secondaries",
            ],
            check=True,
        )
        run_ip("route", "add", "default", "via", ns.host, netns=name)
        yield ns
    finally:
        subprocess.run([IP, "link", "del", host_dev], capture_output=True)
        subprocess.run([IP, "netns", "del", name], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


# The peer connection a page had, and its ICE username fragments, to tell an ICE restart on
# the same connection from a new connection.
MARK_PEER_JS = """() => { window.__hdMarked = window.hdPeer; }"""
PEER_NOW_JS = """() => {
    const pc = window.hdPeer;
    const ufrag = (d) => {
        const m = /a=ice-ufrag:(\\S+)/.exec((d && d.sdp) || "");
        return m && m[1];
    };
    const q = document.querySelector('[data-testid="hd-quality"], [data-testid="agent-quality"]');
    return {
        same: !!pc && pc === window.__hdMarked,
        connection: pc && pc.connectionState,
        localUfrag: pc && ufrag(pc.localDescription),
        phase: document.body.dataset.phase,
        callId: document.body.dataset.callId,
        restarts: window.hdIceRestarts,
        iceServers: pc && pc.getConfiguration().iceServers,
        quality: q && !q.hidden ? q.dataset.level : null,
        reconnecting: q ? q.dataset.reconnecting : null,
        qualityWords: q ? q.textContent.trim() : null,
    };
}"""


@contextlib.contextmanager
def two_browsers(ns: Netns, demo: ui.Demo) -> Iterator[tuple[Any, Any]]:
    """The agent's Chromium on this host, the visitor's inside the namespace. The demo is
    served on a private address, not loopback: the flag lets its pages use the camera as a
    secure context would (as the desk's HTTPS origin does in production)."""
    ui.need_chromium()
    args = [
        *ui.chromium_args(),
        f"--unsafely-treat-insecure-origin-as-secure={demo.desk},{demo.shop}",
    ]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        agent_browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        visitor_browser = p.chromium.launch(
            executable_path=str(ns.wrapper), args=args, headless=True
        )
        try:
            yield agent_browser, visitor_browser
        finally:
            visitor_browser.close()
            agent_browser.close()


OFFER_WATCH_JS = """() => {
    const card = document.querySelector('[data-testid="offer-card"]');
    const watch = (window.__hdOffers = { shown: 0 });
    new MutationObserver(() => { if (!card.hidden) watch.shown += 1; })
        .observe(card, { attributes: true, attributeFilter: ["hidden"] });
}"""


def peer_now(page: Any) -> dict[str, Any]:
    return page.evaluate(PEER_NOW_JS)  # type: ignore[no-any-return]


def start_call(agent_browser: Any, visitor_browser: Any, demo: ui.Demo, errors: list[str]) -> Any:
    """An Available agent accepts a visitor who joined from the shop; both see each other."""
    agent = agent_browser.new_context(viewport=ui.VIEWPORT).new_page()
    ui.watch_console(agent, "agent", errors)
    ui.login_agent(agent, demo)
    ui.set_agent_status(agent, "available")
    shop, panel = ui.open_panel(visitor_browser.new_context(viewport=ui.VIEWPORT), demo)
    ui.watch_console(shop, "visitor", errors)
    ui.fill_and_join(panel, "Moving Visitor", "on a train")
    ui.wait_for(lambda: agent.locator(ui.sel("offer-card")).is_visible(), "the offer card")
    agent.locator(ui.sel("offer-accept")).click()
    ui.wait_for(
        lambda: ui.visitor_phase(panel) == "in-call" and ui.agent_phase(agent) == "in-call",
        "both sides in the call",
        explain=lambda: ui.call_report(panel, agent),
    )
    ui.assert_video_flows(panel, agent)
    for page in (panel, agent):  # the indicator has its first samples
        ui.wait_for(
            lambda page=page: peer_now(page)["quality"] in ("good", "fair"), "a quality level"
        )
    return panel, agent


def move_and_resume(ns: Netns, panel: Any, agent: Any) -> tuple[float, dict[str, Any]]:
    """Gives the namespace side a new address mid-call and waits for media on both sides
    again. Returns the seconds from the change to media decoded on both sides again, and each
    side's state before the change (``visitor``, ``agent``)."""
    before = {"visitor": peer_now(panel), "agent": peer_now(agent)}
    for page in (panel, agent):
        page.evaluate(MARK_PEER_JS)
    agent.evaluate(OFFER_WATCH_JS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    old_address = ns.address
    changed = time.monotonic()
    ns.move(3)
    assert ns.address != old_address
    # Both sides see the call reconnecting (the indicator says so, in words too) ...
    seen: set[str] = set()

    def both_reconnecting() -> bool:
        for side, page in (("visitor", panel), ("agent", agent)):
            now = peer_now(page)
            if now["reconnecting"] == "true":
                assert now["quality"] == "poor" and now["qualityWords"] == "Reconnecting…", now
                seen.add(side)
        return seen == {"visitor", "agent"}

    ui.wait_for(both_reconnecting, "the reconnecting state on both sides", explain=lambda: seen)
    agent.locator(ui.sel("agent-stage")).screenshot(path=str(SHOTS / "agent-reconnecting.png"))
    frozen = ui.frames_decoded(panel), ui.frames_decoded(agent)
    # ... and then media again, on the same connections.
    ui.wait_for(
        lambda: ui.frames_decoded(panel) > frozen[0] and ui.frames_decoded(agent) > frozen[1],
        "media decoded again on both sides",
        explain=lambda: ui.call_report(panel, agent) | {"now": [peer_now(panel), peer_now(agent)]},
    )
    return time.monotonic() - changed, before


def assert_recovered_by_ice_restart(
    ns: Netns, panel: Any, agent: Any, before: dict[str, dict[str, Any]]
) -> None:
    """The same call, the same peer connections, new ICE credentials and a new path."""
    ui.assert_video_flows(panel, agent)
    after = {"visitor": peer_now(panel), "agent": peer_now(agent)}
    for side in ("visitor", "agent"):
        was, now = before[side], after[side]
        assert now["same"], (side, "a new RTCPeerConnection instead of an ICE restart", now)
        assert now["callId"] == was["callId"], (side, was, now)
        assert now["restarts"] >= 1, (side, now)
        assert now["localUfrag"] != was["localUfrag"], (side, was, now)
    assert after["visitor"]["callId"] == after["agent"]["callId"]
    # No new offer reached the agent: the desk never put the visitor back in line.
    assert agent.evaluate("window.__hdOffers.shown") == 0
    assert ui.agent_status(agent) == "in_call"
    visitor_pair = ui.wait_for(lambda: ui.selected_pair(panel), "the visitor's new pair")
    agent_pair = ui.wait_for(lambda: ui.selected_pair(agent), "the agent's new pair")
    if visitor_pair["local"] == "host":
        assert visitor_pair["localAddress"] == ns.address, visitor_pair
        assert agent_pair["remoteAddress"] == ns.address, agent_pair
    # Media flows: the indicator is back to a level, no longer reconnecting.
    for page in (panel, agent):
        ui.wait_for(
            lambda page=page: (
                peer_now(page)["reconnecting"] == "false"
                and peer_now(page)["quality"] in ("good", "fair")
            ),
            "the indicator back from reconnecting",
        )


def test_a_visitor_who_moves_to_a_new_address_keeps_the_call() -> None:
    """Wi-Fi to mobile: the visitor's address changes mid-call. The call recovers by an ICE
    restart on the same peer connections, with the same call id and no new offer."""
    with namespace() as ns, ui.running_demo(host=ns.host) as demo, two_browsers(ns, demo) as b:
        errors: list[str] = []
        panel, agent = start_call(*b, demo, errors)
        seconds, before = move_and_resume(ns, panel, agent)
        print(f"NETCHANGE_RESUME_S {seconds:.2f} (address change to media on both sides)")
        assert_recovered_by_ice_restart(ns, panel, agent, before)
        panel.locator(ui.sel("hd-stage")).screenshot(path=str(SHOTS / "visitor-quality.png"))
        assert not [e for e in errors if "pageerror" in e], errors
        assert "internal_error" not in demo.output() and "Traceback" not in demo.output()


def test_a_path_cut_for_longer_than_the_grace_period_ends_the_call() -> None:
    """The visitor's network goes away and stays away: after the call's grace period the
    desk ends the call for the agent (peer_left), and the panel, which cannot reach the desk,
    ends it too, both with a clear message."""
    grace = 10
    env = {"HUMANDESK_CALL_GRACE": str(grace)}
    with (
        namespace() as ns,
        ui.running_demo(env, host=ns.host) as demo,
        two_browsers(ns, demo) as b,
    ):
        errors: list[str] = []
        panel, agent = start_call(*b, demo, errors)
        ns.cut()
        for page in (agent, panel):
            ui.wait_for(lambda page=page: peer_now(page)["reconnecting"] == "true", "reconnecting")
        ends = grace + 20  # the grace period, the reaper, the panel's own margin
        ui.wait_for(lambda: ui.agent_phase(agent) == "idle", "the agent's call ended", timeout=ends)
        notice = agent.locator(ui.sel("agent-notice")).text_content() or ""
        assert "The connection to Moving Visitor was lost." in notice, notice
        assert ui.agent_status(agent) in ("wrap_up", "available")
        assert agent.evaluate("window.hdPeer") is None
        assert not agent.locator(ui.sel("agent-quality")).is_visible()
        ui.wait_for(
            lambda: ui.visitor_phase(panel) == "ended", "the visitor's call ended", timeout=ends
        )
        ended = panel.locator(ui.sel("hd-ended-message")).text_content() or ""
        assert "lost the connection" in ended and "call has ended" in ended, ended
        assert panel.evaluate("window.hdPeer") is None
        assert not panel.locator(ui.sel("hd-quality")).is_visible()
        assert not [e for e in errors if "pageerror" in e], errors
        log = demo.output()
        assert "internal_error" not in log and "Traceback" not in log, log[-3000:]


def test_a_relayed_visitor_moves_with_fresh_turn_credentials() -> None:
    """Relay-only ICE through coturn: after the move both sides allocate again with fresh
    TURN credentials (``refresh_ice``), and media flows through the relay again."""
    need(Path(TURNSERVER).exists() or shutil.which(TURNSERVER) is not None, "coturn")
    with (
        namespace() as ns,
        running_coturn(ns.host) as turn,
        ui.running_demo(relay_env(turn, turn.secret), host=ns.host) as demo,
        two_browsers(ns, demo) as b,
    ):
        errors: list[str] = []
        panel, agent = start_call(*b, demo, errors)
        for page in (panel, agent):
            pair = ui.wait_for(lambda page=page: ui.selected_pair(page), "a relayed pair")
            assert pair["local"] == "relay", pair
        log_start = len(turn.output())
        seconds, before = move_and_resume(ns, panel, agent)
        print(f"NETCHANGE_RELAY_RESUME_S {seconds:.2f} (address change to media, relay only)")
        assert_recovered_by_ice_restart(ns, panel, agent, before)
        log = turn.output()[log_start:]
        for side, page in (("visitor", panel), ("agent", agent)):
            (old,) = before[side]["iceServers"]
            (new,) = peer_now(page)["iceServers"]
            assert new["username"] != old["username"], (side, old, new)  # fresh credentials
            pair = ui.wait_for(lambda page=page: ui.selected_pair(page), "the new relayed pair")
            assert pair["local"] == "relay" and pair["remote"] == "relay", (side, pair)
        # The visitor's relay was allocated again, from its new address, under the new name.
        (fresh,) = peer_now(panel)["iceServers"]
        assert re.search(
            rf"user <{re.escape(fresh['username'])}>: incoming packet ALLOCATE processed, success",
            log,
        ), log[-3000:]
        assert not [e for e in errors if "pageerror" in e], errors


def test_a_visitor_who_reloads_mid_call_is_negotiated_afresh() -> None:
    """The other way back into a call: a reload brings a new peer connection (another DTLS
    fingerprint), so the agent's ICE restart on its old one gives way to a new negotiation."""
    with ui.running_demo() as demo, ui.launched_chromium() as browser:
        errors: list[str] = []
        panel, agent = start_call(browser, browser, demo, errors)
        before = {"visitor": peer_now(panel), "agent": peer_now(agent)}
        agent.evaluate(MARK_PEER_JS)
        agent.evaluate(OFFER_WATCH_JS)
        shop = panel.page
        shop.reload()
        panel = ui.panel_frame(shop, demo)
        ui.wait_for(
            lambda: ui.visitor_phase(panel) == "in-call" and ui.agent_phase(agent) == "in-call",
            "both sides in the call again",
            explain=lambda: ui.call_report(panel, agent),
        )
        ui.assert_video_flows(panel, agent)
        after = {"visitor": peer_now(panel), "agent": peer_now(agent)}
        assert after["visitor"]["callId"] == after["agent"]["callId"] == before["agent"]["callId"]
        assert not after["agent"]["same"]  # negotiated afresh: a new connection
        assert agent.evaluate("window.__hdOffers.shown") == 0
        assert not [e for e in errors if "pageerror" in e], errors
