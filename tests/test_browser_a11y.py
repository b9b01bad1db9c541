"""Accessibility: axe-core finds no violation, of any impact, on any screen of the visitor
panel, the agent console, the wallboard and the landing page (Chromium, the real desk).

axe-core comes with the axe-playwright-python wheel; it is evaluated in the page (and in the
panel's frame) through Playwright, which the pages' CSP does not govern.
"""

from __future__ import annotations

from typing import Any

import pytest

import pages as ui

pytestmark = pytest.mark.browser


FOCUSED = "() => document.activeElement && document.activeElement.dataset.testid"


def focused(frame: Any) -> str | None:
    value = frame.evaluate(FOCUSED)
    return str(value) if value else None


def test_no_screen_has_an_accessibility_violation(demo: ui.Demo) -> None:
    audit = ui.Audit()
    with ui.launched_chromium() as browser:
        context = browser.new_context(viewport=ui.VIEWPORT)
        landing = context.new_page()
        landing.goto(demo.desk + "/")
        audit("landing", landing)
        wall = context.new_page()
        wall.goto(demo.desk + "/wallboard")
        ui.wait_for(lambda: wall.locator(ui.sel("wallboard-login-form")).is_visible(), "sign-in")
        audit("wallboard sign-in", wall)

        agent = context.new_page()
        agent.goto(demo.desk + "/agent")
        ui.wait_for(lambda: ui.agent_phase(agent) == "login", "the console's sign-in")
        audit("console sign-in", agent)
        ui.login_agent(agent, demo)
        audit("console, Offline", agent)
        wall.reload()
        ui.wait_for(lambda: wall.locator(ui.sel("wallboard")).is_visible(), "the wallboard")
        audit("wallboard", wall)

        visitors = browser.new_context(viewport=ui.VIEWPORT)
        shop, panel = ui.open_panel(visitors, demo)
        audit("shop with the panel open", shop)
        audit("panel: the join form", panel)
        panel.locator(ui.sel("hd-name")).fill("Ada")
        panel.locator(ui.sel("hd-topic")).fill("My order")
        panel.locator(ui.sel("hd-join")).press("Enter")  # by keyboard
        status = panel.locator(ui.sel("hd-status"))
        ui.wait_for(lambda: status.get_attribute("data-phase") == "nobody-free", "nobody free")
        # The keyboard goes to the place in line, not to the page's body.
        ui.wait_for(lambda: focused(panel) == "hd-position", "the place focused after Join")
        audit("panel: waiting, nobody free", panel)
        # Tab stays in the open panel, however often it is pressed.
        for _ in range(12):
            shop.keyboard.press("Tab")
            assert focused(panel) is not None, "Tab left the panel"
        # Leaving asks once: the first press shows the question, on Stay in line.
        panel.locator(ui.sel("hd-leave")).focus()
        shop.keyboard.press("Enter")
        ui.wait_for(lambda: focused(panel) == "hd-leave-no", "the question, on Stay")
        audit("panel: leave the line?", panel)
        shop.keyboard.press("Enter")
        ui.wait_for(lambda: focused(panel) == "hd-position", "back to the place")
        assert ui.visitor_phase(panel) == "waiting"
        # Minimised and opened again while waiting: the place, never Leave.
        shop.keyboard.press("Escape")
        shop.locator(ui.sel("hd-launcher")).click()
        ui.wait_for(lambda: focused(panel) == "hd-position", "the place focused on reopening")
        panel.locator(ui.sel("hd-max-wait-callback")).click()
        ui.wait_for(
            lambda: panel.locator(ui.sel("hd-callback-form")).is_visible(), "call-back form"
        )
        audit("panel: the call-back form", panel)
        panel.locator(ui.sel("hd-callback-back")).click()

        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: ui.agent_phase(agent) == "offered", "the offer")
        audit("console: an offer", agent)
        agent.locator(ui.sel("offer-accept")).click()
        ui.wait_for(lambda: ui.visitor_phase(panel) == "in-call", "the call")
        ui.wait_for(lambda: ui.agent_phase(agent) == "in-call", "the console in the call")
        assert focused(panel) in ("hd-hangup", "hd-mute")  # the call's controls, not the body
        audit("panel: in a call", panel)
        audit("console: in a call", agent)
        panel.locator(ui.sel("hd-hangup")).click()
        ui.wait_for(lambda: ui.visitor_phase(panel) == "ended", "the end of the call")
        ui.wait_for(lambda: focused(panel) == "hd-rating-1", "the rating's first star focused")
        audit("panel: the call ended, rating", panel)
        ui.wait_for(lambda: ui.agent_phase(agent) == "idle", "the console after the call")
        audit("console: wrap-up", agent)
        visitors.close()
        context.close()
    for screen, found in audit.found.items():
        print(f"axe {screen}: {len(found)} violations {found}")
    assert {s: f for s, f in audit.found.items() if f} == {}
