"""The supervisors' wallboard in a real browser: Debian's Chromium through Playwright against
``humandesk demo``, as in test_browser.py.

The demo agent signs in to the console; the wallboard is a second page of the same browser
context (the same session cookie). A visitor joins from the shop: the wallboard shows them
waiting within a poll or two, and the agent in a call once they accept. The test takes the
screenshot ``wallboard.png`` (see test_browser.SCREENSHOTS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import pages as ui

pytestmark = pytest.mark.browser

WALL = {"width": 1600, "height": 1000}  # a wall screen, a little larger than a laptop's
POLL_S = 8.0  # the wallboard polls every 2 s: a change shows within a few seconds
SECOND_PASSWORD = "browser-test-password-3"
NOT_YET = "\u2013"  # what "Updated" shows before the first answer (an en dash)


def text(page: Any, testid: str) -> str:
    return str(page.locator(ui.sel(testid)).inner_text()).strip()


def phase(page: Any) -> str:
    return str(page.evaluate("document.body.dataset.phase"))


def row_state(page: Any, name: str) -> str | None:
    """The row's state, read in one step (a row may go between a count and a read)."""
    state: str | None = page.evaluate(
        """(testid) => {
            const row = document.querySelector(`[data-testid="${testid}"]`);
            return row ? row.dataset.state : null;
        }""",
        f"wallboard-agent-{name}",
    )
    return state


def open_wallboard(page: Any, demo: ui.Demo, query: str = "") -> None:
    page.goto(demo.desk + "/wallboard" + query)
    ui.wait_for(lambda: phase(page) == "board", "the wallboard")
    ui.wait_for(
        lambda: page.locator(ui.sel("wallboard-queue-support")).count() == 1, "support tile"
    )


# Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[ui.Demo]:
    ui.need_chromium()
    with ui.running_demo() as demo:
        ui.cli(demo, "queue", "set", "sales")
        ui.add_agent(demo, "sally", SECOND_PASSWORD, "Sally Sales", "sales")
        yield demo


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=WALL)
    yield context
    context.close()


# Tests ----------------------------------------------------------------------------------


def test_wallboard_follows_a_visitor_and_the_agent(
    demo: ui.Demo, browser: Any, context: Any, errors: list[str]
) -> None:
    ui.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    agent = context.new_page()
    ui.watch_console(agent, "agent", errors)
    ui.login_agent(agent, demo)
    board = context.new_page()  # the same context: the agent's session cookie
    ui.watch_console(board, "wallboard", errors)
    # A short service-level threshold, so that a wait past it shows within the test.
    open_wallboard(board, demo, "?threshold=2")
    assert board.locator(ui.sel("wallboard-queue-sales")).count() == 1
    assert text(board, "wallboard-waiting-support") == "0"
    assert text(board, "wallboard-longest-support") == "00:00"
    assert "Service level (≤ 2 s)" in text(board, "wallboard-queue-support")
    ui.wait_for(lambda: row_state(board, "demo") == "offline", "the demo agent offline")
    assert row_state(board, "sally") == "offline"
    assert "Sally Sales" in text(board, "wallboard-agent-sally")
    assert not board.locator(ui.sel("wallboard-offline")).is_visible()
    first_update = text(board, "wallboard-updated")
    assert first_update != NOT_YET

    visitor_context = browser.new_context(viewport={"width": 1280, "height": 800})
    second_context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        _, panel = ui.open_panel(visitor_context, demo)
        ui.fill_and_join(panel, "Wanda Waiting", "a question about my order")
        ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "the visitor in line")
        ui.wait_for(
            lambda: text(board, "wallboard-waiting-support") == "1",
            "1 waiting on the wallboard",
            timeout=POLL_S,
        )
        # Past the 2 s threshold the tile is highlighted and the longest wait counts up.
        tile = board.locator(ui.sel("wallboard-queue-support"))
        ui.wait_for(lambda: tile.get_attribute("data-alert") == "true", "the tile highlighted")
        assert text(board, "wallboard-longest-support") >= "00:02"
        assert board.locator(ui.sel("wallboard-queue-sales")).get_attribute("data-alert") == "false"
        assert text(board, "wallboard-waiting-sales") == "0"

        # The agent takes the visitor: nobody waits, the agent is in a call.
        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: agent.locator(ui.sel("offer-card")).is_visible(), "the offer")
        agent.locator(ui.sel("offer-accept")).click()
        ui.wait_for(lambda: ui.agent_phase(agent) == "in-call", "the agent in the call")
        ui.wait_for(
            lambda: text(board, "wallboard-waiting-support") == "0",
            "0 waiting on the wallboard",
            timeout=POLL_S,
        )
        ui.wait_for(lambda: row_state(board, "demo") == "in_call", "the agent row in call")
        assert "In call" in text(board, "wallboard-agent-demo")
        assert tile.get_attribute("data-alert") == "false"
        ui.wait_for(
            lambda: (
                board.evaluate(
                    """[...document.querySelectorAll('[data-testid="wallboard-agents-support"] li')]
                   .find(li => li.dataset.state === "in_call").dataset.count"""
                )
                == "1"
            ),
            "1 in call in the support tile",
        )
        assert text(board, "wallboard-answered-support") == "1"
        assert text(board, "wallboard-sl-support") in ("0%", "100%")

        # A second visitor waits while the agent talks: the picture for the README.
        _, second = ui.open_panel(second_context, demo)
        ui.fill_and_join(second, "Walter Next", "")
        ui.wait_for(
            lambda: text(board, "wallboard-waiting-support") == "1",
            "the second visitor waiting",
            timeout=POLL_S,
        )
        ui.wait_for(lambda: tile.get_attribute("data-alert") == "true", "highlighted again")
        board.bring_to_front()
        board.screenshot(path=str(ui.SCREENSHOTS / "wallboard.png"))
        ui.leave_line(second)
    finally:
        with contextlib.suppress(Exception):
            if ui.page_data(agent, "callId"):
                agent.locator(ui.sel("agent-hangup")).click()
            ui.set_agent_status(agent, "offline")
        second_context.close()
        visitor_context.close()
    assert not [e for e in errors if "pageerror" in e], errors


