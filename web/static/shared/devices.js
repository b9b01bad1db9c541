/* Cameras and microphones: the lists a person picks from, the choice remembered for the next
 * visit, and a switch in the middle of a call that swaps the track the connection sends
 * (`RTCRtpSender.replaceTrack`), so the call goes on without a new offer. */

import { show } from "./dom.js";
import { _ } from "./i18n.js";

const STORE_KEY = "humandesk-devices";

/**
 * `[{id, label}]` for one kind ("videoinput" | "audioinput") from `enumerateDevices()`'s
 * answer. Before the browser granted the camera it hides the labels (and often the ids): a
 * device then gets a plain numbered name, and entries without an id are left out (nothing
 * could be switched to them).
 */
function unnamed(kind, n) {
  return kind === "videoinput" ? _("Camera {n}", { n }) : _("Microphone {n}", { n });
}

export function devicesOf(list, kind) {
  const out = [];
  for (const d of list || []) {
    if (!d || d.kind !== kind || !d.deviceId) continue;
    if (out.some((o) => o.id === d.deviceId)) continue;
    out.push({ id: d.deviceId, label: String(d.label || "").trim() || unnamed(kind, out.length + 1) });
  }
  return out;
}

/** The id to show as chosen: the one in use, else the one remembered, else the first (or ""). */
export function chosenId(devices, inUse, remembered) {
  for (const id of [inUse, remembered]) if (id && devices.some((d) => d.id === id)) return id;
  return devices.length ? devices[0].id : "";
}

/**
 * `getUserMedia` constraints for the remembered devices (`exact`: browsers take `ideal` only
 * as a hint, and their prompt may pick another), or null when none is remembered. A device
 * unplugged since then fails the request with OverconstrainedError; the caller then asks
 * for any camera and microphone (see `getLocalMedia`).
 */
export function preferredConstraints(remembered) {
  const r = remembered || {};
  if (!r.camera && !r.mic) return null;
  return {
    video: r.camera ? { deviceId: { exact: r.camera } } : true,
    audio: r.mic ? { deviceId: { exact: r.mic } } : true,
  };
}

/** Errors after which asking again for any device may work: the remembered one is gone or busy. */
export const DEVICE_GONE = new Set(["OverconstrainedError", "NotFoundError", "NotReadableError", "AbortError"]);

/**
 * The choice kept for the next visit (`{camera, mic}`, device ids) in localStorage. The
 * panel's frame may be denied storage (a third-party frame, a private window): then nothing
 * is kept and nothing fails.
 */
export function deviceMemory(key = STORE_KEY) {
  return {
    get() {
      try {
        const value = JSON.parse(window.localStorage.getItem(key) || "{}");
        return {
          camera: typeof value.camera === "string" ? value.camera : "",
          mic: typeof value.mic === "string" ? value.mic : "",
        };
      } catch (_) {
        return { camera: "", mic: "" };
      }
    },
    set(kind, id) {
      try {
        const value = { ...this.get(), [kind]: id };
        window.localStorage.setItem(key, JSON.stringify(value));
      } catch (_) {
        /* storage denied: remembered for this visit only */
      }
    },
  };
}

/** The device id a track comes from ("" when the browser does not say). */
export function deviceOf(track) {
  if (!track || typeof track.getSettings !== "function") return "";
  return track.getSettings().deviceId || "";
}

/** What the browser has now: `{cameras, mics}` (empty lists when it cannot tell). */
export async function listDevices() {
  const md = navigator.mediaDevices;
  if (!md || !md.enumerateDevices) return { cameras: [], mics: [] };
  try {
    const list = await md.enumerateDevices();
    return { cameras: devicesOf(list, "videoinput"), mics: devicesOf(list, "audioinput") };
  } catch (_) {
    return { cameras: [], mics: [] };
  }
}

/** The <option>s of a picker, redrawn only when the list changed; `id` is selected. */
export function fillPicker(select, devices, id) {
  const key = JSON.stringify(devices);
  if (select.dataset.devices !== key) {
    select.dataset.devices = key;
    select.replaceChildren(
      ...devices.map((d) => {
        const option = document.createElement("option");
        option.value = d.id;
        option.textContent = d.label;
        return option;
      })
    );
  }
  if (select.value !== id) select.value = id;
  select.disabled = devices.length < 2;
}

/** The pickers (`ui.devices`, `ui.cameraSelect`, `ui.micSelect`) from the state; both off while a switch runs. */
export function renderPickers(ui, s) {
  const d = s.devices;
  show(ui.devices, d.cameras.length + d.mics.length > 0);
  fillPicker(ui.cameraSelect, d.cameras, d.camera);
  fillPicker(ui.micSelect, d.mics, d.mic);
  if (s.switching) ui.cameraSelect.disabled = ui.micSelect.disabled = true;
}

/** A pick in either picker: `choose_device` with its kind ("camera" | "mic") and the device id. */
export function wirePickers(ui, dispatch) {
  ui.cameraSelect.addEventListener("change", () => dispatch({ type: "choose_device", kind: "camera", id: ui.cameraSelect.value }));
  ui.micSelect.addEventListener("change", () => dispatch({ type: "choose_device", kind: "mic", id: ui.micSelect.value }));
}

/**
 * Switches `stream`'s camera (`kind` "video") or microphone ("audio") to the device `id`: the
 * new track takes the old one's place in the stream (so a connection built later sends it, and
 * Mute and Camera off keep working), `pc`'s sender that sent the old track sends the new one
 * with `replaceTrack` (no renegotiation), and the old track stops. `keepSending`: false while
 * the sender carries something else (a shared screen), which it then keeps carrying.
 * Resolves to the new track; rejects (the old track still in place) when the device cannot be
 * opened.
 */
export async function switchDevice({ stream, kind, id, pc, keepSending = true }) {
  const fresh = await navigator.mediaDevices.getUserMedia({ [kind]: { deviceId: { exact: id } } });
  const track = kind === "video" ? fresh.getVideoTracks()[0] : fresh.getAudioTracks()[0];
  const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
  if (old) track.enabled = old.enabled; // muted stays muted, a camera turned off stays off
  if (pc && keepSending) {
    const sender = pc.getSenders().find((s) => s.track && (s.track === old || s.track.kind === track.kind));
    if (sender) await sender.replaceTrack(track);
  }
  if (old) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(track);
  return track;
}

/** The video sender of `pc` (the one that sends the camera, or a screen in its place), or null. */
export function videoSender(pc) {
  if (!pc) return null;
  for (const t of pc.getTransceivers()) {
    if (t.stopped || !t.sender) continue;
    const kind = (t.sender.track && t.sender.track.kind) || (t.receiver && t.receiver.track && t.receiver.track.kind);
    if (kind === "video" && t.sender.track) return t.sender;
  }
  return null;
}
