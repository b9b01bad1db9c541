"""The contact-centre features in real browsers: fair re-offers after a decline, resuming after
a reload, wrap-up with notes, the automatic Break after missed offers, call-back requests,
blind transfers, the visitor's rating and a host site's priority token.

Same set-up as test_browser.py (Debian's Chromium through Playwright against ``humandesk
demo``), with a demo of its own whose queue rules are short (offers time out after 3 s, a
5 s wrap-up) and changed while it runs with the CLI, as an operator would.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

import pages as ui

pytestmark = pytest.mark.browser

PRIORITY_SECRET = "browser-test-priority-secret-0123456789"
# Short rules, so that timeouts and delays fit in a test.
SHORT_RULES = (
    "offer_timeout=3",
    "no_answer_delay=0.5",
    "reject_delay=2",
    "max_missed_offers=3",
    "wrapup=5",
)
SALES_AGENT = "sally"
SALES_PASSWORD = "browser-test-password-2"


# The CLI against the running demo -------------------------------------------------------


def closed_hours() -> str:
    """Opening hours that exclude now: one hour on a day three days ahead."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    day = days[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]
    return f"hours={day} 09:00-10:00"


# Pages ----------------------------------------------------------------------------------


def text(target: Any, testid: str) -> str:
    return str(target.locator(ui.sel(testid)).inner_text())


def position(frame: Any) -> str:
    return str(frame.evaluate(f"{ui.js_el('hd-position')}.dataset.position"))


def wait_position(frame: Any, expected: str, what: str = "") -> None:
    ui.wait_for(lambda: position(frame) == expected, what or f"position {expected}")


def waiting_count(agent: Any) -> str:
    return str(agent.evaluate(f"{ui.js_el('queue-waiting-support')}.textContent"))


def remaining_ms(agent: Any) -> int:
    return int(agent.evaluate(f"{ui.js_el('agent-wrapup')}.dataset.remainingMs"))


def offer_shown(agent: Any) -> bool:
    return ui.visible(agent, "offer-card")


def open_shop(context: Any, demo: ui.Demo) -> tuple[Any, Any]:
    """The shop with the launcher clicked, without waiting for the panel to be ready."""
    shop = context.new_page()
    shop.goto(demo.shop + "/")
    shop.locator(ui.sel("hd-launcher")).click()
    return shop, ui.panel_frame(shop, demo)


def no_page_errors(errors: list[str]) -> None:
    assert not [e for e in errors if "pageerror" in e], errors


def call_record(agent: Any, demo: ui.Demo, visitor_name: str) -> dict[str, str]:
    """The visitor's row of /api/calls.csv, fetched with the agent's session cookie."""
    response = agent.context.request.get(demo.desk + "/api/calls.csv")
    assert response.ok, response.status
    rows = list(csv.DictReader(io.StringIO(response.text())))
    mine = [row for row in rows if row["visitor_name"] == visitor_name]
    assert mine, rows
    return mine[-1]


# Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[ui.Demo]:
    ui.need_chromium()
    with ui.running_demo({"HUMANDESK_PRIORITY_SECRET": PRIORITY_SECRET}) as demo:
        ui.cli(demo, "queue", "set", "support", *SHORT_RULES)
        ui.cli(demo, "queue", "set", "sales")
        yield demo


@contextlib.contextmanager
def visitor(
    browser: Any,
    demo: ui.Demo,
    errors: list[str],
    ready: bool = True,
    path: str = "/",
    embed: dict[str, str] | None = None,
) -> Iterator[Any]:
    """A visitor of their own on the shop (at ``path``, with the attributes ``embed`` on the
    shop's embed tag); (shop page, panel frame). Leaves the line after."""
    context = browser.new_context(viewport=ui.VIEWPORT)
    if embed:
        context.add_init_script(EMBED_ATTRIBUTES.replace("ATTRS", json.dumps(embed)))
    try:
        if ready:
            shop, frame = ui.open_panel(context, demo, path)
        else:
            shop, frame = open_shop(context, demo)
        ui.watch_console(shop, "shop", errors)
        holder = [shop, frame]
        yield holder
        ui.leave_line(holder[1])
    finally:
        context.close()


