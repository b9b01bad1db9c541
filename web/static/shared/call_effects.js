/* What both pages' effects do for a call alike: the socket and the call's connection (wire.js),
 * the camera and microphone with their pickers and meter, the named timers and the chat's
 * input. A page spreads `actions` into its own table and adds what is its own. */

import { deviceMemory, deviceOf, listDevices, switchDevice } from "./devices.js";
import { namedTimers } from "./dom.js";
import { getLocalMedia, stopStream, unmuteRemote } from "./media.js";
import { micMeter } from "./meter.js";
import { deskWire } from "./wire.js";

/**
 * `path`: the desk's socket; `onPeer(pc)`: each new connection of the call; `meterMayStart()`:
 * whether Web Audio may start yet; `sharing()`: the screen this page sends (`{beside}`: on the
 * call's own line for it, else in the camera's place), or null.
 */
export function callEffects({ ui, controls, path, onPeer, meterMayStart, sharing = () => null }) {
  const timers = namedTimers();
  const memory = deviceMemory();
  const meter = micMeter(ui.micLevel, { canStart: meterMayStart });
  const call = {
    media: { stream: null, audioOnly: true },
    ready: Promise.resolve(), // the camera's check in flight: a call waits for it
    timers,
    meter,
  };
  const wire = deskWire({
    path,
    remote: ui.remote,
    stream: () => call.media.stream,
    ready: () => call.ready,
    controls,
    onPeer,
  });
  call.wire = wire;

  /** The pickers' lists, and the devices in use. */
  async function refreshDevices(dispatch) {
    const found = await listDevices();
    const stream = call.media.stream;
    const camera = stream ? deviceOf(stream.getVideoTracks()[0]) : "";
    const mic = stream ? deviceOf(stream.getAudioTracks()[0]) : "";
    dispatch({ type: "device_list", ...found, camera, mic });
  }
  let listening = false;

  /** The camera and microphone asked for again (the ones remembered first); the old ones stop. */
  call.reopen = async () => {
    meter.detach();
    stopStream(call.media.stream);
    call.media = await getLocalMedia(memory.get());
  };

  /** The pickers filled now, with their labels, and again whenever a device comes or goes. */
  call.listDevices = async (dispatch) => {
    const md = navigator.mediaDevices;
    if (!listening && md && md.addEventListener) {
      listening = true;
      md.addEventListener("devicechange", () => refreshDevices(dispatch));
    }
    await refreshDevices(dispatch);
  };

  /** The camera and microphone let go; `ui.local` shows nothing. */
  call.release = () => {
    meter.detach();
    stopStream(call.media.stream);
    call.media = { stream: null, audioOnly: true };
    ui.local.srcObject = null;
  };

  call.actions = {
    send: (fx) => wire.send(fx.msg),
    connect: (fx, dispatch) => wire.connect(dispatch),
    disconnect: () => wire.disconnect(),
    retry: (fx) => wire.retry(fx.soon),
    timer(fx, dispatch) {
      const jitter = fx.jitter ? 1 - fx.jitter + Math.random() * 2 * fx.jitter : 1;
      timers.set(fx.name, fx.ms * jitter, () => dispatch(fx.event), fx.repeat);
    },
    clear: (fx) => timers.clear(fx.name),
    releaseMedia: () => call.release(),
    syncControls: () => controls().sync(),
    async switchDevice(fx, dispatch) {
      const kind = fx.kind === "camera" ? "video" : "audio";
      let ok = false;
      if (call.media.stream) {
        try {
          const pc = wire.pc();
          // While the screen is sent in the camera's place it stays there; the new camera waits.
          const screen = sharing();
          const keepSending = !(screen && !screen.beside && kind === "video");
          await switchDevice({ stream: call.media.stream, kind, id: fx.id, pc, keepSending });
          memory.set(fx.kind, fx.id);
          ok = true;
        } catch (err) {
          console.warn("humandesk: device switch failed", err);
        }
      }
      if (ok && kind === "audio") meter.attach(call.media.stream);
      if (ok && kind === "video" && !sharing()) {
        ui.local.srcObject = null;
        ui.local.srcObject = call.media.stream;
      }
      controls().sync();
      dispatch({ type: "device_switched", kind: fx.kind, ok });
      refreshDevices(dispatch);
    },
    sendFile: (fx, dispatch) => wire.sendFile(fx, dispatch),
    revokeUrls: (fx) => fx.urls.forEach((url) => URL.revokeObjectURL(url)),
    clearChatInput() {
      ui.chatInput.value = "";
    },
    unmuteRemote: () => unmuteRemote(ui.remote),
  };
  return call;
}
