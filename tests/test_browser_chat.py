"""Chat and files in a call, in real browsers (Debian's Chromium through Playwright, fake
devices) against ``humandesk demo``: lines both ways through the desk with their sender,
links made safely, the unread badge on the launcher while the panel is minimised, the
transcript again after a reload, and a photo and a PDF sent peer to peer over the call's data
channel both ways, read back in the receiving page and compared by their SHA-256.

Screenshots: test-results/screenshots/chat-visitor.png and chat-agent.png.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import struct
import zlib
from typing import Any

import pytest

import pages as ui

pytestmark = pytest.mark.browser


def png(width: int, height: int, seed: int) -> bytes:
    """A real PNG of random pixels (so it does not compress: many data-channel chunks)."""
    rnd = random.Random(seed)
    rows = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def entries(target: Any, log: str) -> list[dict[str, Any]]:
    """The chat log's entries: sender, kind, seq, text, links, file status."""
    script = f"""() => Array.from(
      document.querySelectorAll('[data-testid="{log}"] > li')).map((li) => ({{
        from: li.dataset.from, kind: li.dataset.kind, seq: li.dataset.seq || null,
        text: (li.querySelector('.chat-text') || {{}}).textContent || null,
        links: Array.from(li.querySelectorAll('.chat-text a')).map((a) => ({{
            href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent }})),
        status: (li.querySelector('.chat-file') || {{ dataset: {{}} }}).dataset.status || null,
        preview: !!li.querySelector('img.chat-preview'),
        html: li.querySelector('.chat-text') ? li.querySelector('.chat-text').innerHTML : null,
    }}))"""
    return list(target.evaluate(script))


HASH_JS = """async ([log, name]) => {
    const links = Array.from(document.querySelectorAll(`[data-testid="${log}"] a.chat-file-name`));
    const link = links.filter((a) => a.textContent === name).pop();
    if (!link) return null;
    const bytes = await (await fetch(link.href)).arrayBuffer();
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return { href: link.href, size: bytes.byteLength,
             sha256: Array.from(new Uint8Array(digest))
               .map((b) => b.toString(16).padStart(2, "0")).join("") };
}"""


def received_hash(target: Any, log: str, name: str) -> dict[str, Any] | None:
    return target.evaluate(HASH_JS, [log, name])  # type: ignore[no-any-return]


def send_chat(target: Any, prefix: str, text: str) -> None:
    target.locator(ui.sel(f"{prefix}-chat-input")).fill(text)
    target.locator(ui.sel(f"{prefix}-chat-send")).click()


def channel_up(target: Any) -> bool:
    """The call's SCTP transport is up: the negotiated files channel is open."""
    script = (
        "() => !!(window.hdPeer && window.hdPeer.sctp && window.hdPeer.sctp.state === 'connected')"
    )
    return bool(target.evaluate(script))


def badge(shop: Any) -> str:
    return str(shop.locator(ui.sel("hd-unread")).get_attribute("data-count") or "0")


