// The call's own tools on both pages: the camera and microphone pickers (and the choice kept
// for the next visit), the visitor's screen shared in place of the camera, and Enlarge.

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import { next as visitorNext } from "../static/visitor/machine.js";
import { initial as visitorInitial } from "../static/visitor/state.js";
import { SHARE_FAILED, SHARE_NEEDS_CAMERA } from "../static/visitor/share.js";
import { next as agentNext } from "../static/agent/machine.js";
import { initial as agentInitial } from "../static/agent/state.js";
import { SWITCH_FAILED } from "../static/shared/device_moves.js";
import { chosenId, deviceMemory, devicesOf, preferredConstraints } from "../static/shared/devices.js";
import { getLocalMedia } from "../static/shared/media.js";
import { screenMidOf } from "../static/shared/peer.js";
import { MSG } from "../static/shared/protocol.js";
import { agentInCall, effects, play, sent } from "./support.mjs";

const OPEN_LINE = { open: true, agents_online: 1, agents_available: 1, waiting: 0, eta_seconds: 0 };
const CAMERA = { type: "devices", audioOnly: false, hasVideo: true, problem: null };
const WELCOME = { type: MSG.WELCOME, ice_servers: [], ice_transport_policy: "all" };
const STARTED = { type: MSG.CALL_STARTED, call_id: "c1", role: "answerer", peer: { name: "Sam" }, alive: false };
const LIST = {
  type: "device_list",
  cameras: [
    { id: "cam-a", label: "Front" },
    { id: "cam-b", label: "Back" },
  ],
  mics: [
    { id: "mic-a", label: "Built-in" },
    { id: "mic-b", label: "Headset" },
  ],
  camera: "cam-a",
  mic: "mic-a",
};
const FLAGS = { muted: false, camera_off: false };

const run = (state, ...events) => play(visitorNext, state, ...events);

function ready({ canShare = true } = {}) {
  return run(
    visitorInitial({ queue: "support", canShare }),
    { type: "boot", ticket: null },
    { type: "first_look", info: OPEN_LINE },
    CAMERA,
    LIST,
    { type: "socket_open" },
    WELCOME
  ).state;
}
const inCall = (opts) =>
  run(
    ready(opts),
    { type: "submit_join", name: "Ada", topic: "", page: "" },
    { type: MSG.QUEUED, ticket: "T1", queue: "support", position: 1, eta_seconds: 0 },
    STARTED,
    { type: "peer_state", state: "connected", now: 1000 }
  ).state;
const sharing = () => run(inCall(), { type: "click_share", ...FLAGS }, { type: "share_started", ...FLAGS }).state;
const mediaSent = (fx) => effects(fx, "send").filter((f) => f.msg.type === MSG.MEDIA).map((f) => f.msg);

