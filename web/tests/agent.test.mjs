// The agent console's transition table (web/static/agent/machine.js), event by event.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { next } from "../static/agent/machine.js";
import { MOVES, PHASES, initial } from "../static/agent/state.js";
import { UNDO_MS, addOne, addPage, contactHref, removeOne } from "../static/agent/callbacks.js";
import { backgroundWarning, handoverFrom } from "../static/agent/text.js";
import { CLOSE, ERROR, MSG } from "../static/shared/protocol.js";
import { CHAT_EVENTS, describeMoves, effects, play, sent } from "./support.mjs";
import { endText, precallText } from "../static/agent/text.js";
import { languageCookie, wireLanguageChooser } from "../static/shared/language.js";

const AGENT = { name: "ada", display_name: "Ada", queues: ["support"] };
const WELCOME = {
  type: MSG.WELCOME,
  now: 100,
  agent: AGENT,
  status: "offline",
  desk_queues: ["support", "sales"],
  ice_servers: [{ urls: "stun:desk" }],
  session: { idle_signout_s: 600 },
};
const OFFER = { type: MSG.OFFER, now: 1000, offer_id: "o1", queue: "support", visitor: { name: "Vi", topic: "t" }, timeout_ms: 20000, waited_seconds: 3 };
const STARTED = { type: MSG.CALL_STARTED, now: 2000, call_id: "c1", role: "offerer", queue: "support", peer: { name: "Vi", topic: "t" }, alive: false };

const run = (state, ...events) => play(next, state, ...events);

const login = () => run(initial(), { type: "me", agent: null }).state;
function idle() {
  return run(initial(), { type: "me", agent: AGENT }, { type: "devices", hasVideo: true }, { type: "socket_open" }, WELCOME).state;
}
const available = () => run(idle(), { type: MSG.STATUS, status: "available", now: 200 }).state;
const offered = () => run(available(), OFFER, { type: MSG.STATUS, status: "offered", now: 1000 }).state;
const connecting = () => run(offered(), { type: "click_accept" }, STARTED, { type: MSG.STATUS, status: "in_call", now: 2000 }).state;
const inCall = () => run(connecting(), { type: "peer_state", state: "connected", now: 2500 }).state;
const wrapUp = () =>
  run(inCall(), { type: "click_hangup" }, { type: MSG.STATUS, status: "wrap_up", call_id: "c1", remaining_ms: 5000, now: 3000 }).state;

describe("signing in", () => {
  test("without a session: the form; with one: the console, its socket, its camera", () => {
    assert.equal(login().phase, "login");
    const failed = run(initial(), { type: "me", agent: null, failed: true });
    assert.match(failed.state.loginError, /Cannot reach the desk/);
    const r = run(initial(), { type: "me", agent: AGENT });
    assert.equal(r.state.phase, "idle");
    assert.deepEqual(r.fx.map((f) => f.do).filter((d) => d !== "clear"), ["resetIdle", "renew", "checkDevices", "connect"]);
    assert.deepEqual(r.state.queueNames, ["support"]);
  });

  test("the form: both fields, then the desk's answer", () => {
    let r = run(login(), { type: "submit_login", username: " ada ", password: "" });
    assert.equal(r.state.loginError, "Enter your username and password.");
    r = run(login(), { type: "submit_login", username: " ada ", password: "pw" });
    assert.deepEqual(effects(r.fx, "signIn"), [{ do: "signIn", username: "ada", password: "pw" }]);
    assert.equal(r.state.loginBusy, true);
    const wrong = run(r.state, { type: "signed_in", error: "Wrong username or password", wrongPassword: true });
    assert.equal(wrong.state.loginError, "Wrong username or password");
    assert.deepEqual(effects(wrong.fx, "focus").map((f) => f.target), ["password"]);
    const ok = run(r.state, { type: "signed_in", agent: AGENT });
    assert.equal(ok.state.phase, "idle");
    assert.equal(effects(ok.fx, "clearPassword").length, 1);
  });

  test("welcome: connected, the desk's lines, the idle check", () => {
    const s = idle();
    assert.equal(s.connection, "connected");
    assert.deepEqual(s.deskQueues, ["support", "sales"]);
    const r = run(run(initial(), { type: "me", agent: AGENT }, { type: "socket_open" }).state, WELCOME);
    assert.deepEqual(effects(r.fx, "timer").map((f) => [f.name, f.ms, f.repeat]), [["idle", 15000, true]]);
  });

  test("idle sign-out: after the time without input, never in a call, an offer or a wrap-up", () => {
    const r = run(available(), { type: "idle_check", idleMs: 600000 });
    assert.deepEqual(effects(r.fx, "logout").map((f) => f.message), ["You were signed out after 10 minutes without activity."]);
    const out = run(r.state, { type: "logged_out", message: "You were signed out after 10 minutes without activity." });
    assert.equal(out.state.phase, "login");
    assert.equal(out.state.agent, null);
    assert.equal(run(available(), { type: "idle_check", idleMs: 1000 }).fx.length, 0);
    for (const s of [offered(), inCall(), wrapUp()]) assert.equal(effects(run(s, { type: "idle_check", idleMs: 1e9 }).fx, "logout").length, 0);
  });

  test("the session renews a third of its lifetime at a time; a 401 ends it", () => {
    let r = run(idle(), { type: "renewed", status: 200, ttl: 3600 });
    assert.deepEqual(effects(r.fx, "renew").map((f) => f.after), [1200000]);
    r = run(idle(), { type: "renewed", status: 0, ttl: 0 });
    assert.deepEqual(effects(r.fx, "renew").map((f) => f.after), [10000]);
    r = run(inCall(), { type: "renewed", status: 401 });
    assert.equal(r.state.phase, "login");
    assert.equal(r.state.loginError, "Your session has ended. Please sign in again.");
    assert.equal(r.state.callId, null);
  });

  test("log out: hang up, let go of everything, then the form", () => {
    const r = run(inCall(), { type: "click_logout" });
    assert.deepEqual(sent(r.fx), [MSG.HANGUP]);
    for (const kind of ["endCall", "disconnect", "releaseMedia", "logout"]) assert.equal(effects(r.fx, kind).length, 1, kind);
    assert.equal(r.state.link, "none");
  });
});

