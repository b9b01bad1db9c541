/* Call notes: typed during the call or its wrap-up, saved by themselves, restored on reload. */

import { MSG } from "../shared/protocol.js";
import { _ } from "../shared/i18n.js";
import { flushNotes, notesState, openNotes, saveNotes } from "./steps.js";

const SAVE_AFTER_MS = 1000;

export const notes = {
  /** The notes or the outcome changed: `text`, `disposition`; `now`: save at once (the outcome). */
  notes_edited(t, e) {
    const current = t.s.notes;
    if (!current.callId) return;
    t.s.notes = { ...current, text: e.text, disposition: e.disposition, dirty: true, edits: current.edits + 1 };
    t.do("clear", { name: "notes" });
    if (e.now) saveNotes(t);
    else {
      notesState(t, "editing", _("Editing…"));
      t.do("timer", { name: "notes", ms: SAVE_AFTER_MS, event: { type: "notes_due" } });
    }
  },

  notes_due(t) {
    saveNotes(t);
  },

  notes_blur(t) {
    flushNotes(t);
  },

  [MSG.NOTES_SAVED](t, e) {
    const current = t.s.notes;
    const [edits, ...rest] = current.sent;
    t.s.notes = { ...current, sent: rest };
    if (e.call_id !== current.callId || edits === undefined) return;
    if (!current.dirty && edits === current.edits) notesState(t, "saved", _("Saved"));
  },

  /** After a reload in a call or its wrap-up: the notes the desk saved, unless typed since. */
  [MSG.NOTES_RESTORED](t, e) {
    if (typeof e.call_id !== "string" || !e.call_id) return;
    openNotes(t, e.call_id);
    const current = t.s.notes;
    if (current.dirty || current.edits > 0) return;
    t.s.notes = {
      ...current,
      text: typeof e.notes === "string" ? e.notes : "",
      disposition: typeof e.disposition === "string" ? e.disposition : "",
    };
    notesState(t, "saved", _("Saved"));
  },
};