describe("the device pickers", () => {
  test("the browser's list, labels or numbered names, ids once, none without an id", () => {
    const list = [
      { kind: "videoinput", deviceId: "c1", label: "USB camera" },
      { kind: "videoinput", deviceId: "c2", label: "" },
      { kind: "videoinput", deviceId: "c1", label: "USB camera" },
      { kind: "videoinput", deviceId: "", label: "" }, // before permission: nothing to switch to
      { kind: "audioinput", deviceId: "m1", label: "Headset" },
      { kind: "audiooutput", deviceId: "o1", label: "Speakers" },
    ];
    assert.deepEqual(devicesOf(list, "videoinput"), [
      { id: "c1", label: "USB camera" },
      { id: "c2", label: "Camera 2" },
    ]);
    assert.deepEqual(devicesOf(list, "audioinput"), [{ id: "m1", label: "Headset" }]);
    assert.deepEqual(devicesOf(undefined, "audioinput"), []);
  });

  test("the one shown: in use, else remembered, else the first", () => {
    const devices = [{ id: "a" }, { id: "b" }];
    assert.equal(chosenId(devices, "b", "a"), "b");
    assert.equal(chosenId(devices, "", "b"), "b");
    assert.equal(chosenId(devices, "gone", "gone too"), "a");
    assert.equal(chosenId([], "a", "b"), "");
  });

  test("the devices remembered are asked for first, exactly (none remembered: no such request)", () => {
    assert.equal(preferredConstraints(null), null);
    assert.equal(preferredConstraints({ camera: "", mic: "" }), null);
    assert.deepEqual(preferredConstraints({ camera: "c2", mic: "" }), {
      video: { deviceId: { exact: "c2" } },
      audio: true,
    });
  });

  describe("asking the browser", () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    afterEach(() => {
      if (saved) Object.defineProperty(globalThis, "navigator", saved);
    });
    /** A browser whose getUserMedia answers each request in turn ("ok", or an error's name). */
    function browserAnswering(...answers) {
      const asked = [];
      const stream = (video) => ({ getVideoTracks: () => (video ? [{}] : []), getTracks: () => [] });
      const getUserMedia = async (constraints) => {
        asked.push(constraints);
        const answer = answers.shift();
        if (answer !== "ok") throw Object.assign(new Error(answer), { name: answer });
        return stream(!!constraints.video);
      };
      Object.defineProperty(globalThis, "navigator", { value: { mediaDevices: { getUserMedia } }, configurable: true });
      return asked;
    }

    test("the remembered devices first; gone since: any camera and microphone", async () => {
      let asked = browserAnswering("ok");
      let r = await getLocalMedia({ camera: "c2", mic: "m1" });
      assert.equal(r.problem, null);
      assert.deepEqual(asked, [{ video: { deviceId: { exact: "c2" } }, audio: { deviceId: { exact: "m1" } } }]);
      asked = browserAnswering("OverconstrainedError", "ok");
      r = await getLocalMedia({ camera: "c2", mic: "" });
      assert.equal(r.problem, null);
      assert.deepEqual(asked.at(-1), { video: true, audio: true });
    });

    test("refused: never asked again for the camera (no second prompt), the microphone alone", async () => {
      const asked = browserAnswering("NotAllowedError", "NotAllowedError");
      const r = await getLocalMedia({ camera: "c2", mic: "" });
      assert.equal(r.problem, "no_media");
      assert.deepEqual(asked.at(-1), { audio: true });
      assert.equal(asked.length, 2);
    });
  });

  describe("remembered for the next visit", () => {
    const saved = globalThis.window;
    afterEach(() => {
      globalThis.window = saved;
    });

    test("kept in localStorage", () => {
      const store = new Map();
      globalThis.window = {
        localStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) },
      };
      const memory = deviceMemory("k");
      assert.deepEqual(memory.get(), { camera: "", mic: "" });
      memory.set("camera", "c2");
      memory.set("mic", "m1");
      assert.deepEqual(deviceMemory("k").get(), { camera: "c2", mic: "m1" });
    });

    test("a frame denied storage forgets quietly", () => {
      const denied = () => {
        throw new Error("SecurityError");
      };
      globalThis.window = { localStorage: { getItem: denied, setItem: denied } };
      const memory = deviceMemory("k");
      assert.doesNotThrow(() => memory.set("camera", "c2"));
      assert.deepEqual(memory.get(), { camera: "", mic: "" });
      globalThis.window = {}; // no localStorage at all
      assert.deepEqual(deviceMemory("k").get(), { camera: "", mic: "" });
    });
  });

  test("before joining: a choice switches the device, once at a time; a device not listed is ignored", () => {
    let r = run(ready(), { type: "choose_device", kind: "camera", id: "cam-b" });
    assert.deepEqual(effects(r.fx, "switchDevice").map((f) => [f.kind, f.id]), [["camera", "cam-b"]]);
    assert.equal(r.state.devices.camera, "cam-b");
    assert.equal(r.state.switching, "camera");
    assert.equal(effects(run(r.state, { type: "choose_device", kind: "mic", id: "mic-b" }).fx, "switchDevice").length, 0);
    r = run(r.state, { type: "device_switched", kind: "camera", ok: true });
    assert.equal(r.state.switching, null);
    assert.equal(effects(run(r.state, { type: "choose_device", kind: "camera", id: "cam-b" }).fx, "switchDevice").length, 0);
    assert.equal(effects(run(r.state, { type: "choose_device", kind: "camera", id: "nope" }).fx, "switchDevice").length, 0);
    assert.equal(effects(run(r.state, { type: "choose_device", kind: "speaker", id: "mic-a" }).fx, "switchDevice").length, 0);
  });

  test("a switch while the pre-call test runs tests again with the new tracks", () => {
    const before = ready();
    assert.equal(before.precall.status, "running");
    const r = run(before, { type: "choose_device", kind: "mic", id: "mic-b" }, { type: "device_switched", kind: "mic", ok: true });
    assert.deepEqual(r.fx.map((f) => f.do).filter((d) => d.endsWith("recall")), ["stopPrecall", "precall"]);
    assert.equal(r.state.precall.status, "running");
  });

  test("in a call: the switch, and no message to the desk (the track changes, the call goes on)", () => {
    const r = run(inCall(), { type: "choose_device", kind: "camera", id: "cam-b" }, { type: "device_switched", kind: "camera", ok: true });
    assert.equal(effects(r.fx, "switchDevice").length, 1);
    assert.deepEqual(sent(r.fx), []);
    assert.equal(r.state.phase, "in-call");
    assert.equal(r.state.callId, "c1");
  });

  test("a device that cannot be opened: said, and the list (from the browser) shows the one in use", () => {
    let r = run(inCall(), { type: "choose_device", kind: "camera", id: "cam-b" }, { type: "device_switched", kind: "camera", ok: false });
    assert.equal(r.state.notice, SWITCH_FAILED.camera);
    r = run(r.state, LIST);
    assert.equal(r.state.devices.camera, "cam-a");
  });

  test("the agent's console: the same pickers", () => {
    const me = { name: "ada", display_name: "Ada", queues: ["support"] };
    let r = play(agentNext, agentInitial(), { type: "me", agent: me }, { type: "devices", hasVideo: true }, LIST);
    assert.deepEqual(r.state.devices.mics.map((m) => m.id), ["mic-a", "mic-b"]);
    r = play(agentNext, r.state, { type: "choose_device", kind: "mic", id: "mic-b" });
    assert.deepEqual(effects(r.fx, "switchDevice").map((f) => [f.kind, f.id]), [["mic", "mic-b"]]);
    r = play(agentNext, r.state, { type: "device_switched", kind: "mic", ok: false });
    assert.equal(r.state.notice, SWITCH_FAILED.mic);
    assert.equal(r.state.switching, null);
  });
});

