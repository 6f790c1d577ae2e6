"""The tab footer (dashboard/footer.html, footer.js) in real Chromium on a real coordhub.

It says in plain words where each tab's updates come from and how many tabs the
leader fetches them for; a pause pressed in any tab pauses every tab, which all
say so, and Resume in any tab resumes them all. The tabs run on Playwright's
paused clock and without WebSocket, as in test_dashboard.py, so that the leader
polls on the ladder and a poll it should not make would show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.dashboard_helpers import Dashboard, plant
from tests.live import LiveServer

NAMESPACE = "coordhub:anonymous:"
FOLLOWING = "Updates come from another open tab."
ALONE = "This tab fetches updates; no other tab is open."
PAUSED_HERE = "Updates paused in this tab."
PAUSED_ELSEWHERE = "Updates paused from another tab."
NEXT_POLL = re.compile(r"^Next poll in \d+ s\.$")
# Installed before the page's scripts: note each text the pause's status region takes.
WATCH_ANNOUNCER = """document.addEventListener("DOMContentLoaded", () => {
    const announcer = document.getElementById("tab-announcer");
    const said = [];
    Object.defineProperty(window, "tabAnnouncements", { value: said });
    new MutationObserver(() => said.push(announcer.textContent))
        .observe(announcer, { childList: true, characterData: true, subtree: true });
});"""


def fetching_for(tabs: int | str) -> str:
    return f"This tab fetches updates for your {tabs} open tabs."


@pytest.fixture
def dashboard(browser: Browser, coordhub_server: LiveServer) -> Iterator[Dashboard]:
    dashboard = Dashboard.open_context(browser, coordhub_server)
    dashboard.context.add_init_script(WATCH_ANNOUNCER)
    yield dashboard
    dashboard.close()


def role_text(page: Page) -> Locator:
    return page.get_by_test_id("tab-role")


def toggle(page: Page) -> Locator:
    return page.get_by_test_id("poll-toggle")


def announcements(page: Page) -> list[str]:
    return page.evaluate("() => window.tabAnnouncements")


def open_tabs(dashboard: Dashboard, count: int) -> tuple[Page, list[Page]]:
    """Open `count` tabs; return the leader, once it has polled, and the followers."""
    pages = [dashboard.open() for _ in range(count)]
    dashboard.advance_until(lambda: len(dashboard.leaders()) == 1, limit_ms=2000, step=100)
    [leader] = dashboard.leaders()
    dashboard.advance_until(lambda: dashboard.sent_at(leader), limit_ms=10_000)
    return leader, [page for page in pages if page is not leader]


def test_the_leader_says_for_how_many_open_tabs_it_fetches_and_the_others_where_theirs_come_from(
    dashboard: Dashboard,
) -> None:
    leader, followers = open_tabs(dashboard, 3)

    expect(role_text(leader)).to_have_text(fetching_for(3))
    expect(leader.get_by_test_id("poll-status")).to_have_text(NEXT_POLL)
    for page in followers:
        expect(role_text(page)).to_have_text(FOLLOWING)
        # Only the leader fetches, so only it says when.
        expect(page.get_by_test_id("poll-status")).to_be_hidden()

    for closing, remaining in ((followers[0], fetching_for(2)), (followers[1], ALONE)):
        with closing.expect_event("close"):
            closing.close(run_before_unload=True)
        dashboard.step(200)
        expect(role_text(leader)).to_have_text(remaining)
    assert dashboard.errors == []


def test_a_pause_in_a_follower_pauses_every_tab_and_a_resume_in_another_polls_at_once(
    dashboard: Dashboard,
) -> None:
    leader, (pauser, resumer) = open_tabs(dashboard, 3)

    toggle(pauser).click()
    dashboard.step(100)
    requests = len(dashboard.requests)
    dashboard.advance(2 * 60_000, step=5000)

    for page, said in (
        (pauser, PAUSED_HERE),
        (leader, PAUSED_ELSEWHERE),
        (resumer, PAUSED_ELSEWHERE),
    ):
        expect(role_text(page)).to_have_text(said)
        expect(toggle(page)).to_have_text("Resume")
        expect(page.get_by_test_id("poll-status")).to_be_hidden()
    leader.wait_for_timeout(300)  # real time for a request the paused leader should not send
    assert len(dashboard.requests) == requests

    resumed_at = dashboard.now()
    toggle(resumer).click()
    dashboard.step(100)

    # At once: resumed in another tab, the leader does not wait for the ladder.
    assert dashboard.sent_at(leader)[-1] - resumed_at <= 100
    dashboard.wait_for_requests(requests + 1)
    assert dashboard.requests[-1][0] is leader
    expect(role_text(leader)).to_have_text(fetching_for(3))
    for page in (pauser, resumer):
        expect(role_text(page)).to_have_text(FOLLOWING)
    for page in (leader, pauser, resumer):
        expect(toggle(page)).to_have_text("Pause")
        # Each change of the pause is said once, in every tab.
        assert announcements(page) == ["Updates paused.", "Updates resumed."]
    assert dashboard.errors == []


def test_a_tab_opened_while_paused_starts_paused_without_an_announcement(
    dashboard: Dashboard,
) -> None:
    leader, _ = open_tabs(dashboard, 2)
    toggle(leader).click()
    dashboard.step(100)
    requests = len(dashboard.requests)

    newcomer = dashboard.open()
    dashboard.advance(30_000, step=1000)

    expect(role_text(newcomer)).to_have_text(PAUSED_ELSEWHERE)
    expect(toggle(newcomer)).to_have_text("Resume")
    assert announcements(newcomer) == []
    assert len(dashboard.requests) == requests
    assert dashboard.errors == []


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("pause", "not json {"),
        ("pause", '{"tabId": 7, "since": 1}'),
        ("pause", '{"paused": true}'),
        ("tab:0123456789abcdef", '{"seenAt": "now", "hidden": false}'),
        ("tab:0123456789abcdef", '{"seenAt": 1e999, "hidden": false}'),
    ],
)
def test_planted_pause_and_presence_records_that_fail_their_checks_are_ignored(
    dashboard: Dashboard, key: str, text: str
) -> None:
    leader, [follower] = open_tabs(dashboard, 2)

    follower.evaluate("([key, text]) => localStorage.setItem(key, text)", [NAMESPACE + key, text])
    dashboard.step(200)
    polls = len(dashboard.sent_at(leader))
    dashboard.advance_until(lambda: len(dashboard.sent_at(leader)) > polls, limit_ms=10_000)

    expect(role_text(leader)).to_have_text(fetching_for(2))
    expect(role_text(follower)).to_have_text(FOLLOWING)
    expect(toggle(follower)).to_have_text("Pause")
    assert announcements(leader) == []
    assert dashboard.errors == []


def test_a_flood_of_planted_presence_records_reads_as_100_plus_tabs(dashboard: Dashboard) -> None:
    leader, [follower] = open_tabs(dashboard, 2)
    now = dashboard.now()

    for index in range(150):
        record = {"seenAt": now, "hidden": False}
        plant(follower, f"{NAMESPACE}tab:{index:016x}", record)
    dashboard.step(200)

    expect(role_text(leader)).to_have_text(fetching_for("100+"))
    # Planted once and never renewed, they go stale like the records of closed tabs.
    dashboard.advance(15_000, step=1000)
    expect(role_text(leader)).to_have_text(fetching_for(2))
    assert dashboard.errors == []
