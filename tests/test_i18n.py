"""The languages: every string a visitor or agent sees is in the catalogs, translated in every
shipped language with its plural forms and placeholders, and the catalogs are current with
the templates and browser modules (a new string fails here until it is translated)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from humandesk.web import STATIC_DIR, render
from humandesk.web.i18n import LANGUAGES, LOCALE_DIR, catalog, negotiate, widget_words

WEB = Path(__file__).resolve().parent.parent / "web"
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
#: Plural forms per language, as CLDR has them for whole numbers (Polish: one, few, many).
PLURAL_FORMS = {"es": 3, "pl": 3, "is": 2, "de": 2, "fr": 3}
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)[sd]")


def extracted(tmp_path: Path) -> set[str | tuple[str, ...]]:
    """The msgids Babel finds in the sources now."""
    pot = tmp_path / "now.pot"
    command = ["-q", "extract", "-F", "babel.cfg", "--omit-header", "-o", str(pot), "."]
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *command], cwd=WEB, check=True)
    with pot.open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


def po(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_string_is_translated(lang: str, tmp_path: Path) -> None:
    catalog_ = po(lang)
    assert catalog_.num_plurals == PLURAL_FORMS[lang]
    have = {m.id: m for m in catalog_ if m.id}
    missing = sorted(str(i) for i in extracted(tmp_path) if i not in have)
    assert not missing, f"{lang}: not in the catalog (run web/locale/update.sh): {missing[:5]}"
    untranslated = []
    for message in have.values():
        forms = message.string if isinstance(message.id, tuple) else [message.string]
        if (
            message.fuzzy
            or not all(forms)
            or len(forms) != (catalog_.num_plurals if isinstance(message.id, tuple) else 1)
        ):
            untranslated.append(message.id)
    assert not untranslated, f"{lang}: untranslated or fuzzy: {untranslated[:5]}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_placeholders_and_markup_safe(lang: str) -> None:
    """Every placeholder of the English is in the translation (and no other), and no
    translation brings quotes or angle brackets the English did not have (template strings
    are trusted markup inside attributes)."""
    for message in po(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.id, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for form in forms:
            got = set(PLACEHOLDER.findall(form))
            # a plural form may leave the count out ("one minute"), never bring a new one
            assert got <= wanted | set(PLACEHOLDER.findall(ids[0])), (lang, ids[0], form)
            assert wanted - {"{n}", "%(num)d"} <= got, (lang, ids[0], form)
            for risky in ('"', "<", ">"):
                assert risky not in form or risky in ids[0], (lang, ids[0], form)


def test_no_string_hides_from_babel() -> None:
    """Babel reads `_()` only with a string literal first, and not inside `${...}`."""
    bad = []
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text()
        for match in re.finditer(r"\b(_|ngettext)\((?!\s*[\"'])", text):
            before = text[max(0, match.start() - 9) : match.start()]
            if "function" in before or "const" in before:
                continue
            bad.append(f"{path.name}: {text[match.start() : match.start() + 40]!r}")
        for match in re.finditer(r"\$\{[^}]*\b_\(", text):
            bad.append(f"{path.name}: inside a template literal: {match.group(0)!r}")
    assert not bad, bad


def test_the_browser_catalog_and_the_launcher_words() -> None:
    pl = catalog("pl")
    assert pl["lang"] == "pl"
    # Polish plurals by CLDR category, as Intl.PluralRules("pl") names them.
    minutes = pl["plurals"]["{n} minute"]
    assert set(minutes) == {"one", "few", "many"}
    assert minutes["one"] != minutes["few"] != minutes["many"]
    assert "Talk to a person" in widget_words()["is"]
    assert catalog("en")["messages"] == {}


@pytest.mark.parametrize(
    ("chosen", "header", "default", "want"),
    [
        ("pl", "de-DE,de;q=0.9", "en", "pl"),
        ("", "is-IS,is;q=0.9,en;q=0.5", "en", "is"),
        (None, "ja,fr-CA;q=0.8,de;q=0.9", "en", "de"),
        ("xx", "ja", "es", "es"),
        (None, None, "en", "en"),
        (None, "*", "fr", "fr"),
    ],
)
def test_negotiation(chosen: str | None, header: str | None, default: str, want: str) -> None:
    assert negotiate(chosen, header, default) == want


def test_pages_say_their_language() -> None:
    html = render(
        "visitor.html",
        "is",
        queue="support",
        host_origin="",
        desk_name="x",
        brand_css="",
        brand_logo="",
    )
    assert '<html lang="is">' in html
    assert ">Join the line<" not in html  # (the inlined catalog names it as a key)
    assert '"lang": "is"' in html
