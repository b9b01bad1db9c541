/* The visitor's own tools in a call: the camera and microphone pickers, sharing the screen in
 * place of the camera, and asking the host page for a larger panel. */

import { deviceMoves } from "../shared/device_moves.js";
import { mediaMessage } from "../shared/media_moves.js";
import { send, startPrecall, stopPrecall } from "./steps.js";
import { _ } from "../shared/i18n.js";

export const SHARE_FAILED = _("Your screen could not be shared. The agent still sees your camera.");
export const SHARE_NEEDS_CAMERA =
  _("Screen sharing needs a camera in this call: the screen would be sent in its place.");

/** The phases of a call: the only ones with a screen to share or a panel to enlarge. */
export const CALL_PHASES = new Set(["call-connecting", "in-call"]);

/** The share is over (the button, the browser's own Stop, or the call's end). */
function shareOver(t, flags) {
  const s = t.s;
  const was = s.sharing;
  s.sharing = false;
  s.shareBusy = false;
  t.do("stopShare");
  if (was && s.callId && flags) send(t, mediaMessage(s, flags));
}

function setLarge(t, large) {
  if (t.s.large === large) return;
  t.s.large = large;
  t.do("host", { msg: { type: "size", large } });
}

export const share = {
  ...deviceMoves({
    say: (t, text) => (t.s.notice = text),
    // The pre-call test sends the tracks a switch replaced: test again with the new ones.
    switched(t) {
      if (t.s.precall && t.s.precall.status === "running") {
        stopPrecall(t);
        startPrecall(t);
      }
    },
  }),

  /** Share screen / Stop sharing (`muted`, `camera_off`: the Mute and Camera buttons now). */
  click_share(t, e) {
    const s = t.s;
    if (!s.callId || !CALL_PHASES.has(s.phase) || s.shareBusy) return;
    if (s.sharing) {
      shareOver(t, e);
      return;
    }
    if (!s.canShare) return;
    s.shareBusy = true;
    t.do("startShare");
  },

  /** The screen goes to the agent in place of the camera. */
  share_started(t, e) {
    const s = t.s;
    s.shareBusy = false;
    if (!s.callId) {
      t.do("stopShare"); // the call ended while the browser was asking
      return;
    }
    s.sharing = true;
    s.notice = "";
    send(t, mediaMessage(s, e));
  },

  /** The browser's own "Stop sharing" (the track ended). */
  share_ended(t, e) {
    if (t.s.sharing) shareOver(t, e);
  },

  /**
   * `reason`: the browser's error name; NotAllowedError is the visitor's own Cancel;
   * NoVideoSender: the call has neither a line for a screen nor a camera to stand in for.
   */
  share_failed(t, e) {
    t.s.shareBusy = false;
    if (e.reason === "NoVideoSender") t.s.notice = SHARE_NEEDS_CAMERA;
    else if (e.reason !== "NotAllowedError" && e.reason !== "AbortError") t.s.notice = SHARE_FAILED;
  },

  /** Enlarge / Make smaller: the host page resizes the panel's frame. */
  click_enlarge(t) {
    const s = t.s;
    if (!CALL_PHASES.has(s.phase) || s.hostNarrow !== false) return;
    setLarge(t, !s.large);
  },

  /** The loader tells whether it shows the panel full screen (a phone): nothing to enlarge. */
  host_layout(t, e) {
    t.s.hostNarrow = !!e.narrow;
    if (t.s.hostNarrow) t.s.large = false; // the host shows the panel full screen anyway
  },
};

/**
 * After every move: out of a call there is no screen shared and the panel has its usual size
 * (whatever ended the call: a hang-up, the agent, a transfer, a lost connection).
 */
export function afterCall(t) {
  const s = t.s;
  if (s.callId && CALL_PHASES.has(s.phase)) return;
  if (s.sharing || s.shareBusy) shareOver(t, null);
  setLarge(t, false);
}
