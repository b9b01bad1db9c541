/* The page around the panel: the host site that embeds it (postMessage, with an explicit
 * origin both ways), the ticket's storage, and the priority token handed over in the URL. */

/**
 * A host site may vouch for this visitor's priority with a signed token (data-priority-token on
 * the loader). The loader hands it over in the URL fragment, which browsers never send to a
 * server, so it stays out of access logs; it is read once and taken out of the address.
 */
export function takePriorityToken() {
  const hash = location.hash.replace(/^#/, "");
  if (!hash) return "";
  let token = "";
  try {
    token = new URLSearchParams(hash).get("priority_token") || "";
  } catch (_) {
    token = "";
  }
  try {
    history.replaceState(history.state, "", location.pathname + location.search);
  } catch (_) {
    /* the fragment stays; it is never sent anywhere */
  }
  return token.length <= 2048 ? token : "";
}

/**
 * The host page (`origin`: its origin, "" when the panel is opened on its own). `post(msg)`
 * tells it something; `listen(onOpen, onRestore, onHidden, onLayout)` hears "open",
 * "restore", "hidden" (the panel was minimised) and "layout" (`narrow`: the loader shows the
 * panel full screen) from it; `page()` is the page the visitor is on as the loader last told
 * it (its data-send-page: "" for none), or null when no loader said (an old one, or the panel
 * on its own).
 */
export function hostPage(origin) {
  const embedded = !!origin && window.parent !== window;
  let page = null;
  return {
    page: () => page,
    embedded,
    post(msg) {
      if (!embedded) return;
      try {
        window.parent.postMessage(Object.assign({ source: "humandesk" }, msg), origin);
      } catch (_) {
        /* the host navigated away */
      }
    },
    listen(onOpen, onRestore, onHidden = () => {}, onLayout = () => {}) {
      window.addEventListener("message", (ev) => {
        if (!origin || ev.origin !== origin || ev.source !== window.parent) return;
        const data = ev.data;
        if (!data || typeof data !== "object" || data.source !== "humandesk") return;
        if (typeof data.page === "string") page = data.page;
        if (data.type === "open") onOpen();
        else if (data.type === "restore") onRestore(data.ticket);
        else if (data.type === "hidden") onHidden();
        else if (data.type === "layout") onLayout(data.narrow === true);
      });
    },
  };
}

/**
 * Where the ticket of our place in line is kept: this frame's sessionStorage, or, in browsers
 * that deny it to a third-party frame, the host page's (through the loader), with a copy in
 * memory. `restored()` resolves once we know whether the host kept one for us.
 */
export function ticketStore(key, host) {
  const storageOk = (() => {
    try {
      sessionStorage.setItem("hd-probe", "1");
      sessionStorage.removeItem("hd-probe");
      return true;
    } catch (_) {
      return false;
    }
  })();
  let memory = null;
  let waiter = null;
  return {
    get() {
      try {
        return storageOk ? sessionStorage.getItem(key) : memory;
      } catch (_) {
        return memory;
      }
    },
    set(value) {
      memory = value;
      if (storageOk) {
        try {
          if (value) sessionStorage.setItem(key, value);
          else sessionStorage.removeItem(key);
        } catch (_) {
          /* memory only */
        }
      } else host.post({ type: "ticket", ticket: value });
    },
    /** The host's answer to the loader's restore: the ticket it kept (storage denied only). */
    restore(ticket) {
      if (!storageOk && typeof ticket === "string" && ticket && !memory) memory = ticket;
      if (waiter) waiter();
      waiter = null;
    },
    restored() {
      if (storageOk || !host.embedded) return Promise.resolve();
      return new Promise((resolve) => {
        waiter = resolve;
        setTimeout(resolve, 1500);
      });
    },
  };
}