def test_signed_out_wallboard_asks_to_sign_in(
    demo: ui.Demo, context: Any, errors: list[str]
) -> None:
    page = context.new_page()
    ui.watch_console(page, "wallboard", errors)
    page.goto(demo.desk + "/wallboard")
    ui.wait_for(lambda: phase(page) == "login", "the sign-in prompt")
    assert page.locator(ui.sel("wallboard-login-view")).is_visible()
    assert not page.locator(ui.sel("wallboard")).is_visible()
    assert page.locator(f"{ui.sel('wallboard-login-view')} a[href='/agent']").count() == 1

    page.locator(ui.sel("wallboard-username")).fill("demo")
    page.locator(ui.sel("wallboard-password")).fill("wrong password")
    page.locator(ui.sel("wallboard-login")).click()
    ui.wait_for(lambda: text(page, "wallboard-login-error"), "the refusal")
    assert phase(page) == "login"

    page.locator(ui.sel("wallboard-password")).fill(demo.password)
    page.locator(ui.sel("wallboard-login")).click()
    ui.wait_for(lambda: phase(page) == "board", "the wallboard after signing in")
    assert text(page, "wallboard-user") == "Demo Agent"
    ui.wait_for(lambda: row_state(page, "demo") is not None, "the agent rows")

    # Server text goes in as text: an account whose display name is markup shows it as such.
    markup = "<img src=x onerror=window.pwned=1> <i>Mal</i>"
    ui.add_agent(demo, "mallory", SECOND_PASSWORD, markup)
    try:
        ui.wait_for(lambda: row_state(page, "mallory") == "offline", "the new account's row")
        assert "<i>Mal</i>" in text(page, "wallboard-agent-mallory")
        assert (
            page.locator(
                f"{ui.sel('wallboard-agents')} img, {ui.sel('wallboard-agents')} i"
            ).count()
            == 0
        )
        assert page.evaluate("window.pwned") is None
    finally:
        ui.cli(demo, "agent", "remove", "mallory")
    ui.wait_for(lambda: row_state(page, "mallory") is None, "the removed account's row gone")
    assert [e for e in errors if "pageerror" in e] == []


def test_an_agent_who_is_not_a_supervisor_is_told_so(
    demo: ui.Demo, context: Any, errors: list[str]
) -> None:
    """Sally signs in on the wallboard: she is told the screen is for supervisors, with the way
    back to her console, and so is she when she opens the wallboard again."""
    page = context.new_page()
    ui.watch_console(page, "wallboard", errors)
    page.goto(demo.desk + "/wallboard")
    ui.wait_for(lambda: phase(page) == "login", "the sign-in prompt")
    page.locator(ui.sel("wallboard-username")).fill("sally")
    page.locator(ui.sel("wallboard-password")).fill(SECOND_PASSWORD)
    page.locator(ui.sel("wallboard-login")).click()
    ui.wait_for(lambda: phase(page) == "forbidden", "the refusal")
    forbidden = page.locator(ui.sel("wallboard-forbidden"))
    assert forbidden.is_visible()
    assert "Ask a supervisor to give you the role" in forbidden.inner_text()
    assert forbidden.locator("a[href='/agent']").count() == 1
    for hidden in ("wallboard", "wallboard-login-view", "wallboard-loading", "wallboard-updated"):
        assert not page.locator(ui.sel(hidden)).is_visible(), hidden

    response = page.goto(demo.desk + "/wallboard")
    assert response is not None and response.status == 403
    assert phase(page) == "forbidden"
    page.wait_for_timeout(2500)  # a poll's time: the page stays as it is and asks nothing
    assert phase(page) == "forbidden" and forbidden.is_visible()
    assert not page.locator(ui.sel("wallboard-login-view")).is_visible()
    assert [e for e in errors if "pageerror" in e] == []


def test_wallboard_says_when_the_desk_cannot_be_reached(
    demo: ui.Demo, context: Any, errors: list[str]
) -> None:
    page = context.new_page()
    ui.login_agent(page, demo)
    open_wallboard(page, demo)
    ui.wait_for(lambda: text(page, "wallboard-updated") != NOT_YET, "a first update")
    assert not page.locator(ui.sel("wallboard-offline")).is_visible()

    page.route("**/api/**", lambda route: route.abort())
    ui.wait_for(
        lambda: page.locator(ui.sel("wallboard-offline")).is_visible(),
        "the unreachable notice",
        timeout=POLL_S,
    )
    assert "cannot be reached" in text(page, "wallboard-offline")
    assert page.locator(ui.sel("wallboard-queue-support")).count() == 1  # the last figures stay
    page.unroute("**/api/**")
    ui.wait_for(
        lambda: not page.locator(ui.sel("wallboard-offline")).is_visible(),
        "the notice gone",
        timeout=POLL_S,
    )
    assert text(page, "wallboard-waiting-support") in ("0", "1")
