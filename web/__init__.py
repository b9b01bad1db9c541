"""Everything a person sees: Jinja2 templates and the static JS/CSS of the widget, the
visitor panel, the agent console and the demo shop."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import jinja2

from .i18n import DEFAULT_LANGUAGE, catalog, language_names, translations

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translations(context.get("lang", DEFAULT_LANGUAGE)).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(context.get("lang", DEFAULT_LANGUAGE)).ngettext(singular, plural, n)


@cache
def environment() -> jinja2.Environment:
    """The template environment; autoescaping is on for every template. Templates translate
    with ``_()`` / ``{% trans %}`` into the ``lang`` they are rendered with."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )
    return env


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


def render(template: str, lang: str = DEFAULT_LANGUAGE, **context: object) -> str:
    """``template`` in ``lang``, with the browser modules' part of its catalog
    (``js_catalog``) and the shipped languages (``languages``) at hand."""
    return (
        environment()
        .get_template(template)
        .render(
            asset=asset,
            lang=lang,
            js_catalog=catalog(lang),
            languages=language_names(),
            **context,
        )
    )
