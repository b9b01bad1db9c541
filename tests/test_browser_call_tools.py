"""The call's own tools in Chromium, with three fake cameras and three fake microphones and the
screen picked by Chromium itself (``--auto-select-desktop-capture-source``, which works
headless): a camera and microphone switch in the middle of a call keeps the call and its
video flowing without a new offer, the choice is kept for the next visit, the visitor's screen
shows large at the agent and stops (the button, and the browser's own Stop), Enlarge makes the
panel large, and a phone on its side (667 x 375) has the whole call in view. Against an aiortc
agent, whose offer has no line for a screen, the screen goes in the camera's place.

Screenshots go to ``test-results/`` (the shared screen at both sides, the phone's call)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from humandesk.signaling.peers import DeskPeer

import pages as ui

pytestmark = pytest.mark.browser

SHOTS = ui.SCREENSHOTS
PHONE = {"width": 667, "height": 375}
FAKE_DEVICE = "--use-fake-device-for-media-stream"
TOOL_FLAGS = [
    # Three cameras (fake_device_0, _1, _2; three microphones as always). The second is a
    # 16-bit depth camera, which Chromium shows but never encodes: the switch goes to the third.
    f"{FAKE_DEVICE}=device-count=3",
    "--auto-select-desktop-capture-source=Entire screen",  # getDisplayMedia picks, no prompt
]

# What a page sends: each sender's kind, its track's device and label, and the local SDP (a
# new offer or answer would change it).
SENDING_JS = """() => {
    const pc = window.hdPeer;
    if (!pc) return null;
    const tracks = pc.getSenders().filter((s) => s.track).map((s) => ({
        kind: s.track.kind,
        device: (s.track.getSettings().deviceId || ""),
        label: s.track.label,
        state: s.track.readyState,
    }));
    return { tracks, sdp: pc.localDescription ? pc.localDescription.sdp : "" };
}"""


def sending(target: Any, kind: str) -> dict[str, str]:
    report = target.evaluate(SENDING_JS)
    found = [t for t in report["tracks"] if t["kind"] == kind] if report else []
    assert len(found) == 1, report
    return found[0]  # type: ignore[no-any-return]


def sending_all(target: Any, kind: str) -> list[str]:
    """The labels of the tracks the page sends of ``kind`` (a shared screen: "screen:...")."""
    report = target.evaluate(SENDING_JS)
    return sorted(t["label"] for t in report["tracks"] if t["kind"] == kind) if report else []


# Frames decoded per received video line (its mid): a screen on its own line counts apart.
DECODED_JS = """async () => {
    const pc = window.hdPeer;
    const out = {};
    if (pc) (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") out[r.mid] = r.framesDecoded || 0;
    });
    return out;
}"""


def decoded(target: Any) -> dict[str, int]:
    return target.evaluate(DECODED_JS)  # type: ignore[no-any-return]


def local_sdp(target: Any) -> str:
    return str(target.evaluate(SENDING_JS)["sdp"])


def options(target: Any, testid: str) -> list[dict[str, str]]:
    return target.evaluate(  # type: ignore[no-any-return]
        f"Array.from({ui.js_el(testid)}.options,"
        " (o) => ({ value: o.value, label: o.textContent }))"
    )


def selected(target: Any, testid: str) -> str:
    return str(target.evaluate(f"{ui.js_el(testid)}.value"))


def option(target: Any, testid: str, label: str) -> dict[str, str]:
    return next(o for o in options(target, testid) if o["label"] == label)


def other_option(target: Any, testid: str) -> dict[str, str]:
    current = selected(target, testid)
    return next(o for o in options(target, testid) if o["value"] != current)


OUTBOUND_JS = """async () => {
    const pc = window.hdPeer;
    if (!pc) return null;
    const out = [];
    (await pc.getStats()).forEach((r) => {
        if (r.type === "outbound-rtp" || r.type === "inbound-rtp" || r.type === "media-source")
            out.push({
                type: r.type, kind: r.kind,
                frames: r.framesEncoded ?? r.framesDecoded ?? r.frames,
                packets: r.packetsSent ?? r.packetsReceived, w: r.frameWidth ?? r.width,
            });
    });
    return out;
}"""


def keeps_decoding(target: Any, what: str, more: int = 30, sender: Any = None) -> None:
    """Frames decoded (on every received video line) rise by ``more`` from now."""
    start = sum(decoded(target).values())
    ui.wait_for(
        lambda: sum(decoded(target).values()) >= start + more,
        f"{what}: frames decoded rising",
        explain=lambda: {
            "receiver": target.evaluate(OUTBOUND_JS),
            "sender": sender.evaluate(OUTBOUND_JS) if sender else None,
            "sending": sender.evaluate(SENDING_JS) if sender else None,
        },
    )


def remote_width(target: Any, testid: str) -> int:
    return int(target.evaluate(f"{ui.js_el(testid)}.videoWidth"))


@contextlib.contextmanager
def tools_browser() -> Iterator[Any]:
    ui.need_chromium()
    from playwright.sync_api import sync_playwright

    args = [a for a in ui.chromium_args() if a != FAKE_DEVICE] + TOOL_FLAGS
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ui.CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium with the tools' devices (``demo``, ``agent`` and ``errors``: conftest.py)."""
    with tools_browser() as browser:
        yield browser


