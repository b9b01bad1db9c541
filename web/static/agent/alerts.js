/* How the console calls the agent to an offer outside its own page: the tab's title and icon,
 * and a desktop notification (the Notification API). The transition table decides when
 * (steps.js alertOffer, quietOffer); this module does it to the document. */

import { _ } from "../shared/i18n.js";

const BLINK_MS = 1000;
/** The badge icon of a pending offer: a red disc with its count (an SVG, no file to fetch). */
const badge = (count) =>
  "data:image/svg+xml," +
  encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#c62828"/>' +
      `<text x="16" y="22" font-family="sans-serif" font-size="18" font-weight="700" fill="#fff" text-anchor="middle">${count}</text></svg>`
  );

/** What the browser says of desktop notifications: `default`, `granted`, `denied` or `unsupported`. */
export function notificationPermission() {
  return typeof Notification === "function" ? Notification.permission : "unsupported";
}

/**
 * `attention({count, title})` alternates the tab's title between the offer and the page's own
 * (both after "(count)") and shows a badge icon; `quiet()` puts both back. `notify(...)`
 * shows a desktop notification (a click on it brings the console forward), `close()` takes it
 * away; `ask(onAnswer)` asks for the permission (in a user gesture). `unread(count)` puts the
 * count of the chat's unread lines in front of the title while no offer alternates it.
 */
export function pageAlerts(doc = document) {
  const baseTitle = doc.title;
  let icon = doc.querySelector('link[rel="icon"]');
  if (!icon) {
    icon = doc.createElement("link");
    icon.rel = "icon";
    doc.head.appendChild(icon);
  }
  const baseIcon = icon.getAttribute("href") || "data:,";
  let blink = null;
  let shown = null; // the desktop notification on screen

  function quiet() {
    clearInterval(blink);
    blink = null;
    doc.title = baseTitle;
    icon.setAttribute("href", baseIcon);
    doc.body.dataset.attention = "";
  }

  function close() {
    if (!shown) return;
    try {
      shown.close();
    } catch (_err) {
      /* gone already */
    }
    shown = null;
  }

  return {
    attention({ count, title }) {
      quiet();
      const titles = [`(${count}) ${title}`, `(${count}) ${baseTitle}`];
      let turn = 0;
      doc.title = titles[0];
      blink = setInterval(() => (doc.title = titles[++turn % 2]), BLINK_MS);
      icon.setAttribute("href", badge(count));
      doc.body.dataset.attention = titles[0];
    },
    quiet,
    unread(count) {
      if (blink) return; // an offer's title wins; quiet() puts the page's own back
      doc.title = count ? _("({count}) New message · {title}", { count, title: baseTitle }) : baseTitle;
    },
    notify({ tag, title, body }) {
      close();
      try {
        const n = new Notification(title, { body, tag, requireInteraction: true });
        n.onclick = () => {
          window.focus(); // the console's tab and window come forward
          n.close();
        };
        shown = n;
      } catch (_err) {
        /* a browser that allows them only from a service worker: the title and icon remain */
      }
    },
    close,
    ask(onAnswer) {
      if (typeof Notification !== "function") return onAnswer("unsupported");
      let answered = false;
      const answer = (permission) => {
        if (!answered) onAnswer(permission || notificationPermission());
        answered = true;
      };
      try {
        const asked = Notification.requestPermission(answer); // old Safari: a callback
        if (asked && typeof asked.then === "function") asked.then(answer, () => answer());
      } catch (_err) {
        answer();
      }
    },
  };
}
