/* The visitor panel's effects: what the transition table asks for, done to the world (the
 * socket, the peer connection, the camera, timers, the host page, storage, focus). */

import { deviceMemory, deviceOf, listDevices, switchDevice, videoSender } from "../shared/devices.js";
import { namedTimers } from "../shared/dom.js";
import { getLocalMedia, stopStream, unmuteRemote } from "../shared/media.js";
import { micMeter } from "../shared/meter.js";
import { chime } from "../shared/sound.js";
import { deskWire } from "../shared/wire.js";
import { runPrecall } from "./precall.js";

/**
 * `perform(effect, dispatch)` for the panel, and `stream()` (the camera's, or null).
 * `controls()`: the Mute and Camera buttons; `firstLook`: the availability fetched at load.
 */
export function visitorEffects({ ui, controls, host, tickets, queue, firstLook }) {
  const timers = namedTimers();
  let media = { stream: null, audioOnly: true };
  let mediaReady = Promise.resolve();
  let deviceCheck = null; // the check in flight
  let precall = null; // the pre-call test's AbortController, while one runs
  // In the widget's frame the host page lets us play sound (allow="autoplay"); on our own page
  // Web Audio waits for the visitor's first gesture.
  const meter = micMeter(ui.micLevel, {
    canStart: () => host.embedded || !navigator.userActivation || navigator.userActivation.hasBeenActive,
  });
  const memory = deviceMemory();
  // The screen shared: {track, sender, beside}; `beside`: on the call's own line for a screen,
  // the camera going on as well; else in the camera's place (a call without that line).
  let share = null;
  let shareDispatch = null;
  const wire = deskWire({
    path: "/ws/visitor",
    remote: ui.remote,
    stream: () => media.stream,
    ready: () => mediaReady,
    controls,
    // A new connection in the middle of a share (the other page reloaded) sends the camera
    // it was built with: the share is over, and the visitor sees so (they may share again).
    onPeer() {
      if (share && shareDispatch) shareDispatch({ type: "share_ended", ...controls().current() });
    },
  });

  /** The pickers' lists, and the devices in use. */
  async function refreshDevices(dispatch) {
    const found = await listDevices();
    const stream = media.stream;
    const camera = stream ? deviceOf(stream.getVideoTracks()[0]) : "";
    const mic = stream ? deviceOf(stream.getAudioTracks()[0]) : "";
    dispatch({ type: "device_list", ...found, camera, mic });
  }
  let listening = false;
  function watchDevices(dispatch) {
    const md = navigator.mediaDevices;
    if (listening || !md || !md.addEventListener) return;
    listening = true;
    md.addEventListener("devicechange", () => refreshDevices(dispatch));
  }

  /** The camera goes back in the screen's place. */
  function endShare() {
    if (!share) return;
    const { track, sender, beside } = share;
    share = null;
    track.stop();
    const camera = media.stream ? media.stream.getVideoTracks()[0] || null : null;
    sender.replaceTrack(beside ? null : camera).catch(() => {}); // closed: nothing to put back
    ui.local.srcObject = media.stream && !media.audioOnly ? media.stream : null;
  }

  function checkDevices(dispatch) {
    if (deviceCheck) return;
    deviceCheck = (async () => {
      meter.detach();
      stopStream(media.stream);
      ui.local.srcObject = null;
      media = await getLocalMedia(memory.get());
      if (media.stream) {
        watchDevices(dispatch);
        await refreshDevices(dispatch); // the labels, now that the browser granted the devices
      }
      const hasVideo = !!media.stream && media.stream.getVideoTracks().length > 0;
      dispatch({ type: "devices", audioOnly: media.audioOnly, hasVideo, problem: media.problem, micError: media.micError });
    })().finally(() => (deviceCheck = null));
    mediaReady = deviceCheck;
  }

  const FOCUS = {
    name: () => ui.name,
    "callback-name": () => ui.cbName,
    "callback-contact": () => ui.cbContact,
    callback: () => (ui.cbName.value.trim() ? ui.cbContact : ui.cbName),
    "callback-close": () => ui.callbackClose,
    leave: () => ui.leave,
    "leave-no": () => ui.leaveNo,
    position: () => ui.position,
    mute: () => ui.mute,
    hangup: () => ui.hangup,
    star: () => ui.stars[0],
    again: () => ui.again,
  };

  const ACTIONS = {
    send: (fx) => wire.send(fx.msg),
    connect: (fx, dispatch) => wire.connect(dispatch),
    disconnect: () => wire.disconnect(),
    retry: (fx) => wire.retry(fx.soon),
    timer(fx, dispatch) {
      const jitter = fx.jitter ? 1 - fx.jitter + Math.random() * 2 * fx.jitter : 1;
      timers.set(fx.name, fx.ms * jitter, () => dispatch(fx.event));
    },
    clear: (fx) => timers.clear(fx.name),
    host: (fx) => host.post(fx.msg),
    ticket: (fx) => tickets.set(fx.ticket),
    focus(fx) {
      if (fx.ifInPanel && !document.hasFocus()) return; // never take the keyboard from the host page
      const target = FOCUS[fx.target] && FOCUS[fx.target]();
      if (target && !target.hidden) target.focus();
    },
    async firstLook(fx, dispatch) {
      dispatch({ type: "first_look", info: await firstLook });
    },
    async fetchAvailability(fx, dispatch) {
      dispatch({ type: "availability", info: await fetchAvailability(queue, fx.timeoutMs) });
    },
    checkDevices: (fx, dispatch) => checkDevices(dispatch),
    precall(fx, dispatch) {
      if (precall) precall.abort();
      const abort = new AbortController();
      precall = abort;
      const stream = media.stream;
      const done = (result) => {
        if (precall === abort) precall = null;
        if (result && !abort.signal.aborted) dispatch({ type: "precall_result", result });
      };
      if (!stream) done({ status: "busy", rttMs: null, lossPct: null, path: null });
      else runPrecall({ stream, video: ui.precallVideo, signal: abort.signal }).then(done);
    },
    stopPrecall() {
      if (precall) precall.abort();
      precall = null;
    },
    preview() {
      if (media.stream && !media.audioOnly) ui.local.srcObject = media.stream;
      if (media.stream) meter.attach(media.stream);
      controls().reset();
    },
    releaseMedia() {
      meter.detach();
      stopStream(media.stream);
      media = { stream: null, audioOnly: true };
      ui.local.srcObject = null;
    },
    syncControls: () => controls().sync(),
    async switchDevice(fx, dispatch) {
      const kind = fx.kind === "camera" ? "video" : "audio";
      let ok = false;
      if (media.stream) {
        try {
          const pc = wire.pc();
          // While the screen is sent in the camera's place it stays there; the new camera waits.
          const keepSending = !(share && !share.beside && kind === "video");
          await switchDevice({ stream: media.stream, kind, id: fx.id, pc, keepSending });
          memory.set(fx.kind, fx.id);
          ok = true;
        } catch (err) {
          console.warn("humandesk: device switch failed", err);
        }
      }
      if (ok && kind === "audio") meter.attach(media.stream);
      if (ok && kind === "video" && !share) {
        ui.local.srcObject = null;
        ui.local.srcObject = media.stream;
      }
      controls().sync();
      dispatch({ type: "device_switched", kind: fx.kind, ok });
      refreshDevices(dispatch);
    },
    async startShare(fx, dispatch) {
      const flags = () => controls().current();
      let display = null;
      try {
        // The call's line for a screen, else the camera's sender (a voice-only visitor has none).
        const line = wire.screenLine();
        const sender = line ? line.sender : videoSender(wire.pc());
        if (!sender) throw Object.assign(new Error("no video sender"), { name: "NoVideoSender" });
        display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
        const track = display.getVideoTracks()[0];
        if (!track) throw Object.assign(new Error("no screen"), { name: "NoScreen" });
        if ("contentHint" in track) track.contentHint = "detail"; // text stays sharp
        await sender.replaceTrack(track);
        endShare();
        share = { track, sender, beside: !!line };
        shareDispatch = dispatch;
        track.addEventListener("ended", () => {
          if (share && share.track === track) dispatch({ type: "share_ended", ...flags() });
        });
        ui.local.srcObject = display; // the visitor sees what they share
        dispatch({ type: "share_started", ...flags() });
      } catch (err) {
        stopStream(display);
        dispatch({ type: "share_failed", reason: (err && err.name) || "Error" });
      }
    },
    stopShare: () => endShare(),
    startCall: (fx, dispatch) => wire.startCall(fx, dispatch),
    sendFile: (fx, dispatch) => wire.sendFile(fx, dispatch),
    revokeUrls: (fx) => fx.urls.forEach((url) => URL.revokeObjectURL(url)),
    clearChatInput() {
      ui.chatInput.value = "";
    },
    unread: (fx) => host.post({ type: "unread", count: fx.count }),
    endCall() {
      endShare();
      wire.endCall();
    },
    chime,
    unmuteRemote: () => unmuteRemote(ui.remote),
    prefillCallback() {
      if (!ui.cbName.value.trim() && ui.name.value.trim()) ui.cbName.value = ui.name.value.trim();
      if (!ui.cbNote.value.trim() && ui.topic.value.trim()) ui.cbNote.value = ui.topic.value.trim();
    },
    prefillJoin() {
      if (!ui.name.value.trim() && ui.cbName.value.trim()) ui.name.value = ui.cbName.value.trim();
      if (!ui.topic.value.trim() && ui.cbNote.value.trim()) ui.topic.value = ui.cbNote.value.trim();
    },
    clearCallback() {
      ui.cbContact.value = "";
      ui.cbNote.value = "";
    },
    clearRating() {
      ui.ratingComment.value = "";
    },
  };

  return {
    perform(fx, dispatch) {
      ACTIONS[fx.do](fx, dispatch);
    },
    stream: () => media.stream,
    /** A user gesture: the microphone meter may start now. */
    gesture: () => meter.activate(),
  };
}

/** GET /api/queues/<queue>: the line's hours, agents and wait; {unknown} for a 404, else null. */
export async function fetchAvailability(queue, timeoutMs) {
  const abort = typeof AbortController === "function" ? new AbortController() : null;
  const timer = setTimeout(() => abort && abort.abort(), timeoutMs);
  try {
    const res = await fetch("/api/queues/" + encodeURIComponent(queue), {
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal: abort ? abort.signal : undefined,
    });
    if (res.status === 404) return { unknown: true };
    if (!res.ok) return null;
    const data = await res.json();
    return data && typeof data === "object" ? data : null;
  } catch (_) {
    return null; // the join itself will tell us
  } finally {
    clearTimeout(timer);
  }
}
