"""What click to face evaluates in the pages (this benchmark and the browser test that times
it): a probe of the first decoded remote video frame, and a console that accepts every offer
the moment its card shows."""

from __future__ import annotations

#: Clocks a probe can record by: the wall clock (comparable with the test's own ``time.time``)
#: and the page's high-resolution clock (comparable with other times taken in pages).
WALL_CLOCK = "Date.now()"
PAGE_CLOCK = "performance.timeOrigin + performance.now()"

_FIRST_FRAME_PROBE = """() => {
    const old = window.__hdProbe;
    if (old) clearInterval(old.timer);
    const probe = (window.__hdProbe = { first: null, busy: false, timer: null });
    probe.timer = setInterval(async () => {
        const pc = window.hdPeer;
        if (!pc || probe.busy || probe.first) return;
        probe.busy = true;
        try {
            const stats = await pc.getStats();
            stats.forEach((r) => {
                if (!probe.first && r.type === "inbound-rtp" && r.kind === "video"
                    && r.framesDecoded > 0) probe.first = CLOCK;
            });
        } catch (_) {
            /* the connection was replaced; keep polling */
        } finally {
            probe.busy = false;
        }
        if (probe.first) clearInterval(probe.timer);
    }, EVERY_MS);
}"""


def first_frame_probe_js(clock: str, every_ms: int) -> str:
    """A function for ``evaluate`` that records in ``window.__hdProbe.first`` the time by
    ``clock`` of the first inbound-rtp video report with a decoded frame, polling
    ``window.hdPeer.getStats()`` every ``every_ms`` (hdPeer may not exist yet when it is
    installed); installed again, it starts over."""
    return _FIRST_FRAME_PROBE.replace("CLOCK", clock).replace("EVERY_MS", str(every_ms))


#: The agent's console accepts an offer the moment its card is shown (a MutationObserver, so
#: what is measured is the desk and the browsers, not a polling loop); the times the card
#: showed are kept in ``window.__hdAutoAccept.shown``, and ``.on = false`` pauses it.
AUTO_ACCEPT_JS = """() => {
    const card = document.querySelector('[data-testid="offer-card"]');
    const accept = document.querySelector('[data-testid="offer-accept"]');
    if (window.__hdAutoAccept) { window.__hdAutoAccept.on = true; return; }
    const auto = (window.__hdAutoAccept = { on: true, shown: [] });
    new MutationObserver(() => {
        if (auto.on && !card.hidden && !accept.disabled) {
            auto.shown.push(Date.now());
            accept.click();
        }
    }).observe(card, { attributes: true, attributeFilter: ["hidden"] });
}"""
