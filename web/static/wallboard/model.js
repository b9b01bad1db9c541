/* The wallboard's state and what it shows, as pure functions: the page's phases (a transition
 * table like the other pages'), the tiles' figures and the agents' rows. */

import { _, locale } from "../shared/i18n.js";
import { machine } from "../shared/loop.js";
import { deskReason } from "../shared/format.js";

/** The agents' states in the order a supervisor reads them, with their labels. */
export const STATES = {
  in_call: _("In call"),
  offered: _("Ringing"),
  available: _("Available"),
  wrap_up: _("Wrap-up"),
  break: _("Break"),
  offline: _("Offline"),
};
const STATE_ORDER = Object.keys(STATES);

/** The tile's agent counts: an agent being offered a visitor is still counted Available. */
export const TILE_STATES = [
  ["available", _("Available")],
  ["in_call", _("In call")],
  ["wrap_up", _("Wrap-up")],
  ["break", _("Break")],
  ["offline", _("Offline")],
];

/**
 * loading -> login | board | forbidden; login -> board | forbidden; board -> login (the session
 * ended) | forbidden (the supervisor role was taken away). Forbidden: signed in, not a supervisor.
 */
export const MOVES = {
  loading: ["login", "board", "forbidden"],
  login: ["board", "forbidden"],
  board: ["login", "forbidden"],
  forbidden: [],
};

/** `phase`: the page's first phase as the server rendered it ("loading", or "forbidden"). */
export function initial(phase = "loading") {
  // connection: connecting | connected | disconnected; data: the last good poll
  return {
    phase: phase === "forbidden" ? "forbidden" : "loading",
    connection: "connecting",
    connectionShown: true,
    user: "",
    loginError: "",
    loginBusy: false,
    data: null,
    failures: 0,
  };
}

function showLogin(t) {
  Object.assign(t.s, { phase: "login", user: "", connectionShown: false, loginBusy: false });
  t.do("stopPolling");
  t.do("focus");
}

function forbid(t) {
  Object.assign(t.s, { phase: "forbidden", connectionShown: false, loginBusy: false });
  t.do("stopPolling");
}

export const next = machine({
  /** GET /api/me: `agent`, null (signed out) or undefined (the desk is unreachable: poll anyway). */
  me(t, e) {
    if (e.agent === null) {
      showLogin(t);
      return;
    }
    if (e.agent) t.s.user = e.agent.display_name || e.agent.name;
    if (e.agent && e.agent.role !== "supervisor") {
      forbid(t);
      return;
    }
    t.s.connectionShown = true;
    t.do("startPolling");
  },
  submit_login(t, e) {
    if (t.s.loginBusy) return;
    t.s.loginError = "";
    t.s.loginBusy = true;
    t.do("signIn", { username: String(e.username || "").trim(), password: e.password });
  },
  /** /api/login answered: `agent`, or `error`. */
  signed_in(t, e) {
    t.s.loginBusy = false;
    if (e.error) t.s.loginError = e.error;
    else {
      t.do("clearPassword");
      t.do("whoAmI");
    }
  },
  /** /api/stats and /api/agents answered: `stats`, `agents`, `nowMs` (desk clock), `at` (ours). */
  polled(t, e) {
    Object.assign(t.s, { phase: "board", connection: "connected", failures: 0 });
    t.s.data = { stats: e.stats, agents: Array.isArray(e.agents) ? e.agents : null, nowMs: e.nowMs, at: e.at };
  },
  poll_failed(t) {
    t.s.failures += 1;
    if (t.s.phase === "loading") t.s.phase = "board";
    t.s.connection = "disconnected";
  },
  unauthorized(t) {
    showLogin(t);
  },
  /** /api/stats or /api/agents answered 403: the account is no longer a supervisor. */
  forbidden(t) {
    forbid(t);
  },
});

/** "00:42", "1:02:03", or "–" for no value (a wall screen reads minutes and seconds). */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined) return "–";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(Math.round(ratio * 100) / 100);
}

/**
 * Agents per state for a queue: from the account list when there is one (it includes accounts
 * that never signed in), else from the live counts in /api/stats.
 */
export function countsFor(name, q, agents) {
  const counts = { available: 0, in_call: 0, wrap_up: 0, break: 0, offline: 0 };
  const add = (s, n) => {
    const key = s === "offered" ? "available" : s;
    if (key in counts) counts[key] += n;
  };
  if (agents) {
    for (const a of agents) if ((a.queues || []).includes(name)) add(a.state, 1);
  } else {
    for (const [s, n] of Object.entries(q.agents || {})) add(s, Number(n) || 0);
  }
  return counts;
}

/** A queue's tile: what is waiting now, whether it is over its threshold, today's figures. */
export function tile(name, q, stats, agents) {
  // Each queue's own threshold (its `sla` rule), unless ?threshold= set one for all.
  const threshold = Number(q.threshold_s) || Number(stats.threshold_s) || 20;
  const waiting = Number(q.waiting_now) || 0;
  const longest = waiting ? Number(q.longest_wait_now_s) || 0 : 0;
  return {
    threshold,
    waiting,
    longest: clock(longest),
    alert: waiting > 0 && longest > threshold,
    counts: countsFor(name, q, agents),
    answered: String(q.answered || 0),
    abandoned: String(q.abandoned || 0),
    serviceLevel: percent(q.service_level),
    handleTime: clock(q.avg_handle_s),
  };
}

/** The agents in the order a supervisor reads them: by state, then by name. */
export function sortAgents(agents) {
  return (agents || []).slice().sort((x, y) => {
    const d = STATE_ORDER.indexOf(x.state) - STATE_ORDER.indexOf(y.state);
    return d || String(x.display_name).localeCompare(String(y.display_name));
  });
}

/**
 * How long an agent has been in their state ("01:05"), in every state (Break and Offline too),
 * or what is left of a wrap-up; "–" when the desk does not know (an account that never signed
 * in).
 */
export function stateSince(a, nowMs) {
  if (a.state === "wrap_up" && a.until_ms) return _("{time} left", { time: clock((a.until_ms - nowMs) / 1000) });
  return clock(a.since_ms ? (nowMs - a.since_ms) / 1000 : null);
}

/** Why an agent is on Break or Offline, when the desk put them there ("Connection lost"). */
export function stateReason(a) {
  return a.state === "break" || a.state === "offline" ? deskReason(a) : "";
}

/** /wallboard?threshold=30 sets the service-level threshold T in seconds; anything else is ignored. */
export function statsUrl(search) {
  const raw = new URLSearchParams(search).get("threshold");
  const n = raw === null ? NaN : Number(raw);
  const threshold = n > 0 && n <= 3600 ? n : null;
  return threshold ? `/api/stats?threshold=${encodeURIComponent(threshold)}` : "/api/stats";
}
