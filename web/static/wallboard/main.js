/* The supervisors' wallboard: every queue and agent of the desk, live, for a wall screen.
 * Polls /api/stats and /api/agents every 2 seconds; signs in like the agent console. */

import { wireLanguageChooser } from "../shared/language.js";
import { run } from "../shared/loop.js";
import { signIn } from "../shared/signin.js";
import { initial, next, statsUrl } from "./model.js";
import { createView, findParts } from "./view.js";

const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const STATS_URL = statsUrl(location.search);

const ui = findParts();

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
    if (res.status === 401 || res.status === 403) return { status: res.status };
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return { status: res.status, data: await res.json() };
  } finally {
    clearTimeout(timer);
  }
}

let pollTimer = null;
let polling = false;

async function poll(dispatch) {
  if (polling) return;
  polling = true;
  try {
    const [stats, agents] = await Promise.all([getJson(STATS_URL), getJson("/api/agents")]);
    if (stats.status === 401 || agents.status === 401) dispatch({ type: "unauthorized" });
    else if (stats.status === 403 || agents.status === 403) dispatch({ type: "forbidden" });
    else {
      const nowMs = Number(agents.data.now_ms) || Date.now();
      dispatch({ type: "polled", stats: stats.data, agents: agents.data.agents, nowMs, at: Date.now() });
    }
  } catch (_) {
    dispatch({ type: "poll_failed" });
  } finally {
    polling = false;
  }
}

async function whoAmI(dispatch) {
  let agent;
  try {
    const me = await getJson("/api/me");
    agent = me.status === 401 ? null : me.data && me.data.agent;
  } catch (_) {
    agent = undefined; // the desk is unreachable: poll anyway, the notice says so
  }
  dispatch({ type: "me", agent });
}

const ACTIONS = {
  startPolling(fx, dispatch) {
    clearInterval(pollTimer);
    poll(dispatch);
    pollTimer = setInterval(() => poll(dispatch), POLL_MS);
  },
  stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  },
  focus: () => ui.username.focus(),
  whoAmI: (fx, dispatch) => whoAmI(dispatch),
  async signIn(fx, dispatch) {
    dispatch({ type: "signed_in", ...(await signIn(fx.username, fx.password)) });
  },
  clearPassword() {
    ui.password.value = "";
  },
};

const { dispatch } = run({
  state: initial(document.body.dataset.phase),
  next,
  render: createView(ui),
  perform: (fx, dispatchFx) => ACTIONS[fx.do](fx, dispatchFx),
});

wireLanguageChooser();

ui.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  dispatch({ type: "submit_login", username: ui.username.value, password: ui.password.value });
});

whoAmI(dispatch);
