/* The desk's refusals (`error`): what the visitor is told, and what is tried again. */

import { ERROR, MSG } from "../shared/protocol.js";
import { ERROR_TEXT, PLACE_EXPIRED, limitedText } from "./text.js";
import {
  backToForm,
  callbackFailed,
  disconnect,
  dropTicket,
  finishRating,
  openCallback,
  resumeMessage,
  send,
  setPhase,
} from "./steps.js";
import { _ } from "../shared/i18n.js";

const UNAVAILABLE_RETRIES = 10;
/** The messages sent again by themselves after `unavailable` (the desk's Redis was down). */
const RESENT = new Set([MSG.JOIN, MSG.RESUME, MSG.CALLBACK, MSG.LEAVE, MSG.HANGUP]);

/**
 * The desk could not reach its database for a moment: say so and send the same message again
 * by itself, a few times, before giving up. Returns false when giving up.
 */
function retryUnavailable(t, msg) {
  const s = t.s;
  if (s.unavailableRetries >= UNAVAILABLE_RETRIES) {
    s.unavailableRetries = 0;
    return false;
  }
  s.unavailableRetries += 1;
  s.notice = _("We are having trouble reaching the help desk. Trying again…");
  const ms = 1000 * (Number(msg.retry_after_s) || 2);
  t.do("timer", { name: "resend-" + msg.in_reply_to, ms, jitter: 0.25, event: { type: "resend", what: msg.in_reply_to } });
  return true;
}

/** Why a line of chat was not sent, in words. */
export function chatRefusal(e) {
  if (e.code === ERROR.CHAT_FULL) return _("This call's chat is full: no more messages can be sent in it.");
  if (e.code === ERROR.RATE_LIMITED) return _("Too many messages at once: your last one was not sent.");
  return _("Your message was not sent.");
}

export const errors = {
  /** Sends `what` (a message type) again, if it is still wanted. */
  resend(t, e) {
    const s = t.s;
    if (e.what === MSG.JOIN && s.pendingJoin) send(t, s.pendingJoin);
    else if (e.what === MSG.RESUME && s.ticket) send(t, resumeMessage(s));
    else if (e.what === MSG.CALLBACK && s.callbackRequest) send(t, s.callbackRequest);
    else if (e.what === MSG.LEAVE) send(t, { type: MSG.LEAVE });
    else if (e.what === MSG.HANGUP && s.callId) send(t, { type: MSG.HANGUP, call_id: s.callId });
  },

  [MSG.ERROR](t, e) {
    const s = t.s;
    if (e.in_reply_to === MSG.JOIN && !s.pendingJoin) return; // a join already answered
    if (e.code === ERROR.UNAVAILABLE && RESENT.has(e.in_reply_to) && retryUnavailable(t, e)) return;
    if (e.in_reply_to === MSG.CHAT) {
      s.chat = { ...s.chat, notice: chatRefusal(e) };
      return;
    }
    if (e.code === ERROR.RATE_LIMITED && e.in_reply_to !== MSG.JOIN && e.in_reply_to !== MSG.CALLBACK) {
      return; // a burst of our own messages: the desk dropped one, nothing to tell the visitor
    }
    if (e.in_reply_to === MSG.JOIN) {
      // An expired or wrong priority token must not keep anyone out of the line: join without it.
      if (
        e.code === ERROR.BAD_MESSAGE &&
        s.pendingJoin &&
        s.pendingJoin.priority_token &&
        /priority_token/.test(e.message || "") &&
        s.link !== "none"
      ) {
        const { priority_token: _dropped, ...join } = s.pendingJoin;
        s.priorityToken = "";
        s.pendingJoin = join;
        send(t, join);
        return;
      }
      s.pendingJoin = null;
      disconnect(t);
      if (e.code === ERROR.QUEUE_CLOSED) {
        openCallback(t, "closed", e.opens_at, true);
        return;
      }
      setPhase(t, "ready");
      s.error =
        e.code === ERROR.RATE_LIMITED
          ? limitedText(e)
          : ERROR_TEXT[e.code] || e.message || _("We could not add you to the line.");
      t.do("focus", { target: "name" });
      return;
    }
    if (e.in_reply_to === MSG.RESUME && e.code !== ERROR.WRONG_STATE && s.ticket) {
      dropTicket(t);
      disconnect(t);
      backToForm(t);
      s.error = PLACE_EXPIRED;
      return;
    }
    if (e.in_reply_to === MSG.CALLBACK) {
      callbackFailed(
        t,
        e.code === ERROR.BAD_MESSAGE
          ? _("Please check your name and your phone number or email.")
          : e.code === ERROR.RATE_LIMITED
            ? limitedText(e)
            : ERROR_TEXT[e.code] || _("We could not send your request. Please try again.")
      );
      return;
    }
    if (e.in_reply_to === MSG.RATE) {
      // Our own hang-up may not have reached the desk yet when the rating does: try once more.
      if (e.code === ERROR.WRONG_STATE && !s.ratingRetried && s.rateCallId) {
        s.ratingRetried = true;
        t.do("timer", { name: "rating-retry", ms: 1000, event: { type: "resend_rating" } });
        return;
      }
      finishRating(t, _("Sorry, we could not save your feedback."));
      return;
    }
    s.error = ERROR_TEXT[e.code] || e.message || _("Something went wrong.");
  },
};
