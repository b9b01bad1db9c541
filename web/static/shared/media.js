/* The camera and microphone: asking for them, saying what went wrong, playing the other side. */

import { DEVICE_GONE, preferredConstraints } from "./devices.js";
import { _ } from "./i18n.js";

const CAMERA_PROBLEM = {
  NotAllowedError: "camera_blocked",
  SecurityError: "camera_blocked",
  NotFoundError: "no_camera",
  OverconstrainedError: "no_camera",
  NotReadableError: "camera_busy",
  AbortError: "camera_busy",
};

/**
 * Camera + microphone, falling back to the microphone alone; `preferred` ({camera, mic}:
 * device ids remembered from a visit before) are asked for first.
 * Resolves (never rejects) to {stream, audioOnly, problem}; problem is null when both worked,
 * a camera_* / no_camera code when only audio worked, "no_media" (+ micError) when nothing did.
 */
export async function getLocalMedia(preferred = null) {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    return { stream: null, audioOnly: true, problem: "no_media", micError: "unsupported" };
  }
  const wanted = preferredConstraints(preferred);
  if (wanted) {
    try {
      const stream = await md.getUserMedia(wanted);
      return { stream, audioOnly: stream.getVideoTracks().length === 0, problem: null };
    } catch (err) {
      // Refused: asking again would only prompt again. Gone or busy: any device will do.
      if (!DEVICE_GONE.has(err && err.name)) return audioOnly(md, (err && err.name) || "Error");
    }
  }
  let cameraError;
  try {
    const stream = await md.getUserMedia({ video: true, audio: true });
    return { stream, audioOnly: stream.getVideoTracks().length === 0, problem: null };
  } catch (err) {
    cameraError = (err && err.name) || "Error";
  }
  return audioOnly(md, cameraError);
}

/** The microphone alone, after the camera failed with `cameraError`. */
async function audioOnly(md, cameraError) {
  try {
    const stream = await md.getUserMedia({ audio: true });
    return { stream, audioOnly: true, problem: CAMERA_PROBLEM[cameraError] || "camera_failed" };
  } catch (err) {
    return { stream: null, audioOnly: true, problem: "no_media", micError: (err && err.name) || "Error" };
  }
}

/** One sentence (or two) telling a person what happened to their devices and what to do. */
export function describeMediaProblem(result) {
  switch (result.problem) {
    case null:
    case undefined:
      return "";
    case "camera_blocked":
      return _("Your browser blocked the camera. You can still talk by voice. " +
        "To use video, allow the camera in the address bar and press Try again.");
    case "no_camera":
      return _("No camera found. You can still talk by voice. " +
        "If you plug in a camera, press Try again.");
    case "camera_busy":
      return _("Your camera is being used by another app. You can still talk by voice. " +
        "Close the other app and press Try again.");
    case "camera_failed":
      return _("Your camera could not be started. You can still talk by voice. Press Try again to retry.");
    default:
      if (result.micError === "NotAllowedError" || result.micError === "SecurityError") {
        return _("Your browser blocked the camera and microphone. You can still join: you will see and hear " +
          "the other person, but they will not hear you. To talk, allow them in the address bar and press Try again.");
      }
      if (result.micError === "unsupported") {
        return _("This browser cannot use a camera or microphone here. You can still see and hear the other person.");
      }
      return _("No camera or microphone could be started. You can still join: you will see and hear " +
        "the other person, but they will not hear you. Press Try again after checking your devices.");
  }
}

export function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}

/**
 * Play a remote stream with sound. If the browser's autoplay policy refuses sound,
 * play muted and call onSoundBlocked so the page can offer a "Turn on sound" button.
 */
export function playRemote(video, stream, onSoundBlocked) {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.muted = false;
  const p = video.play();
  if (p && p.catch) {
    p.catch((err) => {
      if (err && err.name === "NotAllowedError") {
        video.muted = true;
        video.play().catch(() => {});
        if (onSoundBlocked) onSoundBlocked();
      }
    });
  }
}

/** The "Turn on sound" button's work: play the remote video with sound, after a click. */
export function unmuteRemote(video) {
  video.muted = false;
  video.play().catch(() => {});
}
