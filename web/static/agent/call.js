/* The call with a visitor, its end, the wrap-up after it and a transfer to another line. */

import { MSG } from "../shared/protocol.js";
import { chatMoves, resetChat } from "../shared/chat_moves.js";
import { mediaMoves } from "../shared/media_moves.js";
import { connectionChanged, freshQuality, qualityMoves } from "../shared/call_quality.js";
import { _ } from "../shared/i18n.js";
import { NOT_CONNECTED, endText } from "./text.js";
import {
  endCallLocally,
  flushNotes,
  hideOffer,
  idleView,
  notify,
  openNotes,
  resetTransfer,
  saveNotes,
  send,
  setPhase,
} from "./steps.js";

const OWN_REPLAY_MS = 5000;
const UNSTABLE = _("The connection to the visitor is unstable. Trying to reconnect…");

/**
 * A transferred visitor's call starts with the notes and outcome of the agent before, saved at
 * once as this call's own, so they stay with the visitor (and in this call's record) however
 * often they are passed on.
 */
function takeOverNotes(t, handover) {
  const current = t.s.notes;
  if (current.text || current.disposition || (!handover.notes && !handover.disposition)) return;
  t.s.notes = { ...current, text: handover.notes, disposition: handover.disposition, dirty: true, edits: current.edits + 1 };
  saveNotes(t);
}

export const call = {
  ...mediaMoves(send),
  ...chatMoves({ send, me: "agent", visible: (s) => s.pageVisible && s.chatInView }),
  ...qualityMoves((t, text) => notify(t, text, true), UNSTABLE),

  /** `alive`: the page's peer connection for this call id still works. */
  [MSG.CALL_STARTED](t, e) {
    const s = t.s;
    if (s.callId === e.call_id) {
      // A replay right after our own reconnect: the media path may still be fine.
      const ownReplay = s.welcomes > 1 && s.lastWelcomeAt !== null && e.now - s.lastWelcomeAt < OWN_REPLAY_MS;
      // Our connection stands: restart ICE on it (the visitor's network may have changed, and
      // restart offers sent meanwhile were lost); a visitor with a new connection answers
      // from another DTLS fingerprint and the call is negotiated afresh (see PeerCall).
      if (e.alive) t.do("recoverCall", { onlyIfBroken: ownReplay });
      else t.do("restartCall"); // negotiate again from scratch
      return;
    }
    if (s.callId) endCallLocally(t);
    const handover = s.offer && s.offer.answering ? s.offer.handover : null; // the offer accepted
    hideOffer(t);
    const peer = e.peer || {};
    s.peer = { name: peer.name || "", topic: peer.topic || "" };
    s.lastPeerName = peer.name || "";
    s.callId = e.call_id;
    s.callQueue = typeof e.queue === "string" ? e.queue : null;
    s.peerMedia = null;
    resetChat(t, e.call_id);
    openNotes(t, String(e.call_id));
    if (handover) takeOverNotes(t, handover);
    setPhase(t, "call-connecting");
    freshQuality(s);
    notify(t, _("Connecting…"), true);
    t.do("startCall", {
      callId: e.call_id,
      role: e.role === "answerer" ? "answerer" : "offerer",
      iceServers: Array.isArray(e.ice_servers) ? e.ice_servers : s.iceServers, // fresh per call
      iceTransportPolicy: s.iceTransportPolicy,
    });
    resetTransfer(t);
  },

  peer_state(t, e) {
    const s = t.s;
    if (!s.callId) return;
    connectionChanged(t, e.state);
    if (e.state === "connected") {
      notify(t, "");
      if (s.phase !== "in-call") {
        setPhase(t, "in-call");
        s.callSince = e.now;
      }
    } else if (e.state === "disconnected" || e.state === "failed") {
      notify(t, UNSTABLE, true);
    }
  },

  /** The console's tab came into view or went out of it. */
  page_visibility(t, e) {
    t.s.pageVisible = !!e.visible;
    if (t.s.pageVisible && t.s.chatInView) call.chat_seen(t);
  },

  /** The chat's log came on screen or left it (scrolled away, or the chat hidden). */
  chat_in_view(t, e) {
    t.s.chatInView = !!e.visible;
    if (t.s.pageVisible && t.s.chatInView) call.chat_seen(t);
  },

  peer_slow(t) {
    notify(t, _("Still connecting to the visitor. One of the networks may be blocking video calls."), true);
  },

  [MSG.PEER_MEDIA](t, e) {
    if (t.s.callId && e.call_id === t.s.callId) {
      t.s.peerMedia = { muted: !!e.muted, camera_off: !!e.camera_off, screen: !!e.screen };
    }
  },

  [MSG.CALL_ENDED](t, e) {
    if (!t.s.callId || e.call_id !== t.s.callId) return;
    flushNotes(t);
    endCallLocally(t);
    idleView(t, (name) => endText(e, name));
  },

  click_hangup(t) {
    if (!t.s.callId) return;
    flushNotes(t);
    send(t, { type: MSG.HANGUP, call_id: t.s.callId });
    endCallLocally(t);
    idleView(t, _("You ended the call."));
  },

  /** "+30 s" (`action`: extend) or "Done, I'm ready" (done) in the wrap-up. */
  click_wrapup(t, e) {
    if (t.s.status !== "wrap_up") return;
    if (e.action === "done") flushNotes(t);
    if (send(t, { type: MSG.WRAPUP, action: e.action })) t.s.wrapupBusy = true; // until the desk's next status
    else notify(t, NOT_CONNECTED);
  },

  transfer_choice(t, e) {
    t.s.transferChoice = e.queue || "";
  },

  submit_transfer(t) {
    const s = t.s;
    const queue = s.transferChoice;
    if (!s.callId || !queue || s.transferring) return;
    flushNotes(t);
    if (send(t, { type: MSG.TRANSFER, call_id: s.callId, queue })) {
      s.transferring = true;
      notify(t, _("Transferring to {queue}…", { queue }), true);
    } else notify(t, NOT_CONNECTED);
  },
};
