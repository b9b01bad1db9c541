/* The moves of the camera and microphone pickers, alike on the visitor panel and the agent
 * console: the lists the browser offers, a choice, and the switch's outcome. */

import { _ } from "./i18n.js";

export const NO_DEVICES = Object.freeze({ cameras: [], mics: [], camera: "", mic: "" });

export const SWITCH_FAILED = {
  camera: _("That camera could not be started. The call goes on with the one before."),
  mic: _("That microphone could not be started. The call goes on with the one before."),
};

/**
 * The handlers for `device_list`, `choose_device` and `device_switched`, to spread into a
 * page's table of moves. `say(t, text)` shows a page's notice; `switched(t, e)` (optional)
 * is what else a page does once a device was switched.
 */
export function deviceMoves({ say, switched = () => {} }) {
  return {
    /** What the browser has (`cameras`, `mics`: [{id, label}]) and what is in use. */
    device_list(t, e) {
      const cameras = Array.isArray(e.cameras) ? e.cameras : [];
      const mics = Array.isArray(e.mics) ? e.mics : [];
      t.s.devices = { cameras, mics, camera: e.camera || "", mic: e.mic || "" };
    },

    /** The person picked a device (`kind`: camera | mic, `id`). */
    choose_device(t, e) {
      const devices = t.s.devices || NO_DEVICES;
      if (e.kind !== "camera" && e.kind !== "mic") return;
      const list = e.kind === "camera" ? devices.cameras : devices.mics;
      if (!e.id || e.id === devices[e.kind] || !list.some((d) => d.id === e.id)) return;
      if (t.s.switching) return; // one switch at a time; the picker shows the one in use
      t.s.switching = e.kind;
      t.s.devices = { ...devices, [e.kind]: e.id };
      t.do("switchDevice", { kind: e.kind, id: e.id });
    },

    /** The switch is done (`ok`), or the device could not be opened. */
    device_switched(t, e) {
      t.s.switching = null;
      if (!e.ok) say(t, SWITCH_FAILED[e.kind] || SWITCH_FAILED.camera);
      else switched(t, e);
    },
  };
}
