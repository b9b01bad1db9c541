"""Click to face: from the visitor's click on ``hd-join`` to the first decoded remote video
frame on both sides, in headless Chromium.

The desk: ``humandesk demo`` (the desk and the shop on another origin; its Redis is ours), the
queue's wrap-up set to 0 so rounds follow each other; the agent console signed in, Available,
and accepting every offer the moment its card shows (a MutationObserver). Each round is a
fresh visitor (a new browser context) on the shop: launcher, panel, camera check, then the
timed click. The agent hangs up after each round.

Baseline: a bare two-page WebRTC call through a minimal WebSocket relay
(``python -m benchmarks.bare relay``): both pages take the camera at load like the desk's
pages; a click on the caller page asks the callee to make the offer (as the agent does).

Times come from the pages (``performance.timeOrigin + performance.now()``); both pages of a
round run in one browser on one machine. Poll-based: first frames are seen within 5 ms.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from benchmarks import Metric, harness
from benchmarks.probes import AUTO_ACCEPT_JS, PAGE_CLOCK, first_frame_probe_js
from humandesk.queue.client import DeskQueue

PASSWORD = "benchmark-demo-password"

T = TypeVar("T")

# Records in window.__hdProbe.first, by the pages' clock, when the first remote video frame
# was decoded.
FIRST_FRAME_JS = first_frame_probe_js(PAGE_CLOCK, every_ms=5)

CLICK_AT_JS = """(selector) => {
    window.__benchClick = null;
    document.querySelector(selector).addEventListener("click", () => {
        window.__benchClick = performance.timeOrigin + performance.now();
    }, { capture: true, once: true });
}"""


def sel(testid: str) -> str:
    return f'[data-testid="{testid}"]'


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except Exception as exc:  # a frame still navigating
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s (last: {last!r})")
        await asyncio.sleep(0.01)


def _evaluates(target: Any, expression: str) -> Callable[[], Awaitable[Any]]:
    async def check() -> Any:
        return await target.evaluate(expression)

    return check


async def _first_frames(*targets: Any) -> list[float]:
    return [
        float(await wait_for(_evaluates(t, "window.__hdProbe.first"), "first frame"))
        for t in targets
    ]


async def _product_round(browser: Any, agent: Any, desk: str, shop: str, i: int) -> float:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(shop + "/")
        await page.locator(sel("hd-launcher")).click()

        async def panel() -> Any:
            handle = await page.locator(sel("hd-frame")).element_handle(timeout=5000)
            frame = await handle.content_frame() if handle else None
            return frame if frame and frame.url.startswith(desk + "/visitor") else None

        frame = await wait_for(panel, "the visitor panel")
        await wait_for(
            lambda: frame.evaluate("document.body.dataset.phase === 'ready'"),
            "the panel ready",
        )
        await frame.locator(sel("hd-name")).fill(f"Bench {i}")
        await frame.locator(sel("hd-topic")).fill("click to face")
        await frame.evaluate(FIRST_FRAME_JS)
        await agent.evaluate(FIRST_FRAME_JS)
        await frame.evaluate(CLICK_AT_JS, sel("hd-join"))
        await frame.locator(sel("hd-join")).click()
        visitor_first, agent_first = await _first_frames(frame, agent)
        clicked = float(await frame.evaluate("window.__benchClick"))
        await agent.locator(sel("agent-hangup")).click()
        await wait_for(
            lambda: agent.evaluate("document.body.dataset.phase === 'idle' && !window.hdPeer"),
            "the agent out of the call",
        )
        await wait_for(
            lambda: agent.evaluate(
                "document.querySelector('[data-testid=\"agent-status\"]').dataset.status"
                " === 'available'"
            ),
            "the agent Available again",
        )
        return max(visitor_first, agent_first) - clicked
    finally:
        await context.close()


async def _bare_round(browser: Any, relay: str) -> float:
    context = await browser.new_context()
    try:
        callee = await context.new_page()
        caller = await context.new_page()
        await callee.goto(relay + "/callee")
        await caller.goto(relay + "/caller")
        for page in (callee, caller):
            await wait_for(_evaluates(page, "window.bareReady"), "a bare page ready")
            await page.evaluate(FIRST_FRAME_JS)
        await caller.evaluate(CLICK_AT_JS, sel("bare-call"))
        await caller.locator(sel("bare-call")).click()
        caller_first, callee_first = await _first_frames(caller, callee)
        clicked = float(await caller.evaluate("window.__benchClick"))
        return max(caller_first, callee_first) - clicked
    finally:
        await context.close()


async def run(quick: bool) -> list[Metric]:
    from playwright.async_api import async_playwright

    rounds = 3 if quick else 8
    desk_port, shop_port = harness.free_port(), harness.free_port()
    desk, shop = f"http://{harness.HOST}:{desk_port}", f"http://{harness.HOST}:{shop_port}"
    data_dir = tempfile.mkdtemp(prefix="hdbc", dir="/tmp")
    desk_name = "cf" + uuid.uuid4().hex[:8]
    product: list[float] = []
    bare: list[float] = []
    with harness.redis_server() as (redis_url, _redis):
        redis = Redis.from_url(redis_url)
        await DeskQueue(redis, desk_name).set_queue_rules("support", {"wrapup_ms": 0})
        await redis.aclose()
        env = harness.desk_env(redis_url, desk_name, data_dir, HUMANDESK_DEMO_PASSWORD=PASSWORD)
        demo = harness.spawn(
            [
                sys.executable, "-m", "humandesk.server.cli", "demo",
                "--port", str(desk_port), "--shop-port", str(shop_port),
                "--data-dir", data_dir,
            ],
            env=env,
            quiet=True,
        )  # fmt: skip
        bare_relay, relay = harness.start_bare("relay")
        try:
            harness.wait_http(desk + "/readyz", demo)
            harness.wait_http(shop + "/", demo)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=harness.CHROMIUM, args=harness.CHROMIUM_FLAGS
                )
                try:
                    agent_context = await browser.new_context()
                    agent = await agent_context.new_page()
                    await agent.goto(desk + "/agent")
                    await wait_for(
                        lambda: agent.evaluate("document.body.dataset.phase === 'login'"),
                        "the login form",
                    )
                    await agent.locator(sel("agent-username")).fill("demo")
                    await agent.locator(sel("agent-password")).fill(PASSWORD)
                    await agent.locator(sel("agent-login")).click()
                    await wait_for(
                        lambda: agent.evaluate("document.body.dataset.connected === 'true'"),
                        "login",
                    )
                    await agent.locator(sel("agent-available")).click()
                    await agent.evaluate(AUTO_ACCEPT_JS)
                    # Warm-up (first camera, first codec): one untimed round of each.
                    await _product_round(browser, agent, desk, shop, 0)
                    await _bare_round(browser, relay)
                    for i in range(rounds):  # interleaved, so both see the same machine
                        product.append(await _product_round(browser, agent, desk, shop, i + 1))
                        bare.append(await _bare_round(browser, relay))
                    await agent_context.close()
                finally:
                    await browser.close()
        finally:
            harness.stop_process(demo)
            harness.stop_process(bare_relay)
    value, base = harness.median(product), harness.median(bare)
    harness.log(
        "click to face: desk "
        + ", ".join(f"{x:.0f}" for x in product)
        + " ms; bare "
        + ", ".join(f"{x:.0f}" for x in bare)
        + " ms"
    )
    return [
        Metric.make(
            "click_to_face.median",
            value,
            "ms",
            baseline=base,
            target="ratio <= 1.3",
            ok=value <= 1.3 * base,
        )
    ]
