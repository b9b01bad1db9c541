"""The browser code as the desk serves it: ES modules without a build step, a stylesheet per
page, cache headers that keep module imports current, and the modules' own unit tests
(``node --test web/tests``), which need Debian's ``nodejs``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from humandesk.server.app import create_app
from humandesk.web import STATIC_DIR, asset_versions

from conftest import REPO, need
from helpers import desk_config

Client = TestClient[Any, Any]
WEB = REPO / "web"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']""", re.M)
LINKS = re.compile(r'<link rel="stylesheet" href="/static/([^"?]+)\?v=([0-9a-f]+)">')
MODULE = re.compile(r'<script type="module" src="/static/([^"?]+)\?v=([0-9a-f]+)"></script>')
# Rules of the console and the wallboard, which the visitor panel (a third party's iframe)
# must not download.
STAFF_SELECTORS = re.compile(
    r"\.(agent-|wb-|topbar|console|sidebar|offer-|wrapup|callback-item|callbacks-card|"
    r"segmented|login-card|landing|hero|steps|snippet|toast-area|queue-row)"
)


@pytest.fixture
async def client(aiohttp_client: Any, redis_url: str, desk_name: str, tmp_path: Path) -> Client:
    c: Client = await aiohttp_client(create_app(desk_config(redis_url, desk_name, tmp_path)))
    return c


def test_node_unit_tests_pass() -> None:
    """The pages' transition tables and pure helpers, under Node's own test runner."""
    node = shutil.which("node")
    need(node is not None, "node (Debian's nodejs)")
    assert node is not None
    tests = sorted(str(p.relative_to(REPO)) for p in (WEB / "tests").glob("*.test.mjs"))
    assert tests
    done = subprocess.run(
        [node, "--test", *tests], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_every_import_names_a_module_the_desk_serves() -> None:
    checked = 0
    for path in sorted(STATIC_DIR.rglob("*.js")):
        source = path.read_text()
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, path
        for spec in IMPORT.findall(source):
            assert spec.startswith("./") or spec.startswith("../"), (path, spec)
            target = (path.parent / spec).resolve().relative_to(STATIC_DIR.resolve())
            assert target.as_posix() in asset_versions(), (path, spec)
            checked += 1
    assert checked > 0, "no module imports at all"
    # The loader runs on other sites' pages as a classic script.
    widget = (STATIC_DIR / "widget.js").read_text()
    assert not IMPORT.search(widget) and "import(" not in widget


async def page_assets(client: Client, path: str) -> tuple[list[str], list[str]]:
    resp = await client.get(path)
    assert resp.status == 200
    html = await resp.text()
    assert "<script>" not in html and "<style" not in html
    for name, version in LINKS.findall(html) + MODULE.findall(html):
        assert asset_versions()[name] == version, name
    return [n for n, _ in LINKS.findall(html)], [n for n, _ in MODULE.findall(html)]


async def test_each_page_loads_its_own_stylesheets_and_module(client: Client) -> None:
    pages = {
        "/visitor": (["css/base.css", "css/call.css", "css/visitor.css"], ["visitor/main.js"]),
        "/agent": (
            ["css/base.css", "css/call.css", "css/staff.css", "css/agent.css"],
            ["agent/main.js"],
        ),
        "/wallboard": (
            ["css/base.css", "css/staff.css", "css/wallboard.css"],
            ["wallboard/main.js"],
        ),
        "/": (["css/base.css", "css/landing.css"], []),
    }
    for path, expected in pages.items():
        assert await page_assets(client, path) == expected, path
    visitor_css, _ = await page_assets(client, "/visitor")
    for name in visitor_css:
        rules = (STATIC_DIR / name).read_text()
        assert not STAFF_SELECTORS.search(rules), (name, STAFF_SELECTORS.search(rules))


async def test_modules_are_revalidated_and_pinned_urls_cached_for_good(client: Client) -> None:
    name = "visitor/machine.js"
    plain = await client.get(f"/static/{name}")
    assert plain.status == 200
    assert plain.content_type in ("text/javascript", "application/javascript")
    assert plain.headers["Cache-Control"] == "no-cache"
    etag = plain.headers["ETag"]
    again = await client.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert again.status == 304
    pinned = await client.get(f"/static/{name}?v={asset_versions()[name]}")
    assert pinned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = await client.get(f"/static/{name}?v=0000000000")
    assert stale.headers["Cache-Control"] == "no-cache"
    for path in ("/static/visitor", "/static/visitor/", "/static/package.json", "/static/tests"):
        assert (await client.get(path)).status == 404, path
