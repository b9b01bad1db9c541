// The visitor panel's transition table (web/static/visitor/machine.js), event by event.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { next } from "../static/visitor/machine.js";
import { MOVES, PHASES, currentView, initial, nobodyFree } from "../static/visitor/state.js";
import { statusText } from "../static/visitor/text.js";
import { CLOSE, ERROR, MSG } from "../static/shared/protocol.js";
import { CHAT_EVENTS, describeMoves, effects, play, sent } from "./support.mjs";
import { MAX_LOSS_PCT, MAX_RTT_MS, combine, joinResult, summarize, verdict } from "../static/visitor/precall.js";
import { precallWords } from "../static/visitor/text.js";

const OPEN_LINE = { open: true, agents_online: 1, agents_available: 1, waiting: 0, eta_seconds: 0 };
const CAMERA = { type: "devices", audioOnly: false, hasVideo: true, problem: null };
const WELCOME = { type: MSG.WELCOME, ice_servers: [{ urls: "stun:desk" }], ice_transport_policy: "all" };
const JOIN = { type: "submit_join", name: " Ada ", topic: "a question", page: "https://shop.example/p" };
const QUEUED = { type: MSG.QUEUED, ticket: "T1", queue: "support", position: 2, eta_seconds: 90 };
const STARTED = { type: MSG.CALL_STARTED, call_id: "c1", role: "answerer", peer: { name: "Sam" }, alive: false };

const run = (state, ...events) => play(next, state, ...events);

