/* The microphone level: a meter that follows the loudness of the visitor's own microphone
 * (Web Audio), so they can see it works before they join and while they talk. */

const FLOOR_DB = -60; // quieter than this shows as silence

/** 0..1 from a block of samples: the peak in dBFS, -60..0 dB mapped onto 0..1. */
export function levelOf(samples) {
  let peak = 0;
  for (const x of samples) {
    const a = Math.abs(x);
    if (a > peak) peak = a;
  }
  if (!(peak > 0)) return 0;
  const db = 20 * Math.log10(Math.min(1, peak));
  return Math.max(0, Math.min(1, (db - FLOOR_DB) / -FLOOR_DB));
}

/** The level shown after a new reading: it jumps up at once and falls back gently. */
export function nextLevel(shown, reading) {
  return Math.max(reading, shown * 0.75);
}

/**
 * A meter drawn into `element` (`data-level` 0-1, the CSS variable `--level`, `aria-valuenow`).
 * `attach(stream)` follows the stream's first audio track (muted: 0), `detach()` stops.
 * Browsers let Web Audio run only after a user gesture (or in a frame the page allows to
 * play sound): `canStart()` says whether it may start now, else `activate()` starts it at the
 * first gesture, so no page ever logs a refused AudioContext.
 */
export function micMeter(element, { canStart = () => true, everyMs = 100 } = {}) {
  let ctx = null;
  let stream = null;
  let source = null;
  let timer = null;
  let level = 0;

  function show(value) {
    const text = value.toFixed(2);
    if (element.dataset.level !== text) {
      element.dataset.level = text;
      element.style.setProperty("--level", text);
      element.setAttribute("aria-valuenow", text);
    }
  }

  function start() {
    const track = stream && stream.getAudioTracks()[0];
    if (!track || timer) return;
    try {
      if (!ctx) ctx = new (window.AudioContext || window.webkitAudioContext)();
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      source = ctx.createMediaStreamSource(new MediaStream([track]));
    } catch (_) {
      return; // no Web Audio: no meter, nothing else lost
    }
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    element.hidden = false;
    timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const live = track.enabled && track.readyState === "live";
      level = nextLevel(level, live ? levelOf(samples) : 0);
      show(level);
    }, everyMs);
  }

  function detach() {
    clearInterval(timer);
    timer = null;
    if (source) source.disconnect();
    source = null;
    stream = null;
    level = 0;
    show(0);
    element.hidden = true;
  }

  return {
    attach(next) {
      detach();
      stream = next;
      if (canStart()) start();
    },
    detach,
    activate() {
      if (stream && !timer) start();
    },
  };
}