# The shop's embed tag as a host site writes it, with more attributes. (Serving a rewritten
# page through page.route would make it "public" to Chromium, which then refuses the loopback
# desk's script; so they are added as the parser inserts the tag, long before the async loader
# has been fetched and runs.)
EMBED_ATTRIBUTES = """new MutationObserver(() => {
    for (const tag of document.querySelectorAll('script[src$="/widget.js"]')) {
        for (const [name, value] of Object.entries(ATTRS)) {
            if (!tag.hasAttribute(name)) tag.setAttribute(name, value);
        }
    }
}).observe(document, { childList: true, subtree: true });"""


# Tests ----------------------------------------------------------------------------------


def test_declined_visitor_is_offered_again_before_the_next(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    with (
        visitor(browser, demo, errors) as (_, first),
        visitor(browser, demo, errors) as (_, second),
    ):
        ui.fill_and_join(first, "First In Line", "a question about sizes")
        wait_position(first, "1")
        ui.fill_and_join(second, "Second In Line", "")
        wait_position(second, "2")
        assert "2nd in line" in text(second, "hd-position")

        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: offer_shown(agent), "the first offer")
        assert text(agent, "offer-visitor-name") == "First In Line"
        agent.locator(ui.sel("offer-decline")).click()
        declined = time.monotonic()
        ui.wait_for(lambda: not offer_shown(agent), "the declined offer gone")

        # The agent gets nothing during the reject delay (2 s); then the same visitor again,
        # who never lost their place to the one behind them.
        ui.wait_for(lambda: offer_shown(agent), "the next offer", timeout=15)
        assert time.monotonic() - declined >= 1.5
        assert text(agent, "offer-visitor-name") == "First In Line"
        assert position(first) == "1"
        assert ui.visitor_phase(second) == "waiting"

        ui.set_agent_status(agent, "offline")  # withdraws the offer; nobody is penalised
        ui.wait_for(lambda: not offer_shown(agent), "the offer withdrawn")
    no_page_errors(errors)


