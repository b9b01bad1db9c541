/* A call's media path as its peer connection sees it: what identifies a description (the
 * DTLS fingerprint: which connection; the ICE ufrag: which ICE session), the path's quality
 * and stalls, and a key frame at once when a new path is taken. */

import { watchQuality } from "./quality.js";

export const fingerprintOf = (sdp) => {
  const m = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return m ? m[1].trim() : null;
};

export const ufragOf = (sdp) => {
  const m = /^a=ice-ufrag:(.+)$/m.exec(sdp || "");
  return m ? m[1].trim() : null;
};

/** Pauses and resumes `pc`'s video encoding: the encoder starts again with a key frame. */
export async function freshKeyFrame(pc) {
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== "video") continue;
    for (const active of [false, true]) {
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) break;
      params.encodings[0].active = active;
      await sender.setParameters(params);
    }
  }
}

/**
 * Watches a connected `pc`: onQuality(q) once a second (see quality.js), and onNewPath() when
 * ICE selects another candidate pair (after an ICE restart). Returns {stop}.
 */
export function watchPath(pc, { onQuality, onNewPath }) {
  const watch = watchQuality(pc, onQuality);
  const sender = pc.getSenders().find((x) => x.transport);
  const ice = sender && sender.transport.iceTransport;
  const changed = () => onNewPath();
  if (ice && "onselectedcandidatepairchange" in ice) ice.addEventListener("selectedcandidatepairchange", changed);
  return {
    stop() {
      watch.stop();
      if (ice) ice.removeEventListener("selectedcandidatepairchange", changed);
    },
  };
}
