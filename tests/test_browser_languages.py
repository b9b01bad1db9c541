"""The languages in real browsers (Debian's Chromium, the demo desk): the panel in Polish from
the embed script's ``data-lang``, in Icelandic from the browser's languages, the console in
German by the agent's choice, and a German wallboard wording why the desk put an agent
Offline. Each page says its language in ``<html lang>``, and no English sentence of the
catalogs shows on it.

Screenshots: visitor-pl.png, visitor-pl-waiting.png, visitor-is.png, agent-de.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from babel.messages.pofile import read_po

from humandesk.web.i18n import LOCALE_DIR, translations

import pages as ui

pytestmark = pytest.mark.browser

SHOTS = ui.SCREENSHOTS


def english_sentences(lang: str) -> list[str]:
    """English msgids of some length whose translation in ``lang`` differs: none of them may
    show on a page in ``lang``."""
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    return [
        m.id
        for m in catalog
        if isinstance(m.id, str)
        and len(m.id) >= 14
        and not any(mark in m.id for mark in ("{", "%("))
        and m.string
        and m.string != m.id
    ]


def translated(lang: str, msgid: str) -> str:
    return translations(lang).gettext(msgid)


def visible_text(target: Any) -> str:
    return str(target.evaluate("() => document.body.innerText"))


def no_english(target: Any, lang: str) -> None:
    text = visible_text(target)
    shown = [s for s in english_sentences(lang) if s in text]
    assert not shown, f"English on a {lang} page: {shown}"


def html_lang(target: Any) -> str:
    return str(target.evaluate("() => document.documentElement.lang"))


def test_panel_in_polish_from_data_lang(demo: ui.Demo) -> None:
    with ui.launched_chromium() as browser:
        # The browser prefers German: the shop's data-lang wins.
        context = browser.new_context(viewport=ui.VIEWPORT, locale="de-DE")
        shop = context.new_page()
        shop.goto(demo.shop + "/?lang=pl")
        launcher = shop.locator(ui.sel("hd-launcher"))
        assert launcher.inner_text().strip() == translated("pl", "Talk to a person")
        launcher.click()
        panel = ui.panel_frame(shop, demo)
        ui.wait_for(lambda: ui.visitor_phase(panel) == "ready", "the panel ready")
        assert html_lang(panel) == "pl"
        no_english(panel, "pl")
        shop.screenshot(path=str(SHOTS / "visitor-pl.png"))

        ui.fill_and_join(panel, "Zofia", "Zamówienie 1234 nie dotarło")
        ui.wait_for(lambda: ui.visitor_phase(panel) == "waiting", "waiting in line")
        place = translated("pl", "You are {place} in line").replace("{place}", "1.")
        ui.wait_for(
            lambda: panel.locator(ui.sel("hd-position")).inner_text() == place,
            "the place in Polish",
            explain=lambda: panel.locator(ui.sel("hd-position")).inner_text(),
        )
        no_english(panel, "pl")
        shop.screenshot(path=str(SHOTS / "visitor-pl-waiting.png"))
        ui.give_up_place(panel)
        context.close()


def test_panel_in_icelandic_from_the_browser(demo: ui.Demo) -> None:
    with ui.launched_chromium() as browser:
        context = browser.new_context(viewport=ui.VIEWPORT, locale="is-IS")
        shop = context.new_page()
        shop.goto(demo.shop + "/")
        shop.locator(ui.sel("hd-launcher")).click()
        panel = ui.panel_frame(shop, demo)
        ui.wait_for(lambda: ui.visitor_phase(panel) == "ready", "the panel ready")
        assert html_lang(panel) == "is"
        no_english(panel, "is")
        shop.screenshot(path=str(SHOTS / "visitor-is.png"))
        context.close()


def test_console_follows_the_agents_choice(demo: ui.Demo) -> None:
    with ui.launched_chromium() as browser:
        context = browser.new_context(viewport=ui.VIEWPORT, locale="en-GB")
        agent = context.new_page()
        ui.login_agent(agent, demo)
        assert html_lang(agent) == "en"
        agent.locator(ui.sel("agent-language")).select_option("de")
        ui.wait_for(lambda: html_lang(agent) == "de", "the console in German")
        ui.wait_for(lambda: ui.page_data(agent, "connected") == "true", "the socket again")
        ui.wait_for(lambda: ui.agent_status(agent) == "offline", "signed in still")
        no_english(agent, "de")
        agent.screenshot(path=str(SHOTS / "agent-de.png"))
        # The choice stays for the next visit, and the sign-in form speaks it too.
        again = context.new_page()
        again.goto(demo.desk + "/agent")
        assert html_lang(again) == "de"
        agent.locator(ui.sel("agent-language")).select_option("en")
        ui.wait_for(lambda: html_lang(agent) == "en", "back in English")
        context.close()


def test_the_wallboard_words_the_desks_reasons_in_german(demo: ui.Demo) -> None:
    """Why the desk put an agent Offline reaches the wallboard as a code, which the page words
    in its language: Lena signs out of her console; a German wallboard says "Abgemeldet"."""
    password = "browser-test-password-de"
    ui.add_agent(demo, "lena", password, "Lena")
    try:
        with ui.launched_chromium() as browser:
            console = browser.new_context(viewport=ui.VIEWPORT)
            page = console.new_page()
            ui.login_agent(page, demo, "lena", password)
            ui.set_agent_status(page, "available")  # on the desk's board from now on
            page.locator(ui.sel("agent-logout")).click()
            ui.wait_for(lambda: ui.page_data(page, "phase") == "login", "Lena signed out")
            console.close()

            board = browser.new_context(viewport=ui.VIEWPORT, locale="de-DE")
            wall = board.new_page()
            wall.goto(demo.desk + "/wallboard")
            assert html_lang(wall) == "de"
            wall.locator(ui.sel("wallboard-username")).fill("demo")
            wall.locator(ui.sel("wallboard-password")).fill(demo.password)
            wall.locator(ui.sel("wallboard-login")).click()
            reason = wall.locator(ui.sel("wallboard-agent-reason-lena"))
            ui.wait_for(lambda: reason.count() == 1, "Lena's row with the reason")
            assert reason.inner_text().strip() == translated("de", "Signed out") == "Abgemeldet"
            board.close()
    finally:
        ui.cli(demo, "agent", "remove", "lena")
