/* The visitor panel on screen: `render(state)` draws every part of it from the state alone. */

import { chatRenderer, drawChatExtras } from "../shared/chat_view.js";
import { renderPickers } from "../shared/devices.js";
import { byTestIds, setText, show } from "../shared/dom.js";
import { callParts, drawStage } from "../shared/parts.js";
import { formatClock, formatEta, ordinal, teamName } from "../shared/format.js";
import { currentView, nobodyFree } from "./state.js";
import { MAX_WAIT_TEXT, NOBODY_FREE_TEXT, SCORE_TEXT, callbackWords, precallWords, statusText } from "./text.js";
import { _ } from "../shared/i18n.js";

/** The panel's own parts (callParts finds the ones it shares with the console). */
const IDS = {
  status: "hd-status", offlineNotice: "hd-offline-notice", callbackOpen: "hd-callback-open",
  form: "hd-join-form", name: "hd-name", topic: "hd-topic", join: "hd-join", lineInfo: "hd-line-info",
  queueName: "hd-queue-name", position: "hd-position", eta: "hd-eta", etaReason: "hd-eta-reason",
  leaveConfirm: "hd-leave-confirm", leaveYes: "hd-leave-yes", leaveNo: "hd-leave-no",
  maxWait: "hd-max-wait", maxWaitText: "hd-max-wait-text", maxWaitCallback: "hd-max-wait-callback", leave: "hd-leave",
  callbackTitle: "hd-callback-title", callbackIntro: "hd-callback-intro", callbackForm: "hd-callback-form",
  cbName: "hd-callback-name", cbContact: "hd-callback-contact", cbNote: "hd-callback-note",
  callbackError: "hd-callback-error", callbackSubmit: "hd-callback-submit", callbackBack: "hd-callback-back",
  callbackSavedMessage: "hd-callback-saved-message", callbackClose: "hd-callback-close",
  talkNowOffer: "hd-talk-now-offer", talkNow: "hd-talk-now",
  endedMessage: "hd-ended-message", rating: "hd-rating", ratingQuestion: "hd-rating-question",
  ratingLabel: "hd-rating-label", ratingComment: "hd-rating-comment", ratingSubmit: "hd-rating-submit",
  ratingSkip: "hd-rating-skip", ratingThanks: "hd-rating-thanks", again: "hd-again", close: "hd-close",
  minimize: "hd-minimize", error: "hd-error", precall: "hd-precall-result",
  precallVerdict: "hd-precall-verdict", precallAdvice: "hd-precall-advice",
  precallNumbers: "hd-precall-numbers", precallVideo: "hd-precall-video",
  share: "hd-share-screen", sharing: "hd-sharing", enlarge: "hd-enlarge",
};

export function findParts(doc = document) {
  const ui = { ...callParts("hd", doc), ...byTestIds(IDS, doc) };
  ui.body = doc.body;
  ui.stars = Array.from(doc.querySelectorAll(".stars .star"));
  ui.views = Array.from(doc.querySelectorAll("section[data-view]"));
  return ui;
}

/** Lights the stars up to `upto` (the chosen score, or the one under the pointer). */
export function paintStars(ui, upto) {
  for (const star of ui.stars) star.classList.toggle("is-lit", Number(star.dataset.score) <= upto);
}