/** The panel ready to join, its warm socket open and welcomed. */
function ready() {
  return run(
    initial({ queue: "support" }),
    { type: "boot", ticket: null },
    { type: "first_look", info: OPEN_LINE },
    CAMERA,
    { type: "socket_open" },
    WELCOME
  ).state;
}
const waiting = () => run(ready(), JOIN, QUEUED).state;
const connecting = () => run(ready(), JOIN).state;
const calling = () => run(waiting(), STARTED).state;
const inCall = () => run(calling(), { type: "peer_state", state: "connected", now: 1000 }).state;
const ended = () => run(inCall(), { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" }).state;

describe("before the line", () => {
  test("the load looks at the line, checks the devices, then opens a warm socket", () => {
    let r = run(initial({ queue: "support" }), { type: "boot", ticket: null });
    assert.deepEqual(r.fx.map((f) => f.do), ["firstLook"]);
    r = run(r.state, { type: "first_look", info: OPEN_LINE });
    assert.equal(r.state.phase, "checking");
    assert.equal(r.state.checking, true);
    assert.equal(r.state.lineInfo, "Someone is free to talk to you now.");
    assert.deepEqual(r.fx.map((f) => f.do), ["checkDevices"]);
    r = run(r.state, CAMERA);
    assert.equal(r.state.phase, "ready");
    assert.equal(r.state.checking, false);
    assert.equal(r.state.link, "connecting");
    assert.deepEqual(effects(r.fx, "connect").length, 1);
    assert.deepEqual(effects(r.fx, "timer").map((f) => f.name), ["warm"]);
    assert.deepEqual(effects(r.fx, "host").map((f) => f.msg), [{ type: "state", phase: "ready" }]);
  });

  test("a closed line opens the call-back form and no camera", () => {
    const r = run(
      initial(),
      { type: "boot", ticket: null },
      { type: "first_look", info: { open: false, opens_at: "2030-01-07T09:00:00Z" } }
    );
    assert.equal(r.state.phase, "closed");
    assert.equal(r.state.callbackWhy, "closed");
    assert.equal(r.state.opensAt, "2030-01-07T09:00:00Z");
    assert.equal(effects(r.fx, "checkDevices").length, 0);
    assert.equal(effects(r.fx, "connect").length, 0); // no warm socket for a closed line
    assert.equal(currentView(r.state), "callback");
    // It opens again while the form is up: the form says so and offers the line.
    const again = run(r.state, { type: "availability", info: OPEN_LINE });
    assert.equal(again.state.phase, "callback");
    assert.equal(again.state.callbackWhy, "reopened");
  });

  test("nobody online: wait anyway, or ask for a call back", () => {
    const r = run(ready(), { type: "availability", info: { ...OPEN_LINE, agents_online: 0 } });
    assert.equal(r.state.nobodyIn, true);
    assert.equal(r.state.offlineNotice, true);
    const form = run(r.state, { type: "open_callback", why: "offline" });
    assert.equal(form.state.phase, "callback");
    assert.equal(form.state.offlineNotice, false);
    assert.deepEqual(effects(form.fx, "focus").map((f) => f.target), ["callback"]);
  });

  test("an unknown line says so", () => {
    const r = run(ready(), { type: "availability", info: { unknown: true } });
    assert.equal(r.state.error, "This help line is not available right now.");
  });

  test("the camera check's problem is kept; a check that ends after the call is released", () => {
    const r = run(ready(), { type: "retry_media" }, { ...CAMERA, audioOnly: true, hasVideo: false, problem: "camera_blocked" });
    assert.equal(r.state.media.problem, "camera_blocked");
    assert.equal(r.state.localVideo, false);
    assert.equal(r.state.audioOnly, true);
    const late = run(ended(), { type: "retry_media" }, CAMERA);
    assert.equal(effects(late.fx, "releaseMedia").length, 1);
    assert.equal(late.state.devicesChecked, false);
  });
});

describe("joining", () => {
  test("on a welcomed warm socket the click only sends join", () => {
    const r = run(ready(), JOIN);
    assert.equal(r.state.phase, "connecting");
    assert.deepEqual(sent(r.fx), [MSG.JOIN]);
    assert.equal(effects(r.fx, "connect").length, 0);
    const join = effects(r.fx, "send")[0].msg;
    assert.deepEqual(join, {
      type: MSG.JOIN,
      queue: "support",
      name: "Ada",
      topic: "a question",
      audio_only: false,
      page: "https://shop.example/p",
    });
  });

  test("a socket still opening carries the join after its welcome", () => {
    const opening = run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: OPEN_LINE }, CAMERA);
    let r = run(opening.state, JOIN);
    assert.deepEqual(sent(r.fx), []);
    r = run(r.state, { type: "socket_open" }, WELCOME);
    assert.deepEqual(sent(r.fx), [MSG.JOIN]);
  });

  test("a warm socket that closes is let go without a word; Join connects", () => {
    let r = run(ready(), { type: "socket_closed", code: CLOSE.GOING_AWAY, opened: true });
    assert.equal(r.state.link, "none");
    assert.equal(r.state.warmLost, true);
    assert.equal(effects(r.fx, "retry").length, 0);
    assert.equal(r.state.notice, "");
    assert.equal(r.state.error, "");
    r = run(r.state, { type: "intent" });
    assert.equal(effects(r.fx, "connect").length, 0); // typing opens no socket now
    r = run(r.state, JOIN);
    assert.equal(effects(r.fx, "connect").length, 1);
    assert.equal(r.state.warmLost, false);
  });

  test("an idle warm socket is let go; the next sign of intent opens another", () => {
    let r = run(ready(), { type: "warm_idle" });
    assert.equal(r.state.link, "none");
    assert.equal(effects(r.fx, "disconnect").length, 1);
    r = run(r.state, { type: "host_open" });
    assert.equal(effects(r.fx, "connect").length, 1);
  });

  test("a name is required", () => {
    const r = run(ready(), { ...JOIN, name: "   " });
    assert.equal(r.state.phase, "ready");
    assert.equal(r.state.error, "Please tell us your name.");
    assert.deepEqual(sent(r.fx), []);
  });

  test("queued: the place, the wait and the ticket", () => {
    const r = run(connecting(), QUEUED);
    assert.equal(r.state.phase, "waiting");
    assert.equal(r.state.position, 2);
    assert.equal(r.state.eta, 90);
    assert.deepEqual(effects(r.fx, "ticket").map((f) => f.ticket), ["T1"]);
    const later = run(r.state, { type: MSG.POSITION, position: 1, eta_seconds: 200, eta_reason: "Busy" });
    assert.equal(later.state.position, 1);
    assert.equal(later.state.etaReasonShown, true);
    const shrinking = run(later.state, { type: MSG.POSITION, position: 1, eta_seconds: 100 });
    assert.equal(shrinking.state.etaReasonShown, false);
  });

  test("nobody serving: no figure, the nobody-free status and the call-back offer; a figure when someone is back", () => {
    let r = run(connecting(), { ...QUEUED, eta_seconds: null });
    assert.equal(r.state.phase, "waiting");
    assert.equal(nobodyFree(r.state), true);
    assert.equal(statusText(r.state), "Nobody is free right now");
    r = run(r.state, { type: MSG.POSITION, position: 2, eta_seconds: 120 });
    assert.equal(nobodyFree(r.state), false);
    assert.equal(r.state.eta, 120);
  });

  test("the priority token goes with the join, and is dropped when the desk refuses it", () => {
    const start = run(initial({ priorityToken: "tok" }), { type: "boot", ticket: null }, { type: "first_look", info: OPEN_LINE }, CAMERA, { type: "socket_open" }, WELCOME);
    let r = run(start.state, JOIN);
    assert.equal(effects(r.fx, "send")[0].msg.priority_token, "tok");
    r = run(r.state, { type: MSG.ERROR, code: ERROR.BAD_MESSAGE, in_reply_to: MSG.JOIN, message: "priority_token: expired" });
    const again = effects(r.fx, "send")[0].msg;
    assert.equal(again.type, MSG.JOIN);
    assert.equal("priority_token" in again, false);
    assert.equal(r.state.priorityToken, "");
    assert.equal(r.state.phase, "connecting");
  });

  test("a join refused while closed opens the call-back form", () => {
    const r = run(connecting(), { type: MSG.ERROR, code: ERROR.QUEUE_CLOSED, in_reply_to: MSG.JOIN, opens_at: null });
    assert.equal(r.state.phase, "closed");
    assert.equal(r.state.link, "none");
    assert.equal(effects(r.fx, "releaseMedia").length, 1);
  });

  test("rate_limited: a join is refused with the wait; anything else is ignored", () => {
    const r = run(connecting(), { type: MSG.ERROR, code: ERROR.RATE_LIMITED, in_reply_to: MSG.JOIN, limit: "joins", retry_after_s: 30 });
    assert.equal(r.state.phase, "ready");
    assert.equal(r.state.error, "Too many people are joining from your network right now. Please try again in 30 seconds.");
    const quiet = run(waiting(), { type: MSG.ERROR, code: ERROR.RATE_LIMITED, in_reply_to: MSG.MEDIA });
    assert.equal(quiet.state.error, "");
    assert.equal(quiet.state.phase, "waiting");
  });

  test("unavailable: the join goes again by itself, ten times, then the visitor is told", () => {
    let s = connecting();
    const refusal = { type: MSG.ERROR, code: ERROR.UNAVAILABLE, in_reply_to: MSG.JOIN, retry_after_s: 1 };
    for (let n = 1; n <= 10; n += 1) {
      const r = run(s, refusal);
      assert.equal(r.state.unavailableRetries, n);
      assert.match(r.state.notice, /Trying again/);
      const [timer] = effects(r.fx, "timer");
      assert.deepEqual([timer.name, timer.ms, timer.event], ["resend-join", 1000, { type: "resend", what: MSG.JOIN }]);
      const resend = run(r.state, timer.event);
      assert.deepEqual(sent(resend.fx), [MSG.JOIN]);
      s = resend.state;
    }
    const r = run(s, refusal);
    assert.equal(r.state.phase, "ready");
    assert.equal(r.state.error, "We are having trouble reaching the help desk. Please try again in a minute.");
    assert.equal(r.state.unavailableRetries, 0);
  });

  test("unavailable for a leave, a hangup, a call-back and a resume is retried too", () => {
    for (const what of [MSG.LEAVE, MSG.HANGUP, MSG.CALLBACK, MSG.RESUME]) {
      const r = run(waiting(), { type: MSG.ERROR, code: ERROR.UNAVAILABLE, in_reply_to: what });
      assert.deepEqual(effects(r.fx, "timer").map((f) => f.event.what), [what]);
    }
    const r = run(calling(), { type: "resend", what: MSG.HANGUP });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.HANGUP, call_id: "c1" }]);
  });
});

