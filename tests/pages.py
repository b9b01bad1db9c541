"""The browser tests' shared parts: Debian's Chromium with fake devices, ``humandesk demo``
on free ports, the pages' test hooks and state (``data-*`` attributes), WebRTC statistics,
the CLI against a demo's data folder, and axe-core. Test modules use it as ``ui``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.harness import CHROMIUM, CHROMIUM_FLAGS, FAKE_UI, stop_process
from benchmarks.probes import AUTO_ACCEPT_JS as AUTO_ACCEPT_JS
from benchmarks.probes import WALL_CLOCK, first_frame_probe_js

from conftest import REPO, free_port, need

VIEWPORT = {"width": 1280, "height": 800}
# Screenshots go to test-results/screenshots; a deliberate update of the committed ones runs
# the browser tests with HUMANDESK_SCREENSHOTS=docs/screenshots.
SCREENSHOTS = REPO / os.environ.get("HUMANDESK_SCREENSHOTS", "test-results/screenshots")
RESULTS = REPO / "test-results"
PASSWORD = "browser-test-password-1"
TIMEOUT = 30.0
# Timed click-to-face rounds in the first test (each a fresh join, call and hang-up).
ROUNDS = max(1, int(os.environ.get("HUMANDESK_CLICK_TO_FACE_ROUNDS", "3")))

T = TypeVar("T")


def chromium_args(fake_ui: bool = True) -> list[str]:
    """The flags of DESIGN.md; without ``fake_ui`` the browser no longer grants the camera."""
    return [flag for flag in CHROMIUM_FLAGS if fake_ui or flag != FAKE_UI]


def need_chromium() -> None:
    need(Path(CHROMIUM).exists(), f"Chromium ({CHROMIUM})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright (Python package)")


def wait_for(
    check: Callable[[], T | None],
    what: str,
    timeout: float = TIMEOUT,
    explain: Callable[[], Any] | None = None,
) -> T:
    """Polls ``check`` until it returns something truthy, and returns that.

    ``explain`` adds what it returns to the failure message (e.g. both pages' states)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as exc:  # a frame still loading or navigating
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            details = ""
            if explain is not None:
                try:
                    details = f"; {explain()!r}"
                except Exception as exc:
                    details = f"; (explain failed: {exc!r})"
            raise AssertionError(f"no {what} within {timeout:.0f}s (last: {last!r}){details}")
        time.sleep(0.05)


# The demo server ------------------------------------------------------------------------


@dataclass
class Demo:
    desk: str
    shop: str
    password: str
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path  # the CLI reaches the running demo's Redis through it

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_demo(
    extra_env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[Demo]:
    """``humandesk demo`` on free ports of ``host`` with a short private data folder (a unix
    socket lives there), stopped with SIGTERM afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="hdb", dir="/tmp"))
    desk_port, shop_port = free_port(), free_port()
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("HUMANDESK_"):
            del env[name]  # a developer's own settings must not leak into the demo
    env |= {"PYTHONUNBUFFERED": "1", "HUMANDESK_DEMO_PASSWORD": PASSWORD}
    env |= extra_env or {}
    log = data_dir / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "humandesk.server.cli",
                "demo",
                "--port",
                str(desk_port),
                "--shop-port",
                str(shop_port),
                "--data-dir",
                str(data_dir),
                "--host",
                host,
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    demo = Demo(
        desk=f"http://{host}:{desk_port}",
        shop=f"http://{host}:{shop_port}",
        password=PASSWORD,
        proc=proc,
        log=log,
        data_dir=data_dir,
    )
    try:
        wait_ready(demo)
        yield demo
    finally:
        stop_process(proc, 20)
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_ready(demo: Demo, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.proc.poll() is not None:
            raise RuntimeError(f"the demo exited ({demo.proc.returncode}):\n{demo.output()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(demo.desk + "/readyz", timeout=1) as desk,
            urllib.request.urlopen(demo.shop + "/", timeout=1) as shop,
        ):
            if desk.status == 200 and shop.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the demo was not ready within {timeout}s:\n{demo.output()}")


# Pages ----------------------------------------------------------------------------------


def sel(testid: str) -> str:
    return f'[data-testid="{testid}"]'


def js_el(testid: str) -> str:
    """A JavaScript expression for the element with ``testid``."""
    return f"document.querySelector({json.dumps(sel(testid))})"


def watch_console(page: Any, label: str, sink: list[str]) -> None:
    """Keeps the page's errors, for failure messages (and to assert there were none)."""
    page.on("pageerror", lambda exc: sink.append(f"{label} pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            sink.append(f"{label} console.{msg.type}: {msg.text}")
            if msg.type in ("error", "warning")
            else None
        ),
    )


# What the console shows, for a failure message: where it is, its state (``data-*`` on its
# body), the sign-in form's error, its notice and the start of its visible text.
CONSOLE_REPORT_JS = """() => ({
    url: location.href,
    state: { ...document.body.dataset },
    status: (document.querySelector('[data-testid="agent-status"]') || { dataset: {} })
        .dataset.status,
    loginError: (document.querySelector('[data-testid="agent-login-error"]') || {}).textContent,
    notice: (document.querySelector('[data-testid="agent-notice"]') || {}).textContent,
    text: document.body.innerText.slice(0, 800),
})"""


def console_report(page: Any) -> dict[str, Any]:
    """What the console at ``page`` shows (see ``CONSOLE_REPORT_JS``)."""
    return page.evaluate(CONSOLE_REPORT_JS)  # type: ignore[no-any-return]


def login_agent(page: Any, demo: Demo, username: str = "demo", password: str | None = None) -> None:
    """Signs ``username`` (the demo agent unless given; the demo's password unless given) in
    to the console and waits for its socket and the status Offline. A console that gets no
    further says in the failure what it showed."""

    def showed() -> dict[str, Any]:
        return console_report(page)

    page.goto(demo.desk + "/agent")
    wait_for(lambda: page_data(page, "phase") == "login", "login", explain=showed)
    page.locator(sel("agent-username")).fill(username)
    page.locator(sel("agent-password")).fill(demo.password if password is None else password)
    page.locator(sel("agent-login")).click()
    wait_for(lambda: page_data(page, "connected") == "true", f"{username}'s socket", explain=showed)
    wait_for(lambda: agent_status(page) == "offline", "status offline after login", explain=showed)


@contextlib.contextmanager
def signed_in_agent(browser: Any, demo: Demo, errors: list[str]) -> Iterator[Any]:
    """The demo agent signed in to the console (in a context of its own), Offline, its errors
    kept in ``errors``; afterwards out of any call and Offline again, so that no offer goes
    to a console that is going away."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watch_console(page, "agent", errors)
    login_agent(page, demo)
    yield page
    with contextlib.suppress(Exception):
        if page_data(page, "callId"):
            page.locator(sel("agent-hangup")).click()
        if agent_status(page) != "offline":
            set_agent_status(page, "offline")
    context.close()


def agent_status(page: Any) -> str:
    return str(page.evaluate(f"{js_el('agent-status')}.dataset.status"))


def set_agent_status(page: Any, status: str) -> None:
    """Clicks Available / Break / Offline and waits until the desk has confirmed it (an
    Available agent with a visitor waiting goes straight on to an offer)."""
    button = {"available": "agent-available", "break": "agent-break", "offline": "agent-offline"}
    accepted = ("available", "offered") if status == "available" else (status,)
    page.locator(sel(button[status])).click()
    wait_for(lambda: agent_status(page) in accepted, f"agent status {status}")


def open_panel(context: Any, demo: Demo, path: str = "/") -> tuple[Any, Any]:
    """The shop (at ``path``) in a new tab, the launcher clicked, the panel's camera check done."""
    shop = context.new_page()
    shop.goto(demo.shop + path)
    shop.locator(sel("hd-launcher")).click()
    frame = panel_frame(shop, demo)
    wait_for(lambda: visitor_phase(frame) == "ready", "the panel ready to join")
    return shop, frame


def panel_frame(shop: Any, demo: Demo) -> Any:
    """The visitor panel inside the shop's widget iframe, once it has loaded from the desk.

    (``page.frames`` alone is not enough to poll: the sync API only takes in the browser's
    events while a call goes to the browser, which ``element_handle()`` does.)
    """

    def loaded() -> Any:
        frame = shop.locator(sel("hd-frame")).element_handle(timeout=5000).content_frame()
        return frame if frame and frame.url.startswith(demo.desk + "/visitor") else None

    return wait_for(loaded, "the visitor iframe")


def page_data(target: Any, key: str) -> str | None:
    """What a page (or the panel's frame) shows of its state: ``data-*`` on its ``<body>``
    (``phase``, ``status``, ``connected``, ``callId``, ...), written by its ``render``."""
    return target.evaluate(f"document.body.dataset[{json.dumps(key)}] ?? null")  # type: ignore[no-any-return]


def visitor_phase(frame: Any) -> str | None:
    return page_data(frame, "phase")


def agent_phase(page: Any) -> str:
    return str(page_data(page, "phase"))


def video_width(target: Any, testid: str) -> int:
    return int(target.evaluate(f"{js_el(testid)}.videoWidth"))


def playing(target: Any, testid: str) -> bool:
    """The <video> shows a moving picture: it has a size, is not paused and time advances."""
    return bool(
        target.evaluate(
            f"""() => {{
                const v = {js_el(testid)};
                return v.videoWidth > 0 && !v.paused && v.readyState >= 2 && v.currentTime > 0;
            }}"""
        )
    )


def give_up_place(frame: Any) -> None:
    """Leave the line, and yes (the panel asks once)."""
    frame.locator(sel("hd-leave")).click()
    frame.locator(sel("hd-leave-yes")).click()


def fill_and_join(frame: Any, name: str, topic: str) -> None:
    frame.locator(sel("hd-name")).fill(name)
    frame.locator(sel("hd-topic")).fill(topic)
    frame.locator(sel("hd-join")).click()


def join_and_accept(panel: Any, agent: Any, name: str, topic: str) -> None:
    """The visitor joins and waits, the agent goes Available and accepts the offer, and both
    are in the call."""
    fill_and_join(panel, name, topic)
    wait_for(lambda: visitor_phase(panel) == "waiting", "the visitor in line")
    set_agent_status(agent, "available")
    wait_for(lambda: visible(agent, "offer-card"), "the offer card")
    agent.locator(sel("offer-accept")).click()
    wait_for(lambda: visitor_phase(panel) == "in-call", "the visitor in the call")
    wait_for(lambda: agent_phase(agent) == "in-call", "the agent in the call")


# WebRTC statistics ----------------------------------------------------------------------

INBOUND_JS = """async (kind) => {
    const pc = window.hdPeer;
    if (!pc) return null;
    const stats = await pc.getStats();
    let found = null;
    // The busiest line of that kind: a call also has an idle line for a shared screen.
    stats.forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === kind
            && (!found || (r.packetsReceived || 0) >= found.packetsReceived)) {
            found = {
                framesDecoded: r.framesDecoded || 0,
                packetsReceived: r.packetsReceived || 0,
                bytesReceived: r.bytesReceived || 0,
                frameWidth: r.frameWidth || 0,
            };
        }
    });
    return found;
}"""

# Records Date.now() in window.__hdProbe.first at the first decoded video frame (polling every
# 20 ms), and an agent's console that accepts every offer at once: shared with the benchmark.
FIRST_FRAME_PROBE_JS = first_frame_probe_js(WALL_CLOCK, every_ms=20)

SELECTED_PAIR_JS = """async () => {
    const pc = window.hdPeer;
    if (!pc) return null;
    const stats = await pc.getStats();
    const byId = new Map();
    stats.forEach((r) => byId.set(r.id, r));
    let pairId = null;
    stats.forEach((r) => {
        if (r.type === "transport" && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
    });
    const pair = pairId && byId.get(pairId);
    if (!pair || pair.state !== "succeeded") return null;
    const local = byId.get(pair.localCandidateId) || {};
    const remote = byId.get(pair.remoteCandidateId) || {};
    return {
        local: local.candidateType, localAddress: local.address, localProtocol: local.protocol,
        remote: remote.candidateType, remoteAddress: remote.address,
        relayProtocol: local.relayProtocol || null, url: local.url || null,
    };
}"""


def inbound(target: Any, kind: str = "video") -> dict[str, int] | None:
    return target.evaluate(INBOUND_JS, kind)  # type: ignore[no-any-return]


def frames_decoded(target: Any) -> int:
    stats = inbound(target, "video")
    return stats["framesDecoded"] if stats else 0


def assert_video_flows(visitor: Any, agent: Any) -> None:
    """Both sides decode the other's video, more and more frames, and show a picture."""

    def both_decoding() -> tuple[int, int] | None:
        counts = frames_decoded(visitor), frames_decoded(agent)
        return counts if min(counts) > 0 else None

    first = wait_for(both_decoding, "decoded video frames on both sides")
    wait_for(lambda: playing(visitor, "hd-remote-video"), "the agent's picture in the panel")
    wait_for(lambda: playing(agent, "agent-remote-video"), "the visitor's picture at the agent")
    wait_for(
        lambda: frames_decoded(visitor) > first[0] + 5 and frames_decoded(agent) > first[1] + 5,
        "framesDecoded rising on both sides",
        timeout=10,
    )
    assert video_width(visitor, "hd-remote-video") > 0
    assert video_width(agent, "agent-remote-video") > 0


PEER_REPORT_JS = """() => ({
    state: { ...document.body.dataset },
    peer: window.hdPeer && {
        connection: window.hdPeer.connectionState,
        ice: window.hdPeer.iceConnectionState,
        signaling: window.hdPeer.signalingState,
        gathering: window.hdPeer.iceGatheringState,
    },
    probe: window.__hdProbe ? window.__hdProbe.first : undefined,
    visibility: document.visibilityState,
    notice: (document.querySelector('[data-testid="hd-notice"]')
        || document.querySelector('[data-testid="agent-notice"]') || {}).textContent,
})"""


def call_report(panel: Any, agent: Any) -> dict[str, Any]:
    """Both sides' state, for failure messages."""
    return {"visitor": panel.evaluate(PEER_REPORT_JS), "agent": agent.evaluate(PEER_REPORT_JS)}


def selected_pair(target: Any) -> dict[str, Any] | None:
    return target.evaluate(SELECTED_PAIR_JS)  # type: ignore[no-any-return]


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright with the flags of DESIGN.md, closed afterwards."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True)
        yield browser
        browser.close()


def cli(demo: Demo, *args: str, stdin: str | None = None) -> str:
    """``humandesk <command> <action> --data-dir <the demo's> ...``: the CLI finds the
    demo's Redis through its data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMANDESK_")}
    command, action, *rest = args
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "humandesk.server.cli",
            command,
            action,
            "--data-dir",
            str(demo.data_dir),
            *rest,
        ],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def add_agent(
    demo: Demo, name: str, password: str, display_name: str, queue: str = "support"
) -> str:
    """``humandesk agent add NAME --queue QUEUE --display-name ... --password-stdin`` on the
    demo's desk, the password on stdin."""
    args = ("agent", "add", name, "--queue", queue, "--display-name", display_name)
    return cli(demo, *args, "--password-stdin", stdin=password + "\n")


def visible(target: Any, testid: str) -> bool:
    return bool(target.locator(sel(testid)).is_visible())


def leave_line(frame: Any) -> None:
    """Gives up the place, if the panel still holds one (for a clean desk after a test)."""
    with contextlib.suppress(Exception):
        if visitor_phase(frame) in ("waiting", "connecting") and visible(frame, "hd-leave"):
            give_up_place(frame)
            wait_for(lambda: visitor_phase(frame) == "left", "the visitor gone", timeout=5)


def axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


class Audit:
    """Runs axe on one screen after another; keeps what each found."""

    def __init__(self) -> None:
        self.source = axe_source()
        self.found: dict[str, list[str]] = {}

    def __call__(self, screen: str, target: Any) -> None:
        if not target.evaluate("() => typeof window.axe === 'object'"):
            target.evaluate(self.source)
        result = target.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => [v.id, v.impact, v.nodes.length,"
            " v.nodes[0].target.join(' ')]))"
        )
        self.found[screen] = [json.dumps(v) for v in result]
