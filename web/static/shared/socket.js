/* One JSON WebSocket to the desk, with a keep-alive ping and jittered reconnects. */

import { MSG } from "./protocol.js";

const PING_EVERY_MS = 20000;
// In a call the desk ends the call once it has not heard from the page for its grace period
// (20 s by default), so the page speaks up more often.
const PING_IN_CALL_MS = 5000;
const STALE_AFTER_MS = 50000;
const RESTART_JITTER_MS = 1000;
const CHECK_WAIT_MS = 2000;

export function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

/**
 * handlers.onOpen() when the connection is up; handlers.onMessage(msg) for every frame but
 * `pong`; handlers.onClose({code, reason, opened}) when it is gone. Whether to connect again is
 * the page's call: `retry()` does, after a jittered exponential backoff (reset by `welcome`),
 * and tells handlers.onRetry(delayMs). `close()` ends it for good.
 */
export class DeskSocket {
  constructor(path, handlers) {
    this.url = wsUrl(path);
    this.handlers = handlers;
    this.ws = null;
    this.attempts = 0;
    this.stopped = true;
    this.retryTimer = null;
    this.pingTimer = null;
    this.checkTimer = null;
    this.lastSeen = 0;
    this.pingEvery = PING_EVERY_MS;
  }

  /** In a call (`on`), pings every PING_IN_CALL_MS; otherwise every PING_EVERY_MS. */
  inCall(on) {
    const every = on ? PING_IN_CALL_MS : PING_EVERY_MS;
    if (every === this.pingEvery) return;
    this.pingEvery = every;
    if (this.pingTimer) {
      this._startPing();
      if (on) this.send({ type: MSG.PING }); // the desk knows at once that this page pings
    }
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  open() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this._connect();
  }

  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  close(code = 1000, reason = "bye") {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._stopPing();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch (_) {
        /* already closing */
      }
    }
  }

  /**
   * A proof of life on demand: a ping that must be answered within CHECK_WAIT_MS, else the
   * socket is given up as stale (and the page connects again). For when the network under the
   * page may have changed (the call's media stopped): a TCP connection from an address that
   * is gone says nothing for minutes.
   */
  check() {
    if (!this.isOpen || this.checkTimer) return;
    const asked = Date.now();
    this.send({ type: MSG.PING });
    this.checkTimer = setTimeout(() => {
      this.checkTimer = null;
      if (this.ws && this.lastSeen < asked) this._drop();
    }, CHECK_WAIT_MS);
  }

  /**
   * Connects again after the backoff (after onClose; nothing if closed meanwhile). `soon`: the
   * server is restarting (1012), so at once, after a random delay up to RESTART_JITTER_MS that
   * spreads a whole process's sockets over the servers still running.
   */
  retry(soon = false) {
    if (this.stopped || this.ws) return;
    const base = Math.min(10000, 500 * 2 ** this.attempts);
    const delay = Math.round(soon ? Math.random() * RESTART_JITTER_MS : base * (0.75 + Math.random() * 0.5));
    this.attempts += 1;
    if (this.handlers.onRetry) this.handlers.onRetry(delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this._connect();
    }, delay);
  }

  _connect() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (_) {
      this._closed(1006, "", false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastSeen = Date.now();
      this._startPing();
      if (this.handlers.onOpen) this.handlers.onOpen();
    };
    ws.onmessage = (ev) => {
      this.lastSeen = Date.now();
      if (typeof ev.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (!msg || typeof msg.type !== "string" || msg.type === MSG.PONG) return;
      if (msg.type === MSG.WELCOME) this.attempts = 0;
      this.handlers.onMessage(msg);
    };
    ws.onerror = () => {}; // always followed by close
    ws.onclose = (ev) => {
      if (ws === this.ws) this._closed(ev.code, ev.reason, opened);
    };
  }

  _closed(code, reason, opened) {
    this._stopPing();
    this.ws = null;
    if (this.stopped) return;
    this.handlers.onClose({ code, reason, opened });
  }

  _startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      // A dead TCP connection can take minutes to report close; give up on it ourselves.
      if (Date.now() - this.lastSeen > STALE_AFTER_MS) {
        this._drop();
        return;
      }
      this.send({ type: MSG.PING });
    }, this.pingEvery);
  }

  /** Gives up a connection that no longer answers, as if it had closed (1006 "stale"). */
  _drop() {
    const ws = this.ws;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try {
        ws.close();
      } catch (_) {
        /* ignore */
      }
    }
    this._closed(1006, "stale", true);
  }

  _stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    clearTimeout(this.checkTimer);
    this.checkTimer = null;
  }
}
