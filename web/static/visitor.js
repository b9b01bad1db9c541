/* humandesk visitor panel: opening hours, device check, the line, the call, call-backs and
 * the rating after a call. Needs common.js. */
"use strict";

(function () {
  const HD = window.HD;
  const $ = HD.$;
  const body = document.body;
  const QUEUE = body.dataset.queue || "support";
  const HOST = body.dataset.hostOrigin || "";
  const EMBEDDED = !!HOST && window.parent !== window;
  const TICKET_KEY = "hd-ticket-" + QUEUE;
  const RATING_WINDOW_MS = 120000; // the socket stays open this long for a rating
  const AVAILABILITY_EVERY_MS = 30000;
  // A socket opened ahead of the click (the panel is ready: the visitor means to talk) is let
  // go after this long without a join, well inside the lifetime of the TURN credentials its
  // `welcome` carried; the next sign of intent opens a fresh one.
  const WARM_IDLE_MS = 5 * 60 * 1000;

  const ui = {
    status: $("hd-status"),
    stage: $("hd-stage"),
    local: $("hd-local-video"),
    remote: $("hd-remote-video"),
    noVideo: $("hd-no-video"),
    timer: $("hd-call-timer"),
    peerMedia: $("hd-peer-media"),
    sound: $("hd-sound"),
    deviceNotice: $("hd-device-notice"),
    deviceMessage: $("hd-device-message"),
    retryMedia: $("hd-retry-media"),
    notice: $("hd-notice"),
    offlineNotice: $("hd-offline-notice"),
    callbackOpen: $("hd-callback-open"),
    form: $("hd-join-form"),
    name: $("hd-name"),
    topic: $("hd-topic"),
    join: $("hd-join"),
    lineInfo: $("hd-line-info"),
    queueName: $("hd-queue-name"),
    position: $("hd-position"),
    eta: $("hd-eta"),
    etaReason: $("hd-eta-reason"),
    maxWait: $("hd-max-wait"),
    maxWaitCallback: $("hd-max-wait-callback"),
    leave: $("hd-leave"),
    mute: $("hd-mute"),
    camera: $("hd-camera"),
    hangup: $("hd-hangup"),
    callbackTitle: $("hd-callback-title"),
    callbackIntro: $("hd-callback-intro"),
    callbackForm: $("hd-callback-form"),
    cbName: $("hd-callback-name"),
    cbContact: $("hd-callback-contact"),
    cbNote: $("hd-callback-note"),
    callbackError: $("hd-callback-error"),
    callbackSubmit: $("hd-callback-submit"),
    callbackBack: $("hd-callback-back"),
    callbackSavedMessage: $("hd-callback-saved-message"),
    callbackClose: $("hd-callback-close"),
    endedMessage: $("hd-ended-message"),
    rating: $("hd-rating"),
    ratingQuestion: $("hd-rating-question"),
    ratingLabel: $("hd-rating-label"),
    ratingComment: $("hd-rating-comment"),
    ratingSubmit: $("hd-rating-submit"),
    ratingSkip: $("hd-rating-skip"),
    ratingThanks: $("hd-rating-thanks"),
    stars: Array.from(document.querySelectorAll(".stars .star")),
    again: $("hd-again"),
    close: $("hd-close"),
    minimize: $("hd-minimize"),
    error: $("hd-error"),
    views: document.querySelectorAll("section[data-view]"),
  };

  const PHASES = {
    checking: { text: "Checking camera and microphone…", view: "form" },
    ready: { text: "Ready to join", view: "form" },
    closed: { text: "Closed right now", view: "callback" },
    callback: { text: "Ask for a call back", view: "callback" },
    "callback-saved": { text: "We'll call you back", view: "callback-saved" },
    connecting: { text: "Connecting…", view: "waiting" },
    waiting: { text: "Waiting in line", view: "waiting" },
    "call-connecting": { text: "Connecting call…", view: "call" },
    "in-call": { text: "In call", view: "call" },
    ended: { text: "Call ended", view: "ended" },
    left: { text: "You left the line", view: "ended" },
    error: { text: "Something went wrong", view: "ended" },
  };
  const LIVE_PHASES = new Set(["connecting", "waiting", "call-connecting", "in-call"]);
  // Phases without a camera: the conversation is over, or the line is closed.
  const OVER_PHASES = new Set(["ended", "left", "error", "closed", "callback-saved"]);
  // Before joining: the availability of the line still shapes what the panel offers.
  const BEFORE_PHASES = new Set(["checking", "ready", "closed", "callback"]);

  const state = (window.hdState = {
    phase: "checking",
    queue: QUEUE, // the line we are in; a transfer or an overflow moves us to another
    position: null,
    eta: null,
    callId: null,
    audioOnly: false,
    availability: null, // the last GET /api/queues/<queue>
    callbackWhy: null, // closed | reopened | offline | waiting
    callbackOpen: false, // the call-back form is shown over the waiting view
    rateCallId: null, // the call the rating form is for
    score: 0,
  });
  window.hdPeer = null;

  let media = { stream: null, audioOnly: true, problem: null };
  let mediaReady = Promise.resolve();
  let socket = null;
  let welcomed = false; // the desk's `welcome` arrived on this socket
  let warmTimer = null;
  let warmLost = false; // a warm socket closed on us: Join connects, as without warming
  let iceServers = [];
  let iceTransportPolicy = "all";
  const ice = HD.iceRefresher(() => socket);
  let unavailableRetries = 0; // `unavailable` answers in a row (the desk's Redis is down)
  let pendingJoin = null;
  let pendingCallback = null; // a callback message to send once the socket is ready
  let callbackRequest = null; // the callback message sent, until the desk answers
  let callbackTimer = null;
  let ratingTimer = null;
  let ratingFallback = null;
  let ratingRetried = false;
  let call = null;
  let peerName = "";
  let callTimer = null;
  let fallbackTimer = null;
  let neverWelcomed = 0;
  let devicesChecked = false;
  let deviceCheck = null; // the device check in flight

  /* --------------------------------------------------- priority token */

  // A host site may vouch for this visitor's priority with a signed token (data-priority-token on
  // the loader). The loader hands it over in the URL fragment, which browsers never send to a
  // server, so it stays out of access logs; we read it once and take it out of the address.
  let priorityToken = (() => {
    const hash = location.hash.replace(/^#/, "");
    if (!hash) return "";
    let token = "";
    try {
      token = new URLSearchParams(hash).get("priority_token") || "";
    } catch (_) {
      token = "";
    }
    try {
      history.replaceState(history.state, "", location.pathname + location.search);
    } catch (_) {
      /* the fragment stays; it is never sent anywhere */
    }
    return token.length <= 2048 ? token : "";
  })();

  /* ------------------------------------------------------------ storage */

  // Browsers that block third-party storage deny it to this iframe. Then the loader on the host
  // page keeps the ticket for us (in the host's sessionStorage) and hands it back on load.
  const STORAGE_OK = (() => {
    try {
      sessionStorage.setItem("hd-probe", "1");
      sessionStorage.removeItem("hd-probe");
      return true;
    } catch (_) {
      return false;
    }
  })();
  let memoryTicket = null;
  let restoreWaiter = null;

  const ticketStore = {
    get() {
      try {
        return STORAGE_OK ? sessionStorage.getItem(TICKET_KEY) : memoryTicket;
      } catch (_) {
        return memoryTicket;
      }
    },
    set(value) {
      memoryTicket = value;
      if (STORAGE_OK) {
        try {
          sessionStorage.setItem(TICKET_KEY, value);
        } catch (_) {
          /* memory only */
        }
      } else postToHost({ type: "ticket", ticket: value });
    },
    drop() {
      memoryTicket = null;
      if (STORAGE_OK) {
        try {
          sessionStorage.removeItem(TICKET_KEY);
        } catch (_) {
          /* memory only */
        }
      } else postToHost({ type: "ticket", ticket: null });
    },
  };

  /** Resolves once we know whether the host kept a ticket for us (only needed without storage). */
  function restoreTicket() {
    if (STORAGE_OK || !EMBEDDED) return Promise.resolve();
    return new Promise((resolve) => {
      restoreWaiter = resolve;
      setTimeout(resolve, 1500);
    });
  }

  /* --------------------------------------------------------- host page */

  function postToHost(msg) {
    if (!EMBEDDED) return;
    try {
      window.parent.postMessage(Object.assign({ source: "humandesk" }, msg), HOST);
    } catch (_) {
      /* the host navigated away */
    }
  }

  window.addEventListener("message", (ev) => {
    if (!HOST || ev.origin !== HOST || ev.source !== window.parent) return;
    const data = ev.data;
    if (!data || typeof data !== "object" || data.source !== "humandesk") return;
    if (data.type === "open") {
      focusPrimary();
      refreshAvailability();
      warmUp(); // again, if an idle warm socket was let go
    } else if (data.type === "restore") {
      if (!STORAGE_OK && typeof data.ticket === "string" && data.ticket && !memoryTicket) memoryTicket = data.ticket;
      if (restoreWaiter) restoreWaiter();
      restoreWaiter = null;
    }
  });

  function minimize() {
    postToHost({ type: "minimize" });
  }

  function focusPrimary() {
    const target = {
      ready: ui.name,
      checking: ui.name,
      closed: ui.cbName,
      callback: ui.cbName,
      "callback-saved": ui.callbackClose,
      waiting: state.callbackOpen ? ui.cbName : ui.leave,
      "in-call": ui.mute,
      "call-connecting": ui.hangup,
      ended: state.rateCallId ? ui.stars[0] : ui.again,
      left: ui.again,
      error: ui.again,
    }[state.phase];
    if (target && !target.hidden) target.focus();
  }

  /* ----------------------------------------------------------- phases */

  function currentView() {
    if (state.callbackOpen && LIVE_PHASES.has(state.phase) && !call) return "callback";
    return PHASES[state.phase].view;
  }

  function renderView() {
    const view = currentView();
    body.dataset.view = view;
    for (const section of ui.views) section.hidden = section.dataset.view !== view;
  }

  function setPhase(phase, statusText) {
    const changed = phase !== state.phase;
    state.phase = phase;
    body.dataset.phase = phase;
    ui.status.dataset.phase = phase;
    ui.status.textContent = statusText || PHASES[phase].text;
    renderView();
    ui.join.disabled = phase !== "ready";
    ui.stage.classList.toggle("is-call", phase === "call-connecting" || phase === "in-call");
    ui.retryMedia.hidden = phase === "call-connecting" || phase === "in-call";
    if (changed) postToHost({ type: "state", phase });
  }

  function setError(text) {
    ui.error.textContent = text || "";
  }

  function setNotice(text) {
    ui.notice.textContent = text || "";
  }

  /** "sales" -> "sales", "billing-de" -> "billing de": a queue's name as words. */
  function teamName(queue) {
    return String(queue || "").replace(/[-_.]+/g, " ").trim() || "support";
  }

  /* ------------------------------------------------------ availability */

  async function fetchAvailability(timeoutMs = 4000) {
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    const timer = setTimeout(() => abort && abort.abort(), timeoutMs);
    try {
      const res = await fetch("/api/queues/" + encodeURIComponent(QUEUE), {
        headers: { Accept: "application/json" },
        cache: "no-store",
        signal: abort ? abort.signal : undefined,
      });
      if (res.status === 404) return { unknown: true };
      if (!res.ok) return null;
      const data = await res.json();
      return data && typeof data === "object" ? data : null;
    } catch (_) {
      return null; // the join itself will tell us
    } finally {
      clearTimeout(timer);
    }
  }

  async function refreshAvailability() {
    if (!BEFORE_PHASES.has(state.phase)) return;
    applyAvailability(await fetchAvailability());
  }

  /** Shapes the panel before joining: closed, nobody in, or the wait to expect. */
  function applyAvailability(info) {
    if (!info || !BEFORE_PHASES.has(state.phase)) return;
    if (info.unknown) {
      setError(ERROR_TEXT.unknown_queue);
      return;
    }
    state.availability = info;
    if (info.open === false) {
      if (state.phase === "closed") describeCallback("closed", info.opens_at);
      else openCallback("closed", info.opens_at);
      return;
    }
    if (state.phase === "closed") openCallback("reopened");
    const nobody = Number(info.agents_online) === 0;
    ui.offlineNotice.hidden = !nobody;
    body.classList.toggle("line-offline", nobody); // a smaller preview keeps Join in view
    ui.join.textContent = nobody ? "Wait in line anyway" : "Join the line";
    ui.lineInfo.textContent = nobody ? "" : lineInfoText(info);
  }

  function lineInfoText(info) {
    const waiting = Math.max(0, Number(info.waiting) || 0);
    if (waiting === 0 && Number(info.agents_available) > 0) return "Someone is free to talk to you now.";
    const people = waiting === 1 ? "1 person" : `${waiting} people`;
    const eta = HD.formatEta(Number(info.eta_seconds));
    return waiting ? `${people} waiting · expected wait ${eta}` : `Expected wait: ${eta}`;
  }

  /** "today at 9:00", "tomorrow at 09:00", "on Monday at 9:00 AM", in the visitor's locale. */
  function formatOpening(when, now = new Date()) {
    const time = when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((midnight(when) - midnight(now)) / 86400000);
    if (days <= 0) return `today at ${time}`;
    if (days === 1) return `tomorrow at ${time}`;
    const options = days < 7 ? { weekday: "long" } : { weekday: "long", day: "numeric", month: "long" };
    return `on ${when.toLocaleDateString([], options)} at ${time}`;
  }

  function openingSentence(iso) {
    const when = iso ? new Date(iso) : null;
    if (!when || Number.isNaN(when.getTime())) return "We are not taking calls at the moment.";
    return `We open again ${formatOpening(when)}.`;
  }

  /* ----------------------------------------------------------- devices */

  async function checkDevices() {
    ui.retryMedia.disabled = true;
    ui.join.disabled = true;
    HD.stopStream(media.stream);
    ui.local.srcObject = null;
    media = await HD.getLocalMedia();
    if (OVER_PHASES.has(state.phase)) {
      releaseMedia(); // the conversation ended (or the line closed) while the browser was asking
      ui.retryMedia.disabled = false;
      return;
    }
    state.audioOnly = media.audioOnly;
    if (media.stream && !media.audioOnly) ui.local.srcObject = media.stream;
    showLocalVideo(!media.audioOnly);
    const problem = HD.describeMediaProblem(media, "the person who answers");
    ui.deviceMessage.textContent = problem;
    ui.deviceNotice.hidden = !problem;
    ui.retryMedia.disabled = false;
    devicesChecked = true;
    controls.reset();
    if (state.phase === "checking") setPhase("ready");
    ui.join.disabled = state.phase !== "ready";
    warmUp();
  }

  function recheckDevices() {
    if (!deviceCheck) deviceCheck = checkDevices().finally(() => (deviceCheck = null));
    mediaReady = deviceCheck;
  }

  /** Turns the camera and microphone off once the conversation is over: no light left on. */
  function releaseMedia() {
    HD.stopStream(media.stream);
    media = { stream: null, audioOnly: true, problem: null };
    ui.local.srcObject = null;
    devicesChecked = false;
  }

  /** Back to the join form, starting the camera again if it was turned off. */
  function backToForm() {
    state.callbackOpen = false;
    state.callbackWhy = null;
    if (devicesChecked) setPhase("ready");
    else {
      setPhase("checking");
      recheckDevices();
    }
    applyAvailability(state.availability);
    warmUp();
  }

  function showLocalVideo(on) {
    ui.noVideo.hidden = on;
    ui.local.hidden = !on;
    ui.stage.classList.toggle("no-local-video", !on);
  }

  const controls = HD.mediaControls({
    muteButton: ui.mute,
    cameraButton: ui.camera,
    getStream: () => media.stream,
    onChange(current) {
      showLocalVideo(!current.camera_off);
      if (call && socket) socket.send({ type: "media", ...current });
    },
  });

  /* ------------------------------------------------------------ socket */

  function connect() {
    if (socket) socket.close();
    clearTimeout(warmTimer);
    neverWelcomed = 0;
    welcomed = false;
    socket = new HD.DeskSocket("/ws/visitor", { onMessage, onClose, onRetry });
    socket.open();
  }

  function disconnect() {
    clearTimeout(warmTimer);
    if (socket) socket.close(1000, "bye");
    socket = null;
    welcomed = false;
  }

  /**
   * Opens the socket before the click on Join, once the panel is ready: the click then only
   * sends `join` on a socket the desk has already welcomed. Never a second socket, never for a
   * ticket (that one resumes on its own socket), never for a closed line. Until the visitor
   * joins, a warm socket that closes is dropped without a word (see onClose) and Join connects
   * as it always did; no other is warmed until then. One let go for idling is warmed again by
   * the next sign of intent (typing in the form, the panel opened again).
   */
  function warmUp() {
    if (socket || warmLost || state.phase !== "ready" || ticketStore.get()) return;
    if (state.availability && state.availability.open === false) return;
    connect();
    warmTimer = setTimeout(() => {
      if (isWarm()) disconnect();
    }, WARM_IDLE_MS);
  }

  /** A warm socket: open (or opening) while the visitor is not in line and has asked for nothing. */
  function isWarm() {
    return !!socket && BEFORE_PHASES.has(state.phase) && !pendingJoin && !pendingCallback && !callbackRequest;
  }

  function onRetry() {
    if (state.phase === "waiting" || state.phase === "in-call" || state.phase === "call-connecting") {
      setNotice("Connection lost. Reconnecting…");
    }
  }

  function onClose({ code, opened }) {
    welcomed = false;
    if (isWarm()) {
      // Opened ahead of the click and not in line: nothing to keep, so no notice, no error and
      // no retry. Join connects as it always did.
      socket = null;
      clearTimeout(warmTimer);
      warmLost = true;
      return false;
    }
    if (code === 4001 || code === 4004) {
      ticketStore.drop();
      socket = null;
      const wasWaiting = state.phase === "waiting" || state.phase === "connecting";
      endCallLocally();
      setNotice("");
      backToForm();
      if (wasWaiting) setError("Your place in line has expired. Please join again.");
      return false;
    }
    if (code === 4009) {
      endCallLocally();
      showEnded("error", "This conversation continued in another window or tab.");
      return false;
    }
    if (code === 1008 || code === 1009) {
      endCallLocally();
      showEnded("error", "The connection to the desk was closed because of an error.");
      return false;
    }
    if (!LIVE_PHASES.has(state.phase)) {
      socket = null;
      if (callbackRequest) callbackFailed("We could not reach the desk. Please try again.");
      if (state.rateCallId) finishRating(""); // nothing left to send it through
      return false;
    }
    if (!opened) neverWelcomed += 1;
    // The desk cannot be reached at all and we have no place to keep: stop trying.
    if (!ticketStore.get() && neverWelcomed >= 5) {
      showEnded("error", "We cannot reach the support desk right now. Please try again in a moment.");
      return false;
    }
    return true;
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        onWelcome(msg);
        break;
      case "queued":
        onQueued(msg);
        break;
      case "position":
        updatePosition(msg);
        break;
      case "moved":
        onMoved(msg);
        break;
      case "max_wait":
        if (LIVE_PHASES.has(state.phase) && !call) ui.maxWait.hidden = false;
        break;
      case "call_started":
        startCall(msg);
        break;
      case "signal":
        if (call && msg.call_id === call.callId) call.handleSignal(msg);
        break;
      case "peer_media":
        if (msg.call_id === state.callId) showPeerMedia(msg);
        break;
      case "call_ended":
        // Our own hang-up, confirmed, carries a call id we already let go of.
        if (msg.call_id === state.callId) onCallEnded(msg);
        break;
      case "callback_saved":
        onCallbackSaved();
        break;
      case "rated":
        if (msg.call_id === state.rateCallId) finishRating("Thank you for your feedback!");
        break;
      case "left":
        ticketStore.drop();
        clearTimeout(fallbackTimer);
        disconnect();
        // Leaving for a call-back is not leaving: the confirmation is already on screen.
        if (msg.reason === "callback" || state.phase === "callback-saved") break;
        showEnded("left", "You left the line. You can join again at any time.");
        break;
      case "ice_servers":
        ice.received(msg);
        break;
      case "error":
        onServerError(msg);
        break;
      default:
        break;
    }
  }

  function onWelcome(msg) {
    neverWelcomed = 0;
    welcomed = true;
    iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    iceTransportPolicy = msg.ice_transport_policy === "relay" ? "relay" : "all";
    if (isWarm()) return; // opened ahead of the click: the join goes out when it comes
    setNotice("");
    const ticket = ticketStore.get();
    if (ticket) socket.send({ type: "resume", ticket });
    else if (pendingJoin) socket.send(pendingJoin);
    else if (pendingCallback) sendPendingCallback();
  }

  function onQueued(msg) {
    unavailableRetries = 0;
    if (typeof msg.ticket === "string" && msg.ticket) ticketStore.set(msg.ticket);
    if (typeof msg.queue === "string" && msg.queue) state.queue = msg.queue;
    const answersJoin = pendingJoin !== null;
    pendingJoin = null;
    if (typeof msg.audio_only === "boolean") state.audioOnly = msg.audio_only;
    // An agent who accepts at once can start the call before the desk has answered our join:
    // then `queued` arrives after `call_started` and is old news. Keep the call (and the ticket).
    if (call && answersJoin) return;
    if (call) endCallLocally(); // the call ended while we were away
    showQueueName();
    updatePosition(msg);
    setError("");
    if (state.phase !== "waiting") setPhase("waiting");
    if (pendingCallback) sendPendingCallback(); // asked for while the connection was down
  }

  function updatePosition(msg) {
    if (Number.isInteger(msg.position) && msg.position > 0) {
      state.position = msg.position;
      ui.position.dataset.position = String(msg.position);
      ui.position.textContent = `You are ${HD.ordinal(msg.position)} in line`;
    }
    if ("eta_seconds" in msg) {
      const previous = state.eta;
      state.eta = msg.eta_seconds;
      ui.eta.textContent = "Expected wait: " + HD.formatEta(msg.eta_seconds);
      if (typeof msg.eta_reason === "string" && msg.eta_reason) {
        ui.etaReason.textContent = msg.eta_reason;
        ui.etaReason.hidden = false;
      } else if (typeof previous === "number" && msg.eta_seconds < previous) {
        ui.etaReason.hidden = true; // the wait is shrinking again: the reason is old news
      }
    }
    if (state.callbackOpen) describeCallback("waiting");
  }

  function showQueueName() {
    const moved = state.queue !== QUEUE;
    ui.queueName.hidden = !moved;
    ui.queueName.textContent = moved ? `Waiting for our ${teamName(state.queue)} team` : "";
  }

  function onMoved(msg) {
    if (typeof msg.queue === "string" && msg.queue) state.queue = msg.queue;
    showQueueName();
    if (Number.isInteger(msg.position) && msg.position > 0) updatePosition({ position: msg.position });
    else if (msg.reason === "max_wait") {
      ui.position.dataset.position = "";
      ui.position.textContent = "Finding your place in line…";
    }
    if (msg.reason === "max_wait") {
      ui.maxWait.hidden = true;
      setNotice(`It is busy right now, so we moved you to our ${teamName(state.queue)} team. You keep your place.`);
    }
  }

  const ERROR_TEXT = {
    unknown_queue: "This help line is not available right now.",
    bad_message: "Please check what you entered and try again.",
    callbacks_full: "We cannot take more call-back requests right now. Please try again later.",
    unavailable: "We are having trouble reaching the help desk. Please try again in a minute.",
  };
  const UNAVAILABLE_RETRIES = 10;

  /** "too many … from your network" with the time to wait, for a `rate_limited` refusal. */
  function limitedText(msg) {
    const seconds = Math.max(1, Number(msg.retry_after_s) || 60);
    const when = seconds < 90 ? HD.plural(seconds, "second") : HD.plural(Math.ceil(seconds / 60), "minute");
    if (msg.limit === "waiting") return "Too many people from your network are already waiting. Please try again later.";
    if (msg.limit === "callbacks") return `Too many call-back requests came from your network. Please try again in ${when}.`;
    return `Too many people are joining from your network right now. Please try again in ${when}.`;
  }

  /**
   * The desk could not reach its database for a moment (`unavailable`): say so and send the
   * same message again by itself, a few times, before giving up. Returns false when giving up.
   */
  function retryUnavailable(msg, resend) {
    if (unavailableRetries >= UNAVAILABLE_RETRIES) {
      unavailableRetries = 0;
      return false;
    }
    unavailableRetries += 1;
    setNotice("We are having trouble reaching the help desk. Trying again…");
    const wait = 1000 * (Number(msg.retry_after_s) || 2) * (0.75 + Math.random() * 0.5);
    setTimeout(resend, wait);
    return true;
  }

  function onServerError(msg) {
    if (msg.code === "unavailable") {
      const again = {
        join: () => pendingJoin && socket && socket.send(pendingJoin),
        resume: () => {
          const ticket = ticketStore.get();
          if (ticket && socket) socket.send({ type: "resume", ticket });
        },
        callback: () => callbackRequest && socket && socket.send(callbackRequest),
        leave: () => socket && socket.send({ type: "leave" }),
        hangup: () => state.callId && socket && socket.send({ type: "hangup", call_id: state.callId }),
      }[msg.in_reply_to];
      if (again && retryUnavailable(msg, again)) return;
    }
    if (msg.code === "rate_limited" && msg.in_reply_to !== "join" && msg.in_reply_to !== "callback") {
      return; // a burst of our own messages: the desk dropped one, nothing to tell the visitor
    }
    if (msg.in_reply_to === "join") {
      // An expired or wrong priority token must not keep anyone out of the line: join without it.
      if (
        msg.code === "bad_message" &&
        pendingJoin &&
        pendingJoin.priority_token &&
        /priority_token/.test(msg.message || "") &&
        socket
      ) {
        priorityToken = "";
        delete pendingJoin.priority_token;
        socket.send(pendingJoin);
        return;
      }
      pendingJoin = null;
      disconnect();
      if (msg.code === "queue_closed") {
        openCallback("closed", msg.opens_at, true);
        return;
      }
      setPhase("ready");
      setError(
        msg.code === "rate_limited"
          ? limitedText(msg)
          : ERROR_TEXT[msg.code] || msg.message || "We could not add you to the line."
      );
      ui.name.focus();
      return;
    }
    if (msg.in_reply_to === "resume" && msg.code !== "wrong_state") {
      ticketStore.drop();
      disconnect();
      backToForm();
      setError("Your place in line has expired. Please join again.");
      return;
    }
    if (msg.in_reply_to === "callback") {
      callbackFailed(
        msg.code === "bad_message"
          ? "Please check your name and your phone number or email."
          : msg.code === "rate_limited"
            ? limitedText(msg)
            : ERROR_TEXT[msg.code] || "We could not send your request. Please try again."
      );
      return;
    }
    if (msg.in_reply_to === "rate") {
      // Our own hang-up may not have reached the desk yet when the rating does: try once more.
      if (msg.code === "wrong_state" && !ratingRetried && state.rateCallId) {
        ratingRetried = true;
        setTimeout(sendRating, 1000);
        return;
      }
      finishRating("Sorry, we could not save your feedback.");
      return;
    }
    setError(ERROR_TEXT[msg.code] || msg.message || "Something went wrong.");
  }

  /* -------------------------------------------------------------- join */

  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (state.phase !== "ready") return;
    const name = ui.name.value.trim();
    if (!name) {
      setError("Please tell us your name.");
      ui.name.focus();
      return;
    }
    HD.sound.unlock();
    setError("");
    state.queue = QUEUE;
    pendingJoin = {
      type: "join",
      queue: QUEUE,
      name: HD.clip(name, 80),
      topic: HD.clip(ui.topic.value.trim(), 500),
      audio_only: !media.stream || media.stream.getVideoTracks().length === 0,
      page: HD.clip(document.referrer, 500),
    };
    if (priorityToken) pendingJoin.priority_token = priorityToken;
    resetWaiting();
    setPhase("connecting");
    clearTimeout(warmTimer);
    warmLost = false;
    // The socket opened when the panel got ready: welcomed, it carries the join at once;
    // still opening, onWelcome sends it. None (it closed, or never opened): connect as ever,
    // and so does a ticket the host page handed back late (it resumes on a fresh socket).
    if (!socket || ticketStore.get()) connect();
    else if (welcomed && !socket.send(pendingJoin)) connect();
  });

  // Typing in the form is intent too: warm up again if the idle warm socket was let go.
  ui.form.addEventListener("focusin", () => warmUp());
  ui.form.addEventListener("input", () => warmUp());

  function resetWaiting() {
    state.position = null;
    state.eta = null;
    state.callbackOpen = false;
    ui.position.dataset.position = "";
    ui.position.textContent = "Finding your place in line…";
    ui.eta.textContent = "";
    ui.etaReason.hidden = true;
    ui.etaReason.textContent = "";
    ui.maxWait.hidden = true;
    showQueueName();
  }

  ui.leave.addEventListener("click", () => {
    ui.leave.disabled = true;
    if (socket && socket.send({ type: "leave" })) {
      // `left` normally answers at once; don't leave the visitor stuck if it never does.
      clearTimeout(fallbackTimer);
      fallbackTimer = setTimeout(() => {
        if (state.phase === "waiting" || state.phase === "connecting") leftLocally();
      }, 4000);
    } else {
      leftLocally();
    }
  });

  function leftLocally() {
    ticketStore.drop();
    disconnect();
    showEnded("left", "You left the line. You can join again at any time.");
  }

  /* ---------------------------------------------------------- callback */

  /**
   * Shows the call-back form. `why`: "closed" (outside opening hours), "reopened" (it opened
   * while the form was up), "offline" (open, but nobody is in) or "waiting" (a long wait; the
   * visitor keeps their place until they send it). `focus`: the visitor asked for it.
   */
  function openCallback(why, opensAt, focus = false) {
    if (!ui.cbName.value.trim() && ui.name.value.trim()) ui.cbName.value = ui.name.value.trim();
    if (!ui.cbNote.value.trim() && ui.topic.value.trim()) ui.cbNote.value = ui.topic.value.trim();
    setCallbackError("");
    ui.callbackSubmit.disabled = !!callbackRequest;
    ui.offlineNotice.hidden = true;
    describeCallback(why, opensAt);
    if (why === "waiting") {
      state.callbackOpen = true;
      renderView();
    } else {
      state.callbackOpen = false;
      setError("");
      if (why === "closed") {
        setPhase("closed");
        releaseMedia(); // no camera for a line that is closed
      } else setPhase("callback");
    }
    // Only after the visitor's own action: never pull focus into the frame unasked.
    if (focus) (ui.cbName.value.trim() ? ui.cbContact : ui.cbName).focus();
  }

  function describeCallback(why, opensAt) {
    state.callbackWhy = why;
    let title;
    let intro;
    let back = "";
    if (why === "closed") {
      title = "We're closed right now";
      intro = `${openingSentence(opensAt)} Leave your phone number or email and we'll call you back.`;
      ui.callbackIntro.dataset.opensAt = opensAt || "";
    } else if (why === "reopened") {
      title = "We're open again";
      intro = "You can talk to someone now, or still leave your number and we'll call you back.";
      back = "Talk to someone now";
    } else if (why === "offline") {
      title = "We'll call you back";
      intro = "Nobody from our team is online right now. Leave your phone number or email and we'll get back to you as soon as we can.";
      back = "Wait in line instead";
    } else {
      title = "We can call you back";
      const place = state.position ? ` (${HD.ordinal(state.position)})` : "";
      intro = `Still waiting? Leave your phone number or email and we'll call you back. You keep your place in line${place} until you send this.`;
      back = "Keep waiting";
    }
    ui.callbackTitle.textContent = title;
    ui.callbackIntro.textContent = intro;
    ui.callbackBack.textContent = back;
    ui.callbackBack.hidden = !back;
  }

  function setCallbackError(text) {
    ui.callbackError.textContent = text || "";
  }

  /** Why a phone number or email will not do, or "" when it looks usable. */
  function contactProblem(text) {
    if (!text) return "Please give us a phone number or an email address.";
    if (text.includes("@")) {
      return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text) ? "" : "That email address does not look right.";
    }
    const digits = text.replace(/\D/g, "").length;
    if (digits < 6 || !/^\+?[\d\s().\/-]+((\s*(ext\.?|x)\s*\d+))?$/i.test(text)) {
      return "Please enter a phone number with its area code, or an email address.";
    }
    return "";
  }

  ui.callbackForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (callbackRequest) return;
    const name = ui.cbName.value.trim();
    const contact = ui.cbContact.value.trim();
    if (!name) {
      setCallbackError("Please tell us your name.");
      ui.cbName.focus();
      return;
    }
    const problem = contactProblem(contact);
    if (problem) {
      setCallbackError(problem);
      ui.cbContact.focus();
      return;
    }
    setCallbackError("");
    const msg = {
      type: "callback",
      queue: state.queue || QUEUE,
      name: HD.clip(name, 80),
      contact: HD.clip(contact, 200),
      note: HD.clip(ui.cbNote.value.trim(), 1000),
    };
    callbackRequest = msg;
    ui.callbackSubmit.disabled = true;
    ui.callbackSubmit.textContent = "Sending…";
    if (socket) {
      if (!socket.send(msg)) pendingCallback = msg; // sent once the connection is back
    } else {
      pendingCallback = msg;
      connect();
    }
    clearTimeout(callbackTimer);
    callbackTimer = setTimeout(() => callbackFailed("We could not send your request. Please try again."), 10000);
  });

  function sendPendingCallback() {
    const msg = pendingCallback;
    pendingCallback = null;
    if (msg && socket && !socket.send(msg)) pendingCallback = msg;
  }

  function onCallbackSaved() {
    const req = callbackRequest;
    if (!req) return;
    callbackRequest = null;
    pendingCallback = null;
    clearTimeout(callbackTimer);
    clearTimeout(fallbackTimer);
    // A visitor who was waiting gave up their place for this; the desk says `left` and closes.
    ticketStore.drop();
    disconnect();
    state.callbackOpen = false;
    ui.callbackSavedMessage.textContent =
      `Thanks, ${req.name}. We'll get back to you at ${req.contact} as soon as we can.`;
    resetCallbackForm();
    setNotice("");
    setError("");
    setPhase("callback-saved");
    releaseMedia();
    focusPrimary();
  }

  function callbackFailed(text) {
    if (!callbackRequest && !pendingCallback) return;
    callbackRequest = null;
    pendingCallback = null;
    clearTimeout(callbackTimer);
    ui.callbackSubmit.disabled = false;
    ui.callbackSubmit.textContent = "Call me back";
    setCallbackError(text);
    if (!LIVE_PHASES.has(state.phase)) disconnect();
  }

  function resetCallbackForm() {
    ui.callbackSubmit.disabled = false;
    ui.callbackSubmit.textContent = "Call me back";
    ui.cbContact.value = "";
    ui.cbNote.value = "";
    setCallbackError("");
  }

  ui.callbackOpen.addEventListener("click", () => openCallback("offline", null, true));
  ui.maxWaitCallback.addEventListener("click", () => openCallback("waiting", null, true));
  ui.callbackBack.addEventListener("click", () => {
    setCallbackError("");
    if (state.callbackWhy === "waiting") {
      state.callbackOpen = false;
      renderView();
      ui.leave.focus();
    } else {
      backToForm();
      ui.name.focus();
    }
  });
  ui.callbackClose.addEventListener("click", minimize);

  /* -------------------------------------------------------------- call */

  function startCall(msg) {
    if (call && call.callId === msg.call_id && call.isAlive()) return; // replayed after a reconnect
    if (call) call.close();
    clearTimeout(fallbackTimer);
    state.callId = msg.call_id;
    state.callbackOpen = false;
    ui.maxWait.hidden = true;
    peerName = (msg.peer && msg.peer.name) || "";
    ui.peerMedia.hidden = true;
    setError("");
    setNotice("");
    const fromLine = state.phase === "waiting";
    setPhase("call-connecting", peerName ? `Connecting to ${peerName}…` : undefined);
    if (fromLine) HD.sound.chime(); // not when a reload resumes a running call
    const callId = msg.call_id;
    call = new HD.PeerCall({
      callId,
      role: msg.role === "offerer" ? "offerer" : "answerer",
      iceServers: Array.isArray(msg.ice_servers) ? msg.ice_servers : iceServers, // fresh per call
      iceTransportPolicy,
      refreshIce: () => ice.request(),
      getStream: () => mediaReady.then(() => media.stream),
      send: (fields) => socket && socket.send({ type: "signal", call_id: callId, ...fields }),
      onRemoteStream: (stream) =>
        HD.playRemote(ui.remote, stream, () => {
          ui.sound.hidden = false;
        }),
      onConnectionState: onPeerState,
      onSlow: () => setNotice("Still connecting… If this takes much longer, your network may be blocking video calls."),
      onPeer: (pc) => {
        window.hdPeer = pc;
      },
    });
    call.start();
    mediaReady.then(() => {
      if (call && call.callId === callId && socket) {
        controls.sync();
        socket.send({ type: "media", ...controls.current() });
      }
    });
  }

  function onPeerState(connection) {
    if (connection === "connected") {
      setNotice("");
      if (state.phase !== "in-call") {
        setPhase("in-call", peerName ? `In call with ${peerName}` : undefined);
        startTimer();
      }
    } else if (connection === "disconnected" || connection === "failed") {
      setNotice("The connection is unstable. Trying to reconnect…");
    }
  }

  function startTimer() {
    const started = Date.now();
    ui.timer.textContent = "0:00";
    ui.timer.hidden = false;
    clearInterval(callTimer);
    callTimer = setInterval(() => {
      ui.timer.textContent = HD.formatClock((Date.now() - started) / 1000);
    }, 1000);
  }

  function showPeerMedia(msg) {
    const who = peerName || "The agent";
    const parts = [];
    if (msg.muted) parts.push(`${who} muted their microphone`);
    if (msg.camera_off) parts.push(`${who} turned their camera off`);
    ui.peerMedia.textContent = parts.join(". ");
    ui.peerMedia.hidden = parts.length === 0;
    ui.stage.classList.toggle("peer-camera-off", !!msg.camera_off);
  }

  /** Drop the peer connection and call UI; keeps the camera preview running. */
  function endCallLocally() {
    if (call) call.close();
    call = null;
    window.hdPeer = null;
    state.callId = null;
    clearInterval(callTimer);
    ui.timer.hidden = true;
    ui.sound.hidden = true;
    ui.peerMedia.hidden = true;
    ui.stage.classList.remove("peer-camera-off");
    ui.remote.srcObject = null;
  }

  const END_TEXT = {
    hangup: { visitor: "You ended the call.", agent: "The agent ended the call.", desk: "The call was ended." },
    peer_left: "The agent's connection was lost.",
    agent_offline: "The agent went offline.",
  };

  function onCallEnded(msg) {
    if (msg.reason === "transferred") {
      onTransferred(msg);
      return;
    }
    const entry = END_TEXT[msg.reason];
    const text = typeof entry === "string" ? entry : (entry && entry[msg.by]) || "The call has ended.";
    const callId = state.callId;
    endCallLocally();
    ticketStore.drop();
    showEnded("ended", text + " Thank you for talking to us.");
    offerRating(callId);
  }

  /**
   * A blind transfer: the agent passed us to another line, where we wait at the head. The
   * socket and the ticket stay (we are still in line); only the peer connection goes.
   */
  function onTransferred(msg) {
    const who = peerName || "Our agent";
    endCallLocally();
    if (typeof msg.queue === "string" && msg.queue) state.queue = msg.queue;
    resetWaiting();
    setPhase("waiting");
    setNotice(`${who} passed you to our ${teamName(state.queue)} team — you're next.`);
  }

  ui.hangup.addEventListener("click", () => {
    if (!call) return;
    const callId = call.callId;
    const sent = !!socket && socket.send({ type: "hangup", call_id: callId });
    endCallLocally();
    ticketStore.drop();
    showEnded("ended", "You ended the call. Thank you for talking to us.");
    // The socket stays open for the rating (the desk's call_ended for it is ignored).
    if (sent) offerRating(callId);
    else disconnect();
  });

  ui.sound.addEventListener("click", () => {
    ui.remote.muted = false;
    ui.remote.play().catch(() => {});
    ui.sound.hidden = true;
  });

  /* ------------------------------------------------------------ rating */

  const SCORE_TEXT = ["", "Very poor", "Poor", "Okay", "Good", "Excellent"];

  function offerRating(callId) {
    if (!callId || !socket) {
      disconnect();
      return;
    }
    state.rateCallId = callId;
    ratingRetried = false;
    chooseScore(0);
    ui.ratingComment.value = "";
    ui.ratingQuestion.textContent = peerName ? `How was your call with ${peerName}?` : "How was your call?";
    ui.ratingThanks.hidden = true;
    ui.rating.hidden = false;
    clearTimeout(ratingTimer);
    ratingTimer = setTimeout(() => finishRating(""), RATING_WINDOW_MS);
  }

  function paintStars(upto) {
    for (const star of ui.stars) star.classList.toggle("is-lit", Number(star.dataset.score) <= upto);
  }

  function chooseScore(score) {
    state.score = score;
    for (const star of ui.stars) star.setAttribute("aria-pressed", String(Number(star.dataset.score) === score));
    paintStars(score);
    ui.ratingLabel.textContent = SCORE_TEXT[score] || "";
    ui.ratingSubmit.disabled = score === 0;
  }

  for (const star of ui.stars) {
    star.addEventListener("click", () => chooseScore(Number(star.dataset.score)));
    star.addEventListener("mouseenter", () => paintStars(Number(star.dataset.score)));
    star.addEventListener("mouseleave", () => paintStars(state.score));
  }

  function sendRating() {
    if (!state.rateCallId || !state.score) return;
    const msg = {
      type: "rate",
      call_id: state.rateCallId,
      score: state.score,
      comment: HD.clip(ui.ratingComment.value.trim(), 1000),
    };
    if (!socket || !socket.send(msg)) {
      finishRating("Sorry, we could not send your feedback.");
      return;
    }
    clearTimeout(ratingFallback);
    ratingFallback = setTimeout(() => finishRating("Sorry, we could not send your feedback."), 8000);
  }

  ui.rating.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!state.score) return;
    ui.ratingSubmit.disabled = true;
    ui.ratingSkip.disabled = true;
    sendRating();
  });

  /** Ends the rating (sent, skipped or timed out) and with it the visitor's socket. */
  function finishRating(text) {
    clearTimeout(ratingTimer);
    clearTimeout(ratingFallback);
    const had = state.rateCallId !== null;
    state.rateCallId = null;
    ui.rating.hidden = true;
    ui.ratingSubmit.disabled = false;
    ui.ratingSkip.disabled = false;
    ui.ratingThanks.textContent = text || "";
    ui.ratingThanks.hidden = !text;
    if (had) disconnect();
  }

  ui.ratingSkip.addEventListener("click", () => {
    finishRating("");
    ui.again.focus();
  });

  /* ------------------------------------------------------------- ended */

  function showEnded(phase, message) {
    setNotice("");
    finishRating("");
    ui.endedMessage.textContent = message;
    ui.leave.disabled = false;
    state.callbackOpen = false;
    setPhase(phase);
    releaseMedia();
  }

  ui.again.addEventListener("click", () => {
    clearTimeout(fallbackTimer);
    finishRating("");
    disconnect();
    setError("");
    backToForm();
    ui.name.focus();
  });

  ui.close.addEventListener("click", minimize);
  if (ui.minimize) ui.minimize.addEventListener("click", minimize);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && EMBEDDED) minimize();
  });

  ui.retryMedia.addEventListener("click", recheckDevices);

  /* ------------------------------------------------------------- start */

  postToHost({ type: "state", phase: state.phase });
  renderView();
  const firstLook = fetchAvailability(2500);
  restoreTicket().then(async () => {
    if (ticketStore.get() && !LIVE_PHASES.has(state.phase)) {
      // A reload while in line: take the place back before the desk's lease on it runs out.
      recheckDevices();
      resetWaiting();
      setPhase("connecting");
      connect();
      return;
    }
    const info = await firstLook;
    if (!info || info.open !== false) recheckDevices(); // a closed line needs no camera
    applyAvailability(info);
  });
  setInterval(refreshAvailability, AVAILABILITY_EVERY_MS);
})();