describe("sharing the screen", () => {
  test("Share screen asks the browser; once it shares, the agent is told (screen: true)", () => {
    let r = run(inCall(), { type: "click_share", ...FLAGS });
    assert.equal(effects(r.fx, "startShare").length, 1);
    assert.equal(r.state.shareBusy, true);
    assert.equal(effects(run(r.state, { type: "click_share", ...FLAGS }).fx, "startShare").length, 0); // once
    r = run(r.state, { type: "share_started", ...FLAGS });
    assert.equal(r.state.sharing, true);
    assert.equal(r.state.shareBusy, false);
    assert.deepEqual(mediaSent(r.fx), [{ type: MSG.MEDIA, muted: false, camera_off: false, screen: true }]);
  });

  test("Stop sharing, or the browser's own Stop: the camera back, and the agent told", () => {
    for (const stop of [{ type: "click_share", ...FLAGS, muted: true }, { type: "share_ended", ...FLAGS, muted: true }]) {
      const r = run(sharing(), stop);
      assert.equal(r.state.sharing, false, stop.type);
      assert.equal(effects(r.fx, "stopShare").length, 1, stop.type);
      assert.deepEqual(mediaSent(r.fx), [{ type: MSG.MEDIA, muted: true, camera_off: false, screen: false }]);
    }
    // The track's ended event after the button already stopped it: nothing more.
    const r = run(run(sharing(), { type: "click_share", ...FLAGS }).state, { type: "share_ended", ...FLAGS });
    assert.deepEqual(r.fx, []);
  });

  test("Mute and Camera while sharing keep saying screen: true", () => {
    const r = run(sharing(), { type: "media_toggled", muted: false, camera_off: true });
    assert.deepEqual(mediaSent(r.fx), [{ type: MSG.MEDIA, muted: false, camera_off: true, screen: true }]);
  });

  test("the visitor's Cancel says nothing; another failure says so; the camera goes on", () => {
    const asked = run(inCall(), { type: "click_share", ...FLAGS }).state;
    let r = run(asked, { type: "share_failed", reason: "NotAllowedError" });
    assert.equal(r.state.shareBusy, false);
    assert.equal(r.state.sharing, false);
    assert.equal(r.state.notice, "");
    r = run(asked, { type: "share_failed", reason: "NotReadableError" });
    assert.equal(r.state.notice, SHARE_FAILED);
    assert.deepEqual(sent(r.fx), []);
  });

  test("only in a call, only where the browser can", () => {
    assert.deepEqual(run(ready(), { type: "click_share", ...FLAGS }).fx, []);
    assert.deepEqual(run(inCall({ canShare: false }), { type: "click_share", ...FLAGS }).fx, []);
  });

  test("a voice-only visitor shares on the call's screen line; without one there is nothing to send on", () => {
    const voice = run(ready(), { type: "devices", audioOnly: true, hasVideo: false, problem: "no_camera" }).state;
    const call = run(
      voice,
      { type: "submit_join", name: "Ada", topic: "", page: "" },
      { type: MSG.QUEUED, ticket: "T1", queue: "support", position: 1, eta_seconds: 0 },
      STARTED
    ).state;
    const asked = run(call, { type: "click_share", ...FLAGS });
    assert.equal(effects(asked.fx, "startShare").length, 1);
    const shared = run(asked.state, { type: "share_started", muted: false, camera_off: true });
    assert.deepEqual(mediaSent(shared.fx), [{ type: MSG.MEDIA, muted: false, camera_off: true, screen: true }]);
    const failed = run(asked.state, { type: "share_failed", reason: "NoVideoSender" });
    assert.equal(failed.state.notice, SHARE_NEEDS_CAMERA);
    assert.equal(failed.state.shareBusy, false);
  });

  test("the call ends (any way) while sharing: the share stops with it", () => {
    for (const end of [
      { type: "click_hangup" },
      { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" },
      { type: MSG.CALL_ENDED, call_id: "c1", reason: "transferred", queue: "sales" },
    ]) {
      const r = run(sharing(), end);
      assert.equal(r.state.sharing, false, end.type);
      assert.ok(effects(r.fx, "stopShare").length >= 1, end.type);
      assert.ok(!r.state.callId);
    }
  });

  test("the browser answers after the call ended: the screen is let go at once", () => {
    const asked = run(inCall(), { type: "click_share", ...FLAGS }).state;
    const ended = run(asked, { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" }).state;
    assert.equal(ended.shareBusy, false);
    const r = run(ended, { type: "share_started", ...FLAGS });
    assert.equal(r.state.sharing, false);
    assert.equal(effects(r.fx, "stopShare").length, 1);
    assert.deepEqual(sent(r.fx), []);
  });

  test("the agent sees the share: peer_media's screen flag", () => {
    const agentRun = (state, ...events) => play(agentNext, state, ...events);
    let s = agentRun(agentInCall(), { type: MSG.PEER_MEDIA, call_id: "c1", muted: false, camera_off: false, screen: true }).state;
    assert.deepEqual(s.peerMedia, { muted: false, camera_off: false, screen: true });
    s = agentRun(s, { type: MSG.PEER_MEDIA, call_id: "c1", muted: false, camera_off: false }).state;
    assert.equal(s.peerMedia.screen, false); // an older panel that says nothing of screens
  });
});

describe("the call's line for a screen", () => {
  test("the offer's second video line, wherever other lines sit; none: null", () => {
    const line = (kind, mid) => `m=${kind} 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:${mid}\r\n`;
    const head = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    assert.equal(screenMidOf(head + line("audio", "0") + line("video", "1") + line("video", "2")), "2");
    assert.equal(screenMidOf(head + line("audio", "a") + line("video", "v") + line("application", "d") + line("video", "s")), "s");
    assert.equal(screenMidOf(head + line("audio", "0") + line("video", "1")), null); // an older console
    assert.equal(screenMidOf(head + line("audio", "0") + line("video", "1") + "m=video 9 RTP 96\r\n"), null); // no mid
    assert.equal(screenMidOf(undefined), null);
  });
});

describe("Enlarge", () => {
  const desktop = () => run(inCall(), { type: "host_layout", narrow: false }).state;

  test("asks the host page for a large panel, and back", () => {
    let r = run(desktop(), { type: "click_enlarge" });
    assert.equal(r.state.large, true);
    assert.deepEqual(effects(r.fx, "host").map((f) => f.msg), [{ type: "size", large: true }]);
    r = run(r.state, { type: "click_enlarge" });
    assert.equal(r.state.large, false);
    assert.deepEqual(effects(r.fx, "host").map((f) => f.msg), [{ type: "size", large: false }]);
  });

  test("not on a phone (full screen already), not with an old loader, not outside a call", () => {
    assert.deepEqual(run(run(inCall(), { type: "host_layout", narrow: true }).state, { type: "click_enlarge" }).fx, []);
    assert.deepEqual(run(inCall(), { type: "click_enlarge" }).fx, []); // the loader never said
    assert.deepEqual(run(run(ready(), { type: "host_layout", narrow: false }).state, { type: "click_enlarge" }).fx, []);
  });

  test("the call's end gives the panel its usual size back", () => {
    const large = run(desktop(), { type: "click_enlarge" }).state;
    const r = run(large, { type: MSG.CALL_ENDED, call_id: "c1", reason: "hangup", by: "agent" });
    assert.equal(r.state.large, false);
    assert.deepEqual(
      effects(r.fx, "host").map((f) => f.msg).filter((m) => m.type === "size"),
      [{ type: "size", large: false }]
    );
  });
});
