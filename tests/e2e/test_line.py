"""Waiting for a slot in Chromium: the form's choice, the line on the dashboard, the handover."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_detail import signed_in, superuser

USER = "e2e-line"
SLOTS = 3  # the testing profile's


@pytest.fixture
def user(coordhub_server, request) -> str:
    """A user of the test's own, whose starts spend nobody else's budget (5 a minute)."""
    return superuser(coordhub_server, f"{USER}-{request.node.name[5:30]}")


@pytest.fixture
def page(browser: Browser, coordhub_server, user) -> Iterator[Page]:
    context = browser.new_context()
    page = signed_in(context.new_page(), coordhub_server.url, user)
    yield page
    # Leave the shared server's slots and line as they were found.
    cancels = page.locator("#live button.cancel")
    for _ in range(2 * SLOTS + 2):
        if not cancels.count():
            break
        cancels.first.click()
        page.wait_for_timeout(300)
    expect(cancels).to_have_count(0, timeout=15_000)
    context.close()


def start(page: Page, duration: str, *, wait: bool) -> str:
    """Start from the form; return the new operation's short id (once the form shows it)."""
    accepted = page.get_by_test_id("start-accepted").locator("a").first
    before = accepted.inner_text() if accepted.count() else ""
    form = page.locator("#start-form")
    form.locator("[name=duration]").fill(duration)
    form.get_by_label("Wait for a free slot").set_checked(wait)
    form.get_by_role("button", name="Start").click()
    expect(accepted).not_to_have_text(before or "no operation yet")
    return accepted.inner_text()


def row(page: Page, short_id: str):
    return page.locator("#live tr.operation").filter(has=page.get_by_role("link", name=short_id))


def test_a_start_that_waits_shows_in_the_line_and_runs_when_a_slot_frees(page: Page):
    expect(page.locator("#start-form").get_by_label("Wait for a free slot")).to_be_checked()
    running = [start(page, "120", wait=True) for _ in range(SLOTS)]

    waiting = start(page, "120", wait=True)

    expect(page.get_by_test_id("start-accepted")).to_contain_text("waits in line")
    line = page.get_by_test_id("line")
    expect(line.locator("li").first).to_contain_text(waiting)
    expect(line.locator("li").first.locator(".place")).to_have_text("1.")
    expect(page.get_by_test_id("line-length")).to_have_text("1")
    expect(row(page, waiting)).to_have_count(0)  # the line's panel lists it, not the table

    row(page, running[0]).get_by_role("button", name=f"Cancel {running[0]}").click()

    # The freed slot goes to the waiting operation at once; a worker starts it.
    expect(row(page, waiting)).to_have_attribute("data-status", "running", timeout=10_000)
    expect(page.get_by_text("Nobody is waiting.")).to_be_visible()


def test_without_the_choice_a_busy_pool_is_refused_with_a_countdown(page: Page):
    for _ in range(SLOTS):
        start(page, "120", wait=True)
    form = page.locator("#start-form")
    form.get_by_label("Wait for a free slot").set_checked(False)
    form.get_by_role("button", name="Start").click()

    refused = page.get_by_test_id("start-refused")
    expect(refused).to_contain_text("All slots are busy")
    expect(page.get_by_test_id("line-length")).to_have_text("0")