def test_chat_and_files_both_ways(demo: ui.Demo, browser: Any) -> None:
    errors: list[str] = []
    # bypass_csp: the test reads the received blob back with fetch(), which the pages' CSP
    # (connect-src) does not allow them.
    agent_context = browser.new_context(viewport=ui.VIEWPORT, bypass_csp=True)
    visitor_context = browser.new_context(viewport=ui.VIEWPORT, bypass_csp=True)
    try:
        agent = agent_context.new_page()
        ui.watch_console(agent, "agent", errors)
        ui.login_agent(agent, demo)
        shop, panel = ui.open_panel(visitor_context, demo)
        ui.watch_console(shop, "shop", errors)
        ui.join_and_accept(panel, agent, "Grace Hopper", "The zip of my jacket broke")

        # Visitor to agent, through the desk: a link made safely, a javascript: one left as text.
        line = "Order 1234: https://shop.example/orders/1234. Not javascript:alert(1) <b>bold</b>"
        send_chat(panel, "hd", line)
        got = ui.wait_for(lambda: entries(agent, "agent-chat-log"), "the line at the agent")
        assert [(e["from"], e["seq"], e["text"]) for e in got] == [("visitor", "1", line)]
        assert got[0]["links"] == [
            {
                "href": "https://shop.example/orders/1234",
                "rel": "noopener noreferrer",
                "target": "_blank",
                "text": "https://shop.example/orders/1234",
            }
        ]
        assert "<b>" not in got[0]["html"] and "&lt;b&gt;" in got[0]["html"]
        assert panel.locator(ui.sel("hd-chat-input")).input_value() == ""
        mine = ui.wait_for(lambda: entries(panel, "hd-chat-log"), "the line at the visitor")
        assert [(e["from"], e["seq"]) for e in mine] == [("visitor", "1")]

        # Agent to visitor.
        send_chat(agent, "agent", "Thanks! Could you send a photo of the zip?")
        ui.wait_for(
            lambda: len(entries(panel, "hd-chat-log")) == 2, "the agent's line at the visitor"
        )
        assert [(e["from"], e["seq"]) for e in entries(panel, "hd-chat-log")] == [
            ("visitor", "1"),
            ("agent", "2"),
        ]

        # A photo from the visitor and a PDF from the agent, peer to peer, byte for byte.
        ui.wait_for(lambda: channel_up(panel) and channel_up(agent), "the files channel")
        photo = png(240, 180, seed=1)
        pdf = b"%PDF-1.4\n" + random.Random(2).randbytes(300_000)
        panel.locator(ui.sel("hd-file-input")).set_input_files(
            files=[{"name": "zip.png", "mimeType": "image/png", "buffer": photo}]
        )
        agent.locator(ui.sel("agent-file-input")).set_input_files(
            files=[{"name": "returns.pdf", "mimeType": "application/pdf", "buffer": pdf}]
        )
        at_agent = ui.wait_for(
            lambda: received_hash(agent, "agent-chat-log", "zip.png"), "the photo at the agent"
        )
        at_visitor = ui.wait_for(
            lambda: received_hash(panel, "hd-chat-log", "returns.pdf"), "the PDF at the visitor"
        )
        assert at_agent["sha256"] == hashlib.sha256(photo).hexdigest(), at_agent
        assert at_visitor["sha256"] == hashlib.sha256(pdf).hexdigest(), at_visitor
        assert at_agent["href"].startswith("blob:") and at_visitor["href"].startswith("blob:")
        photo_entry = next(e for e in entries(agent, "agent-chat-log") if e["kind"] == "file")
        assert photo_entry["from"] == "visitor" and photo_entry["preview"]
        ui.wait_for(
            lambda: any(
                e["kind"] == "file" and e["status"] == "delivered"
                for e in entries(panel, "hd-chat-log")
            ),
            "the photo confirmed to the visitor",
        )
        # A type outside the allow-list is refused before anything is sent.
        panel.locator(ui.sel("hd-file-input")).set_input_files(
            files=[{"name": "page.html", "mimeType": "text/html", "buffer": b"<script></script>"}]
        )
        refused = ui.wait_for(
            lambda: [e for e in entries(panel, "hd-chat-log") if e["status"] == "refused"],
            "the refusal",
        )
        assert len(refused) == 1
        ui.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        panel.locator(ui.sel("hd-chat-send")).scroll_into_view_if_needed()
        agent.locator(ui.sel("agent-chat-send")).scroll_into_view_if_needed()
        panel_box = shop.locator(ui.sel("hd-frame"))
        panel_box.screenshot(path=str(ui.SCREENSHOTS / "chat-visitor.png"))
        agent.screenshot(path=str(ui.SCREENSHOTS / "chat-agent.png"))

        # An ICE restart (as after a network change) keeps the channel: no renegotiation of it.
        ufrag = "(pc) => (/a=ice-ufrag:(.+)/.exec(pc.localDescription.sdp) || [])[1]"
        before = agent.evaluate(f"({ufrag})(window.hdPeer)")
        agent.evaluate("window.hdPeer.restartIce()")
        ui.wait_for(
            lambda: agent.evaluate(
                f"""() => {{ const pc = window.hdPeer;
                    return pc.signalingState === "stable" && pc.connectionState === "connected"
                        && ({ufrag})(pc) !== {json.dumps(before)}; }}"""
            ),
            "the ICE restart done",
        )
        note = b"after the ICE restart\n" * 2000
        agent.locator(ui.sel("agent-file-input")).set_input_files(
            files=[{"name": "note.txt", "mimeType": "text/plain", "buffer": note}]
        )
        got = ui.wait_for(
            lambda: received_hash(panel, "hd-chat-log", "note.txt"), "a file after the restart"
        )
        assert got["sha256"] == hashlib.sha256(note).hexdigest()

        # Minimised: the agent's lines show as a count on the launcher, cleared on opening.
        panel.locator(ui.sel("hd-minimize")).click()
        ui.wait_for(
            lambda: not shop.locator(ui.sel("hd-frame")).is_visible(), "the panel minimised"
        )
        send_chat(agent, "agent", "Got it, a replacement is on its way.")
        ui.wait_for(lambda: badge(shop) == "1", "the unread badge on the launcher")
        assert shop.locator(ui.sel("hd-unread")).inner_text() == "1"
        shop.locator(ui.sel("hd-launcher")).click()
        ui.wait_for(lambda: badge(shop) == "0", "the badge cleared")
        assert not shop.locator(ui.sel("hd-unread")).is_visible()

        # A reload: the panel resumes the call and shows the chat again, each line once.
        shop.reload()
        panel = ui.panel_frame(shop, demo)
        ui.wait_for(
            lambda: (
                [e["seq"] for e in entries(panel, "hd-chat-log") if e["kind"] == "text"]
                == ["1", "2", "3"]
            ),
            "the transcript after the reload",
            explain=lambda: entries(panel, "hd-chat-log"),
        )
        assert [e["from"] for e in entries(panel, "hd-chat-log")] == ["visitor", "agent", "agent"]
        ui.wait_for(lambda: ui.visitor_phase(panel) == "in-call", "the call back after the reload")
        # A new peer connection after the reload: a new channel, and files go again.
        ui.wait_for(lambda: channel_up(panel) and channel_up(agent), "the new files channel")
        again = png(64, 48, seed=3)
        panel.locator(ui.sel("hd-file-input")).set_input_files(
            files=[{"name": "again.png", "mimeType": "image/png", "buffer": again}]
        )
        got = ui.wait_for(
            lambda: received_hash(agent, "agent-chat-log", "again.png"), "a file after the reload"
        )
        assert got["sha256"] == hashlib.sha256(again).hexdigest()
        send_chat(panel, "hd", "Thank you!")
        ui.wait_for(
            lambda: (
                [e["seq"] for e in entries(agent, "agent-chat-log") if e["kind"] == "text"]
                == ["1", "2", "3", "4"]
            ),
            "the chat going on after the reload",
        )

        # On the call record, and in its CSV, after the call.
        call_id = ui.page_data(agent, "callId")
        agent.locator(ui.sel("agent-hangup")).click()
        response = agent.context.request.get(demo.desk + "/api/calls.csv")
        if response.ok:  # the demo agent may not be a supervisor
            assert "https://shop.example/orders/1234" in response.text()
        assert call_id
        assert not [e for e in errors if "pageerror" in e], errors
    finally:
        with contextlib.suppress(Exception):
            ui.set_agent_status(agent, "offline")
        visitor_context.close()
        agent_context.close()
        print(json.dumps({"errors": errors})[:2000])
