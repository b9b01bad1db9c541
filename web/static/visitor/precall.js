/* The pre-call test: the visitor's camera and microphone go to an echo peer of the desk and
 * come back, over the path a call would take (the desk hands out a call's ICE servers and
 * policy). What it measures comes from the browser's own `getStats()`; `summarize` and
 * `verdict` are pure (the unit tests hold them to the thresholds), `runPrecall` does the I/O.
 *
 * Thresholds (docs/protocol.md, "The pre-call test"): good when connected, the picture (or,
 * audio only, the sound) came back, the round trip is at most 300 ms and at most 3 % of the
 * packets were lost; choppy when connected but any of those is missed; cannot connect when no
 * connection was made within 10 s. 300 ms round trip is where conversation starts to
 * stumble (ITU-T G.114 puts one-way delay under 150 ms for good interactive speech); above a
 * few per cent loss video freezes and speech breaks up. */

export const TEST_MS = 4000; // media sent once connected: RTCP reports arrive every second
const SAMPLE_MS = 1000; // statistics read this often during the test
export const CONNECT_MS = 10000; // ICE and DTLS, TURN included
export const GATHER_MS = 5000; // a complete offer: every candidate, or what came in 5 s
export const MAX_RTT_MS = 300;
export const MAX_LOSS_PCT = 3;

/**
 * The numbers from one `getStats()` report (as an array of its entries): `rttMs` (the selected
 * candidate pair's current round trip, else RTCP's), `lossPct` (packets the desk's peer
 * reported lost against those sent) and `path` (`relay` when the local candidate is a TURN
 * relay, else `direct`); each null when the report does not say.
 */
export function summarize(reports) {
  const byId = new Map(reports.map((r) => [r.id, r]));
  const transport = reports.find((r) => r.type === "transport" && r.selectedCandidatePairId);
  let pair = transport ? byId.get(transport.selectedCandidatePairId) : null;
  // Firefox has no transport entry: its pair says `selected`; else the nominated one.
  if (!pair) pair = reports.find((r) => r.type === "candidate-pair" && r.selected === true);
  if (!pair) pair = reports.find((r) => r.type === "candidate-pair" && r.nominated && r.state === "succeeded");
  let rtt = pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime : null;
  let lost = 0;
  let sent = 0;
  for (const r of reports) {
    if (r.type === "remote-inbound-rtp") {
      lost += Math.max(0, Number(r.packetsLost) || 0);
      if (rtt === null && typeof r.roundTripTime === "number") rtt = r.roundTripTime;
    } else if (r.type === "outbound-rtp") {
      sent += Number(r.packetsSent) || 0;
    }
  }
  const local = pair ? byId.get(pair.localCandidateId) : null;
  return {
    rttMs: rtt === null ? null : Math.min(60000, Math.round(rtt * 1000)),
    lossPct: sent ? Math.min(100, Math.round((1000 * lost) / sent) / 10) : null,
    path: local ? (local.candidateType === "relay" ? "relay" : "direct") : null,
  };
}

/**
 * The test's numbers from its samples (one `summarize` a second): the lowest round trip (a
 * busy test server delays its answers, which is not the visitor's network), and the loss and
 * path of the last sample (loss counts from the start).
 */
export function combine(samples) {
  const rtts = samples.map((s) => s.rttMs).filter((r) => typeof r === "number");
  const last = samples.length ? samples[samples.length - 1] : { lossPct: null, path: null };
  return { rttMs: rtts.length ? Math.min(...rtts) : null, lossPct: last.lossPct, path: last.path };
}

/** `ok`, `poor` or `failed`, from what was measured. */
export function verdict({ connected, echoed, rttMs, lossPct }) {
  if (!connected) return "failed";
  if (!echoed) return "poor";
  if (rttMs !== null && rttMs > MAX_RTT_MS) return "poor";
  if (lossPct !== null && lossPct > MAX_LOSS_PCT) return "poor";
  return "ok";
}

/** The result as a `join` carries it (docs/protocol.md): or null when there is none. */
export function joinResult(precall) {
  if (!precall || !["ok", "poor", "failed", "busy"].includes(precall.status)) return null;
  return { status: precall.status, rtt_ms: precall.rttMs, loss_pct: precall.lossPct, path: precall.path };
}

const EMPTY = { rttMs: null, lossPct: null, path: null };

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

async function post(path, body, signal) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: body ? JSON.stringify(body) : "{}",
    cache: "no-store",
    signal,
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  return { ok: res.ok, status: res.status, data: data || {} };
}

function gathered(pc, signal) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    signal.addEventListener("abort", resolve);
    setTimeout(resolve, GATHER_MS);
  });
}

function connectedWithin(pc, ms, signal) {
  return new Promise((resolve) => {
    const check = () => {
      if (pc.connectionState === "connected") resolve(true);
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") resolve(false);
    };
    pc.addEventListener("connectionstatechange", check);
    signal.addEventListener("abort", () => resolve(false));
    setTimeout(() => resolve(pc.connectionState === "connected"), ms);
    check();
  });
}

/** Frames (video) or packets (audio only) that came back from the echo peer. */
function echoedCount(reports) {
  let count = 0;
  for (const r of reports) {
    if (r.type !== "inbound-rtp") continue;
    count += r.kind === "video" ? Number(r.framesDecoded) || 0 : Number(r.packetsReceived) || 0;
  }
  return count;
}

/**
 * Runs one test with `stream` (the camera's, or the microphone's alone); shows the picture
 * that comes back in `video`. Resolves (never rejects) to `{status, rttMs, lossPct, path}`;
 * `signal` (an AbortSignal) stops it early, resolving to null.
 */
export async function runPrecall({ stream, video, signal }) {
  let pc = null;
  try {
    const ice = await post("/api/precall/ice", null, signal);
    if (!ice.ok) return { status: "busy", ...EMPTY };
    pc = new RTCPeerConnection({
      iceServers: Array.isArray(ice.data.ice_servers) ? ice.data.ice_servers : [],
      iceTransportPolicy: ice.data.ice_transport_policy === "relay" ? "relay" : "all",
    });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    const back = new MediaStream();
    pc.addEventListener("track", (ev) => {
      back.addTrack(ev.track);
      if (video) video.srcObject = back;
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, signal);
    if (signal.aborted) return null;
    const answer = await post("/api/precall", { type: "offer", sdp: pc.localDescription.sdp }, signal);
    if (!answer.ok) {
      // Refused (busy, rate-limited, no worker) or unreadable: the test could not run.
      return { status: "busy", ...EMPTY };
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer.data.sdp });
    const connected = await connectedWithin(pc, CONNECT_MS, signal);
    if (signal.aborted) return null;
    if (!connected) return { status: "failed", ...EMPTY, ...summarize(Array.from((await pc.getStats()).values())) };
    const samples = [];
    let reports = [];
    for (let waited = 0; waited < TEST_MS; waited += SAMPLE_MS) {
      await sleep(SAMPLE_MS, signal);
      if (signal.aborted) return null;
      reports = Array.from((await pc.getStats()).values());
      samples.push(summarize(reports));
    }
    const measured = combine(samples);
    const echoed = echoedCount(reports) > 0;
    return { status: verdict({ connected, echoed, ...measured }), ...measured };
  } catch (err) {
    if (signal.aborted) return null;
    return { status: "busy", ...EMPTY }; // the desk could not be asked: the test did not run
  } finally {
    if (pc) pc.close();
    if (video) video.srcObject = null;
  }
}
