/* A short two-tone chime, and a ring: the chime again and again until it is stopped. Browsers
 * only allow audio after a user gesture: call unlock() in one. Without it (autoplay blocked)
 * both stay silent; the pages show what they would have announced. */

const RING_EVERY_S = 2;
const RING_MAX_S = 600;

let ctx = null;
let ringing = null; // the gain node the ring plays through, while it rings

export function unlock() {
  // Creating a context before any user gesture only earns a console warning and silence.
  const activation = navigator.userActivation;
  if (!ctx && activation && !activation.hasBeenActive) return;
  try {
    if (!ctx) ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
  } catch (_) {
    ctx = null;
  }
}

/** Two tones at `t0` (the audio clock) into `out`. */
function tones(out, t0) {
  for (const [freq, at] of [[880, 0], [1320, 0.18]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + at);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
    osc.connect(gain).connect(out);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.18);
  }
}

export function chime() {
  try {
    unlock();
    if (!ctx) return;
    tones(ctx.destination, ctx.currentTime + 0.01);
  } catch (_) {
    /* no sound is better than a broken page */
  }
}

/**
 * Rings for `ms`: the chime every two seconds, all of it scheduled on the audio clock at once,
 * so it keeps time in a background tab whose timers the browser slows down. stopRing() (or the
 * next ring) silences it at once.
 */
export function ring(ms) {
  stopRing();
  try {
    unlock();
    if (!ctx) return;
    const out = ctx.createGain();
    out.connect(ctx.destination);
    ringing = out;
    const t0 = ctx.currentTime + 0.01;
    const seconds = Math.min(RING_MAX_S, Math.max(0, ms / 1000));
    for (let at = 0; at === 0 || at < seconds; at += RING_EVERY_S) tones(out, t0 + at);
  } catch (_) {
    /* no sound is better than a broken page */
  }
}

export function stopRing() {
  if (!ringing) return;
  try {
    ringing.gain.value = 0;
    ringing.disconnect();
  } catch (_) {
    /* already gone */
  }
  ringing = null;
}
