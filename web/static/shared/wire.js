/* A page's line to the desk: one socket and one call at a time, their events turned into the
 * page's events. The visitor panel and the agent console wire themselves alike. */

import { fileLink } from "./files.js";
import { iceRefresher } from "./ice.js";
import { playRemote } from "./media.js";
import { PeerCall } from "./peer.js";
import { MSG } from "./protocol.js";
import { DeskSocket } from "./socket.js";

/**
 * `path`: the socket's (/ws/visitor, /ws/agent); `remote`: the <video> for the other party;
 * `stream()` and `ready()`: the camera's stream and the promise of the check under way;
 * `controls()`: the Mute and Camera buttons; `onPeer(pc)`: each connection the call builds.
 * Events: `socket_open`, `socket_closed`
 * ({code, reason, opened}), `socket_retrying`, every message from the desk but `signal` and
 * `ice_servers` (which go to the call), `call_started` with `alive` (this page's connection
 * for that call still works), `peer_state`, `peer_slow`, `peer_quality` ({level, rttMs,
 * lossPct, kbps, stalled}), `peer_stalled`, `sound_blocked`, `call_media`.
 *
 * When the call's media stops or its connection drops, the socket is checked at once: a
 * changed network leaves a dead TCP connection behind, and the ICE restart needs signaling.
 */
export function deskWire({ path, remote, stream, ready, controls, onPeer = () => {} }) {
  let socket = null;
  let peer = null;
  let files = null; // the call's files (its data channel), made with the first call
  let calling = false; // a call is on: the socket pings more often (see DeskSocket.inCall)
  const ice = iceRefresher(() => socket);

  function onMessage(msg, dispatch) {
    if (msg.type === MSG.SIGNAL) {
      if (peer && msg.call_id === peer.callId) peer.handleSignal(msg);
    } else if (msg.type === MSG.ICE_SERVERS) {
      ice.received(msg);
    } else if (msg.type === MSG.CALL_STARTED) {
      dispatch({ ...msg, alive: !!peer && peer.callId === msg.call_id && peer.isAlive() });
    } else dispatch(msg);
  }

  return {
    connect(dispatch) {
      if (socket) socket.close();
      const mine = new DeskSocket(path, {
        onOpen: () => socket === mine && dispatch({ type: "socket_open" }),
        onMessage: (msg) => socket === mine && onMessage(msg, dispatch),
        onClose: (info) => socket === mine && dispatch({ type: "socket_closed", ...info }),
        onRetry: () => socket === mine && dispatch({ type: "socket_retrying" }),
      });
      socket = mine;
      mine.inCall(calling);
      mine.open();
    },
    disconnect() {
      if (socket) socket.close(1000, "bye");
      socket = null;
    },
    send: (msg) => !!socket && socket.send(msg),
    retry: (soon) => socket && socket.retry(soon),

    /** A new call (`callId`, `role`, `iceServers`, `iceTransportPolicy`), replacing any other. */
    startCall(fx, dispatch) {
      if (peer) peer.close();
      const callId = fx.callId;
      if (!files) files = fileLink(dispatch);
      files.detach();
      window.hdIceRestarts = 0;
      calling = true;
      if (socket) socket.inCall(true);
      peer = new PeerCall({
        callId,
        role: fx.role,
        iceServers: fx.iceServers,
        iceTransportPolicy: fx.iceTransportPolicy,
        refreshIce: () => ice.request(),
        getStream: () => ready().then(() => stream()),
        send: (fields) => socket && socket.send({ type: MSG.SIGNAL, call_id: callId, ...fields }),
        onRemoteStream: (s) => playRemote(remote, s, () => dispatch({ type: "sound_blocked" })),
        onConnectionState: (state) => {
          if ((state === "disconnected" || state === "failed") && socket) socket.check();
          dispatch({ type: "peer_state", state });
        },
        onSlow: () => dispatch({ type: "peer_slow" }),
        onChannel: (channel) => files.attach(channel),
        onQuality: (q) => dispatch({ type: "peer_quality", ...q }),
        onStall: () => {
          if (socket) socket.check();
          dispatch({ type: "peer_stalled" });
        },
        onIceRestart: (count) => {
          window.hdIceRestarts = count; // the browser tests count ICE restarts
        },
        onPeer: (pc) => {
          window.hdPeer = pc; // the browser tests read the connection's statistics
          if (pc) onPeer(pc); // a new connection: what it sends may need setting again
        },
      });
      peer.start();
      ready().then(() => dispatch({ type: "call_media", callId, ...controls().current() }));
    },
    /** The call's RTCPeerConnection now (null between calls). */
    pc: () => (peer ? peer.pc : null),
    /** The call's line for a shared screen, when both sides have one (PeerCall.screenLine). */
    screenLine: () => (peer ? peer.screenLine() : null),
    /** The other party came back with a new connection: negotiate again. */
    restartCall: () => peer && peer.restart(),
    /** A file picked for the call (`file`, `key`), sent peer to peer. */
    sendFile(fx, dispatch) {
      if (!files) files = fileLink(dispatch);
      files.send(fx.file, fx.key);
    },
    /** The other party (or this page) reconnected to the desk: restart ICE on this connection. */
    recoverCall: (onlyIfBroken) => peer && peer.recover(onlyIfBroken),
    endCall() {
      if (files) files.detach();
      if (peer) peer.close();
      peer = null;
      calling = false;
      if (socket) socket.inCall(false);
      window.hdPeer = null;
      remote.srcObject = null;
    },
  };
}
