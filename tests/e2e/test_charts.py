"""The dashboard's charts in Chromium: what just ran is drawn, and the ranges swap in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.dashboard_helpers import OperationsApi
from tests.live import LiveServer

FAILING = {"kind": "simulated", "params": {"duration": 0.2, "fail": True}}
INTERVALS = "[data-testid=outcomes-chart] g.interval"
# Each interval of the outcomes chart: its edges, its figures and the bars drawn in it.
READ_INTERVALS = """groups => groups.map(group => ({
    start: group.dataset.start,
    end: group.dataset.end,
    failed: Number(group.dataset.failed),
    current: group.dataset.current === "true",
    bars: [...group.querySelectorAll("rect")].map(rect => rect.getAttribute("class")),
}))"""


@pytest.fixture(scope="module")
def charts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own: the failures its charts count are this module's only."""
    server = LiveServer(tmp_path_factory.mktemp("charts"), COORDHUB_ENV="testing").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def failed_operation(charts_server: LiveServer) -> dict:
    """One `simulated` operation that failed, run through the API by another client."""
    api = OperationsApi(charts_server)
    response = api.client.post("/api/operations", json=FAILING)
    assert response.status_code == 202, response.text
    found = api.wait_until_finished(response.json()["id"])
    api.close()
    assert found["status"] == "failed", found
    return found


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def intervals(page: Page) -> list[dict]:
    return page.locator(INTERVALS).evaluate_all(READ_INTERVALS)


def holding(found: list[dict], moment: str) -> dict:
    """The interval whose [start, end) holds the ISO time `moment`."""
    when = datetime.fromisoformat(moment)
    return next(
        interval
        for interval in found
        if datetime.fromisoformat(interval["start"])
        <= when
        < datetime.fromisoformat(interval["end"])
    )


def charts_loaded(page: Page) -> None:
    """Wait for the charts the page asks for once it is up."""
    expect(page.locator("#charts")).to_have_attribute("data-range", "hour")


def test_an_operation_that_just_failed_is_a_failed_bar_in_its_interval(
    page: Page, charts_server: LiveServer
):
    page.goto(charts_server.url)
    charts_loaded(page)
    before = sum(interval["failed"] for interval in intervals(page))

    failed = OperationsApi(charts_server)
    operation = failed.client.post("/api/operations", json=FAILING).json()
    ended = failed.wait_until_finished(operation["id"])
    failed.close()
    page.reload()
    charts_loaded(page)

    found = intervals(page)
    its_interval = holding(found, ended["finished_at"])
    assert sum(interval["failed"] for interval in found) == before + 1
    assert its_interval["failed"] == 1
    assert "series-failed" in its_interval["bars"]
    # What just ended is in the current interval, unless one began in the meantime.
    assert its_interval["current"] or found[-1]["failed"] == 0
    bar = page.locator(f'{INTERVALS}[data-start="{its_interval["start"]}"] rect.series-failed')
    box = bar.bounding_box()
    assert box is not None
    assert box["height"] > 0


def test_the_last_day_swaps_in_through_htmx_and_back(
    page: Page, charts_server: LiveServer, failed_operation: dict
):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(charts_server.url)
    charts = page.locator("#charts")
    expect(charts).to_have_attribute("data-range", "hour")

    page.get_by_role("link", name="Last day").click()

    expect(charts).to_have_attribute("data-range", "day")
    expect(page.locator(INTERVALS)).to_have_count(24)
    assert page.url == f"{charts_server.url}/"  # swapped in place, not a new page
    assert any(url.endswith("/dashboard/charts/?range=day") for url in requests)
    assert sum(interval["failed"] for interval in intervals(page)) >= 1
    expect(page.get_by_role("link", name="Last day")).to_have_attribute("aria-current", "true")

    page.get_by_role("link", name="Last hour").click()

    expect(charts).to_have_attribute("data-range", "hour")
    expect(page.locator(INTERVALS)).to_have_count(12)


def test_without_script_the_range_links_open_the_page_with_that_range(
    browser: Browser, charts_server: LiveServer
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(charts_server.url)
    page.get_by_role("link", name="Show the charts").click()
    expect(page.locator("#charts")).to_have_attribute("data-range", "hour")

    page.get_by_role("link", name="Last day").click()

    expect(page.locator("#charts")).to_have_attribute("data-range", "day")
    assert page.url.endswith("/?charts=day#charts")
    context.close()