def test_reload_keeps_the_place_in_line(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    with (
        visitor(browser, demo, errors) as (_, first),
        visitor(browser, demo, errors) as second,
    ):
        ui.fill_and_join(first, "Stays Put", "")
        wait_position(first, "1")
        shop, frame = second
        ui.fill_and_join(frame, "Reloads The Page", "")
        wait_position(frame, "2")
        ui.wait_for(lambda: waiting_count(agent) == "2", "2 waiting at the agent")

        # A reload of the shop: the widget reopens its panel, which resumes with its ticket.
        shop.reload()
        frame = second[1] = ui.panel_frame(shop, demo)
        ui.wait_for(lambda: ui.visitor_phase(frame) == "waiting", "the reloaded panel back in line")
        wait_position(frame, "2", "the same place after the reload")
        assert "2nd in line" in text(frame, "hd-position")
        assert position(first) == "1"
        ui.wait_for(lambda: waiting_count(agent) == "2", "still 2 waiting (no second entry)")
    no_page_errors(errors)


def test_wrap_up_with_notes_and_the_visitors_rating(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    ui.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name, topic = "Grace Hopper", "The jacket I ordered arrived with a broken zip"
    with visitor(browser, demo, errors) as (shop, panel):
        ui.join_and_accept(panel, agent, name, topic)

        # Notes during the call: autosaved, the outcome at once.
        assert ui.visible(agent, "agent-notes")
        # The transfer control offers the desk's other lines, not the call's own.
        assert ui.visible(agent, "agent-transfer")
        lines = agent.locator(f"{ui.sel('agent-transfer-queue')} option").evaluate_all(
            "options => options.map(o => o.value)"
        )
        assert lines == ["", "sales"], lines
        agent.locator(ui.sel("agent-notes")).fill("Zip broke on first use. Order #1234.")
        agent.locator(ui.sel("agent-disposition")).select_option("resolved")
        ui.wait_for(lambda: text(agent, "agent-notes-status") == "Saved", "the notes saved")

        agent.locator(ui.sel("agent-hangup")).click()
        ui.wait_for(lambda: ui.visible(agent, "agent-wrapup"), "the wrap-up panel")
        assert ui.agent_status(agent) == "wrap_up"
        first = remaining_ms(agent)
        assert 0 < first <= 5000, first
        assert "Next visitor in" in text(agent, "agent-wrapup-text")
        ui.wait_for(lambda: remaining_ms(agent) < first - 700, "the wrap-up counting down")
        # The notes of the call stay, for the wrap-up.
        assert agent.locator(ui.sel("agent-notes")).input_value().startswith("Zip broke")

        agent.locator(ui.sel("agent-wrapup-extend")).click()
        ui.wait_for(lambda: remaining_ms(agent) > 25000, "30 s more wrap-up")
        agent.locator(ui.sel("agent-notes")).press_sequentially(" Replacement sent by courier.")
        agent.locator(ui.sel("agent-notes")).blur()
        ui.wait_for(lambda: text(agent, "agent-notes-status") == "Saved", "the notes saved again")
        agent.screenshot(path=str(ui.SCREENSHOTS / "agent-wrapup.png"))

        # A reload in the wrap-up: the console comes back with the notes the desk saved.
        agent.reload()
        ui.wait_for(lambda: ui.visible(agent, "agent-wrapup"), "the wrap-up panel after a reload")
        ui.wait_for(
            lambda: agent.locator(ui.sel("agent-notes")).input_value().endswith("by courier."),
            "the notes restored",
        )
        assert agent.locator(ui.sel("agent-notes")).input_value().startswith("Zip broke")
        assert agent.locator(ui.sel("agent-disposition")).input_value() == "resolved"
        assert text(agent, "agent-notes-status") == "Saved"

        # The visitor rates the call.
        ui.wait_for(lambda: ui.visitor_phase(panel) == "ended", "the visitor's call ended")
        ui.wait_for(lambda: ui.visible(panel, "hd-rating"), "the rating form")
        assert "The agent ended the call" in text(panel, "hd-ended-message")
        assert panel.locator(ui.sel("hd-rating-submit")).is_disabled()
        panel.locator(ui.sel("hd-rating-4")).click()
        assert panel.locator(ui.sel("hd-rating-4")).get_attribute("aria-pressed") == "true"
        assert "star" in (panel.locator(ui.sel("hd-rating-4")).get_attribute("aria-label") or "")
        panel.locator(ui.sel("hd-rating-comment")).fill("Quick and friendly, thank you!")
        panel.locator(ui.sel("hd-rating-comment")).blur()
        shop.locator(ui.sel("hd-frame")).screenshot(path=str(ui.SCREENSHOTS / "visitor-rating.png"))
        panel.locator(ui.sel("hd-rating-submit")).click()
        ui.wait_for(lambda: ui.visible(panel, "hd-rating-thanks"), "thanks for the rating")
        assert not ui.visible(panel, "hd-rating")
        # Rated: the panel lets its socket go.
        ui.wait_for(lambda: ui.page_data(panel, "rateCallId") == "", "rating done")

        # Done: Available at once, the notes cleared for the next call.
        agent.locator(ui.sel("agent-wrapup-done")).click()
        ui.wait_for(lambda: ui.agent_status(agent) == "available", "Available after Done")
        assert not ui.visible(agent, "agent-wrapup")
        assert not ui.visible(agent, "agent-notes")
        assert agent.locator(ui.sel("agent-notes")).input_value() == ""

        record = call_record(agent, demo, name)
        assert record["rating"] == "4", record
        assert record["rating_comment"] == "Quick and friendly, thank you!", record
        assert (
            record["notes"] == "Zip broke on first use. Order #1234. Replacement sent by courier."
        )
        assert record["disposition"] == "resolved", record
        assert float(record["wrapup_s"] or 0) > 1, record
    no_page_errors(errors)


def test_missed_offers_put_the_agent_on_break(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    ui.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with visitor(browser, demo, errors) as (_, panel):
        ui.fill_and_join(panel, "Patient Visitor", "")
        wait_position(panel, "1")
        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: offer_shown(agent), "the first offer")
        # The agent lets three offers run out (3 s each, 0.5 s apart).
        ui.wait_for(lambda: ui.agent_status(agent) == "break", "the desk's Break", timeout=25)
        ui.wait_for(lambda: ui.visible(agent, "agent-break-reason"), "the Break reason")
        assert "Missed 3 offers in a row" in text(agent, "agent-break-reason")
        assert not offer_shown(agent)
        assert ui.visitor_phase(panel) == "waiting" and position(panel) == "1"
        agent.screenshot(path=str(ui.SCREENSHOTS / "agent-break-reason.png"))

        ui.leave_line(panel)
        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: not ui.visible(agent, "agent-break-reason"), "the reason gone")
    no_page_errors(errors)


def test_call_back_requests(demo: ui.Demo, browser: Any, agent: Any, errors: list[str]) -> None:
    ui.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert ui.agent_status(agent) == "offline"
    with (
        visitor(browser, demo, errors) as (_, nobody_in),
        visitor(browser, demo, errors) as (_, refused),
    ):
        # Open, but nobody online (the agent is Offline): wait anyway, or ask for a call back.
        ui.wait_for(lambda: ui.visible(nobody_in, "hd-offline-notice"), "the nobody-online notice")
        assert text(nobody_in, "hd-join") == "Wait in line anyway"
        assert nobody_in.locator(ui.sel("hd-join")).is_visible()  # still in view in the frame
        assert nobody_in.evaluate(
            f"{ui.js_el('hd-join')}.getBoundingClientRect().bottom <= window.innerHeight"
        )
        nobody_in.locator(ui.sel("hd-callback-open")).click()
        ui.wait_for(lambda: ui.visible(nobody_in, "hd-callback-form"), "the call-back form")
        nobody_in.locator(ui.sel("hd-callback-name")).fill("Alan Turing")
        nobody_in.locator(ui.sel("hd-callback-contact")).fill("alan@example.org")
        nobody_in.locator(ui.sel("hd-callback-note")).fill("Returns: wrong size")
        nobody_in.locator(ui.sel("hd-callback-submit")).click()
        ui.wait_for(
            lambda: ui.visitor_phase(nobody_in) == "callback-saved", "the first confirmation"
        )
        assert "alan@example.org" in text(nobody_in, "hd-callback-saved")

        # The line closes while a panel is open: joining is refused, the form takes over.
        ui.cli(demo, "queue", "set", "support", closed_hours(), "timezone=UTC")
        refused.locator(ui.sel("hd-name")).fill("Late Joiner")
        refused.locator(ui.sel("hd-join")).click()
        ui.wait_for(lambda: ui.visitor_phase(refused) == "closed", "the refused join's form")
        assert ui.visible(refused, "hd-callback-form")
        assert refused.locator(ui.sel("hd-callback-name")).input_value() == "Late Joiner"

    try:
        # Closed before the panel opens: no camera, the opening time, the form.
        with visitor(browser, demo, errors, ready=False) as (shop, closed):
            ui.wait_for(lambda: ui.visitor_phase(closed) == "closed", "the closed panel")
            assert ui.visible(closed, "hd-callback-form")
            assert "closed" in text(closed, "hd-callback-title")
            assert "We open again" in text(closed, "hd-callback-intro")
            assert closed.evaluate(f"{ui.js_el('hd-local-video')}.srcObject") is None
            closed.locator(ui.sel("hd-callback-name")).fill("Ada <b>Lovelace</b>")
            closed.locator(ui.sel("hd-callback-contact")).fill("+44 20 7946 0958")
            closed.locator(ui.sel("hd-callback-note")).fill(
                "About order #1234 & <i>its</i> delivery"
            )
            closed.locator(ui.sel("hd-callback-note")).blur()
            shop.locator(ui.sel("hd-frame")).screenshot(
                path=str(ui.SCREENSHOTS / "visitor-callback.png")
            )
            closed.locator(ui.sel("hd-callback-submit")).click()
            ui.wait_for(lambda: ui.visitor_phase(closed) == "callback-saved", "the confirmation")
            assert "+44 20 7946 0958" in text(closed, "hd-callback-saved")
            assert not ui.visible(closed, "hd-error")
    finally:
        ui.cli(demo, "queue", "set", "support", "hours=")

    # The console lists both requests, as text, and updates when one is done.
    items = agent.locator(ui.sel("agent-callback"))
    ui.wait_for(lambda: items.count() == 2, "two call-back requests at the agent")
    listed = text(agent, "agent-callbacks")
    assert "Ada <b>Lovelace</b>" in listed and "+44 20 7946 0958" in listed
    assert "alan@example.org" in listed and "Returns: wrong size" in listed
    assert (
        agent.locator(f"{ui.sel('agent-callbacks')} b, {ui.sel('agent-callbacks')} i").count() == 0
    )
    assert text(agent, "agent-callbacks-count") == "2"
    # Contacts are links to call or write (built from the checked contact, never markup);
    # times carry their date.
    contact = f"{ui.sel('agent-callback-contact')} a"
    hrefs = agent.eval_on_selector_all(contact, "links => links.map((a) => a.href)")
    assert sorted(hrefs) == ["mailto:alan@example.org", "tel:+442079460958"]
    when = agent.eval_on_selector_all(
        ui.sel("agent-callback-time"), "times => times.map((t) => [t.textContent, t.dateTime])"
    )
    year = str(dt.datetime.now().year)
    assert len(when) == 2 and all(year in shown and shown != iso for shown, iso in when), when
    agent.screenshot(path=str(ui.SCREENSHOTS / "agent-callbacks.png"))
    alan = agent.locator(f'{ui.sel("agent-callback")}:has-text("Alan Turing")')
    alan.locator(ui.sel("agent-callback-done")).click()
    ui.wait_for(lambda: items.count() == 1, "the done request gone")
    assert "Alan Turing" not in text(agent, "agent-callbacks")
    # Done can be undone for a while: the request is back, the desk never closed it.
    ui.wait_for(lambda: ui.visible(agent, "agent-callback-undo"), "the undo toast")
    assert "Alan Turing" in text(agent, "agent-callback-undo")
    agent.locator(ui.sel("agent-callback-undo-button")).click()
    ui.wait_for(lambda: items.count() == 2, "the request back after Undo")
    assert (
        not ui.visible(agent, "agent-callback-undo") and text(agent, "agent-callbacks-count") == "2"
    )
    reload_console(agent)
    assert items.count() == 2
    for name in ("Alan Turing", "Ada <b>Lovelace</b>"):
        done = agent.locator(f'{ui.sel("agent-callback")}:has-text("{name}")')
        done.locator(ui.sel("agent-callback-done")).click()
    ui.wait_for(lambda: ui.visible(agent, "agent-callbacks-empty"), "no open requests")
    # Leaving the page within the time sends what is done: after a reload both stay closed.
    reload_console(agent)
    assert items.count() == 0 and ui.visible(agent, "agent-callbacks-empty")
    no_page_errors(errors)


def reload_console(agent: Any) -> None:
    """Reloads the console and waits for the desk's list of call-back requests."""
    agent.reload()
    ui.wait_for(lambda: ui.page_data(agent, "connected") == "true", "the console back")
    loaded = f"{ui.js_el('agent-callbacks')}.dataset.loaded"
    ui.wait_for(lambda: agent.evaluate(loaded) == "true", "the call-back requests listed")


def test_long_wait_offers_a_call_back_or_another_line(
    demo: ui.Demo, browser: Any, errors: list[str]
) -> None:
    ui.cli(demo, "queue", "set", "support", "max_wait=2")
    try:
        with visitor(browser, demo, errors) as (_, panel):
            ui.fill_and_join(panel, "Long Waiter", "the tent pole")
            wait_position(panel, "1")
            # Past the line's maximum wait: a call back is offered, and the place is kept.
            ui.wait_for(lambda: ui.visible(panel, "hd-max-wait"), "the long-wait offer", timeout=10)
            panel.locator(ui.sel("hd-max-wait-callback")).click()
            ui.wait_for(lambda: ui.visible(panel, "hd-callback-form"), "the call-back form")
            assert "keep your place" in text(panel, "hd-callback-intro")
            assert ui.visitor_phase(panel) == "waiting"
            assert panel.locator(ui.sel("hd-callback-name")).input_value() == "Long Waiter"
            panel.locator(ui.sel("hd-callback-back")).click()  # Keep waiting
            ui.wait_for(lambda: ui.visible(panel, "hd-position"), "back to the place in line")
            assert position(panel) == "1"

            # Sent while waiting: the desk gives up the place (callback_saved, left, close
            # 1000) and the panel shows the confirmation, not an error.
            panel.locator(ui.sel("hd-max-wait-callback")).click()
            panel.locator(ui.sel("hd-callback-contact")).fill("+1 555 0100 200")
            panel.locator(ui.sel("hd-callback-submit")).click()
            ui.wait_for(lambda: ui.visitor_phase(panel) == "callback-saved", "the confirmation")
            assert "+1 555 0100 200" in text(panel, "hd-callback-saved")
            time.sleep(0.5)
            assert ui.visitor_phase(panel) == "callback-saved"
            assert not text(panel, "hd-error")
            assert panel.evaluate("sessionStorage.getItem('hd-ticket-support')") is None

        # With an overflow line, the visitor is moved there instead, keeping their place.
        ui.cli(demo, "queue", "set", "support", "overflow=sales")
        with visitor(browser, demo, errors) as (_, panel):
            ui.fill_and_join(panel, "Overflowing", "")
            ui.wait_for(
                lambda: "sales" in text(panel, "hd-notice"), "the move to sales", timeout=10
            )
            assert "keep your place" in text(panel, "hd-notice")
            wait_position(panel, "1")
            assert "sales" in text(panel, "hd-queue-name").lower()
            assert ui.visitor_phase(panel) == "waiting"
    finally:
        ui.cli(demo, "queue", "set", "support", "max_wait=0", "overflow=")
    no_page_errors(errors)


def test_blind_transfer_to_another_line(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    ui.add_agent(demo, SALES_AGENT, SALES_PASSWORD, "Sally", "sales")

    # An open console hears of queues added and removed (its transfer list).
    def desk_queues() -> list[str]:
        return str(ui.page_data(agent, "deskQueues")).split()

    ui.cli(demo, "queue", "set", "returns")
    ui.wait_for(lambda: "returns" in desk_queues(), "the console told of a new queue")
    ui.cli(demo, "queue", "remove", "returns")
    ui.wait_for(lambda: "returns" not in desk_queues(), "the console told of its removal")
    assert "sales" in desk_queues()
    sales_context = browser.new_context(viewport=ui.VIEWPORT)
    notes = "Wants ten tents for a school trip.\nAsked about a discount."
    try:
        # The shop's page has a query string and a fragment: by default the agent sees the
        # page's address without them (data-send-page="path").
        with visitor(browser, demo, errors, path="/?coupon=SECRET42#reviews") as (_, panel):
            ui.fill_and_join(panel, "Transfer Me", "I want to buy ten tents")
            ui.set_agent_status(agent, "available")
            ui.wait_for(lambda: offer_shown(agent), "the offer")
            assert text(agent, "offer-page") == demo.shop + "/"
            assert not ui.visible(agent, "offer-handover")
            agent.locator(ui.sel("offer-accept")).click()
            ui.wait_for(lambda: ui.visitor_phase(panel) == "in-call", "the visitor in the call")
            ui.wait_for(lambda: ui.agent_phase(agent) == "in-call", "the agent in the call")
            agent.locator(ui.sel("agent-notes")).fill(notes)
            agent.locator(ui.sel("agent-disposition")).select_option("escalated")
            ui.wait_for(lambda: text(agent, "agent-notes-status") == "Saved", "the notes saved")

            ui.wait_for(lambda: ui.visible(agent, "agent-transfer"), "the transfer control")
            agent.locator(ui.sel("agent-transfer-queue")).select_option("sales")
            agent.locator(ui.sel("agent-transfer-submit")).click()

            # The visitor waits again, at the head of sales, on the same socket and ticket.
            ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "the visitor back in line")
            notice = text(panel, "hd-notice")
            assert "passed you to our sales team" in notice and "you're next" in notice, notice
            wait_position(panel, "1")
            assert "sales" in text(panel, "hd-queue-name").lower()
            assert panel.evaluate("window.hdPeer") is None
            assert panel.evaluate("sessionStorage.getItem('hd-ticket-support')")
            ui.wait_for(lambda: ui.agent_status(agent) == "wrap_up", "the agent in wrap-up")
            agent.locator(ui.sel("agent-wrapup-done")).click()
            ui.wait_for(lambda: ui.agent_status(agent) == "available", "the agent Available")
            time.sleep(1)
            assert ui.visitor_phase(panel) == "waiting"

            # A sales agent gets the visitor, marked as transferred, and talks to them.
            sales = sales_context.new_page()
            ui.watch_console(sales, "sales", errors)
            ui.login_agent(sales, demo, SALES_AGENT, SALES_PASSWORD)
            ui.set_agent_status(sales, "available")
            ui.wait_for(lambda: offer_shown(sales), "the sales offer")
            assert text(sales, "offer-visitor-name") == "Transfer Me"
            assert text(sales, "offer-transferred") == "Transferred from support"
            # What the first agent wrote comes with the visitor, and so does the page.
            assert text(sales, "offer-page") == demo.shop + "/"
            assert text(sales, "offer-handover-from") == (
                "Notes from Demo Agent (support) · Outcome: escalated"
            )
            assert text(sales, "offer-notes") == notes
            sales.screenshot(path=str(ui.SCREENSHOTS / "agent-offer-transferred.png"))
            audit = ui.Audit()
            audit("console: a transferred visitor's offer", sales)
            assert audit.found == {"console: a transferred visitor's offer": []}
            sales.locator(ui.sel("offer-accept")).click()
            ui.wait_for(lambda: ui.visitor_phase(panel) == "in-call", "the visitor with sales")
            # The call's notes start with them, saved as this call's own.
            assert sales.locator(ui.sel("agent-notes")).input_value() == notes
            assert sales.locator(ui.sel("agent-disposition")).input_value() == "escalated"
            ui.wait_for(
                lambda: text(sales, "agent-notes-status") == "Saved", "the notes taken over"
            )
            sales.locator(ui.sel("agent-hangup")).click()
            ui.wait_for(lambda: ui.visitor_phase(panel) == "ended", "the call with sales over")
            assert ui.visible(panel, "hd-rating")
            ui.set_agent_status(sales, "offline")
    finally:
        sales_context.close()
    no_page_errors(errors)


def test_priority_token_from_the_host_page(
    demo: ui.Demo, browser: Any, agent: Any, errors: list[str]
) -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "shop-customer-42",
            "priority": 5,
            "aud": "humandesk:priority",
            "iss": "humandesk",
            "iat": now,
            "exp": now + 600,
        },
        PRIORITY_SECRET,
        algorithm="HS256",
    )
    context = browser.new_context(viewport=ui.VIEWPORT)
    # The shop's embed tag as a host site that vouches for its customer writes it. (Serving a
    # rewritten page through page.route would make it "public" to Chromium, which then refuses
    # the loopback desk's script; so the attribute is added as the parser inserts the tag, long
    # before the async loader has been fetched and runs.)
    context.add_init_script(
        """new MutationObserver(() => {
            for (const tag of document.querySelectorAll('script[src$="/widget.js"]')) {
                if (!tag.hasAttribute("data-priority-token")) {
                    tag.setAttribute("data-priority-token", TOKEN);
                }
            }
        }).observe(document, { childList: true, subtree: true });""".replace(
            "TOKEN", json.dumps(token)
        )
    )
    try:
        shop, panel = ui.open_panel(context, demo)
        ui.watch_console(shop, "shop", errors)
        src = shop.locator(ui.sel("hd-frame")).get_attribute("src") or ""
        assert "?" in src and src.index("#priority_token=") > src.index("?"), src
        assert "#" not in panel.url  # read, then taken out of the panel's address
        ui.fill_and_join(panel, "Valued Customer", "")
        wait_position(panel, "1")
        ui.set_agent_status(agent, "available")
        ui.wait_for(lambda: offer_shown(agent), "the offer")
        assert text(agent, "offer-visitor-name") == "Valued Customer"
        assert text(agent, "offer-priority") == "Priority 5"
        assert not ui.visible(agent, "offer-transferred")
        ui.set_agent_status(agent, "offline")
        ui.leave_line(panel)
    finally:
        context.close()
    no_page_errors(errors)