describe("the socket", () => {
  test("a drop: reconnecting, Offline locally, the offer withdrawn; back: the chosen status again", () => {
    let r = run(offered(), { type: "click_status", status: "available" }, { type: "socket_closed", code: 1006, opened: true, now: 5000 });
    assert.equal(r.state.connection, "reconnecting");
    assert.equal(r.state.status, "offline");
    assert.equal(r.state.offer, null);
    assert.equal(r.state.phase, "idle");
    assert.equal(effects(r.fx, "retry").length, 1);
    r = run(r.state, { type: "socket_open" }, { ...WELCOME, now: 9000 });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.STATUS, status: "available" }]);
    assert.equal(r.state.disconnectedAt, null);
  });

  test("1012, a server restarting: reconnect at once (soon), the call kept; other drops back off", () => {
    let r = run(inCall(), { type: "socket_closed", code: CLOSE.SERVICE_RESTART, opened: true, now: 3000 });
    assert.deepEqual(effects(r.fx, "retry").map((f) => f.soon), [true]);
    assert.equal(r.state.callId, "c1");
    r = run(available(), { type: "socket_closed", code: 1006, opened: true, now: 3000 });
    assert.deepEqual(effects(r.fx, "retry").map((f) => f.soon), [false]);
  });

  test("after a long drop the status is left to the agent", () => {
    let r = run(available(), { type: "click_status", status: "available" }, { type: "socket_closed", code: 1006, opened: true, now: 5000 });
    r = run(r.state, { type: "socket_open" }, { ...WELCOME, now: 5000 + 61000 });
    assert.deepEqual(sent(r.fx), []);
  });

  test("4009: another window took over; Use this window takes it back", () => {
    let r = run(inCall(), { type: "socket_closed", code: CLOSE.REPLACED, opened: true, now: 3000 });
    assert.equal(r.state.phase, "replaced");
    assert.equal(r.state.connection, "disconnected");
    assert.equal(r.state.callId, null);
    assert.equal(effects(r.fx, "retry").length, 0);
    assert.equal(effects(r.fx, "releaseMedia").length, 1);
    r = run(r.state, { type: "click_reconnect" });
    assert.equal(r.state.phase, "idle");
    assert.equal(effects(r.fx, "connect").length, 1);
  });

  test("4401 and 4403: the session ended, with the desk's reason", () => {
    const expired = run(idle(), { type: "socket_closed", code: CLOSE.SESSION_EXPIRED, reason: "session_expired", opened: true, now: 1 });
    assert.equal(expired.state.phase, "login");
    assert.equal(expired.state.loginError, "Your session has ended. Please sign in again.");
    const revoked = run(idle(), { type: "socket_closed", code: CLOSE.REVOKED, reason: "account_disabled", opened: true, now: 1 });
    assert.match(revoked.state.loginError, /disabled/);
    const odd = run(idle(), { type: "socket_closed", code: CLOSE.REVOKED, reason: "whatever", opened: true, now: 1 });
    assert.equal(odd.state.loginError, "Your session has ended. Please sign in again.");
  });

  test("1008 and 1013 say why, and reconnect", () => {
    const policy = run(idle(), { type: "socket_closed", code: CLOSE.POLICY, opened: true, now: 1 });
    assert.match(policy.state.notice, /too many errors\. Reconnecting…/);
    const busy = run(idle(), { type: "socket_closed", code: CLOSE.TRY_AGAIN, opened: true, now: 1 });
    assert.equal(busy.state.notice, "The desk is having trouble reaching its database. Reconnecting…");
    assert.equal(effects(busy.fx, "retry").length, 1);
    const back = run(busy.state, { type: "socket_open" }, WELCOME);
    assert.equal(back.state.notice, "");
  });

  test("a refused upgrade checks the session first", () => {
    const r = run(idle(), { type: "socket_closed", code: 1006, opened: false, now: 1 });
    assert.deepEqual(r.fx.filter((f) => ["retry", "checkSession"].includes(f.do)).map((f) => f.do), ["checkSession"]);
    assert.equal(run(r.state, { type: "session_checked", agent: null }).state.phase, "login");
    assert.equal(effects(run(r.state, { type: "session_checked", agent: AGENT }).fx, "retry").length, 1);
    assert.equal(effects(run(r.state, { type: "session_checked", failed: true }).fx, "retry").length, 1);
  });

  test("a call that ended while the console was away is closed on welcome", () => {
    let r = run(inCall(), { type: "socket_closed", code: 1006, opened: true, now: 3000 });
    assert.equal(r.state.callId, "c1"); // the call goes on (media is peer to peer)
    r = run(r.state, { type: "socket_open" }, { ...WELCOME, status: "wrap_up", now: 4000 });
    assert.equal(r.state.callId, null);
    assert.equal(r.state.notice, "The call ended while you were disconnected.");
  });
});

