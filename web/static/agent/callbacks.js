/* Call-back requests of the agent's queues: paged in, added and closed live, closed by a click. */

import { MSG } from "../shared/protocol.js";
import { NOT_CONNECTED } from "./text.js";
import { notify, send } from "./steps.js";

const idOf = (item) => String(item.id);
const byAge = (a, b) => (Number(a.created) || 0) - (Number(b.created) || 0);

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
  const items = index >= 0 ? list.items.filter((_, i) => i !== index) : list.items;
  const paged = index >= 0 && index < list.paged ? list.paged - 1 : list.paged;
  const total = Math.max(items.length, list.total - 1);
  return { items, total, paged, seen: items.map(idOf) };
}

function announce(t, fresh) {
  if (fresh.length === 1) notify(t, `New call-back request from ${fresh[0].name || "a visitor"}.`);
  else if (fresh.length > 1) notify(t, `${fresh.length} new call-back requests.`);
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
    t.s.callbacks = removeOne(t.s.callbacks, e.id);
    t.s.closing = t.s.closing.filter((id) => id !== String(e.id));
    t.s.moreBusy = false;
  },

  /** "Done" on request `id`: called back. */
  click_callback_done(t, e) {
    const id = String(e.id);
    if (t.s.closing.includes(id)) return;
    if (send(t, { type: MSG.CLOSE_CALLBACK, id, outcome: "called back" })) t.s.closing = t.s.closing.concat([id]);
    else notify(t, NOT_CONNECTED);
  },

  click_callbacks_more(t) {
    if (t.s.moreBusy) return;
    if (send(t, { type: MSG.CALLBACKS, offset: t.s.callbacks.paged })) t.s.moreBusy = true;
    else notify(t, NOT_CONNECTED);
  },
};
