/* humandesk agent console: sign-in, status, offers, calls, wrap-up, notes, transfers and
 * call-back requests. Needs common.js. */
"use strict";

(function () {
  const HD = window.HD;
  const $ = HD.$;
  const body = document.body;
  const BASE_TITLE = document.title;

  const ui = {
    loading: $("agent-loading"),
    loginView: $("agent-login-view"),
    loginForm: $("agent-login-form"),
    username: $("agent-username"),
    password: $("agent-password"),
    login: $("agent-login"),
    loginError: $("agent-login-error"),
    user: $("agent-user"),
    name: $("agent-name"),
    connection: $("agent-connection"),
    logout: $("agent-logout"),
    console: $("agent-console"),
    status: $("agent-status"),
    available: $("agent-available"),
    brk: $("agent-break"),
    offline: $("agent-offline"),
    queues: $("agent-queues"),
    breakReason: $("agent-break-reason"),
    breakReasonText: $("agent-break-reason-text"),
    offer: $("offer-card"),
    offerBadges: document.querySelector(".offer-badges"),
    offerPriority: $("offer-priority"),
    offerTransferred: $("offer-transferred"),
    offerName: $("offer-visitor-name"),
    offerTopic: $("offer-topic"),
    offerQueue: $("offer-queue"),
    offerWaited: $("offer-waited"),
    offerAudioOnly: $("offer-audio-only"),
    offerPageRow: $("offer-page-row"),
    offerPage: $("offer-page"),
    offerBar: $("offer-countdown-bar"),
    offerCountdown: $("offer-countdown"),
    accept: $("offer-accept"),
    decline: $("offer-decline"),
    callTitle: $("agent-call-title"),
    callTopic: $("agent-call-topic"),
    timer: $("agent-call-timer"),
    stage: $("agent-stage"),
    remote: $("agent-remote-video"),
    local: $("agent-local-video"),
    noVideo: $("agent-no-video"),
    peerMedia: $("agent-peer-media"),
    sound: $("agent-sound"),
    idleCaption: $("agent-idle-caption"),
    deviceNotice: $("agent-device-notice"),
    deviceMessage: $("agent-device-message"),
    retryMedia: $("agent-retry-media"),
    mute: $("agent-mute"),
    camera: $("agent-camera"),
    hangup: $("agent-hangup"),
    wrapup: $("agent-wrapup"),
    wrapupAfter: $("agent-wrapup-after"),
    wrapupClock: $("agent-wrapup-countdown"),
    wrapupText: $("agent-wrapup-text"),
    wrapupBar: $("agent-wrapup-bar"),
    wrapupExtend: $("agent-wrapup-extend"),
    wrapupDone: $("agent-wrapup-done"),
    notesCard: $("agent-notes-card"),
    notes: $("agent-notes"),
    disposition: $("agent-disposition"),
    notesStatus: $("agent-notes-status"),
    transfer: $("agent-transfer"),
    transferQueue: $("agent-transfer-queue"),
    transferSubmit: $("agent-transfer-submit"),
    callbacks: $("agent-callbacks"),
    callbacksCount: $("agent-callbacks-count"),
    callbacksEmpty: $("agent-callbacks-empty"),
    callbackList: $("agent-callback-list"),
    callbacksMore: $("agent-callbacks-more"),
    notice: $("agent-notice"),
    replaced: $("agent-replaced"),
    reconnect: $("agent-reconnect"),
  };

  const STATUS_TEXT = {
    offline: "Offline",
    available: "Available",
    break: "On break",
    offered: "Incoming offer",
    in_call: "In call",
    wrap_up: "Wrap-up",
  };

  const OFFER_CANCELLED_TEXT = {
    timeout: "The offer timed out and the visitor went back to their place in line.",
    visitor_left: "The visitor left the line.",
    declined: "You declined the visitor; they keep their place in line.",
    status_change: "The offer was withdrawn because your status changed.",
  };

  const state = (window.hdState = {
    phase: "loading", // loading | login | idle | offered | call-connecting | in-call | replaced
    status: "offline",
    connected: false,
    callId: null,
    offerId: null,
    queues: {},
    agent: null,
    deskQueues: [], // every queue of the desk (welcome.desk_queues), for transfers
    callQueue: null, // the queue of the current call
    breakReason: null, // why the desk put the agent on Break, until they choose Available
    callbacks: [], // the open call-back requests loaded so far (a page at a time)
    callbacksTotal: 0, // how many are open for this agent's queues
  });
  window.hdPeer = null;

  let socket = null;
  let iceServers = [];
  let iceTransportPolicy = "all";
  let media = { stream: null, audioOnly: true, problem: null };
  let mediaReady = Promise.resolve();
  let offer = null;
  let offerTimer = null;
  let call = null;
  let callPeer = null;
  let callTimer = null;
  let wantedStatus = null;
  let disconnectedAt = 0;
  let welcomes = 0;
  let lastWelcomeAt = 0;
  let loggingOut = false;
  let wrapupUntil = 0; // performance.now() when the desk ends the wrap-up; 0: unknown
  let wrapupTotal = 0; // the length the countdown bar stands for
  let wrapupTimer = null;
  let lastPeerName = ""; // the visitor of the call the wrap-up is for
  // Notes of the current (or just-ended) call: autosaved, in order, confirmed by notes_saved.
  const notes = { callId: null, dirty: false, edits: 0, sent: [], timer: null };
  let callbacksSeen = null; // ids of the requests already listed (null: no list yet)
  let callbacksPaged = 0; // requests loaded from pages (the offset of the next page)
  const ice = HD.iceRefresher(() => socket);

  /* --------------------------------------------------------- helpers */

  function setPhase(phase) {
    state.phase = phase;
    body.dataset.phase = phase;
  }

  let noticeTimer = null;
  /** A toast; it clears itself unless sticky (or replaced by a newer one). */
  function notify(text, sticky = false) {
    ui.notice.textContent = text || "";
    clearTimeout(noticeTimer);
    if (text && !sticky) {
      noticeTimer = setTimeout(() => {
        if (ui.notice.textContent === text) ui.notice.textContent = "";
      }, 10000);
    }
  }

  function showOnly(view) {
    ui.loading.hidden = view !== "loading";
    ui.loginView.hidden = view !== "login";
    ui.console.hidden = view !== "console";
    ui.user.hidden = view !== "console";
  }

  async function fetchMe() {
    const res = await fetch("/api/me", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (res.status === 401) return null;
    if (!res.ok) throw new Error("HTTP " + res.status);
    const data = await res.json();
    return data.agent;
  }

  /* ----------------------------------------------------------- login */

  function showLogin(message) {
    setPhase("login");
    showOnly("login");
    ui.loginError.textContent = message || "";
    ui.login.disabled = false;
    ui.username.focus();
  }

  ui.loginForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    HD.sound.unlock();
    const username = ui.username.value.trim();
    const password = ui.password.value;
    if (!username || !password) {
      ui.loginError.textContent = "Enter your username and password.";
      return;
    }
    ui.login.disabled = true;
    ui.loginError.textContent = "";
    const result = await HD.signIn(username, password);
    ui.login.disabled = false;
    if (result.error) {
      ui.loginError.textContent = result.error;
      if (result.wrongPassword) {
        ui.password.select();
        ui.password.focus();
      }
      return;
    }
    ui.password.value = "";
    enterConsole(result.agent);
  });

  ui.logout.addEventListener("click", () => signOut("You are signed out."));

  /** Signs out everywhere (the desk revokes every session of this agent). */
  async function signOut(message) {
    flushNotes();
    loggingOut = true;
    if (call && socket) socket.send({ type: "hangup", call_id: call.callId });
    endCallLocally();
    hideOffer();
    if (socket) socket.close(1000, "bye");
    socket = null;
    releaseMedia();
    stopRenewing();
    try {
      await fetch("/api/logout", { method: "POST", headers: { Accept: "application/json" } });
    } catch (_) {
      /* the cookie expires on its own */
    }
    loggingOut = false;
    state.agent = null;
    wantedStatus = null;
    setStatus("offline");
    notify("");
    showLogin(message);
  }

  /** The desk ended the session (expired, revoked): back to the sign-in form. */
  function sessionEnded(message) {
    endCallLocally();
    hideOffer();
    releaseMedia();
    stopRenewing();
    if (socket) socket.close(1000, "bye");
    socket = null;
    state.agent = null;
    wantedStatus = null;
    setStatus("offline");
    showLogin(message);
  }

  /* --------------------------------------------------------- session */

  const RENEW_RETRY_MS = 10000;
  let renewTimer = null;
  let idleTimer = null;
  let idleSignoutS = 0;
  let lastInput = Date.now();

  /**
   * A sliding session: renewed a third of its lifetime at a time while the console is open,
   * so a whole shift never meets the sign-in form. The desk extends every socket of the
   * session with it.
   */
  async function renewSession() {
    clearTimeout(renewTimer);
    if (!state.agent) return;
    let res;
    try {
      res = await fetch("/api/session", {
        method: "POST",
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (_) {
      res = null;
    }
    if (!state.agent) return;
    if (res && res.status === 401) {
      sessionEnded("Your session has ended. Please sign in again.");
      return;
    }
    let ttl = 0;
    if (res && res.ok) ttl = Number((await res.json().catch(() => ({}))).ttl_s) || 0;
    renewTimer = setTimeout(renewSession, ttl ? Math.max(2000, (ttl * 1000) / 3) : RENEW_RETRY_MS);
  }

  function stopRenewing() {
    clearTimeout(renewTimer);
    clearInterval(idleTimer);
    renewTimer = idleTimer = null;
  }

  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => (lastInput = Date.now()), { capture: true, passive: true });
  }

  /** Signs out a console left alone (never in a call, an offer or a wrap-up). */
  function checkIdle() {
    if (!idleSignoutS || !state.agent || call || offer) return;
    if (["in_call", "wrap_up", "offered"].includes(state.status)) return;
    if (Date.now() - lastInput < idleSignoutS * 1000) return;
    const minutes = Math.max(1, Math.round(idleSignoutS / 60));
    signOut(`You were signed out after ${HD.plural(minutes, "minute")} without activity.`);
  }

  function watchIdle(seconds) {
    idleSignoutS = Number(seconds) > 0 ? Number(seconds) : 0;
    clearInterval(idleTimer);
    if (idleSignoutS) idleTimer = setInterval(checkIdle, Math.min(15000, (idleSignoutS * 1000) / 4));
  }

  /* --------------------------------------------------------- console */

  function enterConsole(agent) {
    state.agent = agent || null;
    lastInput = Date.now();
    renewSession();
    renderAgent(agent);
    setPhase("idle");
    showOnly("console");
    ui.replaced.hidden = true;
    setStatus("offline");
    mediaReady = startMedia();
    connect();
  }

  function renderAgent(agent) {
    if (!agent) return;
    ui.name.textContent = agent.display_name || agent.name || "";
    for (const q of agent.queues || []) queueRow(q);
  }

  // Audio may only start after a gesture; a page restored from a cookie has had none yet.
  document.addEventListener("pointerdown", () => HD.sound.unlock(), { once: true, capture: true });
  document.addEventListener("keydown", () => HD.sound.unlock(), { once: true, capture: true });

  async function startMedia() {
    ui.retryMedia.disabled = true;
    HD.stopStream(media.stream);
    media = await HD.getLocalMedia();
    if (state.phase === "login") {
      HD.stopStream(media.stream); // signed out while the browser asked
      return;
    }
    ui.local.srcObject = media.stream && !media.audioOnly ? media.stream : null;
    const problem = HD.describeMediaProblem(media, "the visitor");
    ui.deviceMessage.textContent = problem;
    ui.deviceNotice.hidden = !problem;
    ui.retryMedia.disabled = false;
    controls.reset();
    renderLocalVideo(controls.current());
  }

  function renderLocalVideo(current) {
    ui.noVideo.hidden = !current.camera_off;
    ui.local.hidden = current.camera_off;
    ui.stage.classList.toggle("no-local-video", current.camera_off);
  }

  function releaseMedia() {
    HD.stopStream(media.stream);
    media = { stream: null, audioOnly: true, problem: null };
    ui.local.srcObject = null;
    controls.sync();
    renderLocalVideo(controls.current());
  }

  const controls = HD.mediaControls({
    muteButton: ui.mute,
    cameraButton: ui.camera,
    getStream: () => media.stream,
    onChange(current) {
      renderLocalVideo(current);
      if (call && socket) socket.send({ type: "media", ...current });
    },
  });

  ui.retryMedia.addEventListener("click", () => {
    mediaReady = startMedia();
  });

  /* ---------------------------------------------------------- status */

  /**
   * Shows a status. `msg` is the desk's own status message; without it (welcome, a local
   * Offline while reconnecting) the wrap-up and the notes are left as they are.
   */
  function setStatus(status, reason, msg) {
    state.status = status;
    ui.status.dataset.status = status;
    body.dataset.status = status;
    ui.status.textContent = STATUS_TEXT[status] || status;
    const busy = status === "in_call";
    ui.available.setAttribute("aria-pressed", String(status === "available" || status === "offered"));
    ui.brk.setAttribute("aria-pressed", String(status === "break"));
    ui.offline.setAttribute("aria-pressed", String(status === "offline"));
    // The desk refuses status changes during a call (hang up first).
    for (const b of [ui.available, ui.brk, ui.offline]) b.disabled = busy;
    // Why the desk put us on Break stays on screen until the agent is taking visitors again.
    if (status === "break") state.breakReason = reason || null;
    else if (status !== "offline") state.breakReason = null;
    renderBreakReason();
    if (reason && status !== "break") notify(reason);
    if ((status === "offline" || status === "break") && offer) hideOffer();
    if (msg) {
      // After a call the desk holds the agent in wrap-up for a while (no offers); any status
      // choice ends it, so Available stays a live button.
      renderWrapup(status, msg);
      if (status === "wrap_up" && msg.call_id) openNotes(String(msg.call_id));
      else if (status !== "in_call" && status !== "wrap_up" && !call) closeNotes();
    } else if (status !== "wrap_up") {
      renderWrapup(status, null);
    }
    if (!call) renderIdleTitle();
  }

  function renderBreakReason() {
    ui.breakReasonText.textContent = state.breakReason ? state.breakReason.replace(/\.?$/, ".") : "";
    ui.breakReason.hidden = !state.breakReason;
  }

  function requestStatus(status) {
    HD.sound.unlock();
    flushNotes(); // a status change may end the wrap-up: the notes go first
    wantedStatus = status;
    if (!socket || !socket.send({ type: "status", status })) {
      notify("Not connected to the desk yet. Your status will be set when the connection is back.", true);
    }
  }

  ui.available.addEventListener("click", () => requestStatus("available"));
  ui.brk.addEventListener("click", () => requestStatus("break"));
  ui.offline.addEventListener("click", () => requestStatus("offline"));

  /* ---------------------------------------------------------- queues */

  function queueRow(name) {
    let count = ui.queues.querySelector(`[data-queue="${CSS.escape(name)}"] .queue-count`);
    if (count) return count;
    const li = document.createElement("li");
    li.className = "queue-row";
    li.dataset.queue = name;
    const label = document.createElement("span");
    label.className = "queue-name";
    label.textContent = name;
    label.id = "queue-label-" + ui.queues.children.length;
    count = document.createElement("span");
    count.className = "queue-count";
    count.dataset.testid = "queue-waiting-" + name;
    count.setAttribute("aria-labelledby", label.id);
    count.textContent = "–";
    const sub = document.createElement("span");
    sub.className = "queue-sub";
    sub.textContent = "waiting";
    li.append(label, count, sub);
    ui.queues.append(li);
    return count;
  }

  function renderQueues(queues) {
    if (!queues || typeof queues !== "object") return;
    state.queues = queues;
    for (const [name, info] of Object.entries(queues)) {
      const count = queueRow(name);
      const waiting = Number(info && info.waiting) || 0;
      count.textContent = String(waiting);
      count.dataset.waiting = String(waiting);
      const available = Number(info && info.agents_available) || 0;
      count.nextElementSibling.textContent = `waiting · ${HD.plural(available, "agent")} available`;
      count.parentElement.classList.toggle("has-waiting", waiting > 0);
    }
  }

  /* ---------------------------------------------------------- socket */

  function connect() {
    if (socket) socket.close();
    ui.replaced.hidden = true;
    setConnection("connecting");
    socket = new HD.DeskSocket("/ws/agent", { onMessage, onClose, onRetry: () => setConnection("reconnecting") });
    socket.open();
  }

  function setConnection(which) {
    state.connected = which === "connected";
    ui.connection.dataset.state = which;
    ui.connection.textContent = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      disconnected: "Disconnected",
    }[which];
  }

  const UNAVAILABLE_TEXT = "The desk is having trouble reaching its database.";
  const SESSION_END_TEXT = {
    session_expired: "Your session has ended. Please sign in again.",
    signed_out: "You signed out in another window.",
    account_removed: "Your account was removed. Ask a supervisor if this is a mistake.",
    account_disabled: "Your account was disabled. Ask a supervisor if this is a mistake.",
    password_changed: "Your password was changed. Sign in with the new one.",
    account_changed: "Your account was changed (queues, name or role). Please sign in again.",
  };

  async function onClose({ code, reason, opened }) {
    if (loggingOut) return false;
    if (!disconnectedAt) disconnectedAt = Date.now();
    setConnection("reconnecting");
    hideOffer(); // the desk withdraws it when our lease lapses
    if (!call) setStatus("offline");
    if (code === 4009) {
      endCallLocally();
      hideOffer();
      setConnection("disconnected");
      setPhase("replaced");
      releaseMedia(); // the camera belongs to the window now in use
      ui.replaced.hidden = false;
      return false;
    }
    if (code === 4401 || code === 4403) {
      sessionEnded(SESSION_END_TEXT[reason] || SESSION_END_TEXT.session_expired);
      return false;
    }
    if (code === 1008) {
      notify("The desk closed the connection after too many errors. Reconnecting…", true);
    }
    if (code === 1013) notify(UNAVAILABLE_TEXT + " Reconnecting…", true);
    if (!opened) {
      // The upgrade itself was refused: most often the session cookie has expired.
      try {
        const agent = await fetchMe();
        if (!agent) {
          sessionEnded(SESSION_END_TEXT.session_expired);
          return false;
        }
      } catch (_) {
        /* the desk is unreachable: keep trying */
      }
    }
    return true;
  }

  ui.reconnect.addEventListener("click", () => {
    setPhase("idle");
    mediaReady = startMedia();
    connect();
  });

  function onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        onWelcome(msg);
        break;
      case "status":
        setStatus(msg.status, msg.reason, msg);
        break;
      case "queues":
        renderQueues(msg.queues);
        break;
      case "offer":
        showOffer(msg);
        break;
      case "offer_cancelled":
        // After our own decline the card is already gone and there is nothing to say.
        if (offer && msg.offer_id === offer.id) {
          hideOffer();
          notify(OFFER_CANCELLED_TEXT[msg.reason] || "The offer was withdrawn.");
        }
        break;
      case "call_started":
        startCall(msg);
        break;
      case "signal":
        if (call && msg.call_id === call.callId) call.handleSignal(msg);
        break;
      case "peer_media":
        if (call && msg.call_id === call.callId) showPeerMedia(msg);
        break;
      case "call_ended":
        if (call && msg.call_id === call.callId) onCallEnded(msg);
        break;
      case "notes_saved":
        onNotesSaved(msg);
        break;
      case "notes_restored":
        restoreNotes(msg);
        break;
      case "desk_queues":
        if (Array.isArray(msg.queues)) {
          state.deskQueues = msg.queues.filter((q) => typeof q === "string" && q);
          if (call) renderTransfer(state.callQueue);
        }
        break;
      case "callbacks":
        onCallbacksPage(msg);
        break;
      case "callback_added":
        onCallbackAdded(msg.item);
        break;
      case "callback_closed":
        onCallbackClosed(msg.id);
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
    welcomes += 1;
    lastWelcomeAt = Date.now();
    iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    iceTransportPolicy = msg.ice_transport_policy === "relay" ? "relay" : "all";
    watchIdle(msg.session && msg.session.idle_signout_s);
    setConnection("connected");
    if (msg.agent) {
      state.agent = msg.agent;
      renderAgent(msg.agent);
    }
    if (Array.isArray(msg.desk_queues)) {
      state.deskQueues = msg.desk_queues.filter((q) => typeof q === "string" && q);
      if (call) renderTransfer(state.callQueue);
    }
    const status = msg.status || "offline";
    setStatus(status);
    if (ui.notice.textContent.endsWith("Reconnecting…")) notify("");
    // After a short drop, put the agent back in the state they chose (the desk's lease made them Offline).
    const shortDrop = disconnectedAt && Date.now() - disconnectedAt < 60000;
    if (welcomes > 1 && shortDrop && status === "offline" && wantedStatus && wantedStatus !== "offline") {
      socket.send({ type: "status", status: wantedStatus });
    }
    disconnectedAt = 0;
    if (call && status !== "in_call") {
      endCallLocally();
      idleView("The call ended while you were disconnected.");
    }
  }

  let statusRetry = null;

  function onServerError(msg) {
    if (msg.code === "unavailable") {
      // Redis is down for a moment: say so, and send a status change again by itself.
      notify(UNAVAILABLE_TEXT + " Trying again…", true);
      if (msg.in_reply_to === "status" && wantedStatus) {
        clearTimeout(statusRetry);
        statusRetry = setTimeout(() => {
          if (socket && wantedStatus) socket.send({ type: "status", status: wantedStatus });
        }, 1000 * (Number(msg.retry_after_s) || 2));
        return;
      }
    } else if (msg.code === "rate_limited") {
      notify("Slow down: the desk refused that because too many messages came at once.");
    }
    if (msg.code === "stale_offer") {
      hideOffer();
      notify("That visitor is no longer waiting for you.");
      return;
    }
    if (msg.in_reply_to === "notes") {
      notes.sent.shift();
      notes.dirty = true;
      setNotesState("error", "Not saved");
      notify(`Your notes were not saved: ${msg.message || msg.code}`);
      return;
    }
    if (msg.in_reply_to === "transfer") {
      ui.transferQueue.disabled = false;
      ui.transferSubmit.disabled = !ui.transferQueue.value;
      notify(`The transfer did not go through: ${msg.message || msg.code}`);
      return;
    }
    if (msg.in_reply_to === "wrapup") {
      ui.wrapupExtend.disabled = false;
      ui.wrapupDone.disabled = false;
    }
    if (msg.in_reply_to === "close_callback") {
      renderCallbacks(); // buttons back on
      notify("That call-back request was already closed.");
      return;
    }
    notify(msg.message || `The desk refused that (${msg.code}).`);
    if ((msg.in_reply_to === "accept" || msg.in_reply_to === "decline") && offer) {
      ui.accept.disabled = false;
      ui.decline.disabled = false;
    }
  }

  /* ----------------------------------------------------------- offer */

  function showOffer(msg) {
    const now = performance.now();
    const timeout = Math.max(0, Number(msg.timeout_ms) || 20000);
    offer = { id: msg.offer_id, received: now, deadline: now + timeout, timeout, waited: Number(msg.waited_seconds) || 0 };
    state.offerId = msg.offer_id;
    const v = msg.visitor || {};
    const priority = Number(v.priority) || 0;
    ui.offerPriority.textContent = priority > 0 ? `Priority ${priority}` : "";
    ui.offerPriority.hidden = priority <= 0;
    ui.offerTransferred.textContent = v.transferred_from ? `Transferred from ${v.transferred_from}` : "";
    ui.offerTransferred.hidden = !v.transferred_from;
    ui.offerBadges.hidden = ui.offerPriority.hidden && ui.offerTransferred.hidden;
    ui.offerName.textContent = v.name || "A visitor";
    ui.offerTopic.textContent = v.topic || "No topic given";
    ui.offerTopic.classList.toggle("muted", !v.topic);
    ui.offerQueue.textContent = msg.queue || "";
    ui.offerAudioOnly.hidden = !v.audio_only;
    ui.offerPage.textContent = v.page || "";
    ui.offerPageRow.hidden = !v.page;
    ui.accept.disabled = false;
    ui.decline.disabled = false;
    ui.offer.hidden = false;
    setPhase("offered");
    document.title = "Incoming visitor · " + BASE_TITLE;
    notify("");
    HD.sound.chime();
    tickOffer();
    clearInterval(offerTimer);
    offerTimer = setInterval(tickOffer, 250);
  }

  function tickOffer() {
    if (!offer) return;
    const now = performance.now();
    const left = Math.max(0, offer.deadline - now);
    ui.offerCountdown.textContent = left > 0 ? `Answer within ${Math.ceil(left / 1000)} s` : "Time is up";
    ui.offerCountdown.dataset.remainingMs = String(Math.round(left));
    ui.offerBar.style.width = (offer.timeout ? (100 * left) / offer.timeout : 0) + "%";
    ui.offerWaited.textContent = HD.formatClock(offer.waited + (now - offer.received) / 1000);
    // The desk should cancel expired offers; if its word never comes, don't leave a dead card up.
    if (left === 0 && now - offer.deadline > 3000) {
      hideOffer();
      notify(OFFER_CANCELLED_TEXT.timeout);
    }
  }

  function hideOffer() {
    clearInterval(offerTimer);
    offer = null;
    state.offerId = null;
    ui.offer.hidden = true;
    document.title = BASE_TITLE;
    if (state.phase === "offered") setPhase("idle");
  }

  ui.accept.addEventListener("click", () => {
    if (!offer) return;
    HD.sound.unlock();
    ui.accept.disabled = true;
    ui.decline.disabled = true;
    if (!socket || !socket.send({ type: "accept", offer_id: offer.id })) {
      notify("Not connected to the desk. Try again in a moment.");
      ui.accept.disabled = false;
      ui.decline.disabled = false;
    }
  });

  ui.decline.addEventListener("click", () => {
    if (!offer) return;
    ui.accept.disabled = true;
    ui.decline.disabled = true;
    if (socket && socket.send({ type: "decline", offer_id: offer.id })) hideOffer();
    else {
      notify("Not connected to the desk. Try again in a moment.");
      ui.accept.disabled = false;
      ui.decline.disabled = false;
    }
  });

  /* ------------------------------------------------------------ call */

  function startCall(msg) {
    if (call && call.callId === msg.call_id) {
      // A replay right after our own reconnect: the media path may still be fine.
      const ownReplay = welcomes > 1 && Date.now() - lastWelcomeAt < 5000;
      if (ownReplay && call.isAlive()) return;
      call.restart(); // the visitor came back with a new connection: negotiate again
      return;
    }
    if (call) endCallLocally();
    hideOffer();
    callPeer = msg.peer || {};
    lastPeerName = callPeer.name || "";
    state.callId = msg.call_id;
    state.callQueue = typeof msg.queue === "string" ? msg.queue : null;
    openNotes(String(msg.call_id));
    ui.callTitle.textContent = callPeer.name ? `Call with ${callPeer.name}` : "Call with a visitor";
    ui.callTopic.textContent = callPeer.topic || "";
    ui.peerMedia.hidden = true;
    ui.stage.classList.add("is-call");
    ui.idleCaption.hidden = true;
    ui.hangup.hidden = false;
    ui.retryMedia.hidden = true;
    setPhase("call-connecting");
    notify("Connecting…", true);
    const callId = msg.call_id;
    call = new HD.PeerCall({
      callId,
      role: msg.role === "answerer" ? "answerer" : "offerer",
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
      onSlow: () => notify("Still connecting to the visitor. One of the networks may be blocking video calls.", true),
      onPeer: (pc) => {
        window.hdPeer = pc;
      },
    });
    call.start();
    renderTransfer(state.callQueue);
    mediaReady.then(() => {
      if (call && call.callId === callId && socket) {
        controls.sync();
        socket.send({ type: "media", ...controls.current() });
      }
    });
  }

  function onPeerState(connection) {
    if (connection === "connected") {
      notify("");
      if (state.phase !== "in-call") {
        setPhase("in-call");
        startTimer();
      }
    } else if (connection === "disconnected" || connection === "failed") {
      notify("The connection to the visitor is unstable. Trying to reconnect…", true);
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
    const parts = [];
    if (msg.muted) parts.push("Visitor muted their microphone");
    if (msg.camera_off) parts.push("Visitor's camera is off");
    ui.peerMedia.textContent = parts.join(". ");
    ui.peerMedia.hidden = parts.length === 0;
    ui.stage.classList.toggle("peer-camera-off", !!msg.camera_off);
  }

  function endCallLocally() {
    if (call) call.close();
    call = null;
    window.hdPeer = null;
    state.callId = null;
    clearInterval(callTimer);
    ui.timer.hidden = true;
    ui.sound.hidden = true;
    ui.peerMedia.hidden = true;
    ui.hangup.hidden = true;
    ui.retryMedia.hidden = false;
    ui.remote.srcObject = null;
    ui.stage.classList.remove("is-call", "peer-camera-off");
    ui.idleCaption.hidden = false;
    ui.transfer.hidden = true;
    state.callQueue = null;
  }

  function renderIdleTitle() {
    if (state.status === "wrap_up") {
      ui.callTitle.textContent = lastPeerName ? `Wrap-up after your call with ${lastPeerName}` : "Wrap-up after the call";
      ui.callTopic.textContent =
        "Add your notes and the outcome. The next visitor comes when the wrap-up ends, or press Done.";
      return;
    }
    ui.callTitle.textContent =
      state.status === "available" || state.status === "offered"
        ? "Waiting for the next visitor"
        : "No call. Choose Available to take visitors";
    ui.callTopic.textContent = "";
  }

  function idleView(message) {
    const name = (callPeer && callPeer.name) || "the visitor";
    callPeer = null;
    renderIdleTitle();
    if (state.phase !== "replaced" && state.phase !== "login") setPhase("idle");
    notify(message.replace("{name}", name));
  }

  const END_TEXT = {
    hangup: { visitor: "{name} hung up.", agent: "You ended the call.", desk: "The desk ended the call." },
    peer_left: "The connection to {name} was lost.",
    agent_offline: "The call ended because you went offline.",
  };

  function onCallEnded(msg) {
    const entry = END_TEXT[msg.reason];
    let text = typeof entry === "string" ? entry : (entry && entry[msg.by]) || "The call has ended.";
    if (msg.reason === "transferred") text = `You passed {name} to the ${msg.queue || "other"} line.`;
    flushNotes();
    endCallLocally();
    idleView(text);
  }

  ui.hangup.addEventListener("click", () => {
    if (!call) return;
    flushNotes();
    if (socket) socket.send({ type: "hangup", call_id: call.callId });
    endCallLocally();
    idleView("You ended the call.");
  });

  ui.sound.addEventListener("click", () => {
    ui.remote.muted = false;
    ui.remote.play().catch(() => {});
    ui.sound.hidden = true;
  });

  /* --------------------------------------------------------- wrap-up */

  function renderWrapup(status, msg) {
    clearInterval(wrapupTimer);
    if (status !== "wrap_up") {
      wrapupUntil = 0;
      wrapupTotal = 0;
      ui.wrapup.hidden = true;
      return;
    }
    const remaining = Number(msg && msg.remaining_ms);
    if (Number.isFinite(remaining)) {
      const left = wrapupUntil ? wrapupUntil - performance.now() : 0;
      if (!wrapupTotal || remaining > left + 500) wrapupTotal = Math.max(remaining, 1); // new, or extended
      wrapupUntil = performance.now() + Math.max(0, remaining);
    }
    ui.wrapupAfter.textContent = lastPeerName ? `After your call with ${lastPeerName}` : "After your call";
    ui.wrapupExtend.disabled = false;
    ui.wrapupDone.disabled = false;
    ui.wrapup.hidden = false;
    tickWrapup();
    wrapupTimer = setInterval(tickWrapup, 250);
  }

  function tickWrapup() {
    if (!wrapupUntil) {
      ui.wrapupClock.textContent = "–:––";
      ui.wrapupText.textContent = "Next visitor when the wrap-up ends";
      return;
    }
    const left = Math.max(0, wrapupUntil - performance.now());
    const seconds = Math.ceil(left / 1000);
    ui.wrapup.dataset.remainingMs = String(Math.round(left));
    ui.wrapupClock.textContent = HD.formatClock(seconds);
    ui.wrapupText.textContent =
      left > 0 ? `Next visitor in ${seconds < 60 ? seconds + " s" : HD.formatClock(seconds)}` : "Ready for the next visitor…";
    ui.wrapupBar.style.width = (wrapupTotal ? Math.min(100, (100 * left) / wrapupTotal) : 0) + "%";
    if (left === 0) clearInterval(wrapupTimer); // the desk makes us Available and says so
  }

  function sendWrapup(action) {
    if (state.status !== "wrap_up") return;
    if (action === "done") flushNotes();
    if (socket && socket.send({ type: "wrapup", action })) {
      ui.wrapupExtend.disabled = true;
      ui.wrapupDone.disabled = true; // back on with the desk's next status
    } else {
      notify("Not connected to the desk. Try again in a moment.");
    }
  }

  ui.wrapupExtend.addEventListener("click", () => sendWrapup("extend"));
  ui.wrapupDone.addEventListener("click", () => sendWrapup("done"));

  /* ----------------------------------------------------------- notes */

  /** Shows the notes of `callId`, starting clean for a call other than the one on screen. */
  function openNotes(callId) {
    if (notes.callId !== callId) {
      flushNotes();
      notes.callId = callId;
      notes.dirty = false;
      notes.edits = 0;
      notes.sent = [];
      ui.notes.value = "";
      ui.disposition.value = "";
      setNotesState("", "");
    } else if (notes.dirty) {
      saveNotes(); // e.g. typed while the connection was down
    }
    ui.notesCard.hidden = false;
  }

  /** Saves what is left and clears the notes for the next call. */
  function closeNotes() {
    flushNotes();
    notes.callId = null;
    notes.dirty = false;
    notes.sent = [];
    ui.notes.value = "";
    ui.disposition.value = "";
    setNotesState("", "");
    ui.notesCard.hidden = true;
  }

  function flushNotes() {
    clearTimeout(notes.timer);
    if (notes.callId && notes.dirty) saveNotes();
  }

  function setNotesState(which, text) {
    ui.notesStatus.dataset.state = which;
    ui.notesStatus.textContent = text;
  }

  function notesEdited(now) {
    if (!notes.callId) return;
    notes.dirty = true;
    notes.edits += 1;
    clearTimeout(notes.timer);
    if (now) saveNotes();
    else {
      setNotesState("editing", "Editing…");
      notes.timer = setTimeout(saveNotes, 1000);
    }
  }

  function saveNotes() {
    clearTimeout(notes.timer);
    if (!notes.callId) return;
    const msg = {
      type: "notes",
      call_id: notes.callId,
      notes: HD.clip(ui.notes.value, 5000),
      disposition: HD.clip(ui.disposition.value, 64),
    };
    if (!socket || !socket.send(msg)) {
      setNotesState("error", "Not saved yet: offline"); // stays dirty: saved once we are back
      return;
    }
    notes.dirty = false;
    notes.sent.push(notes.edits);
    setNotesState("saving", "Saving…");
  }

  function onNotesSaved(msg) {
    const edits = notes.sent.shift();
    if (msg.call_id !== notes.callId || edits === undefined) return;
    if (!notes.dirty && edits === notes.edits) setNotesState("saved", "Saved");
  }

  /** After a reload in a call or its wrap-up: the notes the desk saved, unless typed since. */
  function restoreNotes(msg) {
    if (typeof msg.call_id !== "string" || !msg.call_id) return;
    openNotes(msg.call_id);
    if (notes.dirty || notes.edits > 0) return;
    ui.notes.value = typeof msg.notes === "string" ? msg.notes : "";
    ui.disposition.value = typeof msg.disposition === "string" ? msg.disposition : "";
    setNotesState("saved", "Saved");
  }

  ui.notes.addEventListener("input", () => notesEdited(false));
  ui.notes.addEventListener("blur", flushNotes);
  ui.disposition.addEventListener("change", () => notesEdited(true));

  /* -------------------------------------------------------- transfer */

  function renderTransfer(queue) {
    const others = state.deskQueues.filter((q) => q !== queue);
    const placeholder = new Option("Choose a line…", "");
    ui.transferQueue.replaceChildren(placeholder, ...others.map((q) => new Option(q, q)));
    ui.transferQueue.disabled = false;
    ui.transferSubmit.disabled = true;
    ui.transfer.hidden = others.length === 0 || !call;
  }

  ui.transferQueue.addEventListener("change", () => {
    ui.transferSubmit.disabled = !ui.transferQueue.value;
  });

  ui.transfer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const queue = ui.transferQueue.value;
    if (!call || !queue) return;
    flushNotes();
    if (socket && socket.send({ type: "transfer", call_id: call.callId, queue })) {
      ui.transferQueue.disabled = true;
      ui.transferSubmit.disabled = true;
      notify(`Transferring to ${queue}…`, true);
    } else {
      notify("Not connected to the desk. Try again in a moment.");
    }
  });

  /* ------------------------------------------------------- callbacks */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // visitor text is text, never HTML
    return node;
  }

  /** "14:05", or "Mon 14:05" for an earlier day (desk clock, Unix ms). */
  function formatWhen(ms) {
    const when = new Date(Number(ms));
    if (!Number.isFinite(when.getTime())) return "";
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (when.toDateString() === new Date().toDateString()) return time;
    return when.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" }) + " " + time;
  }

  function formatDuration(ms) {
    const minutes = Math.round(Number(ms) / 60000);
    if (!Number.isFinite(minutes)) return "";
    if (minutes < 1) return "under a minute";
    if (minutes < 90) return HD.plural(minutes, "minute");
    return HD.plural(Math.round(minutes / 60), "hour");
  }

  /** A page of open requests: the first (after a connect) replaces the list. */
  function onCallbacksPage(msg) {
    if (!Array.isArray(msg.items)) return;
    const first = !msg.offset;
    const items = msg.items.filter((item) => item && typeof item === "object" && item.id !== undefined);
    const known = first ? [] : state.callbacks;
    const ids = new Set(known.map((item) => String(item.id)));
    state.callbacks = known.concat(items.filter((item) => !ids.has(String(item.id))));
    callbacksPaged = (first ? 0 : callbacksPaged) + items.length;
    state.callbacksTotal = Math.max(Number(msg.total) || 0, state.callbacks.length);
    const fresh = first && callbacksSeen ? items.filter((item) => !callbacksSeen.has(String(item.id))) : [];
    renderCallbacks();
    announceCallbacks(fresh);
  }

  function onCallbackAdded(item) {
    if (!item || typeof item !== "object" || item.id === undefined) return;
    if (state.callbacks.some((c) => String(c.id) === String(item.id))) return;
    state.callbacks.push(item);
    state.callbacksTotal += 1;
    renderCallbacks();
    announceCallbacks([item]);
  }

  function onCallbackClosed(id) {
    const index = state.callbacks.findIndex((c) => String(c.id) === String(id));
    if (index >= 0) {
      state.callbacks.splice(index, 1);
      if (index < callbacksPaged) callbacksPaged -= 1; // the pages behind it move up one
    }
    state.callbacksTotal = Math.max(state.callbacks.length, state.callbacksTotal - 1);
    renderCallbacks();
  }

  function announceCallbacks(fresh) {
    if (fresh.length === 1) notify(`New call-back request from ${fresh[0].name || "a visitor"}.`);
    else if (fresh.length > 1) notify(`${fresh.length} new call-back requests.`);
  }

  function renderCallbacks() {
    const list = state.callbacks.sort((a, b) => (Number(a.created) || 0) - (Number(b.created) || 0));
    callbacksSeen = new Set(list.map((item) => String(item.id)));
    const total = state.callbacksTotal;
    ui.callbackList.replaceChildren(...list.map(callbackItem));
    ui.callbacksEmpty.hidden = total > 0;
    ui.callbacksCount.hidden = total === 0;
    ui.callbacksCount.textContent = String(total);
    ui.callbacksCount.dataset.count = String(total);
    const more = total - list.length;
    ui.callbacksMore.hidden = more <= 0;
    ui.callbacksMore.disabled = false;
    ui.callbacksMore.textContent = `Show ${Math.min(more, 50)} more of ${more}`;
  }

  ui.callbacksMore.addEventListener("click", () => {
    ui.callbacksMore.disabled = true;
    if (!socket || !socket.send({ type: "callbacks", offset: callbacksPaged })) {
      ui.callbacksMore.disabled = false;
      notify("Not connected to the desk. Try again in a moment.");
    }
  });

  function callbackItem(item) {
    const id = String(item.id);
    const name = String(item.name || "A visitor");
    const li = el("li", "callback-item");
    li.dataset.testid = "agent-callback";
    li.dataset.callbackId = id;
    const head = el("div", "callback-item-head");
    const when = el("time", "callback-time", formatWhen(item.created));
    const created = new Date(Number(item.created));
    if (Number.isFinite(created.getTime())) {
      when.dateTime = created.toISOString();
      when.title = created.toLocaleString();
    }
    head.append(el("span", "callback-name", name), when);
    const contact = el("p", "callback-contact", String(item.contact || ""));
    contact.dataset.testid = "agent-callback-contact";
    const facts = [item.queue ? `${item.queue} line` : ""];
    if (Number(item.waited_ms) > 0) facts.push(`waited ${formatDuration(item.waited_ms)} first`);
    li.append(head, contact);
    if (item.note) li.append(el("p", "callback-note", String(item.note)));
    const foot = el("div", "callback-item-foot");
    const done = el("button", "button small secondary", "Done");
    done.type = "button";
    done.dataset.testid = "agent-callback-done";
    done.setAttribute("aria-label", `Done: called ${name} back`);
    done.addEventListener("click", () => {
      done.disabled = true;
      if (!socket || !socket.send({ type: "close_callback", id, outcome: "called back" })) {
        done.disabled = false;
        notify("Not connected to the desk. Try again in a moment.");
      }
    });
    foot.append(el("span", "callback-meta", facts.filter(Boolean).join(" · ")), done);
    li.append(foot);
    return li;
  }

  /* ----------------------------------------------------------- start */

  fetchMe()
    .then((agent) => (agent ? enterConsole(agent) : showLogin()))
    .catch(() => showLogin("Cannot reach the desk right now. You can still try to sign in."));
})();