describe("offers and calls", () => {
  test("an offer: the card, the ring, a deadline of its own", () => {
    const r = run(available(), OFFER);
    assert.equal(r.state.phase, "offered");
    assert.equal(r.state.offer.deadline, 21000);
    assert.deepEqual(effects(r.fx, "ring").map((f) => f.ms), [20000]);
    assert.deepEqual(effects(r.fx, "timer").map((f) => [f.name, f.ms]), [["offer", 23000]]);
    const expired = run(r.state, { type: "offer_expired", id: "o1" });
    assert.equal(expired.state.offer, null);
    assert.match(expired.state.notice, /timed out/);
  });

  test("accept, decline, and the desk withdrawing it", () => {
    let r = run(offered(), { type: "click_accept" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.ACCEPT, offer_id: "o1" }]);
    assert.equal(r.state.offer.answering, true);
    r = run(r.state, { type: MSG.ERROR, code: ERROR.WRONG_STATE, in_reply_to: MSG.ACCEPT, message: "nope" });
    assert.equal(r.state.offer.answering, false);
    assert.equal(r.state.notice, "nope");
    r = run(offered(), { type: "click_decline" });
    assert.equal(r.state.offer, null);
    assert.equal(r.state.phase, "idle");
    r = run(offered(), { type: MSG.OFFER_CANCELLED, offer_id: "o1", reason: "visitor_left" });
    assert.equal(r.state.notice, "The visitor left the line.");
    r = run(offered(), { type: MSG.ERROR, code: ERROR.STALE_OFFER, in_reply_to: MSG.ACCEPT });
    assert.equal(r.state.offer, null);
  });

  test("Break or Offline withdraws the offer on screen", () => {
    const r = run(offered(), { type: MSG.STATUS, status: "break", reason: "Missed 3 offers in a row", now: 1 });
    assert.equal(r.state.offer, null);
    assert.equal(r.state.breakReason, "Missed 3 offers in a row");
    assert.equal(run(r.state, { type: MSG.STATUS, status: "offline", now: 2 }).state.breakReason, "Missed 3 offers in a row");
    assert.equal(run(r.state, { type: MSG.STATUS, status: "available", now: 2 }).state.breakReason, null);
    // The desk's code is what the console words (in its language; English here).
    const once = { type: MSG.STATUS, status: "break", reason: "Missed 1 offers in a row", reason_code: "missed_offers", missed: 1, now: 3 };
    assert.equal(run(offered(), once).state.breakReason, "Missed 1 offer in a row");
  });

  test("call_started: the call, its notes, its transfer lines; connected: in-call", () => {
    const s = connecting();
    assert.equal(s.phase, "call-connecting");
    assert.equal(s.notes.callId, "c1");
    assert.equal(s.offer, null);
    assert.equal(s.notice, "Connecting…");
    const r = run(offered(), { type: "click_accept" }, STARTED);
    assert.deepEqual(effects(r.fx, "startCall")[0], { do: "startCall", callId: "c1", role: "offerer", iceServers: [{ urls: "stun:desk" }], iceTransportPolicy: "all" });
    assert.equal(inCall().phase, "in-call");
    assert.equal(inCall().callSince, 2500);
  });

  test("a replay keeps a live connection and restarts ICE on it; a dead one negotiates again", () => {
    let s = run(inCall(), { type: "socket_closed", code: 1006, opened: true, now: 3000 }, { type: "socket_open" }, { ...WELCOME, status: "in_call", now: 4000 }).state;
    // Right after our own reconnect: restart ICE only if the media path is broken.
    assert.deepEqual(run(s, { ...STARTED, now: 4100, alive: true }).fx, [{ do: "recoverCall", onlyIfBroken: true }]);
    assert.equal(effects(run(s, { ...STARTED, now: 4100, alive: false }).fx, "restartCall").length, 1);
    // The visitor came back (a new network, or a reload): an ICE restart on our connection.
    assert.deepEqual(run(s, { ...STARTED, now: 10000, alive: true }).fx, [{ do: "recoverCall", onlyIfBroken: false }]);
    assert.equal(effects(run(s, { ...STARTED, now: 10000, alive: false }).fx, "restartCall").length, 1);
  });

  test("quality and reconnecting: a stall shows it, media arriving again clears it", () => {
    let r = run(inCall(), { type: "peer_quality", level: "good", rttMs: 12, lossPct: 0, kbps: 900, stalled: false });
    assert.deepEqual(r.state.quality, { level: "good", rttMs: 12, lossPct: 0, kbps: 900 });
    assert.equal(r.state.reconnecting, false);
    r = run(r.state, { type: "peer_quality", level: "poor", rttMs: 12, lossPct: 0, kbps: 0, stalled: true }, { type: "peer_stalled" });
    assert.equal(r.state.reconnecting, true);
    assert.match(r.state.notice, /Trying to reconnect/);
    r = run(r.state, { type: "peer_state", state: "disconnected", now: 5000 });
    assert.equal(r.state.reconnecting, true);
    r = run(r.state, { type: "peer_quality", level: "fair", rttMs: 250, lossPct: 0, kbps: 700, stalled: false });
    assert.equal(r.state.reconnecting, false);
    assert.equal(r.state.notice, "");
    assert.equal(r.state.quality.level, "fair");
    r = run(r.state, { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "visitor" });
    assert.equal(r.state.quality, null);
    assert.equal(r.state.reconnecting, false);
  });

  test("the visitor hangs up; the agent hangs up; a transfer", () => {
    let r = run(inCall(), { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "visitor" });
    assert.equal(r.state.phase, "idle");
    assert.equal(r.state.notice, "Vi hung up.");
    r = run(inCall(), { type: "click_hangup" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.HANGUP, call_id: "c1" }]);
    assert.equal(r.state.notice, "You ended the call.");
    r = run(inCall(), { type: "transfer_choice", queue: "sales" }, { type: "submit_transfer" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.TRANSFER, call_id: "c1", queue: "sales" }]);
    assert.equal(r.state.transferring, true);
    const refused = run(r.state, { type: MSG.ERROR, code: ERROR.UNKNOWN_QUEUE, in_reply_to: MSG.TRANSFER, message: "no such line" });
    assert.equal(refused.state.transferring, false);
    assert.equal(refused.state.notice, "The transfer did not go through: no such line");
    r = run(r.state, { type: MSG.CALL_ENDED, call_id: "c1", reason: "transferred", queue: "sales" });
    assert.equal(r.state.notice, "You passed Vi to the sales line.");
  });

  test("wrap-up: its countdown, +30 s, Done", () => {
    const s = wrapUp();
    assert.equal(s.wrapupUntil, 8000);
    assert.equal(s.wrapupTotal, 5000);
    let r = run(s, { type: "click_wrapup", action: "extend" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.WRAPUP, action: "extend" }]);
    assert.equal(r.state.wrapupBusy, true);
    r = run(r.state, { type: MSG.STATUS, status: "wrap_up", call_id: "c1", remaining_ms: 33000, now: 4000 });
    assert.equal(r.state.wrapupBusy, false);
    assert.equal(r.state.wrapupTotal, 33000);
    r = run(r.state, { type: MSG.STATUS, status: "available", now: 5000 });
    assert.equal(r.state.wrapupUntil, null);
    assert.equal(r.state.notes.callId, null);
  });

  test("unavailable: the status goes again by itself", () => {
    let r = run(idle(), { type: "click_status", status: "available" }, { type: MSG.ERROR, code: ERROR.UNAVAILABLE, in_reply_to: MSG.STATUS, retry_after_s: 1 });
    assert.equal(r.state.notice, "The desk is having trouble reaching its database. Trying again…");
    const [timer] = effects(r.fx, "timer");
    assert.deepEqual([timer.name, timer.ms, timer.event], ["status", 1000, { type: "resend_status" }]);
    r = run(r.state, timer.event);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.STATUS, status: "available" }]);
  });

  test("rate_limited says slow down", () => {
    const r = run(idle(), { type: MSG.ERROR, code: ERROR.RATE_LIMITED, in_reply_to: MSG.MEDIA });
    assert.equal(r.state.notice, "The desk refused that (rate_limited).");
  });
});

