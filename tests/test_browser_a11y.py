"""Accessibility: axe-core finds no violation, of any impact, on any screen of the visitor
panel, the agent console, the wallboard and the landing page (Chromium, the real desk).

axe-core comes with the axe-playwright-python wheel; it is evaluated in the page (and in the
panel's frame) through Playwright, which the pages' CSP does not govern.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import (
    VIEWPORT,
    Demo,
    agent_phase,
    launched_chromium,
    login_agent,
    open_panel,
    running_demo,
    sel,
    set_agent_status,
    visitor_phase,
    wait_for,
)

pytestmark = pytest.mark.browser


def axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with running_demo() as demo:
        yield demo


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


FOCUSED = "() => document.activeElement && document.activeElement.dataset.testid"


def focused(frame: Any) -> str | None:
    value = frame.evaluate(FOCUSED)
    return str(value) if value else None


def test_no_screen_has_an_accessibility_violation(demo: Demo) -> None:
    audit = Audit()
    with launched_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        landing = context.new_page()
        landing.goto(demo.desk + "/")
        audit("landing", landing)
        wall = context.new_page()
        wall.goto(demo.desk + "/wallboard")
        wait_for(lambda: wall.locator(sel("wallboard-login-form")).is_visible(), "sign-in")
        audit("wallboard sign-in", wall)

        agent = context.new_page()
        agent.goto(demo.desk + "/agent")
        wait_for(lambda: agent_phase(agent) == "login", "the console's sign-in")
        audit("console sign-in", agent)
        login_agent(agent, demo)
        audit("console, Offline", agent)
        wall.reload()
        wait_for(lambda: wall.locator(sel("wallboard")).is_visible(), "the wallboard")
        audit("wallboard", wall)

        visitors = browser.new_context(viewport=VIEWPORT)
        shop, panel = open_panel(visitors, demo)
        audit("shop with the panel open", shop)
        audit("panel: the join form", panel)
        panel.locator(sel("hd-name")).fill("Ada")
        panel.locator(sel("hd-topic")).fill("My order")
        panel.locator(sel("hd-join")).press("Enter")  # by keyboard
        status = panel.locator(sel("hd-status"))
        wait_for(lambda: status.get_attribute("data-phase") == "nobody-free", "nobody free")
        # The keyboard goes to the place in line, not to the page's body.
        wait_for(lambda: focused(panel) == "hd-position", "the place focused after Join")
        audit("panel: waiting, nobody free", panel)
        # Tab stays in the open panel, however often it is pressed.
        for _ in range(12):
            shop.keyboard.press("Tab")
            assert focused(panel) is not None, "Tab left the panel"
        # Leaving asks once: the first press shows the question, on Stay in line.
        panel.locator(sel("hd-leave")).focus()
        shop.keyboard.press("Enter")
        wait_for(lambda: focused(panel) == "hd-leave-no", "the question, on Stay")
        audit("panel: leave the line?", panel)
        shop.keyboard.press("Enter")
        wait_for(lambda: focused(panel) == "hd-position", "back to the place")
        assert visitor_phase(panel) == "waiting"
        # Minimised and opened again while waiting: the place, never Leave.
        shop.keyboard.press("Escape")
        shop.locator(sel("hd-launcher")).click()
        wait_for(lambda: focused(panel) == "hd-position", "the place focused on reopening")
        panel.locator(sel("hd-max-wait-callback")).click()
        wait_for(lambda: panel.locator(sel("hd-callback-form")).is_visible(), "call-back form")
        audit("panel: the call-back form", panel)
        panel.locator(sel("hd-callback-back")).click()

        set_agent_status(agent, "available")
        wait_for(lambda: agent_phase(agent) == "offered", "the offer")
        audit("console: an offer", agent)
        agent.locator(sel("offer-accept")).click()
        wait_for(lambda: visitor_phase(panel) == "in-call", "the call")
        wait_for(lambda: agent_phase(agent) == "in-call", "the console in the call")
        assert focused(panel) in ("hd-hangup", "hd-mute")  # the call's controls, not the body
        audit("panel: in a call", panel)
        audit("console: in a call", agent)
        panel.locator(sel("hd-hangup")).click()
        wait_for(lambda: visitor_phase(panel) == "ended", "the end of the call")
        wait_for(lambda: focused(panel) == "hd-rating-1", "the rating's first star focused")
        audit("panel: the call ended, rating", panel)
        wait_for(lambda: agent_phase(agent) == "idle", "the console after the call")
        audit("console: wrap-up", agent)
        visitors.close()
        context.close()
    for screen, found in audit.found.items():
        print(f"axe {screen}: {len(found)} violations {found}")
    assert {s: f for s, f in audit.found.items() if f} == {}
