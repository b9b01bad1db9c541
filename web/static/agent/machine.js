/* The agent console's transition table: `next(state, event) -> [state, effects]`, pure.
 *
 * Events are the desk's messages (by their `type`) and the page's own: clicks and forms
 * (`submit_login`, `click_status`, `click_accept`, ...), the socket (`socket_open`,
 * `socket_closed`), the peer connection (`peer_state`), devices, timers and HTTP answers (`me`,
 * `signed_in`, `renewed`). Events that depend on time carry `now` (the page's monotonic clock,
 * ms). Effects are plain objects (`{do: "send", msg}`, ...) that effects.js carries out. */

import { machine } from "../shared/loop.js";
import { deviceMoves } from "../shared/device_moves.js";
import { MSG } from "../shared/protocol.js";
import { call } from "./call.js";
import { callbacks } from "./callbacks.js";
import { errors } from "./errors.js";
import { link } from "./link.js";
import { notes } from "./notes.js";
import { offers } from "./offer.js";
import { session } from "./session.js";
import { notify } from "./steps.js";

const console_ = {
  /** The camera check finished: `hasVideo`, `problem`, `micError`. */
  devices(t, e) {
    const s = t.s;
    s.checking = false;
    if (s.phase === "login") {
      t.do("releaseMedia"); // signed out while the browser asked
      return;
    }
    s.media = { problem: e.problem || null, micError: e.micError || null };
    s.localVideo = !!e.hasVideo;
    t.do("preview");
  },

  retry_media(t) {
    t.s.checking = true;
    t.do("checkDevices");
  },

  /** The call's line for a shared screen is up (`on`), or a new call starts without one yet. */
  screen_line(t, e) {
    t.s.screenBeside = !!e.on;
  },

  notice_expired(t, e) {
    if (t.s.notice === e.text) t.s.notice = "";
  },
};

const devices = deviceMoves({ say: (t, text) => notify(t, text) });
const table = machine({ ...console_, ...session, ...link, ...offers, ...call, ...devices, ...notes, ...callbacks, ...errors });
const FROM_DESK = new Set(Object.values(MSG));

/** The console's next state and effects; the desk's messages count only on an open socket. */
export function next(state, event) {
  if (FROM_DESK.has(event.type) && state.link !== "open") return [state, []];
  return table(state, event);
}