# Stands in for the browser's Notification API and the tab's visibility, which a headless
# browser neither shows nor changes: records what the console does with them.
NOT_MISSED_STUBS = """
window.__hd = { asked: 0, shown: [], closed: 0, hidden: false, focused: 0 };
class StubNotification {
    constructor(title, options) {
        this.title = title;
        this.options = options;
        window.__hd.shown.push({ title, body: options.body, tag: options.tag });
        window.__hd.last = this;
    }
    close() { window.__hd.closed += 1; }
    static requestPermission() {
        window.__hd.asked += 1;
        StubNotification.permission = "granted";
        return Promise.resolve("granted");
    }
}
StubNotification.permission = "default";
window.Notification = StubNotification;
const focus = window.focus.bind(window);
window.focus = () => { window.__hd.focused += 1; focus(); };
Object.defineProperty(Document.prototype, "visibilityState", {
    get() { return window.__hd.hidden ? "hidden" : "visible"; },
});
window.__hd.tones = [];
window.__hd.silenced = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (when) {
    window.__hd.tones.push(when - this.context.currentTime);
    return start.call(this, when);
};
const disconnect = AudioNode.prototype.disconnect;
AudioNode.prototype.disconnect = function (...args) {
    if (this instanceof GainNode && args.length === 0) window.__hd.silenced += 1;
    return disconnect.apply(this, args);
};
"""


