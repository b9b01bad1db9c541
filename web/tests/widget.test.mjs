// The embed loader (web/static/widget.js), a classic script on the shop's page, run in a small
// stand-in for that page: what it tells the panel of the page the visitor is on.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../static/widget.js", import.meta.url), "utf8");
const DESK = "https://desk.example";
const PAGE = "https://shop.example/shoes/red?size=42&email=ada%40example.com#reviews";

/** An element with what the loader uses of one. */
function element(tag) {
  const listeners = {};
  return {
    tagName: tag,
    style: {
      props: {},
      setProperty(name, value) {
        this.props[name] = value;
      },
    },
    attrs: {},
    listeners,
    setAttribute(name, value) {
      this.attrs[name] = String(value);
    },
    getAttribute(name) {
      return name in this.attrs ? this.attrs[name] : null;
    },
    append() {},
    appendChild() {},
    addEventListener(type, fn) {
      (listeners[type] ||= []).push(fn);
    },
    fire(type) {
      for (const fn of listeners[type] || []) fn({});
    },
    focus() {},
    matches: () => false,
  };
}

/**
 * Runs the loader on a page at `href` with these attributes on its script tag; returns the
 * messages it posts to the panel (with their target origins) and the page's HumanDesk API.
 */
function shop(href, attrs = {}, { narrow = false } = {}) {
  const posted = [];
  const frames = [];
  const script = element("script");
  script.src = DESK + "/widget.js";
  for (const [name, value] of Object.entries({ "data-queue": "support", ...attrs })) script.setAttribute(name, value);
  const body = element("body");
  body.appendChild = (child) => {
    if (child.tagName === "iframe") frames.push(child);
    if (child.tagName === "button") body.launcher = child;
  };
  const media = { matches: narrow, addEventListener() {} };
  const heard = [];
  const url = new URL(href);
  const page = {
    location: { href: url.href, origin: url.origin, pathname: url.pathname, search: url.search, hash: url.hash },
    URL,
    document: {
      currentScript: script,
      body,
      createElement(tag) {
        const node = element(tag);
        if (tag === "iframe") node.contentWindow = { postMessage: (msg, origin) => posted.push([msg, origin]) };
        return node;
      },
      createElementNS: (_ns, tag) => element(tag),
      querySelector: () => null,
      addEventListener() {},
    },
    matchMedia: () => media,
    addEventListener(type, fn) {
      if (type === "message") heard.push(fn);
    },
    sessionStorage: { getItem: () => null, setItem() {}, removeItem() {} },
  };
  page.window = page;
  vm.createContext(page);
  vm.runInContext(SOURCE, page);
  page.HumanDesk.open();
  frames[0].fire("load");
  const frame = frames[0];
  /** The panel in the frame tells the loader something (from the desk's origin). */
  const fromPanel = (msg) => {
    for (const fn of heard) fn({ origin: DESK, source: frame.contentWindow, data: { source: "humandesk", ...msg } });
  };
  return { posted, frame, page, fromPanel, launcher: body.launcher };
}

const pages = (posted) => posted.filter(([msg]) => msg.type !== "layout").map(([msg]) => [msg.type, msg.page]);

describe("data-send-page: what the panel is told of the page the visitor is on", () => {
  test("by default the path: the address without its query string or fragment", () => {
    const { posted } = shop(PAGE);
    // Nothing before the panel has loaded; then its restore, and the opening that waited.
    assert.deepEqual(pages(posted), [
      ["restore", "https://shop.example/shoes/red"],
      ["open", "https://shop.example/shoes/red"],
    ]);
    for (const [, origin] of posted) assert.equal(origin, DESK); // never to any other origin
  });

  test("full: the whole address; none: nothing; anything else: the path", () => {
    assert.deepEqual(pages(shop(PAGE, { "data-send-page": "full" }).posted).map(([, p]) => p), [PAGE, PAGE]);
    assert.deepEqual(pages(shop(PAGE, { "data-send-page": "none" }).posted).map(([, p]) => p), ["", ""]);
    assert.deepEqual(pages(shop(PAGE, { "data-send-page": "FULL!" }).posted).map(([, p]) => p), [
      "https://shop.example/shoes/red",
      "https://shop.example/shoes/red",
    ]);
  });

  test("read at each opening, so a single-page shop's new route counts; never in the panel's URL", () => {
    const { posted, frame, page } = shop(PAGE);
    page.HumanDesk.close();
    page.location.pathname = "/checkout";
    page.location.href = "https://shop.example/checkout?step=2";
    page.HumanDesk.open();
    assert.deepEqual({ ...posted.at(-1)[0] }, { source: "humandesk", type: "open", page: "https://shop.example/checkout" });
    assert.doesNotMatch(frame.src, /shoes|page=/);
  });
});

describe("the call: screen sharing, a phone on its side, an enlarged call", () => {
  test("the frame may share the screen (display-capture), with camera, microphone and sound", () => {
    const { frame } = shop(PAGE);
    assert.deepEqual(frame.attrs.allow.split("; ").sort(), ["autoplay", "camera", "display-capture", "microphone"]);
  });

  test("the panel is told whether it is shown full screen: on a phone, upright or on its side", () => {
    const wide = shop(PAGE).posted.filter(([msg]) => msg.type === "layout");
    assert.deepEqual(wide.map(([msg, origin]) => [msg.narrow, origin]), [[false, DESK]]);
    const phone = shop(PAGE, {}, { narrow: true });
    assert.deepEqual(phone.posted.filter(([m]) => m.type === "layout").map(([m]) => m.narrow), [true]);
    // Full screen, and the launcher (which it would cover) out of the way.
    assert.equal(phone.frame.style.props.width, "100%");
    assert.equal(phone.frame.style.props.height, "100%");
    assert.equal(phone.launcher.style.props.display, "none");
  });

  test("Enlarge in a call makes the frame large and hides the launcher; smaller, or the call's end, undoes it", () => {
    const { frame, fromPanel, launcher } = shop(PAGE);
    assert.equal(frame.style.props.width, "380px");
    fromPanel({ type: "size", large: true }); // not in a call: nothing to enlarge
    assert.equal(frame.style.props.width, "380px");
    fromPanel({ type: "state", phase: "in-call" });
    fromPanel({ type: "size", large: true });
    assert.equal(frame.style.props.width, "calc(100vw - 32px)");
    assert.equal(frame.style.props.height, "calc(100vh - 32px)");
    assert.equal(launcher.style.props.display, "none");
    fromPanel({ type: "size", large: false });
    assert.equal(frame.style.props.width, "380px");
    assert.equal(launcher.style.props.display, "inline-flex");
    fromPanel({ type: "size", large: true });
    fromPanel({ type: "state", phase: "ended" });
    assert.equal(frame.style.props.width, "380px");
    assert.equal(launcher.style.props.display, "inline-flex");
    // A phone ignores it: the panel is full screen already.
    const phone = shop(PAGE, {}, { narrow: true });
    phone.fromPanel({ type: "state", phase: "in-call" });
    phone.fromPanel({ type: "size", large: true });
    assert.equal(phone.frame.style.props.width, "100%");
  });
});
