/* humandesk visitor panel: device check, the line, the call. Needs common.js. */
"use strict";

(function () {
  const HD = window.HD;
  const $ = HD.$;
  const body = document.body;
  const QUEUE = body.dataset.queue || "support";
  const HOST = body.dataset.hostOrigin || "";
  const EMBEDDED = !!HOST && window.parent !== window;
  const TICKET_KEY = "hd-ticket-" + QUEUE;

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
    form: $("hd-join-form"),
    name: $("hd-name"),
    topic: $("hd-topic"),
    join: $("hd-join"),
    position: $("hd-position"),
    eta: $("hd-eta"),
    leave: $("hd-leave"),
    mute: $("hd-mute"),
    camera: $("hd-camera"),
    hangup: $("hd-hangup"),
    endedMessage: $("hd-ended-message"),
    again: $("hd-again"),
    close: $("hd-close"),
    minimize: $("hd-minimize"),
    error: $("hd-error"),
    views: document.querySelectorAll("[data-view]"),
  };

  const PHASES = {
    checking: { text: "Checking camera and microphone…", view: "form" },
    ready: { text: "Ready to join", view: "form" },
    connecting: { text: "Connecting…", view: "waiting" },
    waiting: { text: "Waiting in line", view: "waiting" },
    "call-connecting": { text: "Connecting call…", view: "call" },
    "in-call": { text: "In call", view: "call" },
    ended: { text: "Call ended", view: "ended" },
    left: { text: "You left the line", view: "ended" },
    error: { text: "Something went wrong", view: "ended" },
  };
  const LIVE_PHASES = new Set(["connecting", "waiting", "call-connecting", "in-call"]);
  const OVER_PHASES = new Set(["ended", "left", "error"]);

  const state = (window.hdState = {
    phase: "checking",
    position: null,
    eta: null,
    callId: null,
    audioOnly: false,
  });
  window.hdPeer = null;

  let media = { stream: null, audioOnly: true, problem: null };
  let mediaReady = Promise.resolve();
  let socket = null;
  let iceServers = [];
  let iceTransportPolicy = "all";
  let pendingJoin = null;
  let call = null;
  let peerName = "";
  let callTimer = null;
  let fallbackTimer = null;
  let neverWelcomed = 0;
  let devicesChecked = false;
  let deviceCheck = null; // the device check in flight

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
    if (data.type === "open") focusPrimary();
    else if (data.type === "restore") {
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
      waiting: ui.leave,
      "in-call": ui.mute,
      "call-connecting": ui.hangup,
      ended: ui.again,
      left: ui.again,
      error: ui.again,
    }[state.phase];
    if (target && !target.hidden) target.focus();
  }

  /* ----------------------------------------------------------- phases */

  function setPhase(phase, statusText) {
    const changed = phase !== state.phase;
    state.phase = phase;
    body.dataset.phase = phase;
    ui.status.dataset.phase = phase;
    ui.status.textContent = statusText || PHASES[phase].text;
    const view = PHASES[phase].view;
    for (const section of ui.views) section.hidden = section.dataset.view !== view;
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

  /* ----------------------------------------------------------- devices */

  async function checkDevices() {
    ui.retryMedia.disabled = true;
    ui.join.disabled = true;
    HD.stopStream(media.stream);
    ui.local.srcObject = null;
    media = await HD.getLocalMedia();
    if (OVER_PHASES.has(state.phase)) {
      releaseMedia(); // the conversation ended while the browser was asking
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
    if (devicesChecked) {
      setPhase("ready");
      return;
    }
    setPhase("checking");
    recheckDevices();
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
    neverWelcomed = 0;
    socket = new HD.DeskSocket("/ws/visitor", { onMessage, onClose, onRetry });
    socket.open();
  }

  function disconnect() {
    if (socket) socket.close(1000, "bye");
    socket = null;
  }

  function onRetry() {
    if (state.phase === "waiting" || state.phase === "in-call" || state.phase === "call-connecting") {
      setNotice("Connection lost. Reconnecting…");
    }
  }

  function onClose({ code, opened }) {
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
    if (!LIVE_PHASES.has(state.phase)) return false;
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
        if (msg.call_id === state.callId) onCallEnded(msg);
        else if (!call && state.phase === "ended") disconnect(); // our own hangup, confirmed
        break;
      case "left":
        ticketStore.drop();
        clearTimeout(fallbackTimer);
        disconnect();
        showEnded("left", "You left the line. You can join again at any time.");
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
    iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    iceTransportPolicy = msg.ice_transport_policy === "relay" ? "relay" : "all";
    setNotice("");
    const ticket = ticketStore.get();
    if (ticket) socket.send({ type: "resume", ticket });
    else if (pendingJoin) socket.send(pendingJoin);
  }

  function onQueued(msg) {
    if (typeof msg.ticket === "string" && msg.ticket) ticketStore.set(msg.ticket);
    const answersJoin = pendingJoin !== null;
    pendingJoin = null;
    if (typeof msg.audio_only === "boolean") state.audioOnly = msg.audio_only;
    // An agent who accepts at once can start the call before the desk has answered our join:
    // then `queued` arrives after `call_started` and is old news. Keep the call (and the ticket).
    if (call && answersJoin) return;
    if (call) endCallLocally(); // the call ended while we were away
    updatePosition(msg);
    setError("");
    if (state.phase !== "waiting") setPhase("waiting");
  }

  function updatePosition(msg) {
    if (Number.isInteger(msg.position) && msg.position > 0) {
      state.position = msg.position;
      ui.position.dataset.position = String(msg.position);
      ui.position.textContent = `You are ${HD.ordinal(msg.position)} in line`;
    }
    if ("eta_seconds" in msg) {
      state.eta = msg.eta_seconds;
      ui.eta.textContent = "Expected wait: " + HD.formatEta(msg.eta_seconds);
    }
  }

  const ERROR_TEXT = {
    unknown_queue: "This help line is not available right now.",
    bad_message: "Please check what you entered and try again.",
  };

  function onServerError(msg) {
    if (msg.in_reply_to === "join") {
      pendingJoin = null;
      setPhase("ready");
      disconnect();
      setError(ERROR_TEXT[msg.code] || msg.message || "We could not add you to the line.");
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
    pendingJoin = {
      type: "join",
      queue: QUEUE,
      name: name.slice(0, 80),
      topic: ui.topic.value.trim().slice(0, 500),
      audio_only: !media.stream || media.stream.getVideoTracks().length === 0,
      page: (document.referrer || "").slice(0, 500),
    };
    resetWaiting();
    setPhase("connecting");
    connect();
  });

  function resetWaiting() {
    state.position = null;
    state.eta = null;
    ui.position.dataset.position = "";
    ui.position.textContent = "Finding your place in line…";
    ui.eta.textContent = "";
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

  /* -------------------------------------------------------------- call */

  function startCall(msg) {
    if (call && call.callId === msg.call_id && call.isAlive()) return; // replayed after a reconnect
    if (call) call.close();
    clearTimeout(fallbackTimer);
    state.callId = msg.call_id;
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
      iceServers,
      iceTransportPolicy,
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
    const entry = END_TEXT[msg.reason];
    const text = typeof entry === "string" ? entry : (entry && entry[msg.by]) || "The call has ended.";
    endCallLocally();
    ticketStore.drop();
    disconnect();
    showEnded("ended", text + " Thank you for talking to us.");
  }

  ui.hangup.addEventListener("click", () => {
    if (!call) return;
    if (socket) socket.send({ type: "hangup", call_id: call.callId });
    endCallLocally();
    ticketStore.drop();
    // Keep the socket a moment so the desk's call_ended can arrive, then close it.
    clearTimeout(fallbackTimer);
    fallbackTimer = setTimeout(disconnect, 3000);
    showEnded("ended", "You ended the call. Thank you for talking to us.");
  });

  ui.sound.addEventListener("click", () => {
    ui.remote.muted = false;
    ui.remote.play().catch(() => {});
    ui.sound.hidden = true;
  });

  /* ------------------------------------------------------------- ended */

  function showEnded(phase, message) {
    setNotice("");
    ui.endedMessage.textContent = message;
    ui.leave.disabled = false;
    setPhase(phase);
    releaseMedia();
  }

  ui.again.addEventListener("click", () => {
    clearTimeout(fallbackTimer);
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
  recheckDevices();
  restoreTicket().then(() => {
    if (!ticketStore.get() || LIVE_PHASES.has(state.phase)) return;
    // A reload while in line: take the place back before the desk's lease on it runs out.
    resetWaiting();
    setPhase("connecting");
    connect();
  });
})();
