/* The call with an agent, its end (or a transfer to another line), and the rating after it. */

import { MSG } from "../shared/protocol.js";
import { chatMoves, resetChat } from "../shared/chat_moves.js";
import { mediaMoves } from "../shared/media_moves.js";
import { connectionChanged, freshQuality, qualityMoves } from "../shared/call_quality.js";
import { clip, teamName } from "../shared/format.js";
import { LIVE } from "./state.js";
import { endText } from "./text.js";
import {
  disconnect,
  dropTicket,
  endCallLocally,
  finishRating,
  offerRating,
  resetWaiting,
  send,
  sendRating,
  setPhase,
  showEnded,
} from "./steps.js";
import { _ } from "../shared/i18n.js";

const UNSTABLE = _("The connection is unstable. Trying to reconnect…");

export const call = {
  ...mediaMoves(send),
  ...chatMoves({ send, me: "visitor", visible: (s) => !s.minimized }),
  ...qualityMoves((t, text) => (t.s.notice = text), UNSTABLE),

  /** `alive`: the page's peer connection for this call id still works (a replay after a reconnect). */
  [MSG.CALL_STARTED](t, e) {
    const s = t.s;
    if (!LIVE.has(s.phase)) return; // a call comes to a visitor in line (or in that call)
    if (s.callId === e.call_id && e.alive) return; // replayed after a reconnect
    if (s.chat.callId !== e.call_id) resetChat(t, e.call_id); // a replay keeps the chat
    t.do("clear", { name: "leave" });
    Object.assign(s, {
      callId: e.call_id,
      callbackOpen: false,
      maxWait: false,
      peerName: (e.peer && e.peer.name) || "",
      peerMedia: null,
      error: "",
      notice: "",
    });
    freshQuality(s);
    const fromLine = s.phase === "waiting";
    setPhase(t, "call-connecting");
    if (fromLine) t.do("chime"); // not when a reload resumes a running call
    t.do("startCall", {
      callId: e.call_id,
      role: e.role === "offerer" ? "offerer" : "answerer",
      iceServers: Array.isArray(e.ice_servers) ? e.ice_servers : s.iceServers, // fresh per call
      iceTransportPolicy: s.iceTransportPolicy,
    });
  },

  peer_state(t, e) {
    const s = t.s;
    if (!s.callId) return;
    connectionChanged(t, e.state);
    if (e.state === "connected") {
      s.notice = "";
      if (s.phase !== "in-call") {
        setPhase(t, "in-call");
        s.callSince = e.now;
      }
    } else if (e.state === "disconnected" || e.state === "failed") {
      s.notice = UNSTABLE;
    }
  },

  peer_slow(t) {
    t.s.notice = _("Still connecting… If this takes much longer, your network may be blocking video calls.");
  },

  [MSG.PEER_MEDIA](t, e) {
    if (e.call_id === t.s.callId) t.s.peerMedia = { muted: !!e.muted, camera_off: !!e.camera_off };
  },

  [MSG.CALL_ENDED](t, e) {
    const s = t.s;
    // Our own hang-up, confirmed, carries a call id we already let go of.
    if (e.call_id !== s.callId) return;
    if (e.reason === "transferred") {
      // A blind transfer: the agent passed us to another line, where we wait at the head. The
      // socket and the ticket stay (we are still in line); only the peer connection goes.
      endCallLocally(t);
      if (typeof e.queue === "string" && e.queue) s.queue = e.queue;
      resetWaiting(t);
      setPhase(t, "waiting");
      const team = teamName(s.queue);
      s.notice = s.peerName
        ? _("{name} passed you to our {team} team — you're next.", { name: s.peerName, team })
        : _("Our agent passed you to our {team} team — you're next.", { team });
      return;
    }
    const callId = s.callId;
    endCallLocally(t);
    dropTicket(t);
    showEnded(t, "ended", _("{why} Thank you for talking to us.", { why: endText(e) }));
    offerRating(t, callId);
  },

  click_hangup(t) {
    const callId = t.s.callId;
    if (!callId) return;
    const sent = send(t, { type: MSG.HANGUP, call_id: callId });
    endCallLocally(t);
    dropTicket(t);
    showEnded(t, "ended", _("You ended the call. Thank you for talking to us."));
    // The socket stays open for the rating (the desk's call_ended for it is ignored).
    if (sent) offerRating(t, callId);
    else disconnect(t);
  },

  choose_score(t, e) {
    t.s.score = e.score;
  },

  submit_rating(t, e) {
    if (!t.s.score) return;
    t.s.ratingSending = true;
    t.s.ratingComment = clip(String(e.comment || "").trim(), 1000);
    sendRating(t);
  },

  resend_rating(t) {
    sendRating(t);
  },

  skip_rating(t) {
    finishRating(t, "");
    t.do("focus", { target: "again" });
  },

  rating_window_over(t) {
    finishRating(t, "");
  },

  rating_timeout(t) {
    finishRating(t, _("Sorry, we could not send your feedback."));
  },

  [MSG.RATED](t, e) {
    if (e.call_id === t.s.rateCallId) finishRating(t, _("Thank you for your feedback!"));
  },
};
