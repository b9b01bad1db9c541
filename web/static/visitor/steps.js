/* Steps the visitor panel's transitions share. Each takes the transition under way (a Step:
 * `t.s` the state to change, `t.do(...)` an effect) and is pure like the table itself. */

import { MSG, ERROR } from "../shared/protocol.js";
import { freshQuality } from "../shared/call_quality.js";
import { ERROR_TEXT, lineInfoText } from "./text.js";
import { BEFORE, LIVE, isWarm } from "./state.js";
import { _ } from "../shared/i18n.js";

// A socket opened ahead of the click is let go after this long without a join, well inside
// the lifetime of the TURN credentials its `welcome` carried.
export const WARM_IDLE_MS = 5 * 60 * 1000;
const RATING_WINDOW_MS = 120000; // the socket stays open this long for a rating

export function setPhase(t, phase) {
  if (phase === t.s.phase) return;
  t.s.phase = phase;
  t.s.leaveAsked = false;
  t.do("host", { msg: { type: "state", phase } });
}

/** `resume` with the ticket, and the call the panel is in (so that a call that ended while
 * the panel was away is told with `call_ended`, not as a lost place). */
export function resumeMessage(s) {
  return s.callId ? { type: MSG.RESUME, ticket: s.ticket, call_id: s.callId } : { type: MSG.RESUME, ticket: s.ticket };
}

/** Sends on the socket if it is open; says whether it did. */
export function send(t, msg) {
  if (t.s.link !== "open") return false;
  t.do("send", { msg });
  return true;
}

export function connect(t) {
  t.do("clear", { name: "warm" });
  t.do("connect");
  t.s.link = "connecting";
  t.s.neverWelcomed = 0;
  t.s.welcomed = false;
}

export function disconnect(t) {
  t.do("clear", { name: "warm" });
  t.do("disconnect");
  t.s.link = "none";
  t.s.welcomed = false;
}

/**
 * Opens the socket before the click on Join, once the panel is ready: the click then only
 * sends `join` on a socket the desk has already welcomed. Never a second socket, never for a
 * ticket (that one resumes on its own socket), never for a closed line, and none after a warm
 * one closed until the visitor joins (see the `socket_closed` handler).
 */
export function warmUp(t) {
  const s = t.s;
  if (s.link !== "none" || s.warmLost || s.phase !== "ready" || s.ticket) return;
  if (s.availability && s.availability.open === false) return;
  connect(t);
  t.do("timer", { name: "warm", ms: WARM_IDLE_MS, event: { type: "warm_idle" } });
}

export function keepTicket(t, ticket) {
  t.s.ticket = ticket;
  t.do("ticket", { ticket });
}

export function dropTicket(t) {
  keepTicket(t, null);
}

export function checkDevices(t) {
  stopPrecall(t); // it sends the tracks the check replaces
  t.s.checking = true;
  t.do("checkDevices");
}

/**
 * Tests the path to the desk (precall.js) while the visitor fills in the form: only before
 * joining, with a camera or microphone to send, and one test at a time.
 */
export function startPrecall(t) {
  const s = t.s;
  if (s.phase !== "ready" || s.ticket || s.media.problem === "no_media") return;
  if (s.precall && s.precall.status === "running") return;
  s.precall = { status: "running", rttMs: null, lossPct: null, path: null };
  t.do("precall");
}

/** Stops a test under way (its result would come too late to matter); keeps a result. */
export function stopPrecall(t) {
  if (!t.s.precall || t.s.precall.status !== "running") return;
  t.do("stopPrecall");
  t.s.precall = null;
}

/** Turns the camera and microphone off once the conversation is over: no light left on. */
export function releaseMedia(t) {
  stopPrecall(t);
  t.do("releaseMedia");
  t.s.devicesChecked = false;
  t.s.hasVideo = false;
}

/** Drops the peer connection and the call's pictures; keeps the camera preview running. */
export function endCallLocally(t) {
  t.do("endCall");
  t.s.callId = null;
  t.s.callSince = null;
  t.s.soundBlocked = false;
  t.s.peerMedia = null;
  freshQuality(t.s);
}

export function resetWaiting(t) {
  Object.assign(t.s, {
    position: null,
    eta: null,
    etaShown: false,
    etaReason: "",
    etaReasonShown: false,
    callbackOpen: false,
    maxWait: false,
  });
}

/** Back to the join form, starting the camera again if it was turned off. */
export function backToForm(t) {
  t.s.callbackOpen = false;
  t.s.callbackWhy = null;
  if (t.s.devicesChecked) setPhase(t, "ready");
  else {
    setPhase(t, "checking");
    checkDevices(t);
  }
  applyAvailability(t, t.s.availability);
  warmUp(t);
}

