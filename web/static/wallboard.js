/* humandesk wallboard: every queue and agent of the desk, live, for a wall screen.
 * Polls /api/stats and /api/agents every 2 seconds. Needs common.js.
 * Everything the server sends is inserted as text (textContent), never as HTML. */
"use strict";

(function () {
  const HD = window.HD;
  const $ = HD.$;
  const body = document.body;

  const POLL_MS = 2000;
  /** /wallboard?threshold=30 sets the service-level threshold T in seconds (default: the
   * desk's, 20 s); anything else in the address is ignored. */
  const THRESHOLD = (() => {
    const raw = new URLSearchParams(location.search).get("threshold");
    const n = raw === null ? NaN : Number(raw);
    return n > 0 && n <= 3600 ? n : null;
  })();
  const STATS_URL = THRESHOLD ? `/api/stats?threshold=${encodeURIComponent(THRESHOLD)}` : "/api/stats";
  const FETCH_TIMEOUT_MS = 5000;

  const ui = {
    loading: $("wallboard-loading"),
    loginView: $("wallboard-login-view"),
    loginForm: $("wallboard-login-form"),
    username: $("wallboard-username"),
    password: $("wallboard-password"),
    login: $("wallboard-login"),
    loginError: $("wallboard-login-error"),
    board: $("wallboard"),
    offline: $("wallboard-offline"),
    connection: $("wallboard-connection"),
    updated: $("wallboard-updated"),
    user: $("wallboard-user"),
    queues: $("wallboard-queues"),
    noQueues: $("wallboard-no-queues"),
    agents: $("wallboard-agents"),
    agentRows: $("wallboard-agents").querySelector("tbody"),
    noAgents: $("wallboard-no-agents"),
    summary: $("wallboard-summary"),
  };

  /** The agents' states in the order a supervisor reads them, with their labels. */
  const STATES = {
    in_call: "In call",
    offered: "Ringing",
    available: "Available",
    wrap_up: "Wrap-up",
    break: "Break",
    offline: "Offline",
  };
  const STATE_ORDER = Object.keys(STATES);
  /** The tile's agent counts: an agent being offered a visitor is still counted Available. */
  const TILE_STATES = [
    ["available", "Available"],
    ["in_call", "In call"],
    ["wrap_up", "Wrap-up"],
    ["break", "Break"],
    ["offline", "Offline"],
  ];

  const state = {
    phase: "loading",
    timer: null,
    polling: false,
    lastOk: 0,
    failures: 0,
    stats: null,
    agents: null,
    tiles: new Map(),
  };
  window.hdWallboard = state;

  /* ----------------------------------------------------------- formatting */

  const clock = (seconds) => {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
  };

  const percent = (ratio) =>
    ratio === null || ratio === undefined ? "–" : `${Math.round(ratio * 100)}%`;

  const timeOfDay = (date) =>
    date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /* ---------------------------------------------------------------- views */

  function setPhase(phase) {
    state.phase = phase;
    body.dataset.phase = phase;
    ui.loading.hidden = phase !== "loading";
    ui.loginView.hidden = phase !== "login";
    ui.board.hidden = phase !== "board";
  }

  function setConnection(kind) {
    ui.connection.dataset.state = kind;
    ui.connection.textContent =
      kind === "connected" ? "Live" : kind === "disconnected" ? "Desk unreachable" : "Connecting…";
    ui.offline.hidden = kind !== "disconnected";
    body.classList.toggle("is-stale", kind === "disconnected");
  }

  /* ---------------------------------------------------------------- tiles */

  function stat(label, testid, big) {
    const box = el("div", big ? "wb-stat big" : "wb-stat");
    const value = el("span", "wb-value", "–");
    value.dataset.testid = testid;
    box.append(value, el("span", "wb-label", label));
    return { box, value };
  }

  function makeTile(name) {
    const tile = el("article", "wb-tile");
    tile.dataset.testid = `wallboard-queue-${name}`;
    tile.dataset.queue = name;
    tile.dataset.alert = "false";

    const head = el("header", "wb-tile-head");
    const title = el("h2", "wb-tile-title", name);
    const badge = el("span", "wb-alert-badge", "Over threshold");
    badge.hidden = true;
    head.append(title, badge);

    const live = el("div", "wb-live");
    const waiting = stat("Waiting now", `wallboard-waiting-${name}`, true);
    const longest = stat("Longest wait now", `wallboard-longest-${name}`, true);
    live.append(waiting.box, longest.box);

    const agents = el("ul", "wb-agent-counts");
    agents.dataset.testid = `wallboard-agents-${name}`;
    agents.setAttribute("aria-label", "Agents");
    const counts = {};
    for (const [key, label] of TILE_STATES) {
      const item = el("li", "wb-count");
      item.dataset.state = key;
      const n = el("span", "wb-count-n", "0");
      item.append(n, el("span", "wb-count-label", label));
      agents.append(item);
      counts[key] = { item, n };
    }

    const today = el("div", "wb-today");
    const todayTitle = el("h3", "wb-today-title", "Today");
    const grid = el("div", "wb-today-grid");
    const answered = stat("Answered", `wallboard-answered-${name}`);
    const abandoned = stat("Abandoned", `wallboard-abandoned-${name}`);
    const sl = stat("Service level", `wallboard-sl-${name}`);
    const aht = stat("Avg handle time", `wallboard-aht-${name}`);
    grid.append(answered.box, abandoned.box, sl.box, aht.box);
    today.append(todayTitle, grid);

    tile.append(head, live, agents, today);
    return {
      tile,
      badge,
      waiting: waiting.value,
      longest: longest.value,
      counts,
      answered: answered.value,
      abandoned: abandoned.value,
      sl: sl.value,
      slLabel: sl.box.querySelector(".wb-label"),
      aht: aht.value,
    };
  }

  /** Agents per state for each queue: from the account list when we have it (it includes
   * accounts that never signed in), else from the live counts in /api/stats. */
  function countsFor(name, q) {
    const counts = { available: 0, in_call: 0, wrap_up: 0, break: 0, offline: 0 };
    const add = (s, n) => {
      const key = s === "offered" ? "available" : s;
      if (key in counts) counts[key] += n;
    };
    if (state.agents) {
      for (const a of state.agents) if ((a.queues || []).includes(name)) add(a.state, 1);
    } else {
      for (const [s, n] of Object.entries(q.agents || {})) add(s, Number(n) || 0);
    }
    return counts;
  }

  function renderQueues() {
    const stats = state.stats;
    const queues = stats.queues || {};
    const names = Object.keys(queues).sort();
    for (const [name, t] of state.tiles) {
      if (!(name in queues)) {
        t.tile.remove();
        state.tiles.delete(name);
      }
    }
    for (const name of names) {
      const q = queues[name];
      // Each queue's own threshold (its `sla` rule), unless ?threshold= set one for all.
      const threshold = Number(q.threshold_s) || Number(stats.threshold_s) || 20;
      let t = state.tiles.get(name);
      if (!t) {
        t = makeTile(name);
        state.tiles.set(name, t);
      }
      ui.queues.append(t.tile); // keeps the tiles in name order
      const waiting = Number(q.waiting_now) || 0;
      const longest = waiting ? Number(q.longest_wait_now_s) || 0 : 0;
      t.waiting.textContent = String(waiting);
      t.longest.textContent = clock(longest);
      const alert = waiting > 0 && longest > threshold;
      t.tile.dataset.alert = String(alert);
      t.tile.dataset.waiting = String(waiting);
      t.badge.hidden = !alert;
      t.badge.textContent = `Over ${threshold} s`;
      const counts = countsFor(name, q);
      for (const [key] of TILE_STATES) {
        t.counts[key].n.textContent = String(counts[key]);
        t.counts[key].item.dataset.count = String(counts[key]);
      }
      t.answered.textContent = String(q.answered || 0);
      t.abandoned.textContent = String(q.abandoned || 0);
      t.sl.textContent = percent(q.service_level);
      t.slLabel.textContent = `Service level (≤ ${threshold} s)`;
      t.aht.textContent = clock(q.avg_handle_s);
    }
    ui.noQueues.hidden = names.length > 0;
  }

  /* --------------------------------------------------------------- agents */

  function stateSince(a, nowMs) {
    if (a.state === "wrap_up" && a.until_ms) return `${clock((a.until_ms - nowMs) / 1000)} left`;
    if (a.since_ms) return clock((nowMs - a.since_ms) / 1000);
    return "";
  }

  function renderAgents(serverNow) {
    const rows = (state.agents || []).slice().sort((x, y) => {
      const d = STATE_ORDER.indexOf(x.state) - STATE_ORDER.indexOf(y.state);
      return d || String(x.display_name).localeCompare(String(y.display_name));
    });
    const fragment = document.createDocumentFragment();
    const tally = {};
    for (const a of rows) {
      tally[a.state] = (tally[a.state] || 0) + 1;
      const tr = el("tr", "wb-agent-row");
      tr.dataset.testid = `wallboard-agent-${a.name}`;
      tr.dataset.state = a.state;
      const who = el("td", "wb-agent-name");
      who.append(el("span", "", a.display_name || a.name));
      if (a.role === "supervisor") who.append(el("span", "badge wb-role", "Supervisor"));
      const pill = el("td", "wb-agent-state");
      const label = el("span", "wb-state", STATES[a.state] || String(a.state));
      label.dataset.state = a.state;
      label.dataset.testid = `wallboard-agent-state-${a.name}`;
      pill.append(label);
      if (a.reason && a.state === "break") pill.append(el("span", "wb-reason", a.reason));
      const since = el("td", "wb-agent-since", stateSince(a, serverNow));
      const queues = el("td", "wb-agent-queues", (a.queues || []).join(", "));
      tr.append(who, pill, since, queues);
      fragment.append(tr);
    }
    ui.agentRows.replaceChildren(fragment);
    ui.noAgents.hidden = rows.length > 0;
    ui.agents.hidden = rows.length === 0;
    const online = rows.length - (tally.offline || 0);
    ui.summary.textContent = `${online} of ${rows.length} signed in`;
  }

  /* -------------------------------------------------------------- polling */

  async function getJson(url) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch(url, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (res.status === 401) return { status: 401 };
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      return { status: res.status, data: await res.json() };
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    if (state.polling) return;
    state.polling = true;
    try {
      const [stats, agents] = await Promise.all([getJson(STATS_URL), getJson("/api/agents")]);
      if (stats.status === 401 || agents.status === 401) {
        stop();
        showLogin();
        return;
      }
      state.stats = stats.data;
      state.agents = Array.isArray(agents.data.agents) ? agents.data.agents : null;
      state.failures = 0;
      state.lastOk = Date.now();
      if (state.phase !== "board") setPhase("board");
      setConnection("connected");
      renderQueues();
      renderAgents(Number(agents.data.now_ms) || Date.now());
      ui.updated.textContent = timeOfDay(new Date(state.lastOk));
      ui.updated.dateTime = new Date(state.lastOk).toISOString();
    } catch (_) {
      state.failures += 1;
      if (state.phase === "loading") setPhase("board");
      setConnection("disconnected");
    } finally {
      state.polling = false;
    }
  }

  function start() {
    stop();
    poll();
    state.timer = setInterval(poll, POLL_MS);
  }

  function stop() {
    clearInterval(state.timer);
    state.timer = null;
  }

  /* -------------------------------------------------------------- sign-in */

  function showLogin() {
    setPhase("login");
    ui.user.textContent = "";
    ui.connection.hidden = true;
    ui.username.focus();
  }

  async function whoAmI() {
    try {
      const me = await getJson("/api/me");
      if (me.status === 401) return null;
      return me.data.agent;
    } catch (_) {
      return undefined; // the desk is unreachable: poll anyway, the notice says so
    }
  }

  async function begin() {
    const me = await whoAmI();
    if (me === null) {
      showLogin();
      return;
    }
    if (me) ui.user.textContent = me.display_name || me.name;
    ui.connection.hidden = false;
    start();
  }

  ui.loginForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ui.loginError.textContent = "";
    ui.login.disabled = true;
    try {
      const result = await HD.signIn(ui.username.value.trim(), ui.password.value);
      if (result.error) {
        ui.loginError.textContent = result.error;
      } else {
        ui.password.value = "";
        await begin();
      }
    } finally {
      ui.login.disabled = false;
    }
  });

  begin();
})();
