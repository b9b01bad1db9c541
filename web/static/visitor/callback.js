/* Call-back requests: the form (closed line, nobody in, a long wait), sending, the answer. */

import { MSG } from "../shared/protocol.js";
import { clip } from "../shared/format.js";
import { LIVE, currentView } from "./state.js";
import { contactProblem } from "./text.js";
import {
  backToForm,
  callbackFailed,
  connect,
  disconnect,
  dropTicket,
  focusPrimary,
  openCallback,
  releaseMedia,
  send,
  setPhase,
} from "./steps.js";
import { _ } from "../shared/i18n.js";

const CALLBACK_WAIT_MS = 10000;
const AVAILABILITY_TIMEOUT_MS = 4000;

export const callback = {
  /** "Leave your number" (`why`: offline) or, after a long wait, "Call me back" (waiting). */
  open_callback(t, e) {
    const s = t.s;
    // Each button is on screen only then: before joining, and in line (not yet in a call).
    const shown = e.why === "waiting" ? LIVE.has(s.phase) && !s.callId : s.phase === "checking" || s.phase === "ready";
    if (shown) openCallback(t, e.why, null, true);
  },

  callback_back(t) {
    if (currentView(t.s) !== "callback") return;
    t.s.callbackError = "";
    if (t.s.callbackWhy === "waiting") {
      t.s.callbackOpen = false;
      t.do("focus", { target: "position" });
    } else {
      backToForm(t);
      t.do("focus", { target: "name" });
    }
  },

  /** The call-back form sent: `name`, `contact` and `note` as typed. */
  submit_callback(t, e) {
    const s = t.s;
    if (s.callbackRequest) return;
    const name = String(e.name || "").trim();
    const contact = String(e.contact || "").trim();
    if (!name) {
      s.callbackError = _("Please tell us your name.");
      t.do("focus", { target: "callback-name" });
      return;
    }
    const problem = contactProblem(contact);
    if (problem) {
      s.callbackError = problem;
      t.do("focus", { target: "callback-contact" });
      return;
    }
    s.callbackError = "";
    const msg = {
      type: MSG.CALLBACK,
      queue: s.queue || s.home,
      name: clip(name, 80),
      contact: clip(contact, 200),
      note: clip(String(e.note || "").trim(), 1000),
    };
    s.callbackRequest = msg;
    if (s.link !== "none") {
      if (!send(t, msg)) s.pendingCallback = msg; // sent once the connection is back
    } else {
      s.pendingCallback = msg;
      connect(t);
    }
    t.do("timer", { name: "callback", ms: CALLBACK_WAIT_MS, event: { type: "callback_timeout" } });
  },

  callback_timeout(t) {
    callbackFailed(t, _("We could not send your request. Please try again."));
  },

  [MSG.CALLBACK_SAVED](t) {
    const s = t.s;
    const req = s.callbackRequest;
    if (!req) return;
    s.callbackRequest = null;
    s.pendingCallback = null;
    t.do("clear", { name: "callback" });
    t.do("clear", { name: "leave" });
    // A visitor who was waiting gave up their place for this; the desk says `left` and closes.
    dropTicket(t);
    disconnect(t);
    s.callbackOpen = false;
    s.savedText = _("Thanks, {name}. We'll get back to you at {contact} as soon as we can.", {
      name: req.name,
      contact: req.contact,
    });
    s.callbackError = "";
    t.do("clearCallback");
    s.notice = "";
    s.error = "";
    s.freeNow = false;
    setPhase(t, "callback-saved");
    releaseMedia(t);
    focusPrimary(t);
    // Someone may be free right now: then the visitor may still talk to them.
    t.do("fetchAvailability", { timeoutMs: AVAILABILITY_TIMEOUT_MS });
  },
};
