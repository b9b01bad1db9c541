/* Words and numbers as the pages show them, in the page's language (i18n.js). Pure functions:
 * no DOM, no clock unless given. */

import { _, locale, ngettext } from "./i18n.js";

/** A place in line as the page's language writes it: 1st, 22nd (en); 3.º (es); 1er, 3e (fr);
 * 3. (de, pl, is). */
export function ordinal(n) {
  const lang = locale();
  if (lang === "es") return `${n}.º`;
  if (lang === "fr") return n === 1 ? "1er" : `${n}e`;
  if (lang !== "en") return `${n}.`;
  const suffixes = ["th", "st", "nd", "rd"];
  const v = n % 100;
  return n + (suffixes[(v - 20) % 10] || suffixes[v] || suffixes[0]);
}

/** "5 seconds", "1 minute", "3 hours": a count of `unit` (second, minute, hour). */
export function countOf(n, unit) {
  if (unit === "second") return ngettext("{n} second", "{n} seconds", n);
  if (unit === "hour") return ngettext("{n} hour", "{n} hours", n);
  return ngettext("{n} minute", "{n} minutes", n);
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
    return _("we will be with you as soon as we can");
  }
  if (seconds < 60) return _("under a minute");
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return ngettext("about {n} minute", "about {n} minutes", minutes);
  return _("over an hour");
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

/** "today at 9:00", "tomorrow at 09:00", "on Monday at 9:00 AM", in the page's language. */
export function formatOpening(when, now) {
  const time = when.toLocaleTimeString(locale(), { hour: "numeric", minute: "2-digit" });
  const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((midnight(when) - midnight(now)) / 86400000);
  if (days <= 0) return _("today at {time}", { time });
  if (days === 1) return _("tomorrow at {time}", { time });
  const options = days < 7 ? { weekday: "long" } : { weekday: "long", day: "numeric", month: "long" };
  return _("on {day} at {time}", { day: when.toLocaleDateString(locale(), options), time });
}

/**
 * A moment with its date, as the reader's locale writes it: "1 Dec 2026, 14:05" (en-GB),
 * "01.12.2026, 14:05" (de-DE); "" for no moment (desk clock, Unix ms). `locales` defaults to
 * the page's language, `timeZone` to the reader's.
 */
export function formatDateTime(ms, locales = locale(), timeZone = undefined) {
  const when = new Date(ms === null || ms === undefined || ms === "" ? NaN : Number(ms));
  if (!Number.isFinite(when.getTime())) return "";
  return new Intl.DateTimeFormat(locales, { dateStyle: "medium", timeStyle: "short", timeZone }).format(when);
}

/** 90000 -> "2 minutes", 7200000 -> "2 hours" (a wait before a call-back request). */
export function formatDuration(ms) {
  const minutes = Math.round(Number(ms) / 60000);
  if (!Number.isFinite(minutes)) return "";
  if (minutes < 1) return _("under a minute");
  if (minutes < 90) return countOf(minutes, "minute");
  return countOf(Math.round(minutes / 60), "hour");
}

/**
 * Why a call ended, from a page's table: by `call_ended`'s reason, as one text or one per who
 * ended it (`by`); "The call has ended." for what the table does not know.
 */
export function reasonText(table, msg) {
  const entry = table[msg.reason];
  return typeof entry === "string" ? entry : (entry && entry[msg.by]) || _("The call has ended.");
}

/** A pre-call test's numbers: "42 ms round trip · 0% loss · direct" (parts it has). */
export function precallNumbers(rttMs, lossPct, path) {
  const parts = [];
  if (typeof rttMs === "number") parts.push(_("{ms} ms round trip", { ms: Math.round(rttMs) }));
  if (typeof lossPct === "number") parts.push(_("{pct}% loss", { pct: lossPct }));
  if (path === "relay") parts.push(_("relayed"));
  else if (path === "direct") parts.push(_("direct"));
  return parts.join(" · ");
}

/**
 * Why the desk put an agent on Break or Offline, in the page's language: `reason_code` (and
 * `missed` for missed offers) from a status message or a wallboard row; a code this page does
 * not know shows the desk's own words (`reason`, English); "" when the agent chose it.
 */
export function deskReason(msg) {
  const code = msg && msg.reason_code;
  if (code === "missed_offers" && typeof msg.missed === "number") {
    return ngettext("Missed {n} offer in a row", "Missed {n} offers in a row", msg.missed);
  }
  const known = {
    connection_lost: _("Connection lost"),
    signed_out: _("Signed out"),
    account_removed: _("Account removed"),
    account_disabled: _("Account disabled"),
    password_changed: _("Password changed"),
    account_changed: _("Account changed"),
  };
  if (code && known[code]) return known[code];
  return msg && msg.reason ? String(msg.reason) : "";
}
