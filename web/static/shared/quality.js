/* How good the call's connection is, from RTCPeerConnection.getStats(): round-trip time,
 * packet loss and the bitrate received, sampled once a second.
 *
 * Levels (the `data-level` of `hd-quality` / `agent-quality`):
 *   poor  nothing received for STALL_SAMPLES seconds (the path is broken: the call is
 *         reconnecting), or RTT >= 400 ms, or loss >= 8 %;
 *   fair  RTT >= 200 ms, or loss >= 2 %, or video arriving at under 150 kbit/s;
 *   good  otherwise.
 * RTT is the selected candidate pair's currentRoundTripTime; loss is packets lost over packets
 * expected (received + lost) since the previous sample, audio and video together. A camera
 * that is off sends no video, which is not counted against the connection. */

export const LIMITS = Object.freeze({
  poorRttMs: 400,
  poorLossPct: 8,
  fairRttMs: 200,
  fairLossPct: 2,
  fairVideoKbps: 150,
});
export const SAMPLE_MS = 1000;
export const STALL_SAMPLES = 2;

/** The counters of one getStats() report that the levels are computed from. */
export function countersOf(report) {
  const c = { at: 0, bytes: 0, videoBytes: 0, received: 0, lost: 0, rttMs: null, pairBytes: null };
  let pairId = null;
  const pairs = new Map();
  report.forEach((r) => {
    if (r.type === "inbound-rtp") {
      c.at = Math.max(c.at, r.timestamp || 0);
      c.bytes += r.bytesReceived || 0;
      if (r.kind === "video") c.videoBytes += r.bytesReceived || 0;
      c.received += r.packetsReceived || 0;
      c.lost += Math.max(0, r.packetsLost || 0);
    } else if (r.type === "transport" && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
    else if (r.type === "candidate-pair") pairs.set(r.id, r);
  });
  const pair = pairId ? pairs.get(pairId) : null;
  if (pair) {
    if (typeof pair.currentRoundTripTime === "number") c.rttMs = Math.round(pair.currentRoundTripTime * 1000);
    c.pairBytes = pair.bytesReceived || 0;
  }
  return c;
}

/**
 * The quality between two samples (`prev` may be null: no verdict yet), given how many samples
 * in a row received nothing before this one. Returns {level, rttMs, lossPct, kbps, stalled,
 * idle} (`idle`: the count of samples in a row with nothing received, this one included).
 */
export function assess(prev, now, idleBefore, elapsedMs) {
  if (!prev) return null;
  const got = now.bytes - prev.bytes;
  const idle = got > 0 ? 0 : idleBefore + 1;
  const seconds = Math.max(0.001, elapsedMs / 1000);
  const kbps = Math.round((Math.max(0, got) * 8) / seconds / 1000);
  const videoKbps = ((now.videoBytes - prev.videoBytes) * 8) / seconds / 1000;
  const received = now.received - prev.received;
  const lost = Math.max(0, now.lost - prev.lost);
  const lossPct = received + lost > 0 ? Math.round((1000 * lost) / (received + lost)) / 10 : 0;
  const rttMs = now.rttMs;
  const stalled = idle >= STALL_SAMPLES;
  let level = "good";
  if (stalled || (rttMs !== null && rttMs >= LIMITS.poorRttMs) || lossPct >= LIMITS.poorLossPct) level = "poor";
  else if (
    (rttMs !== null && rttMs >= LIMITS.fairRttMs) ||
    lossPct >= LIMITS.fairLossPct ||
    (videoKbps > 0 && videoKbps < LIMITS.fairVideoKbps)
  )
    level = "fair";
  return { level, rttMs, lossPct, kbps, stalled, idle };
}

/**
 * Samples `pc` every SAMPLE_MS and calls onQuality(q) with each verdict (see assess). Stops
 * with stop(), or by itself once the connection is closed.
 */
export function watchQuality(pc, onQuality) {
  let prev = null;
  let prevAt = 0;
  let idle = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (pc.connectionState === "closed") {
      clearInterval(timer);
      return;
    }
    if (busy) return;
    busy = true;
    try {
      const now = countersOf(await pc.getStats());
      const at = Date.now();
      const q = assess(prev, now, idle, at - prevAt);
      prev = now;
      prevAt = at;
      if (q) {
        idle = q.idle;
        onQuality(q);
      }
    } catch (_) {
      /* the connection is going away */
    } finally {
      busy = false;
    }
  }, SAMPLE_MS);
  return { stop: () => clearInterval(timer) };
}
