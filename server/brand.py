"""The shop's brand on the desk's pages: its name, accent colour and logo.

Set in the TOML file (``HUMANDESK_CONFIG``) under ``[brand]`` (``name``, ``color``, ``logo``)
or with ``HUMANDESK_BRAND_NAME`` / ``HUMANDESK_BRAND_COLOR`` / ``HUMANDESK_BRAND_LOGO`` (the
variables win). The colour is checked for contrast (WCAG 2): text on the accent is white when
white reaches 4.5:1 on it, else near-black, so a light accent gets dark text; where the
accent is itself text (links, headings) a darker shade of it that reaches 4.5:1 on white is
used, and a lighter one on the dark theme's surfaces. The logo is an image file the desk
serves itself (``/brand/logo``), so the pages' CSP needs no other origin.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["LOGO_TYPES", "MAX_LOGO_BYTES", "Brand", "BrandError", "contrast", "load_brand"]

DEFAULT_NAME: Final = "humandesk"
MAX_NAME_CHARS: Final = 60
MAX_LOGO_BYTES: Final = 256 * 1024
LOGO_TYPES: Final = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
WHITE: Final = (255, 255, 255)
INK: Final = (17, 17, 17)  # the dark text on a light accent
DARK_SURFACE: Final = (23, 33, 42)  # the dark theme's --surface


class BrandError(ValueError):
    """A brand setting that cannot be used; the message names it."""


Rgb = tuple[int, int, int]


def parse_color(text: str) -> Rgb:
    value = text.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    try:
        if len(value) != 6:
            raise ValueError
        return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
    except ValueError:
        raise BrandError(f"brand color {text!r} is not a colour like #0b6e63") from None


def _luminance(rgb: Rgb) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Rgb, b: Rgb) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _mix(a: Rgb, b: Rgb, share: float) -> Rgb:
    """``a`` moved ``share`` (0-1) of the way towards ``b``."""
    return (
        round(a[0] + (b[0] - a[0]) * share),
        round(a[1] + (b[1] - a[1]) * share),
        round(a[2] + (b[2] - a[2]) * share),
    )


def _towards(color: Rgb, target: Rgb, against: Rgb, ratio: float = 4.5) -> Rgb:
    """The least step of ``color`` towards ``target`` that reaches ``ratio`` on ``against``."""
    for step in range(21):
        shade = _mix(color, target, step / 20)
        if contrast(shade, against) >= ratio:
            return shade
    return target


def _hex(rgb: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class Brand:
    name: str = DEFAULT_NAME
    color: str = ""  # "#rrggbb", or "" for the desk's own colours
    logo: Path | None = None

    @property
    def palette(self) -> dict[str, str]:
        """The CSS custom properties of the accent (empty without a colour)."""
        if not self.color:
            return {}
        accent = parse_color(self.color)
        on_accent = WHITE if contrast(WHITE, accent) >= 4.5 else INK
        hover = _mix(accent, (0, 0, 0) if on_accent == WHITE else WHITE, 0.15)
        return {
            "--accent": _hex(accent),
            "--accent-hover": _hex(hover),
            "--accent-soft": _hex(_mix(accent, WHITE, 0.88)),
            "--on-accent": _hex(on_accent),
            "--accent-text": _hex(_towards(accent, (0, 0, 0), WHITE)),
            "--accent-text-dark": _hex(_towards(accent, WHITE, DARK_SURFACE)),
        }

    def stylesheet(self) -> str:
        """``/brand.css``: the palette over base.css's, in both themes."""
        palette = self.palette
        if not palette:
            return ""
        light = "".join(f"  {k}: {v};\n" for k, v in palette.items() if k != "--accent-text-dark")
        dark = palette["--accent-text-dark"]
        return (
            f":root {{\n{light}}}\n"
            "@media (prefers-color-scheme: dark) {\n"
            f"  :root {{\n    --accent: {palette['--accent']};\n"
            f"    --accent-hover: {palette['--accent-hover']};\n"
            f"    --on-accent: {palette['--on-accent']};\n"
            f"    --accent-soft: #1f2b36;\n    --accent-text: {dark};\n  }}\n}}\n"
        )

    @property
    def version(self) -> str:
        """A short hash of what the pages show of the brand (for cache-busting URLs)."""
        logo = self.logo.read_bytes() if self.logo else b""
        data = f"{self.name}|{self.color}".encode() + logo
        return hashlib.sha256(data).hexdigest()[:12]


def load_brand(env: Mapping[str, str], config_file: Path | None) -> Brand:
    """The brand from ``[brand]`` of the TOML file and the variables (which win)."""
    settings: dict[str, object] = {}
    if config_file is not None and config_file.exists():
        with config_file.open("rb") as f:
            table = tomllib.load(f).get("brand", {})
        if not isinstance(table, dict):
            raise BrandError("[brand] must be a table")
        unknown = set(table) - {"name", "color", "logo"}
        if unknown:
            raise BrandError(f"unknown [brand] setting {sorted(unknown)[0]!r}")
        settings.update(table)
    for key in ("name", "color", "logo"):
        if env.get(f"HUMANDESK_BRAND_{key.upper()}"):
            settings[key] = env[f"HUMANDESK_BRAND_{key.upper()}"]
    name = str(settings.get("name", DEFAULT_NAME)).strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise BrandError(f"brand name must be 1-{MAX_NAME_CHARS} characters")
    color = str(settings.get("color", "")).strip()
    if color:
        color = _hex(parse_color(color))
    logo = None
    if settings.get("logo"):
        logo = Path(str(settings["logo"])).expanduser()
        if logo.suffix.lower() not in LOGO_TYPES:
            raise BrandError(f"brand logo {logo} must be one of {', '.join(LOGO_TYPES)}")
        if not logo.is_file():
            raise BrandError(f"brand logo {logo} is not a file")
        if logo.stat().st_size > MAX_LOGO_BYTES:
            raise BrandError(f"brand logo {logo} is larger than {MAX_LOGO_BYTES // 1024} KiB")
    return Brand(name=name, color=color, logo=logo)
