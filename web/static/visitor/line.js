/* Joining the line, the place in it, and leaving it. */

import { MSG } from "../shared/protocol.js";
import { clip, teamName } from "../shared/format.js";
import { LIVE, currentView } from "./state.js";
import { LEFT_TEXT } from "./text.js";
import { joinResult } from "./precall.js";
import {
  connect,
  disconnect,
  dropTicket,
  endCallLocally,
  keepTicket,
  leftLocally,
  resetWaiting,
  send,
  sendPendingCallback,
  setPhase,
  showEnded,
  stopPrecall,
  warmUp,
} from "./steps.js";
import { _ } from "../shared/i18n.js";

const LEAVE_WAIT_MS = 4000; // `left` normally answers at once; never leave the visitor stuck

function updatePosition(s, msg) {
  if (Number.isInteger(msg.position) && msg.position > 0) s.position = msg.position;
  if ("eta_seconds" in msg) {
    const previous = s.eta;
    s.eta = msg.eta_seconds;
    s.etaShown = true;
    if (typeof msg.eta_reason === "string" && msg.eta_reason) {
      s.etaReason = msg.eta_reason;
      s.etaReasonShown = true;
    } else if (typeof previous === "number" && msg.eta_seconds < previous) {
      s.etaReasonShown = false; // the wait is shrinking again: the reason is old news
    }
  }
}

export const line = {
  /** The join form sent: `name`, `topic` as typed, `page` the host page's address. */
  submit_join(t, e) {
    const s = t.s;
    if (s.phase !== "ready") return;
    const name = String(e.name || "").trim();
    if (!name) {
      s.error = _("Please tell us your name.");
      t.do("focus", { target: "name" });
      return;
    }
    s.error = "";
    s.queue = s.home;
    const join = {
      type: MSG.JOIN,
      queue: s.home,
      name: clip(name, 80),
      topic: clip(String(e.topic || "").trim(), 500),
      audio_only: !s.hasVideo,
      page: clip(e.page, 500),
    };
    if (s.priorityToken) join.priority_token = s.priorityToken;
    // The test's result goes with the place in line, for the agent's offer card; one still
    // running is stopped (the join does not wait for it).
    stopPrecall(t);
    const precall = joinResult(s.precall);
    if (precall) join.precall = precall;
    s.pendingJoin = join;
    resetWaiting(t);
    setPhase(t, "connecting");
    t.do("clear", { name: "warm" });
    s.warmLost = false;
    // The socket opened when the panel got ready: welcomed, it carries the join at once;
    // still opening, the welcome sends it. None (it closed, or never opened): connect as ever,
    // and so does a ticket the host page handed back late (it resumes on a fresh socket).
    if (s.link === "none" || s.ticket) connect(t);
    else if (s.welcomed && !send(t, join)) connect(t);
  },

  /** Typing in the form is intent too: warm up again if the idle warm socket was let go. */
  intent(t) {
    warmUp(t);
  },

  [MSG.QUEUED](t, e) {
    const s = t.s;
    if (!LIVE.has(s.phase)) return; // it answers a join or a resume: never news before or after
    s.unavailableRetries = 0;
    if (typeof e.ticket === "string" && e.ticket) keepTicket(t, e.ticket);
    if (typeof e.queue === "string" && e.queue) s.queue = e.queue;
    const answersJoin = s.pendingJoin !== null;
    s.pendingJoin = null;
    if (typeof e.audio_only === "boolean") s.audioOnly = e.audio_only;
    // An agent who accepts at once can start the call before the desk has answered our join:
    // then `queued` arrives after `call_started` and is old news. Keep the call (and the ticket).
    if (s.callId && answersJoin) return;
    if (s.callId) endCallLocally(t); // the call ended while we were away
    updatePosition(s, e);
    s.error = "";
    setPhase(t, "waiting");
    if (s.pendingCallback) sendPendingCallback(t); // asked for while the connection was down
  },

  [MSG.POSITION](t, e) {
    updatePosition(t.s, e);
  },

  [MSG.MOVED](t, e) {
    const s = t.s;
    if (typeof e.queue === "string" && e.queue) s.queue = e.queue;
    if (Number.isInteger(e.position) && e.position > 0) s.position = e.position;
    else if (e.reason === "max_wait") s.position = null;
    if (e.reason === "max_wait") {
      s.maxWait = false;
      s.notice = _("It is busy right now, so we moved you to our {team} team. You keep your place.", {
        team: teamName(s.queue),
      });
    }
  },

  [MSG.MAX_WAIT](t) {
    if (LIVE.has(t.s.phase) && !t.s.callId) t.s.maxWait = true;
  },

  /** Leaving asks once ("Leave the line?"): the place is not given up by one stray Enter. */
  click_leave(t) {
    if (currentView(t.s) !== "waiting") return;
    t.s.leaveAsked = true;
    t.do("focus", { target: "leave-no" });
  },

  cancel_leave(t) {
    if (!t.s.leaveAsked) return;
    t.s.leaveAsked = false;
    t.do("focus", { target: "position" });
  },

  confirm_leave(t) {
    if (currentView(t.s) !== "waiting" || !t.s.leaveAsked) return;
    t.s.leaveAsked = false;
    t.s.leaveDisabled = true;
    if (send(t, { type: MSG.LEAVE })) {
      t.do("timer", { name: "leave", ms: LEAVE_WAIT_MS, event: { type: "leave_timeout" } });
    } else leftLocally(t, LEFT_TEXT);
  },

  leave_timeout(t) {
    if (t.s.phase === "waiting" || t.s.phase === "connecting") leftLocally(t, LEFT_TEXT);
  },

  [MSG.LEFT](t, e) {
    if (!LIVE.has(t.s.phase) && t.s.phase !== "callback-saved") return; // it answers a leave
    dropTicket(t);
    t.do("clear", { name: "leave" });
    disconnect(t);
    // Leaving for a call-back is not leaving: the confirmation is already on screen.
    if (e.reason === "callback" || t.s.phase === "callback-saved") return;
    showEnded(t, "left", LEFT_TEXT);
  },
};
