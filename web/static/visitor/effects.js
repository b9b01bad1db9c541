/* The visitor panel's effects: what the transition table asks for, done to the world (the
 * socket, the peer connection, the camera, timers, the host page, storage, focus). */

import { callEffects } from "../shared/call_effects.js";
import { videoSender } from "../shared/devices.js";
import { stopStream } from "../shared/media.js";
import { chime } from "../shared/sound.js";
import { runPrecall } from "./precall.js";

/**
 * `perform(effect, dispatch)` for the panel, and `stream()` (the camera's, or null).
 * `controls()`: the Mute and Camera buttons; `firstLook`: the availability fetched at load.
 */
export function visitorEffects({ ui, controls, host, tickets, queue, firstLook }) {
  let deviceCheck = null; // the check in flight
  let precall = null; // the pre-call test's AbortController, while one runs
  // The screen shared: {track, sender, beside}; `beside`: on the call's own line for a screen,
  // the camera going on as well; else in the camera's place (a call without that line).
  let share = null;
  let shareDispatch = null;
  const call = callEffects({
    ui,
    controls,
    path: "/ws/visitor",
    // In the widget's frame the host page lets us play sound (allow="autoplay"); on our own page
    // Web Audio waits for the visitor's first gesture.
    meterMayStart: () => host.embedded || !navigator.userActivation || navigator.userActivation.hasBeenActive,
    // A new connection in the middle of a share (the other page reloaded) sends the camera
    // it was built with: the share is over, and the visitor sees so (they may share again).
    onPeer() {
      if (share && shareDispatch) shareDispatch({ type: "share_ended", ...controls().current() });
    },
    sharing: () => share,
  });
  const { wire, meter } = call;

  /** The camera goes back in the screen's place. */
  function endShare() {
    if (!share) return;
    const { track, sender, beside } = share;
    share = null;
    track.stop();
    const { stream, audioOnly } = call.media;
    const camera = stream ? stream.getVideoTracks()[0] || null : null;
    sender.replaceTrack(beside ? null : camera).catch(() => {}); // closed: nothing to put back
    ui.local.srcObject = stream && !audioOnly ? stream : null;
  }

  function checkDevices(dispatch) {
    if (deviceCheck) return;
    deviceCheck = (async () => {
      ui.local.srcObject = null;
      await call.reopen();
      if (call.media.stream) await call.listDevices(dispatch); // the labels, now that the browser granted the devices
      const { stream, audioOnly, problem, micError } = call.media;
      const hasVideo = !!stream && stream.getVideoTracks().length > 0;
      dispatch({ type: "devices", audioOnly, hasVideo, problem, micError });
    })().finally(() => (deviceCheck = null));
    call.ready = deviceCheck;
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
    ...call.actions,
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
      const stream = call.media.stream;
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
      const { stream, audioOnly } = call.media;
      if (stream && !audioOnly) ui.local.srcObject = stream;
      if (stream) meter.attach(stream);
      controls().reset();
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
    unread: (fx) => host.post({ type: "unread", count: fx.count }),
    endCall() {
      endShare();
      wire.endCall();
    },
    chime,
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
    stream: () => call.media.stream,
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