/** Shapes the panel before joining: closed, nobody in, or the wait to expect. */
export function applyAvailability(t, info) {
  const s = t.s;
  if (!info || !BEFORE.has(s.phase)) return;
  if (info.unknown) {
    s.error = ERROR_TEXT[ERROR.UNKNOWN_QUEUE];
    return;
  }
  s.availability = info;
  if (info.open === false) {
    if (s.phase === "closed") describeCallback(t, "closed", info.opens_at);
    else openCallback(t, "closed", info.opens_at);
    return;
  }
  if (s.phase === "closed") openCallback(t, "reopened");
  const nobody = Number(info.agents_online) === 0;
  s.offlineNotice = nobody;
  s.nobodyIn = nobody; // a smaller preview keeps Join in view; "Wait in line anyway"
  s.lineInfo = nobody ? "" : lineInfoText(info);
}

/**
 * After a call-back request: whether someone is free to talk now (the line is open and an
 * agent is Available), so the visitor is offered a call instead of a dead end.
 */
export function noteFreeNow(t, info) {
  if (!info || info.unknown) return;
  t.s.availability = info;
  t.s.freeNow = info.open !== false && Number(info.agents_available) > 0;
}

export function describeCallback(t, why, opensAt) {
  t.s.callbackWhy = why;
  if (why === "closed") t.s.opensAt = opensAt || "";
}

/**
 * Shows the call-back form. `why`: "closed" (outside opening hours), "reopened" (it opened
 * while the form was up), "offline" (open, but nobody is in) or "waiting" (a long wait; the
 * visitor keeps their place until they send it). `focus`: the visitor asked for it.
 */
export function openCallback(t, why, opensAt, focus = false) {
  const s = t.s;
  t.do("prefillCallback");
  s.callbackError = "";
  s.offlineNotice = false;
  describeCallback(t, why, opensAt);
  if (why === "waiting") s.callbackOpen = true;
  else {
    s.callbackOpen = false;
    s.error = "";
    if (why === "closed") {
      setPhase(t, "closed");
      releaseMedia(t); // no camera for a line that is closed
    } else setPhase(t, "callback");
  }
  // Only after the visitor's own action: never pull focus into the frame unasked.
  if (focus) t.do("focus", { target: "callback" });
}

export function callbackFailed(t, text) {
  const s = t.s;
  if (!s.callbackRequest && !s.pendingCallback) return;
  s.callbackRequest = null;
  s.pendingCallback = null;
  t.do("clear", { name: "callback" });
  s.callbackError = text;
  if (!LIVE.has(s.phase)) disconnect(t);
}

export function sendPendingCallback(t) {
  const msg = t.s.pendingCallback;
  t.s.pendingCallback = null;
  if (msg && t.s.link !== "none" && !send(t, msg)) t.s.pendingCallback = msg;
}

export function offerRating(t, callId) {
  const s = t.s;
  if (!callId || s.link === "none") {
    disconnect(t);
    return;
  }
  Object.assign(s, { rateCallId: callId, ratingRetried: false, score: 0, ratingComment: "", ratingThanks: "" });
  t.do("clearRating");
  t.do("timer", { name: "rating", ms: RATING_WINDOW_MS, event: { type: "rating_window_over" } });
}

export function sendRating(t) {
  const s = t.s;
  if (!s.rateCallId || !s.score) return;
  const msg = { type: MSG.RATE, call_id: s.rateCallId, score: s.score, comment: s.ratingComment };
  if (!send(t, msg)) {
    finishRating(t, _("Sorry, we could not send your feedback."));
    return;
  }
  t.do("timer", { name: "rating-sent", ms: 8000, event: { type: "rating_timeout" } });
}

/** Ends the rating (sent, skipped or timed out) and with it the visitor's socket. */
export function finishRating(t, text) {
  const s = t.s;
  t.do("clear", { name: "rating" });
  t.do("clear", { name: "rating-sent" });
  const had = s.rateCallId !== null;
  s.rateCallId = null;
  s.ratingSending = false;
  s.ratingThanks = text || "";
  if (had) disconnect(t);
}

export function showEnded(t, phase, message) {
  t.s.notice = "";
  finishRating(t, "");
  t.s.endedMessage = message;
  t.s.leaveDisabled = false;
  t.s.callbackOpen = false;
  setPhase(t, phase);
  releaseMedia(t);
}

export function leftLocally(t, text) {
  dropTicket(t);
  disconnect(t);
  showEnded(t, "left", text);
}

/**
 * Where the keyboard goes when the panel is opened, or the phase changes (`ifInPanel`: only
 * if the keyboard is in the panel already). In line it is the place, never "Leave the line",
 * one Enter from losing it.
 */
export function focusPrimary(t, { ifInPanel = false } = {}) {
  const s = t.s;
  const target = {
    ready: "name",
    checking: "name",
    closed: "callback-name",
    callback: "callback-name",
    "callback-saved": "callback-close",
    waiting: s.callbackOpen ? "callback-name" : "position",
    "in-call": "mute",
    "call-connecting": "hangup",
    ended: s.rateCallId ? "star" : "again",
    left: "again",
    error: "again",
  }[s.phase];
  if (target) t.do("focus", ifInPanel ? { target, ifInPanel } : { target });
}

export { isWarm };
