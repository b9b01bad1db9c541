/* The console's lists: the lines it serves ("Waiting now"), the call-back requests, and the
 * lines a call can be transferred to. Visitor text goes in as text, never as HTML. */

import { el, setText } from "../shared/dom.js";
import { formatDateTime, formatDuration } from "../shared/format.js";
import { _, formatNumber, ngettext } from "../shared/i18n.js";
import { contactHref } from "./callbacks.js";

/** "Waiting now": one row per line, in the order they came; rows are only ever added. */
export function renderQueueRows(list, names, queues) {
  for (const name of names) {
    let count = list.querySelector(`[data-queue="${CSS.escape(name)}"] .queue-count`);
    if (!count) {
      const li = el("li", "queue-row");
      li.dataset.queue = name;
      const label = el("span", "queue-name", name);
      label.id = "queue-label-" + list.children.length;
      count = el("span", "queue-count", "–");
      count.dataset.testid = "queue-waiting-" + name;
      count.setAttribute("aria-labelledby", label.id);
      li.append(label, count, el("span", "queue-sub", _("waiting")));
      list.append(li);
    }
    const info = queues[name];
    if (!info) continue;
    const waiting = Number(info.waiting) || 0;
    setText(count, String(waiting));
    count.dataset.waiting = String(waiting);
    const available = Number(info.agents_available) || 0;
    setText(count.nextElementSibling, ngettext("waiting · {n} agent available", "waiting · {n} agents available", available));
    count.parentElement.classList.toggle("has-waiting", waiting > 0);
  }
}

/** Draws the lines a call may go to (every line of the desk but the call's own) into `select`. */
export function transferRenderer(select) {
  let shown = null;
  return function render(others, choice) {
    const key = others.join("\n");
    if (key !== shown) {
      shown = key;
      select.replaceChildren(new Option(_("Choose a line…"), ""), ...others.map((q) => new Option(q, q)));
    }
    if (select.value !== choice) select.value = choice;
  };
}

/** One call-back request; `onDone(id)` when its Done button is pressed. */
function callbackItem(item, closing, onDone) {
  const id = String(item.id);
  const name = String(item.name || "");
  const li = el("li", "callback-item");
  li.dataset.testid = "agent-callback";
  li.dataset.callbackId = id;
  const head = el("div", "callback-item-head");
  const when = el("time", "callback-time", formatDateTime(item.created));
  when.dataset.testid = "agent-callback-time";
  const created = new Date(Number(item.created));
  if (Number.isFinite(created.getTime())) when.dateTime = created.toISOString();
  head.append(el("span", "callback-name", name || _("A visitor")), when);
  // A phone number or an email address is a link (tel:, mailto:); anything else is text.
  const contact = el("p", "callback-contact");
  const text = String(item.contact || "");
  const href = contactHref(text);
  if (href) {
    const link = el("a", "callback-contact-link", text);
    link.href = href;
    contact.append(link);
  } else contact.textContent = text;
  contact.dataset.testid = "agent-callback-contact";
  const facts = [item.queue ? _("{queue} line", { queue: item.queue }) : ""];
  if (Number(item.waited_ms) > 0) facts.push(_("waited {wait} first", { wait: formatDuration(item.waited_ms) }));
  li.append(head, contact);
  if (item.note) li.append(el("p", "callback-note", String(item.note)));
  const foot = el("div", "callback-item-foot");
  const done = el("button", "button small secondary", _("Done"));
  done.type = "button";
  done.dataset.testid = "agent-callback-done";
  done.setAttribute("aria-label", name ? _("Done: called {name} back", { name }) : _("Done: called a visitor back"));
  done.disabled = closing.includes(id);
  done.addEventListener("click", () => onDone(id));
  foot.append(el("span", "callback-meta", facts.filter(Boolean).join(" · ")), done);
  li.append(foot);
  return li;
}

/** The Undo toast's words for a request closed just now (`name`: "" when the visitor gave none). */
function undoText(name) {
  return name ? _("Called {name} back: request closed.", { name }) : _("Called a visitor back: request closed.");
}

function undoLabel(name) {
  return name ? _("Undo: keep the request from {name} open", { name }) : _("Undo: keep the request from a visitor open");
}

/**
 * Draws the requests (rebuilt when the list, what is being closed or what is Done but still
 * undoable changed), the count, and the Undo toast for the last "Done".
 */
export function callbacksRenderer(ui, onDone) {
  let shown = null;
  let shownClosing = null;
  let shownUndo = null;
  return function render(list, closing, moreBusy, undo) {
    const held = new Set(undo.map((u) => u.id));
    if (shown !== list.items || shownClosing !== closing || shownUndo !== undo) {
      shown = list.items;
      shownClosing = closing;
      shownUndo = undo;
      const items = list.items.filter((item) => !held.has(String(item.id)));
      ui.callbackList.replaceChildren(...items.map((item) => callbackItem(item, closing, onDone)));
    }
    ui.callbacks.dataset.loaded = String(list.seen !== null); // the desk's first page came
    const last = undo.length ? undo[undo.length - 1] : null;
    ui.callbackUndo.hidden = !last;
    ui.callbackUndo.dataset.callbackId = last ? last.id : "";
    setText(ui.callbackUndoText, last ? undoText(last.name) : "");
    ui.callbackUndoButton.setAttribute("aria-label", last ? undoLabel(last.name) : _("Undo"));
    const total = Math.max(0, list.total - undo.length);
    ui.callbacksEmpty.hidden = total > 0;
    ui.callbacksCount.hidden = total === 0;
    setText(ui.callbacksCount, String(total));
    ui.callbacksCount.dataset.count = String(total);
    const more = list.total - list.items.length; // not yet loaded (the held ones are)
    ui.callbacksMore.hidden = more <= 0;
    ui.callbacksMore.disabled = moreBusy;
    const next = Math.min(more, 50);
    setText(ui.callbacksMore, ngettext("Show {n} more of {total}", "Show {n} more of {total}", next, { total: formatNumber(more) }));
  };
}
