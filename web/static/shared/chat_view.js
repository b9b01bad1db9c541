/* A call's chat on screen: the transcript drawn into its list, entry by entry. Text goes in
 * with textContent and links are built as elements (only http and https, opening in a new
 * tab with rel="noopener noreferrer"); nothing is ever parsed as HTML. */

import { el, setText } from "./dom.js";
import { formatBytes, linkParts } from "./chat.js";
import { _, locale } from "./i18n.js";

const time = (at) => {
  if (!at) return "";
  const d = new Date(at);
  return d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
};

/** The text of a chat line, its links as <a> elements. */
export function textNodes(doc, text) {
  return linkParts(text).map((part) => {
    if (!part.href) return doc.createTextNode(part.text);
    const a = doc.createElement("a");
    a.href = part.href;
    a.textContent = part.text;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  });
}

const FILE_STATUS = {
  sending: _("Sending…"),
  sent: _("Sent"),
  delivered: _("Delivered"),
  receiving: _("Receiving…"),
  received: "",
  refused: "",
  failed: _("Not sent"),
};

function fileBody(entry) {
  const box = el("div", "chat-file");
  box.dataset.status = entry.status;
  if (entry.url && entry.mime.startsWith("image/")) {
    const img = el("img", "chat-preview");
    img.src = entry.url;
    img.alt = entry.name;
    box.append(img);
  }
  const name = entry.url ? el("a", "chat-file-name", entry.name) : el("span", "chat-file-name", entry.name);
  if (entry.url) {
    name.href = entry.url;
    name.download = entry.name;
  }
  box.append(name, el("span", "chat-file-size", formatBytes(entry.size)));
  const words = entry.reason || FILE_STATUS[entry.status] || "";
  if (words) box.append(el("span", entry.status === "refused" || entry.status === "failed" ? "chat-file-note error" : "chat-file-note", words));
  return box;
}

/**
 * `draw(chat, names)` for the list `log`: `names` maps "visitor" and "agent" to how the
 * sender is shown ("You", the agent's name...).
 */
export function chatRenderer(log) {
  const nodes = new Map(); // key -> {node, sig}
  return function draw(chat, names) {
    const doc = log.ownerDocument;
    const keep = new Set();
    let added = false;
    let prev = null;
    for (const entry of chat.entries) {
      keep.add(entry.key);
      const sig = JSON.stringify([entry.status, entry.url, entry.reason, names[entry.from]]);
      let known = nodes.get(entry.key);
      if (!known || known.sig !== sig) {
        const node = el("li", "chat-entry");
        node.dataset.from = entry.from;
        node.dataset.kind = entry.kind;
        if (entry.kind === "text") node.dataset.seq = String(entry.seq);
        const head = el("p", "chat-meta");
        head.append(el("span", "chat-sender", names[entry.from] || entry.from));
        if (entry.at) head.append(el("time", "chat-time", time(entry.at)));
        const body = entry.kind === "text" ? el("p", "chat-text") : fileBody(entry);
        if (entry.kind === "text") body.append(...textNodes(doc, entry.text));
        node.append(head, body);
        if (known) known.node.replaceWith(node);
        else added = true;
        known = { node, sig };
        nodes.set(entry.key, known);
      }
      const want = prev ? prev.nextSibling : log.firstChild;
      if (want !== known.node) log.insertBefore(known.node, want);
      prev = known.node;
    }
    for (const [key, known] of nodes) {
      if (!keep.has(key)) {
        known.node.remove();
        nodes.delete(key);
      }
    }
    if (added) log.scrollTop = log.scrollHeight;
  };
}

/** The notice under the log and the unread badge. */
export function drawChatExtras(ui, chat) {
  setText(ui.chatNotice, chat.notice);
  ui.chatNotice.hidden = !chat.notice;
  if (ui.chatUnread) {
    setText(ui.chatUnread, chat.unread ? String(chat.unread) : "");
    ui.chatUnread.hidden = chat.unread === 0;
    ui.chatUnread.dataset.count = String(chat.unread);
  }
}

/** The chat's form and file input: `submit_chat` with the line typed, `pick_file` per file picked. */
export function wireChatForm(ui, dispatch) {
  let filesPicked = 0;
  ui.chatForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    dispatch({ type: "submit_chat", text: ui.chatInput.value });
  });
  ui.fileInput.addEventListener("change", () => {
    for (const file of Array.from(ui.fileInput.files || [])) {
      filesPicked += 1;
      dispatch({ type: "pick_file", file, key: "out-" + filesPicked });
    }
    ui.fileInput.value = "";
  });
}
