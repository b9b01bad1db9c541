/* The visitor's socket: opened, welcomed, closed (by close code), retried, let go when idle. */

import { CLOSE, MSG } from "../shared/protocol.js";
import { LIVE, isWarm } from "./state.js";
import { CONNECTION_LOST, PLACE_EXPIRED } from "./text.js";
import {
  backToForm,
  callbackFailed,
  disconnect,
  dropTicket,
  endCallLocally,
  finishRating,
  resumeMessage,
  send,
  sendPendingCallback,
  showEnded,
} from "./steps.js";
import { _ } from "../shared/i18n.js";

const GIVE_UP_AFTER = 5; // reconnects in a row that never opened, without a place to keep
// After the desk's grace period it has ended the call (peer_left); the panel waits a little
// longer, so the agent hears of the end from the desk first.
const GRACE_MARGIN_MS = 2000;
// A call whose media still flows outlives a desk it cannot reach; looked at again this often.
const GRACE_RECHECK_MS = 5000;

export const link = {
  socket_open(t) {
    if (t.s.link === "connecting") t.s.link = "open";
  },

  socket_closed(t, e) {
    const s = t.s;
    if (s.link === "none" || s.link === "closed") return; // let go, or already gone
    s.welcomed = false;
    s.link = "closed";
    if (isWarm(s)) {
      // Opened ahead of the click and not in line: nothing to keep, so no notice, no error and
      // no retry. Join connects as it always did.
      disconnect(t);
      s.warmLost = true;
      return;
    }
    if (e.code === CLOSE.ENTRY_GONE && s.callId) {
      // Our call ended while we could not reach the desk.
      lostCall(t);
      return;
    }
    if (e.code === CLOSE.INVALID_TICKET || e.code === CLOSE.ENTRY_GONE) {
      dropTicket(t);
      disconnect(t);
      const wasWaiting = s.phase === "waiting" || s.phase === "connecting";
      endCallLocally(t);
      s.notice = "";
      backToForm(t);
      if (wasWaiting) s.error = PLACE_EXPIRED;
      return;
    }
    if (e.code === CLOSE.REPLACED) {
      endCallLocally(t);
      showEnded(t, "error", _("This conversation continued in another window or tab."));
      return;
    }
    if (e.code === CLOSE.POLICY || e.code === CLOSE.TOO_BIG) {
      endCallLocally(t);
      showEnded(t, "error", _("The connection to the desk was closed because of an error."));
      return;
    }
    if (!LIVE.has(s.phase)) {
      disconnect(t);
      if (s.callbackRequest) callbackFailed(t, _("We could not reach the desk. Please try again."));
      if (s.rateCallId) finishRating(t, ""); // nothing left to send it through
      return;
    }
    if (!e.opened) s.neverWelcomed += 1;
    // The desk cannot be reached at all and we have no place to keep: stop trying.
    if (!s.ticket && s.neverWelcomed >= GIVE_UP_AFTER) {
      showEnded(t, "error", _("We cannot reach the support desk right now. Please try again in a moment."));
      return;
    }
    s.link = "connecting";
    t.do("retry", { soon: e.code === CLOSE.SERVICE_RESTART });
    // In a call: the desk ends it once it has not heard from us for its grace period.
    if (s.callId && (e.opened || !s.graceArmed)) {
      s.graceArmed = true;
      t.do("timer", { name: "call-grace", ms: s.callGraceS * 1000 + GRACE_MARGIN_MS, event: { type: "call_grace_over" } });
    }
  },

  /** The desk's grace period for the call has passed since we lost it. */
  call_grace_over(t) {
    const s = t.s;
    s.graceArmed = false;
    if (!s.callId || (s.link === "open" && s.welcomed)) return; // back in time
    if (s.phase === "in-call" && !s.reconnecting) {
      // Media still flows peer to peer: the call goes on while it does.
      s.graceArmed = true;
      t.do("timer", { name: "call-grace", ms: GRACE_RECHECK_MS, event: { type: "call_grace_over" } });
      return;
    }
    lostCall(t);
  },

  socket_retrying(t) {
    if (["waiting", "in-call", "call-connecting"].includes(t.s.phase)) t.s.notice = _("Connection lost. Reconnecting…");
  },

  warm_idle(t) {
    if (isWarm(t.s)) disconnect(t);
  },

  [MSG.WELCOME](t, e) {
    const s = t.s;
    s.neverWelcomed = 0;
    s.welcomed = true;
    s.iceServers = Array.isArray(e.ice_servers) ? e.ice_servers : [];
    s.iceTransportPolicy = e.ice_transport_policy === "relay" ? "relay" : "all";
    if (Number.isFinite(e.call_grace_s) && e.call_grace_s > 0) s.callGraceS = e.call_grace_s;
    if (isWarm(s)) return; // opened ahead of the click: the join goes out when it comes
    s.notice = "";
    if (s.ticket) send(t, resumeMessage(s));
    else if (s.pendingJoin) send(t, s.pendingJoin);
    else if (s.pendingCallback) sendPendingCallback(t);
  },
};

/** The call is over for us: the desk could not be reached for its grace period. */
function lostCall(t) {
  t.do("clear", { name: "call-grace" });
  t.s.graceArmed = false;
  endCallLocally(t);
  dropTicket(t);
  disconnect(t);
  showEnded(t, "ended", CONNECTION_LOST);
}
