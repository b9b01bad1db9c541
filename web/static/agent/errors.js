/* The desk's refusals (`error`) as the console takes them. */

import { ERROR, MSG } from "../shared/protocol.js";
import { UNAVAILABLE_TEXT } from "./text.js";
import { hideOffer, notesState, notify } from "./steps.js";

export const errors = {
  [MSG.ERROR](t, e) {
    const s = t.s;
    if (e.code === ERROR.UNAVAILABLE) {
      // Redis is down for a moment: say so, and send a status change again by itself.
      notify(t, UNAVAILABLE_TEXT + " Trying again…", true);
      if (e.in_reply_to === MSG.STATUS && s.wantedStatus) {
        const ms = 1000 * (Number(e.retry_after_s) || 2);
        t.do("timer", { name: "status", ms, event: { type: "resend_status" } });
        return;
      }
    } else if (e.code === ERROR.RATE_LIMITED) {
      notify(t, "Slow down: the desk refused that because too many messages came at once.");
    }
    if (e.in_reply_to === MSG.CHAT) {
      const why = e.code === ERROR.CHAT_FULL ? "This call's chat is full: no more messages can be sent in it." : `Your message was not sent (${e.code}).`;
      s.chat = { ...s.chat, notice: why };
      return;
    }
    if (e.code === ERROR.STALE_OFFER) {
      hideOffer(t);
      notify(t, "That visitor is no longer waiting for you.");
      return;
    }
    if (e.in_reply_to === MSG.NOTES) {
      s.notes = { ...s.notes, sent: s.notes.sent.slice(1), dirty: true };
      notesState(t, "error", "Not saved");
      notify(t, `Your notes were not saved: ${e.message || e.code}`);
      return;
    }
    if (e.in_reply_to === MSG.TRANSFER) {
      s.transferring = false;
      notify(t, `The transfer did not go through: ${e.message || e.code}`);
      return;
    }
    if (e.in_reply_to === MSG.WRAPUP) s.wrapupBusy = false;
    if (e.in_reply_to === MSG.CLOSE_CALLBACK) {
      s.closing = []; // the buttons back on
      s.moreBusy = false;
      notify(t, "That call-back request was already closed.");
      return;
    }
    notify(t, e.message || `The desk refused that (${e.code}).`);
    if ((e.in_reply_to === MSG.ACCEPT || e.in_reply_to === MSG.DECLINE) && s.offer) {
      s.offer = { ...s.offer, answering: false };
    }
  },
};
