"""The history panel in real Chromium: status tabs, filters, pages forward and back.

Operations are started through the API from another loopback address (another
client: the browser sees their rows, not their errors) and run for real by the
server's worker; the browser's clock runs in real time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.e2e.dashboard_helpers import API_ADDRESS
from tests.e2e.test_accessibility import VIEWPORTS, violations
from tests.live import LiveServer

# Five starts: the testing profile's start budget for one client in one minute.
STARTS = [{"duration": 0.2}] * 3 + [{"duration": 0.2, "fail": True}] * 2
ENDED = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own, whose only operations are the five started here."""
    server = LiveServer(tmp_path_factory.mktemp("history"), COORDHUB_ENV="testing").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def operations(history_server: LiveServer) -> dict[str, str]:
    """Three completed operations and two failed ones, one at a time: {id: status}."""
    transport = httpx.HTTPTransport(local_address=API_ADDRESS)
    ended = {}
    with httpx.Client(base_url=history_server.url, transport=transport, timeout=10) as api:
        for params in STARTS:
            started = api.post("/api/operations", json={"kind": "simulated", "params": params})
            assert started.status_code == 202, started.text
            ended |= wait_until_ended(api, started.json()["id"])
    assert sorted(ended.values()) == ["completed"] * 3 + ["failed"] * 2
    return ended


