/* What the agent console says. */

import { precallNumbers, reasonText } from "../shared/format.js";

export const STATUS_TEXT = {
  offline: "Offline",
  available: "Available",
  break: "On break",
  offered: "Incoming offer",
  in_call: "In call",
  wrap_up: "Wrap-up",
};

export const OFFER_CANCELLED_TEXT = {
  timeout: "The offer timed out and the visitor went back to their place in line.",
  visitor_left: "The visitor left the line.",
  declined: "You declined the visitor; they keep their place in line.",
  status_change: "The offer was withdrawn because your status changed.",
};

export const SESSION_END_TEXT = {
  session_expired: "Your session has ended. Please sign in again.",
  signed_out: "You signed out in another window.",
  account_removed: "Your account was removed. Ask a supervisor if this is a mistake.",
  account_disabled: "Your account was disabled. Ask a supervisor if this is a mistake.",
  password_changed: "Your password was changed. Sign in with the new one.",
  account_changed: "Your account was changed (queues, name or role). Please sign in again.",
};

export const UNAVAILABLE_TEXT = "The desk is having trouble reaching its database.";
export const NOT_CONNECTED = "Not connected to the desk. Try again in a moment.";

const END_TEXT = {
  hangup: { visitor: "{name} hung up.", agent: "You ended the call.", desk: "The desk ended the call." },
  peer_left: "The connection to {name} was lost.",
  agent_offline: "The call ended because you went offline.",
};

/** Why the call ended, from `call_ended` ("{name}": the visitor's). */
export function endText(msg) {
  if (msg.reason === "transferred") return `You passed {name} to the ${msg.queue || "other"} line.`;
  return reasonText(END_TEXT, msg);
}

/** The workspace's heading and the line under it. */
export function callTitle(s) {
  if (s.callId) {
    const name = s.peer && s.peer.name;
    return { title: name ? `Call with ${name}` : "Call with a visitor", topic: (s.peer && s.peer.topic) || "" };
  }
  if (s.status === "wrap_up") {
    return {
      title: s.lastPeerName ? `Wrap-up after your call with ${s.lastPeerName}` : "Wrap-up after the call",
      topic: "Add your notes and the outcome. The next visitor comes when the wrap-up ends, or press Done.",
    };
  }
  const taking = s.status === "available" || s.status === "offered";
  return { title: taking ? "Waiting for the next visitor" : "No call. Choose Available to take visitors", topic: "" };
}

export const CONNECTION_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

/** An offer's words for the tab's title and a desktop notification. */
export function offerAlertText(offer) {
  const v = offer.visitor || {};
  const seconds = Math.ceil((offer.timeout || 0) / 1000);
  return {
    title: `Incoming call – ${v.name || "a visitor"}`,
    body: `${v.topic || "No topic given"}\n${offer.queue ? offer.queue + " line · " : ""}Answer within ${seconds} s`,
  };
}

/**
 * The warning of a console that was hidden while taking visitors, by what the browser says
 * of desktop notifications (`granted`, `default`, `denied`, `unsupported`).
 */
export function backgroundWarning(permission) {
  const slowed = "Your browser slows down the timers of a tab in the background, so the ring and the countdown of an offer may come late.";
  if (permission === "granted") return `${slowed} A desktop notification still tells you of each offer; to be sure, keep this tab visible (in a window of its own).`;
  if (permission === "default") return `${slowed} Keep this tab visible (in a window of its own), or allow notifications.`;
  return `${slowed} Keep this tab visible (in a window of its own): notifications are off in this browser, so only the tab's title and icon show an offer.`;
}

/** Who passed the visitor on, and the outcome they chose: the head of the offer's handover. */
export function handoverFrom(h) {
  const who = h.agent ? `Notes from ${h.agent}` : "Notes from the agent before";
  const where = h.queue ? ` (${h.queue})` : "";
  const outcome = h.disposition ? ` · Outcome: ${h.disposition}` : "";
  return h.notes || h.disposition ? who + where + outcome : `No notes from ${h.agent || "the agent before"}${where}`;
}

const PRECALL_TEXT = {
  ok: "Good",
  poor: "May be choppy",
  failed: "Could not connect: video may fail",
  busy: "Not tested (the test could not run)",
};

/** The visitor's pre-call test on the offer card ("" when the join carried none). */
export function precallText(precall) {
  if (!precall || !PRECALL_TEXT[precall.status]) return "";
  const numbers = precallNumbers(precall.rtt_ms, precall.loss_pct, precall.path);
  return numbers ? `${PRECALL_TEXT[precall.status]} · ${numbers}` : PRECALL_TEXT[precall.status];
}
