/* What the visitor panel says. Pure functions of the state and the desk's messages. */

import { ERROR } from "../shared/protocol.js";
import { countOf, formatEta, formatOpening, ordinal, precallNumbers, reasonText } from "../shared/format.js";
import { _, ngettext } from "../shared/i18n.js";
import { PHASES, nobodyFree } from "./state.js";

export const ERROR_TEXT = {
  [ERROR.UNKNOWN_QUEUE]: _("This help line is not available right now."),
  [ERROR.BAD_MESSAGE]: _("Please check what you entered and try again."),
  [ERROR.CALLBACKS_FULL]: _("We cannot take more call-back requests right now. Please try again later."),
  [ERROR.UNAVAILABLE]: _("We are having trouble reaching the help desk. Please try again in a minute."),
};

/** The call-back offer while waiting: after the queue's maximum wait, or while nobody is free. */
export const MAX_WAIT_TEXT = _("Still waiting? Leave your number and we'll call you back. You keep your place until you send it.");
export const NOBODY_FREE_TEXT =
  _("Nobody is free to talk right now. Leave your number and we'll call you back, or keep your place: we will connect you as soon as someone is back.");

export const PLACE_EXPIRED = _("Your place in line has expired. Please join again.");
export const LEFT_TEXT = _("You left the line. You can join again at any time.");

const END_TEXT = {
  hangup: { visitor: _("You ended the call."), agent: _("The agent ended the call."), desk: _("The call was ended.") },
  peer_left: _("The agent's connection was lost."),
  agent_offline: _("The agent went offline."),
};

/** The call ended because this panel lost the desk for longer than the call's grace period. */
export const CONNECTION_LOST =
  _("We lost the connection, so the call has ended. Please check your internet connection and start again if you still need help.");

/** Why the call ended, from `call_ended`'s reason (and who). */
export function endText(msg) {
  return reasonText(END_TEXT, msg);
}

export const SCORE_TEXT = ["", _("Very poor"), _("Poor"), _("Okay"), _("Good"), _("Excellent")];

/** The status line: the phase's words, with the agent's name in a call. */
export function statusText(s) {
  if (s.peerName && s.phase === "call-connecting") return _("Connecting to {name}…", { name: s.peerName });
  if (s.peerName && s.phase === "in-call") return _("In call with {name}", { name: s.peerName });
  if (nobodyFree(s)) return _("Nobody is free right now");
  return PHASES[s.phase].text;
}

/** "too many … from your network" with the time to wait, for a `rate_limited` refusal. */
export function limitedText(msg) {
  const seconds = Math.max(1, Number(msg.retry_after_s) || 60);
  const when = seconds < 90 ? countOf(seconds, "second") : countOf(Math.ceil(seconds / 60), "minute");
  if (msg.limit === "waiting") return _("Too many people from your network are already waiting. Please try again later.");
  if (msg.limit === "callbacks") {
    return _("Too many call-back requests came from your network. Please try again in {wait}.", { wait: when });
  }
  return _("Too many people are joining from your network right now. Please try again in {wait}.", { wait: when });
}

/** The line before joining, from GET /api/queues/<queue>: who waits and for how long. */
export function lineInfoText(info) {
  const waiting = Math.max(0, Number(info.waiting) || 0);
  if (waiting === 0 && Number(info.agents_available) > 0) return _("Someone is free to talk to you now.");
  if (info.eta_seconds === null) return _("Nobody is free to talk right now. You can wait in line or ask us to call you back.");
  const eta = formatEta(Number(info.eta_seconds));
  if (!waiting) return _("Expected wait: {eta}", { eta });
  return ngettext("{n} person waiting · expected wait {eta}", "{n} people waiting · expected wait {eta}", waiting, { eta });
}

export function openingSentence(iso, now) {
  const when = iso ? new Date(iso) : null;
  if (!when || Number.isNaN(when.getTime())) return _("We are not taking calls at the moment.");
  return _("We open again {when}.", { when: formatOpening(when, now) });
}

/** The call-back form's heading, introduction and Back button (none: ""), by why it is shown. */
export function callbackWords(s, now) {
  if (s.callbackWhy === "closed") {
    return {
      title: _("We're closed right now"),
      intro: _("{opening} Leave your phone number or email and we'll call you back.", {
        opening: openingSentence(s.opensAt, now),
      }),
      back: "",
    };
  }
  if (s.callbackWhy === "reopened") {
    return {
      title: _("We're open again"),
      intro: _("You can talk to someone now, or still leave your number and we'll call you back."),
      back: _("Talk to someone now"),
    };
  }
  if (s.callbackWhy === "offline") {
    return {
      title: _("We'll call you back"),
      intro: _("Nobody from our team is online right now. Leave your phone number or email and we'll get back to you as soon as we can."),
      back: _("Wait in line instead"),
    };
  }
  return {
    title: _("We can call you back"),
    intro: s.position
      ? _("Still waiting? Leave your phone number or email and we'll call you back. You keep your place in line ({place}) until you send this.", { place: ordinal(s.position) })
      : _("Still waiting? Leave your phone number or email and we'll call you back. You keep your place in line until you send this."),
    back: _("Keep waiting"),
  };
}

/** Why a phone number or email will not do, or "" when it looks usable. */
export function contactProblem(text) {
  if (!text) return _("Please give us a phone number or an email address.");
  if (text.includes("@")) {
    return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text) ? "" : _("That email address does not look right.");
  }
  const digits = text.replace(/\D/g, "").length;
  if (digits < 6 || !/^\+?[\d\s().\/-]+((\s*(ext\.?|x)\s*\d+))?$/i.test(text)) {
    return _("Please enter a phone number with its area code, or an email address.");
  }
  return "";
}

/** The pre-call test in plain words: what it found, what to try, and the numbers. */
export function precallWords(p) {
  if (!p) return { verdict: "", advice: "", numbers: "" };
  const numbers = precallNumbers(p.rttMs, p.lossPct, p.path);
  switch (p.status) {
    case "running":
      return { verdict: _("Testing your connection to us…"), advice: _("You will see your own picture come back."), numbers: "" };
    case "ok":
      return { verdict: _("Your connection looks good."), advice: "", numbers };
    case "poor":
      return {
        verdict: _("Your connection may be choppy."),
        advice: _("Try moving closer to your Wi-Fi router or using a cable, and close other apps or tabs that use the internet. If it stays choppy, turn your camera off in the call."),
        numbers,
      };
    case "failed":
      return {
        verdict: _("We could not connect to you for video."),
        advice: _("A firewall or VPN may be blocking it: turn the VPN off or try another network, such as your phone's hotspot. You can still join the line."),
        numbers,
      };
    default:
      return { verdict: _("The connection test could not run just now."), advice: _("You can still join the line."), numbers: "" };
  }
}
