/* What the agent console says, in the page's language (shared/i18n.js). The tables are made
 * when the module loads, after the page's catalog. */

import { precallNumbers, reasonText } from "../shared/format.js";
import { _ } from "../shared/i18n.js";

export const STATUS_TEXT = {
  offline: _("Offline"),
  available: _("Available"),
  break: _("On break"),
  offered: _("Incoming offer"),
  in_call: _("In call"),
  wrap_up: _("Wrap-up"),
};

export const OFFER_CANCELLED_TEXT = {
  timeout: _("The offer timed out and the visitor went back to their place in line."),
  visitor_left: _("The visitor left the line."),
  declined: _("You declined the visitor; they keep their place in line."),
  status_change: _("The offer was withdrawn because your status changed."),
};
export const OFFER_WITHDRAWN_TEXT = _("The offer was withdrawn.");

export const SESSION_END_TEXT = {
  session_expired: _("Your session has ended. Please sign in again."),
  signed_out: _("You signed out in another window."),
  account_removed: _("Your account was removed. Ask a supervisor if this is a mistake."),
  account_disabled: _("Your account was disabled. Ask a supervisor if this is a mistake."),
  password_changed: _("Your password was changed. Sign in with the new one."),
  account_changed: _("Your account was changed (queues, name or role). Please sign in again."),
};

export const UNAVAILABLE_TEXT = _("The desk is having trouble reaching its database.");
/** The desk's database is down: the socket is being reconnected, or a message is sent again. */
export const UNAVAILABLE_RECONNECTING = _("The desk is having trouble reaching its database. Reconnecting…");
export const UNAVAILABLE_RETRYING = _("The desk is having trouble reaching its database. Trying again…");
/** The desk closed the socket (1008) after too many errors. */
export const POLICY_CLOSED_TEXT = _("The desk closed the connection after too many errors. Reconnecting…");
export const NOT_CONNECTED = _("Not connected to the desk. Try again in a moment.");
export const NOT_CONNECTED_STATUS = _("Not connected to the desk yet. Your status will be set when the connection is back.");

/* Why a call ended, with the visitor's name and without it (a visitor who gave none). */
const END_TEXT = {
  hangup: { visitor: _("{name} hung up."), agent: _("You ended the call."), desk: _("The desk ended the call.") },
  peer_left: _("The connection to {name} was lost."),
  agent_offline: _("The call ended because you went offline."),
};
const END_TEXT_NAMELESS = {
  hangup: { visitor: _("The visitor hung up."), agent: _("You ended the call."), desk: _("The desk ended the call.") },
  peer_left: _("The connection to the visitor was lost."),
  agent_offline: _("The call ended because you went offline."),
};

/** Why the call ended, from `call_ended`, with the visitor's `name` ("": none given). */
export function endText(msg, name) {
  if (msg.reason === "transferred") {
    const queue = msg.queue || "";
    if (name && queue) return _("You passed {name} to the {queue} line.", { name, queue });
    if (name) return _("You passed {name} to the other line.", { name });
    if (queue) return _("You passed the visitor to the {queue} line.", { queue });
    return _("You passed the visitor to the other line.");
  }
  if (!name) return reasonText(END_TEXT_NAMELESS, msg);
  return fillName(reasonText(END_TEXT, msg), name);
}

/** `text` with the visitor's name for "{name}" (the name is the visitor's own text). */
function fillName(text, name) {
  return text.split("{name}").join(name);
}

/** The workspace's heading and the line under it. */
export function callTitle(s) {
  if (s.callId) {
    const name = s.peer && s.peer.name;
    return { title: name ? _("Call with {name}", { name }) : _("Call with a visitor"), topic: (s.peer && s.peer.topic) || "" };
  }
  if (s.status === "wrap_up") {
    return {
      title: s.lastPeerName
        ? _("Wrap-up after your call with {name}", { name: s.lastPeerName })
        : _("Wrap-up after the call"),
      topic: _("Add your notes and the outcome. The next visitor comes when the wrap-up ends, or press Done."),
    };
  }
  const taking = s.status === "available" || s.status === "offered";
  return {
    title: taking ? _("Waiting for the next visitor") : _("No call. Choose Available to take visitors"),
    topic: "",
  };
}

