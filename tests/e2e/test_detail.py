"""An operation's own page in Chromium: reached from the list, live, and retried with changes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from coordhub.testing.processes import manage

USER, PASSWORD = "e2e-detail", "e2e-detail-password-7730"


def superuser(server, name: str) -> str:
    """A staff user of its own, whose starts spend nobody else's budget (5 a minute)."""
    manage(
        "createsuperuser",
        "--no-input",
        "--username",
        name,
        "--email",
        "d@example.com",
        env=server.env | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )
    return name


@pytest.fixture(scope="module")
def user(coordhub_server) -> str:
    return superuser(coordhub_server, USER)


@pytest.fixture(scope="module")
def long_words(browser: Browser, coordhub_server) -> tuple[str, str]:
    """A user, and the page of its failed operation with a 300-letter word in its params."""
    name = superuser(coordhub_server, f"{USER}-phone")
    context = browser.new_context()
    page = signed_in(context.new_page(), coordhub_server.url, name)
    failed = start_from_the_form(page, "0.2", fail=True, data='{"note": "%s"}' % ("x" * 300))
    page.get_by_test_id("start-accepted").get_by_role("link", name=failed).click()
    expect(page.get_by_test_id("detail-status")).to_contain_text("failed", timeout=15_000)
    url = page.url
    context.close()
    return name, url


@pytest.fixture
def page(browser: Browser, coordhub_server, user) -> Iterator[Page]:
    context = browser.new_context()
    page = signed_in(context.new_page(), coordhub_server.url, user)
    yield page
    context.close()


def signed_in(page: Page, url: str, user: str) -> Page:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page


def start_from_the_form(page: Page, duration: str, *, fail: bool = False, data: str = "") -> str:
    """Start an operation with the dashboard's form; return its short id."""
    form = page.locator("#start-form")
    form.locator("[name=duration]").fill(duration)
    form.locator("[name=fail]").set_checked(fail)
    form.locator("[name=data]").fill(data)
    form.get_by_role("button", name="Start").click()
    accepted = page.get_by_test_id("start-accepted")
    expect(accepted).to_contain_text("Started")
    return accepted.locator("a").first.inner_text()


def test_a_rows_detail_shows_params_error_and_durations_and_a_retry_with_changes_links_back(
    page: Page, coordhub_server
):
    failed = start_from_the_form(page, "0.3", fail=True, data='{"job": "e2e-detail"}')
    row = page.locator("tr.operation", has=page.get_by_text(failed, exact=True))
    expect(row.locator(".badge")).to_have_text("failed", timeout=15_000)

    row.get_by_role("link", name=f"Operation {failed}").click()

    expect(page).to_have_url(re.compile(rf"/operations/{failed}-[0-9a-f-]{{27}}/$"))
    expect(page.get_by_test_id("detail-status")).to_contain_text("failed")
    expect(page.get_by_test_id("detail-params")).to_contain_text('"job": "e2e-detail"')
    expect(page.get_by_test_id("detail-error")).to_contain_text("SimulatedFailure")
    expect(page.get_by_test_id("ran-for")).to_have_text(re.compile(r"^0\.\d s$"))
    expect(page.get_by_test_id("queued-for")).to_have_text(re.compile(r" s$"))
    expect(page.get_by_test_id("detail-slot")).to_contain_text("Holds no slot")
    expect(page.get_by_test_id("detail-messages")).to_contain_text("step 3 of 3")
    page.get_by_text("Traceback (staff only)").click()
    expect(page.get_by_test_id("detail-traceback")).to_contain_text("SimulatedFailure")

    page.get_by_test_id("retry-with-changes").click()
    expect(page.get_by_test_id("retrying")).to_contain_text(f"Retrying {failed} with changes")
    form = page.locator("#start-form")
    expect(form.locator("[name=duration]")).to_have_value("0.3")
    expect(form.locator("[name=fail]")).to_be_checked()
    expect(form.locator("[name=data]")).to_have_value(re.compile("e2e-detail"))
    form.locator("[name=duration]").fill("3")
    form.locator("[name=fail]").uncheck()
    form.get_by_role("button", name="Start").click()
    accepted = page.get_by_test_id("start-accepted")
    expect(accepted).to_contain_text(f"a retry of {failed}")
    retry = accepted.locator("a").first.inner_text()

    accepted.get_by_role("link", name=retry).click()

    # The new operation's page follows it live, through this tab, until it completes.
    status = page.get_by_test_id("detail-status")
    expect(status).to_contain_text(re.compile("queued|running"))
    expect(page.get_by_test_id("retry-of")).to_have_text(failed)
    expect(status).to_contain_text("completed", timeout=20_000)
    expect(page.get_by_test_id("detail-result")).to_contain_text('"processed_data"')
    expect(page.locator("#state-announcer")).to_have_text("The operation is now completed.")

    page.get_by_test_id("retry-of").click()
    expect(page.get_by_test_id("retries")).to_contain_text(f"{retry} (completed)")


def test_retry_starts_the_same_operation_again_and_opens_its_page(page: Page):
    original = start_from_the_form(page, "0.2", data='{"again": true}')
    page.get_by_test_id("start-accepted").get_by_role("link", name=original).click()
    expect(page.get_by_test_id("detail-status")).to_contain_text("completed", timeout=15_000)

    page.get_by_test_id("retry").click()

    expect(page).not_to_have_url(re.compile(original))
    expect(page.get_by_test_id("retry-of")).to_have_text(original)
    expect(page.get_by_test_id("detail-params")).to_contain_text('"again": true')


def test_cancelling_a_running_operation_asks_first(page: Page):
    running = start_from_the_form(page, "60")
    page.get_by_test_id("start-accepted").get_by_role("link", name=running).click()
    status = page.get_by_test_id("detail-status")
    expect(status).to_contain_text("running", timeout=15_000)
    cancel = page.get_by_role("button", name=f"Cancel {running}")

    page.once("dialog", lambda dialog: dialog.dismiss())
    cancel.click()
    expect(status).to_contain_text("running")
    page.once("dialog", lambda dialog: dialog.accept())
    cancel.click()

    expect(status).to_contain_text("cancelled", timeout=15_000)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_operations_page_fits_a_phone_however_long_its_words(
    browser: Browser, coordhub_server, long_words, scheme
):
    name, url = long_words
    context = browser.new_context(viewport={"width": 360, "height": 740}, color_scheme=scheme)
    page = signed_in(context.new_page(), coordhub_server.url, name)
    page.goto(url)
    expect(page.get_by_test_id("detail-params")).to_contain_text("x" * 300)

    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    context.close()

    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px screen"
