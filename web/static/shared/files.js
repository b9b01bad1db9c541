/* Photos and files, peer to peer over the call's own data channel: never through the desk.
 *
 * The channel is negotiated (id 0, label "files") and made by both sides with every peer
 * connection (peer.js), so it needs no renegotiation and lives through an ICE restart. On it,
 * a file is a JSON header {kind: "file", id, name, mime, size}, its bytes in binary chunks of
 * 16 KiB, then {kind: "end", id}; the receiver answers {kind: "ack", id, ok, reason}. The
 * sender waits on `bufferedamountlow` whenever more than HIGH_WATER bytes are queued. Both
 * sides apply the same size and type rules (chat.js). The receiver keys each file by its own
 * count, never by the sender's id (acks carry that back). Events: `file_incoming`, `file_status`. */

import { fileRefusal } from "./chat.js";

export const CHANNEL = Object.freeze({ label: "files", id: 0 });
export const CHUNK_BYTES = 16 * 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** The data channel of the peer connection `pc`, made the same way on both sides. */
export function openFileChannel(pc) {
  return pc.createDataChannel(CHANNEL.label, { negotiated: true, id: CHANNEL.id, ordered: true });
}

/** The files of one page: `attach(channel)` for each new peer connection, `send(file, key)`. */
export function fileLink(dispatch) {
  let channel = null;
  let incoming = null; // the file being received: {id, key, meta, parts, got, refused}
  let received = 0; // this page's own count of incoming files: their keys
  let sending = Promise.resolve();

  const status = (key, fields) => dispatch({ type: "file_status", key, ...fields });

  function drained(ch) {
    return new Promise((resolve, reject) => {
      const done = () => {
        ch.removeEventListener("bufferedamountlow", done);
        ch.removeEventListener("close", gone);
        resolve();
      };
      const gone = () => {
        ch.removeEventListener("bufferedamountlow", done);
        reject(new Error("the channel closed"));
      };
      ch.addEventListener("bufferedamountlow", done);
      ch.addEventListener("close", gone, { once: true });
    });
  }

  async function push(file, key) {
    const ch = channel;
    if (!ch || ch.readyState !== "open") {
      status(key, { status: "refused", reason: "peer" });
      return;
    }
    try {
      const bytes = await file.arrayBuffer();
      ch.send(JSON.stringify({ kind: "file", id: key, name: file.name, mime: file.type, size: bytes.byteLength }));
      for (let at = 0; at < bytes.byteLength; at += CHUNK_BYTES) {
        if (ch.readyState !== "open") throw new Error("the channel closed");
        if (ch.bufferedAmount > HIGH_WATER) await drained(ch);
        ch.send(bytes.slice(at, at + CHUNK_BYTES));
      }
      ch.send(JSON.stringify({ kind: "end", id: key }));
      status(key, { status: "sent", url: URL.createObjectURL(file) });
    } catch (err) {
      console.warn("humandesk: file not sent", err);
      status(key, { status: "failed", reason: "failed" });
    }
  }

  function answer(id, ok, reason) {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ kind: "ack", id, ok, reason }));
  }

  function header(msg) {
    const meta = { name: String(msg.name || "file").slice(0, 255), mime: String(msg.mime || ""), size: Number(msg.size) };
    // The key is this page's own: the sender's id restarts when its page reloads, and an id
    // seen before would take over the entry (and link) of an earlier file.
    received += 1;
    const key = "in-" + received;
    const refused = fileRefusal(meta);
    incoming = { id: msg.id, key, meta, parts: [], got: 0, refused };
    dispatch({ type: "file_incoming", key, ...meta, refused });
    if (refused) answer(msg.id, false, refused);
  }

  function chunk(data) {
    const cur = incoming;
    if (!cur || cur.refused) return;
    cur.got += data.byteLength;
    if (cur.got > cur.meta.size) {
      cur.refused = "too_big";
      cur.parts = [];
      status(cur.key, { status: "refused", reason: "too_big" });
      answer(cur.id, false, "too_big");
      return;
    }
    cur.parts.push(data);
  }

  function end(msg) {
    const cur = incoming;
    if (!cur || cur.id !== msg.id) return;
    incoming = null;
    if (cur.refused) return;
    if (cur.got !== cur.meta.size) {
      status(cur.key, { status: "failed", reason: "failed" });
      answer(cur.id, false, "failed");
      return;
    }
    const blob = new Blob(cur.parts, { type: cur.meta.mime });
    status(cur.key, { status: "received", url: URL.createObjectURL(blob) });
    answer(cur.id, true, "");
  }

  function receive(data) {
    if (typeof data !== "string") return chunk(data);
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "file") header(msg);
    else if (msg.kind === "end") end(msg);
    else if (msg.kind === "ack" && typeof msg.id === "string") {
      status(msg.id, msg.ok ? { status: "delivered" } : { status: "refused", reason: msg.reason === "type" || msg.reason === "too_big" ? msg.reason : "refused" });
    }
  }

  return {
    attach(ch) {
      if (channel) channel.onmessage = null;
      channel = ch;
      incoming = null;
      ch.binaryType = "arraybuffer";
      ch.bufferedAmountLowThreshold = LOW_WATER;
      ch.onmessage = (ev) => channel === ch && receive(ev.data);
    },
    detach() {
      if (channel) channel.onmessage = null;
      channel = null;
      incoming = null;
    },
    send(file, key) {
      sending = sending.then(() => push(file, key));
    },
  };
}