def start_call(panel: Any, agent: Any, name: str) -> None:
    """The visitor joins, the agent takes them, and video flows both ways."""
    ui.join_and_accept(panel, agent, name, "a question")
    ui.assert_video_flows(panel, agent)


def hang_up(panel: Any, agent: Any) -> None:
    panel.locator(ui.sel("hd-hangup")).click()
    ui.wait_for(lambda: ui.visitor_phase(panel) == "ended", "the visitor's call ended")
    ui.wait_for(lambda: ui.agent_status(agent) == "wrap_up", "the agent in wrap-up")
    agent.locator(ui.sel("agent-wrapup-done")).click()
    ui.wait_for(lambda: ui.agent_status(agent) in ("available", "offered"), "the agent available")
    ui.set_agent_status(agent, "offline")


def test_a_device_switch_in_a_call_keeps_the_call_and_is_kept_for_the_next_visit(
    browser: Any, demo: ui.Demo, agent: Any, errors: list[str]
) -> None:
    context = browser.new_context(viewport=ui.VIEWPORT)
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "shop", errors)
        # The pickers list the devices by name (the browser granted them) before joining.
        cameras = options(panel, "hd-camera-select")
        assert [c["label"] for c in cameras] == [f"fake_device_{n}" for n in range(3)], cameras
        assert len(options(panel, "hd-mic-select")) == 3
        assert panel.locator(ui.sel("hd-camera-select")).is_visible()
        assert panel.locator(ui.sel("hd-camera-select")).is_enabled()
        # The agent's console lists them too, and its microphone meter moves.
        assert len(options(agent, "agent-camera-select")) == 3
        meter = agent.locator(ui.sel("agent-mic-level"))
        ui.wait_for(lambda: float(meter.get_attribute("data-level") or 0) > 0.1, "the mic level")

        start_call(panel, agent, "Switching Visitor")
        call_id = ui.page_data(panel, "callId")
        sdp = local_sdp(panel)
        agent_sdp = local_sdp(agent)
        before = sending(panel, "video")

        # The visitor picks the other camera in the call.
        assert selected(panel, "hd-camera-select") == cameras[0]["value"]
        camera = option(panel, "hd-camera-select", "fake_device_2")
        panel.locator(ui.sel("hd-camera-select")).select_option(camera["value"])
        ui.wait_for(
            lambda: sending(panel, "video")["label"] == camera["label"], "the new camera sent"
        )
        assert sending(panel, "video")["device"] != before["device"]
        keeps_decoding(agent, "the agent after the camera switch", sender=panel)
        # The same call on the same connection: no new offer or answer.
        assert ui.page_data(panel, "callId") == call_id and ui.visitor_phase(panel) == "in-call"
        assert local_sdp(panel) == sdp and local_sdp(agent) == agent_sdp
        assert selected(panel, "hd-camera-select") == camera["value"]

        # The microphone too: the agent keeps receiving sound.
        mic = other_option(panel, "hd-mic-select")
        panel.locator(ui.sel("hd-mic-select")).select_option(mic["value"])
        ui.wait_for(lambda: sending(panel, "audio")["label"] == mic["label"], "the new mic sent")
        heard = ui.inbound(agent, "audio")
        assert heard
        ui.wait_for(
            lambda: (
                (ui.inbound(agent, "audio") or {}).get("packetsReceived", 0)
                > heard["packetsReceived"] + 50
            ),
            "the agent hearing the new microphone",
        )
        # Mute still mutes the new microphone.
        panel.locator(ui.sel("hd-mute")).click()
        assert (
            panel.evaluate(
                "window.hdPeer.getSenders().find((s) => s.track && s.track.kind === 'audio')"
                ".track.enabled"
            )
            is False
        )
        panel.locator(ui.sel("hd-mute")).click()

        # The agent switches camera in the call: the visitor keeps seeing them.
        agent_camera = option(agent, "agent-camera-select", "fake_device_2")
        agent.locator(ui.sel("agent-camera-select")).select_option(agent_camera["value"])
        ui.wait_for(
            lambda: sending(agent, "video")["label"] == agent_camera["label"], "the agent's camera"
        )
        keeps_decoding(panel, "the visitor after the agent's switch", sender=agent)
        assert local_sdp(agent) == agent_sdp
        hang_up(panel, agent)

        # The next visit starts with the devices picked this time.
        _, again = ui.open_panel(context, demo)
        ui.wait_for(lambda: selected(again, "hd-camera-select") == camera["value"], "camera kept")
        assert selected(again, "hd-mic-select") == mic["value"]
        track = again.evaluate(f"{ui.js_el('hd-local-video')}.srcObject.getVideoTracks()[0].label")
        assert track == camera["label"]
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        context.close()