export function createView(ui) {
  const drawChat = chatRenderer(ui.chatLog);
  let clock = null; // the call timer's interval, while a call is connected
  let clockSince = null;

  function renderClock(since) {
    if (since === clockSince) return;
    clockSince = since;
    clearInterval(clock);
    show(ui.timer, since !== null);
    if (since === null) return;
    setText(ui.timer, "0:00");
    clock = setInterval(() => setText(ui.timer, formatClock((performance.now() - since) / 1000)), 1000);
  }

  function renderLine(s) {
    setText(ui.join, s.nobodyIn ? _("Wait in line anyway") : _("Join the line"));
    ui.join.disabled = s.phase !== "ready" || s.checking;
    setText(ui.lineInfo, s.lineInfo);
    show(ui.offlineNotice, s.offlineNotice);
    const moved = s.queue !== s.home;
    show(ui.queueName, moved);
    setText(ui.queueName, moved ? _("Waiting for our {team} team", { team: teamName(s.queue) }) : "");
    ui.position.dataset.position = s.position ? String(s.position) : "";
    setText(ui.position, s.position ? _("You are {place} in line", { place: ordinal(s.position) }) : _("Finding your place in line…"));
    const nobody = nobodyFree(s);
    const figure = s.etaShown && typeof s.eta === "number";
    setText(ui.eta, figure ? _("Expected wait: {eta}", { eta: formatEta(s.eta) }) : "");
    if (figure) ui.eta.dataset.etaS = String(s.eta);
    else delete ui.eta.dataset.etaS;
    setText(ui.etaReason, s.etaReason);
    show(ui.etaReason, s.etaReasonShown && !nobody);
    setText(ui.maxWaitText, nobody && !s.maxWait ? NOBODY_FREE_TEXT : MAX_WAIT_TEXT);
    show(ui.maxWait, s.maxWait || nobody);
    ui.leave.disabled = s.leaveDisabled;
    show(ui.leave, !s.leaveAsked);
    show(ui.leaveConfirm, s.leaveAsked);
    ui.leaveYes.disabled = s.leaveDisabled;
  }

  function renderStage(s) {
    const inCall = s.phase === "call-connecting" || s.phase === "in-call";
    const picture = s.localVideo || s.sharing; // a shared screen shows in the camera's place
    drawStage(ui, s, { inCall, picture });
    const name = s.peerName;
    const parts = [];
    if (s.peerMedia && s.peerMedia.muted) {
      parts.push(name ? _("{name} muted their microphone", { name }) : _("The agent muted their microphone"));
    }
    if (s.peerMedia && s.peerMedia.camera_off) {
      parts.push(name ? _("{name} turned their camera off", { name }) : _("The agent turned their camera off"));
    }
    setText(ui.peerMedia, parts.join(". "));
    show(ui.peerMedia, parts.length > 0);
    renderClock(s.callSince);
  }

  function renderPrecall(s) {
    const p = s.precall;
    const words = precallWords(p);
    show(ui.precall, !!p);
    const hook = ui.precall.dataset;
    hook.status = p ? p.status : "";
    hook.rttMs = p && typeof p.rttMs === "number" ? String(p.rttMs) : "";
    hook.lossPct = p && typeof p.lossPct === "number" ? String(p.lossPct) : "";
    hook.path = (p && p.path) || "";
    setText(ui.precallVerdict, words.verdict);
    setText(ui.precallAdvice, words.advice);
    show(ui.precallAdvice, !!words.advice);
    setText(ui.precallNumbers, words.numbers);
    show(ui.precallNumbers, !!words.numbers);
    const running = !!p && p.status === "running";
    show(ui.precallVideo, running && s.localVideo);
    ui.stage.classList.toggle("is-testing", running);
  }

  function renderCallback(s) {
    const words = callbackWords(s, new Date());
    setText(ui.callbackTitle, words.title);
    setText(ui.callbackIntro, words.intro);
    ui.callbackIntro.dataset.opensAt = s.opensAt;
    setText(ui.callbackBack, words.back);
    show(ui.callbackBack, !!words.back);
    setText(ui.callbackError, s.callbackError);
    ui.callbackSubmit.disabled = !!s.callbackRequest;
    setText(ui.callbackSubmit, s.callbackRequest ? _("Sending…") : _("Call me back"));
    setText(ui.callbackSavedMessage, s.savedText);
    show(ui.talkNowOffer, s.phase === "callback-saved" && s.freeNow);
  }

  function renderRating(s) {
    show(ui.rating, s.rateCallId !== null);
    setText(ui.ratingQuestion, s.peerName ? _("How was your call with {name}?", { name: s.peerName }) : _("How was your call?"));
    for (const star of ui.stars) star.setAttribute("aria-pressed", String(Number(star.dataset.score) === s.score));
    paintStars(ui, s.score);
    setText(ui.ratingLabel, SCORE_TEXT[s.score] || "");
    ui.ratingSubmit.disabled = s.ratingSending || s.score === 0;
    ui.ratingSkip.disabled = s.ratingSending;
    setText(ui.ratingThanks, s.ratingThanks);
    show(ui.ratingThanks, !!s.ratingThanks);
  }

  function renderTools(s) {
    renderPickers(ui, s);
    const inCall = !!s.callId && (s.phase === "call-connecting" || s.phase === "in-call");
    show(ui.share, s.canShare);
    ui.share.disabled = !inCall || s.shareBusy;
    ui.share.setAttribute("aria-pressed", String(s.sharing));
    setText(ui.share.querySelector(".label"), s.sharing ? _("Stop sharing") : _("Share screen"));
    show(ui.sharing, s.sharing);
    ui.stage.classList.toggle("is-sharing", s.sharing);
    show(ui.enlarge, inCall && s.hostNarrow === false);
    ui.enlarge.setAttribute("aria-pressed", String(s.large));
    const words = s.large ? _("Make the call smaller") : _("Enlarge the call");
    if (ui.enlarge.getAttribute("aria-label") !== words) {
      ui.enlarge.setAttribute("aria-label", words);
      ui.enlarge.title = words;
    }
    ui.body.classList.toggle("is-large", s.large);
  }

  return function render(s) {
    const view = currentView(s);
    const body = ui.body.dataset;
    body.phase = s.phase;
    body.view = view;
    body.callId = s.callId || "";
    body.rateCallId = s.rateCallId || "";
    body.audioOnly = String(s.audioOnly);
    ui.body.classList.toggle("line-offline", s.nobodyIn);
    ui.status.dataset.phase = nobodyFree(s) ? "nobody-free" : s.phase;
    setText(ui.status, statusText(s));
    for (const section of ui.views) show(section, section.dataset.view === view);
    setText(ui.notice, s.notice);
    setText(ui.error, s.error);
    setText(ui.endedMessage, s.endedMessage);
    renderLine(s);
    renderStage(s);
    renderPrecall(s);
    renderCallback(s);
    renderRating(s);
    drawChat(s.chat, { visitor: _("You"), agent: s.peerName || _("Agent") });
    drawChatExtras(ui, s.chat);
    ui.chatSend.disabled = !s.callId;
    renderTools(s);
  };
}
