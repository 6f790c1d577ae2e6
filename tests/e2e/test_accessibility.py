"""axe-core (axe-playwright-python) finds no WCAG 2.2 AA violation on coordhub's pages.

The dashboard with operations in every state, a failed operation's own page, the
sign-in page, the admin's
index, changelists and health page, each in light and dark, at desktop and phone
widths; and the skip link and the live regions a screen reader hears.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from coordhub.testing.processes import manage

WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}
STAFF, STAFF_PASSWORD = "axe-staff", "axe-staff-password-2417"
STAFF_PAGES = [
    "/",
    "/admin/",
    "/admin/operations/operation/",
    "/admin/operations/slot/",
    "/admin/operations/apikey/",
    "/admin/health/",
]


@pytest.fixture(scope="module")
def staff(coordhub_server, api_headers) -> str:
    """A superuser on the server, and operations queued, running, failed and completed."""
    environment = coordhub_server.env | {"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD}
    manage(
        "createsuperuser",
        "--no-input",
        "--username",
        STAFF,
        "--email",
        "a@example.com",
        env=environment,
    )
    for params in ({"duration": 60}, {"duration": 0.1, "fail": True}, {"duration": 0.1}):
        body = {"kind": "simulated", "params": params}
        httpx.post(
            f"{coordhub_server.url}/api/operations", json=body, headers=api_headers, timeout=10
        )
    return STAFF


def violations(page: Page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [
        f"{violation['id']}: {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
    ]


@pytest.fixture(params=[(scheme, size) for scheme in ("light", "dark") for size in VIEWPORTS])
def page(request, browser: Browser) -> Iterator[Page]:
    scheme, size = request.param
    context = browser.new_context(color_scheme=scheme, viewport=VIEWPORTS[size])
    yield context.new_page()
    context.close()


def test_the_sign_in_page_has_no_violation(page: Page, coordhub_server):
    page.goto(f"{coordhub_server.url}/accounts/login/")

    assert violations(page) == []


def test_the_dashboard_an_operations_page_and_the_admin_have_no_violation_for_staff(
    page: Page, coordhub_server, staff, api_headers
):
    page.goto(f"{coordhub_server.url}/accounts/login/")
    page.fill("#id_username", staff)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{coordhub_server.url}/")

    failed = httpx.get(
        f"{coordhub_server.url}/api/operations?status=failed&limit=1",
        headers=api_headers,
        timeout=10,
    ).json()["operations"]
    paths = [*STAFF_PAGES, *(f"/operations/{row['id']}/" for row in failed)]
    assert len(paths) == len(STAFF_PAGES) + 1  # a failed operation's page, with its error
    found = {}
    for path in paths:
        page.goto(f"{coordhub_server.url}{path}")
        page.wait_for_load_state("networkidle")
        found[path] = violations(page)

    assert found == {path: [] for path in paths}


def test_axe_reports_a_violation_planted_in_the_page(browser: Browser, coordhub_server):
    page = browser.new_page()
    page.goto(f"{coordhub_server.url}/accounts/login/")
    page.evaluate("document.querySelector('#id_username').removeAttribute('id')")

    assert any(line.startswith("label") for line in violations(page))
    page.close()


def test_a_skip_link_leads_past_the_header_to_the_content(browser: Browser, coordhub_server):
    page = browser.new_page()
    page.goto(coordhub_server.url)

    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    landed = page.evaluate("document.activeElement.id")
    page.close()

    assert focused == "Skip to content"
    assert landed == "content"


def test_the_footer_is_no_live_region_and_changes_of_state_are_announced(
    browser: Browser, coordhub_server, api_headers
):
    page = browser.new_page()
    page.goto(coordhub_server.url)
    # Neither the countdown nor the role, which changes with each switch of tabs.
    live_ancestors = page.evaluate(
        "[...document.querySelectorAll('#poll-status, #tab-role')]"
        ".map(element => element.closest('[aria-live]:not([aria-live=off]), [role=status]'))"
    )
    body = {"kind": "simulated", "params": {"duration": 30}}
    url = f"{coordhub_server.url}/api/operations"
    started = httpx.post(url, json=body, headers=api_headers, timeout=10).json()
    page.locator("body").click()  # an action: the tab polls at once
    announcer = page.locator("#state-announcer")
    # A locator, not wait_for_function: the page's CSP forbids the eval it polls with.
    expect(announcer).to_have_text(re.compile(r"\b(running|queued)\b"))
    said = announcer.text_content()
    httpx.post(f"{url}/{started['id']}/cancel", headers=api_headers, timeout=10)
    page.close()

    assert live_ancestors == [None, None]
    assert said.startswith("Operations shown: ")