describe("in line", () => {
  test("1012, a server restarting: reconnect at once (soon), in line and in a call; other drops back off", () => {
    for (const state of [waiting(), calling()]) {
      const restart = run(state, { type: "socket_closed", code: CLOSE.SERVICE_RESTART, opened: true });
      assert.deepEqual(effects(restart.fx, "retry").map((f) => f.soon), [true]);
      assert.equal(restart.state.link, "connecting");
      const drop = run(state, { type: "socket_closed", code: 1006, opened: true });
      assert.deepEqual(effects(drop.fx, "retry").map((f) => f.soon), [false]);
    }
  });

  test("the socket drops while waiting: reconnect, say so, resume with the ticket", () => {
    let r = run(waiting(), { type: "socket_closed", code: 1006, opened: true });
    assert.deepEqual(effects(r.fx, "retry").length, 1);
    assert.equal(r.state.link, "connecting");
    r = run(r.state, { type: "socket_retrying" });
    assert.equal(r.state.notice, "Connection lost. Reconnecting…");
    r = run(r.state, { type: "socket_open" }, WELCOME);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.RESUME, ticket: "T1" }]);
    assert.equal(r.state.notice, "");
  });

  test("the socket drops in a call: the resume names the call (so an end meanwhile is told)", () => {
    let r = run(calling(), { type: "socket_closed", code: 1006, opened: true });
    r = run(r.state, { type: "socket_open" }, WELCOME);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.RESUME, ticket: "T1", call_id: "c1" }]);
    r = run(r.state, { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" });
    assert.equal(r.state.phase, "ended");
  });

  test("4001 and 4004: the place expired, back to the form", () => {
    for (const code of [CLOSE.INVALID_TICKET, CLOSE.ENTRY_GONE]) {
      const r = run(waiting(), { type: "socket_closed", code, opened: true });
      assert.equal(r.state.phase, "ready");
      assert.equal(r.state.error, "Your place in line has expired. Please join again.");
      assert.equal(r.state.ticket, null);
      assert.deepEqual(effects(r.fx, "ticket").map((f) => f.ticket), [null]);
      assert.equal(effects(r.fx, "retry").length, 0);
    }
  });

  test("4009: the conversation went on in another window", () => {
    const r = run(inCall(), { type: "socket_closed", code: CLOSE.REPLACED, opened: true });
    assert.equal(r.state.phase, "error");
    assert.equal(r.state.callId, null);
    assert.match(r.state.endedMessage, /another window/);
    assert.equal(effects(r.fx, "retry").length, 0);
    assert.equal(effects(r.fx, "endCall").length, 1);
  });

  test("1008 and 1009: closed because of an error", () => {
    for (const code of [CLOSE.POLICY, CLOSE.TOO_BIG]) {
      const r = run(waiting(), { type: "socket_closed", code, opened: true });
      assert.equal(r.state.phase, "error");
      assert.match(r.state.endedMessage, /because of an error/);
    }
  });

  test("a desk that never answers: five tries without a ticket, then give up", () => {
    let s = connecting();
    for (let n = 1; n < 5; n += 1) {
      const r = run(s, { type: "socket_closed", code: 1006, opened: false });
      assert.equal(effects(r.fx, "retry").length, 1, `try ${n}`);
      s = r.state;
    }
    const r = run(s, { type: "socket_closed", code: 1006, opened: false });
    assert.equal(r.state.phase, "error");
    assert.equal(effects(r.fx, "retry").length, 0);
    // With a place to keep it never gives up.
    let kept = waiting();
    for (let n = 0; n < 8; n += 1) kept = run(kept, { type: "socket_closed", code: 1006, opened: false }).state;
    assert.equal(kept.phase, "waiting");
  });

  test("leave asks once: Stay keeps the place; Leave is answered by left, or leaves by itself", () => {
    let r = run(waiting(), { type: "click_leave" });
    assert.deepEqual(sent(r.fx), []);
    assert.equal(r.state.leaveAsked, true);
    assert.deepEqual(effects(r.fx, "focus").map((f) => f.target), ["leave-no"]);
    const stayed = run(r.state, { type: "cancel_leave" });
    assert.equal(stayed.state.leaveAsked, false);
    assert.deepEqual(effects(stayed.fx, "focus").map((f) => f.target), ["position"]);
    assert.deepEqual(sent(run(stayed.state, { type: "confirm_leave" }).fx), []); // asked again first
    r = run(r.state, { type: "confirm_leave" });
    assert.deepEqual(sent(r.fx), [MSG.LEAVE]);
    assert.equal(r.state.leaveDisabled, true);
    const answered = run(r.state, { type: MSG.LEFT, reason: "left" });
    assert.equal(answered.state.phase, "left");
    assert.equal(answered.state.leaveDisabled, false);
    r = run(r.state, { type: "leave_timeout" });
    assert.equal(r.state.phase, "left");
    assert.deepEqual(effects(r.fx, "ticket").map((f) => f.ticket), [null]);
  });

  test("a long wait: the call-back form over the line, and back", () => {
    let r = run(waiting(), { type: MSG.MAX_WAIT, queue: "support", waited_seconds: 300 });
    assert.equal(r.state.maxWait, true);
    r = run(r.state, { type: "open_callback", why: "waiting" });
    assert.equal(r.state.phase, "waiting");
    assert.equal(currentView(r.state), "callback");
    r = run(r.state, { type: "callback_back" });
    assert.equal(currentView(r.state), "waiting");
    assert.deepEqual(effects(r.fx, "focus").map((f) => f.target), ["position"]);
  });

  test("focus follows the phase, within the panel only: the place after Join, Hang up when the call starts", () => {
    let r = run(connecting(), QUEUED);
    assert.deepEqual(effects(r.fx, "focus"), [{ do: "focus", target: "position", ifInPanel: true }]);
    r = run(r.state, STARTED);
    assert.deepEqual(effects(r.fx, "focus").map((f) => f.target), ["hangup"]);
    r = run(r.state, { type: "host_open" });
    assert.deepEqual(effects(r.fx, "focus"), [{ do: "focus", target: "hangup" }]); // reopened: always
    const reopened = run(waiting(), { type: "host_open" });
    assert.deepEqual(effects(reopened.fx, "focus").map((f) => f.target), ["position"]); // never Leave
  });

  test("moved to the overflow line: the notice, the new line", () => {
    const r = run(waiting(), { type: MSG.MOVED, queue: "sales", reason: "max_wait", position: 1 });
    assert.equal(r.state.queue, "sales");
    assert.equal(r.state.position, 1);
    assert.match(r.state.notice, /moved you to our sales team/);
  });

  test("a reload in line resumes with the ticket", () => {
    let r = run(initial(), { type: "boot", ticket: "T9" });
    assert.equal(r.state.phase, "connecting");
    assert.deepEqual(r.fx.map((f) => f.do).filter((d) => d !== "clear"), ["checkDevices", "host", "connect"]);
    r = run(r.state, { type: "socket_open" }, WELCOME);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.RESUME, ticket: "T9" }]);
    const refused = run(r.state, { type: MSG.ERROR, code: ERROR.BAD_MESSAGE, in_reply_to: MSG.RESUME });
    assert.equal(refused.state.phase, "checking");
    assert.equal(refused.state.error, "Your place in line has expired. Please join again.");
  });
});

