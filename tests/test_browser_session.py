"""An agent's session in a real browser: idle sign-out (never in a call or a wrap-up), a
console closed by an account change made on the command line, and a Redis that stops
answering for a while (the console says so and sets the status by itself once it is back)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humandesk.server.embedded_redis import socket_path_for

import pages as ui

pytestmark = pytest.mark.browser

IDLE_S = 5


@pytest.fixture(scope="module")
def demo() -> Iterator[ui.Demo]:
    ui.need_chromium()
    with ui.running_demo({"HUMANDESK_IDLE_SIGNOUT": str(IDLE_S)}) as demo:
        yield demo


def login_text(page: Any) -> str:
    return str(page.locator(ui.sel("agent-login-error")).inner_text())


def test_an_idle_console_signs_out_but_never_in_a_call_or_wrap_up(
    browser: Any, demo: ui.Demo
) -> None:
    context = browser.new_context(viewport=ui.VIEWPORT)
    visitor_ctx = browser.new_context(viewport=ui.VIEWPORT)
    try:
        agent = context.new_page()
        ui.login_agent(agent, demo)
        ui.set_agent_status(agent, "available")
        _, panel = ui.open_panel(visitor_ctx, demo)
        ui.fill_and_join(panel, "Long Talker", "a long call")
        ui.wait_for(lambda: agent.locator(ui.sel("offer-card")).is_visible(), "the offer card")
        agent.locator(ui.sel("offer-accept")).click()
        ui.wait_for(lambda: ui.agent_phase(agent) == "in-call", "the call")
        time.sleep(IDLE_S * 2)  # no input at the console: a call is not idleness
        assert ui.agent_phase(agent) == "in-call"
        panel.locator(ui.sel("hd-hangup")).click()
        ui.wait_for(lambda: ui.agent_status(agent) == "wrap_up", "the wrap-up")
        time.sleep(IDLE_S * 1.5)
        assert ui.agent_status(agent) == "wrap_up" and ui.agent_phase(agent) != "login"
        agent.locator(ui.sel("agent-wrapup-done")).click()  # input: the idle clock starts again
        ui.wait_for(lambda: ui.agent_status(agent) == "available", "available again")
        ui.wait_for(
            lambda: ui.agent_phase(agent) == "login", "the idle sign-out", timeout=IDLE_S + 20
        )
        assert "without activity" in login_text(agent)
        # Signed out for real: the session is gone, not only the page.
        assert agent.evaluate("fetch('/api/me').then((r) => r.status)") == 401
        assert ui.visitor_phase(panel) in ("ended", "rating")
    finally:
        context.close()
        visitor_ctx.close()


def test_an_account_change_on_the_command_line_closes_the_console(
    browser: Any, demo: ui.Demo
) -> None:
    context = browser.new_context(viewport=ui.VIEWPORT)
    try:
        agent = context.new_page()
        ui.login_agent(agent, demo)
        ui.cli(demo, "agent", "disable", "demo")
        ui.wait_for(lambda: ui.agent_phase(agent) == "login", "the sign-in form")
        assert "disabled" in login_text(agent)
        ui.cli(demo, "agent", "enable", "demo")
        ui.login_agent(agent, demo)
        assert ui.page_data(agent, "connected") == "true"
    finally:
        context.close()


def redis_pid(data_dir: Path) -> int:
    """The demo's embedded redis-server, as it tells its own process id."""
    import redis

    client = redis.Redis(unix_socket_path=str(socket_path_for(data_dir.resolve())))
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def at_the_desk(page: Any) -> bool:
    """The agent is there (a key press), so the idle sign-out of this module stays away."""
    page.keyboard.press("Shift")
    return True


def test_the_console_rides_out_a_redis_that_stops_answering(browser: Any, demo: ui.Demo) -> None:
    context = browser.new_context(viewport=ui.VIEWPORT)
    pid = redis_pid(demo.data_dir)
    try:
        agent = context.new_page()
        ui.login_agent(agent, demo)
        os.kill(pid, signal.SIGSTOP)
        try:
            agent.locator(ui.sel("agent-available")).click()
            ui.wait_for(
                lambda: (
                    at_the_desk(agent)
                    and "trouble reaching" in agent.locator(ui.sel("agent-notice")).inner_text()
                ),
                "the console saying the desk has trouble",
                timeout=30,
            )
            assert ui.agent_phase(agent) != "login"
        finally:
            os.kill(pid, signal.SIGCONT)
        # Once Redis answers again, the status the agent chose is set without another click.
        ui.wait_for(
            lambda: at_the_desk(agent) and ui.agent_status(agent) == "available",
            "Available, by itself",
            timeout=30,
            explain=lambda: (
                agent.locator(ui.sel("agent-notice")).inner_text(),
                agent.evaluate("({ ...document.body.dataset })"),
                demo.log.read_text()[-3000:],
            ),
        )
        ui.set_agent_status(agent, "offline")
    finally:
        context.close()
