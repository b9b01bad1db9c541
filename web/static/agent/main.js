/* The agent console: sign-in, status, offers, calls, wrap-up, notes, transfers and call-back
 * requests. This module wires the page together: the DOM's events go to the transition table
 * (machine.js), its state to the view (view.js), its effects to effects.js. */

import { wireChatForm } from "../shared/chat_view.js";
import { mediaControls } from "../shared/controls.js";
import { wirePickers } from "../shared/devices.js";
import { wireLanguageChooser } from "../shared/language.js";
import { run } from "../shared/loop.js";
import { unlock } from "../shared/sound.js";
import { notificationPermission, pageAlerts } from "./alerts.js";
import { agentEffects, fetchMe } from "./effects.js";
import { next } from "./machine.js";
import { initial } from "./state.js";
import { createView, findParts } from "./view.js";

const ui = findParts();
const lastInput = { at: Date.now() };
window.hdPeer = null; // the call's RTCPeerConnection, for the browser tests' statistics

let controls = null;
const alerts = pageAlerts();
const effects = agentEffects({ ui, controls: () => controls, lastInput, alerts });
let dispatch = null;
/** Every event carries the page's monotonic clock; the idle check, the time since the last input. */
const stamped = (event) => {
  const extra = event.type === "idle_check" ? { idleMs: Date.now() - lastInput.at } : {};
  dispatch({ now: performance.now(), ...event, ...extra });
};
const render = createView(ui, {
  onCallbackDone: (id) => stamped({ type: "click_callback_done", id }),
});
const page = run({ state: initial(), next, render, perform: (fx) => effects.perform(fx, stamped) });
dispatch = page.dispatch;
controls = mediaControls({
  muteButton: ui.mute,
  cameraButton: ui.camera,
  getStream: effects.stream,
  onChange: (current) => stamped({ type: "media_toggled", ...current }),
});

wireLanguageChooser();

/* Input: the idle clock, and audio, which may only start after a gesture. */
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => (lastInput.at = Date.now()), { capture: true, passive: true });
  document.addEventListener(type, () => unlock(), { once: true, capture: true });
}

const on = (node, type, event) => node.addEventListener(type, () => stamped(event()));

ui.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  unlock();
  stamped({ type: "submit_login", username: ui.username.value, password: ui.password.value });
});
on(ui.logout, "click", () => ({ type: "click_logout" }));
on(ui.reconnect, "click", () => ({ type: "click_reconnect" }));
on(ui.available, "click", () => (unlock(), { type: "click_status", status: "available" }));
on(ui.brk, "click", () => (unlock(), { type: "click_status", status: "break" }));
on(ui.offline, "click", () => (unlock(), { type: "click_status", status: "offline" }));
on(ui.accept, "click", () => (unlock(), { type: "click_accept" }));
on(ui.decline, "click", () => ({ type: "click_decline" }));
on(ui.hangup, "click", () => ({ type: "click_hangup" }));
on(ui.sound, "click", () => ({ type: "click_sound" }));
on(ui.retryMedia, "click", () => ({ type: "retry_media" }));
wirePickers(ui, stamped);
on(ui.wrapupExtend, "click", () => ({ type: "click_wrapup", action: "extend" }));
on(ui.wrapupDone, "click", () => ({ type: "click_wrapup", action: "done" }));
on(ui.callbacksMore, "click", () => ({ type: "click_callbacks_more" }));
on(ui.allowNotifications, "click", () => ({ type: "click_allow_notifications" }));
on(ui.backgroundDismiss, "click", () => ({ type: "dismiss_background_warning" }));
on(ui.callbackUndoButton, "click", () => ({ type: "click_callback_undo" }));
// A "Done" still undoable is sent as the page goes (closed, reloaded, navigated away).
window.addEventListener("pagehide", () => stamped({ type: "flush_callbacks" }));
const edited = (now) => () => ({ type: "notes_edited", text: ui.notes.value, disposition: ui.disposition.value, now });
on(ui.notes, "input", edited(false));
on(ui.disposition, "change", edited(true));
on(ui.notes, "blur", () => ({ type: "notes_blur" }));
on(ui.transferQueue, "change", () => ({ type: "transfer_choice", queue: ui.transferQueue.value }));
wireChatForm(ui, stamped);
if (typeof IntersectionObserver === "function") {
  new IntersectionObserver((seen) => stamped({ type: "chat_in_view", visible: seen.at(-1).isIntersecting })).observe(ui.chatLog);
}
document.addEventListener("visibilitychange", () =>
  stamped({ type: "page_visibility", visible: document.visibilityState === "visible" })
);
ui.transfer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  stamped({ type: "submit_transfer" });
});

/* Offers are not missed: whether the tab is hidden, and what the browser allows. */
const looked = () => {
  stamped({ type: "notify_permission", permission: notificationPermission() });
  stamped({ type: "visibility", hidden: document.visibilityState === "hidden" });
};
document.addEventListener("visibilitychange", looked);
looked();

fetchMe()
  .then((agent) => stamped({ type: "me", agent }))
  .catch(() => stamped({ type: "me", agent: null, failed: true }));
