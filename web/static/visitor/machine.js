/* The visitor panel's transition table: `next(state, event) -> [state, effects]`, pure.
 *
 * Events are the desk's messages (by their `type`) and the page's own: clicks and forms
 * (`submit_join`, `click_leave`, ...), the socket (`socket_open`, `socket_closed`), the peer
 * connection (`peer_state`), devices, timers and the host page. Effects are plain objects
 * (`{do: "send", msg}`, `{do: "timer", name, ms, event}`, ...) that main.js carries out. */

import { Step, machine } from "../shared/loop.js";
import { MSG } from "../shared/protocol.js";
import { BEFORE, OVER, currentView } from "./state.js";
import { call } from "./call.js";
import { callback } from "./callback.js";
import { errors } from "./errors.js";
import { line } from "./line.js";
import { link } from "./link.js";
import { afterCall, share } from "./share.js";
import {
  applyAvailability,
  backToForm,
  checkDevices,
  connect,
  disconnect,
  finishRating,
  focusPrimary,
  noteFreeNow,
  releaseMedia,
  resetWaiting,
  setPhase,
  startPrecall,
  warmUp,
} from "./steps.js";

const AVAILABILITY_TIMEOUT_MS = 4000;

const panel = {
  /** The page is up; `ticket`: a place in line kept from before a reload (or null). */
  boot(t, e) {
    const s = t.s;
    if (s.phase !== "checking" || s.checking) return; // once, at the start
    if (e.ticket) s.ticket = e.ticket;
    if (s.ticket) {
      // A reload while in line: take the place back before the desk's lease on it runs out.
      checkDevices(t);
      resetWaiting(t);
      setPhase(t, "connecting");
      connect(t);
      return;
    }
    t.do("firstLook");
  },

  /** The line's availability at the start (null: unknown): a closed line needs no camera. */
  first_look(t, e) {
    if (!e.info || e.info.open !== false) checkDevices(t);
    applyAvailability(t, e.info);
  },

  /** GET /api/queues/<queue> answered (null: it did not). */
  availability(t, e) {
    if (t.s.phase === "callback-saved") noteFreeNow(t, e.info);
    else applyAvailability(t, e.info);
  },

  /** Every 30 s, and when the panel is opened: how the line looks now. */
  tick(t) {
    if (BEFORE.has(t.s.phase) || t.s.phase === "callback-saved") {
      t.do("fetchAvailability", { timeoutMs: AVAILABILITY_TIMEOUT_MS });
    }
  },

  /** After a call-back request, "Talk to them now": the join form, with the camera back on. */
  click_talk_now(t) {
    const s = t.s;
    if (s.phase !== "callback-saved" || !s.freeNow) return;
    s.freeNow = false;
    t.do("prefillJoin");
    backToForm(t);
    t.do("focus", { target: "name" });
  },

  /** The camera check finished: `audioOnly`, `hasVideo`, `problem`, `micError`. */
  devices(t, e) {
    const s = t.s;
    s.checking = false;
    if (OVER.has(s.phase)) {
      releaseMedia(t); // the conversation ended (or the line closed) while the browser was asking
      return;
    }
    s.audioOnly = e.audioOnly;
    s.hasVideo = e.hasVideo;
    s.media = { problem: e.problem || null, micError: e.micError || null };
    s.localVideo = !e.audioOnly;
    s.devicesChecked = true;
    t.do("preview");
    if (s.phase === "checking") setPhase(t, "ready");
    warmUp(t);
    startPrecall(t);
  },

  /** The pre-call test's result (`result`: {status, rttMs, lossPct, path}). */
  precall_result(t, e) {
    const s = t.s;
    if (!s.precall || s.precall.status !== "running" || !e.result) return; // stopped meanwhile
    const r = e.result;
    s.precall = {
      status: ["ok", "poor", "failed", "busy"].includes(r.status) ? r.status : "busy",
      rttMs: typeof r.rttMs === "number" ? r.rttMs : null,
      lossPct: typeof r.lossPct === "number" ? r.lossPct : null,
      path: r.path === "relay" || r.path === "direct" ? r.path : null,
    };
  },

  retry_media(t) {
    checkDevices(t);
  },

  /** The host page opened the panel (again): what the chat holds is seen now. */
  host_open(t) {
    t.s.minimized = false;
    call.chat_seen(t);
    focusPrimary(t);
    panel.tick(t);
    warmUp(t); // again, if an idle warm socket was let go
  },

  /** The host page hid the panel (minimised): chat lines that arrive now count as unread. */
  host_hidden(t) {
    t.s.minimized = true;
  },

  /** The host page kept our ticket (browsers that deny this frame its own storage). */
  ticket_restored(t, e) {
    if (!t.s.ticket && e.ticket) t.s.ticket = e.ticket;
  },

  click_again(t) {
    if (currentView(t.s) !== "ended") return;
    t.do("clear", { name: "leave" });
    finishRating(t, "");
    disconnect(t);
    t.s.error = "";
    backToForm(t);
    t.do("focus", { target: "name" });
  },
};

const table = machine({ ...panel, ...link, ...line, ...call, ...share, ...callback, ...errors });
const FROM_DESK = new Set(Object.values(MSG));

/**
 * The panel's next state and effects; the desk's messages count only on an open socket. When
 * the phase changes and the step moved the keyboard nowhere itself, the keyboard goes to the
 * new phase's main control (focusPrimary), if it is in the panel already: never taken from
 * the host page. Out of a call, a screen still shared stops and the panel goes back to its
 * size (afterCall).
 */
export function next(state, event) {
  if (FROM_DESK.has(event.type) && state.link !== "open") return [state, []];
  let [after, fx] = table(state, event);
  if (after.sharing || after.shareBusy || after.large) {
    const t = new Step(after);
    afterCall(t);
    if (t.fx.length) [after, fx] = [t.s, [...fx, ...t.fx]];
  }
  if (after.phase !== state.phase && !fx.some((f) => f.do === "focus")) {
    const t = new Step(after);
    focusPrimary(t, { ifInPanel: true });
    return [t.s, [...fx, ...t.fx]];
  }
  return [after, fx];
}
