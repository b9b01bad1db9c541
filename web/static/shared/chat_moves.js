/* The moves of a call's chat and files that the visitor panel and the agent console make
 * alike: lines from the desk (each once, in order), lines typed, files picked, sent and
 * received, and the count of what arrived unseen. */

import { FILE_REFUSAL_TEXT, addLine, chatText, fileRefusal, fileUrls, freshChat, putFile } from "./chat.js";
import { MSG } from "./protocol.js";
import { _ } from "./i18n.js";

/** A new transcript for the call `callId`, letting the old one's object URLs go. */
export function resetChat(t, callId) {
  const urls = fileUrls(t.s.chat);
  if (urls.length) t.do("revokeUrls", { urls });
  t.s.chat = freshChat(callId);
  t.do("unread", { count: 0 });
}

/** One more unseen entry from the other party, unless the chat is in view. */
function arrived(t, visible) {
  if (visible(t.s)) return;
  t.s.chat = { ...t.s.chat, unread: t.s.chat.unread + 1 };
  t.do("unread", { count: t.s.chat.unread });
}

/**
 * The handlers for `chat`, `chat_history`, `submit_chat`, `pick_file`, `file_incoming`,
 * `file_status` and `chat_seen`, to spread into a page's table. `send(t, msg)` is the page's
 * own (false while not connected); `me`: "visitor" or "agent"; `visible(state)`: whether the
 * chat is in view now (else what arrives counts as unread).
 */
export function chatMoves({ send, me, visible }) {
  return {
    [MSG.CHAT](t, e) {
      const chat = t.s.chat;
      if (!t.s.callId || e.call_id !== t.s.callId || chat.callId !== t.s.callId) return;
      const after = addLine(chat, e);
      if (after === chat) return; // seen already
      t.s.chat = after;
      if (e.from !== me) arrived(t, visible);
    },

    [MSG.CHAT_HISTORY](t, e) {
      if (!t.s.callId || e.call_id !== t.s.callId || !Array.isArray(e.messages)) return;
      let chat = t.s.chat.callId === t.s.callId ? t.s.chat : freshChat(t.s.callId);
      for (const line of e.messages) chat = addLine(chat, line);
      t.s.chat = chat;
    },

    /** Send was pressed with `text` typed. */
    submit_chat(t, e) {
      const text = chatText(e.text);
      if (!t.s.callId || !text) return;
      if (send(t, { type: MSG.CHAT, call_id: t.s.callId, text })) {
        t.s.chat = { ...t.s.chat, notice: "" };
        t.do("clearChatInput");
      } else t.s.chat = { ...t.s.chat, notice: _("Not connected: your message was not sent. Try again in a moment.") };
    },

    /** A file was picked: `file` (the File), `key` (this page's id for it). */
    pick_file(t, e) {
      if (!t.s.callId || !e.file) return;
      const meta = { from: me, name: String(e.file.name || "file"), size: Number(e.file.size) || 0, mime: String(e.file.type || "") };
      const reason = fileRefusal(meta);
      if (reason) {
        t.s.chat = putFile(t.s.chat, e.key, { ...meta, status: "refused", reason: FILE_REFUSAL_TEXT[reason] });
        return;
      }
      t.s.chat = putFile(t.s.chat, e.key, { ...meta, status: "sending" });
      t.do("sendFile", { file: e.file, key: e.key });
    },

    /** The other party started sending a file (`key`, `name`, `size`, `mime`; `refused`: a reason). */
    file_incoming(t, e) {
      if (!t.s.callId) return;
      const them = me === "visitor" ? "agent" : "visitor";
      const refused = e.refused ? { status: "refused", reason: FILE_REFUSAL_TEXT[e.refused] || e.refused } : { status: "receiving" };
      t.s.chat = putFile(t.s.chat, e.key, { from: them, name: String(e.name || "file"), size: Number(e.size) || 0, mime: String(e.mime || ""), ...refused });
      if (!e.refused) arrived(t, visible);
    },

    /** A file went on (`status`: sent, delivered, received, refused, failed; `url`, `reason`). */
    file_status(t, e) {
      const entry = t.s.chat.entries.find((x) => x.kind === "file" && x.key === e.key);
      if (!entry) {
        if (e.url) t.do("revokeUrls", { urls: [e.url] }); // a call that is gone
        return;
      }
      const fields = { status: e.status };
      if (e.url) fields.url = e.url;
      if (e.reason) fields.reason = FILE_REFUSAL_TEXT[e.reason] || e.reason;
      t.s.chat = putFile(t.s.chat, e.key, fields);
    },

    /** The chat came into view: nothing is unread. */
    chat_seen(t) {
      if (t.s.chat.unread === 0) return;
      t.s.chat = { ...t.s.chat, unread: 0 };
      t.do("unread", { count: 0 });
    },
  };
}
