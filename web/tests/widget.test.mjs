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
    style: { setProperty() {} },
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
function shop(href, attrs = {}) {
  const posted = [];
  const frames = [];
  const script = element("script");
  script.src = DESK + "/widget.js";
  for (const [name, value] of Object.entries({ "data-queue": "support", ...attrs })) script.setAttribute(name, value);
  const body = element("body");
  body.appendChild = (child) => {
    if (child.tagName === "iframe") frames.push(child);
  };
  const media = { matches: false, addEventListener() {} };
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
    addEventListener() {},
    sessionStorage: { getItem: () => null, setItem() {}, removeItem() {} },
  };
  page.window = page;
  vm.createContext(page);
  vm.runInContext(SOURCE, page);
  page.HumanDesk.open();
  frames[0].fire("load");
  return { posted, frame: frames[0], page };
}

const pages = (posted) => posted.map(([msg]) => [msg.type, msg.page]);

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
