/* The visitor panel's state: its phases, what each shows, and where each may go next. */

import { freshChat } from "../shared/chat.js";
import { NO_DEVICES } from "../shared/device_moves.js";
import { _ } from "../shared/i18n.js";

/** Each phase: the status line's words and the view it shows. */
export const PHASES = {
  checking: { text: _("Checking camera and microphone…"), view: "form" },
  ready: { text: _("Ready to join"), view: "form" },
  closed: { text: _("Closed right now"), view: "callback" },
  callback: { text: _("Ask for a call back"), view: "callback" },
  "callback-saved": { text: _("We'll call you back"), view: "callback-saved" },
  connecting: { text: _("Connecting…"), view: "waiting" },
  waiting: { text: _("Waiting in line"), view: "waiting" },
  "call-connecting": { text: _("Connecting call…"), view: "call" },
  "in-call": { text: _("In call"), view: "call" },
  ended: { text: _("Call ended"), view: "ended" },
  left: { text: _("You left the line"), view: "ended" },
  error: { text: _("Something went wrong"), view: "ended" },
};

/** In line or in a call: the socket is kept (and reconnected). */
export const LIVE = new Set(["connecting", "waiting", "call-connecting", "in-call"]);
/** Without a camera: the conversation is over, or the line is closed. */
export const OVER = new Set(["ended", "left", "error", "closed", "callback-saved"]);
/** Before joining: the availability of the line still shapes what the panel offers. */
export const BEFORE = new Set(["checking", "ready", "closed", "callback"]);

/** The transition table: the phases each phase may move to (the unit tests hold `next` to it). */
export const MOVES = {
  checking: ["ready", "closed", "callback", "connecting"],
  ready: ["connecting", "closed", "callback"],
  closed: ["callback", "callback-saved", "error"],
  callback: ["ready", "checking", "closed", "callback-saved", "error"],
  // Done, unless someone is free now: then the visitor may still start a call (the form).
  "callback-saved": ["checking", "ready"],
  connecting: ["waiting", "call-connecting", "ready", "checking", "closed", "callback-saved", "left", "error"],
  waiting: ["call-connecting", "ready", "checking", "callback-saved", "left", "error"],
  "call-connecting": ["in-call", "ended", "waiting", "ready", "checking", "left", "error"],
  "in-call": ["call-connecting", "ended", "waiting", "ready", "checking", "left", "error"],
  ended: ["checking", "error"],
  left: ["checking"],
  error: ["checking"],
};

/**
 * The panel before anything happened. `queue`: the line it was opened for; `ticket`: a place in
 * line kept from before a reload; `priorityToken`: the host site's word for this visitor;
 * `canShare`: the browser can share a screen.
 */
export function initial({ queue = "support", ticket = null, priorityToken = "", canShare = false } = {}) {
  return {
    phase: "checking",
    home: queue, // the line the panel is for
    queue, // the line we are in: a transfer or an overflow moves us to another
    ticket,
    priorityToken,
    // the socket: none | connecting | open | closed (gone, not retried, not yet let go)
    link: "none",
    welcomed: false, // the desk's `welcome` arrived on this socket
    warmLost: false, // a socket opened ahead of the click closed: Join connects by itself
    neverWelcomed: 0, // reconnects in a row that never opened
    iceServers: [],
    iceTransportPolicy: "all",
    callGraceS: 20, // the desk's call grace period (welcome's call_grace_s)
    graceArmed: false, // a call waits for the desk to come back, at most callGraceS
    // devices
    checking: false, // a device check is under way
    devicesChecked: false,
    media: { problem: null, micError: null }, // what the last check found
    hasVideo: false, // the stream has a camera (else the join says audio_only)
    localVideo: true, // the preview shows (the camera is on)
    audioOnly: false,
    // the pre-call test: null, or {status: running|ok|poor|failed|busy, rttMs, lossPct, path}
    precall: null,
    // before joining
    availability: null, // the last GET /api/queues/<queue>
    nobodyIn: false,
    offlineNotice: false,
    lineInfo: "",
    // in line
    pendingJoin: null, // the join sent (or to send), until `queued`
    unavailableRetries: 0, // `unavailable` answers in a row (the desk's Redis is down)
    position: null,
    eta: null,
    etaShown: false,
    etaReason: "",
    etaReasonShown: false,
    maxWait: false,
    leaveAsked: false, // "Leave the line?" is on screen, asked once before the place is given up
    leaveDisabled: false,
    // the call
    callId: null,
    peerName: "",
    callSince: null, // when the media connected (ms)
    peerMedia: null, // {muted, camera_off} of the agent
    quality: null, // {level, rttMs, lossPct, kbps} of the call's connection (shared/quality.js)
    reconnecting: false, // the call's path broke; ICE is being restarted
    soundBlocked: false,
    chat: freshChat(), // the call's chat and files (shared/chat.js)
    minimized: false, // the host page hid the panel: what arrives in the chat counts as unread
    // call-back requests
    callbackWhy: null, // closed | reopened | offline | waiting
    callbackOpen: false, // the call-back form is shown over the waiting view
    opensAt: "",
    callbackRequest: null, // the request sent, until the desk answers
    pendingCallback: null, // a request to send once the socket is ready
    callbackError: "",
    savedText: "",
    freeNow: false, // after a call-back request: an agent is free now, so a call may start
    // the rating after a call
    rateCallId: null,
    score: 0,
    ratingComment: "",
    ratingSending: false,
    ratingRetried: false,
    ratingThanks: "",
    // words on screen
    notice: "",
    error: "",
    endedMessage: "",
    // the camera and microphone pickers: what the browser offers and what is in use
    devices: NO_DEVICES,
    switching: null, // camera | mic: a switch under way
    // screen sharing (in a call): the browser can (getDisplayMedia), it is asking, it is on
    canShare,
    shareBusy: false,
    sharing: false,
    // the host page: null until the loader says whether it shows the panel full screen
    hostNarrow: null,
    large: false, // the host shows the panel large (asked with Enlarge, in a call)
  };
}

/** The view on screen: the phase's, or the call-back form over the line. */
export function currentView(s) {
  if (s.callbackOpen && LIVE.has(s.phase) && !s.callId) return "callback";
  return PHASES[s.phase].view;
}

/** In line while nobody serves the queue (all agents on Break or Offline): no wait figure. */
export function nobodyFree(s) {
  return s.phase === "waiting" && s.etaShown && s.eta === null;
}

/** A socket opened ahead of the click: open while not in line and nothing asked of it. */
export function isWarm(s) {
  return s.link !== "none" && BEFORE.has(s.phase) && !s.pendingJoin && !s.pendingCallback && !s.callbackRequest;
}
