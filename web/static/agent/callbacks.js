/* Call-back requests of the agent's queues: paged in, added and closed live, closed by a click.
 *
 * "Done" can be undone for UNDO_MS: the request leaves the list at once, but `close_callback`
 * goes to the desk only when that time is up (or at once when the console signs out or the
 * page goes away). Undo within it sends nothing, so the request was never closed. */

import { MSG } from "../shared/protocol.js";
import { _, ngettext } from "../shared/i18n.js";
import { NOT_CONNECTED } from "./text.js";
import { notify, send } from "./steps.js";

export const UNDO_MS = 10000;

const idOf = (item) => String(item.id);
const byAge = (a, b) => (Number(a.created) || 0) - (Number(b.created) || 0);
const timerOf = (id) => "callback-done:" + id;

const EMAIL_RE = /^[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
const PHONE_RE = /^(\+?[\d\s().\/-]+?)(?:\s*(?:ext\.?|x)\s*(\d{1,6}))?$/i;

/**
 * A link for a visitor's contact: `mailto:` for an email address, `tel:` for a phone number
 * (its digits, with a leading + and an extension if given); null for anything else, which is
 * shown as text only. The contact is the visitor's own text: only these two forms, built
 * from the characters checked here, ever become a link (never `javascript:` or the like).
 */
export function contactHref(contact) {
  const text = String(contact || "").trim();
  if (text.length > 200) return null;
  if (EMAIL_RE.test(text)) return "mailto:" + text;
  const phone = PHONE_RE.exec(text);
  if (!phone) return null;
  const digits = phone[1].replace(/\D/g, "");
  if (digits.length < 6 || digits.length > 15) return null;
  const plus = phone[1].trim().startsWith("+") ? "+" : "";
  return "tel:" + plus + digits + (phone[2] ? ";ext=" + phone[2] : "");
}

/**
 * A page of open requests (`callbacks`): the first (offset 0, after a connect) replaces the
 * list. Returns the new list and the requests not seen before (to announce).
 */
export function addPage(list, msg) {
  const first = !msg.offset;
  const page = msg.items.filter((item) => item && typeof item === "object" && item.id !== undefined);
  const known = first ? [] : list.items;
  const ids = new Set(known.map(idOf));
  const items = known.concat(page.filter((item) => !ids.has(idOf(item)))).sort(byAge);
  const paged = (first ? 0 : list.paged) + page.length;
  const total = Math.max(Number(msg.total) || 0, items.length);
  const fresh = first && list.seen ? page.filter((item) => !list.seen.includes(idOf(item))) : [];
  return { list: { items, total, paged, seen: items.map(idOf) }, fresh };
}

/** One new request (`callback_added`); null when it is listed already. */
export function addOne(list, item) {
  if (!item || typeof item !== "object" || item.id === undefined) return null;
  if (list.items.some((c) => idOf(c) === idOf(item))) return null;
  const items = list.items.concat([item]).sort(byAge);
  return { ...list, items, total: list.total + 1, seen: items.map(idOf) };
}

/** A request closed or deleted (`callback_closed`): the pages behind it move up one. */
export function removeOne(list, id) {
  const index = list.items.findIndex((c) => idOf(c) === String(id));
  const items = index >= 0 ? list.items.filter((_item, i) => i !== index) : list.items;
  const paged = index >= 0 && index < list.paged ? list.paged - 1 : list.paged;
  const total = Math.max(items.length, list.total - 1);
  return { items, total, paged, seen: items.map(idOf) };
}

function closeNow(t, id) {
  if (send(t, { type: MSG.CLOSE_CALLBACK, id, outcome: "called back" })) t.s.closing = t.s.closing.concat([id]);
  else notify(t, NOT_CONNECTED); // it shows again: Done once the console is back
}

/** Sends every "Done" still undoable at once (the console signs out, or the page goes). */
export function flushUndo(t) {
  for (const { id } of t.s.undo) {
    t.do("clear", { name: timerOf(id) });
    closeNow(t, id);
  }
  t.s.undo = [];
}

function announce(t, fresh) {
  if (fresh.length === 1) {
    const name = fresh[0].name;
    notify(t, name ? _("New call-back request from {name}.", { name }) : _("New call-back request from a visitor."));
  } else if (fresh.length > 1) notify(t, ngettext("{n} new call-back request.", "{n} new call-back requests.", fresh.length));
}

export const callbacks = {
  [MSG.CALLBACKS](t, e) {
    if (!Array.isArray(e.items)) return;
    const { list, fresh } = addPage(t.s.callbacks, e);
    t.s.callbacks = list;
    t.s.moreBusy = false;
    announce(t, fresh);
  },

  [MSG.CALLBACK_ADDED](t, e) {
    const list = addOne(t.s.callbacks, e.item);
    if (!list) return;
    t.s.callbacks = list;
    t.s.moreBusy = false;
    announce(t, [e.item]);
  },

  [MSG.CALLBACK_CLOSED](t, e) {
    const id = String(e.id);
    t.s.callbacks = removeOne(t.s.callbacks, id);
    t.s.closing = t.s.closing.filter((c) => c !== id);
    if (t.s.undo.some((u) => u.id === id)) {
      t.do("clear", { name: timerOf(id) }); // closed elsewhere meanwhile: nothing to undo
      t.s.undo = t.s.undo.filter((u) => u.id !== id);
    }
    t.s.moreBusy = false;
  },

  /** "Done" on request `id`: called back. It leaves the list; the desk hears of it later. */
  click_callback_done(t, e) {
    const id = String(e.id);
    const s = t.s;
    if (s.closing.includes(id) || s.undo.some((u) => u.id === id)) return;
    const item = s.callbacks.items.find((c) => idOf(c) === id);
    if (!item) return;
    s.undo = s.undo.concat([{ id, name: String(item.name || "") }]); // "": a visitor who gave none
    t.do("timer", { name: timerOf(id), ms: UNDO_MS, event: { type: "callback_done_due", id } });
  },

  /** Undo the last "Done" (or that of request `id`): the request is back, nothing was sent. */
  click_callback_undo(t, e) {
    const s = t.s;
    const id = e.id !== undefined ? String(e.id) : s.undo.length ? s.undo[s.undo.length - 1].id : null;
    if (id === null || !s.undo.some((u) => u.id === id)) return;
    t.do("clear", { name: timerOf(id) });
    s.undo = s.undo.filter((u) => u.id !== id);
  },

  /** The time to undo a "Done" is up: now the desk closes the request. */
  callback_done_due(t, e) {
    const id = String(e.id);
    if (!t.s.undo.some((u) => u.id === id)) return;
    t.s.undo = t.s.undo.filter((u) => u.id !== id);
    closeNow(t, id);
  },

  /** The page is going away: every "Done" still undoable is sent now. */
  flush_callbacks(t) {
    flushUndo(t);
  },

  click_callbacks_more(t) {
    if (t.s.moreBusy) return;
    if (send(t, { type: MSG.CALLBACKS, offset: t.s.callbacks.paged })) t.s.moreBusy = true;
    else notify(t, NOT_CONNECTED);
  },
};
