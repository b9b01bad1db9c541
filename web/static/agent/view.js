/* The agent console on screen: `render(state)` draws it from the state alone. The two
 * countdowns (offer, wrap-up) and the call timer tick here, between states. */

import { chatRenderer, drawChatExtras } from "../shared/chat_view.js";
import { renderPickers } from "../shared/devices.js";
import { byTestIds, el, setText, show } from "../shared/dom.js";
import { callParts, drawStage, staffParts } from "../shared/parts.js";
import { formatClock } from "../shared/format.js";
import { _ } from "../shared/i18n.js";
import { CONNECTION_TEXT, STATUS_TEXT, answerWithin, backgroundWarning, callTitle, handoverFrom, precallText } from "./text.js";
import { callbacksRenderer, renderQueueRows, transferRenderer } from "./lists.js";

/** The console's own parts (callParts and staffParts find the ones it shares). */
const IDS = {
  name: "agent-name", logout: "agent-logout", console: "agent-console", status: "agent-status",
  available: "agent-available", brk: "agent-break", offline: "agent-offline", queues: "agent-queues",
  breakReason: "agent-break-reason", breakReasonText: "agent-break-reason-text",
  offer: "offer-card", offerPriority: "offer-priority", offerTransferred: "offer-transferred",
  offerName: "offer-visitor-name", offerTopic: "offer-topic", offerQueue: "offer-queue",
  offerWaited: "offer-waited", offerAudioOnly: "offer-audio-only", offerPageRow: "offer-page-row",
  offerPage: "offer-page", offerBar: "offer-countdown-bar", offerCountdown: "offer-countdown",
  offerPrecall: "offer-precall", offerPrecallText: "offer-precall-text",
  accept: "offer-accept", decline: "offer-decline", offerHandover: "offer-handover",
  offerHandoverFrom: "offer-handover-from", offerNotes: "offer-notes", offerChat: "offer-chat",
  callTitle: "agent-call-title", callTopic: "agent-call-topic", idleCaption: "agent-idle-caption",
  wrapup: "agent-wrapup", wrapupAfter: "agent-wrapup-after", wrapupClock: "agent-wrapup-countdown",
  wrapupText: "agent-wrapup-text", wrapupBar: "agent-wrapup-bar", wrapupExtend: "agent-wrapup-extend",
  wrapupDone: "agent-wrapup-done", notesCard: "agent-notes-card", notes: "agent-notes",
  disposition: "agent-disposition", notesStatus: "agent-notes-status", transfer: "agent-transfer",
  transferQueue: "agent-transfer-queue", transferSubmit: "agent-transfer-submit",
  callbacks: "agent-callbacks", callbacksCount: "agent-callbacks-count",
  callbacksEmpty: "agent-callbacks-empty", callbackList: "agent-callback-list",
  callbacksMore: "agent-callbacks-more", callbackUndo: "agent-callback-undo",
  callbackUndoText: "agent-callback-undo-text", callbackUndoButton: "agent-callback-undo-button",
  replaced: "agent-replaced", reconnect: "agent-reconnect",
  backgroundWarning: "agent-background-warning", backgroundWarningText: "agent-background-warning-text",
  allowNotifications: "agent-allow-notifications", backgroundDismiss: "agent-background-dismiss",
  chatWrap: "agent-chat-wrap", chatUnread: "agent-chat-unread", language: "agent-language",
  screenVideo: "agent-screen-video", screenLabel: "agent-screen-label",
};

export function findParts(doc = document) {
  const ui = { ...staffParts("agent", doc), ...callParts("agent", doc), ...byTestIds(IDS, doc) };
  ui.body = doc.body;
  ui.offerBadges = doc.querySelector(".offer-badges");
  return ui;
}

/** A repeating redraw while `key` stays the same (null: none). */
function ticker(ms) {
  let timer = null;
  let current = null;
  return (key, draw) => {
    if (key === current) return;
    current = key;
    clearInterval(timer);
    if (key === null) return;
    draw();
    timer = setInterval(draw, ms);
  };
}

/** A line of the chat so far on the offer card: who wrote it (the visitor, the agent before), and what. */
function handoverLine(line, visitorName, agentName) {
  const from = line.from || line.by || "";
  const who = from === "visitor" ? visitorName || _("Visitor") : from === "agent" ? agentName || _("Agent") : from;
  const text = line.text || "";
  return who ? _("{who}: {text}", { who, text }) : text;
}

/**
 * What the agent before knew, on the offer of a visitor they transferred (null: none);
 * `visitorName`: the offered visitor's ("" when none given).
 */
function renderHandover(ui, handover, visitorName) {
  show(ui.offerHandover, !!handover);
  const chat = (handover && handover.chat) || [];
  setText(ui.offerHandoverFrom, handover ? handoverFrom(handover) : "");
  setText(ui.offerNotes, handover ? handover.notes : "");
  show(ui.offerNotes, !!(handover && handover.notes));
  // The chat so far, where the desk keeps one with the call: a line per message.
  const key = JSON.stringify([chat, visitorName]);
  if (ui.offerChat.dataset.key !== key) {
    ui.offerChat.dataset.key = key;
    ui.offerChat.replaceChildren(
      ...chat.map((line) => el("li", "", handoverLine(line, visitorName, handover.agent)))
    );
  }
  show(ui.offerChat, chat.length > 0);
}

