/* Fresh ICE servers for an ICE restart (TURN credentials are minted per call and expire). */

import { MSG } from "./protocol.js";

const ICE_REFRESH_WAIT_MS = 3000;

/**
 * Asks the desk for fresh ICE servers (`refresh_ice`, answered by `ice_servers`).
 * `request()` resolves to the new list, or null if the desk does not answer in 3 s;
 * the page hands every `ice_servers` message to `received(msg)`.
 */
export function iceRefresher(getSocket) {
  let waiting = [];
  return {
    request() {
      return new Promise((resolve) => {
        const socket = getSocket();
        if (!socket || !socket.send({ type: MSG.REFRESH_ICE })) {
          resolve(null);
          return;
        }
        const entry = { resolve };
        entry.timer = setTimeout(() => {
          waiting = waiting.filter((e) => e !== entry);
          resolve(null);
        }, ICE_REFRESH_WAIT_MS);
        waiting.push(entry);
      });
    },
    received(msg) {
      const servers = Array.isArray(msg.ice_servers) ? msg.ice_servers : null;
      const all = waiting;
      waiting = [];
      for (const entry of all) {
        clearTimeout(entry.timer);
        entry.resolve(servers);
      }
    },
  };
}
