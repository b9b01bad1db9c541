"""The pre-call test in Chromium (fake camera and microphone) against the demo's own worker:
the visitor sees their picture come back, the panel says the connection is good with its
numbers, and the agent's offer card shows the result the join carried; the microphone meter
moves with the fake microphone."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import pages as ui

pytestmark = pytest.mark.browser

SHOTS = ui.SCREENSHOTS


def precall_hook(frame: Any) -> dict[str, str]:
    hook: dict[str, str] = frame.evaluate(f"({{...{ui.js_el('hd-precall-result')}.dataset}})")
    return hook


def echo_showing(frame: Any) -> bool:
    """The picture back from the desk plays in the corner of the preview."""
    return bool(
        frame.evaluate(
            f"""() => {{
                const v = {ui.js_el("hd-precall-video")};
                return !v.hidden && v.videoWidth > 0 && v.readyState >= 2;
            }}"""
        )
    )


def worker_cpu_seconds(demo_pid: int) -> float:
    """The CPU time of the demo's pre-call worker (its child process), for the report."""
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == demo_pid and b"precall-worker" in cmdline:
            return (int(fields[11]) + int(fields[12])) / tick
    return float("nan")


def test_the_precall_result_reaches_the_panel_and_the_offer_card() -> None:
    with ui.running_demo() as demo, ui.launched_chromium() as browser:
        agent_ctx = browser.new_context(viewport=ui.VIEWPORT)
        visitor_ctx = browser.new_context(viewport=ui.VIEWPORT)
        try:
            agent = agent_ctx.new_page()
            ui.login_agent(agent, demo)
            cpu_before = worker_cpu_seconds(demo.proc.pid)
            started = time.monotonic()
            shop, panel = ui.open_panel(visitor_ctx, demo)
            # While the test runs, the visitor's own picture comes back through the desk.
            seen_echo = False

            SHOTS.mkdir(exist_ok=True)

            running_since: float | None = None

            def finished() -> bool:
                nonlocal seen_echo, running_since
                if running_since is None and precall_hook(panel).get("status") == "running":
                    running_since = time.monotonic()
                if not seen_echo and echo_showing(panel):
                    seen_echo = True
                    shop.screenshot(path=str(SHOTS / "precall-running.png"))
                return precall_hook(panel).get("status") in ("ok", "poor", "failed", "busy")

            ui.wait_for(finished, "the pre-call result", timeout=40)
            took = time.monotonic() - started
            test_s = time.monotonic() - (running_since or started)
            time.sleep(0.5)  # the worker closes the peer the panel closed
            cpu = worker_cpu_seconds(demo.proc.pid) - cpu_before
            hook = precall_hook(panel)
            assert hook["status"] == "ok", (
                hook,
                panel.locator(ui.sel("hd-precall-result")).inner_text(),
            )
            assert seen_echo, "the echoed picture never showed"
            assert 0 <= int(hook["rttMs"]) < 300, hook
            assert 0 <= float(hook["lossPct"]) <= 3, hook
            assert hook["path"] == "direct", hook
            words = panel.locator(ui.sel("hd-precall-result")).inner_text()
            assert "Your connection looks good." in words and "ms round trip" in words, words
            assert panel.evaluate(f"{ui.js_el('hd-precall-video')}.hidden")  # the test is over
            panel.locator(ui.sel("hd-precall-result")).scroll_into_view_if_needed()
            shop.screenshot(path=str(SHOTS / "precall-panel.png"))

            # The microphone meter moves with the fake microphone's beeps.
            panel.locator(ui.sel("hd-name")).click()
            meter = panel.locator(ui.sel("hd-mic-level"))
            ui.wait_for(
                lambda: float(meter.get_attribute("data-level") or 0) > 0.1, "the mic level"
            )
            assert meter.is_visible()

            ui.fill_and_join(panel, "Tested Visitor", "my order")
            ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "the visitor in line")
            ui.set_agent_status(agent, "available")
            ui.wait_for(lambda: agent.locator(ui.sel("offer-card")).is_visible(), "the offer card")
            assert ui.agent_status(agent) == "offered"
            card = agent.locator(ui.sel("offer-precall"))
            assert card.is_visible()
            assert card.get_attribute("data-status") == "ok"
            assert card.get_attribute("data-rtt-ms") == hook["rttMs"]
            assert card.get_attribute("data-path") == "direct"
            assert card.inner_text().startswith("Network"), card.inner_text()
            assert "Good" in card.inner_text() and "direct" in card.inner_text()
            agent.locator(ui.sel("offer-card")).screenshot(path=str(SHOTS / "precall-offer.png"))
            print(
                f"pre-call in Chromium: {hook}, the test {test_s:.1f} s, "
                f"{took:.1f} s from opening the panel, "
                f"{cpu:.2f} s of the worker's CPU"
            )
        finally:
            agent_ctx.close()
            visitor_ctx.close()
