/* A short two-tone chime. Browsers only allow audio after a user gesture: call unlock() in one. */

let ctx = null;

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

export function chime() {
  try {
    unlock();
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.01;
    for (const [freq, at] of [[880, 0], [1320, 0.18]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + at);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + 0.18);
    }
  } catch (_) {
    /* no sound is better than a broken page */
  }
}
