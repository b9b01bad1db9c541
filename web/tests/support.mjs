// Helpers for the transition-table tests: frozen states (a handler that changes its input
// throws), runs of events, effects picked out by kind, and the check of a table of moves.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { next as agentNext } from "../static/agent/machine.js";
import { initial as agentInitial } from "../static/agent/state.js";
import { MSG } from "../static/shared/protocol.js";

export function deepFreeze(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

/** Feeds `events` to `next` one by one from `state`: the last state and every effect asked for. */
export function play(next, state, ...events) {
  let current = state;
  const fx = [];
  for (const event of events) {
    const [after, effects] = next(deepFreeze(current), event);
    current = after;
    fx.push(...effects);
  }
  return { state: current, fx };
}

/** The effects of one kind (`do`). */
export function effects(fx, kind) {
  return fx.filter((f) => f.do === kind);
}

/** The messages sent, by type. */
export function sent(fx) {
  return effects(fx, "send").map((f) => f.msg.type);
}

/**
 * The table of moves: every phase has a representative state (`states`) and a row (`moves`),
 * and from each state every one of `events` lands only where its row allows. `check(phase,
 * after, fx)` asserts what a page adds to each such step.
 */
export function describeMoves({ phases, states, moves, events, run, check = () => {} }) {
  describe("the table of moves", () => {
    test("every phase has a representative state and a row", () => {
      assert.deepEqual(Object.keys(states).sort(), [...phases].sort());
      assert.deepEqual(Object.keys(moves).sort(), [...phases].sort());
      for (const [phase, make] of Object.entries(states)) assert.equal(make().phase, phase);
    });

    for (const [phase, make] of Object.entries(states)) {
      test(`from ${phase}, every event moves only where the table allows`, () => {
        const state = make();
        for (const event of events) {
          const { state: after, fx } = run(state, event);
          assert.ok(after.phase === phase || moves[phase].includes(after.phase), `${phase} -> ${after.phase} on ${JSON.stringify(event)}`);
          for (const effect of fx) assert.equal(typeof effect.do, "string");
          check(phase, after, fx);
        }
      });
    }
  });
}

/** The chat's and the files' events, which both pages take in every phase. */
export const CHAT_EVENTS = [
  { type: MSG.CHAT, call_id: "c1", seq: 1, from: "agent", text: "hi https://x.example", at: 5 },
  { type: MSG.CHAT, call_id: "c1", seq: 2, from: "visitor", text: "hello", at: 6 },
  { type: MSG.CHAT_HISTORY, call_id: "c1", messages: [{ seq: 1, from: "agent", text: "hi", at: 5 }] },
  { type: "submit_chat", text: " order 1234 " },
  { type: "pick_file", file: { name: "a.png", size: 10, type: "image/png" }, key: "out-1" },
  { type: "pick_file", file: { name: "a.exe", size: 10, type: "application/x-msdownload" }, key: "out-2" },
  { type: "file_incoming", key: "in-x", name: "b.pdf", size: 10, mime: "application/pdf" },
  { type: "file_status", key: "out-1", status: "sent", url: "blob:x" },
  { type: "chat_seen" },
];

/** The agent console in a call: Ada, signed in and available, took call c1 with "Vi". */
export function agentInCall() {
  const agent = { name: "ada", display_name: "Ada", queues: ["support"] };
  return play(
    agentNext,
    agentInitial(),
    { type: "me", agent },
    { type: "devices", hasVideo: true },
    { type: "socket_open" },
    { type: MSG.WELCOME, now: 1, agent, status: "available", desk_queues: ["support"], ice_servers: [], session: {} },
    { type: MSG.CALL_STARTED, now: 2, call_id: "c1", role: "offerer", queue: "support", peer: { name: "Vi" }, alive: false }
  ).state;
}
