"""The console on a phone and in the dark: nothing wider than the screen, a dark palette."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser

PHONE = {"width": 360, "height": 740}
# A failure reason with no place to break: it must wrap, not widen the page.
LONG_WORD = "x" * 300


@pytest.fixture(scope="module")
def operations_shown(coordhub_server, api_headers) -> None:
    """A few operations on the server, one with a long unbroken word in its message."""
    for data in ({}, {"note": LONG_WORD}):
        body = {"kind": "simulated", "params": {"duration": 0.2, "data": data}}
        url = f"{coordhub_server.url}/api/operations"
        httpx.post(url, json=body, headers=api_headers, timeout=10)


@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_scrolls_sideways_at_360_px(
    browser: Browser, coordhub_server, operations_shown, path, scheme
):
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{coordhub_server.url}{path}")
    page.wait_for_load_state("networkidle")

    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    context.close()

    assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide in a {widths[1]} px screen"


def test_the_operations_tables_scroll_in_their_own_boxes_on_a_phone(
    browser: Browser, coordhub_server, operations_shown
):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(coordhub_server.url)
    boxes = page.locator("#live .table-scroll, #history .table-scroll")

    overflows = boxes.evaluate_all(
        "elements => elements.map(element => getComputedStyle(element).overflowX)"
    )
    context.close()

    assert overflows == ["auto", "auto"]  # the live operations, then the history


# Each row shown (not in a closed <details>) brought into view as focus brings it, to
# the edge of the screen, and whether the tab footer then lies over any of it.
ROWS_UNDER_THE_FOOTER = """() => {
    const footer = document.querySelector(".tab-footer");
    const shown = [...document.querySelectorAll("main tr")].filter((row) => row.checkVisibility());
    return shown.filter((row) => {
        row.scrollIntoView({ block: "end" });
        const [box, over] = [row.getBoundingClientRect(), footer.getBoundingClientRect()];
        return box.bottom > over.top && box.top < over.bottom;
    }).map((row) => row.id || row.textContent.trim().slice(0, 40));
}"""


@pytest.mark.parametrize(
    "viewport", [PHONE, {"width": 1280, "height": 500}], ids=["phone", "desktop"]
)
def test_the_tab_footer_never_covers_a_row_brought_into_view(
    browser: Browser, coordhub_server, operations_shown, viewport
):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(coordhub_server.url)
    page.wait_for_load_state("networkidle")

    covered = page.evaluate(ROWS_UNDER_THE_FOOTER)
    rows = page.locator("#live tr").count()
    context.close()

    assert rows > 2
    assert covered == []


def luminance(css_color: str) -> float:
    """Relative luminance (WCAG) of an `rgb(r, g, b)` colour."""
    red, green, blue = (
        int(part) / 255 for part in css_color[css_color.index("(") + 1 : -1].split(",")[:3]
    )

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_each_palette_keeps_text_readable(browser: Browser, coordhub_server, scheme):
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    page.goto(coordhub_server.url)
    colours = page.evaluate(
        """() => {
          const style = (selector) => getComputedStyle(document.querySelector(selector));
          return {
            page: style("body").backgroundColor || style("html").backgroundColor,
            root: getComputedStyle(document.documentElement).backgroundColor,
            ink: getComputedStyle(document.documentElement).color,
            panel: style(".panel").backgroundColor,
            muted: style(".panel h2").color,
          };
        }"""
    )
    context.close()

    background = colours["root"]
    assert (luminance(background) < 0.05) == (scheme == "dark"), colours
    assert contrast(colours["ink"], background) >= 7, colours
    assert contrast(colours["muted"], colours["panel"]) >= 4.5, colours


def test_times_read_as_relative_with_the_local_time_and_zone_on_hover(
    browser: Browser, coordhub_server, operations_shown
):
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-US")
    page = context.new_page()
    page.goto(coordhub_server.url)
    created = page.locator("tr.operation time.ago").first

    shown, hover = created.text_content(), created.get_attribute("title")
    context.close()

    assert re.fullmatch(r"(now|\d+ (sec|min|hr|day)s?\. ago|.+ ago)", shown), shown
    assert re.search(r"\d{1,2}:\d{2}:\d{2}", hover), hover  # to the second
    assert "GMT+9" in hover, hover  # in the browser's own zone
