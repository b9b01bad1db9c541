/* Signing in and out, the session kept alive while the console is open, idle sign-out. */

import { MSG } from "../shared/protocol.js";
import { countOf } from "../shared/format.js";
import { _ } from "../shared/i18n.js";
import { SESSION_END_TEXT } from "./text.js";
import { flushUndo } from "./callbacks.js";
import {
  disconnect,
  endCallLocally,
  enterConsole,
  flushNotes,
  hideOffer,
  leaveConsole,
  notify,
  releaseMedia,
  send,
  sessionEnded,
  showLogin,
  stopRenewing,
} from "./steps.js";

const RENEW_RETRY_MS = 10000;

/** Signs out everywhere (the desk revokes every session of this agent). */
function signOut(t, message) {
  flushNotes(t);
  flushUndo(t); // a "Done" still undoable counts: the socket is about to go
  if (t.s.callId) send(t, { type: MSG.HANGUP, call_id: t.s.callId });
  endCallLocally(t);
  hideOffer(t);
  disconnect(t);
  releaseMedia(t);
  stopRenewing(t);
  t.do("logout", { message });
}

export const session = {
  /** GET /api/me answered: `agent` (null: nobody signed in), or `failed` (unreachable). */
  me(t, e) {
    if (t.s.phase !== "loading") return;
    if (e.agent) enterConsole(t, e.agent);
    else showLogin(t, e.failed ? _("Cannot reach the desk right now. You can still try to sign in.") : "");
  },

  submit_login(t, e) {
    const s = t.s;
    if (s.phase !== "login" || s.loginBusy) return;
    const username = String(e.username || "").trim();
    if (!username || !e.password) {
      s.loginError = _("Enter your username and password.");
      return;
    }
    s.loginBusy = true;
    s.loginError = "";
    t.do("signIn", { username, password: e.password });
  },

  /** /api/login answered: `agent`, or `error` (and `wrongPassword`). */
  signed_in(t, e) {
    const s = t.s;
    if (s.phase !== "login") return;
    s.loginBusy = false;
    if (e.error) {
      s.loginError = e.error;
      if (e.wrongPassword) t.do("focus", { target: "password" });
      return;
    }
    t.do("clearPassword");
    enterConsole(t, e.agent);
  },

  click_logout(t) {
    if (t.s.agent) signOut(t, _("You are signed out."));
  },

  /** POST /api/logout done (or failed: the cookie expires on its own). */
  logged_out(t, e) {
    if (t.s.phase === "loading" || t.s.phase === "login") return;
    leaveConsole(t, e.message);
    notify(t, "");
  },

  /**
   * POST /api/session answered: `status` (0: unreachable) and `ttl` (seconds). A sliding
   * session, renewed a third of its lifetime at a time while the console is open, so a whole
   * shift never meets the sign-in form.
   */
  renewed(t, e) {
    if (!t.s.agent) return;
    if (e.status === 401) {
      sessionEnded(t, SESSION_END_TEXT.session_expired);
      return;
    }
    const ttl = e.status >= 200 && e.status < 300 ? Number(e.ttl) || 0 : 0;
    t.do("renew", { after: ttl ? Math.max(2000, (ttl * 1000) / 3) : RENEW_RETRY_MS });
  },

  /** Every little while: `idleMs` since the last key press or click. Never in a call, an offer or a wrap-up. */
  idle_check(t, e) {
    const s = t.s;
    if (!s.idleSignoutS || !s.agent || s.callId || s.offer) return;
    if (["in_call", "wrap_up", "offered"].includes(s.status)) return;
    if (e.idleMs < s.idleSignoutS * 1000) return;
    const minutes = Math.max(1, Math.round(s.idleSignoutS / 60));
    signOut(t, _("You were signed out after {wait} without activity.", { wait: countOf(minutes, "minute") }));
  },
};
