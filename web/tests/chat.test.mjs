// A call's chat and files in both pages: the pure rules (shared/chat.js: links, order, files)
// and the moves of the visitor panel's and the agent console's transition tables.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { next as agentNext } from "../static/agent/machine.js";
import { FILE_TYPES, MAX_FILE_BYTES, addLine, chatText, fileRefusal, freshChat, linkParts, safeHref } from "../static/shared/chat.js";
import { ERROR, MSG } from "../static/shared/protocol.js";
import { next as visitorNext } from "../static/visitor/machine.js";
import { initial as visitorInitial } from "../static/visitor/state.js";
import { agentInCall, effects, play, sent } from "./support.mjs";

describe("links in chat text", () => {
  test("http and https addresses become links, the rest stays text", () => {
    assert.deepEqual(linkParts("see https://shop.example/orders?id=4, thanks"), [
      { text: "see " },
      { text: "https://shop.example/orders?id=4", href: "https://shop.example/orders?id=4" },
      { text: ", thanks" },
    ]);
    assert.deepEqual(linkParts("(http://a.example/x)."), [
      { text: "(" },
      { text: "http://a.example/x", href: "http://a.example/x" },
      { text: ")." },
    ]);
  });

  test("a javascript: link, a data: address or an address without a host stays text", () => {
    for (const text of [
      "javascript:alert(document.cookie)",
      "click javascript:alert(1)//http://x.example",
      "data:text/html,<script>alert(1)</script>",
      "https://",
      "<a href=\"javascript:alert(1)\">x</a>",
    ]) {
      const parts = linkParts(text);
      for (const part of parts) {
        if (part.href) assert.match(part.href, /^https?:\/\/[^/]/, text);
      }
      assert.equal(parts.map((p) => p.text).join(""), text);
    }
    assert.deepEqual(linkParts("javascript:alert(1)"), [{ text: "javascript:alert(1)" }]);
    assert.equal(safeHref("javascript:alert(1)"), null);
    assert.equal(safeHref("JAVASCRIPT://%0aalert(1)"), null);
    assert.equal(safeHref("ftp://x.example/"), null);
    assert.equal(safeHref("https://x.example/a b"), "https://x.example/a%20b");
  });
});

describe("the transcript", () => {
  test("each line once, in the desk's order, whatever order it arrives in", () => {
    let chat = freshChat("c1");
    chat = addLine(chat, { seq: 2, from: "agent", text: "two", at: 2 });
    chat = addLine(chat, { seq: 1, from: "visitor", text: "one", at: 1 });
    const again = addLine(chat, { seq: 2, from: "agent", text: "two", at: 2 });
    assert.equal(again, chat);
    chat = addLine(chat, { seq: 3, from: "visitor", text: "three", at: 3 });
    assert.deepEqual(chat.entries.map((e) => [e.seq, e.from, e.text]), [
      [1, "visitor", "one"],
      [2, "agent", "two"],
      [3, "visitor", "three"],
    ]);
  });

  test("what is typed is trimmed and clipped as the desk counts", () => {
    assert.equal(chatText("   "), "");
    assert.equal(chatText(" hi \n"), "hi");
    assert.equal(Array.from(chatText("😀".repeat(1200))).length, 1000);
  });

  test("files: a size limit and an allow-list of types", () => {
    assert.equal(fileRefusal({ size: 100, mime: "image/png" }), null);
    assert.equal(fileRefusal({ size: MAX_FILE_BYTES + 1, mime: "image/png" }), "too_big");
    assert.equal(fileRefusal({ size: 100, mime: "image/svg+xml" }), "type");
    assert.equal(fileRefusal({ size: 100, mime: "text/html" }), "type");
    assert.equal(fileRefusal({ size: 0, mime: "text/plain" }), "empty");
    assert.ok(FILE_TYPES["application/pdf"] && FILE_TYPES["image/jpeg"]);
  });
});

// The visitor panel, in a call.
const V = {
  ready: [
    { type: "boot", ticket: null },
    { type: "first_look", info: { open: true, agents_online: 1, agents_available: 1, waiting: 0, eta_seconds: 0 } },
    { type: "devices", audioOnly: false, hasVideo: true, problem: null },
    { type: "socket_open" },
    { type: MSG.WELCOME, ice_servers: [], ice_transport_policy: "all" },
  ],
  join: { type: "submit_join", name: "Ada", topic: "", page: "" },
  queued: { type: MSG.QUEUED, ticket: "T1", queue: "support", position: 1, eta_seconds: 0 },
  started: { type: MSG.CALL_STARTED, call_id: "c1", role: "answerer", peer: { name: "Sam" }, alive: false },
};
const visitorInCall = () => play(visitorNext, visitorInitial(), ...V.ready, V.join, V.queued, V.started).state;
const line = (seq, from, text = "x", call_id = "c1") => ({ type: MSG.CHAT, call_id, seq, from, text, at: 1000 + seq });

