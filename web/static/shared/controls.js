/* The Mute and Camera buttons of a call. Both pages have the same pair. */

import { _ } from "./i18n.js";

/**
 * `onChange({muted, camera_off})` lets the page tell the other party; `sync()` re-reads the
 * stream (after Try again), `reset()` turns both back on. The pressed state of the two buttons
 * is this component's own: nothing else reads or writes it.
 */
export function mediaControls({ muteButton, cameraButton, getStream, onChange }) {
  const state = { muted: false, camera_off: false };
  const tracks = (kind) => {
    const stream = getStream();
    if (!stream) return [];
    return kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks();
  };
  const render = () => {
    const hasAudio = tracks("audio").length > 0;
    const hasVideo = tracks("video").length > 0;
    const muted = state.muted || !hasAudio;
    const cameraOff = state.camera_off || !hasVideo;
    muteButton.disabled = !hasAudio;
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.querySelector(".label").textContent = !hasAudio ? _("No mic") : muted ? _("Unmute") : _("Mute");
    cameraButton.disabled = !hasVideo;
    cameraButton.setAttribute("aria-pressed", String(cameraOff));
    // Without a camera there is nothing to turn on: say so instead of offering _("Camera on").
    cameraButton.querySelector(".label").textContent = !hasVideo
      ? _("No camera")
      : cameraOff
        ? _("Camera on")
        : _("Camera off");
  };
  const apply = () => {
    for (const t of tracks("audio")) t.enabled = !state.muted;
    for (const t of tracks("video")) t.enabled = !state.camera_off;
    render();
  };
  const current = () => ({
    muted: state.muted || tracks("audio").length === 0,
    camera_off: state.camera_off || tracks("video").length === 0,
  });
  muteButton.addEventListener("click", () => {
    state.muted = !state.muted;
    apply();
    onChange(current());
  });
  cameraButton.addEventListener("click", () => {
    state.camera_off = !state.camera_off;
    apply();
    onChange(current());
  });
  return {
    current,
    sync: apply,
    reset() {
      state.muted = false;
      state.camera_off = false;
      apply();
    },
  };
}
