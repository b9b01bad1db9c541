/* The moves of a call's own media that the visitor panel and the agent console make alike:
 * telling the other party about Mute and Camera, and the sound the browser held back. */

import { MSG } from "./protocol.js";

/**
 * The `media` message: Mute and Camera (`flags`: {muted, camera_off}), and whether a screen
 * is sent in place of the camera (only the visitor panel shares one).
 */
export function mediaMessage(s, flags) {
  return { type: MSG.MEDIA, muted: !!flags.muted, camera_off: !!flags.camera_off, screen: !!s.sharing };
}

/**
 * The handlers for `call_media`, `media_toggled`, `sound_blocked` and `click_sound`, to spread
 * into a page's table of moves. `send(t, msg)` is the page's own (false while not connected).
 */
export function mediaMoves(send) {
  return {
    /** The camera is ready for the call `callId`: tell the other party whether it is muted or off. */
    call_media(t, e) {
      if (t.s.callId !== e.callId || t.s.link === "none") return;
      t.do("syncControls");
      send(t, mediaMessage(t.s, e));
    },

    /** Mute or Camera was pressed. */
    media_toggled(t, e) {
      t.s.localVideo = !e.camera_off;
      if (t.s.callId) send(t, mediaMessage(t.s, e));
    },

    sound_blocked(t) {
      t.s.soundBlocked = true;
    },

    click_sound(t) {
      t.s.soundBlocked = false;
      t.do("unmuteRemote");
    },
  };
}
