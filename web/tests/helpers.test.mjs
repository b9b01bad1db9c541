// The pure helpers the pages share: formatting, the visitor's words, device advice, sign-in
// answers, the wallboard's figures, and the protocol module against docs/protocol.md.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import * as format from "../static/shared/format.js";
import { describeMediaProblem } from "../static/shared/media.js";
import { levelOf, nextLevel } from "../static/shared/meter.js";
import { CLOSE, ERROR, MSG } from "../static/shared/protocol.js";
import { signInProblem } from "../static/shared/signin.js";
import * as text from "../static/visitor/text.js";
import { initial as visitorInitial } from "../static/visitor/state.js";
import * as wallboard from "../static/wallboard/model.js";
import { play } from "./support.mjs";

describe("format", () => {
  test("ordinal and counts", () => {
    assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(format.ordinal), [
      "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]);
    assert.equal(format.countOf(1, "minute"), "1 minute");
    assert.equal(format.countOf(0, "minute"), "0 minutes");
    assert.equal(format.countOf(3, "hour"), "3 hours");
  });

  test("clip counts code points and never halves an emoji", () => {
    assert.equal(format.clip("abc", 5), "abc");
    assert.equal(format.clip("😀😀😀", 2), "😀😀");
    assert.equal(format.clip("a😀b", 2), "a😀");
    assert.equal(format.clip(null, 3), "");
    const clipped = format.clip("x".repeat(79) + "😀😀", 80);
    assert.equal(Array.from(clipped).length, 80);
    assert.ok(!/[\ud800-\udbff]$/.test(clipped));
  });

  test("eta, clock, team names", () => {
    assert.equal(format.formatEta(null), "we will be with you as soon as we can");
    assert.equal(format.formatEta(-1), "we will be with you as soon as we can");
    assert.equal(format.formatEta(30), "under a minute");
    assert.equal(format.formatEta(60), "about 1 minute");
    assert.equal(format.formatEta(150), "about 3 minutes");
    assert.equal(format.formatEta(3600), "over an hour");
    assert.equal(format.formatClock(65), "1:05");
    assert.equal(format.formatClock(3725), "1:02:05");
    assert.equal(format.formatClock(-3), "0:00");
    assert.equal(format.teamName("billing-de"), "billing de");
    assert.equal(format.teamName(""), "support");
  });

  test("opening times and durations", () => {
    const now = new Date(2030, 0, 7, 15, 0); // a Monday afternoon, local time
    assert.match(format.formatOpening(new Date(2030, 0, 7, 17, 0), now), /^today at /);
    assert.match(format.formatOpening(new Date(2030, 0, 8, 9, 0), now), /^tomorrow at /);
    assert.match(format.formatOpening(new Date(2030, 0, 10, 9, 0), now), /^on \S+ at /);
    assert.equal(format.formatDuration(20000), "under a minute");
    assert.equal(format.formatDuration(90000), "2 minutes");
    assert.equal(format.formatDuration(7200000), "2 hours");
    assert.equal(format.formatDuration("x"), "");
    assert.equal(format.formatDateTime("x"), "");
    assert.equal(format.formatDateTime(null), "");
  });

  test("a moment carries its date, as the locale writes it", () => {
    const ms = Date.UTC(2026, 11, 1, 14, 5);
    assert.equal(format.formatDateTime(ms, "en-GB", "UTC"), "1 Dec 2026, 14:05");
    assert.equal(format.formatDateTime(ms, "de-DE", "UTC"), "01.12.2026, 14:05");
    assert.equal(format.formatDateTime(String(ms), "en-US", "UTC"), "Dec 1, 2026, 2:05 PM");
    assert.match(format.formatDateTime(Date.now()), /\d{4}/); // today too: with the year
  });
});

describe("the visitor's words", () => {
  test("contacts: a phone number with its area code, or an email address", () => {
    assert.equal(text.contactProblem(""), "Please give us a phone number or an email address.");
    assert.equal(text.contactProblem("ada@example.org"), "");
    assert.equal(text.contactProblem("ada@example"), "That email address does not look right.");
    assert.equal(text.contactProblem("+44 20 7946 0958"), "");
    assert.equal(text.contactProblem("(020) 7946-0958 ext. 12"), "");
    assert.match(text.contactProblem("12345"), /area code/);
    assert.match(text.contactProblem("call me maybe"), /area code/);
  });

  test("rate limits say how long to wait", () => {
    assert.match(text.limitedText({ limit: "waiting" }), /already waiting/);
    assert.equal(text.limitedText({ limit: "joins", retry_after_s: 1 }), "Too many people are joining from your network right now. Please try again in 1 second.");
    assert.match(text.limitedText({ limit: "callbacks", retry_after_s: 3600 }), /in 60 minutes/);
    assert.match(text.limitedText({ limit: "joins" }), /in 60 seconds/);
  });

  test("the line before joining", () => {
    assert.equal(text.lineInfoText({ waiting: 0, agents_available: 2 }), "Someone is free to talk to you now.");
    assert.equal(text.lineInfoText({ waiting: 1, eta_seconds: 120 }), "1 person waiting · expected wait about 2 minutes");
    assert.equal(text.lineInfoText({ waiting: 0, agents_available: 0 }), "Expected wait: we will be with you as soon as we can");
    assert.equal(
      text.lineInfoText({ waiting: 3, agents_available: 0, eta_seconds: null }),
      "Nobody is free to talk right now. You can wait in line or ask us to call you back."
    );
  });

  test("status line, call ends, call-back headings", () => {
    const s = { ...visitorInitial(), phase: "in-call", peerName: "Sam" };
    assert.equal(text.statusText(s), "In call with Sam");
    assert.equal(text.statusText({ ...s, phase: "call-connecting" }), "Connecting to Sam…");
    assert.equal(text.statusText({ ...s, phase: "waiting" }), "Waiting in line");
    assert.equal(text.endText({ reason: "hangup", by: "agent" }), "The agent ended the call.");
    assert.equal(text.endText({ reason: "peer_left" }), "The agent's connection was lost.");
    assert.equal(text.endText({ reason: "mystery" }), "The call has ended.");
    const now = new Date(2030, 0, 7, 15, 0);
    const closed = text.callbackWords({ ...s, callbackWhy: "closed", opensAt: "" }, now);
    assert.equal(closed.back, "");
    assert.match(closed.intro, /^We are not taking calls at the moment\./);
    const waiting = text.callbackWords({ ...s, callbackWhy: "waiting", position: 3 }, now);
    assert.match(waiting.intro, /place in line \(3rd\)/);
    assert.equal(waiting.back, "Keep waiting");
  });
});

test("device advice", () => {
  assert.equal(describeMediaProblem({ problem: null }), "");
  assert.match(describeMediaProblem({ problem: "camera_blocked" }), /blocked the camera/);
  assert.match(describeMediaProblem({ problem: "no_camera" }), /No camera found/);
  assert.match(describeMediaProblem({ problem: "camera_busy" }), /another app/);
  assert.match(describeMediaProblem({ problem: "no_media", micError: "NotAllowedError" }), /see and hear the other person, but they will not hear you/);
  assert.match(describeMediaProblem({ problem: "no_media", micError: "unsupported" }), /cannot use a camera/);
});

test("sign-in answers", () => {
  assert.deepEqual(signInProblem(200, null), {});
  assert.deepEqual(signInProblem(401, null), { error: "Wrong username or password", wrongPassword: true });
  assert.equal(signInProblem(429, "90").error, "Too many failed sign-ins. Try again in 2 minutes.");
  assert.equal(signInProblem(429, null).error, "Too many failed sign-ins. Try again in 1 minute.");
  assert.equal(signInProblem(503, null).error, "Sign-in failed (HTTP 503). Try again.");
});

describe("the wallboard", () => {
  test("its phases", () => {
    let r = play(wallboard.next, wallboard.initial(), { type: "me", agent: null });
    assert.equal(r.state.phase, "login");
    assert.equal(r.state.connectionShown, false);
    r = play(wallboard.next, r.state, { type: "submit_login", username: " boss ", password: "pw" });
    assert.deepEqual(r.fx.map((f) => f.do), ["signIn"]);
    r = play(wallboard.next, r.state, { type: "signed_in", agent: {} }, { type: "me", agent: { name: "boss", role: "supervisor" } });
    assert.deepEqual(r.fx.map((f) => f.do), ["clearPassword", "whoAmI", "startPolling"]);
    r = play(wallboard.next, r.state, { type: "polled", stats: { queues: {} }, agents: [], nowMs: 1, at: 2 });
    assert.equal(r.state.phase, "board");
    assert.equal(r.state.connection, "connected");
    r = play(wallboard.next, r.state, { type: "poll_failed" });
    assert.equal(r.state.connection, "disconnected");
    assert.equal(r.state.data.at, 2); // the last figures stay on the wall
    r = play(wallboard.next, r.state, { type: "unauthorized" });
    assert.equal(r.state.phase, "login");
    const unreachable = play(wallboard.next, wallboard.initial(), { type: "me", agent: undefined }, { type: "poll_failed" });
    assert.equal(unreachable.state.phase, "board");
    for (const [from, moves] of Object.entries(wallboard.MOVES)) for (const to of moves) assert.ok(wallboard.MOVES[to], `${from} -> ${to}`);
  });

  test("an agent who is not a supervisor is told so, and nothing is polled", () => {
    let r = play(wallboard.next, wallboard.initial(), { type: "me", agent: { name: "grace", role: "agent" } });
    assert.equal(r.state.phase, "forbidden");
    assert.deepEqual(r.fx.map((f) => f.do), ["stopPolling"]);
    assert.equal(r.state.connectionShown, false);
    // Rendered so by the server: it stays so.
    assert.equal(wallboard.initial("forbidden").phase, "forbidden");
    assert.equal(wallboard.initial("anything else").phase, "loading");
    // The role taken away while the board is up: the next poll answers 403.
    r = play(wallboard.next, wallboard.initial(), { type: "me", agent: { name: "boss", role: "supervisor" } });
    r = play(wallboard.next, r.state, { type: "polled", stats: { queues: {} }, agents: [], nowMs: 1, at: 2 }, { type: "forbidden" });
    assert.equal(r.state.phase, "forbidden");
    assert.deepEqual(r.fx.map((f) => f.do), ["stopPolling"]);
  });

  test("its figures", () => {
    assert.equal(wallboard.clock(null), "–");
    assert.equal(wallboard.clock(65), "01:05");
    assert.equal(wallboard.clock(3725), "1:02:05");
    assert.equal(wallboard.percent(0.857), "86%");
    assert.equal(wallboard.percent(null), "–");
    const q = { waiting_now: 2, longest_wait_now_s: 45, answered: 3, service_level: 0.5, avg_handle_s: 100, agents: { available: 1, offered: 1 } };
    const t = wallboard.tile("support", q, { threshold_s: 30 }, null);
    assert.equal(t.alert, true);
    assert.equal(t.threshold, 30);
    assert.equal(t.counts.available, 2); // offered counts as available
    const agents = [
      { name: "b", display_name: "B", state: "offline", queues: ["support"] },
      { name: "a", display_name: "A", state: "in_call", queues: ["support"] },
      { name: "c", display_name: "C", state: "in_call", queues: ["sales"] },
    ];
    assert.deepEqual(wallboard.countsFor("support", q, agents), { available: 0, in_call: 1, wrap_up: 0, break: 0, offline: 1 });
    assert.deepEqual(wallboard.sortAgents(agents).map((a) => a.name), ["a", "c", "b"]);
    assert.equal(wallboard.stateSince({ state: "wrap_up", until_ms: 70000 }, 5000), "01:05 left");
    assert.equal(wallboard.stateSince({ state: "available", since_ms: 1000 }, 61000), "01:00");
  });

  test("every state shows for how long, and Break and Offline why", () => {
    const now = 3_600_000;
    for (const state of ["available", "offered", "in_call", "break", "offline"]) {
      assert.equal(wallboard.stateSince({ state, since_ms: now - 125_000 }, now), "02:05", state);
    }
    assert.equal(wallboard.stateSince({ state: "offline", since_ms: null }, now), "–"); // never signed in
    const missed = { state: "break", since_ms: now - 1000, reason: "Missed 3 offers in a row", reason_code: "missed_offers", missed: 3 };
    assert.equal(wallboard.stateReason(missed), "Missed 3 offers in a row");
    const once = { state: "break", reason: "Missed 1 offers in a row", reason_code: "missed_offers", missed: 1 };
    assert.equal(wallboard.stateReason(once), "Missed 1 offer in a row"); // the desk's code, not its English
    assert.equal(wallboard.stateReason({ state: "offline", reason: "Connection lost" }), "Connection lost");
    assert.equal(wallboard.stateReason({ state: "offline", reason: "Signed out", reason_code: "signed_out" }), "Signed out");
    // A code from a newer desk: its own words.
    assert.equal(wallboard.stateReason({ state: "offline", reason: "On a course", reason_code: "training" }), "On a course");
    assert.equal(wallboard.stateReason({ state: "break", reason: null }), "");
    assert.equal(wallboard.stateReason({ state: "available", reason: "stale" }), "");
    assert.equal(wallboard.statsUrl("?threshold=30"), "/api/stats?threshold=30");
    assert.equal(wallboard.statsUrl("?threshold=0"), "/api/stats");
    assert.equal(wallboard.statsUrl("?threshold=abc"), "/api/stats");
  });
});

describe("the protocol module matches docs/protocol.md", () => {
  const doc = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  const section = (title) => doc.split(/^## /m).find((s) => s.startsWith(title));
  // The first cell of every body row of the section's tables (a header row is followed by |---|).
  const firstColumn = (md) => {
    const lines = md.split("\n");
    const rows = lines.filter((line, i) => line.startsWith("| ") && !(lines[i + 1] || "").startsWith("|---"));
    return rows.flatMap((row) => [...row.split("|")[1].matchAll(/`?([a-z0-9_]+)`?/g)].map((m) => m[1]));
  };

  test("every close code", () => {
    const codes = firstColumn(section("Close codes")).map(Number);
    assert.deepEqual([...new Set(Object.values(CLOSE))].sort(), [...new Set(codes)].sort());
  });

  test("every message type", () => {
    const types = ["Messages from a visitor", "Messages from an agent", "Messages from the desk"].flatMap((t) => firstColumn(section(t)));
    assert.deepEqual([...new Set(Object.values(MSG))].sort(), [...new Set(types)].sort());
  });

  test("every error code", () => {
    assert.deepEqual(Object.values(ERROR).sort(), firstColumn(section("Errors")).sort());
  });
});

describe("the microphone meter", () => {
  test("the peak of a block, -60..0 dBFS onto 0..1", () => {
    assert.equal(levelOf(new Float32Array(256)), 0);
    assert.equal(levelOf([0.0005, -0.0009]), 0); // under -60 dB: silence
    assert.equal(levelOf([0, -1, 0.5]), 1);
    assert.ok(Math.abs(levelOf([0.1]) - 2 / 3) < 1e-9); // -20 dB
    assert.ok(Math.abs(levelOf([-0.01]) - 1 / 3) < 1e-9); // -40 dB
    assert.equal(levelOf([NaN]), 0);
  });

  test("it jumps up at once and falls back gently", () => {
    assert.equal(nextLevel(0.2, 0.9), 0.9);
    assert.equal(nextLevel(0.8, 0), 0.6000000000000001);
    let shown = 1;
    for (let i = 0; i < 20; i++) shown = nextLevel(shown, 0);
    assert.ok(shown < 0.01);
  });
});
