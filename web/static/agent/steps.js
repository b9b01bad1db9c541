/* Steps the agent console's transitions share. Each takes the transition under way (a Step:
 * `t.s` the state to change, `t.do(...)` an effect) and is pure like the table itself. */

import { MSG } from "../shared/protocol.js";
import { clip } from "../shared/format.js";
import { _ } from "../shared/i18n.js";
import { offerAlertText } from "./text.js";
import { freshQuality } from "../shared/call_quality.js";

const NOTICE_MS = 10000;
const RENEW_NOW = 0;

export function setPhase(t, phase) {
  t.s.phase = phase;
}

/** Sends on the socket if it is open; says whether it did. */
export function send(t, msg) {
  if (t.s.link !== "open") return false;
  t.do("send", { msg });
  return true;
}

/** A toast; it clears itself after a while unless sticky (or replaced by a newer one). */
export function notify(t, text, sticky = false) {
  t.s.notice = text || "";
  t.do("clear", { name: "notice" });
  if (text && !sticky) t.do("timer", { name: "notice", ms: NOTICE_MS, event: { type: "notice_expired", text } });
}

export function connect(t) {
  t.do("connect");
  t.s.link = "connecting";
  t.s.connection = "connecting";
}

export function disconnect(t) {
  t.do("disconnect");
  t.s.link = "none";
}

export function showLogin(t, message) {
  setPhase(t, "login");
  t.s.loginError = message || "";
  t.s.loginBusy = false;
  t.do("focus", { target: "username" });
}

export function enterConsole(t, agent) {
  t.s.agent = agent || null;
  t.do("resetIdle");
  t.do("renew", { after: RENEW_NOW });
  addQueueRows(t.s, agent);
  setPhase(t, "idle");
  setStatus(t, "offline");
  startMedia(t);
  connect(t);
}

export function addQueueRows(s, agent) {
  const names = (agent && agent.queues) || [];
  const fresh = names.filter((q) => !s.queueNames.includes(q));
  if (fresh.length) s.queueNames = s.queueNames.concat(fresh);
}

export function startMedia(t) {
  t.s.checking = true;
  t.do("checkDevices");
}

export function releaseMedia(t) {
  t.do("releaseMedia");
  t.s.localVideo = false;
}

export function stopRenewing(t) {
  t.do("clear", { name: "renew" });
  t.do("clear", { name: "idle" });
}

/** Leaves the console for the sign-in form (signed out, or the session ended). */
export function leaveConsole(t, message) {
  t.s.agent = null;
  t.s.undo = []; // a "Done" not sent by now stays open at the desk
  t.s.wantedStatus = null;
  setStatus(t, "offline");
  showLogin(t, message);
}

/** The desk ended the session (expired, revoked): back to the sign-in form. */
export function sessionEnded(t, message) {
  endCallLocally(t);
  hideOffer(t);
  releaseMedia(t);
  stopRenewing(t);
  disconnect(t);
  leaveConsole(t, message);
}

export function hideOffer(t) {
  t.do("clear", { name: "offer" });
  if (t.s.offer && !t.s.offer.answering) quietOffer(t);
  t.s.offer = null;
  if (t.s.phase === "offered") setPhase(t, "idle");
}

/* Not missing an offer ------------------------------------------------------------------- */

/**
 * An offer came: it rings until it is answered or runs out (the ring is scheduled on the audio
 * clock at once, so a background tab's slowed timers cannot delay it), the tab's title and icon
 * show it, and so does a desktop notification while the console is hidden.
 */
export function alertOffer(t) {
  const offer = t.s.offer;
  t.do("ring", { ms: offer.timeout });
  t.do("attention", { count: 1, title: offerAlertText(offer).title });
  if (t.s.hidden) notifyDesktop(t);
}

/** A desktop notification of the offer on screen, if the browser allows them. */
export function notifyDesktop(t) {
  const offer = t.s.offer;
  if (!offer || offer.answering || t.s.notifications !== "granted") return;
  t.do("desktopNotify", { tag: "offer-" + offer.id, ...offerAlertText(offer) });
}

/** The offer was answered or went: the ring, the title, the icon and the notification stop. */
export function quietOffer(t) {
  t.do("stopRing");
  t.do("attentionOff");
  t.do("closeNotification");
}

/** Asks for desktop notifications, once the agent did something (never on load). */
export function askNotifications(t) {
  if (t.s.notifications !== "default") return;
  t.s.notifyAsked = true;
  t.do("askNotifications");
}

