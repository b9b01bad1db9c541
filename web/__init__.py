"""Everything a person sees: Jinja2 templates and the static JS/CSS of the widget, the
visitor panel, the agent console and the demo shop."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@cache
def environment() -> jinja2.Environment:
    """The template environment; autoescaping is on for every template."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


@cache
def asset_versions() -> dict[str, str]:
    """A short content hash per static file, by its path under ``static/`` (``"css/base.css"``,
    ``"visitor/main.js"``), for cache-busting URLs."""
    return {
        path.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in sorted(STATIC_DIR.rglob("*"))
        if path.is_file()
    }


def asset(name: str) -> str:
    """The URL of a static file, changing whenever its content does. A page names its entry
    module this way; the modules it imports are named by plain relative paths, which the server
    has the browser revalidate (see ``static_file``)."""
    version = asset_versions().get(name, "0")
    return f"/static/{name}?v={version}"


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(asset=asset, **context)