def test_the_visitor_shares_their_screen_and_the_agent_sees_it_large(
    browser: Any, demo: ui.Demo, agent: Any, errors: list[str]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=ui.VIEWPORT)
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "shop", errors)
        allow = shop.locator(ui.sel("hd-frame")).get_attribute("allow") or ""
        assert "display-capture" in allow.split("; "), allow
        start_call(panel, agent, "Sharing Visitor")
        sdp = local_sdp(panel)
        camera_width = remote_width(agent, "agent-remote-video")
        camera_label = sending(panel, "video")["label"]
        share = panel.locator(ui.sel("hd-share-screen"))
        assert share.is_visible() and share.inner_text().strip() == "Share screen"
        assert agent.locator(ui.sel("agent-screen-video")).is_hidden()

        share.click()
        # The agent: the screen (1280 x 720, not the 640 x 480 camera) large, labelled...
        screen = agent.locator(ui.sel("agent-screen-video"))
        ui.wait_for(lambda: screen.is_visible(), "the agent's screen view")
        ui.wait_for(
            lambda: remote_width(agent, "agent-screen-video") == 1280, "the screen's picture"
        )
        assert camera_width != 1280
        assert agent.locator(ui.sel("agent-screen-label")).inner_text() == "Screen shared"
        box = screen.bounding_box()
        stage = agent.locator(ui.sel("agent-stage")).bounding_box()
        assert box and stage and box["width"] == stage["width"] and box["height"] == stage["height"]
        # ... and the visitor's camera small beside it, both moving: two lines, one offer.
        camera_box = agent.locator(ui.sel("agent-remote-video")).bounding_box()
        assert camera_box and camera_box["width"] < stage["width"] / 3, camera_box
        assert remote_width(agent, "agent-remote-video") == camera_width
        lines = decoded(agent)
        assert len(lines) == 2, lines
        ui.wait_for(
            lambda: all(decoded(agent)[mid] > lines[mid] + 20 for mid in lines),
            "frames decoded rising on both the camera's line and the screen's",
        )
        # The visitor sees that they share, and what.
        assert panel.locator(ui.sel("hd-sharing")).is_visible()
        assert share.get_attribute("aria-pressed") == "true"
        assert share.inner_text().strip() == "Stop sharing"
        sent = sending_all(panel, "video")
        assert sent[0] == camera_label and sent[1].startswith("screen"), sent
        assert local_sdp(panel) == sdp  # replaceTrack: no new answer
        agent.screenshot(path=str(SHOTS / "share-agent.png"))
        shop.screenshot(path=str(SHOTS / "share-visitor.png"))

        # Stop sharing: the camera goes back; the agent's large view goes.
        share.click()
        ui.wait_for(lambda: screen.is_hidden(), "the agent's screen view gone")
        ui.wait_for(lambda: remote_width(agent, "agent-remote-video") == camera_width, "the camera")
        assert panel.locator(ui.sel("hd-sharing")).is_hidden()
        assert share.get_attribute("aria-pressed") == "false"
        assert sending_all(panel, "video") == [camera_label]
        keeps_decoding(agent, "the agent after the share")

        # Again, stopped by the browser's own "Stop sharing" (the track ends).
        share.click()
        ui.wait_for(lambda: screen.is_visible(), "the agent's screen view again")
        ui.wait_for(lambda: len(sending_all(panel, "video")) == 2, "the screen sent again")
        panel.evaluate(
            "window.hdPeer.getSenders().find((s) => s.track && s.track.label.startsWith('screen'))"
            ".track.dispatchEvent(new Event('ended'))"
        )
        ui.wait_for(lambda: screen.is_hidden(), "the screen view gone after the browser's Stop")
        ui.wait_for(
            lambda: sending_all(panel, "video") == [camera_label], "the screen no more sent"
        )
        assert panel.locator(ui.sel("hd-sharing")).is_hidden()
        assert local_sdp(panel) == sdp

        # Enlarge: the host page makes the panel large, and back.
        frame_el = shop.locator(ui.sel("hd-frame"))
        small = frame_el.bounding_box()
        enlarge = panel.locator(ui.sel("hd-enlarge"))
        assert small and enlarge.is_visible()
        enlarge.click()
        ui.wait_for(lambda: (frame_el.bounding_box() or {}).get("width", 0) > 1000, "a large panel")
        assert shop.locator(ui.sel("hd-launcher")).is_hidden()
        assert enlarge.get_attribute("aria-pressed") == "true"
        keeps_decoding(panel, "the visitor in the large panel")
        shop.screenshot(path=str(SHOTS / "call-enlarged.png"))
        enlarge.click()
        ui.wait_for(lambda: frame_el.bounding_box() == small, "the panel's usual size")
        assert shop.locator(ui.sel("hd-launcher")).is_visible()
        hang_up(panel, agent)
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        context.close()


