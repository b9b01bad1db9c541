/* The console's socket: welcomed, closed (by close code), retried, replaced by another window. */

import { CLOSE, MSG } from "../shared/protocol.js";
import { _ } from "../shared/i18n.js";
import { POLICY_CLOSED_TEXT, SESSION_END_TEXT, UNAVAILABLE_RECONNECTING } from "./text.js";
import {
  addQueueRows,
  connect,
  endCallLocally,
  hideOffer,
  idleView,
  notify,
  releaseMedia,
  resetTransfer,
  send,
  sessionEnded,
  setPhase,
  setStatus,
  startMedia,
} from "./steps.js";

const SHORT_DROP_MS = 60000;
const IDLE_CHECK_MAX_MS = 15000;

/** Every queue of the desk, from `welcome` or `desk_queues` (the transfer list). */
export function setDeskQueues(t, queues) {
  t.s.deskQueues = queues.filter((q) => typeof q === "string" && q);
  if (t.s.callId) resetTransfer(t);
}

function retry(t, soon = false) {
  t.s.link = "connecting";
  t.do("retry", { soon });
}

export const link = {
  socket_open(t) {
    if (t.s.link === "connecting") t.s.link = "open";
  },

  socket_retrying(t) {
    t.s.connection = "reconnecting";
  },

  socket_closed(t, e) {
    const s = t.s;
    if (s.link === "none" || s.link === "closed") return; // let go, or already gone
    s.link = "closed";
    if (s.disconnectedAt === null) s.disconnectedAt = e.now;
    s.connection = "reconnecting";
    hideOffer(t); // the desk withdraws it when our lease lapses
    if (!s.callId) setStatus(t, "offline");
    if (e.code === CLOSE.REPLACED) {
      endCallLocally(t);
      s.connection = "disconnected";
      setPhase(t, "replaced");
      releaseMedia(t); // the camera belongs to the window now in use
      return;
    }
    if (e.code === CLOSE.SESSION_EXPIRED || e.code === CLOSE.REVOKED) {
      sessionEnded(t, SESSION_END_TEXT[e.reason] || SESSION_END_TEXT.session_expired);
      return;
    }
    if (e.code === CLOSE.POLICY) notify(t, POLICY_CLOSED_TEXT, true);
    if (e.code === CLOSE.TRY_AGAIN) notify(t, UNAVAILABLE_RECONNECTING, true);
    // The upgrade itself was refused: most often the session cookie has expired.
    if (!e.opened) {
      s.checkingSession = true;
      t.do("checkSession");
    }
    else retry(t, e.code === CLOSE.SERVICE_RESTART);
  },

  /** GET /api/me after a refused upgrade: `agent` (null: signed out), or `failed`. */
  session_checked(t, e) {
    if (!t.s.checkingSession) return;
    t.s.checkingSession = false;
    if (t.s.link !== "closed") return;
    if (!e.failed && !e.agent) sessionEnded(t, SESSION_END_TEXT.session_expired);
    else retry(t); // signed in, or the desk is unreachable: keep trying
  },

  /** "Use this window", after another window took over. */
  click_reconnect(t) {
    if (t.s.phase !== "replaced") return;
    setPhase(t, "idle");
    startMedia(t);
    connect(t);
  },

  [MSG.WELCOME](t, e) {
    const s = t.s;
    s.welcomes += 1;
    s.lastWelcomeAt = e.now;
    s.iceServers = Array.isArray(e.ice_servers) ? e.ice_servers : [];
    s.iceTransportPolicy = e.ice_transport_policy === "relay" ? "relay" : "all";
    const idle = Number(e.session && e.session.idle_signout_s);
    s.idleSignoutS = idle > 0 ? idle : 0;
    t.do("clear", { name: "idle" });
    if (s.idleSignoutS) {
      const every = Math.min(IDLE_CHECK_MAX_MS, (s.idleSignoutS * 1000) / 4);
      t.do("timer", { name: "idle", ms: every, repeat: true, event: { type: "idle_check" } });
    }
    s.connection = "connected";
    if (e.agent) {
      s.agent = e.agent;
      addQueueRows(s, e.agent);
    }
    if (Array.isArray(e.desk_queues)) setDeskQueues(t, e.desk_queues);
    const status = e.status || "offline";
    setStatus(t, status, undefined, undefined, e.now);
    if (s.notice === POLICY_CLOSED_TEXT || s.notice === UNAVAILABLE_RECONNECTING) notify(t, "");
    // After a short drop, put the agent back in the state they chose (the desk's lease made them Offline).
    const shortDrop = s.disconnectedAt !== null && e.now - s.disconnectedAt < SHORT_DROP_MS;
    if (s.welcomes > 1 && shortDrop && status === "offline" && s.wantedStatus && s.wantedStatus !== "offline") {
      send(t, { type: MSG.STATUS, status: s.wantedStatus });
    }
    s.disconnectedAt = null;
    if (s.callId && status !== "in_call") {
      endCallLocally(t);
      idleView(t, _("The call ended while you were disconnected."));
    }
  },
};