export const CONNECTION_TEXT = {
  connecting: _("Connecting…"),
  connected: _("Connected"),
  reconnecting: _("Reconnecting…"),
  disconnected: _("Disconnected"),
};

/** "Answer within 20 s": the time left to take an offer, in seconds. */
export function answerWithin(seconds) {
  return _("Answer within {seconds} s", { seconds });
}

/** An offer's words for the tab's title and a desktop notification. */
export function offerAlertText(offer) {
  const v = offer.visitor || {};
  const seconds = Math.ceil((offer.timeout || 0) / 1000);
  const topic = v.topic || _("No topic given");
  const answer = offer.queue
    ? _("{queue} line · Answer within {seconds} s", { queue: offer.queue, seconds })
    : answerWithin(seconds);
  return {
    title: v.name ? _("Incoming call – {name}", { name: v.name }) : _("Incoming call – a visitor"),
    body: `${topic}\n${answer}`,
  };
}

/**
 * The warning of a console that was hidden while taking visitors, by what the browser says
 * of desktop notifications (`granted`, `default`, `denied`, `unsupported`).
 */
export function backgroundWarning(permission) {
  if (permission === "granted") {
    return _(
      "Your browser slows down the timers of a tab in the background, so the ring and the countdown of an offer may come late. " +
        "A desktop notification still tells you of each offer; to be sure, keep this tab visible (in a window of its own)."
    );
  }
  if (permission === "default") {
    return _(
      "Your browser slows down the timers of a tab in the background, so the ring and the countdown of an offer may come late. " +
        "Keep this tab visible (in a window of its own), or allow notifications."
    );
  }
  return _(
    "Your browser slows down the timers of a tab in the background, so the ring and the countdown of an offer may come late. " +
      "Keep this tab visible (in a window of its own): notifications are off in this browser, so only the tab's title and icon show an offer."
  );
}

/** The outcomes of the notes' list, as the handover shows them (others: as the desk has them). */
const OUTCOME_TEXT = {
  resolved: _("resolved"),
  "follow-up needed": _("follow-up needed"),
  escalated: _("escalated"),
  "not resolved": _("not resolved"),
  other: _("other"),
};

/** Who passed the visitor on, and the outcome they chose: the head of the offer's handover. */
export function handoverFrom(h) {
  const agent = h.agent;
  const queue = h.queue;
  if (!h.notes && !h.disposition) {
    if (agent && queue) return _("No notes from {agent} ({queue})", { agent, queue });
    if (agent) return _("No notes from {agent}", { agent });
    if (queue) return _("No notes from the agent before ({queue})", { queue });
    return _("No notes from the agent before");
  }
  let who;
  if (agent && queue) who = _("Notes from {agent} ({queue})", { agent, queue });
  else if (agent) who = _("Notes from {agent}", { agent });
  else if (queue) who = _("Notes from the agent before ({queue})", { queue });
  else who = _("Notes from the agent before");
  if (!h.disposition) return who;
  const outcome = OUTCOME_TEXT[h.disposition] || h.disposition;
  return _("{notes} · Outcome: {outcome}", { notes: who, outcome });
}

const PRECALL_TEXT = {
  ok: _("Good"),
  poor: _("May be choppy"),
  failed: _("Could not connect: video may fail"),
  busy: _("Not tested (the test could not run)"),
};

/** The visitor's pre-call test on the offer card ("" when the join carried none). */
export function precallText(precall) {
  if (!precall || !PRECALL_TEXT[precall.status]) return "";
  const numbers = precallNumbers(precall.rtt_ms, precall.loss_pct, precall.path);
  const verdict = PRECALL_TEXT[precall.status];
  return numbers ? _("{verdict} · {numbers}", { verdict, numbers }) : verdict;
}
