/* The agent's status, the lines they serve, and offers of a visitor (accept, decline). */

import { MSG } from "../shared/protocol.js";
import { deskReason } from "../shared/format.js";
import { NOT_CONNECTED, NOT_CONNECTED_STATUS, OFFER_CANCELLED_TEXT, OFFER_WITHDRAWN_TEXT } from "./text.js";
import { setDeskQueues } from "./link.js";
import {
  alertOffer,
  askNotifications,
  checkBackground,
  flushNotes,
  hideOffer,
  notify,
  notifyDesktop,
  quietOffer,
  send,
  setPhase,
  setStatus,
} from "./steps.js";

const OFFER_GRACE_MS = 3000; // the desk cancels expired offers; without its word, the card goes

const PERMISSIONS = ["default", "granted", "denied", "unsupported"];

/**
 * What the agent who transferred the visitor knew (the offer's `handover`), or null: their
 * notes and outcome, and the chat of their call where the desk keeps one (`chat`: a list of
 * `{from, text}`).
 */
function handoverOf(h) {
  if (!h || typeof h !== "object") return null;
  const text = (value) => (typeof value === "string" ? value : "");
  const chat = Array.isArray(h.chat) ? h.chat.filter((line) => line && typeof line === "object") : [];
  return { agent: text(h.agent), queue: text(h.queue), notes: text(h.notes), disposition: text(h.disposition), chat };
}

export const offers = {
  /** Available, Break or Offline pressed (`status`). */
  click_status(t, e) {
    flushNotes(t); // a status change may end the wrap-up: the notes go first
    t.s.wantedStatus = e.status;
    // Going Available is the gesture to ask for desktop notifications at: once, never on load.
    if (e.status === "available" && !t.s.notifyAsked) askNotifications(t);
    if (!send(t, { type: MSG.STATUS, status: e.status })) {
      notify(t, NOT_CONNECTED_STATUS, true);
    }
  },

  /** The status again after `unavailable` (the desk's database was down for a moment). */
  resend_status(t) {
    if (t.s.wantedStatus) send(t, { type: MSG.STATUS, status: t.s.wantedStatus });
  },

  [MSG.STATUS](t, e) {
    setStatus(t, e.status, deskReason(e), e, e.now);
  },

  [MSG.QUEUES](t, e) {
    const queues = e.queues;
    if (!queues || typeof queues !== "object") return;
    t.s.queues = queues;
    const fresh = Object.keys(queues).filter((q) => !t.s.queueNames.includes(q));
    if (fresh.length) t.s.queueNames = t.s.queueNames.concat(fresh);
  },

  [MSG.DESK_QUEUES](t, e) {
    if (Array.isArray(e.queues)) setDeskQueues(t, e.queues);
  },

  [MSG.OFFER](t, e) {
    if (t.s.callId) return; // the desk offers no one to an agent in a call
    const timeout = Math.max(0, Number(e.timeout_ms) || 20000);
    t.s.offer = {
      id: e.offer_id,
      received: e.now,
      deadline: e.now + timeout,
      timeout,
      waited: Number(e.waited_seconds) || 0,
      queue: e.queue || "",
      visitor: e.visitor || {},
      handover: handoverOf(e.handover),
      answering: false,
    };
    setPhase(t, "offered");
    notify(t, "");
    alertOffer(t);
    t.do("timer", { name: "offer", ms: timeout + OFFER_GRACE_MS, event: { type: "offer_expired", id: e.offer_id } });
  },

  offer_expired(t, e) {
    if (!t.s.offer || t.s.offer.id !== e.id) return;
    hideOffer(t);
    notify(t, OFFER_CANCELLED_TEXT.timeout);
  },

  [MSG.OFFER_CANCELLED](t, e) {
    // After our own decline the card is already gone and there is nothing to say.
    if (!t.s.offer || e.offer_id !== t.s.offer.id) return;
    hideOffer(t);
    notify(t, OFFER_CANCELLED_TEXT[e.reason] || OFFER_WITHDRAWN_TEXT);
  },

  click_accept(t) {
    const offer = t.s.offer;
    if (!offer || offer.answering) return;
    if (send(t, { type: MSG.ACCEPT, offer_id: offer.id })) {
      t.s.offer = { ...offer, answering: true };
      quietOffer(t); // answered
    } else notify(t, NOT_CONNECTED);
  },

  /** The console's tab was hidden or shown (`hidden`: document.visibilityState is hidden). */
  visibility(t, e) {
    const s = t.s;
    const hidden = !!e.hidden;
    if (hidden === s.hidden) return;
    s.hidden = hidden;
    if (hidden) {
      checkBackground(t);
      notifyDesktop(t); // an offer already on screen
    } else if (s.offer && !s.offer.answering) t.do("closeNotification"); // the agent is here
  },

  /** What the browser says of desktop notifications, at the start and after asking. */
  notify_permission(t, e) {
    const permission = PERMISSIONS.includes(e.permission) ? e.permission : "unsupported";
    const granted = permission === "granted" && t.s.notifications !== "granted";
    t.s.notifications = permission;
    if (granted && t.s.hidden) notifyDesktop(t);
  },

  /** "Allow notifications" on the background warning. */
  click_allow_notifications(t) {
    askNotifications(t);
  },

  dismiss_background_warning(t) {
    t.s.backgroundWarning = false;
  },

  click_decline(t) {
    const offer = t.s.offer;
    if (!offer || offer.answering) return;
    if (send(t, { type: MSG.DECLINE, offer_id: offer.id })) hideOffer(t);
    else notify(t, NOT_CONNECTED);
  },
};