def wait_until_ended(api: httpx.Client, operation_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = api.get(f"/api/operations/{operation_id}").json()["status"]
        # Its slot is freed just after: the next start waits for it on a 429 otherwise.
        if status in ENDED and api.get("/api/health").json()["active_operations"] == 0:
            return {operation_id: status}
        time.sleep(0.1)
    pytest.fail(f"Operation {operation_id} did not end within 30 s.")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def rows(page: Page) -> list[tuple[str, str]]:
    """The (short id, status) of each row the history shows."""
    found = page.locator("#history tr.history-row")
    return [
        (row.locator("[data-testid=history-row-id]").inner_text(), row.get_attribute("data-status"))
        for row in found.all()
    ]


def tab(page: Page, status: str):
    return page.locator(f"#history-tab-{status}")


def swap(page: Page, action: Callable[[], None]) -> Response:
    """Do `action` and wait until htmx has swapped in the panel it asked for."""
    page.evaluate("document.getElementById('history').dataset.shown = 'before'")
    with page.expect_response(re.compile(r"/dashboard/history/")) as answer:
        action()
    expect(page.locator("#history")).not_to_have_attribute("data-shown", "before")
    expect(page.locator("#history.htmx-settling")).to_have_count(0)
    return answer.value


def test_the_failed_tab_shows_only_failed_rows_and_counts_them(
    page: Page, history_server: LiveServer, operations: dict[str, str]
):
    page.goto(history_server.url + "/")
    expect(tab(page, "all").locator(".tab-count")).to_have_text("5")

    swap(page, lambda: tab(page, "failed").click())

    failed = sorted(key[:8] for key, status in operations.items() if status == "failed")
    assert sorted(short_id for short_id, _ in rows(page)) == failed
    assert {status for _, status in rows(page)} == {"failed"}
    expect(tab(page, "failed").locator(".tab-count")).to_have_text("2")
    expect(tab(page, "failed")).to_have_attribute("aria-current", "page")
    expect(tab(page, "all")).not_to_have_attribute("aria-current", "page")
    assert page.url == history_server.url + "/?status=failed"
    # Another client's failures: their rows, never their reasons.
    expect(page.locator("#history .reason")).to_have_count(0)


def test_the_kind_filter_and_an_id_prefix_narrow_the_rows(
    page: Page, history_server: LiveServer, operations: dict[str, str]
):
    page.goto(history_server.url + "/?status=completed")
    one = next(key for key, status in operations.items() if status == "completed")
    kinds = page.get_by_label("Kind", exact=True).locator("option").all_inner_texts()

    page.get_by_label("Kind", exact=True).select_option("simulated")
    swap(page, lambda: page.get_by_role("button", name="Filter").click())
    assert len(rows(page)) == 3
    page.get_by_label("Id starts with").fill(one[:6])
    swap(page, lambda: page.get_by_label("Id starts with").press("Enter"))

    assert kinds == ["any kind", "simulated"]
    assert rows(page) == [(one[:8], "completed")]
    expect(tab(page, "completed").locator(".tab-count")).to_have_text("1")
    assert page.url == f"{history_server.url}/?status=completed&kind=simulated&id={one[:6]}"
    page.reload()  # the URL is the whole description of what the panel shows
    assert rows(page) == [(one[:8], "completed")]


def test_pages_go_older_and_back_newer_to_the_same_rows(
    page: Page, history_server: LiveServer, operations: dict[str, str]
):
    page.goto(history_server.url + "/?limit=2")
    shown = [rows(page)]
    expect(page.locator("#history-newer")).to_have_count(0)

    for _ in range(2):
        swap(page, lambda: page.locator("#history-older").click())
        shown.append(rows(page))
    expect(page.locator("#history-older")).to_have_count(0)
    back = [rows(page)]
    for _ in range(2):
        swap(page, lambda: page.locator("#history-newer").click())
        back.append(rows(page))

    assert [len(rows_shown) for rows_shown in shown] == [2, 2, 1]
    assert {short_id for rows_shown in shown for short_id, _ in rows_shown} == {
        key[:8] for key in operations
    }
    assert back == list(reversed(shown))
    expect(page.locator("#history-newer")).to_have_count(0)


def test_the_back_button_shows_the_page_before(
    page: Page, history_server: LiveServer, operations: dict[str, str]
):
    page.goto(history_server.url + "/?limit=2")
    first = rows(page)
    swap(page, lambda: page.locator("#history-older").click())
    second = rows(page)
    page.evaluate("window.loadedBefore = true")

    page.go_back()
    page.wait_for_load_state("load")

    expect(page.locator("#history tr.history-row").first).to_contain_text(first[0][0])
    assert page.url == history_server.url + "/?limit=2"
    assert rows(page) == first != second
    # Reloaded, not a fetched body swapped in under the running modules (their listeners).
    assert page.evaluate("window.loadedBefore") is None


def test_a_bad_filter_is_answered_in_the_panel(
    page: Page, history_server: LiveServer, operations: dict[str, str]
):
    page.goto(history_server.url + "/")

    page.get_by_label("Id starts with").fill("xyz")
    answer = swap(page, lambda: page.get_by_role("button", name="Filter").click())

    assert answer.status == 400
    expect(page.get_by_test_id("history-problem")).to_contain_text(
        "id='xyz' is not the start of an operation id"
    )
    assert page.url == history_server.url + "/"


def test_without_javascript_tabs_and_pages_are_plain_links(
    browser: Browser, history_server: LiveServer, operations: dict[str, str]
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(history_server.url + "/?limit=2")

    tab(page, "completed").click()
    page.wait_for_url(re.compile(r"status=completed"))
    page.locator("#history-older").click()
    page.wait_for_url(re.compile(r"cursor="))
    shown = rows(page)
    context.close()

    assert [status for _, status in shown] == ["completed"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", sorted(VIEWPORTS))
def test_the_panel_in_each_of_its_states_has_no_violation(
    browser: Browser, history_server: LiveServer, operations: dict[str, str], scheme, size
):
    context = browser.new_context(color_scheme=scheme, viewport=VIEWPORTS[size])
    page = context.new_page()
    found = {}
    for query in ("?limit=2", "?status=failed", "?status=done", "?kind=simulated&id=ffff"):
        page.goto(f"{history_server.url}/{query}")
        found[query] = violations(page)
    page.goto(f"{history_server.url}/?limit=2")
    page.locator("#history-older").click()
    page.wait_for_url(re.compile(r"cursor="))
    found["second page"] = violations(page)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    context.close()

    assert found == {query: [] for query in found}
    assert widths[0] <= widths[1]