describe("the visitor's chat", () => {
  test("typed lines go to the desk for the call; the desk's confirmation shows them", () => {
    let r = play(visitorNext, visitorInCall(), { type: "submit_chat", text: "  order 1234 " });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.CHAT, call_id: "c1", text: "order 1234" }]);
    assert.equal(effects(r.fx, "clearChatInput").length, 1);
    assert.equal(r.state.chat.entries.length, 0); // shown once the desk has it
    r = play(visitorNext, r.state, line(1, "visitor", "order 1234"), line(1, "visitor", "order 1234"));
    assert.deepEqual(r.state.chat.entries.map((e) => e.text), ["order 1234"]);
    assert.deepEqual(sent(play(visitorNext, r.state, { type: "submit_chat", text: "   " }).fx), []);
  });

  test("while minimised, the agent's lines count as unread, told to the host page; opening clears them", () => {
    let r = play(visitorNext, visitorInCall(), { type: "host_hidden" }, line(1, "agent"), line(2, "visitor"), line(3, "agent"));
    assert.equal(r.state.chat.unread, 2);
    assert.deepEqual(effects(r.fx, "unread").map((f) => f.count), [1, 2]);
    r = play(visitorNext, r.state, { type: "host_open" });
    assert.equal(r.state.chat.unread, 0);
    assert.deepEqual(effects(r.fx, "unread").map((f) => f.count), [0]);
    // In view, nothing is unread.
    r = play(visitorNext, r.state, line(4, "agent"));
    assert.equal(r.state.chat.unread, 0);
  });

  test("a replay keeps the chat, the history fills what was missed, another call starts afresh", () => {
    let r = play(visitorNext, visitorInCall(), line(1, "agent", "one"));
    r = play(visitorNext, r.state, { ...V.started, replay: true }, { type: MSG.CHAT_HISTORY, call_id: "c1", messages: [line(1, "agent", "one"), line(2, "visitor", "two")] });
    assert.deepEqual(r.state.chat.entries.map((e) => e.seq), [1, 2]);
    assert.equal(play(visitorNext, r.state, line(5, "agent", "x", "c9")).state.chat.entries.length, 2); // not this call
    r = play(visitorNext, r.state, { type: "file_status", key: "out-1", status: "sent", url: "blob:u" });
    // A transfer and a new call: the old transcript goes.
    r = play(visitorNext, r.state, { type: "pick_file", file: { name: "p.png", size: 5, type: "image/png" }, key: "out-1" });
    r = play(visitorNext, r.state, { type: "file_status", key: "out-1", status: "sent", url: "blob:u" });
    r = play(visitorNext, r.state, { type: MSG.CALL_ENDED, call_id: "c1", reason: "transferred", queue: "sales" }, { ...V.started, call_id: "c2" });
    assert.deepEqual(r.state.chat.entries, []);
    assert.equal(r.state.chat.callId, "c2");
    assert.deepEqual(effects(r.fx, "revokeUrls").map((f) => f.urls), [["blob:u"]]);
  });

  test("files: refused here when too big or of a type not allowed, else sent peer to peer", () => {
    let r = play(visitorNext, visitorInCall(), { type: "pick_file", file: { name: "big.jpg", size: MAX_FILE_BYTES + 1, type: "image/jpeg" }, key: "out-1" });
    assert.equal(effects(r.fx, "sendFile").length, 0);
    assert.equal(r.state.chat.entries[0].status, "refused");
    assert.match(r.state.chat.entries[0].reason, /too big/);
    r = play(visitorNext, r.state, { type: "pick_file", file: { name: "x.html", size: 10, type: "text/html" }, key: "out-2" });
    assert.match(r.state.chat.entries[1].reason, /cannot be sent/);
    r = play(visitorNext, r.state, { type: "pick_file", file: { name: "p.pdf", size: 10, type: "application/pdf" }, key: "out-3" });
    assert.deepEqual(effects(r.fx, "sendFile").map((f) => f.key), ["out-3"]);
    r = play(visitorNext, r.state, { type: "file_status", key: "out-3", status: "refused", reason: "peer" });
    assert.match(r.state.chat.entries[2].reason, /cannot receive/);
    r = play(visitorNext, r.state, { type: "file_incoming", key: "in-1", name: "r.png", size: 3, mime: "image/png" }, { type: "file_status", key: "in-1", status: "received", url: "blob:r" });
    assert.deepEqual([r.state.chat.entries[3].from, r.state.chat.entries[3].url], ["agent", "blob:r"]);
  });

  test("a full chat is said under the log", () => {
    const r = play(visitorNext, visitorInCall(), { type: MSG.ERROR, code: ERROR.CHAT_FULL, in_reply_to: MSG.CHAT });
    assert.match(r.state.chat.notice, /full/);
    assert.equal(r.state.phase, "call-connecting");
  });
});

describe("the agent's chat", () => {
  test("lines both ways; unread while the console's tab is out of view", () => {
    let r = play(agentNext, agentInCall(), { type: "submit_chat", text: "https://shop.example/returns" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.CHAT, call_id: "c1", text: "https://shop.example/returns" }]);
    r = play(agentNext, r.state, { type: "page_visibility", visible: false }, line(1, "agent"), line(2, "visitor"));
    assert.equal(r.state.chat.unread, 1);
    r = play(agentNext, r.state, { type: "page_visibility", visible: true });
    assert.equal(r.state.chat.unread, 0);
    // The tab in view but the chat scrolled away: unread too, until it comes on screen.
    r = play(agentNext, r.state, { type: "chat_in_view", visible: false }, line(3, "visitor"), line(4, "visitor"));
    assert.equal(r.state.chat.unread, 2);
    r = play(agentNext, r.state, { type: "chat_in_view", visible: true });
    assert.equal(r.state.chat.unread, 0);
    // Another call: a fresh transcript.
    r = play(agentNext, r.state, { type: MSG.CALL_STARTED, now: 9, call_id: "c2", role: "offerer", peer: { name: "Bo" }, alive: false });
    assert.deepEqual([r.state.chat.callId, r.state.chat.entries.length], ["c2", 0]);
  });

  test("a reloaded console gets the transcript again", () => {
    const r = play(agentNext, agentInCall(), { type: MSG.CHAT_HISTORY, call_id: "c1", messages: [line(2, "agent"), line(1, "visitor")] });
    assert.deepEqual(r.state.chat.entries.map((e) => [e.seq, e.from]), [[1, "visitor"], [2, "agent"]]);
  });
});
