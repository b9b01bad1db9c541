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
