/* The files link over a data channel, driven with a fake channel: what the receiver makes of
 * a sender's header, chunks and end. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { fileLink } from "../static/shared/files.js";

function fakeChannel() {
  return { readyState: "open", bufferedAmount: 0, sent: [], send(data) { this.sent.push(data); } };
}

function deliver(ch, data) {
  ch.onmessage({ data });
}

function sendFile(ch, id, bytes) {
  deliver(ch, JSON.stringify({ kind: "file", id, name: "photo.png", mime: "image/png", size: bytes.byteLength }));
  deliver(ch, bytes.buffer.slice(0));
  deliver(ch, JSON.stringify({ kind: "end", id }));
}

test("a sender id seen before (its page reloaded) makes a new entry, not the old one's", () => {
  const events = [];
  const link = fileLink((e) => events.push(e));
  const first = fakeChannel();
  link.attach(first);
  sendFile(first, "out-1", new Uint8Array([1, 2, 3]));
  // The sender reloads: a new peer connection, its counter from 1 again.
  const second = fakeChannel();
  link.attach(second);
  sendFile(second, "out-1", new Uint8Array([4, 5, 6, 7]));

  const incoming = events.filter((e) => e.type === "file_incoming").map((e) => e.key);
  assert.equal(incoming.length, 2);
  assert.notEqual(incoming[0], incoming[1]);
  const received = events.filter((e) => e.type === "file_status" && e.status === "received");
  assert.deepEqual(received.map((e) => e.key), incoming);
  assert.notEqual(received[0].url, received[1].url);
  // The acks carry the sender's own id back, on the channel each file came by.
  assert.deepEqual(JSON.parse(first.sent[0]), { kind: "ack", id: "out-1", ok: true, reason: "" });
  assert.deepEqual(JSON.parse(second.sent[0]), { kind: "ack", id: "out-1", ok: true, reason: "" });
});

test("more bytes than the header announced are refused as too big", () => {
  const events = [];
  const link = fileLink((e) => events.push(e));
  const ch = fakeChannel();
  link.attach(ch);
  deliver(ch, JSON.stringify({ kind: "file", id: "x", name: "a.png", mime: "image/png", size: 2 }));
  deliver(ch, new Uint8Array([1, 2, 3]).buffer);
  assert.deepEqual(events.at(-1), { type: "file_status", key: "in-1", status: "refused", reason: "too_big" });
  assert.deepEqual(JSON.parse(ch.sent[0]), { kind: "ack", id: "x", ok: false, reason: "too_big" });
});
