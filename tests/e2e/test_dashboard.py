"""The dashboard in real Chromium against a real coordhub: polling, tabs, the start form.

Time in the tabs is Playwright's paused clock, moved in steps (see
dashboard_helpers.py); the server and its worker run in real time, so a test
that needs an operation to start and end waits for it in real time while the
tabs' clock stands still.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Response, Route, expect

from tests.e2e.dashboard_helpers import (
    BROADCAST_KEY,
    HEARTBEAT_MS,
    LADDER,
    LEADER_KEY,
    Dashboard,
    OperationsApi,
    gaps,
    live_html,
    live_versions,
    off_the_ladder,
    operations_text,
    plant,
    poll_status,
    role,
    within_jitter,
)
from tests.live import LiveServer

PAUSED = "Polling paused after no change; click or focus to resume."
# A poll's answer is handled at most one fine step late; the first poll also
# waits for the 50 ms settle of the tab's claim to the lead.
SLACK_MS = 150
PLANTED_HTML = (
    '<div id="live"><img src=x onerror="window.pwned=1">'
    '<button hx-get="/api/operations" hx-trigger="load">x</button></div>'
)
# Markup the live region never renders: a script hook, a form that posts, an id
# and data-* attributes of its own (htmx reads data-hx-*; the page reads ids), a
# Cancel request and a link on a paragraph.
UNRENDERED_HTML = (
    '<div id="live" data-planted="1"><img src=x onerror="window.pwned=1">'
    '<form action="/api/operations" method="post"><button>send</button></form>'
    '<p id="planted" class="empty" data-testid="budget" data-hx-get="/api/operations"'
    ' data-hx-trigger="load" data-planted="1"'
    # A request and a link the live region renders, on an element that never carries them.
    ' hx-post="/dashboard/operations/8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11/cancel/"'
    ' href="/operations/8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11/">kept</p></div>'
)
# Past the largest safe integer, where adding one no longer counts.
HUGE = 2**53 - 1
FAR_FUTURE_MS = 10**15


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own: its tests spend start budgets and add operations."""
    server = LiveServer(tmp_path_factory.mktemp("dashboard"), COORDHUB_ENV="testing").start()
    yield server
    server.stop()


@pytest.fixture
def make_dashboard(browser: Browser) -> Iterator[Callable[[LiveServer], Dashboard]]:
    """Open fresh browser contexts on a server, each with a paused clock; close them after."""
    opened: list[Dashboard] = []

    def make(server: LiveServer) -> Dashboard:
        dashboard = Dashboard.open_context(browser, server)
        opened.append(dashboard)
        return dashboard

    yield make
    for dashboard in opened:
        dashboard.close()


@pytest.fixture
def dashboard(
    make_dashboard: Callable[[LiveServer], Dashboard], dashboard_server: LiveServer
) -> Dashboard:
    return make_dashboard(dashboard_server)


@pytest.fixture
def api(dashboard_server: LiveServer) -> Iterator[OperationsApi]:
    client = OperationsApi(dashboard_server)
    yield client
    client.close()


