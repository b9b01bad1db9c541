/* The agent console's effects: what the transition table asks for, done to the world (the
 * socket, the peer connection, the camera, timers, HTTP calls, focus). */

import { deviceMemory, deviceOf, listDevices, switchDevice } from "../shared/devices.js";
import { namedTimers } from "../shared/dom.js";
import { getLocalMedia, stopStream, unmuteRemote } from "../shared/media.js";
import { micMeter } from "../shared/meter.js";
import { signIn } from "../shared/signin.js";
import { ring, stopRing } from "../shared/sound.js";
import { deskWire } from "../shared/wire.js";

/** GET /api/me: the signed-in agent, or null; throws when the desk cannot be reached. */
export async function fetchMe() {
  const res = await fetch("/api/me", { headers: { Accept: "application/json" }, cache: "no-store" });
  if (res.status === 401) return null;
  if (!res.ok) throw new Error("HTTP " + res.status);
  const data = await res.json();
  return data.agent;
}

/** POST /api/session: {status, ttl}; status 0 when the desk cannot be reached. */
async function renewSession() {
  try {
    const res = await fetch("/api/session", {
      method: "POST",
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    const ttl = res.ok ? Number((await res.json().catch(() => ({}))).ttl_s) || 0 : 0;
    return { status: res.status, ttl };
  } catch (_) {
    return { status: 0, ttl: 0 };
  }
}

/**
 * `perform(effect, dispatch)` for the console, and `stream()` (the camera's, or null).
 * `controls()`: the Mute and Camera buttons; `lastInput`: an object whose `at` is the time of
 * the agent's last key press or click; `alerts`: the tab's title, icon and desktop
 * notifications (alerts.js).
 */
export function agentEffects({ ui, controls, lastInput, alerts }) {
  const timers = namedTimers();
  let media = { stream: null, audioOnly: true };
  let mediaReady = Promise.resolve();
  let callDispatch = null;
  const wire = deskWire({
    path: "/ws/agent",
    remote: ui.remote,
    stream: () => media.stream,
    ready: () => mediaReady,
    controls,
    // The visitor's screen comes on the call's own line for it, beside the camera.
    onPeer(pc) {
      pc.addEventListener("track", (ev) => {
        const line = wire.screenLine();
        if (!line || ev.transceiver !== line.transceiver) return;
        ui.screenVideo.srcObject = new MediaStream([ev.track]);
        if (callDispatch) callDispatch({ type: "screen_line", on: true });
      });
    },
  });

  const memory = deviceMemory();
  // Web Audio starts at the agent's first gesture (the sign-in is one).
  const meter = micMeter(ui.micLevel, {
    canStart: () => !navigator.userActivation || navigator.userActivation.hasBeenActive,
  });
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, () => meter.activate(), { capture: true, passive: true });
  }

  /** The pickers' lists, and the devices in use. */
  async function refreshDevices(dispatch) {
    const found = await listDevices();
    const stream = media.stream;
    const camera = stream ? deviceOf(stream.getVideoTracks()[0]) : "";
    const mic = stream ? deviceOf(stream.getAudioTracks()[0]) : "";
    dispatch({ type: "device_list", ...found, camera, mic });
  }
  let listening = false;

  function checkDevices(dispatch) {
    mediaReady = (async () => {
      meter.detach();
      stopStream(media.stream);
      media = await getLocalMedia(memory.get());
      if (media.stream) {
        meter.attach(media.stream);
        const md = navigator.mediaDevices;
        if (!listening && md && md.addEventListener) {
          listening = true;
          md.addEventListener("devicechange", () => refreshDevices(dispatch));
        }
        await refreshDevices(dispatch);
      }
      const hasVideo = !!media.stream && !media.audioOnly;
      dispatch({ type: "devices", hasVideo, problem: media.problem, micError: media.micError });
    })();
  }

  const FOCUS = { username: () => ui.username, password: () => ui.password };

  const ACTIONS = {
    send: (fx) => wire.send(fx.msg),
    connect: (fx, dispatch) => wire.connect(dispatch),
    disconnect: () => wire.disconnect(),
    retry: (fx) => wire.retry(fx.soon),
    async checkSession(fx, dispatch) {
      try {
        dispatch({ type: "session_checked", agent: await fetchMe() });
      } catch (_) {
        dispatch({ type: "session_checked", failed: true });
      }
    },
    timer(fx, dispatch) {
      timers.set(fx.name, fx.ms, () => dispatch(fx.event), fx.repeat);
    },
    clear: (fx) => timers.clear(fx.name),
    renew(fx, dispatch) {
      timers.set("renew", fx.after, async () => dispatch({ type: "renewed", ...(await renewSession()) }));
    },
    resetIdle() {
      lastInput.at = Date.now();
    },
    async signIn(fx, dispatch) {
      dispatch({ type: "signed_in", ...(await signIn(fx.username, fx.password)) });
    },
    async logout(fx, dispatch) {
      try {
        await fetch("/api/logout", { method: "POST", headers: { Accept: "application/json" } });
      } catch (_) {
        /* the cookie expires on its own */
      }
      dispatch({ type: "logged_out", message: fx.message });
    },
    clearPassword() {
      ui.password.value = "";
    },
    focus(fx) {
      const target = FOCUS[fx.target]();
      if (fx.target === "password") target.select();
      target.focus();
    },
    checkDevices: (fx, dispatch) => checkDevices(dispatch),
    preview() {
      ui.local.srcObject = media.stream && !media.audioOnly ? media.stream : null;
      controls().reset();
    },
    releaseMedia() {
      meter.detach();
      stopStream(media.stream);
      media = { stream: null, audioOnly: true };
      ui.local.srcObject = null;
      controls().sync();
    },
    syncControls: () => controls().sync(),
    async switchDevice(fx, dispatch) {
      const kind = fx.kind === "camera" ? "video" : "audio";
      let ok = false;
      if (media.stream) {
        try {
          await switchDevice({ stream: media.stream, kind, id: fx.id, pc: wire.pc() });
          memory.set(fx.kind, fx.id);
          ok = true;
        } catch (err) {
          console.warn("humandesk: device switch failed", err);
        }
      }
      if (ok && kind === "audio") meter.attach(media.stream);
      if (ok && kind === "video") {
        ui.local.srcObject = null;
        ui.local.srcObject = media.stream;
      }
      controls().sync();
      dispatch({ type: "device_switched", kind: fx.kind, ok });
      refreshDevices(dispatch);
    },
    startCall(fx, dispatch) {
      callDispatch = dispatch;
      ui.screenVideo.srcObject = null;
      dispatch({ type: "screen_line", on: false });
      wire.startCall(fx, dispatch);
    },
    sendFile: (fx, dispatch) => wire.sendFile(fx, dispatch),
    revokeUrls: (fx) => fx.urls.forEach((url) => URL.revokeObjectURL(url)),
    clearChatInput() {
      ui.chatInput.value = "";
    },
    unread: (fx) => alerts.unread(fx.count), // the badge beside the chat is the view's
    restartCall: () => wire.restartCall(),
    recoverCall: (fx) => wire.recoverCall(!!fx.onlyIfBroken),
    endCall: () => wire.endCall(),
    ring: (fx) => ring(fx.ms),
    stopRing,
    attention: (fx) => alerts.attention(fx),
    attentionOff: () => alerts.quiet(),
    desktopNotify: (fx) => alerts.notify(fx),
    closeNotification: () => alerts.close(),
    askNotifications: (fx, dispatch) => alerts.ask((permission) => dispatch({ type: "notify_permission", permission })),
    unmuteRemote: () => unmuteRemote(ui.remote),
  };

  return {
    perform(fx, dispatch) {
      ACTIONS[fx.do](fx, dispatch);
    },
    stream: () => media.stream,
  };
}
