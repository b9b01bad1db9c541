/* Words and numbers as the pages show them. Pure functions: no DOM, no clock unless given. */

/** 1 -> "1st", 22 -> "22nd", 13 -> "13th". */
export function ordinal(n) {
  const suffixes = ["th", "st", "nd", "rd"];
  const v = n % 100;
  return n + (suffixes[(v - 20) % 10] || suffixes[v] || suffixes[0]);
}

/** (1, "minute") -> "1 minute", (3, "minute") -> "3 minutes". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The first `max` characters of `text`, counted as the desk counts them (code points), never
 * cutting an emoji in half: half of one is a lone surrogate, which the desk refuses.
 */
export function clip(text, max) {
  const value = String(text || "");
  if (value.length <= max) return value;
  return Array.from(value).slice(0, max).join("");
}

/** "under a minute", "about 3 minutes", ... for an ETA in seconds (null: unknown). */
export function formatEta(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
    return "we will be with you as soon as we can";
  }
  if (seconds < 60) return "under a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return "about " + plural(minutes, "minute");
  return "over an hour";
}

/** 65 -> "1:05", 3725 -> "1:02:05". */
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** "sales" -> "sales", "billing-de" -> "billing de": a queue's name as words. */
export function teamName(queue) {
  return String(queue || "").replace(/[-_.]+/g, " ").trim() || "support";
}

/** "today at 9:00", "tomorrow at 09:00", "on Monday at 9:00 AM", in the reader's locale. */
export function formatOpening(when, now) {
  const time = when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((midnight(when) - midnight(now)) / 86400000);
  if (days <= 0) return `today at ${time}`;
  if (days === 1) return `tomorrow at ${time}`;
  const options = days < 7 ? { weekday: "long" } : { weekday: "long", day: "numeric", month: "long" };
  return `on ${when.toLocaleDateString([], options)} at ${time}`;
}

/**
 * A moment with its date, as the reader's locale writes it: "1 Dec 2026, 14:05" (en-GB),
 * "01.12.2026, 14:05" (de-DE); "" for no moment (desk clock, Unix ms). `locales` and
 * `timeZone` default to the reader's.
 */
export function formatDateTime(ms, locales = undefined, timeZone = undefined) {
  const when = new Date(ms === null || ms === undefined || ms === "" ? NaN : Number(ms));
  if (!Number.isFinite(when.getTime())) return "";
  return new Intl.DateTimeFormat(locales, { dateStyle: "medium", timeStyle: "short", timeZone }).format(when);
}

/** 90000 -> "2 minutes", 7200000 -> "2 hours" (a wait before a call-back request). */
export function formatDuration(ms) {
  const minutes = Math.round(Number(ms) / 60000);
  if (!Number.isFinite(minutes)) return "";
  if (minutes < 1) return "under a minute";
  if (minutes < 90) return plural(minutes, "minute");
  return plural(Math.round(minutes / 60), "hour");
}

/**
 * Why a call ended, from a page's table: by `call_ended`'s reason, as one text or one per who
 * ended it (`by`); "The call has ended." for what the table does not know.
 */
export function reasonText(table, msg) {
  const entry = table[msg.reason];
  return typeof entry === "string" ? entry : (entry && entry[msg.by]) || "The call has ended.";
}

/** A pre-call test's numbers: "42 ms round trip · 0% loss · direct" (parts it has). */
export function precallNumbers(rttMs, lossPct, path) {
  const parts = [];
  if (typeof rttMs === "number") parts.push(`${Math.round(rttMs)} ms round trip`);
  if (typeof lossPct === "number") parts.push(`${lossPct}% loss`);
  if (path === "relay") parts.push("relayed");
  else if (path === "direct") parts.push("direct");
  return parts.join(" · ");
}
