/* One call's WebRTC peer connection, for the agent (offerer) and the visitor (answerer). */

import { openFileChannel } from "./files.js";
import { fingerprintOf, freshKeyFrame, ufragOf, watchPath } from "./peer_path.js";
import { STALL_SAMPLES } from "./quality.js";

/**
 * The mid of the offer's second video line: the agent's place for the visitor's shared
 * screen (null: the offer has none).
 */
export function screenMidOf(sdp) {
  let videos = 0;
  let inScreen = false;
  for (const line of String(sdp || "").split(/\r?\n/)) {
    if (line.startsWith("m=")) {
      if (line.startsWith("m=video")) videos += 1;
      inScreen = line.startsWith("m=video") && videos === 2;
    } else if (inScreen && line.startsWith("a=mid:")) return line.slice(6).trim();
  }
  return null;
}

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
 *       onChannel(channel) (optional: the files data channel of each new connection, see files.js),
 *       refreshIce() (optional: resolves to fresh ICE servers, or null; see iceRefresher in ice.js),
 *       onQuality(q) (optional: the connection's quality once a second, see quality.js),
 *       onStall() (optional: nothing has arrived for a while although the connection was up),
 *       onIceRestart(count) (optional: this side began an ICE restart).
 *
 * Signals are processed strictly in order on one promise chain, so a candidate never overtakes
 * the description it belongs to. Candidates that arrive before the remote description are queued.
 *
 * Recovery: if the peer comes back with a brand-new RTCPeerConnection (its DTLS fingerprint
 * changed, e.g. after a page reload), this side starts over with a fresh connection too;
 * the offerer re-offers, and restarts ICE when the connection drops, fails or stalls (media
 * stops arriving: a changed network address is seen this way seconds before ICE reports it).
 * Both sides take fresh TURN credentials for an ICE restart (the call's may have expired by
 * then). An ICE restart keeps the connection, its tracks and the call: only the path changes.
 */
export class PeerCall {
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
    this.quality = null; // the quality monitor of the current connection
    this.stalled = false;
    this.iceRestarts = 0;
    this.screen = null; // the transceiver of the line for a shared screen
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

  /**
   * The other party's signaling came back (or ours did) while this connection still stands:
   * restart ICE at once (offerer only), since restart offers sent meanwhile may have been lost.
   * `onlyIfBroken`: not when the media path is up.
   */
  recover(onlyIfBroken = false) {
    const pc = this.pc;
    if (!pc || this.role !== "offerer") return;
    if (onlyIfBroken && pc.connectionState === "connected" && !this.stalled) return;
    this.lastRestart = Date.now();
    this._enqueue(() => this._iceRestart(pc));
  }

  handleSignal(msg) {
    this._enqueue(() => this._handle(msg));
  }

  isAlive() {
    // A failed connection is still worth keeping: an ICE restart brings it back.
    return !this.closed && !!this.pc && this.pc.connectionState !== "closed";
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
    if (this.quality) this.quality.stop();
    this.quality = null;
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
    // Photos and files: a negotiated channel with a fixed id, made by both sides before the
    // first offer, so it is in every description and never needs a renegotiation.
    if (this.opts.onChannel) {
      try {
        this.opts.onChannel(openFileChannel(pc));
      } catch (err) {
        console.warn("humandesk: no data channel for files", err);
      }
    }

    let remote = null;
    // A second video line for a shared screen: nothing flows on it until the visitor shares;
    // then the screen goes there (replaceTrack, no new offer) and the camera stays on its own.
    this.screen = this.role === "offerer" ? pc.addTransceiver("video", { direction: "recvonly" }) : null;
    pc.ontrack = (ev) => {
      if (pc !== this.pc || (this.screen && ev.transceiver === this.screen)) return;
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
      if (state === "connected" && !this.quality) this._watch(pc);
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

  /**
   * Quality samples from the first connect on; a stall counts like a dropped connection. Back
   * from a stall (a new path, or media arriving again), the other side's decoder waits for a
   * key frame that the encoder would send only seconds later: pausing our video sends one now.
   */
  _watch(pc) {
    const keyFrame = () => this._enqueue(() => freshKeyFrame(pc));
    this.stalled = false;
    this.quality = watchPath(pc, {
      onQuality: (q) => {
        if (pc !== this.pc) return;
        if (this.stalled && !q.stalled) keyFrame();
        this.stalled = q.stalled;
        if (this.opts.onQuality) this.opts.onQuality(q);
        if (q.stalled && q.idle === STALL_SAMPLES) {
          if (this.opts.onStall) this.opts.onStall();
          if (this.role === "offerer") this._restartIce();
        }
      },
      onNewPath: () => {
        if (pc === this.pc && this.stalled) keyFrame();
      },
    });
  }

  _restartIce() {
    const now = Date.now();
    if (!this.pc || now - this.lastRestart < RESTART_MIN_GAP_MS) return;
    this.lastRestart = now;
    const pc = this.pc;
    this._enqueue(() => this._iceRestart(pc));
  }

  /** An ICE restart offer with fresh TURN credentials, replacing an unanswered offer. */
  async _iceRestart(pc) {
    await this._freshIce(pc);
    if (pc !== this.pc) return;
    if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
    if (pc !== this.pc || pc.signalingState !== "stable") return;
    this._countRestart();
    await this._offer(pc, { iceRestart: true });
  }

  _countRestart() {
    this.iceRestarts += 1;
    if (this.opts.onIceRestart) this.opts.onIceRestart(this.iceRestarts);
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
      this._countRestart();
      await this._freshIce(pc); // an ICE restart: gather with fresh credentials
      if (pc !== this.pc) return;
    }
    await pc.setRemoteDescription(desc); // an answerer with a local offer rolls back implicitly
    this._screenLine(pc, desc.sdp);
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

  /**
   * The call's line for a shared screen once both sides agreed on it (null: none, e.g. an
   * offer from a page without one): the visitor's `{sender}`, the agent's `{transceiver}`.
   */
  screenLine() {
    const t = this.screen;
    if (!t || !this.pc || t.stopped) return null;
    if (this.role === "answerer" && t.currentDirection === "sendonly") return { sender: t.sender };
    if (this.role === "offerer" && t.currentDirection === "recvonly") return { transceiver: t };
    return null;
  }

  /** The answerer offers to send on the offer's screen line (the answer says sendonly). */
  _screenLine(pc, sdp) {
    if (this.role !== "answerer") return;
    const mid = screenMidOf(sdp);
    this.screen = (mid !== null && pc.getTransceivers().find((t) => t.mid === mid)) || null;
    if (this.screen && this.screen.direction === "recvonly") this.screen.direction = "sendonly";
  }
}
