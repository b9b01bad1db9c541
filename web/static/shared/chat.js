/* A call's chat and the files sent in it, as pure code: the transcript's entries (each chat
 * line once, in the desk's order), links found in text, and the rules for files. The DOM
 * side is chat_view.js; the data channel, files.js. */

import { clip } from "./format.js";
import { _, locale, ngettext } from "./i18n.js";

/** The longest line of chat the desk takes (code points, as it counts them). */
export const MAX_CHAT_CHARS = 1000;

/** Files: at most this many bytes, of these types (docs/protocol.md, Chat). */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;
export const FILE_TYPES = Object.freeze({
  "image/jpeg": _("JPEG image"),
  "image/png": _("PNG image"),
  "image/gif": _("GIF image"),
  "image/webp": _("WebP image"),
  "application/pdf": "PDF",
  "text/plain": _("text file"),
});

/** Why a file cannot be sent or taken (null: it can). `file`: {size, mime}. */
export function fileRefusal(file) {
  const size = Number(file && file.size);
  if (!Number.isFinite(size) || size <= 0) return "empty";
  if (size > MAX_FILE_BYTES) return "too_big";
  if (!Object.prototype.hasOwnProperty.call(FILE_TYPES, String(file.mime || ""))) return "type";
  return null;
}

/** What a refusal means, in words. */
export const FILE_REFUSAL_TEXT = Object.freeze({
  empty: _("That file is empty."),
  too_big: _("That file is too big: files up to {mb} MB can be sent.", { mb: MAX_FILE_BYTES / (1024 * 1024) }),
  type: _("That type of file cannot be sent: photos (JPEG, PNG, GIF, WebP), PDF and text files can."),
  peer: _("The other side cannot receive files right now (the call is not connected)."),
  failed: _("The file could not be sent: the connection dropped."),
  refused: _("The other side refused the file."),
});

/** An empty transcript for the call `callId`. */
export function freshChat(callId = null) {
  return { callId, entries: [], unread: 0, notice: "" };
}

/**
 * The transcript with the desk's chat line `line` ({seq, from, text, at}) in it, once, in the
 * order of `seq` (files stay where they arrived). The same transcript when it is there already.
 */
export function addLine(chat, line) {
  const seq = Number(line.seq);
  if (!Number.isInteger(seq) || chat.entries.some((e) => e.kind === "text" && e.seq === seq)) return chat;
  const entry = {
    kind: "text",
    key: "m" + seq,
    seq,
    from: line.from === "agent" ? "agent" : "visitor",
    text: String(line.text || ""),
    at: Number(line.at) || 0,
  };
  const entries = chat.entries.slice();
  const later = entries.findIndex((e) => e.kind === "text" && e.seq > seq);
  if (later < 0) entries.push(entry);
  else entries.splice(later, 0, entry);
  return { ...chat, entries };
}

/** The transcript with the file entry `key` added or changed by `fields`. */
export function putFile(chat, key, fields) {
  const at = chat.entries.findIndex((e) => e.kind === "file" && e.key === key);
  const entries = chat.entries.slice();
  if (at < 0) entries.push({ kind: "file", key, status: "", url: "", reason: "", ...fields });
  else entries[at] = { ...entries[at], ...fields };
  return { ...chat, entries };
}

/** The object URLs a transcript holds (to revoke once it is let go). */
export function fileUrls(chat) {
  return chat.entries.filter((e) => e.kind === "file" && e.url).map((e) => e.url);
}

/** The line to send for what was typed, or "" (nothing worth sending). */
export function chatText(typed) {
  return clip(String(typed || "").trim(), MAX_CHAT_CHARS);
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/**
 * `text` cut into parts: `{text}` for plain text and `{text, href}` for a link. Only http and
 * https addresses become links (a `javascript:` or `data:` address stays text); a full stop
 * or bracket right after an address is not part of it.
 */
export function linkParts(text) {
  const value = String(text || "");
  const parts = [];
  let last = 0;
  for (const match of value.matchAll(URL_RE)) {
    let candidate = match[0];
    const trail = TRAILING.exec(candidate);
    if (trail) candidate = candidate.slice(0, -trail[0].length);
    const href = safeHref(candidate);
    if (!href) continue;
    if (match.index > last) parts.push({ text: value.slice(last, match.index) });
    parts.push({ text: candidate, href });
    last = match.index + candidate.length;
  }
  if (last < value.length) parts.push({ text: value.slice(last) });
  return parts;
}

/** `candidate` as an address a link may point to (http or https only), or null. */
export function safeHref(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch (_) {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.hostname) return null;
  return url.href;
}

/** "1.2 MB", "340 KB", "12 bytes". */
export function formatBytes(n) {
  const number = (value, digits) =>
    new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
  if (n >= 1024 * 1024) return _("{size} MB", { size: number(n / (1024 * 1024), 1) });
  if (n >= 1024) return _("{size} KB", { size: number(Math.round(n / 1024), 0) });
  return ngettext("{n} byte", "{n} bytes", n);
}
