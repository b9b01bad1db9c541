/* The agent console's effects: what the transition table asks for, done to the world (the
 * socket, the peer connection, the camera, timers, HTTP calls, focus). */

import { callEffects } from "../shared/call_effects.js";
import { signIn } from "../shared/signin.js";
import { ring, stopRing } from "../shared/sound.js";

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
  let callDispatch = null;
  const call = callEffects({
    ui,
    controls,
    path: "/ws/agent",
    // Web Audio starts at the agent's first gesture (the sign-in is one).
    meterMayStart: () => !navigator.userActivation || navigator.userActivation.hasBeenActive,
    // The visitor's screen comes on the call's own line for it, beside the camera.
    onPeer(pc) {
      pc.addEventListener("track", (ev) => {
        const line = call.wire.screenLine();
        if (!line || ev.transceiver !== line.transceiver) return;
        ui.screenVideo.srcObject = new MediaStream([ev.track]);
        if (callDispatch) callDispatch({ type: "screen_line", on: true });
      });
    },
  });
  const { wire, meter, timers } = call;
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, () => meter.activate(), { capture: true, passive: true });
  }

  function checkDevices(dispatch) {
    call.ready = (async () => {
      await call.reopen();
      if (call.media.stream) {
        meter.attach(call.media.stream);
        await call.listDevices(dispatch);
      }
      const { stream, audioOnly, problem, micError } = call.media;
      dispatch({ type: "devices", hasVideo: !!stream && !audioOnly, problem, micError });
    })();
  }

  const FOCUS = { username: () => ui.username, password: () => ui.password };

  const ACTIONS = {
    ...call.actions,
    async checkSession(fx, dispatch) {
      try {
        dispatch({ type: "session_checked", agent: await fetchMe() });
      } catch (_) {
        dispatch({ type: "session_checked", failed: true });
      }
    },
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
      const media = call.media;
      ui.local.srcObject = media.stream && !media.audioOnly ? media.stream : null;
      controls().reset();
    },
    releaseMedia() {
      call.release();
      controls().sync();
    },
    startCall(fx, dispatch) {
      callDispatch = dispatch;
      ui.screenVideo.srcObject = null;
      dispatch({ type: "screen_line", on: false });
      wire.startCall(fx, dispatch);
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
  };

  return {
    perform(fx, dispatch) {
      ACTIONS[fx.do](fx, dispatch);
    },
    stream: () => call.media.stream,
  };
}