def wait_for_one_leader(dashboard: Dashboard, within_s: float) -> Page:
    """Wait in real time until exactly one tab leads; fake time creeps so claims settle."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = dashboard.leaders()
        if len(found) == 1:
            return found[0]
        dashboard.context.clock.run_for(10)
    pytest.fail(f"No single leader within {within_s} s; {dashboard.describe()}")


ATTEMPTS_PER_MINUTE = 60
# Long enough for a test's few seconds of real time to stay inside one rate-limit window.
WINDOW_MARGIN_S = 25


def submit_start(dashboard: Dashboard, page: Page, data: str) -> Response:
    """Submit the start form and let htmx settle the form it swaps in."""
    page.locator("[name=data]").fill(data)
    page.evaluate("document.getElementById('start-form').dataset.answered = 'no'")
    with page.expect_response("**/dashboard/start/") as answer:
        page.get_by_role("button", name="Start").click()
    # The answer can reach the network layer before htmx swaps it in: wait in real time
    # for the new form, then run the paused clock past htmx's 20 ms settle, which wires it.
    # A function, not an expression: under the page's CSP Playwright cannot eval a string.
    page.wait_for_function(
        "() => document.getElementById('start-form').dataset.answered !== 'no'", polling=10
    )
    dashboard.step(100)
    return answer.value


def test_one_tab_polls_on_the_backoff_ladder_and_a_change_of_state_resets_it(
    dashboard: Dashboard, api: OperationsApi
) -> None:
    page = dashboard.open(settle=False)
    opened_at = dashboard.now()

    dashboard.advance_until(lambda: len(dashboard.sent_at(page)) == 12, limit_ms=220_000)

    sent = dashboard.sent_at(page)
    ladder = gaps([opened_at, *sent])
    assert off_the_ladder(ladder, LADDER, SLACK_MS) == [], ladder
    assert role(page) == "leader"

    # An operation appears, runs and ends (in real time, while the tab's clock stands still).
    operation = api.run()
    dashboard.advance_until(lambda: len(dashboard.sent_at(page)) == 15, limit_ms=60_000)

    after_change = gaps(dashboard.sent_at(page)[11:])
    # The first poll after the change sees it; the next interval starts again at 5 s.
    assert off_the_ladder(after_change, [30_000, 5000, 6000], SLACK_MS) == [], after_change
    assert operation["id"][:8] in operations_text(page)
    dashboard.wait_for_requests(15)
    assert dashboard.requests_by(page) == 15
    assert dashboard.errors == []


def test_polling_pauses_after_max_attempts_and_resumes_at_once_on_focus(
    make_dashboard: Callable[[LiveServer], Dashboard], tmp_path: Path
) -> None:
    server = LiveServer(tmp_path, COORDHUB_ENV="testing", POLL_MAX_ATTEMPTS="5").start()
    try:
        dashboard = make_dashboard(server)
        page = dashboard.open()

        dashboard.advance_until(lambda: poll_status(page) == PAUSED, limit_ms=60_000)

        assert len(dashboard.sent_at(page)) == 5
        dashboard.advance(10 * 60_000, step=10_000)
        assert len(dashboard.sent_at(page)) == 5
        expect(page.locator("#poll-status")).to_have_text(PAUSED)

        focused_at = dashboard.now()
        page.evaluate("window.dispatchEvent(new Event('focus'))")
        dashboard.step(10)

        assert dashboard.sent_at(page)[5:] == [focused_at]
        expect(page.locator("#poll-status")).to_have_text(re.compile(r"^Next poll in \d+ s\.$"))
        dashboard.wait_for_requests(6)
        assert dashboard.requests_by(page) == 6
        assert dashboard.errors == []
    finally:
        server.stop()


def test_five_tabs_poll_through_one_leader_as_often_as_one_tab_and_all_show_its_result(
    make_dashboard: Callable[[LiveServer], Dashboard],
    dashboard_server: LiveServer,
    api: OperationsApi,
) -> None:
    crowd, alone = make_dashboard(dashboard_server), make_dashboard(dashboard_server)
    pages = [crowd.open(settle=False) for _ in range(5)]
    single = alone.open(settle=False)
    leaders_seen: set[Page] = set()
    steps = 0

    def step_both() -> None:
        """One heartbeat in both contexts, in lockstep; exactly one tab of five leads."""
        nonlocal steps
        steps += 1
        crowd.step(HEARTBEAT_MS)
        alone.step(HEARTBEAT_MS)
        found = crowd.leaders()
        assert len(found) == 1, f"step {steps}: {len(found)} leaders; {crowd.describe()}"
        leaders_seen.update(found)

    while steps < 30:
        step_both()
    [leader] = leaders_seen
    before = live_versions(leader)
    polls = crowd.polls()
    # It ends before time moves on, so both contexts see the change at their next poll.
    operation = api.run()
    while crowd.polls() == polls and steps < 45:
        step_both()

    shown = live_versions(leader)
    assert shown["state"] != before["state"]
    assert operation["id"][:8] in operations_text(leader)
    for page in pages:
        assert live_versions(page) == shown
        assert operations_text(page) == operations_text(leader)

    # Three minutes in all.
    while steps < 60:
        step_both()
    crowd.wait_for_requests(crowd.polls())
    alone.wait_for_requests(alone.polls())
    assert leaders_seen == {leader}
    assert {sender for sender, _ in crowd.requests} == {leader}
    assert abs(len(crowd.requests) - len(alone.requests)) <= 1
    assert len(alone.requests) >= 8
    assert alone.requests_by(single) == len(alone.requests)
    assert crowd.errors == []


def test_a_new_tab_paints_the_last_broadcast_at_once_without_polling(
    dashboard: Dashboard, api: OperationsApi
) -> None:
    leader = dashboard.open()
    dashboard.advance_until(lambda: len(dashboard.sent_at(leader)) == 1, limit_ms=10_000)
    # The page as it was before the change: a copy from a cache, or a slow first load.
    old_document = dashboard.context.request.get(dashboard.server.url + "/")
    operation = api.run()
    dashboard.advance_until(lambda: len(dashboard.sent_at(leader)) == 2, limit_ms=10_000)
    assert operation["id"][:8] in operations_text(leader)
    assert operation["id"][:8] not in old_document.text()

    newcomer = dashboard.context.new_page()
    dashboard.watch(newcomer)
    asked: list[str] = []

    def refuse_poll(route: Route) -> None:
        asked.append(route.request.url)
        route.abort()

    newcomer.route("**/dashboard/live/**", refuse_poll)
    newcomer.route(dashboard.server.url + "/", lambda route: route.fulfill(response=old_document))
    newcomer.goto(dashboard.server.url + "/")

    expect(newcomer.locator("#live")).to_have_attribute(
        "data-content-version", live_versions(leader)["content"]
    )
    assert operations_text(newcomer) == operations_text(leader)
    assert role(newcomer) == "follower"
    assert asked == []
    assert dashboard.requests_by(newcomer) == 0


def test_closing_the_leader_hands_polling_to_another_tab_within_a_second(
    dashboard: Dashboard,
) -> None:
    pages = [dashboard.open() for _ in range(3)]
    leader = wait_for_one_leader(dashboard, within_s=5)
    dashboard.advance_until(lambda: len(dashboard.sent_at(leader)) == 1, limit_ms=10_000)
    dashboard.wait_for_requests(1)

    closed_at = time.monotonic()
    with leader.expect_event("close"):
        leader.close(run_before_unload=True)
    successor = wait_for_one_leader(dashboard, within_s=1)
    took_over_s = time.monotonic() - closed_at

    assert took_over_s < 1
    assert successor in pages
    assert successor is not leader
    dashboard.advance_until(lambda: len(dashboard.sent_at(successor)) == 2, limit_ms=20_000)
    dashboard.wait_for_requests(3)
    assert [sender for sender, _ in dashboard.requests] == [leader, successor, successor]
    assert dashboard.errors == []


def test_cancelling_an_operation_that_just_ended_leaves_polling_backing_off(
    dashboard: Dashboard, api: OperationsApi
) -> None:
    # The start budget is drawn in the live region: its window ending mid-test would be news.
    live = dashboard.context.request.get(dashboard.server.url + "/dashboard/live/").text()
    window_left_s = int(re.search(r'resets in <span data-countdown="(\d+)"', live)[1])
    if window_left_s < WINDOW_MARGIN_S:
        time.sleep(window_left_s + 1)
    # Started by the browser's own client, so that its tab shows a Cancel button.
    started = dashboard.context.request.post(
        dashboard.server.url + "/api/operations",
        data={"kind": "simulated", "params": {"duration": 3}},
    )
    assert started.status == 202, started.text()
    operation_id = started.json()["id"]
    api.wait_for_status(operation_id, {"running"})
    page = dashboard.open()
    cancel = page.locator(f"#op-{operation_id} button.cancel")
    expect(cancel).to_be_visible()

    # It ends before the click lands: the refusal brings the current live region along.
    api.wait_until_finished(operation_id)
    with page.expect_response(f"**/{operation_id}/cancel/") as answer:
        cancel.click()
    assert answer.value.status == 409
    expect(page.locator(f"#op-{operation_id}")).to_have_attribute("data-status", "completed")
    dashboard.step(10)  # the click is news for the leader: it polls at once
    dashboard.advance_until(lambda: len(dashboard.sent_at(page)) == 4, limit_ms=30_000)

    after_cancel = gaps(dashboard.sent_at(page))
    assert off_the_ladder(after_cancel, [5000, 6000, 7200], SLACK_MS) == [], after_cancel
    dashboard.wait_for_requests(4)
    statuses = [request.response().status for _, request in dashboard.requests]
    # The first poll brings the versions of what the swap showed; then nothing is new.
    assert statuses == [200, 204, 204, 204]
    assert dashboard.errors == []


def test_the_start_form_shows_refusals_next_to_the_field_and_counts_down_the_limit(
    dashboard: Dashboard,
) -> None:
    page = dashboard.open()
    page.evaluate("window.notReloaded = true")
    data_field = page.locator(".field").filter(has=page.locator("[name=data]"))

    answer = submit_start(dashboard, page, data="[1,2]")

    assert answer.status == 400
    expect(data_field).to_have_class(re.compile(r"\binvalid\b"))
    expect(data_field.locator(".error")).to_have_text("Must be a JSON object.")
    assert page.evaluate("window.notReloaded") is True

    # A form sent back with errors spends no start, but every attempt counts against the
    # generous attempt limit (60 a minute in the testing profile): reach it.
    for _ in range(ATTEMPTS_PER_MINUTE + 1):
        answer = submit_start(dashboard, page, data="[1,2]")
        if answer.status == 429:
            break
    assert answer.status == 429
    refusal = page.get_by_test_id("start-refused")
    expect(refusal).to_have_text(
        re.compile(r"^Start limit reached: you can start again in \d+ s\.$")
    )
    countdown = refusal.locator("[data-countdown]")
    first = int(countdown.inner_text())
    dashboard.step(3000)
    assert first > 0
    assert int(countdown.inner_text()) == max(0, first - 3)
    assert page.evaluate("window.notReloaded") is True
    assert dashboard.errors == []


def three_tabs_and_a_planter(dashboard: Dashboard) -> tuple[Page, list[Page], list[Request]]:
    """Open three tabs; return a follower to plant records, the other two, and /api/ requests."""
    pages = [dashboard.open() for _ in range(3)]
    leader = wait_for_one_leader(dashboard, within_s=5)
    planter = next(page for page in pages if page is not leader)
    api_requests: list[Request] = []

    def note_api_request(request: Request) -> None:
        if urlsplit(request.url).path.startswith("/api/"):
            api_requests.append(request)

    dashboard.context.on("request", note_api_request)
    return planter, [page for page in pages if page is not planter], api_requests


def test_markup_planted_in_the_broadcast_key_neither_runs_nor_sends_requests(
    dashboard: Dashboard,
) -> None:
    planter, victims, api_requests = three_tabs_and_a_planter(dashboard)
    planted = {"seq": 999999, "html": PLANTED_HTML, "tabId": "evil", "sentAt": dashboard.now()}

    planter.evaluate(
        "([key, text]) => localStorage.setItem(key, text)", [BROADCAST_KEY, json.dumps(planted)]
    )
    newcomer = dashboard.open()
    dashboard.step(1000)
    newcomer.wait_for_timeout(500)  # real time for any request the markup could start

    for page in [*victims, newcomer]:
        # The record was taken (the follower swapped it in), but only as inert markup.
        expect(page.locator("#live button")).to_have_text("x")
        assert page.locator("#live button").evaluate("button => button.getAttributeNames()") == []
        assert page.locator("#live img").count() == 0
        assert page.evaluate("window.pwned") is None
    assert [request.url for request in api_requests] == []

    # The leader's next poll shows the real live region again everywhere.
    polls = dashboard.polls()
    dashboard.advance_until(lambda: dashboard.polls() > polls, limit_ms=10_000)
    [leader] = dashboard.leaders()
    for page in dashboard.open_pages:
        expect(page.get_by_test_id("slot-usage")).to_be_visible()
        assert live_versions(page) == live_versions(leader)
    assert dashboard.errors == []


def test_markup_the_live_region_never_renders_is_stripped_from_broadcasts(
    dashboard: Dashboard,
) -> None:
    planter, victims, api_requests = three_tabs_and_a_planter(dashboard)

    plant(planter, BROADCAST_KEY, {"seq": 999_999, "html": UNRENDERED_HTML})
    dashboard.step(1000)
    victims[0].wait_for_timeout(500)  # real time for any request the markup could start

    for page in victims:
        expect(page.locator("#live p")).to_have_text("kept")
        kept = page.locator("#live p").evaluate("p => p.getAttributeNames().sort()")
        assert kept == ["class", "data-testid"]
        assert page.locator("#live").evaluate("live => live.getAttributeNames()") == ["id"]
        assert page.locator("#live img, #live form, #live button, #planted").count() == 0
        assert page.evaluate("window.pwned") is None
    assert api_requests == []
    assert dashboard.errors == []


def plant_region_rendered_far_in_the_future(planter: Page) -> None:
    stored = planter.evaluate(f"localStorage['{BROADCAST_KEY}']")
    seq = json.loads(stored)["seq"] + 1 if stored else 1
    region = live_html(planter, renderedAt=str(FAR_FUTURE_MS), contentVersion="planted")
    plant(planter, BROADCAST_KEY, {"seq": seq, "html": region})


def plant_broadcast_with_a_huge_sequence_number(planter: Page) -> None:
    plant(planter, BROADCAST_KEY, {"seq": HUGE, "html": live_html(planter)})


def plant_lease_with_a_huge_epoch(planter: Page) -> None:
    now = planter.evaluate("Date.now()")
    lease = {"tabId": "intruder", "epoch": HUGE, "expiresAt": now + 5000, "hidden": False}
    plant(planter, LEADER_KEY, lease)


@pytest.mark.parametrize(
    "planting",
    [
        plant_region_rendered_far_in_the_future,
        plant_broadcast_with_a_huge_sequence_number,
        plant_lease_with_a_huge_epoch,
    ],
)
def test_planted_records_neither_freeze_the_tabs_nor_stop_their_polling(
    dashboard: Dashboard, api: OperationsApi, planting: Callable[[Page], None]
) -> None:
    pages = [dashboard.open() for _ in range(3)]
    leader = wait_for_one_leader(dashboard, within_s=5)
    dashboard.advance_until(lambda: len(dashboard.sent_at(leader)) == 1, limit_ms=10_000)
    planter = next(page for page in pages if page is not leader)

    planting(planter)
    dashboard.step(100)

    # One tab leads and goes on polling on the ladder (a planted region is a change).
    polls = dashboard.polls()
    dashboard.advance_until(lambda: dashboard.polls() >= polls + 3, limit_ms=60_000)
    assert len(dashboard.leaders()) == 1, dashboard.describe()
    sent = sorted(moment for page in pages for moment in dashboard.sent_at(page))
    off = [gap for gap in gaps(sent) if not any(within_jitter(gap, b, SLACK_MS) for b in LADDER)]
    assert off == [], gaps(sent)
    # And every tab paints what the server says now.
    operation = api.run()
    short_id = operation["id"][:8]
    dashboard.advance_until(
        lambda: all(short_id in operations_text(page) for page in pages), limit_ms=60_000
    )
    [now_leading] = dashboard.leaders()
    assert all(live_versions(page) == live_versions(now_leading) for page in pages)
    assert dashboard.errors == []
