/* humandesk: code shared by the visitor panel and the agent console.
 * Plain script (no modules, no build step). Everything hangs off window.HD. */
"use strict";

(function () {
  const HD = {};

  /* ------------------------------------------------------------------ DOM */

  HD.$ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

  /* ----------------------------------------------------------- formatting */

  HD.ordinal = (n) => {
    const suffixes = ["th", "st", "nd", "rd"];
    const v = n % 100;
    return n + (suffixes[(v - 20) % 10] || suffixes[v] || suffixes[0]);
  };

  HD.plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  /**
   * The first `max` characters of `text`, counted as the desk counts them (code points), never
   * cutting an emoji in half: half of one is a lone surrogate, which the desk refuses.
   */
  HD.clip = (text, max) => {
    const value = String(text || "");
    if (value.length <= max) return value;
    return Array.from(value).slice(0, max).join("");
  };

  /** "under a minute", "about 3 minutes", ... for an ETA in seconds (null: unknown). */
  HD.formatEta = (seconds) => {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
      return "we will be with you as soon as we can";
    }
    if (seconds < 60) return "under a minute";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return "about " + HD.plural(minutes, "minute");
    return "over an hour";
  };

  /** 65 -> "1:05", 3725 -> "1:02:05" */
  HD.formatClock = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  };

  /* ---------------------------------------------------------------- media */

  const CAMERA_PROBLEM = {
    NotAllowedError: "camera_blocked",
    SecurityError: "camera_blocked",
    NotFoundError: "no_camera",
    OverconstrainedError: "no_camera",
    NotReadableError: "camera_busy",
    AbortError: "camera_busy",
  };

  /**
   * Camera + microphone, falling back to the microphone alone.
   * Resolves (never rejects) to {stream, audioOnly, problem}; problem is null when both worked,
   * a camera_* / no_camera code when only audio worked, "no_media" (+ micError) when nothing did.
   */
  HD.getLocalMedia = async () => {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      return { stream: null, audioOnly: true, problem: "no_media", micError: "unsupported" };
    }
    let cameraError;
    try {
      const stream = await md.getUserMedia({ video: true, audio: true });
      return { stream, audioOnly: stream.getVideoTracks().length === 0, problem: null };
    } catch (err) {
      cameraError = (err && err.name) || "Error";
    }
    try {
      const stream = await md.getUserMedia({ audio: true });
      return { stream, audioOnly: true, problem: CAMERA_PROBLEM[cameraError] || "camera_failed" };
    } catch (err) {
      return { stream: null, audioOnly: true, problem: "no_media", micError: (err && err.name) || "Error" };
    }
  };

  /** One sentence (or two) telling a person what happened to their devices and what to do. */
  HD.describeMediaProblem = (result, peer = "the other person") => {
    switch (result.problem) {
      case null:
      case undefined:
        return "";
      case "camera_blocked":
        return "Your browser blocked the camera. You can still talk by voice. " +
          "To use video, allow the camera in the address bar and press Try again.";
      case "no_camera":
        return "No camera found. You can still talk by voice. " +
          "If you plug in a camera, press Try again.";
      case "camera_busy":
        return "Your camera is being used by another app. You can still talk by voice. " +
          "Close the other app and press Try again.";
      case "camera_failed":
        return "Your camera could not be started. You can still talk by voice. Press Try again to retry.";
      default:
        if (result.micError === "NotAllowedError" || result.micError === "SecurityError") {
          return "Your browser blocked the camera and microphone. You can still join: you will see and hear " +
            `${peer}, but they will not hear you. To talk, allow them in the address bar and press Try again.`;
        }
        if (result.micError === "unsupported") {
          return `This browser cannot use a camera or microphone here. You can still see and hear ${peer}.`;
        }
        return "No camera or microphone could be started. You can still join: you will see and hear " +
          `${peer}, but they will not hear you. Press Try again after checking your devices.`;
    }
  };

  HD.stopStream = (stream) => {
    if (stream) for (const t of stream.getTracks()) t.stop();
  };

  /**
   * Play a remote stream with sound. If the browser's autoplay policy refuses sound,
   * play muted and call onSoundBlocked so the page can offer a "Turn on sound" button.
   */
  HD.playRemote = (video, stream, onSoundBlocked) => {
    if (video.srcObject !== stream) video.srcObject = stream;
    video.muted = false;
    const p = video.play();
    if (p && p.catch) {
      p.catch((err) => {
        if (err && err.name === "NotAllowedError") {
          video.muted = true;
          video.play().catch(() => {});
          if (onSoundBlocked) onSoundBlocked();
        }
      });
    }
  };

  /**
   * Mute and camera toggle buttons. Both pages have the same pair; `onChange({muted, camera_off})`
   * lets the page tell the other party. `sync(stream)` re-reads the stream (after Try again).
   */
  HD.mediaControls = ({ muteButton, cameraButton, getStream, onChange }) => {
    const state = { muted: false, camera_off: false };
    const tracks = (kind) => {
      const stream = getStream();
      if (!stream) return [];
      return kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks();
    };
    const render = () => {
      const hasAudio = tracks("audio").length > 0;
      const hasVideo = tracks("video").length > 0;
      const muted = state.muted || !hasAudio;
      const cameraOff = state.camera_off || !hasVideo;
      muteButton.disabled = !hasAudio;
      muteButton.setAttribute("aria-pressed", String(muted));
      muteButton.querySelector(".label").textContent = !hasAudio ? "No mic" : muted ? "Unmute" : "Mute";
      cameraButton.disabled = !hasVideo;
      cameraButton.setAttribute("aria-pressed", String(cameraOff));
      // Without a camera there is nothing to turn on: say so instead of offering "Camera on".
      cameraButton.querySelector(".label").textContent = !hasVideo
        ? "No camera"
        : cameraOff
          ? "Camera on"
          : "Camera off";
    };
    const apply = () => {
      for (const t of tracks("audio")) t.enabled = !state.muted;
      for (const t of tracks("video")) t.enabled = !state.camera_off;
      render();
    };
    const current = () => ({
      muted: state.muted || tracks("audio").length === 0,
      camera_off: state.camera_off || tracks("video").length === 0,
    });
    muteButton.addEventListener("click", () => {
      state.muted = !state.muted;
      apply();
      onChange(current());
    });
    cameraButton.addEventListener("click", () => {
      state.camera_off = !state.camera_off;
      apply();
      onChange(current());
    });
    return {
      current,
      sync: apply,
      reset() {
        state.muted = false;
        state.camera_off = false;
        apply();
      },
    };
  };

  /* ---------------------------------------------------------------- sound */

  /** A short two-tone chime. Browsers only allow audio after a user gesture: call unlock() in one. */
  HD.sound = {
    ctx: null,
    unlock() {
      // Creating a context before any user gesture only earns a console warning and silence.
      const activation = navigator.userActivation;
      if (!this.ctx && activation && !activation.hasBeenActive) return;
      try {
        if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
        if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
      } catch (_) {
        this.ctx = null;
      }
    },
    chime() {
      try {
        this.unlock();
        const ctx = this.ctx;
        if (!ctx) return;
        const t0 = ctx.currentTime + 0.01;
        [[880, 0], [1320, 0.18]].forEach(([freq, at]) => {
          const osc = ctx.createOscillator();
          const gain = ctx.createGain();
          osc.type = "sine";
          osc.frequency.value = freq;
          gain.gain.setValueAtTime(0.0001, t0 + at);
          gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
          osc.connect(gain).connect(ctx.destination);
          osc.start(t0 + at);
          osc.stop(t0 + at + 0.18);
        });
      } catch (_) {
        /* no sound is better than a broken page */
      }
    },
  };

  /* ------------------------------------------------------------ WebSocket */

  /**
   * Signs in through /api/login. Resolves to { agent } on success, or { error, wrongPassword }
   * with the text to show: the same words in the agent console and on the wallboard.
   */
  HD.signIn = async (username, password) => {
    let res;
    try {
      res = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ username, password }),
      });
    } catch (_) {
      return { error: "Cannot reach the desk. Check your connection and try again." };
    }
    if (res.status === 401) return { error: "Wrong username or password", wrongPassword: true };
    if (res.status === 429) {
      const minutes = Math.max(1, Math.ceil((Number(res.headers.get("Retry-After")) || 60) / 60));
      return { error: `Too many failed sign-ins. Try again in ${HD.plural(minutes, "minute")}.` };
    }
    if (!res.ok) return { error: `Sign-in failed (HTTP ${res.status}). Try again.` };
    const data = await res.json();
    return { agent: data.agent };
  };

  HD.wsUrl = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

  const PING_EVERY_MS = 20000;
  const STALE_AFTER_MS = 50000;

  /**
   * One JSON WebSocket to the desk, reconnecting with jittered exponential backoff.
   * handlers.onMessage(msg) gets every frame except pong.
   * handlers.onClose({code, reason, opened, attempts}) decides: return (or resolve to) true to reconnect.
   * handlers.onRetry(delayMs) is told when a reconnect is scheduled.
   * The backoff resets when the desk says `welcome`.
   */
  class DeskSocket {
    constructor(path, handlers) {
      this.url = HD.wsUrl(path);
      this.handlers = handlers;
      this.ws = null;
      this.attempts = 0;
      this.stopped = true;
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastSeen = 0;
    }

    get isOpen() {
      return !!this.ws && this.ws.readyState === WebSocket.OPEN;
    }

    open() {
      this.stopped = false;
      clearTimeout(this.retryTimer);
      this._connect();
    }

    send(msg) {
      if (!this.isOpen) return false;
      this.ws.send(JSON.stringify(msg));
      return true;
    }

    close(code = 1000, reason = "bye") {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      this._stopPing();
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
        try {
          ws.close(code, reason);
        } catch (_) {
          /* already closing */
        }
      }
    }

    _connect() {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (_) {
        this._closed(1006, "", false);
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.lastSeen = Date.now();
        this._startPing();
      };
      ws.onmessage = (ev) => {
        this.lastSeen = Date.now();
        if (typeof ev.data !== "string") return;
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        if (!msg || typeof msg.type !== "string" || msg.type === "pong") return;
        if (msg.type === "welcome") this.attempts = 0;
        this.handlers.onMessage(msg);
      };
      ws.onerror = () => {}; // always followed by close
      ws.onclose = (ev) => {
        if (ws === this.ws) this._closed(ev.code, ev.reason, opened);
      };
    }

    _closed(code, reason, opened) {
      this._stopPing();
      this.ws = null;
      if (this.stopped) return;
      const info = { code, reason, opened, attempts: this.attempts };
      const decide = this.handlers.onClose ? this.handlers.onClose(info) : false;
      Promise.resolve(decide).then((again) => {
        if (!again || this.stopped) return;
        const base = Math.min(10000, 500 * 2 ** this.attempts);
        const delay = Math.round(base * (0.75 + Math.random() * 0.5));
        this.attempts += 1;
        if (this.handlers.onRetry) this.handlers.onRetry(delay);
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => {
          if (!this.stopped) this._connect();
        }, delay);
      });
    }

    _startPing() {
      this._stopPing();
      this.pingTimer = setInterval(() => {
        // A dead TCP connection can take minutes to report close; give up on it ourselves.
        if (Date.now() - this.lastSeen > STALE_AFTER_MS) {
          const ws = this.ws;
          if (ws) {
            ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
            try {
              ws.close();
            } catch (_) {
              /* ignore */
            }
          }
          this._closed(1006, "stale", true);
          return;
        }
        this.send({ type: "ping" });
      }, PING_EVERY_MS);
    }

    _stopPing() {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
    }
  }
  HD.DeskSocket = DeskSocket;

  /* -------------------------------------------------------------- WebRTC */

  const fingerprintOf = (sdp) => {
    const m = /^a=fingerprint:(.+)$/m.exec(sdp || "");
    return m ? m[1].trim() : null;
  };

  const ufragOf = (sdp) => {
    const m = /^a=ice-ufrag:(.+)$/m.exec(sdp || "");
    return m ? m[1].trim() : null;
  };

  const ICE_REFRESH_WAIT_MS = 3000;

  /**
   * Fresh ICE servers from the desk (`refresh_ice`, answered by `ice_servers`): TURN
   * credentials are minted per call and expire, so an ICE restart asks for new ones first.
   * `request()` resolves to the new list, or null if the desk does not answer in 3 s;
   * the page hands every `ice_servers` message to `received(msg)`.
   */
  HD.iceRefresher = (getSocket) => {
    let waiting = [];
    return {
      request() {
        return new Promise((resolve) => {
          const socket = getSocket();
          if (!socket || !socket.send({ type: "refresh_ice" })) {
            resolve(null);
            return;
          }
          const entry = { resolve };
          entry.timer = setTimeout(() => {
            waiting = waiting.filter((e) => e !== entry);
            resolve(null);
          }, ICE_REFRESH_WAIT_MS);
          waiting.push(entry);
        });
      },
      received(msg) {
        const servers = Array.isArray(msg.ice_servers) ? msg.ice_servers : null;
        const all = waiting;
        waiting = [];
        for (const entry of all) {
          clearTimeout(entry.timer);
          entry.resolve(servers);
        }
      },
    };
  };

  const RESTART_GRACE_MS = 4000;
  const SLOW_CONNECT_MS = 20000;
  const RESTART_MIN_GAP_MS = 10000;

  /**
   * One call's RTCPeerConnection, for either role.
   *
   * opts: callId, role ("offerer" | "answerer"), iceServers, getStream (() => Promise<MediaStream|null>),
   *       send(fields) (sends {type:"signal", call_id, ...fields}),
   *       onRemoteStream(stream), onConnectionState(state), onPeer(pc|null),
   *       onSlow() (optional: not connected SLOW_CONNECT_MS after a connection was built),
   *       refreshIce() (optional: resolves to fresh ICE servers, or null; see HD.iceRefresher).
   *
   * Signals are processed strictly in order on one promise chain, so a candidate never overtakes
   * the description it belongs to. Candidates that arrive before the remote description are queued.
   *
   * Recovery: if the peer comes back with a brand-new RTCPeerConnection (its DTLS fingerprint
   * changed, e.g. after a page reload), this side starts over with a fresh connection too;
   * the offerer re-offers, and restarts ICE when the connection drops or fails. Both sides
   * take fresh TURN credentials for an ICE restart (the call's may have expired by then).
   */
  class PeerCall {
    constructor(opts) {
      this.callId = opts.callId;
      this.role = opts.role === "offerer" ? "offerer" : "answerer";
      this.iceServers = Array.isArray(opts.iceServers) ? opts.iceServers : [];
      // "relay" sends media only through TURN, which hides each side's IP address.
      this.iceTransportPolicy = opts.iceTransportPolicy === "relay" ? "relay" : "all";
      this.opts = opts;
      this.pc = null;
      this.stream = null;
      this.closed = false;
      this.pending = [];
      this.chain = Promise.resolve();
      this.lastRestart = 0;
      this.graceTimer = null;
      this.slowTimer = null;
    }

    start() {
      this._enqueue(async () => {
        this.stream = await this.opts.getStream();
        if (!this.closed) this._build();
      });
    }

    /** Tear down and negotiate again from scratch (the other party reconnected). */
    restart() {
      this._enqueue(async () => this._build());
    }

    handleSignal(msg) {
      this._enqueue(() => this._handle(msg));
    }

    isAlive() {
      return !this.closed && !!this.pc && !["failed", "closed"].includes(this.pc.connectionState);
    }

    close() {
      if (this.closed) return;
      this.closed = true;
      this._teardown();
      this.opts.onPeer(null);
    }

    _enqueue(fn) {
      this.chain = this.chain
        .then(() => (this.closed ? undefined : fn()))
        .catch((err) => console.warn("humandesk: signaling step failed", err));
    }

    _teardown() {
      clearTimeout(this.graceTimer);
      clearTimeout(this.slowTimer);
      const pc = this.pc;
      this.pc = null;
      if (!pc) return;
      pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = pc.onnegotiationneeded = null;
      try {
        pc.close();
      } catch (_) {
        /* ignore */
      }
    }

    _build() {
      this._teardown();
      this.pending = [];
      let pc;
      try {
        pc = new RTCPeerConnection({
          iceServers: this.iceServers,
          iceTransportPolicy: this.iceTransportPolicy,
        });
      } catch (err) {
        // A malformed ICE server entry throws here; a direct connection may still work without it.
        console.warn("humandesk: ICE servers rejected, trying without them", err);
        pc = new RTCPeerConnection({ iceServers: [] });
      }
      this.pc = pc;
      const stream = this.stream;
      const local = stream ? stream.getTracks() : [];
      for (const kind of ["audio", "video"]) {
        const track = local.find((t) => t.kind === kind);
        if (track) pc.addTrack(track, stream);
        // Only the offerer needs placeholders: it writes the m-lines. An answerer's extra
        // transceiver would not be matched to the offer and would sit unused.
        else if (this.role === "offerer") pc.addTransceiver(kind, { direction: "recvonly" });
      }

      let remote = null;
      pc.ontrack = (ev) => {
        if (pc !== this.pc) return;
        const s = ev.streams && ev.streams[0];
        if (s) remote = s;
        else {
          if (!remote) remote = new MediaStream();
          remote.addTrack(ev.track);
        }
        this.opts.onRemoteStream(remote);
      };
      pc.onicecandidate = (ev) => {
        if (pc !== this.pc) return;
        this.opts.send({ candidate: ev.candidate ? ev.candidate.toJSON() : null });
      };
      pc.onconnectionstatechange = () => {
        if (pc !== this.pc) return;
        const state = pc.connectionState;
        this.opts.onConnectionState(state);
        clearTimeout(this.graceTimer);
        if (this.role !== "offerer") return;
        if (state === "failed") this._restartIce();
        else if (state === "disconnected") {
          this.graceTimer = setTimeout(() => {
            if (pc === this.pc && pc.connectionState === "disconnected") this._restartIce();
          }, RESTART_GRACE_MS);
        }
      };
      pc.onnegotiationneeded = () => {
        if (pc === this.pc && this.role === "offerer") this._enqueue(() => this._offer(pc));
      };
      this.slowTimer = setTimeout(() => {
        if (pc === this.pc && pc.connectionState !== "connected" && this.opts.onSlow) this.opts.onSlow();
      }, SLOW_CONNECT_MS);
      this.opts.onPeer(pc);
    }

    _restartIce() {
      const now = Date.now();
      if (!this.pc || now - this.lastRestart < RESTART_MIN_GAP_MS) return;
      this.lastRestart = now;
      const pc = this.pc;
      this._enqueue(async () => {
        await this._freshIce(pc);
        if (pc !== this.pc) return;
        if (typeof pc.restartIce === "function") pc.restartIce();
        else await this._offer(pc, { iceRestart: true });
      });
    }

    /** New TURN credentials for `pc`, before it gathers candidates again. */
    async _freshIce(pc) {
      if (!this.opts.refreshIce) return;
      const servers = await this.opts.refreshIce();
      if (!servers || pc !== this.pc) return;
      this.iceServers = servers;
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
      } catch (err) {
        console.warn("humandesk: fresh ICE servers rejected", err);
      }
    }

    async _offer(pc, options) {
      if (pc !== this.pc || pc.signalingState !== "stable") return;
      const offer = await pc.createOffer(options);
      if (pc !== this.pc || pc.signalingState !== "stable") return;
      await pc.setLocalDescription(offer);
      this._sendDescription(pc);
    }

    _sendDescription(pc) {
      const d = pc.localDescription;
      this.opts.send({ description: { type: d.type, sdp: d.sdp } });
    }

    async _handle(msg) {
      if (msg.description) {
        const desc = { type: msg.description.type, sdp: msg.description.sdp };
        if (desc.type === "offer") await this._takeOffer(desc);
        else if (desc.type === "answer") await this._takeAnswer(desc);
      } else if ("candidate" in msg) {
        if (!this.pc) return;
        if (!this.pc.remoteDescription) this.pending.push(msg.candidate);
        else await this._addCandidate(msg.candidate);
      }
    }

    async _takeOffer(desc) {
      let pc = this.pc;
      if (!pc) return;
      const current = pc.remoteDescription;
      if (current && fingerprintOf(current.sdp) !== fingerprintOf(desc.sdp)) {
        this._build(); // the peer is a new connection: start over
        pc = this.pc;
      } else if (pc.signalingState === "have-local-offer" && this.role === "offerer") {
        return; // glare: our offer wins; the other side rolls back
      } else if (current && ufragOf(current.sdp) !== ufragOf(desc.sdp)) {
        await this._freshIce(pc); // an ICE restart: gather with fresh credentials
        if (pc !== this.pc) return;
      }
      await pc.setRemoteDescription(desc); // an answerer with a local offer rolls back implicitly
      await this._flush(pc);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this._sendDescription(pc);
    }

    async _takeAnswer(desc) {
      const pc = this.pc;
      if (!pc || pc.signalingState !== "have-local-offer") return; // stale or duplicate
      const current = pc.remoteDescription;
      if (current && fingerprintOf(current.sdp) !== fingerprintOf(desc.sdp)) {
        this._build(); // the answer comes from a new connection: re-offer from a fresh one
        return;
      }
      try {
        await pc.setRemoteDescription(desc);
      } catch (err) {
        console.warn("humandesk: answer rejected, renegotiating", err);
        if (this.role === "offerer") this._build();
        return;
      }
      await this._flush(pc);
    }

    async _flush(pc) {
      const queued = this.pending;
      this.pending = [];
      for (const c of queued) await this._addCandidate(c, pc);
    }

    async _addCandidate(candidate, pc = this.pc) {
      try {
        if (candidate === null || candidate === undefined) await pc.addIceCandidate();
        else await pc.addIceCandidate(candidate);
      } catch (err) {
        // Candidates from a superseded session fail here; that is expected.
        console.debug("humandesk: candidate ignored", err);
      }
    }
  }
  HD.PeerCall = PeerCall;

  window.HD = HD;
})();
