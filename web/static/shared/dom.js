/* The few DOM helpers every page uses. Text goes in as text (textContent), never as HTML. */

/** The element with `data-testid="<testid>"`: the pages and their tests name elements alike. */
export function byTestId(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** `{key: testid}` -> `{key: element}`: a page's parts, found once. */
export function byTestIds(ids, root = document) {
  return Object.fromEntries(Object.entries(ids).map(([key, id]) => [key, byTestId(id, root)]));
}

/** A new element with a class and text content. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // visitor text is text, never HTML
  return node;
}

/** Shows or hides `node`, touching it only when that changes. */
export function show(node, visible) {
  if (node.hidden === visible) node.hidden = !visible;
}

/** Sets text only when it changed (keeps screen readers from re-announcing live regions). */
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/**
 * Named timers for a page's effects: `set(name, ms, fire, repeat)` replaces the timer of that
 * name (a repeating one fires every `ms`), `clear(name)` stops it. The pages' state machines
 * ask for them by name.
 */
export function namedTimers() {
  const timers = new Map();
  const stop = (name) => {
    const timer = timers.get(name);
    clearTimeout(timer);
    clearInterval(timer);
    timers.delete(name);
  };
  return {
    set(name, ms, fire, repeat = false) {
      stop(name);
      if (repeat) timers.set(name, setInterval(fire, ms));
      else {
        timers.set(
          name,
          setTimeout(() => {
            timers.delete(name);
            fire();
          }, ms)
        );
      }
    },
    clear: stop,
  };
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/** The controls of `root` the Tab key can reach now (shown and enabled), in order. */
export function tabbable(root) {
  return Array.from(root.querySelectorAll(FOCUSABLE)).filter((node) => node.getClientRects().length > 0 && !node.closest("[hidden]"));
}

/**
 * Keeps Tab and Shift+Tab inside `root`, as in a dialog: from the last control Tab goes to
 * the first, and back. (Escape, which the page handles, is the way out.)
 */
export function trapTab(root) {
  root.addEventListener("keydown", (ev) => {
    if (ev.key !== "Tab") return;
    const nodes = tabbable(root);
    if (!nodes.length) return;
    const first = nodes[0];
    const last = nodes[nodes.length - 1];
    const at = document.activeElement;
    if (ev.shiftKey && (at === first || !root.contains(at))) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (at === last || !root.contains(at))) {
      ev.preventDefault();
      first.focus();
    }
  });
}
