// Helpers for the transition-table tests: frozen states (a handler that changes its input
// throws), runs of events, and effects picked out by kind.

export function deepFreeze(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

/** Feeds `events` to `next` one by one from `state`: the last state and every effect asked for. */
export function play(next, state, ...events) {
  let current = state;
  const fx = [];
  for (const event of events) {
    const [after, effects] = next(deepFreeze(current), event);
    current = after;
    fx.push(...effects);
  }
  return { state: current, fx };
}

/** The effects of one kind (`do`). */
export function effects(fx, kind) {
  return fx.filter((f) => f.do === kind);
}

/** The messages sent, by type. */
export function sent(fx) {
  return effects(fx, "send").map((f) => f.msg.type);
}
