/* The desk's WebSocket protocol as the pages speak it: close codes, message types and error
 * codes, named once (docs/protocol.md documents each; signaling/messages.py is the schema). */

/** Close codes (docs/protocol.md, "Close codes"); the names follow signaling's CloseCode. */
export const CLOSE = Object.freeze({
  NORMAL: 1000, // the visitor left; a normal close ("bye")
  GOING_AWAY: 1001, // the server is stopping: reconnect and resume
  NOT_UTF8: 1007, // a text frame that is not UTF-8
  POLICY: 1008, // too many bad frames
  TOO_BIG: 1009, // a frame above 64 KiB
  INTERNAL: 1011, // a bug at the desk
  SERVICE_RESTART: 1012, // the server is stopping: reconnect at once (with jitter) and resume
  TRY_AGAIN: 1013, // the desk cannot reach its database just now
  INVALID_TICKET: 4001, // resume with a forged, expired or foreign ticket
  ENTRY_GONE: 4004, // resume for an entry that has ended
  REPLACED: 4009, // the same agent or ticket connected again elsewhere
  SESSION_EXPIRED: 4401, // the agent's session ran out
  REVOKED: 4403, // every session of the agent was revoked (reason: why)
});

/** Message types, both directions (docs/protocol.md, "Messages from ..."). */
export const MSG = Object.freeze({
  // visitor -> desk
  JOIN: "join",
  RESUME: "resume",
  LEAVE: "leave",
  CALLBACK: "callback",
  RATE: "rate",
  // agent -> desk
  STATUS: "status",
  ACCEPT: "accept",
  DECLINE: "decline",
  WRAPUP: "wrapup",
  NOTES: "notes",
  TRANSFER: "transfer",
  CLOSE_CALLBACK: "close_callback",
  CALLBACKS: "callbacks",
  // both -> desk
  SIGNAL: "signal",
  MEDIA: "media",
  HANGUP: "hangup",
  CHAT: "chat",
  REFRESH_ICE: "refresh_ice",
  PING: "ping",
  // desk -> visitor
  QUEUED: "queued",
  POSITION: "position",
  MOVED: "moved",
  MAX_WAIT: "max_wait",
  CALLBACK_SAVED: "callback_saved",
  RATED: "rated",
  LEFT: "left",
  // desk -> agent (also STATUS and CALLBACKS above)
  QUEUES: "queues",
  DESK_QUEUES: "desk_queues",
  OFFER: "offer",
  OFFER_CANCELLED: "offer_cancelled",
  NOTES_SAVED: "notes_saved",
  NOTES_RESTORED: "notes_restored",
  CALLBACK_ADDED: "callback_added",
  CALLBACK_CLOSED: "callback_closed",
  // desk -> both
  WELCOME: "welcome",
  ICE_SERVERS: "ice_servers",
  CALL_STARTED: "call_started",
  PEER_MEDIA: "peer_media",
  CHAT_HISTORY: "chat_history",
  CALL_ENDED: "call_ended",
  ERROR: "error",
  PONG: "pong",
});

/** Error codes of an `error` message (docs/protocol.md, "Errors"). */
export const ERROR = Object.freeze({
  BAD_JSON: "bad_json",
  TOO_DEEP: "too_deep",
  BAD_MESSAGE: "bad_message",
  UNKNOWN_TYPE: "unknown_type",
  WRONG_STATE: "wrong_state",
  TOO_LARGE: "too_large",
  STALE_OFFER: "stale_offer",
  UNKNOWN_QUEUE: "unknown_queue",
  QUEUE_CLOSED: "queue_closed",
  RATE_LIMITED: "rate_limited",
  CALLBACKS_FULL: "callbacks_full",
  CHAT_FULL: "chat_full",
  UNAVAILABLE: "unavailable",
});