describe("the call", () => {
  test("call_started from the line: chime, the peer connection, Connecting to …", () => {
    const r = run(waiting(), STARTED);
    assert.equal(r.state.phase, "call-connecting");
    assert.equal(r.state.callId, "c1");
    assert.deepEqual(r.fx.filter((f) => f.do === "chime").length, 1);
    const [start] = effects(r.fx, "startCall");
    assert.deepEqual(start, { do: "startCall", callId: "c1", role: "answerer", iceServers: [{ urls: "stun:desk" }], iceTransportPolicy: "all" });
    const connected = run(r.state, { type: "peer_state", state: "connected", now: 5 });
    assert.equal(connected.state.phase, "in-call");
    assert.equal(connected.state.callSince, 5);
  });

  test("the call's own ICE servers win over the welcome's", () => {
    const r = run(waiting(), { ...STARTED, ice_servers: [{ urls: "turn:fresh" }] });
    assert.deepEqual(effects(r.fx, "startCall")[0].iceServers, [{ urls: "turn:fresh" }]);
  });

  test("a replay of a live call changes nothing; of a dead one, starts again (no chime)", () => {
    const live = run(inCall(), { ...STARTED, alive: true });
    assert.deepEqual(live.fx, []);
    const dead = run(inCall(), { ...STARTED, alive: false });
    assert.equal(dead.state.phase, "call-connecting");
    assert.equal(effects(dead.fx, "startCall").length, 1);
    assert.equal(effects(dead.fx, "chime").length, 0);
  });

  test("queued after call_started (the agent was quick) keeps the call", () => {
    const r = run(connecting(), STARTED, QUEUED);
    assert.equal(r.state.phase, "call-connecting");
    assert.equal(r.state.callId, "c1");
    assert.equal(effects(r.fx, "endCall").length, 0);
    assert.deepEqual(effects(r.fx, "ticket").map((f) => f.ticket), ["T1"]);
    // queued again later (a resume after the call ended while away) drops the old call
    const later = run(r.state, QUEUED);
    assert.equal(later.state.phase, "waiting");
    assert.equal(later.state.callId, null);
  });

  test("the agent hangs up: ended, the rating offered, the socket kept for it", () => {
    let r = run(inCall(), { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" });
    assert.equal(r.state.phase, "ended");
    assert.equal(r.state.endedMessage, "The agent ended the call. Thank you for talking to us.");
    assert.equal(r.state.rateCallId, "c1");
    assert.equal(r.state.link, "open");
    assert.equal(effects(r.fx, "releaseMedia").length, 1);
    r = run(r.state, { type: "choose_score", score: 4 }, { type: "submit_rating", comment: " fine " });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.RATE, call_id: "c1", score: 4, comment: "fine" }]);
    assert.equal(r.state.ratingSending, true);
    r = run(r.state, { type: MSG.RATED, call_id: "c1" });
    assert.equal(r.state.rateCallId, null);
    assert.equal(r.state.ratingThanks, "Thank you for your feedback!");
    assert.equal(r.state.link, "none");
  });

  test("the visitor hangs up: the rating waits for the desk; wrong_state is tried once more", () => {
    let r = run(inCall(), { type: "click_hangup" });
    assert.deepEqual(sent(r.fx), [MSG.HANGUP]);
    assert.equal(r.state.phase, "ended");
    assert.equal(r.state.rateCallId, "c1");
    r = run(r.state, { type: "choose_score", score: 5 }, { type: "submit_rating", comment: "" });
    r = run(r.state, { type: MSG.ERROR, code: ERROR.WRONG_STATE, in_reply_to: MSG.RATE });
    assert.deepEqual(effects(r.fx, "timer").map((f) => f.name), ["rating-retry"]);
    r = run(r.state, { type: "resend_rating" });
    assert.deepEqual(sent(r.fx), [MSG.RATE]);
    r = run(r.state, { type: MSG.ERROR, code: ERROR.WRONG_STATE, in_reply_to: MSG.RATE });
    assert.equal(r.state.ratingThanks, "Sorry, we could not save your feedback.");
    assert.equal(r.state.rateCallId, null);
  });

  test("a hang-up without a connection ends the call and lets the socket go", () => {
    const offline = run(inCall(), { type: "socket_closed", code: 1006, opened: true }).state;
    const r = run(offline, { type: "click_hangup" });
    assert.equal(r.state.phase, "ended");
    assert.equal(r.state.rateCallId, null);
    assert.equal(r.state.link, "none");
  });

  test("a lost desk: the call waits out the grace period, then ends and says so", () => {
    const grace = run(inCall(), { ...WELCOME, call_grace_s: 12 }).state;
    assert.equal(grace.callGraceS, 12);
    let r = run(grace, { type: "peer_stalled" }, { type: "socket_closed", code: 1006, opened: true });
    assert.equal(r.state.reconnecting, true);
    assert.deepEqual(effects(r.fx, "timer").map((f) => [f.name, f.ms]), [["call-grace", 14000]]);
    assert.equal(effects(r.fx, "retry").length, 1);
    // Reconnects that never open do not push the end further away.
    const again = run(r.state, { type: "socket_closed", code: 1006, opened: false });
    assert.equal(effects(again.fx, "timer").length, 0);
    r = run(again.state, { type: "call_grace_over" });
    assert.equal(r.state.phase, "ended");
    assert.match(r.state.endedMessage, /lost the connection, so the call has ended/);
    assert.equal(r.state.callId, null);
    assert.equal(r.state.quality, null);
    assert.equal(r.state.link, "none");
    assert.equal(r.state.rateCallId, null); // nothing to send a rating through
    assert.deepEqual(effects(r.fx, "endCall").length, 1);
    assert.deepEqual(effects(r.fx, "ticket").map((f) => f.ticket), [null]);
  });

  test("a lost desk while media still flows: the call goes on; back in time: nothing ends", () => {
    const flowing = run(inCall(), { type: "socket_closed", code: 1006, opened: true }).state;
    let r = run(flowing, { type: "call_grace_over" });
    assert.equal(r.state.phase, "in-call");
    assert.deepEqual(effects(r.fx, "timer").map((f) => f.name), ["call-grace"]);
    const back = run(flowing, { type: "socket_open" }, WELCOME).state;
    r = run({ ...back, reconnecting: true }, { type: "call_grace_over" });
    assert.equal(r.state.phase, "in-call");
    assert.equal(r.state.callId, "c1");
  });

  test("a resume refused with 4004 in a call: the call ended meanwhile, and the panel says so", () => {
    const away = run(inCall(), { type: "socket_closed", code: 1006, opened: true }, { type: "socket_open" }, WELCOME).state;
    const r = run(away, { type: "socket_closed", code: CLOSE.ENTRY_GONE, opened: true });
    assert.equal(r.state.phase, "ended");
    assert.match(r.state.endedMessage, /lost the connection/);
  });

  test("the quality indicator follows the samples; a dropped connection is reconnecting", () => {
    let r = run(inCall(), { type: "peer_quality", level: "fair", rttMs: 220, lossPct: 0.5, kbps: 800, stalled: false });
    assert.deepEqual(r.state.quality, { level: "fair", rttMs: 220, lossPct: 0.5, kbps: 800 });
    r = run(r.state, { type: "peer_state", state: "disconnected", now: 2000 });
    assert.equal(r.state.reconnecting, true);
    r = run(r.state, { type: "peer_state", state: "connected", now: 3000 });
    assert.equal(r.state.reconnecting, false);
  });

  test("a transfer: back in line at the head of another team", () => {
    const r = run(inCall(), { type: MSG.CALL_ENDED, call_id: "c1", reason: "transferred", queue: "sales" });
    assert.equal(r.state.phase, "waiting");
    assert.equal(r.state.queue, "sales");
    assert.equal(r.state.notice, "Sam passed you to our sales team — you're next.");
    assert.equal(effects(r.fx, "ticket").length, 0);
    assert.equal(r.state.link, "open");
  });

  test("peer_media, an unstable connection, a slow one, and sound", () => {
    let r = run(inCall(), { type: MSG.PEER_MEDIA, call_id: "c1", muted: true, camera_off: false });
    assert.deepEqual(r.state.peerMedia, { muted: true, camera_off: false });
    r = run(r.state, { type: MSG.PEER_MEDIA, call_id: "other", muted: false, camera_off: true });
    assert.deepEqual(r.state.peerMedia, { muted: true, camera_off: false });
    r = run(r.state, { type: "peer_state", state: "failed" });
    assert.match(r.state.notice, /unstable/);
    r = run(r.state, { type: "peer_slow" }, { type: "sound_blocked" });
    assert.match(r.state.notice, /Still connecting/);
    assert.equal(r.state.soundBlocked, true);
    r = run(r.state, { type: "click_sound" });
    assert.equal(r.state.soundBlocked, false);
  });

  test("Mute and Camera are told to the agent in a call only", () => {
    const toggle = { type: "media_toggled", muted: true, camera_off: true };
    assert.deepEqual(sent(run(inCall(), toggle).fx), [MSG.MEDIA]);
    const r = run(waiting(), toggle);
    assert.deepEqual(sent(r.fx), []);
    assert.equal(r.state.localVideo, false);
  });

  test("a call_ended for another call is someone else's news", () => {
    const r = run(inCall(), { type: MSG.CALL_ENDED, call_id: "old", reason: "hangup", by: "agent" });
    assert.equal(r.state.phase, "in-call");
  });

  test("Talk to someone again: the form, the camera back on", () => {
    const r = run(ended(), { type: "click_again" });
    assert.equal(r.state.phase, "checking");
    assert.equal(effects(r.fx, "checkDevices").length, 1);
    assert.equal(r.state.rateCallId, null);
  });
});

