"""The shop's brand on the desk's pages: name, accent colour (checked for contrast) and logo,
from ``[brand]`` in the TOML file or the HUMANDESK_BRAND_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from humandesk.server.brand import Brand, BrandError, contrast, load_brand, parse_color
from humandesk.server.config import Config
from humandesk.server.queues import load_file

from conftest import DeskClient

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
WHITE = (255, 255, 255)


def test_text_on_the_accent_reads_whatever_the_colour() -> None:
    dark = Brand(color="#0b6e63").palette
    assert dark["--on-accent"] == "#ffffff"
    light = Brand(color="#ffd400").palette  # a yellow: white on it is unreadable
    assert light["--on-accent"] == "#111111"
    for color in ("#ffd400", "#7fffd4", "#0b6e63", "#e11d48", "#f0f0f0"):
        palette = Brand(color=color).palette
        accent, on = parse_color(palette["--accent"]), parse_color(palette["--on-accent"])
        assert contrast(accent, on) >= 4.5, color
        # Where the accent is text on white, a shade of it that reads.
        assert contrast(parse_color(palette["--accent-text"]), WHITE) >= 4.5, color


def test_brand_from_the_toml_file_and_the_variables(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    toml = tmp_path / "desk.toml"
    toml.write_text(f'[brand]\nname = "Northwind"\ncolor = "#123"\nlogo = "{logo}"\n')
    brand = load_brand({}, toml)
    assert brand == Brand(name="Northwind", color="#112233", logo=logo)
    env = {"HUMANDESK_BRAND_NAME": "Northwind Help", "HUMANDESK_BRAND_COLOR": "ffd400"}
    assert load_brand(env, toml) == Brand(name="Northwind Help", color="#ffd400", logo=logo)
    assert Config.from_env({**env, "HUMANDESK_CONFIG": str(toml)}).title == "Northwind Help"
    assert Config.from_env({}).brand == Brand()
    # A file of the brand alone is a desk's file too (no queues of its own).
    alone = tmp_path / "brand.toml"
    alone.write_text('[brand]\nname = "Northwind"\n')
    assert load_file(alone) == {}


@pytest.mark.parametrize(
    ("env", "toml", "says"),
    [
        ({"HUMANDESK_BRAND_COLOR": "teal"}, "", "is not a colour"),
        ({"HUMANDESK_BRAND_NAME": "x" * 61}, "", "1-60 characters"),
        ({"HUMANDESK_BRAND_LOGO": "/no/such/logo.png"}, "", "is not a file"),
        ({"HUMANDESK_BRAND_LOGO": "/etc/hostname"}, "", "must be one of"),
        ({}, '[brand]\nfont = "Comic Sans"\n', "unknown [brand] setting 'font'"),
    ],
)
def test_a_brand_setting_that_cannot_be_used_is_named(
    tmp_path: Path, env: dict[str, str], toml: str, says: str
) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(toml)
    with pytest.raises(BrandError, match=says.replace("[", r"\[")):
        load_brand(env, path)


async def test_the_pages_the_widget_and_the_logo_carry_the_brand(
    desk_client: DeskClient, tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    client = await desk_client(brand=Brand(name="Northwind Help", color="#ffd400", logo=logo))
    for path in ("/visitor", "/agent", "/wallboard", "/"):
        page = await (await client.get(path)).text()
        assert "Northwind Help" in page and "humandesk</span>" not in page, path
        assert 'href="/brand.css?v=' in page, path
        assert 'class="brand-logo" src="/brand/logo?v=' in page, path
    css = await (await client.get("/brand.css")).text()
    assert "--accent: #ffd400;" in css and "--on-accent: #111111;" in css
    served = await client.get("/brand/logo")
    assert served.status == 200 and served.content_type == "image/png"
    assert await served.read() == PNG
    widget = await (await client.get("/widget.js")).text()
    assert 'const ACCENT = "#ffd400";' in widget and 'const ON_ACCENT = "#111111";' in widget


async def test_without_a_brand_the_desk_keeps_its_own(desk_client: DeskClient) -> None:
    client = await desk_client()
    page = await (await client.get("/visitor")).text()
    assert "brand.css" not in page and "brand-logo" not in page and "humandesk" in page
    assert (await client.get("/brand/logo")).status == 404
    widget = await (await client.get("/widget.js")).text()
    assert 'const ACCENT = "#0b6e63";' in widget


LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    '<circle cx="32" cy="32" r="30" fill="#1e293b"/><path d="M16 40 L32 18 L48 40 Z" '
    'fill="#ffd400"/></svg>'
)


@pytest.mark.browser
def test_a_light_brand_reads_in_the_browser(tmp_path: Path) -> None:
    """A yellow accent in Chromium: the panel's header, the launcher and the join button
    are yellow with near-black text, and the logo shows (a screenshot for the README)."""
    from pages import (
        SCREENSHOTS,
        VIEWPORT,
        launched_chromium,
        open_panel,
        running_demo,
        sel,
        wait_for,
    )

    logo = tmp_path / "logo.svg"
    logo.write_text(LOGO_SVG)
    brand = {
        "HUMANDESK_BRAND_NAME": "Northwind Help",
        "HUMANDESK_BRAND_COLOR": "#ffd400",
        "HUMANDESK_BRAND_LOGO": str(logo),
    }
    with running_demo(brand) as demo, launched_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        shop, panel = open_panel(context, demo)
        colors = "(e) => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
        yellow, ink = "rgb(255, 212, 0)", "rgb(17, 17, 17)"
        assert panel.locator(".panel-header").evaluate(colors) == [yellow, ink]
        assert panel.locator(sel("hd-join")).evaluate(colors) == [yellow, ink]
        shop.mouse.move(0, 0)  # off the launcher (clicked): its hover shade is lighter
        launcher = shop.locator(sel("hd-launcher"))
        wait_for(lambda: launcher.evaluate(colors) == [yellow, ink], "the launcher's colours")
        assert panel.locator(".panel-header .brand-name").inner_text() == "Northwind Help"
        assert panel.locator(".brand-logo").evaluate("(img) => img.naturalWidth") > 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shop.screenshot(path=str(SCREENSHOTS / "visitor-custom-brand.png"))
        context.close()