def test_offers_are_not_missed_in_a_background_tab(
    demo: ui.Demo, browser: Any, errors: list[str]
) -> None:
    ui.cli(demo, "queue", "set", "support", "offer_timeout=60")  # time to look at the offer
    context = browser.new_context(viewport=ui.VIEWPORT)
    context.add_init_script(NOT_MISSED_STUBS)
    page = context.new_page()
    ui.watch_console(page, "agent", errors)

    def seen() -> dict[str, Any]:
        return dict(page.evaluate("window.__hd"))

    def hide(hidden: bool) -> None:
        page.evaluate(
            "(h) => { window.__hd.hidden = h;"
            " document.dispatchEvent(new Event('visibilitychange')); }",
            hidden,
        )

    def icon() -> str:
        return str(page.evaluate("document.querySelector('link[rel=icon]').getAttribute('href')"))

    try:
        ui.login_agent(page, demo)
        title = page.title()
        assert seen()["asked"] == 0  # never on load
        ui.set_agent_status(page, "available")
        ui.wait_for(
            lambda: ui.page_data(page, "notifications") == "granted", "notifications allowed"
        )
        assert seen()["asked"] == 1  # asked at the click on Available
        # The agent switches to another tab: the console says its timers may be slowed.
        hide(True)
        ui.wait_for(lambda: ui.visible(page, "agent-background-warning"), "the background warning")
        assert "may come late" in text(page, "agent-background-warning-text")
        # A shop that lets the agent see the page's whole address.
        shop_page = "/?coupon=SPRING#tents"
        embed = {"data-send-page": "full"}
        with visitor(browser, demo, errors, path=shop_page, embed=embed) as (_, panel):
            ui.fill_and_join(panel, "Hidden Tab", "a tent with a broken pole")
            ui.wait_for(lambda: offer_shown(page), "the offer")
            assert text(page, "offer-page") == demo.shop + shop_page
            # A desktop notification, the title and a badge icon, all while hidden.
            ui.wait_for(lambda: seen()["shown"], "a desktop notification")
            shown = seen()["shown"]
            offer_title = "Incoming call \N{EN DASH} Hidden Tab"
            assert [n["title"] for n in shown] == [offer_title], shown
            assert shown[0]["body"].startswith("a tent with a broken pole\n")
            assert page.title() in (f"(1) {offer_title}", f"(1) {title}")
            ui.wait_for(lambda: page.title() == f"(1) {title}", "the title alternating")
            assert icon().startswith("data:image/svg+xml,")
            # The ring: two tones every two seconds, scheduled for the whole countdown.
            tones = seen()["tones"]
            assert len(tones) == 2 * 30 and max(tones) > 58, tones
            # A click on the notification brings the console forward.
            page.evaluate("window.__hd.last.onclick()")
            assert seen()["focused"] == 1 and seen()["closed"] == 1
            hide(False)
            page.screenshot(path=str(ui.SCREENSHOTS / "agent-offer-background-warning.png"))
            audit = ui.Audit()
            audit("console: the background warning", page)
            assert audit.found == {"console: the background warning": []}
            page.locator(ui.sel("offer-decline")).click()
            ui.wait_for(lambda: not offer_shown(page), "the offer gone")
            # The ring silenced, title and icon back as they were.
            assert seen()["silenced"] == 1
            assert page.title() == title
            assert icon() == "data:,"
            page.locator(ui.sel("agent-background-dismiss")).click()
            assert not ui.visible(page, "agent-background-warning")
            ui.set_agent_status(page, "offline")
    finally:
        context.close()
        ui.cli(demo, "queue", "set", "support", "offer_timeout=3")
    no_page_errors(errors)