describe("offers are not missed", () => {
  const hidden = (state) => run(state, { type: "visibility", hidden: true }).state;
  const allowed = (state, permission = "granted") => run(state, { type: "notify_permission", permission }).state;
  const QUIET = ["stopRing", "attentionOff", "closeNotification"];
  const quieted = (fx) => fx.filter((f) => QUIET.includes(f.do)).map((f) => f.do);

  test("the ring lasts the offer's whole countdown, and stops when it is answered or goes", () => {
    assert.deepEqual(effects(run(available(), { ...OFFER, timeout_ms: 45000 }).fx, "ring").map((f) => f.ms), [45000]);
    for (const [why, event] of [
      ["accepted", { type: "click_accept" }],
      ["declined", { type: "click_decline" }],
      ["cancelled", { type: MSG.OFFER_CANCELLED, offer_id: "o1", reason: "timeout" }],
      ["expired", { type: "offer_expired", id: "o1" }],
      ["on break", { type: MSG.STATUS, status: "break", now: 5 }],
      ["the socket dropped", { type: "socket_closed", code: 1006, opened: true, now: 5 }],
      ["signed out", { type: "socket_closed", code: CLOSE.REVOKED, reason: "signed_out", opened: true, now: 5 }],
    ]) {
      assert.deepEqual(quieted(run(offered(), event).fx), QUIET, why);
    }
    // Accepted, the call's start does not stop it twice; an offer for someone else stops nothing.
    const accepted = run(offered(), { type: "click_accept" }).state;
    assert.deepEqual(quieted(run(accepted, STARTED).fx), []);
    assert.deepEqual(quieted(run(offered(), { type: MSG.OFFER_CANCELLED, offer_id: "o9", reason: "timeout" }).fx), []);
    assert.deepEqual(quieted(run(available(), { type: "click_decline" }, { type: MSG.STATUS, status: "break", now: 5 }).fx), []);
  });

  test("the tab's title and icon show the offer until it goes", () => {
    const r = run(available(), OFFER);
    assert.deepEqual(effects(r.fx, "attention"), [{ do: "attention", count: 1, title: "Incoming call – Vi" }]);
    const nameless = run(available(), { ...OFFER, visitor: {} });
    assert.equal(effects(nameless.fx, "attention")[0].title, "Incoming call – a visitor");
    assert.equal(effects(run(r.state, { type: "click_decline" }).fx, "attentionOff").length, 1);
  });

  test("a desktop notification only while the console is hidden, and only when allowed", () => {
    const note = (state) => effects(run(state, OFFER).fx, "desktopNotify");
    assert.deepEqual(note(allowed(available())), []); // visible: the page itself rings
    assert.deepEqual(note(hidden(allowed(available(), "denied"))), []);
    assert.deepEqual(note(hidden(available())), []); // unsupported
    const [shown] = note(hidden(allowed(available())));
    assert.deepEqual(shown, { do: "desktopNotify", tag: "offer-o1", title: "Incoming call – Vi", body: "t\nsupport line · Answer within 20 s" });
    // Hidden while the offer is on screen: now; back: the notification goes, the offer stays.
    const onScreen = run(allowed(available()), OFFER).state;
    let r = run(onScreen, { type: "visibility", hidden: true });
    assert.equal(effects(r.fx, "desktopNotify").length, 1);
    r = run(r.state, { type: "visibility", hidden: false });
    assert.deepEqual(r.fx.map((f) => f.do), ["closeNotification"]);
    assert.equal(r.state.offer.id, "o1");
    // Allowed while hidden with an offer waiting: shown then.
    r = run(hidden(run(allowed(available(), "default"), OFFER).state), { type: "notify_permission", permission: "granted" });
    assert.equal(effects(r.fx, "desktopNotify").length, 1);
  });

  test("notifications are asked for once, when the agent goes Available, never on load", () => {
    const start = run(initial(), { type: "notify_permission", permission: "default" }, { type: "visibility", hidden: false }, { type: "me", agent: AGENT });
    assert.equal(effects(start.fx, "askNotifications").length, 0);
    const ready = run(start.state, { type: "devices", hasVideo: true }, { type: "socket_open" }, WELCOME).state;
    let r = run(ready, { type: "click_status", status: "break" });
    assert.equal(effects(r.fx, "askNotifications").length, 0);
    r = run(ready, { type: "click_status", status: "available" });
    assert.equal(effects(r.fx, "askNotifications").length, 1);
    r = run(r.state, { type: "notify_permission", permission: "default" }, { type: "click_status", status: "available" });
    assert.equal(effects(r.fx, "askNotifications").length, 0); // dismissed: not again by itself
    assert.equal(effects(run(r.state, { type: "click_allow_notifications" }).fx, "askNotifications").length, 1);
    for (const permission of ["granted", "denied", "unsupported"]) {
      const s = run(ready, { type: "notify_permission", permission }).state;
      assert.equal(effects(run(s, { type: "click_status", status: "available" }, { type: "click_allow_notifications" }).fx, "askNotifications").length, 0);
    }
    assert.equal(run(ready, { type: "notify_permission", permission: "bogus" }).state.notifications, "unsupported");
  });

  test("hidden while taking visitors: a warning that the ring and countdown may be late", () => {
    assert.equal(hidden(idle()).backgroundWarning, false); // Offline: nothing to miss
    let s = hidden(allowed(available(), "default"));
    assert.equal(s.backgroundWarning, true);
    s = run(s, { type: "visibility", hidden: false }).state;
    assert.equal(s.backgroundWarning, true); // still there when the agent comes back, to read
    assert.equal(run(s, { type: "dismiss_background_warning" }).state.backgroundWarning, false);
    assert.equal(run(s, { type: MSG.STATUS, status: "break", now: 5 }).state.backgroundWarning, false);
    // Going Available while hidden (another window in front) counts too.
    assert.equal(run(hidden(idle()), { type: MSG.STATUS, status: "available", now: 5 }).state.backgroundWarning, true);
    assert.match(backgroundWarning("default"), /ring and the countdown of an offer may come late.*keep this tab visible.*allow notifications/is);
    assert.match(backgroundWarning("denied"), /title and icon/);
    assert.match(backgroundWarning("granted"), /desktop notification still tells you/);
  });
});