def inside(box: dict[str, float] | None, view: dict[str, int]) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= view["width"]
        and box["y"] + box["height"] <= view["height"]
    )


def test_a_phone_on_its_side_has_the_whole_call_in_view(
    browser: Any, demo: ui.Demo, agent: Any, errors: list[str]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "phone", errors)
        frame_el = shop.locator(ui.sel("hd-frame"))
        start_call(panel, agent, "Phone Visitor")
        ui.wait_for(lambda: shop.locator(ui.sel("hd-launcher")).is_hidden(), "the launcher hidden")
        assert frame_el.bounding_box() == {"x": 0, "y": 0, **PHONE}
        ui.wait_for(lambda: panel.locator(ui.sel("hd-devices")).is_visible(), "the pickers")
        for testid in (
            "hd-remote-video",
            "hd-mute",
            "hd-camera",
            "hd-share-screen",
            "hd-hangup",
            "hd-camera-select",
            "hd-mic-select",
            "hd-chat-input",
            "hd-chat-send",
        ):
            box = panel.locator(ui.sel(testid)).bounding_box()
            assert inside(box, PHONE), (testid, box)
        # Nothing to scroll: the call is the panel's whole height.
        sizes = panel.evaluate(
            "({ scroll: document.scrollingElement.scrollHeight, view: window.innerHeight,"
            " wide: document.scrollingElement.scrollWidth, width: window.innerWidth })"
        )
        assert sizes["scroll"] <= sizes["view"] and sizes["wide"] <= sizes["width"], sizes
        remote = panel.locator(ui.sel("hd-remote-video")).bounding_box()
        assert remote and remote["width"] >= 360 and remote["height"] >= 250, remote
        assert panel.locator(ui.sel("hd-enlarge")).is_hidden()  # full screen already
        # The controls work where they are: Mute by touch.
        panel.locator(ui.sel("hd-mute")).tap()
        assert panel.locator(ui.sel("hd-mute")).get_attribute("aria-pressed") == "true"
        panel.locator(ui.sel("hd-mute")).tap()
        shop.screenshot(path=str(SHOTS / "phone-call.png"))
        print(json.dumps({"phone": PHONE, "remote_video": remote}))
        hang_up(panel, agent)
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        context.close()