describe("call-back requests", () => {
  const FORM = { type: "submit_callback", name: "Alan", contact: "alan@example.org", note: "sizes" };

  test("from the form before the line: a socket of its own, the request once welcomed", () => {
    const closed = run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: { open: false } }).state;
    let r = run(closed, FORM);
    assert.equal(effects(r.fx, "connect").length, 1);
    assert.deepEqual(r.state.pendingCallback.contact, "alan@example.org");
    r = run(r.state, { type: "socket_open" }, WELCOME);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [
      { type: MSG.CALLBACK, queue: "support", name: "Alan", contact: "alan@example.org", note: "sizes" },
    ]);
    r = run(r.state, { type: MSG.CALLBACK_SAVED, id: "1" });
    assert.equal(r.state.phase, "callback-saved");
    assert.equal(r.state.savedText, "Thanks, Alan. We'll get back to you at alan@example.org as soon as we can.");
    assert.equal(r.state.link, "none");
  });

  test("while waiting: the place is given up, and `left` after it changes nothing", () => {
    let r = run(waiting(), { type: "open_callback", why: "waiting" }, FORM);
    assert.deepEqual(sent(r.fx), [MSG.CALLBACK]);
    r = run(r.state, { type: MSG.CALLBACK_SAVED, id: "2" }, { type: MSG.LEFT, reason: "callback" });
    assert.equal(r.state.phase, "callback-saved");
  });

  test("after the request, someone free now: the visitor may still start a call", () => {
    const saved = run(ready(), { type: "open_callback", why: "offline" }, FORM, { type: "socket_open" }, WELCOME, { type: MSG.CALLBACK_SAVED, id: "3" });
    assert.equal(saved.state.phase, "callback-saved");
    assert.equal(effects(saved.fx, "fetchAvailability").length, 1); // asks at once
    assert.equal(saved.state.freeNow, false);
    // Nobody free: no call offered, and the click (if any) changes nothing.
    let r = run(saved.state, { type: "availability", info: { ...OPEN_LINE, agents_available: 0 } }, { type: "click_talk_now" });
    assert.equal(r.state.phase, "callback-saved");
    assert.equal(r.state.freeNow, false);
    // A closed line neither.
    r = run(saved.state, { type: "availability", info: { open: false, agents_available: 1 } });
    assert.equal(r.state.freeNow, false);
    // The panel keeps looking, every tick.
    assert.equal(effects(run(saved.state, { type: "tick" }).fx, "fetchAvailability").length, 1);
    // Someone is free: the form again, the camera back on, the name typed before.
    r = run(saved.state, { type: "availability", info: OPEN_LINE });
    assert.equal(r.state.freeNow, true);
    r = run(r.state, { type: "click_talk_now" });
    assert.equal(r.state.phase, "checking");
    assert.equal(effects(r.fx, "checkDevices").length, 1);
    assert.equal(effects(r.fx, "prefillJoin").length, 1);
    assert.deepEqual(effects(r.fx, "focus").at(-1), { do: "focus", target: "name" });
    r = run(r.state, CAMERA, JOIN);
    assert.equal(r.state.phase, "connecting");
  });

  test("bad contacts are refused before anything is sent", () => {
    const r = run(ready(), { type: "open_callback", why: "offline" }, { ...FORM, contact: "12" });
    assert.equal(r.state.callbackError, "Please enter a phone number with its area code, or an email address.");
    assert.deepEqual(sent(r.fx), []);
  });

  test("no answer, a refusal, a lost socket", () => {
    const form = run(ready(), { type: "open_callback", why: "offline" }, FORM).state;
    let r = run(form, { type: "callback_timeout" });
    assert.equal(r.state.callbackError, "We could not send your request. Please try again.");
    assert.equal(r.state.callbackRequest, null);
    r = run(form, { type: MSG.ERROR, code: ERROR.RATE_LIMITED, in_reply_to: MSG.CALLBACK, limit: "callbacks", retry_after_s: 600 });
    assert.equal(r.state.callbackError, "Too many call-back requests came from your network. Please try again in 10 minutes.");
    r = run(form, { type: MSG.ERROR, code: ERROR.CALLBACKS_FULL, in_reply_to: MSG.CALLBACK });
    assert.match(r.state.callbackError, /cannot take more/);
    r = run(form, { type: "socket_closed", code: 1006, opened: true });
    assert.equal(r.state.callbackError, "We could not reach the desk. Please try again.");
  });
});

