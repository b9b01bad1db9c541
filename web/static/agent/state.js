/* The agent console's state: its phases, where each may go next, and the console at the start. */

import { freshChat } from "../shared/chat.js";
import { NO_DEVICES } from "../shared/device_moves.js";

/**
 * loading: asking the desk who is signed in; login: the sign-in form; idle: the console,
 * no visitor; offered: a visitor offered; call-connecting / in-call: a call; replaced: the
 * agent opened the console in another window, which took over.
 */
export const PHASES = ["loading", "login", "idle", "offered", "call-connecting", "in-call", "replaced"];

/** The transition table: the phases each phase may move to (the unit tests hold `next` to it). */
export const MOVES = {
  loading: ["login", "idle"],
  login: ["idle"],
  idle: ["login", "offered", "call-connecting", "replaced"],
  offered: ["login", "idle", "call-connecting", "replaced"],
  "call-connecting": ["login", "idle", "in-call", "replaced"],
  "in-call": ["login", "idle", "call-connecting", "replaced"],
  replaced: ["login", "idle"],
};

export function initial() {
  return {
    phase: "loading",
    loginError: "",
    loginBusy: false,
    agent: null, // who is signed in: {name, display_name, queues}
    // the socket: none | connecting | open | closed (gone; retried or not)
    link: "none",
    connection: "connecting", // connecting | connected | reconnecting | disconnected
    welcomes: 0,
    lastWelcomeAt: null,
    disconnectedAt: null, // when the socket dropped (null: it has not)
    checkingSession: false, // asking the desk whether we are still signed in (a refused upgrade)
    idleSignoutS: 0,
    iceServers: [],
    iceTransportPolicy: "all",
    // status
    status: "offline",
    wantedStatus: null, // what the agent chose last, to set again after a short drop
    breakReason: null, // why the desk put the agent on Break, until they choose Available
    notice: "",
    // queues
    queueNames: [], // the rows of "Waiting now", in the order they came
    queues: {}, // {name: {waiting, agents_available}}
    deskQueues: [], // every queue of the desk, for transfers
    // an offer: {id, received, deadline, timeout, waited, queue, visitor, handover, answering}
    offer: null,
    // Not missing offers: whether the console's tab is hidden (document.visibilityState), the
    // browser's answer on desktop notifications (unsupported | default | granted | denied),
    // whether the console asked for them yet, and the warning that a hidden tab's timers may
    // be slowed down (shown once the console was hidden while taking visitors)
    hidden: false,
    notifications: "unsupported",
    notifyAsked: false,
    backgroundWarning: false,
    // the call
    callId: null,
    callQueue: null,
    peer: null, // {name, topic}
    lastPeerName: "", // the visitor of the call the wrap-up is for
    callSince: null,
    peerMedia: null,
    quality: null, // {level, rttMs, lossPct, kbps} of the call's connection (shared/quality.js)
    reconnecting: false, // the call's path broke; ICE is being restarted
    soundBlocked: false,
    chat: freshChat(), // the call's chat and files (shared/chat.js)
    pageVisible: true, // the console's tab is in view: else what arrives in the chat is unread
    chatInView: true, // the chat's log is on screen (not scrolled away): else the same
    transferChoice: "",
    transferring: false,
    // wrap-up: the desk's deadline on this page's clock (null: none), and the bar's length
    wrapupUntil: null,
    wrapupTotal: 0,
    wrapupBusy: false,
    // notes of the current (or just-ended) call: autosaved, in order, confirmed by notes_saved
    notes: { callId: null, text: "", disposition: "", dirty: false, edits: 0, sent: [], state: "", label: "" },
    // devices
    checking: false,
    media: { problem: null, micError: null },
    localVideo: true,
    // call-back requests: those loaded (a page at a time), how many there are, and how many
    // came from pages (the offset of the next one)
    callbacks: { items: [], total: 0, paged: 0, seen: null },
    closing: [], // ids of requests being closed
    undo: [], // "Done" not yet sent, oldest first: [{id, name}]; undoable for UNDO_MS
    moreBusy: false,
    // the camera and microphone pickers: what the browser offers and what is in use
    devices: NO_DEVICES,
    switching: null, // camera | mic: a switch under way
    // the call has a line for the visitor's screen, beside the camera (else a screen comes in
    // the camera's place)
    screenBeside: false,
  };
}
