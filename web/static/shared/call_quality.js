/* The call's connection as both pages show it: its quality (good / fair / poor, see
 * quality.js) and whether it is reconnecting (the path broke: ICE is being restarted). */

import { setText } from "./dom.js";
import { _ } from "./i18n.js";

const WORDS = { good: _("Connection: good"), fair: _("Connection: fair"), poor: _("Connection: poor") };
export const RECONNECTING_WORDS = _("Reconnecting…");

/** A call's connection state before its first quality sample. */
export function freshQuality(s) {
  s.quality = null;
  s.reconnecting = false;
}

/**
 * The handlers for `peer_quality` and `peer_stalled`, to spread into a page's table of moves.
 * `say(t, text)` shows (or with "" clears) the page's notice about the connection;
 * `unstable` is that notice's text.
 */
export function qualityMoves(say, unstable) {
  return {
    peer_quality(t, e) {
      if (!t.s.callId) return;
      t.s.quality = { level: e.level, rttMs: e.rttMs, lossPct: e.lossPct, kbps: e.kbps };
      if (!e.stalled && t.s.reconnecting) {
        t.s.reconnecting = false; // media arrives again
        say(t, "");
      }
    },

    peer_stalled(t) {
      if (!t.s.callId || t.s.reconnecting) return;
      t.s.reconnecting = true;
      say(t, unstable);
    },
  };
}

/** `peer_state`'s part: a dropped connection is reconnecting; `connected` ends that. */
export function connectionChanged(t, state) {
  if (state === "connected") t.s.reconnecting = false;
  else if (state === "disconnected" || state === "failed") t.s.reconnecting = true;
}

/** Draws `hd-quality` / `agent-quality`: `data-level`, words for everyone, figures in the title. */
export function renderQuality(node, s) {
  const shown = !!s.callId && (s.reconnecting || !!s.quality);
  node.hidden = !shown;
  if (!shown) {
    node.dataset.level = "";
    node.dataset.reconnecting = "false";
    return;
  }
  const level = s.reconnecting ? "poor" : s.quality.level;
  node.dataset.level = level;
  node.dataset.reconnecting = s.reconnecting ? "true" : "false";
  setText(node.querySelector(".quality-words"), s.reconnecting ? RECONNECTING_WORDS : WORDS[level]);
  const q = s.quality;
  const figures = q
    ? [
        q.rttMs === null ? null : _("round trip {ms} ms", { ms: q.rttMs }),
        _("loss {pct} %", { pct: q.lossPct }),
        _("{kbps} kbit/s", { kbps: q.kbps }),
      ]
    : [];
  node.title = figures.filter(Boolean).join(", ");
}
