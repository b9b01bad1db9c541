"""The browser code as the desk serves it: a stylesheet per page, and cache headers that keep
what a page imports by a plain relative path current."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from humandesk.server.app import create_app
from humandesk.web import STATIC_DIR, asset_versions

from helpers import desk_config

Client = TestClient[Any, Any]
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


async def page_assets(client: Client, path: str) -> tuple[list[str], list[str]]:
    resp = await client.get(path)
    assert resp.status == 200
    html = await resp.text()
    assert "<script>" not in html and "<style" not in html
    for name, version in LINKS.findall(html) + MODULE.findall(html):
        assert asset_versions()[name] == version, name
    return [n for n, _ in LINKS.findall(html)], [n for n, _ in MODULE.findall(html)]


async def test_each_page_loads_its_own_stylesheets(client: Client) -> None:
    pages = {
        "/visitor": ["css/base.css", "css/call.css", "css/visitor.css"],
        "/agent": ["css/base.css", "css/call.css", "css/staff.css", "css/agent.css"],
        "/wallboard": ["css/base.css", "css/staff.css", "css/wallboard.css"],
        "/": ["css/base.css", "css/landing.css"],
    }
    for path, expected in pages.items():
        assert (await page_assets(client, path))[0] == expected, path
    visitor_css, _ = await page_assets(client, "/visitor")
    for name in visitor_css:
        rules = (STATIC_DIR / name).read_text()
        assert not STAFF_SELECTORS.search(rules), (name, STAFF_SELECTORS.search(rules))


async def test_static_files_are_revalidated_and_pinned_urls_cached_for_good(client: Client) -> None:
    name = "css/visitor.css"
    plain = await client.get(f"/static/{name}")
    assert plain.status == 200
    assert plain.content_type == "text/css"
    assert plain.headers["Cache-Control"] == "no-cache"
    etag = plain.headers["ETag"]
    again = await client.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert again.status == 304
    pinned = await client.get(f"/static/{name}?v={asset_versions()[name]}")
    assert pinned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = await client.get(f"/static/{name}?v=0000000000")
    assert stale.headers["Cache-Control"] == "no-cache"
    for path in ("/static/css", "/static/css/", "/static/css/x.css"):
        assert (await client.get(path)).status == 404, path
