/* Signing in through /api/login: the same words in the agent console and on the wallboard. */

import { countOf } from "./format.js";
import { _ } from "./i18n.js";

/** What a sign-in answer means to the person at the form: { error, wrongPassword } or {}. */
export function signInProblem(status, retryAfter) {
  if (status === 401) return { error: _("Wrong username or password"), wrongPassword: true };
  if (status === 429) {
    const minutes = Math.max(1, Math.ceil((Number(retryAfter) || 60) / 60));
    return { error: _("Too many failed sign-ins. Try again in {wait}.", { wait: countOf(minutes, "minute") }) };
  }
  if (status < 200 || status > 299) return { error: _("Sign-in failed (HTTP {status}). Try again.", { status }) };
  return {};
}

/** Resolves to { agent } on success, or { error, wrongPassword } with the text to show. */
export async function signIn(username, password) {
  let res;
  try {
    res = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ username, password }),
    });
  } catch (_err) {
    return { error: _("Cannot reach the desk. Check your connection and try again.") };
  }
  const problem = signInProblem(res.status, res.headers.get("Retry-After"));
  if (problem.error) return problem;
  const data = await res.json();
  return { agent: data.agent };
}