describe("a transferred visitor", () => {
  const HANDOVER = { call_id: "c0", queue: "sales", agent: "Ada", notes: "Refund for order 42", disposition: "escalated" };
  const passedOn = () => run(available(), { ...OFFER, handover: HANDOVER }, { type: MSG.STATUS, status: "offered", now: 1000 }).state;

  test("the offer carries the notes of the agent before, and the chat where there is one", () => {
    const s = passedOn();
    assert.deepEqual(s.offer.handover, { agent: "Ada", queue: "sales", notes: "Refund for order 42", disposition: "escalated", chat: [] });
    assert.equal(handoverFrom(s.offer.handover), "Notes from Ada (sales) · Outcome: escalated");
    assert.equal(handoverFrom({ agent: "Ada", queue: "", notes: "", disposition: "" }), "No notes from Ada");
    const chat = run(available(), { ...OFFER, handover: { ...HANDOVER, chat: [{ from: "visitor", text: "hi" }, "junk"] } });
    assert.deepEqual(chat.state.offer.handover.chat, [{ from: "visitor", text: "hi" }]);
    assert.equal(offered().offer.handover, null);
    assert.equal(run(available(), { ...OFFER, handover: "junk" }).state.offer.handover, null);
  });

  test("accepted: the call's notes start with them, saved as this call's own", () => {
    const r = run(passedOn(), { type: "click_accept" }, STARTED);
    assert.deepEqual([r.state.notes.callId, r.state.notes.text, r.state.notes.disposition], ["c1", "Refund for order 42", "escalated"]);
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg).filter((m) => m.type === MSG.NOTES), [
      { type: MSG.NOTES, call_id: "c1", notes: "Refund for order 42", disposition: "escalated" },
    ]);
    // Nothing to take over, or another call: the notes start empty as ever.
    const plain = run(offered(), { type: "click_accept" }, STARTED);
    assert.equal(plain.state.notes.text, "");
    assert.deepEqual(sent(plain.fx), [MSG.ACCEPT]);
    const other = run(passedOn(), { ...STARTED, call_id: "c7" });
    assert.equal(other.state.notes.text, "");
  });
});