/** Hidden while taking visitors: the browser may slow the tab's timers; say so. */
export function checkBackground(t) {
  const s = t.s;
  if (s.hidden && (s.status === "available" || s.status === "offered")) s.backgroundWarning = true;
}

export function endCallLocally(t) {
  t.do("endCall");
  Object.assign(t.s, { callId: null, callQueue: null, callSince: null, peerMedia: null, soundBlocked: false });
  t.s.transferring = false;
  freshQuality(t.s);
}

/**
 * Back to no call: the words, the phase (unless signed out or replaced), a notice.
 * `message`: the notice, or a function of the visitor's name ("" when they gave none) to it.
 */
export function idleView(t, message) {
  const name = (t.s.peer && t.s.peer.name) || "";
  t.s.peer = null;
  if (t.s.phase !== "replaced" && t.s.phase !== "login") setPhase(t, "idle");
  notify(t, typeof message === "function" ? message(name) : message);
}

/** A fresh transfer control for the call's line (the other lines of the desk). */
export function resetTransfer(t) {
  t.s.transferChoice = "";
  t.s.transferring = false;
}

/**
 * Shows a status. `msg` is the desk's own status message; without it (welcome, a local
 * Offline while reconnecting) the wrap-up and the notes are left as they are.
 */
export function setStatus(t, status, reason, msg, now) {
  const s = t.s;
  s.status = status;
  // Why the desk put us on Break stays on screen until the agent is taking visitors again.
  if (status === "break") s.breakReason = reason || null;
  else if (status !== "offline") s.breakReason = null;
  if (reason && status !== "break") notify(t, reason);
  if (status === "offline" || status === "break") s.backgroundWarning = false;
  else checkBackground(t);
  if ((status === "offline" || status === "break") && s.offer) hideOffer(t);
  if (msg) {
    // After a call the desk holds the agent in wrap-up for a while (no offers); any status
    // choice ends it, so Available stays a live button.
    setWrapup(t, status, msg, now);
    if (status === "wrap_up" && msg.call_id) openNotes(t, String(msg.call_id));
    else if (status !== "in_call" && status !== "wrap_up" && !s.callId) closeNotes(t);
  } else if (status !== "wrap_up") {
    setWrapup(t, status, null, now);
  }
}

function setWrapup(t, status, msg, now) {
  const s = t.s;
  if (status !== "wrap_up") {
    s.wrapupUntil = null;
    s.wrapupTotal = 0;
    return;
  }
  const remaining = Number(msg && msg.remaining_ms);
  if (Number.isFinite(remaining)) {
    const left = s.wrapupUntil !== null ? s.wrapupUntil - now : 0;
    if (!s.wrapupTotal || remaining > left + 500) s.wrapupTotal = Math.max(remaining, 1); // new, or extended
    s.wrapupUntil = now + Math.max(0, remaining);
  }
  s.wrapupBusy = false;
}

/* Notes --------------------------------------------------------------------------------- */

const EMPTY_NOTES = { callId: null, text: "", disposition: "", dirty: false, edits: 0, sent: [], state: "", label: "" };

export function notesState(t, state, label) {
  t.s.notes = { ...t.s.notes, state, label };
}

/** Shows the notes of `callId`, starting clean for a call other than the one on screen. */
export function openNotes(t, callId) {
  if (t.s.notes.callId !== callId) {
    flushNotes(t);
    t.s.notes = { ...EMPTY_NOTES, callId };
  } else if (t.s.notes.dirty) {
    saveNotes(t); // e.g. typed while the connection was down
  }
}

/** Saves what is left and clears the notes for the next call. */
export function closeNotes(t) {
  flushNotes(t);
  t.s.notes = { ...EMPTY_NOTES, edits: t.s.notes.edits };
}

export function flushNotes(t) {
  t.do("clear", { name: "notes" });
  if (t.s.notes.callId && t.s.notes.dirty) saveNotes(t);
}

export function saveNotes(t) {
  t.do("clear", { name: "notes" });
  const notes = t.s.notes;
  if (!notes.callId) return;
  const msg = {
    type: MSG.NOTES,
    call_id: notes.callId,
    notes: clip(notes.text, 5000),
    disposition: clip(notes.disposition, 64),
  };
  if (!send(t, msg)) {
    notesState(t, "error", _("Not saved yet: offline")); // stays dirty: saved once we are back
    return;
  }
  t.s.notes = { ...t.s.notes, dirty: false, sent: [...notes.sent, notes.edits], state: "saving", label: _("Saving…") };
}
