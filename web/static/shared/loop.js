/* How a page runs: one state, changed only by a pure transition table, drawn by render.
 *
 * A page's machine is `next(state, event) -> [state, effects]`: the new state and what to do
 * about it (send a message, open a socket, start a timer...), as plain objects `{do, ...}`.
 * `run` hands every event to `next`, draws the new state with `render(state)` and then carries
 * out the effects with `perform(effect, dispatch)`. Events that arrive while one is handled
 * (an effect may cause one) wait their turn, so `next` always sees them one at a time. */

/**
 * A transition under way, for writing a table's handlers as steps: `t.s` is a fresh shallow
 * copy of the state to change (replace nested values, never change them in place) and
 * `t.do(name, fields)` asks for an effect.
 */
export class Step {
  constructor(state) {
    this.s = { ...state };
    this.fx = [];
  }

  do(name, fields) {
    this.fx.push({ do: name, ...fields });
  }
}

/** A `next(state, event)` from a table of handlers `{ [event.type]: (step, event) => void }`. */
export function machine(handlers) {
  return function next(state, event) {
    const handler = Object.prototype.hasOwnProperty.call(handlers, event.type) ? handlers[event.type] : null;
    if (!handler) return [state, []];
    const t = new Step(state);
    handler(t, event);
    return [t.s, t.fx];
  };
}

/** Runs a page; returns `dispatch(event)` and `state()` (the current state, read-only). */
export function run({ state, next, render, perform }) {
  let current = state;
  const queue = [];
  let busy = false;
  function dispatch(event) {
    queue.push(event);
    if (busy) return;
    busy = true;
    try {
      while (queue.length) {
        const [after, effects] = next(current, queue.shift());
        if (after !== current) {
          current = after;
          render(current);
        }
        for (const effect of effects) perform(effect, dispatch);
      }
    } finally {
      busy = false;
    }
  }
  render(current);
  return { dispatch, state: () => current };
}