// Every phase, every event: nothing throws, no state is changed in place (the states are
// frozen), and every move is one the table of moves allows.

const STATES = {
  checking: () => run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: OPEN_LINE }).state,
  ready,
  closed: () => run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: { open: false } }).state,
  callback: () => run(ready(), { type: "open_callback", why: "offline" }).state,
  "callback-saved": () =>
    run(ready(), { type: "open_callback", why: "offline" }, { type: "submit_callback", name: "A", contact: "a@b.cd", note: "" }, { type: MSG.CALLBACK_SAVED }).state,
  connecting,
  waiting,
  "call-connecting": calling,
  "in-call": inCall,
  ended,
  left: () => run(waiting(), { type: "click_leave" }, { type: "confirm_leave" }, { type: MSG.LEFT, reason: "left" }).state,
  error: () => run(waiting(), { type: "socket_closed", code: CLOSE.REPLACED, opened: true }).state,
};

const EVENTS = [
  { type: "boot", ticket: "T2" },
  { type: "first_look", info: OPEN_LINE },
  { type: "first_look", info: null },
  { type: "availability", info: OPEN_LINE },
  { type: "availability", info: { open: false } },
  { type: "availability", info: { unknown: true } },
  { type: "tick" },
  CAMERA,
  { type: "retry_media" },
  { type: "precall_result", result: { status: "ok", rttMs: 20, lossPct: 0, path: "direct" } },
  { type: "precall_result", result: { status: "busy", rttMs: null, lossPct: null, path: null } },
  { type: "host_open" },
  { type: "host_hidden" },
  ...CHAT_EVENTS,
  { type: "ticket_restored", ticket: "T3" },
  { type: "click_again" },
  { type: "socket_open" },
  ...[1000, 1001, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4004, 4009].map((code) => ({ type: "socket_closed", code, opened: true })),
  { type: "socket_closed", code: 1006, opened: false },
  { type: "socket_retrying" },
  { type: "warm_idle" },
  WELCOME,
  JOIN,
  { type: "intent" },
  QUEUED,
  { type: MSG.POSITION, position: 1, eta_seconds: 10 },
  { type: MSG.MOVED, queue: "sales", reason: "max_wait" },
  { type: MSG.MAX_WAIT },
  { type: "click_leave" },
  { type: "cancel_leave" },
  { type: "confirm_leave" },
  { type: "leave_timeout" },
  { type: MSG.LEFT, reason: "left" },
  { type: MSG.LEFT, reason: "callback" },
  STARTED,
  { ...STARTED, alive: true },
  { type: "call_media", callId: "c1", muted: false, camera_off: false },
  { type: "media_toggled", muted: true, camera_off: false },
  { type: "peer_state", state: "connected", now: 1 },
  { type: "peer_state", state: "failed" },
  { type: "peer_slow" },
  { type: "sound_blocked" },
  { type: "click_sound" },
  { type: MSG.PEER_MEDIA, call_id: "c1", muted: true, camera_off: true },
  { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" },
  { type: MSG.CALL_ENDED, call_id: "c1", reason: "transferred", queue: "sales" },
  { type: "click_hangup" },
  { type: "choose_score", score: 3 },
  { type: "submit_rating", comment: "ok" },
  { type: "resend_rating" },
  { type: "skip_rating" },
  { type: "rating_window_over" },
  { type: "rating_timeout" },
  { type: MSG.RATED, call_id: "c1" },
  { type: "open_callback", why: "offline" },
  { type: "open_callback", why: "waiting" },
  { type: "callback_back" },
  { type: "submit_callback", name: "A", contact: "a@b.cd", note: "" },
  { type: "callback_timeout" },
  { type: MSG.CALLBACK_SAVED },
  { type: "click_talk_now" },
  { type: "availability", info: { ...OPEN_LINE, agents_available: 0 } },
  ...Object.values(ERROR).flatMap((code) =>
    [MSG.JOIN, MSG.RESUME, MSG.CALLBACK, MSG.RATE, MSG.LEAVE, MSG.HANGUP, MSG.CHAT, undefined].map((in_reply_to) => ({ type: MSG.ERROR, code, in_reply_to }))
  ),
  ...[MSG.JOIN, MSG.RESUME, MSG.CALLBACK, MSG.LEAVE, MSG.HANGUP].map((what) => ({ type: "resend", what })),
  { type: "no_such_event" },
];

describeMoves({
  phases: Object.keys(PHASES),
  states: STATES,
  moves: MOVES,
  events: EVENTS,
  run,
  check(phase, after, fx) {
    assert.ok(PHASES[after.phase], after.phase);
    if (after.phase !== phase) {
      assert.deepEqual(effects(fx, "host").at(-1).msg, { type: "state", phase: after.phase });
    }
  },
});

describe("the pre-call test", () => {
  const GOOD = { status: "ok", rttMs: 42, lossPct: 0, path: "direct" };

  test("it starts once the devices are ready, before joining", () => {
    const r = run(
      initial({ queue: "support" }),
      { type: "boot", ticket: null },
      { type: "first_look", info: OPEN_LINE },
      CAMERA
    );
    assert.equal(effects(r.fx, "precall").length, 1);
    assert.deepEqual(r.state.precall, { status: "running", rttMs: null, lossPct: null, path: null });
    // One test at a time: the device check answering again does not start a second.
    const again = run(r.state, CAMERA);
    assert.equal(effects(again.fx, "precall").length, 0);
  });

  test("no test without media, for a place taken back after a reload, or on a closed line", () => {
    const none = run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: OPEN_LINE }, {
      ...CAMERA,
      audioOnly: true,
      hasVideo: false,
      problem: "no_media",
    });
    assert.equal(effects(none.fx, "precall").length, 0);
    assert.equal(none.state.precall, null);
    const resumed = run(initial(), { type: "boot", ticket: "T1" }, CAMERA);
    assert.equal(effects(resumed.fx, "precall").length, 0);
    const closed = run(initial(), { type: "boot", ticket: null }, { type: "first_look", info: { open: false } }, CAMERA);
    assert.equal(effects(closed.fx, "precall").length, 0);
  });

  test("the result is kept and travels with the join", () => {
    const r = run(ready(), { type: "precall_result", result: GOOD });
    assert.deepEqual(r.state.precall, GOOD);
    const joined = run(r.state, JOIN);
    assert.deepEqual(effects(joined.fx, "send")[0].msg.precall, { status: "ok", rtt_ms: 42, loss_pct: 0, path: "direct" });
    assert.equal(effects(joined.fx, "stopPrecall").length, 0);
  });

  test("a busy pool is said, and the visitor still joins with it on record", () => {
    const busy = { status: "busy", rttMs: null, lossPct: null, path: null };
    const r = run(ready(), { type: "precall_result", result: busy }, JOIN);
    assert.equal(r.state.phase, "connecting");
    assert.deepEqual(effects(r.fx, "send")[0].msg.precall, { status: "busy", rtt_ms: null, loss_pct: null, path: null });
    assert.equal(precallWords(busy).verdict, "The connection test could not run just now.");
    assert.match(precallWords(busy).advice, /still join/);
  });

  test("joining during the test stops it and sends no result; a late result is dropped", () => {
    const r = run(ready(), JOIN);
    assert.equal(effects(r.fx, "stopPrecall").length, 1);
    assert.equal("precall" in effects(r.fx, "send")[0].msg, false);
    assert.equal(r.state.precall, null);
    const late = run(r.state, { type: "precall_result", result: GOOD });
    assert.equal(late.state.precall, null);
  });

  test("Try again on the devices stops the test that sends the old tracks, then tests again", () => {
    let r = run(ready(), { type: "retry_media" });
    assert.equal(effects(r.fx, "stopPrecall").length, 1);
    assert.deepEqual(
      effects(r.fx, "stopPrecall").length && r.fx.map((f) => f.do).slice(0, 2),
      ["stopPrecall", "checkDevices"]
    );
    r = run(r.state, CAMERA);
    assert.equal(effects(r.fx, "precall").length, 1);
  });

  test("the camera turned off at the end stops a test", () => {
    const r = run(ready(), { type: "availability", info: { open: false } });
    assert.equal(effects(r.fx, "stopPrecall").length, 1);
    assert.equal(effects(r.fx, "releaseMedia").length, 1);
  });

  test("a result from elsewhere is cleaned to the four verdicts", () => {
    const r = run(ready(), { type: "precall_result", result: { status: "great", rttMs: "1", path: "tcp" } });
    assert.deepEqual(r.state.precall, { status: "busy", rttMs: null, lossPct: null, path: null });
  });

  test("the statistics: the selected pair's round trip and local candidate, the loss RTCP reported", () => {
    const reports = [
      { id: "T", type: "transport", selectedCandidatePairId: "P" },
      { id: "P", type: "candidate-pair", localCandidateId: "L", currentRoundTripTime: 0.0424, nominated: true, state: "succeeded" },
      { id: "L", type: "local-candidate", candidateType: "relay" },
      { id: "O1", type: "outbound-rtp", kind: "video", packetsSent: 300 },
      { id: "O2", type: "outbound-rtp", kind: "audio", packetsSent: 100 },
      { id: "R1", type: "remote-inbound-rtp", kind: "video", packetsLost: 6, roundTripTime: 0.2 },
      { id: "R2", type: "remote-inbound-rtp", kind: "audio", packetsLost: -1 },
    ];
    assert.deepEqual(summarize(reports), { rttMs: 42, lossPct: 1.5, path: "relay" });
    // Without a transport entry (Firefox): the nominated pair; without its RTT: RTCP's.
    const firefox = reports.filter((r) => r.type !== "transport").map((r) =>
      r.type === "candidate-pair" ? { ...r, currentRoundTripTime: undefined } : r.id === "L" ? { ...r, candidateType: "host" } : r
    );
    assert.deepEqual(summarize(firefox), { rttMs: 200, lossPct: 1.5, path: "direct" });
    assert.deepEqual(summarize([]), { rttMs: null, lossPct: null, path: null });
    // Firefox: no transport entry, and its pair says `selected` (another is nominated too).
    const selected = [
      { id: "P1", type: "candidate-pair", localCandidateId: "L1", nominated: true, state: "succeeded", currentRoundTripTime: 0.5 },
      { id: "P2", type: "candidate-pair", localCandidateId: "L2", selected: true, nominated: true, state: "succeeded", currentRoundTripTime: 0.03 },
      { id: "L1", type: "local-candidate", candidateType: "host" },
      { id: "L2", type: "local-candidate", candidateType: "relay" },
    ];
    assert.deepEqual(summarize(selected), { rttMs: 30, lossPct: null, path: "relay" });
  });

  test("the samples: the lowest round trip, the last loss and path", () => {
    const samples = [
      { rttMs: 140, lossPct: 0, path: "direct" },
      { rttMs: null, lossPct: 0.5, path: "direct" },
      { rttMs: 35, lossPct: 1, path: "relay" },
      { rttMs: 90, lossPct: 1.2, path: "relay" },
    ];
    assert.deepEqual(combine(samples), { rttMs: 35, lossPct: 1.2, path: "relay" });
    assert.deepEqual(combine([]), { rttMs: null, lossPct: null, path: null });
  });

  test("the verdict's thresholds", () => {
    const good = { connected: true, echoed: true, rttMs: MAX_RTT_MS, lossPct: MAX_LOSS_PCT };
    assert.equal(verdict(good), "ok");
    assert.equal(verdict({ ...good, rttMs: null, lossPct: null }), "ok");
    assert.equal(verdict({ ...good, rttMs: MAX_RTT_MS + 1 }), "poor");
    assert.equal(verdict({ ...good, lossPct: MAX_LOSS_PCT + 0.1 }), "poor");
    assert.equal(verdict({ ...good, echoed: false }), "poor");
    assert.equal(verdict({ ...good, connected: false }), "failed");
  });

  test("plain words for each result, with what to try", () => {
    assert.equal(precallWords(null).verdict, "");
    assert.equal(precallWords({ status: "running" }).verdict, "Testing your connection to us…");
    const ok = precallWords({ status: "ok", rttMs: 42, lossPct: 0, path: "direct" });
    assert.equal(ok.verdict, "Your connection looks good.");
    assert.equal(ok.numbers, "42 ms round trip · 0% loss · direct");
    const poor = precallWords({ status: "poor", rttMs: 420, lossPct: 5, path: "relay" });
    assert.equal(poor.verdict, "Your connection may be choppy.");
    assert.match(poor.advice, /Wi-Fi/);
    assert.equal(poor.numbers, "420 ms round trip · 5% loss · relayed");
    const failed = precallWords({ status: "failed", rttMs: null, lossPct: null, path: null });
    assert.equal(failed.verdict, "We could not connect to you for video.");
    assert.match(failed.advice, /VPN/);
    assert.equal(joinResult({ status: "running" }), null);
  });
});