/** What the visitor turned off: their microphone, their camera ("": neither). */
function peerMediaText(media) {
  const muted = !!(media && media.muted);
  const cameraOff = !!(media && media.camera_off);
  if (muted && cameraOff) return _("Visitor muted their microphone. Visitor's camera is off");
  if (muted) return _("Visitor muted their microphone");
  if (cameraOff) return _("Visitor's camera is off");
  return "";
}

/** The wrap-up's countdown: "Next visitor in 42 s", "Next visitor in 1:05". */
function nextVisitorIn(seconds) {
  if (seconds < 60) return _("Next visitor in {seconds} s", { seconds });
  return _("Next visitor in {time}", { time: formatClock(seconds) });
}

export function createView(ui, { onCallbackDone }) {
  const offerTick = ticker(250);
  const wrapupTick = ticker(250);
  const callTick = ticker(1000);
  const drawCallbacks = callbacksRenderer(ui, onCallbackDone);
  const drawTransfer = transferRenderer(ui.transferQueue);
  const drawChat = chatRenderer(ui.chatLog);

  function renderOffer(offer) {
    show(ui.offer, !!offer);
    offerTick(offer, () => {
      const now = performance.now();
      const left = Math.max(0, offer.deadline - now);
      setText(ui.offerCountdown, left > 0 ? answerWithin(Math.ceil(left / 1000)) : _("Time is up"));
      ui.offerCountdown.dataset.remainingMs = String(Math.round(left));
      ui.offerBar.style.width = (offer.timeout ? (100 * left) / offer.timeout : 0) + "%";
      setText(ui.offerWaited, formatClock(offer.waited + (now - offer.received) / 1000));
    });
    if (!offer) return;
    const v = offer.visitor;
    const priority = Number(v.priority) || 0;
    setText(ui.offerPriority, priority > 0 ? _("Priority {priority}", { priority }) : "");
    show(ui.offerPriority, priority > 0);
    setText(ui.offerTransferred, v.transferred_from ? _("Transferred from {queue}", { queue: v.transferred_from }) : "");
    show(ui.offerTransferred, !!v.transferred_from);
    show(ui.offerBadges, priority > 0 || !!v.transferred_from);
    setText(ui.offerName, v.name || _("A visitor"));
    setText(ui.offerTopic, v.topic || _("No topic given"));
    ui.offerTopic.classList.toggle("muted", !v.topic);
    setText(ui.offerQueue, offer.queue);
    show(ui.offerAudioOnly, !!v.audio_only);
    setText(ui.offerPage, v.page || "");
    show(ui.offerPageRow, !!v.page);
    renderHandover(ui, offer.handover, v.name || "");
    const precall = v.precall && typeof v.precall === "object" ? v.precall : null;
    const words = precallText(precall);
    show(ui.offerPrecall, !!words);
    setText(ui.offerPrecallText, words);
    const hook = ui.offerPrecall.dataset;
    hook.status = words ? precall.status : "";
    hook.rttMs = words && typeof precall.rtt_ms === "number" ? String(precall.rtt_ms) : "";
    hook.lossPct = words && typeof precall.loss_pct === "number" ? String(precall.loss_pct) : "";
    hook.path = (words && precall.path) || "";
    ui.accept.disabled = offer.answering;
    ui.decline.disabled = offer.answering;
  }

  function renderWrapup(s) {
    const on = s.status === "wrap_up";
    show(ui.wrapup, on);
    setText(ui.wrapupAfter, s.lastPeerName ? _("After your call with {name}", { name: s.lastPeerName }) : _("After your call"));
    ui.wrapupExtend.disabled = s.wrapupBusy;
    ui.wrapupDone.disabled = s.wrapupBusy;
    const until = s.wrapupUntil;
    wrapupTick(on ? `${until}/${s.wrapupTotal}` : null, () => {
      if (until === null) {
        setText(ui.wrapupClock, "–:––");
        setText(ui.wrapupText, _("Next visitor when the wrap-up ends"));
        return;
      }
      const left = Math.max(0, until - performance.now());
      const seconds = Math.ceil(left / 1000);
      ui.wrapup.dataset.remainingMs = String(Math.round(left));
      setText(ui.wrapupClock, formatClock(seconds));
      setText(ui.wrapupText, left > 0 ? nextVisitorIn(seconds) : _("Ready for the next visitor…"));
      ui.wrapupBar.style.width = (s.wrapupTotal ? Math.min(100, (100 * left) / s.wrapupTotal) : 0) + "%";
    });
  }

  function renderCall(s) {
    const inCall = !!s.callId;
    const words = callTitle(s);
    setText(ui.callTitle, words.title);
    setText(ui.callTopic, words.topic);
    drawStage(ui, s, { inCall, picture: s.localVideo });
    show(ui.idleCaption, !inCall);
    show(ui.hangup, inCall);
    const peerWords = peerMediaText(s.peerMedia);
    setText(ui.peerMedia, peerWords);
    show(ui.peerMedia, !!peerWords);
    show(ui.timer, s.callSince !== null);
    callTick(s.callSince, () => setText(ui.timer, formatClock((performance.now() - s.callSince) / 1000)));
    // Transfers: the desk's other lines, while in a call.
    const others = s.deskQueues.filter((q) => q !== s.callQueue);
    drawTransfer(others, s.transferChoice);
    ui.transferQueue.disabled = s.transferring;
    ui.transferSubmit.disabled = s.transferring || !s.transferChoice;
    show(ui.transfer, inCall && others.length > 0);
    // The chat stays in view, read only, for the wrap-up after its call.
    const wrapUpChat = s.status === "wrap_up" && s.chat.entries.length > 0;
    show(ui.chatWrap, inCall || wrapUpChat);
    show(ui.chatForm, inCall);
    drawChat(s.chat, { agent: _("You"), visitor: (s.peer && s.peer.name) || _("Visitor") });
    drawChatExtras(ui, s.chat);
  }

  /** The pickers, and the visitor's shared screen shown large over the whole stage. */
  function renderTools(s) {
    renderPickers(ui, s);
    const screen = !!(s.callId && s.peerMedia && s.peerMedia.screen);
    if (!s.screenBeside) {
      // A screen in the camera's place: the visitor's picture is the screen.
      const source = screen ? ui.remote.srcObject : null;
      if (ui.screenVideo.srcObject !== source) ui.screenVideo.srcObject = source;
    } // else the effects gave it the screen line's own track
    show(ui.screenVideo, screen);
    show(ui.screenLabel, screen);
    ui.stage.classList.toggle("peer-screen", screen);
    ui.stage.classList.toggle("screen-beside", screen && s.screenBeside);
  }

  /** A new language loads the page again: not while a visitor is offered or in a call. */
  function renderLanguage(phase) {
    const busy = phase === "offered" || phase === "call-connecting" || phase === "in-call";
    if (!ui.language || ui.language.disabled === busy) return;
    ui.language.disabled = busy;
    ui.language.title = busy ? _("You can change the language after the call.") : _("Language");
  }

  function renderNotes(notes) {
    show(ui.notesCard, !!notes.callId);
    if (ui.notes.value !== notes.text) ui.notes.value = notes.text;
    if (ui.disposition.value !== notes.disposition) ui.disposition.value = notes.disposition;
    ui.notesStatus.dataset.state = notes.state;
    setText(ui.notesStatus, notes.label);
  }

  return function render(s) {
    const body = ui.body.dataset;
    body.phase = s.phase;
    body.status = s.status;
    body.connected = String(s.connection === "connected");
    body.callId = s.callId || "";
    body.deskQueues = s.deskQueues.join(" ");
    const view = s.phase === "loading" ? "loading" : s.phase === "login" ? "login" : "console";
    show(ui.loading, view === "loading");
    show(ui.loginView, view === "login");
    show(ui.console, view === "console");
    show(ui.user, view === "console");
    setText(ui.loginError, s.loginError);
    ui.login.disabled = s.loginBusy;
    setText(ui.name, s.agent ? s.agent.display_name || s.agent.name || "" : ui.name.textContent);
    ui.connection.dataset.state = s.connection;
    setText(ui.connection, CONNECTION_TEXT[s.connection]);
    setText(ui.notice, s.notice);
    show(ui.replaced, s.phase === "replaced");
    renderLanguage(s.phase);
    // status
    ui.status.dataset.status = s.status;
    setText(ui.status, STATUS_TEXT[s.status] || s.status);
    ui.available.setAttribute("aria-pressed", String(s.status === "available" || s.status === "offered"));
    ui.brk.setAttribute("aria-pressed", String(s.status === "break"));
    ui.offline.setAttribute("aria-pressed", String(s.status === "offline"));
    // The desk refuses status changes during a call (hang up first).
    for (const b of [ui.available, ui.brk, ui.offline]) b.disabled = s.status === "in_call";
    setText(ui.breakReasonText, s.breakReason ? s.breakReason.replace(/\.?$/, ".") : "");
    show(ui.breakReason, !!s.breakReason);
    setText(ui.backgroundWarningText, s.backgroundWarning ? backgroundWarning(s.notifications) : "");
    show(ui.backgroundWarning, s.backgroundWarning);
    show(ui.allowNotifications, s.notifications === "default");
    body.tabHidden = String(s.hidden);
    body.notifications = s.notifications;
    renderQueueRows(ui.queues, s.queueNames, s.queues);
    renderOffer(s.offer);
    renderWrapup(s);
    renderCall(s);
    renderNotes(s.notes);
    renderTools(s);
    drawCallbacks(s.callbacks, s.closing, s.moreBusy, s.undo);
  };
}
