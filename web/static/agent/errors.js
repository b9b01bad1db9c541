/* The desk's refusals (`error`) as the console takes them. */

import { ERROR, MSG } from "../shared/protocol.js";
import { _ } from "../shared/i18n.js";
import { UNAVAILABLE_RETRYING } from "./text.js";
import { hideOffer, notesState, notify } from "./steps.js";

export const errors = {
  [MSG.ERROR](t, e) {
    const s = t.s;
    if (e.code === ERROR.UNAVAILABLE) {
      // Redis is down for a moment: say so, and send a status change again by itself.
      notify(t, UNAVAILABLE_RETRYING, true);
      if (e.in_reply_to === MSG.STATUS && s.wantedStatus) {
        const ms = 1000 * (Number(e.retry_after_s) || 2);
        t.do("timer", { name: "status", ms, event: { type: "resend_status" } });
        return;
      }
    } else if (e.code === ERROR.RATE_LIMITED) {
      notify(t, _("Slow down: the desk refused that because too many messages came at once."));
    }
    if (e.in_reply_to === MSG.CHAT) {
      const why =
        e.code === ERROR.CHAT_FULL
          ? _("This call's chat is full: no more messages can be sent in it.")
          : _("Your message was not sent ({code}).", { code: e.code });
      s.chat = { ...s.chat, notice: why };
      return;
    }
    if (e.code === ERROR.STALE_OFFER) {
      hideOffer(t);
      notify(t, _("That visitor is no longer waiting for you."));
      return;
    }
    if (e.in_reply_to === MSG.NOTES) {
      s.notes = { ...s.notes, sent: s.notes.sent.slice(1), dirty: true };
      notesState(t, "error", _("Not saved"));
      notify(t, _("Your notes were not saved: {why}", { why: e.message || e.code }));
      return;
    }
    if (e.in_reply_to === MSG.TRANSFER) {
      s.transferring = false;
      notify(t, _("The transfer did not go through: {why}", { why: e.message || e.code }));
      return;
    }
    if (e.in_reply_to === MSG.WRAPUP) s.wrapupBusy = false;
    if (e.in_reply_to === MSG.CLOSE_CALLBACK) {
      s.closing = []; // the buttons back on
      s.moreBusy = false;
      notify(t, _("That call-back request was already closed."));
      return;
    }
    notify(t, e.message || _("The desk refused that ({code}).", { code: e.code }));
    if ((e.in_reply_to === MSG.ACCEPT || e.in_reply_to === MSG.DECLINE) && s.offer) {
      s.offer = { ...s.offer, answering: false };
    }
  },
};