describe("notes", () => {
  test("typed: saved after a pause, confirmed by notes_saved", () => {
    let r = run(inCall(), { type: "notes_edited", text: "hello", disposition: "", now: false });
    assert.equal(r.state.notes.state, "editing");
    assert.deepEqual(effects(r.fx, "timer").map((f) => f.name), ["notes"]);
    r = run(r.state, { type: "notes_due" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.NOTES, call_id: "c1", notes: "hello", disposition: "" }]);
    assert.equal(r.state.notes.label, "Saving…");
    r = run(r.state, { type: MSG.NOTES_SAVED, call_id: "c1" });
    assert.equal(r.state.notes.label, "Saved");
  });

  test("an outcome is saved at once; a refusal marks the notes unsaved", () => {
    let r = run(inCall(), { type: "notes_edited", text: "", disposition: "resolved", now: true });
    assert.deepEqual(sent(r.fx), [MSG.NOTES]);
    r = run(r.state, { type: MSG.ERROR, code: ERROR.BAD_MESSAGE, in_reply_to: MSG.NOTES, message: "too long" });
    assert.equal(r.state.notes.state, "error");
    assert.equal(r.state.notes.dirty, true);
    assert.equal(r.state.notice, "Your notes were not saved: too long");
  });

  test("offline: kept, and saved when the call's status comes back", () => {
    const away = run(inCall(), { type: "socket_closed", code: 1006, opened: true, now: 1 }).state;
    let r = run(away, { type: "notes_edited", text: "x", disposition: "", now: true });
    assert.equal(r.state.notes.label, "Not saved yet: offline");
    r = run(r.state, { type: "socket_open" }, { ...WELCOME, status: "wrap_up", now: 2 }, { type: MSG.STATUS, status: "wrap_up", call_id: "c1", remaining_ms: 1000, now: 3 });
    assert.deepEqual(sent(r.fx), [MSG.NOTES]);
  });

  test("restored after a reload, unless typed since", () => {
    const r = run(idle(), { type: MSG.NOTES_RESTORED, call_id: "c9", notes: "before", disposition: "resolved" });
    assert.deepEqual([r.state.notes.callId, r.state.notes.text, r.state.notes.disposition, r.state.notes.label], ["c9", "before", "resolved", "Saved"]);
    const typed = run(inCall(), { type: "notes_edited", text: "new", disposition: "", now: false }, { type: MSG.NOTES_RESTORED, call_id: "c1", notes: "old" });
    assert.equal(typed.state.notes.text, "new");
  });
});

describe("call-back requests", () => {
  const item = (id, created, name = "V" + id) => ({ id, created, name, contact: "c", queue: "support" });

  test("pages: the first replaces the list and announces what is new", () => {
    let list = { items: [], total: 0, paged: 0, seen: null };
    let step = addPage(list, { items: [item(2, 20), item(1, 10)], offset: 0, total: 60 });
    assert.deepEqual(step.list.items.map((i) => i.id), [1, 2]);
    assert.equal(step.list.paged, 2);
    assert.equal(step.list.total, 60);
    assert.deepEqual(step.fresh, []); // the very first page is not news
    step = addPage(step.list, { items: [item(3, 30)], offset: 2, total: 60 });
    assert.deepEqual(step.list.items.map((i) => i.id), [1, 2, 3]);
    assert.equal(step.list.paged, 3);
    const reconnect = addPage(step.list, { items: [item(1, 10), item(4, 40)], offset: 0, total: 2 });
    assert.deepEqual(reconnect.fresh.map((i) => i.id), [4]);
    assert.deepEqual(reconnect.list.items.map((i) => i.id), [1, 4]);
    list = addOne(reconnect.list, item(5, 5));
    assert.deepEqual(list.items.map((i) => i.id), [5, 1, 4]);
    assert.equal(addOne(list, item(5, 5)), null);
    list = removeOne(list, "1");
    assert.deepEqual(list.items.map((i) => i.id), [5, 4]);
    assert.equal(list.paged, 1); // the pages behind it move up one
  });

  test("Done closes a request once the time to undo it is up; a refusal turns the buttons back on", () => {
    let r = run(idle(), { type: MSG.CALLBACKS, items: [item("a", 1)], offset: 0, total: 1 }, { type: "click_callback_done", id: "a" });
    assert.deepEqual(sent(r.fx), []); // not yet: it can be undone
    assert.deepEqual(r.state.undo, [{ id: "a", name: "Va" }]);
    assert.deepEqual(effects(r.fx, "timer"), [{ do: "timer", name: "callback-done:a", ms: UNDO_MS, event: { type: "callback_done_due", id: "a" } }]);
    r = run(r.state, { type: "callback_done_due", id: "a" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.CLOSE_CALLBACK, id: "a", outcome: "called back" }]);
    assert.deepEqual(r.state.undo, []);
    assert.deepEqual(r.state.closing, ["a"]);
    const refused = run(r.state, { type: MSG.ERROR, code: ERROR.WRONG_STATE, in_reply_to: MSG.CLOSE_CALLBACK });
    assert.deepEqual(refused.state.closing, []);
    r = run(r.state, { type: MSG.CALLBACK_CLOSED, id: "a" });
    assert.deepEqual(r.state.callbacks.items, []);
    assert.deepEqual(r.state.closing, []);
  });

  test("Undo within the time: nothing is sent, the request is back", () => {
    const list = { type: MSG.CALLBACKS, items: [item("a", 1), item("b", 2, "Bea")], offset: 0, total: 2 };
    let r = run(idle(), list, { type: "click_callback_done", id: "a" }, { type: "click_callback_done", id: "b" });
    assert.deepEqual(r.state.undo.map((u) => u.id), ["a", "b"]);
    r = run(r.state, { type: "click_callback_undo" }); // the last one
    assert.deepEqual(r.state.undo.map((u) => u.id), ["a"]);
    assert.deepEqual(effects(r.fx, "clear"), [{ do: "clear", name: "callback-done:b" }]);
    r = run(r.state, { type: "callback_done_due", id: "b" }); // its timer, had it fired anyway
    assert.deepEqual(sent(r.fx), []);
    r = run(r.state, { type: "click_callback_undo", id: "a" });
    assert.deepEqual(r.state.undo, []);
    assert.deepEqual(r.state.callbacks.items.map((i) => i.id), ["a", "b"]);
    assert.deepEqual(sent(run(r.state, { type: "callback_done_due", id: "a" }).fx), []);
  });

  test("a Done still undoable is sent as the page goes or the agent signs out; dropped if closed elsewhere", () => {
    const list = { type: MSG.CALLBACKS, items: [item("a", 1), item("b", 2)], offset: 0, total: 2 };
    const held = run(idle(), list, { type: "click_callback_done", id: "a" }, { type: "click_callback_done", id: "b" }).state;
    let r = run(held, { type: "flush_callbacks" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg.id), ["a", "b"]);
    assert.deepEqual(r.state.undo, []);
    r = run(held, { type: "click_logout" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg.type), [MSG.CLOSE_CALLBACK, MSG.CLOSE_CALLBACK]);
    assert.ok(r.fx.findIndex((f) => f.do === "send") < r.fx.findIndex((f) => f.do === "disconnect"));
    r = run(held, { type: MSG.CALLBACK_CLOSED, id: "a" });
    assert.deepEqual(r.state.undo.map((u) => u.id), ["b"]);
    assert.deepEqual(effects(r.fx, "clear"), [{ do: "clear", name: "callback-done:a" }]);
    // Offline when the time is up: nothing closed, the request shows again.
    r = run(held, { type: "socket_closed", code: 1006, opened: true, now: 5 }, { type: "callback_done_due", id: "a" });
    assert.deepEqual(sent(r.fx), []);
    assert.deepEqual(r.state.undo.map((u) => u.id), ["b"]);
  });

  test("contacts become tel: and mailto: links only when they are a phone number or an email address", () => {
    assert.equal(contactHref("ada@example.org"), "mailto:ada@example.org");
    assert.equal(contactHref(" +44 20 7946 0958 "), "tel:+442079460958");
    assert.equal(contactHref("(020) 7946-0958 ext. 12"), "tel:02079460958;ext=12");
    for (const bad of ["javascript:alert(1)", "JavaScript:alert(1)//@x.io", "ada@example.org?cc=eve@x.io", "a@b.c/../x", "12345", "call me after six", "tel:+44123456", "data:text/html,x", "<a>@x.io", "+44 20 7946 0958\njavascript:x", ""]) {
      assert.equal(contactHref(bad), null, bad);
    }
    assert.equal(contactHref(null), null);
  });

  test("a new request is announced; more are asked for from the next offset", () => {
    let r = run(idle(), { type: MSG.CALLBACKS, items: [item("a", 1)], offset: 0, total: 80 }, { type: MSG.CALLBACK_ADDED, item: item("b", 2, "Bea") });
    assert.equal(r.state.notice, "New call-back request from Bea.");
    r = run(r.state, { type: "click_callbacks_more" });
    assert.deepEqual(effects(r.fx, "send").map((f) => f.msg), [{ type: MSG.CALLBACKS, offset: 1 }]);
    assert.equal(r.state.moreBusy, true);
  });
});