class ThreadedAgent:
    """An aiortc agent (signaling/peers.py) on an event loop of its own, beside the sync
    browser: its offer has one video line, as any client's without a line for a screen."""

    def __init__(self, demo: ui.Demo) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.peer: DeskPeer = self.run(self._signed_in(demo))

    async def _signed_in(self, demo: ui.Demo) -> DeskPeer:
        peer = DeskPeer(demo.desk, "agent", origin=demo.desk)  # its session on this loop
        await peer.login("demo", demo.password)
        await peer.connect()
        return peer

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def width(self) -> int:
        frame = self.peer.last_frame
        return int(frame.width) if frame is not None else 0

    def told_screen(self) -> list[bool]:
        return [bool(m.get("screen")) for m in self.peer.seen if m.get("type") == "peer_media"]

    async def _status(self, *wanted: str) -> None:
        while (await self.peer.expect("status"))["status"] not in wanted:
            pass

    async def _offline(self) -> None:
        """After the call: the wrap-up done and Offline, so the next test's agent starts so."""
        await self._status("wrap_up")
        await self.peer.send({"type": "wrapup", "action": "done"})
        await self._status("available", "offered")
        await self.peer.send({"type": "status", "status": "offline"})
        await self._status("offline")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._offline())
        with contextlib.suppress(Exception):
            self.run(self.peer.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_without_a_screen_line_the_screen_goes_in_the_cameras_place(
    browser: Any, demo: ui.Demo, errors: list[str]
) -> None:
    agent = ThreadedAgent(demo)
    context = browser.new_context(viewport=ui.VIEWPORT)
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "shop", errors)
        ui.fill_and_join(panel, "Old Client Caller", "a question")
        ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "the visitor in line")
        agent.run(agent.peer.go_available())
        agent.run(agent.peer.accept_next_offer())
        ui.wait_for(lambda: ui.visitor_phase(panel) == "in-call", "the visitor in the call")
        ui.wait_for(lambda: agent.width() == 640, "the visitor's camera at the agent")
        sdp = local_sdp(panel)
        camera_label = sending(panel, "video")["label"]

        panel.locator(ui.sel("hd-share-screen")).click()
        # One video line: the screen takes the camera's place on it, without a new answer.
        ui.wait_for(lambda: agent.width() == 1280, "the screen at the agent")
        assert sending_all(panel, "video") == [sending(panel, "video")["label"]]
        assert sending(panel, "video")["label"].startswith("screen")
        assert panel.locator(ui.sel("hd-sharing")).is_visible()
        ui.wait_for(lambda: agent.told_screen()[-1:] == [True], "peer_media with screen")
        assert local_sdp(panel) == sdp

        panel.locator(ui.sel("hd-share-screen")).click()
        ui.wait_for(lambda: agent.width() == 640, "the camera back at the agent")
        assert sending_all(panel, "video") == [camera_label]
        ui.wait_for(lambda: agent.told_screen()[-1:] == [False], "peer_media without screen")
        frames = agent.peer.frames_received
        ui.wait_for(lambda: agent.peer.frames_received > frames + 30, "the camera flowing")
        assert local_sdp(panel) == sdp
        panel.locator(ui.sel("hd-hangup")).click()
        ui.wait_for(lambda: ui.visitor_phase(panel) == "ended", "the call ended")
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        context.close()
        agent.close()


# A visitor without a camera: every request for video fails as on a machine without one.
NO_CAMERA_JS = """(() => {
    const md = navigator.mediaDevices;
    const ask = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => c && c.video
        ? Promise.reject(new DOMException("no camera", "NotFoundError"))
        : ask(c);
})();"""


def test_a_visitor_without_a_camera_shares_their_screen_on_its_own_line(
    browser: Any, demo: ui.Demo, agent: Any, errors: list[str]
) -> None:
    context = browser.new_context(viewport=ui.VIEWPORT)
    context.add_init_script(NO_CAMERA_JS)
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "shop", errors)
        assert ui.page_data(panel, "audioOnly") == "true"
        ui.join_and_accept(panel, agent, "Voice Only Sharer", "a question")
        assert sending_all(panel, "video") == []
        share = panel.locator(ui.sel("hd-share-screen"))
        assert share.is_enabled()
        share.click()
        screen = agent.locator(ui.sel("agent-screen-video"))
        ui.wait_for(lambda: screen.is_visible(), "the agent's screen view")
        ui.wait_for(lambda: remote_width(agent, "agent-screen-video") == 1280, "the screen")
        keeps_decoding(agent, "the agent seeing the screen", sender=panel)
        assert [label[:7] for label in sending_all(panel, "video")] == ["screen:"]
        share.click()
        ui.wait_for(lambda: screen.is_hidden(), "the screen view gone")
        # replaceTrack(null) settles a moment after the agent is told the share is over
        ui.wait_for(lambda: sending_all(panel, "video") == [], "the screen no longer sent")
        assert ui.visitor_phase(panel) == "in-call"
        hang_up(panel, agent)
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        context.close()
