/* humandesk embed loader.
 *   <script src="https://desk.example/widget.js" data-queue="support" async></script>
 * Optional: data-label="Talk to a person", data-side="right" | "left", data-lang="pl" (the
 * launcher's and panel's language; default: the browser's languages, else the desk's),
 * data-priority-token="<JWT>" (the host site vouches for this visitor's priority; see docs/protocol.md),
 * data-send-page="path" | "full" | "none" (what the agent is told of the page the visitor is on:
 * its address without query string and fragment, the whole address, or nothing; default path).
 *
 * Runs on someone else's page under their CSP, which allows our origin only in script-src and
 * frame-src. So: no <style> elements, no style attributes in markup, no network calls from here.
 * Everything is styled through the CSSOM (el.style.setProperty), and all talk with the panel
 * goes through postMessage with an explicit origin.
 */
(function () {
  "use strict";

  if (window.HumanDesk) return; // included twice

  const script = document.currentScript || document.querySelector('script[src*="/widget.js"]');
  if (!script || !script.src) return;

  let deskUrl;
  try {
    deskUrl = new URL(script.src, location.href);
  } catch (_) {
    return;
  }
  const deskOrigin = deskUrl.origin;
  // The desk may live under a path prefix; the loader sits at <prefix>/widget.js or <prefix>/static/widget.js.
  const deskBase = deskOrigin + deskUrl.pathname.replace(/\/(?:static\/)?widget\.js$/, "");

  // The launcher's words in every shipped language, and the desk's default language: the desk
  // fills both in when it serves this file (from the catalogs the panel uses too).
  const WORDS = {};
  const DESK_LANGUAGE = "en";
  const LANG = [script.getAttribute("data-lang") || "", ...((window.navigator && window.navigator.languages) || [])]
    .map((tag) => String(tag).toLowerCase().split(/[-_]/)[0])
    .concat(DESK_LANGUAGE)
    .find((tag) => tag === "en" || Object.prototype.hasOwnProperty.call(WORDS, tag)) || "en";
  const _ = (msgid) => (WORDS[LANG] && WORDS[LANG][msgid]) || msgid;

  const queue = script.getAttribute("data-queue") || "support";
  const defaultLabel = script.getAttribute("data-label") || _("Talk to a person");
  const side = script.getAttribute("data-side") === "left" ? "left" : "right";
  // Handed to the panel in the URL fragment: browsers never send a fragment to a server, so the
  // token stays out of the desk's access logs and out of Referer headers.
  const priorityToken = (script.getAttribute("data-priority-token") || "").trim();
  const sendPage = script.getAttribute("data-send-page");
  const PAGE_MODE = sendPage === "full" || sendPage === "none" ? sendPage : "path";

  /**
   * The page the visitor is on, as the shop lets the agent see it (data-send-page). Read at
   * each hand-over, so a single-page shop's route changes count. A query string or fragment
   * may hold a visitor's search, an e-mail address or a token: "path" leaves them out.
   */
  function pageAddress() {
    if (PAGE_MODE === "none") return "";
    if (PAGE_MODE === "full") return location.href;
    return location.origin + location.pathname;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  const ACCENT = "#0b6e63";
  const ACCENT_HOVER = "#095c53";
  const ON_ACCENT = "#ffffff"; // the desk serves this file with its brand's colours in these three
  const Z = "2147483000";
  // A phone, upright or on its side (667 x 375): the panel takes the whole screen.
  const NARROW = window.matchMedia("(max-width: 519px), (max-height: 519px)");
  const REDUCED_MOTION = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  const PHASE_LABEL = {
    connecting: _("You're in line"),
    waiting: _("You're in line"),
    "call-connecting": _("Return to call"),
    "in-call": _("Return to call"),
  };

  const CALL_PHASE = { "call-connecting": true, "in-call": true };

  // The host page's own sessionStorage (we run first-party here): is a conversation under way,
  // and, for panels denied third-party storage, their ticket.
  const PHASE_KEY = "humandesk-phase-" + queue;
  const TICKET_KEY = "humandesk-ticket-" + queue;
  const store = {
    get(key) {
      try {
        return window.sessionStorage.getItem(key);
      } catch (_) {
        return null;
      }
    },
    set(key, value) {
      try {
        if (value) window.sessionStorage.setItem(key, value);
        else window.sessionStorage.removeItem(key);
      } catch (_) {
        /* storage disabled: a reload then loses the conversation */
      }
    },
  };

  let launcher = null;
  let labelEl = null;
  let iframe = null;
  let panelLoaded = false; // before its first load the frame holds about:blank, which we must not address
  let open = false;
  let phase = "";
  let unread = 0; // chat lines the panel got while hidden
  let badge = null;
  let large = false; // the visitor enlarged the call (desktop only; a phone shows it full screen)

  /** Inline styles with !important so host-page rules such as `button { ... }` cannot reach in. */
  function css(el, props) {
    for (const name of Object.keys(props)) el.style.setProperty(name, props[name], "important");
  }

  function icon() {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "22");
    svg.setAttribute("height", "22");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const shapes = [
      ["path", { d: "M15 10l5.5-3.5v11L15 14" }],
      ["rect", { x: "2.5", y: "5.5", width: "12.5", height: "13", rx: "2.5" }],
    ];
    for (const [tag, attrs] of shapes) {
      const node = document.createElementNS(SVG_NS, tag);
      for (const k of Object.keys(attrs)) node.setAttribute(k, attrs[k]);
      node.setAttribute("fill", "none");
      node.setAttribute("stroke", "currentColor");
      node.setAttribute("stroke-width", "2");
      node.setAttribute("stroke-linejoin", "round");
      svg.appendChild(node);
    }
    css(svg, { display: "block", "flex-shrink": "0", width: "22px", height: "22px" });
    return svg;
  }

  function buildLauncher() {
    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.setAttribute("data-testid", "hd-launcher");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "humandesk-panel");
    labelEl = document.createElement("span");
    labelEl.textContent = defaultLabel;
    badge = document.createElement("span");
    badge.setAttribute("data-testid", "hd-unread");
    badge.setAttribute("aria-label", _("unread messages"));
    css(badge, {
      display: "none",
      "min-width": "20px",
      height: "20px",
      padding: "0 6px",
      "box-sizing": "border-box",
      "border-radius": "999px",
      background: "#dc2626",
      color: "#ffffff",
      font: "700 12px/20px system-ui, sans-serif",
      "text-align": "center",
    });
    launcher.append(icon(), labelEl, badge);
    css(launcher, {
      position: "fixed",
      bottom: "20px",
      [side]: "20px",
      [side === "right" ? "left" : "right"]: "auto",
      top: "auto",
      "z-index": Z,
      display: "inline-flex",
      "align-items": "center",
      gap: "10px",
      margin: "0",
      padding: "12px 20px 12px 16px",
      "min-height": "48px",
      "max-width": "calc(100vw - 40px)",
      "box-sizing": "border-box",
      border: "0",
      "border-radius": "999px",
      background: ACCENT,
      color: ON_ACCENT,
      "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
      "font-size": "15px",
      "font-weight": "600",
      "font-style": "normal",
      "text-transform": "none",
      "text-decoration": "none",
      "white-space": "nowrap",
      cursor: "pointer",
      outline: "none",
      "box-shadow": "0 8px 24px rgba(15, 23, 42, 0.22), 0 2px 6px rgba(15, 23, 42, 0.16)",
      transition: REDUCED_MOTION ? "none" : "background-color 150ms ease",
      "-webkit-tap-highlight-color": "transparent",
    });
    // Text spacing without !important: a visitor's own spacing styles (WCAG 1.4.12) must win.
    launcher.style.lineHeight = "1.2";
    launcher.style.letterSpacing = "normal";
    css(labelEl, { overflow: "hidden", "text-overflow": "ellipsis", color: "inherit", font: "inherit" });

    launcher.addEventListener("click", () => toggle());
    launcher.addEventListener("mouseenter", () => css(launcher, { background: ACCENT_HOVER }));
    launcher.addEventListener("mouseleave", () => css(launcher, { background: ACCENT }));
    // Pseudo-classes cannot be written through the CSSOM, so draw the focus ring by hand.
    launcher.addEventListener("focus", () => {
      let visible = true;
      try {
        visible = launcher.matches(":focus-visible");
      } catch (_) {
        /* old browser: always show it */
      }
      if (visible) css(launcher, { "box-shadow": "0 0 0 3px #ffffff, 0 0 0 6px #1e3a8a" });
    });
    launcher.addEventListener("blur", () =>
      css(launcher, { "box-shadow": "0 8px 24px rgba(15, 23, 42, 0.22), 0 2px 6px rgba(15, 23, 42, 0.16)" })
    );
    document.body.appendChild(launcher);
  }

  function buildIframe() {
    iframe = document.createElement("iframe");
    iframe.id = "humandesk-panel";
    iframe.title = _("Talk to a person");
    // display-capture: the visitor may share their screen with the agent during a call.
    iframe.setAttribute("allow", "camera; microphone; autoplay; display-capture");
    iframe.setAttribute("data-testid", "hd-frame");
    iframe.src =
      deskBase +
      "/visitor?queue=" +
      encodeURIComponent(queue) +
      "&host=" +
      encodeURIComponent(location.origin) +
      "&lang=" +
      encodeURIComponent(LANG) +
      (priorityToken ? "#priority_token=" + encodeURIComponent(priorityToken) : "");
    css(iframe, {
      position: "fixed",
      "z-index": Z,
      border: "0",
      margin: "0",
      padding: "0",
      background: "#ffffff",
      "color-scheme": "normal",
      "box-sizing": "border-box",
    });
    iframe.addEventListener("load", () => {
      panelLoaded = true;
      tellPanel({ type: "restore", ticket: store.get(TICKET_KEY), page: pageAddress() });
      tellPanel({ type: "layout", narrow: NARROW.matches });
      if (open) tellPanel({ type: "open", page: pageAddress() });
    });
    document.body.appendChild(iframe);
  }

  function layout() {
    if (!iframe) return;
    const narrow = NARROW.matches;
    if (large && !narrow) {
      // Enlarged: most of the window, with a margin that keeps the page's edges in sight.
      css(iframe, {
        display: open ? "block" : "none",
        top: "16px",
        bottom: "16px",
        left: "16px",
        right: "16px",
        width: "calc(100vw - 32px)",
        height: "calc(100vh - 32px)",
        "max-width": "none",
        "max-height": "none",
        "border-radius": "16px",
        "box-shadow": "0 18px 48px rgba(15, 23, 42, 0.28), 0 4px 12px rgba(15, 23, 42, 0.14)",
      });
      css(launcher, { display: open ? "none" : "inline-flex" });
      return;
    }
    css(iframe, {
      display: open ? "block" : "none",
      top: narrow ? "0" : "auto",
      bottom: narrow ? "0" : "88px",
      left: narrow ? "0" : side === "left" ? "20px" : "auto",
      right: narrow ? "0" : side === "right" ? "20px" : "auto",
      width: narrow ? "100%" : "380px",
      height: narrow ? "100%" : "620px",
      "max-width": narrow ? "none" : "calc(100vw - 40px)",
      "max-height": narrow ? "none" : "calc(100vh - 108px)",
      "border-radius": narrow ? "0" : "16px",
      "box-shadow": narrow ? "none" : "0 18px 48px rgba(15, 23, 42, 0.28), 0 4px 12px rgba(15, 23, 42, 0.14)",
    });
    // Full screen on a phone covers the launcher; take it out of the tab order too.
    css(launcher, { display: open && narrow ? "none" : "inline-flex" });
  }

  function render() {
    launcher.setAttribute("aria-expanded", String(open));
    labelEl.textContent = open ? defaultLabel : PHASE_LABEL[phase] || defaultLabel;
    const count = open ? 0 : unread;
    badge.textContent = count ? String(count) : "";
    badge.setAttribute("data-count", String(count));
    css(badge, { display: count ? "inline-block" : "none" });
    layout();
  }

  function tellPanel(msg) {
    if (panelLoaded && iframe.contentWindow) {
      iframe.contentWindow.postMessage(Object.assign({ source: "humandesk" }, msg), deskOrigin);
    }
  }

  function show(takeFocus = true) {
    if (!iframe) buildIframe();
    open = true;
    render();
    tellPanel({ type: "open", page: pageAddress() });
    if (takeFocus) iframe.focus();
  }

  function hide(focusLauncher) {
    open = false;
    render();
    tellPanel({ type: "hidden" });
    if (focusLauncher) launcher.focus();
  }

  function toggle() {
    if (open) hide(false);
    else show();
  }

  window.addEventListener("message", (ev) => {
    if (ev.origin !== deskOrigin || !iframe || ev.source !== iframe.contentWindow) return;
    const data = ev.data;
    if (!data || typeof data !== "object" || data.source !== "humandesk") return;
    if (data.type === "minimize") hide(true);
    else if (data.type === "size") {
      large = data.large === true && !!CALL_PHASE[phase];
      layout();
    } else if (data.type === "state" && typeof data.phase === "string") {
      phase = data.phase;
      if (!CALL_PHASE[phase]) large = false; // the call is over: the usual size again
      store.set(PHASE_KEY, PHASE_LABEL[phase] ? phase : null);
      render();
    } else if (data.type === "unread" && typeof data.count === "number") {
      unread = Math.max(0, Math.min(999, Math.floor(data.count)));
      render();
    } else if (data.type === "ticket") {
      store.set(TICKET_KEY, typeof data.ticket === "string" ? data.ticket : null);
    }
  });

  function init() {
    buildLauncher();
    const onChange = () => {
      layout();
      tellPanel({ type: "layout", narrow: NARROW.matches });
    };
    if (NARROW.addEventListener) NARROW.addEventListener("change", onChange);
    else if (NARROW.addListener) NARROW.addListener(onChange);
    render();
    // The visitor reloaded or moved to another page mid-conversation: bring the panel straight back
    // so it can resume before the desk gives the place away.
    const lastPhase = store.get(PHASE_KEY);
    if (lastPhase && PHASE_LABEL[lastPhase]) {
      phase = lastPhase;
      show(false);
    }
  }

  // A tiny API for host pages that want their own "Talk to us" links.
  window.HumanDesk = {
    open: () => launcher && show(),
    close: () => launcher && hide(false),
    toggle: () => launcher && toggle(),
  };

  if (document.body) init();
  else document.addEventListener("DOMContentLoaded", init, { once: true });
})();
