/* The agent's status, the lines they serve, and offers of a visitor (accept, decline). */

import { MSG } from "../shared/protocol.js";
import { NOT_CONNECTED, OFFER_CANCELLED_TEXT } from "./text.js";
import { setDeskQueues } from "./link.js";
import { flushNotes, hideOffer, notify, send, setPhase, setStatus } from "./steps.js";

const OFFER_GRACE_MS = 3000; // the desk cancels expired offers; without its word, the card goes

export const offers = {
  /** Available, Break or Offline pressed (`status`). */
  click_status(t, e) {
    flushNotes(t); // a status change may end the wrap-up: the notes go first
    t.s.wantedStatus = e.status;
    if (!send(t, { type: MSG.STATUS, status: e.status })) {
      notify(t, "Not connected to the desk yet. Your status will be set when the connection is back.", true);
    }
  },

  /** The status again after `unavailable` (the desk's database was down for a moment). */
  resend_status(t) {
    if (t.s.wantedStatus) send(t, { type: MSG.STATUS, status: t.s.wantedStatus });
  },

  [MSG.STATUS](t, e) {
    setStatus(t, e.status, e.reason, e, e.now);
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
      answering: false,
    };
    setPhase(t, "offered");
    notify(t, "");
    t.do("chime");
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
    notify(t, OFFER_CANCELLED_TEXT[e.reason] || "The offer was withdrawn.");
  },

  click_accept(t) {
    const offer = t.s.offer;
    if (!offer || offer.answering) return;
    if (send(t, { type: MSG.ACCEPT, offer_id: offer.id })) t.s.offer = { ...offer, answering: true };
    else notify(t, NOT_CONNECTED);
  },

  click_decline(t) {
    const offer = t.s.offer;
    if (!offer || offer.answering) return;
    if (send(t, { type: MSG.DECLINE, offer_id: offer.id })) hideOffer(t);
    else notify(t, NOT_CONNECTED);
  },
};
