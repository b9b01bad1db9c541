/* The wallboard on screen: a tile per queue and a row per agent. Everything the desk sends is
 * inserted as text (textContent), never as HTML. */

import { byTestIds, el, setText } from "../shared/dom.js";
import { _, formatNumber, locale, ngettext } from "../shared/i18n.js";
import { staffParts } from "../shared/parts.js";
import { STATES, TILE_STATES, sortAgents, stateReason, stateSince, tile } from "./model.js";

const CONNECTION_TEXT = {
  connecting: _("Connecting…"),
  connected: _("Live"),
  disconnected: _("Desk unreachable"),
};

export function findParts(doc = document) {
  const ids = {
    board: "wallboard", offline: "wallboard-offline", updated: "wallboard-updated", queues: "wallboard-queues",
    noQueues: "wallboard-no-queues", agents: "wallboard-agents", noAgents: "wallboard-no-agents",
    summary: "wallboard-summary", forbidden: "wallboard-forbidden",
  };
  const ui = { ...staffParts("wallboard", doc), ...byTestIds(ids, doc) };
  ui.body = doc.body;
  ui.agentRows = ui.agents.querySelector("tbody");
  return ui;
}

function stat(label, testid, big) {
  const box = el("div", big ? "wb-stat big" : "wb-stat");
  const value = el("span", "wb-value", "–");
  value.dataset.testid = testid;
  box.append(value, el("span", "wb-label", label));
  return { box, value };
}

function makeTile(name) {
  const node = el("article", "wb-tile");
  node.dataset.testid = `wallboard-queue-${name}`;
  node.dataset.queue = name;
  node.dataset.alert = "false";
  const head = el("header", "wb-tile-head");
  const badge = el("span", "wb-alert-badge", _("Over threshold"));
  badge.hidden = true;
  head.append(el("h2", "wb-tile-title", name), badge);
  const live = el("div", "wb-live");
  const waiting = stat(_("Waiting now"), `wallboard-waiting-${name}`, true);
  const longest = stat(_("Longest wait now"), `wallboard-longest-${name}`, true);
  live.append(waiting.box, longest.box);
  const agents = el("ul", "wb-agent-counts");
  agents.dataset.testid = `wallboard-agents-${name}`;
  agents.setAttribute("aria-label", _("Agents"));
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
  const grid = el("div", "wb-today-grid");
  const answered = stat(_("Answered"), `wallboard-answered-${name}`);
  const abandoned = stat(_("Abandoned"), `wallboard-abandoned-${name}`);
  const sl = stat(_("Service level"), `wallboard-sl-${name}`);
  const aht = stat(_("Avg handle time"), `wallboard-aht-${name}`);
  grid.append(answered.box, abandoned.box, sl.box, aht.box);
  today.append(el("h3", "wb-today-title", _("Today")), grid);
  node.append(head, live, agents, today);
  const slLabel = sl.box.querySelector(".wb-label");
  return { node, badge, waiting: waiting.value, longest: longest.value, counts, answered: answered.value, abandoned: abandoned.value, sl: sl.value, slLabel, aht: aht.value };
}

function agentRow(a, nowMs) {
  const tr = el("tr", "wb-agent-row");
  tr.dataset.testid = `wallboard-agent-${a.name}`;
  tr.dataset.state = a.state;
  const who = el("td", "wb-agent-name");
  who.append(el("span", "", a.display_name || a.name));
  if (a.role === "supervisor") who.append(el("span", "badge wb-role", _("Supervisor")));
  const pill = el("td", "wb-agent-state");
  const label = el("span", "wb-state", STATES[a.state] || String(a.state));
  label.dataset.state = a.state;
  label.dataset.testid = `wallboard-agent-state-${a.name}`;
  pill.append(label);
  const reason = stateReason(a);
  if (reason) {
    const why = el("span", "wb-reason", reason);
    why.dataset.testid = `wallboard-agent-reason-${a.name}`;
    pill.append(why);
  }
  const since = el("td", "wb-agent-since", stateSince(a, nowMs));
  since.dataset.testid = `wallboard-agent-since-${a.name}`;
  tr.append(who, pill, since, el("td", "wb-agent-queues", (a.queues || []).join(", ")));
  return tr;
}

export function createView(ui) {
  const tiles = new Map();
  let drawn = null;

  function renderQueues(stats, agents) {
    const queues = stats.queues || {};
    const names = Object.keys(queues).sort();
    for (const [name, t] of tiles) {
      if (!(name in queues)) {
        t.node.remove();
        tiles.delete(name);
      }
    }
    for (const name of names) {
      let t = tiles.get(name);
      if (!t) tiles.set(name, (t = makeTile(name)));
      ui.queues.append(t.node); // keeps the tiles in name order
      const f = tile(name, queues[name], stats, agents);
      setText(t.waiting, String(f.waiting));
      setText(t.longest, f.longest);
      t.node.dataset.alert = String(f.alert);
      t.node.dataset.waiting = String(f.waiting);
      t.badge.hidden = !f.alert;
      setText(t.badge, _("Over {seconds} s", { seconds: f.threshold }));
      for (const [key] of TILE_STATES) {
        setText(t.counts[key].n, String(f.counts[key]));
        t.counts[key].item.dataset.count = String(f.counts[key]);
      }
      setText(t.answered, f.answered);
      setText(t.abandoned, f.abandoned);
      setText(t.sl, f.serviceLevel);
      setText(t.slLabel, _("Service level (≤ {seconds} s)", { seconds: f.threshold }));
      setText(t.aht, f.handleTime);
    }
    ui.noQueues.hidden = names.length > 0;
  }

  function renderAgents(agents, nowMs) {
    const rows = sortAgents(agents);
    ui.agentRows.replaceChildren(...rows.map((a) => agentRow(a, nowMs)));
    ui.noAgents.hidden = rows.length > 0;
    ui.agents.hidden = rows.length === 0;
    const online = rows.filter((a) => a.state !== "offline").length;
    setText(ui.summary, ngettext("{online} of {n} signed in", "{online} of {n} signed in", rows.length, { online: formatNumber(online) }));
  }

  return function render(s) {
    ui.body.dataset.phase = s.phase;
    ui.loading.hidden = s.phase !== "loading";
    ui.loginView.hidden = s.phase !== "login";
    ui.board.hidden = s.phase !== "board";
    ui.forbidden.hidden = s.phase !== "forbidden";
    ui.connection.hidden = !s.connectionShown;
    ui.connection.dataset.state = s.connection;
    setText(ui.connection, CONNECTION_TEXT[s.connection] || CONNECTION_TEXT.connecting);
    ui.offline.hidden = s.connection !== "disconnected";
    ui.body.classList.toggle("is-stale", s.connection === "disconnected");
    setText(ui.user, s.user);
    setText(ui.loginError, s.loginError);
    ui.login.disabled = s.loginBusy;
    if (s.data && s.data !== drawn) {
      drawn = s.data;
      renderQueues(s.data.stats, s.data.agents);
      renderAgents(s.data.agents, s.data.nowMs);
      const when = new Date(s.data.at);
      setText(ui.updated, when.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
      ui.updated.dateTime = when.toISOString();
    }
  };
}
