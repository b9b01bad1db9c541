"""The languages of what a visitor or an agent sees: one Babel catalog per language in
``web/locale/<lang>/LC_MESSAGES/messages.po``, extracted from the templates and the browser
modules alike (``web/babel.cfg``). The templates translate through Jinja2's i18n extension;
the browser modules get the part of the catalog they use inlined in the page (``catalog``),
plural forms keyed by CLDR category so the page picks one with ``Intl.PluralRules``.

Which language: ``negotiate`` takes an explicit choice (the embed script's ``data-lang``, the
agent's), else the browser's ``Accept-Language``, else the desk's default.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCALE_DIR",
    "catalog",
    "language_names",
    "negotiate",
    "translations",
    "widget_words",
]

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"
#: The shipped languages; English is the source language and has no catalog.
LANGUAGES = ("en", "es", "pl", "is", "de", "fr")


@cache
def _po(lang: str) -> Catalog | None:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT_LANGUAGE or not path.exists():
        return None
    with path.open("rb") as f:
        return read_po(f, locale=lang)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The gettext translations of ``lang`` (English: the identity)."""
    po = _po(lang)
    if po is None:
        return gettext.NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, po, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _categories(lang: str, po: Catalog) -> dict[str, int]:
    """Which gettext plural index each CLDR plural category of ``lang`` uses (integers)."""
    rule = Locale.parse(lang).plural_form
    index = gettext.c2py(po.plural_expr)
    found: dict[str, int] = {}
    for n in range(0, 1000):
        found.setdefault(rule(n), index(n))
    return found


@cache
def catalog(lang: str) -> dict[str, Any]:
    """What the browser modules need of ``lang``: ``{"lang", "messages": {msgid: text},
    "plurals": {singular msgid: {category: text}}}``, only for the messages they use."""
    po = _po(lang)
    out: dict[str, Any] = {"lang": lang, "messages": {}, "plurals": {}}
    if po is None:
        return out
    categories = _categories(lang, po)
    for message in po:
        if not message.id or message.fuzzy:
            continue
        if not any(path.endswith(".js") for path, _line in message.locations):
            continue
        if isinstance(message.id, tuple):
            forms = list(message.string or ())
            if not forms or not all(forms):
                continue
            out["plurals"][message.id[0]] = {cat: forms[i] for cat, i in categories.items()}
        elif message.string:
            out["messages"][message.id] = message.string
    return out


@cache
def widget_words() -> dict[str, dict[str, str]]:
    """The embed script's words in every shipped language but English: ``{lang: {msgid:
    text}}`` (it runs on the shop's page, so it carries them all and picks one there)."""
    words: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        po = _po(lang)
        if po is None:
            continue
        words[lang] = {
            str(m.id): str(m.string)
            for m in po
            if m.id
            and m.string
            and not m.fuzzy
            and isinstance(m.id, str)
            and any(path.endswith("widget.js") for path, _line in m.locations)
        }
    return words


def _accepted(header: str) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, i, tag.strip().lower()))
    return [tag for _q, _i, tag in sorted(ranked)]


def _shipped(tag: str) -> str | None:
    base = tag.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def negotiate(chosen: str | None, accept_language: str | None, default: str) -> str:
    """The language to show: ``chosen`` if shipped, else the first shipped one the browser
    accepts, else ``default``."""
    for tag in [chosen or "", *_accepted(accept_language or "")]:
        lang = _shipped(tag)
        if lang:
            return lang
    return _shipped(default) or DEFAULT_LANGUAGE


def language_names() -> Mapping[str, str]:
    """Each shipped language in its own words ("polski", "íslenska"), for a chooser."""
    names = {lang: Locale.parse(lang).get_display_name(lang) or lang for lang in LANGUAGES}
    return {lang: name[:1].upper() + name[1:] for lang, name in names.items()}