// Every phase, every event: nothing throws, nothing is changed in place, every move allowed.

const STATES = {
  loading: () => initial(),
  login,
  idle,
  offered,
  "call-connecting": connecting,
  "in-call": inCall,
  replaced: () => run(idle(), { type: "socket_closed", code: CLOSE.REPLACED, opened: true, now: 1 }).state,
};

const EVENTS = [
  { type: "me", agent: AGENT },
  { type: "me", agent: null },
  { type: "submit_login", username: "a", password: "b" },
  { type: "signed_in", agent: AGENT },
  { type: "signed_in", error: "x" },
  { type: "click_logout" },
  { type: "logged_out", message: "bye" },
  { type: "renewed", status: 200, ttl: 60 },
  { type: "renewed", status: 401 },
  { type: "idle_check", idleMs: 1e9 },
  { type: "devices", hasVideo: true },
  { type: "retry_media" },
  { type: "notice_expired", text: "x" },
  { type: "socket_open" },
  ...[1000, 1001, 1006, 1008, 1011, 1013, 4009, 4401, 4403].map((code) => ({ type: "socket_closed", code, opened: true, now: 1 })),
  { type: "socket_closed", code: 1006, opened: false, now: 1 },
  { type: "socket_retrying" },
  { type: "session_checked", agent: null },
  { type: "session_checked", agent: AGENT },
  { type: "click_reconnect" },
  WELCOME,
  { ...WELCOME, status: "in_call" },
  ...["offline", "available", "break", "offered", "in_call", "wrap_up"].map((status) => ({ type: MSG.STATUS, status, call_id: "c1", remaining_ms: 1000, now: 5 })),
  { type: "click_status", status: "available" },
  { type: "resend_status" },
  { type: MSG.QUEUES, queues: { support: { waiting: 1, agents_available: 0 }, other: { waiting: 0 } } },
  { type: MSG.DESK_QUEUES, queues: ["support"] },
  OFFER,
  { type: "offer_expired", id: "o1" },
  { type: MSG.OFFER_CANCELLED, offer_id: "o1", reason: "timeout" },
  { type: "click_accept" },
  { type: "click_decline" },
  STARTED,
  { ...STARTED, alive: true },
  { ...STARTED, call_id: "c2" },
  { type: "page_visibility", visible: false },
  { type: "page_visibility", visible: true },
  { type: "chat_in_view", visible: false },
  { type: "chat_in_view", visible: true },
  ...CHAT_EVENTS,
  { type: "call_media", callId: "c1", muted: false, camera_off: false },
  { type: "media_toggled", muted: true, camera_off: true },
  { type: "peer_state", state: "connected", now: 7 },
  { type: "peer_state", state: "failed", now: 7 },
  { type: "peer_slow" },
  { type: "sound_blocked" },
  { type: "click_sound" },
  { type: MSG.PEER_MEDIA, call_id: "c1", muted: true, camera_off: true },
  { type: MSG.CALL_ENDED, call_id: "c1", reason: "peer_left" },
  { type: "click_hangup" },
  { type: "click_wrapup", action: "done" },
  { type: "transfer_choice", queue: "sales" },
  { type: "submit_transfer" },
  { type: "notes_edited", text: "n", disposition: "", now: false },
  { type: "notes_due" },
  { type: "notes_blur" },
  { type: MSG.NOTES_SAVED, call_id: "c1" },
  { type: MSG.NOTES_RESTORED, call_id: "c1", notes: "n" },
  { type: MSG.CALLBACKS, items: [{ id: 1, created: 1 }], offset: 0, total: 1 },
  { type: MSG.CALLBACK_ADDED, item: { id: 2, created: 2 } },
  { type: MSG.CALLBACK_CLOSED, id: 1 },
  { type: "click_callback_done", id: 1 },
  { type: "click_callback_undo" },
  { type: "callback_done_due", id: 1 },
  { type: "flush_callbacks" },
  { type: "click_callbacks_more" },
  ...Object.values(ERROR).flatMap((code) =>
    [MSG.STATUS, MSG.ACCEPT, MSG.DECLINE, MSG.NOTES, MSG.TRANSFER, MSG.WRAPUP, MSG.CLOSE_CALLBACK, MSG.CHAT, undefined].map((in_reply_to) => ({ type: MSG.ERROR, code, in_reply_to }))
  ),
  { ...OFFER, handover: { agent: "Ada", notes: "n", chat: [{ from: "v", text: "t" }] } },
  { type: "visibility", hidden: true },
  { type: "visibility", hidden: false },
  ...["default", "granted", "denied", "unsupported"].map((permission) => ({ type: "notify_permission", permission })),
  { type: "click_allow_notifications" },
  { type: "dismiss_background_warning" },
  { type: "no_such_event" },
];

