/* The parts the pages share, found by their test hooks. The templates' macros name a shared
 * part after its page (`hd-mute` in the visitor panel, `agent-mute` in the console), so one
 * table of hooks serves both pages. */

import { renderQuality } from "./call_quality.js";
import { byTestIds, setText, show } from "./dom.js";
import { describeMediaProblem } from "./media.js";

/** `{key: hook}` -> `{key: "<prefix>-<hook>"}`. */
function prefixed(prefix, hooks) {
  return Object.fromEntries(Object.entries(hooks).map(([key, hook]) => [key, `${prefix}-${hook}`]));
}

/** A call's parts on both pages: the stage (_call.html's macros and around), the controls and the chat. */
const CALL_HOOKS = {
  stage: "stage", remote: "remote-video", local: "local-video", noVideo: "no-video",
  quality: "quality", timer: "call-timer", peerMedia: "peer-media", sound: "sound", micLevel: "mic-level",
  deviceNotice: "device-notice", deviceMessage: "device-message", retryMedia: "retry-media",
  devices: "devices", cameraSelect: "camera-select", micSelect: "mic-select",
  mute: "mute", camera: "camera", hangup: "hangup", notice: "notice",
  chatLog: "chat-log", chatNotice: "chat-notice", chatForm: "chat-form",
  chatInput: "chat-input", chatSend: "chat-send", fileInput: "file-input",
};

/** A staff page's frame (the console, the wallboard): loading, the sign-in (_login.html), who is signed in. */
const STAFF_HOOKS = {
  loading: "loading", loginView: "login-view", loginForm: "login-form", username: "username",
  password: "password", login: "login", loginError: "login-error", connection: "connection", user: "user",
};

/** The call's parts of the page whose hooks start with `prefix` ("hd", "agent"). */
export function callParts(prefix, doc = document) {
  return byTestIds(prefixed(prefix, CALL_HOOKS), doc);
}

/** The sign-in and top bar parts of a staff page ("agent", "wallboard"). */
export function staffParts(prefix, doc = document) {
  return byTestIds(prefixed(prefix, STAFF_HOOKS), doc);
}

/**
 * The stage as both pages draw it: one's own picture (`picture`) or "No camera" in its place,
 * the other party's camera, the blocked sound and the connection's quality, and why the camera
 * or microphone failed, with Try again outside a call (`inCall`).
 */
export function drawStage(ui, s, { inCall, picture }) {
  ui.stage.classList.toggle("is-call", inCall);
  ui.stage.classList.toggle("no-local-video", !picture);
  ui.stage.classList.toggle("peer-camera-off", !!(s.peerMedia && s.peerMedia.camera_off));
  show(ui.noVideo, !picture);
  show(ui.local, picture);
  show(ui.retryMedia, !inCall);
  ui.retryMedia.disabled = s.checking;
  const problem = describeMediaProblem(s.media);
  setText(ui.deviceMessage, problem);
  show(ui.deviceNotice, !!problem);
  show(ui.sound, s.soundBlocked);
  renderQuality(ui.quality, s);
}