describeMoves({ phases: PHASES, states: STATES, moves: MOVES, events: EVENTS, run });

describe("the visitor's pre-call test on the offer card", () => {
  test("what the join carried, in words and numbers", () => {
    assert.equal(precallText(null), "");
    assert.equal(precallText({ status: "unknown" }), "");
    assert.equal(
      precallText({ status: "ok", rtt_ms: 42, loss_pct: 0, path: "direct" }),
      "Good · 42 ms round trip · 0% loss · direct"
    );
    assert.equal(
      precallText({ status: "poor", rtt_ms: 413, loss_pct: 4.2, path: "relay" }),
      "May be choppy · 413 ms round trip · 4.2% loss · relayed"
    );
    assert.equal(precallText({ status: "busy", rtt_ms: null, loss_pct: null, path: null }), "Not tested (the test could not run)");
  });

  test("the offer keeps the visitor's result for the card", () => {
    const precall = { status: "ok", rtt_ms: 42, loss_pct: 0, path: "direct" };
    const r = run(available(), { ...OFFER, visitor: { ...OFFER.visitor, precall } });
    assert.equal(r.state.phase, "offered");
    assert.deepEqual(r.state.offer.visitor.precall, precall);
  });
});

describe("words without the visitor's name", () => {
  test("a call's end and a transfer say 'the visitor' in a sentence of their own", () => {
    assert.equal(endText({ reason: "hangup", by: "visitor" }, ""), "The visitor hung up.");
    assert.equal(endText({ reason: "hangup", by: "visitor" }, "Vi"), "Vi hung up.");
    assert.equal(endText({ reason: "peer_left" }, ""), "The connection to the visitor was lost.");
    assert.equal(endText({ reason: "transferred", queue: "sales" }, ""), "You passed the visitor to the sales line.");
    assert.equal(endText({ reason: "transferred" }, "Vi"), "You passed Vi to the other line.");
    assert.equal(endText({ reason: "whatever" }, "Vi"), "The call has ended.");
    // A name is the visitor's own text, placeholders and all.
    assert.equal(endText({ reason: "transferred", queue: "sales" }, "{queue}"), "You passed {queue} to the sales line.");
  });

  test("a nameless call-back request: announced, and Done then Undo", () => {
    const item = { id: "n", contact: "+44 20 7946 0000", created: 5 };
    let r = run(idle(), { type: MSG.CALLBACK_ADDED, item });
    assert.equal(r.state.notice, "New call-back request from a visitor.");
    r = run(r.state, { type: "click_callback_done", id: "n" });
    assert.deepEqual(r.state.undo, [{ id: "n", name: "" }]);
  });

  test("the handover's head, with and without the agent and the line", () => {
    assert.equal(handoverFrom({ agent: "", queue: "sales", notes: "x", disposition: "" }), "Notes from the agent before (sales)");
    assert.equal(handoverFrom({ agent: "", queue: "", notes: "", disposition: "" }), "No notes from the agent before");
    assert.equal(handoverFrom({ agent: "Ada", queue: "", notes: "", disposition: "odd one" }), "Notes from Ada · Outcome: odd one");
  });
});

describe("the language chooser", () => {
  test("a language code becomes the cookie the desk reads; anything else does not", () => {
    assert.equal(languageCookie("de"), "humandesk_lang=de; path=/; max-age=31536000; SameSite=Lax");
    assert.equal(languageCookie("de; path=/x"), "");
    assert.equal(languageCookie(""), "");
  });

  test("a choice sets the cookie and loads the page again; the same language does nothing", () => {
    const listeners = {};
    const select = { value: "en", disabled: false, addEventListener: (type, fn) => (listeners[type] = fn) };
    const doc = { cookie: "", querySelectorAll: (selector) => (selector === "select[data-language-chooser]" ? [select] : []) };
    let reloads = 0;
    wireLanguageChooser(doc, () => (reloads += 1));
    listeners.change();
    assert.deepEqual([doc.cookie, reloads], ["", 0]);
    select.value = "pl";
    listeners.change();
    assert.deepEqual([doc.cookie, reloads, select.disabled], ["humandesk_lang=pl; path=/; max-age=31536000; SameSite=Lax", 1, true]);
  });
});
