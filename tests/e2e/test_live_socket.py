"""The leader tab's nudge socket against a real coordhub (daphne, its change feed, a worker).

One browser holds one socket, in its leader tab; changes reach every tab as they
happen rather than at the next poll; a server that goes away leaves the tabs
polling until it is back; and a tab left alone for long never stops showing
changes. Unlike test_dashboard.py, the tabs run on the real clock: the socket,
the server and the worker all work in real time. The servers here poll on long
ladders, so that a scheduled poll cannot pass for one a nudge asked for.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, WebSocket, expect

from tests.e2e.dashboard_helpers import (
    LIVE_PATH,
    BrowserTabs,
    OperationsApi,
    poll_status,
    role,
    set_visibility,
)
from tests.live import LiveServer

SOCKET_PATH = "/ws/live/"
LIVE = "Live: changes arrive as they happen."
FOLLOWING = "Updates come from another open tab."
NEXT_POLL = re.compile(r"^Next poll in \d+ s\.$")
PAUSED = "Updates paused in this tab."
# A minute before the first poll on the ladder, two between safety polls.
LONG_LADDER = {"POLL_INITIAL_INTERVAL_MS": "60000", "POLL_MAX_INTERVAL_MS": "120000"}
# The lease is handed over at once on pagehide; a new leader opens its socket at once.
HANDOVER_S = 2


@dataclass
class LiveTabs(BrowserTabs):
    """Dashboard tabs on the real clock, with their sockets, polls and nudges in order."""

    sockets: list[tuple[Page, WebSocket]] = field(default_factory=list)
    # (tab, moment, what): "poll" for each request for the live fragment, "nudge" per frame.
    events: list[tuple[Page, float, str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        super().watch(page)
        page.on("websocket", lambda socket: self.note_socket(page, socket))

    def note_request(self, page: Page, request: Request) -> None:
        super().note_request(page, request)
        if urlsplit(request.url).path == LIVE_PATH:
            self.events.append((page, time.monotonic(), "poll"))

    def note_socket(self, page: Page, socket: WebSocket) -> None:
        if urlsplit(socket.url).path != SOCKET_PATH:
            return
        self.sockets.append((page, socket))
        socket.on(
            "framereceived", lambda frame: self.events.append((page, time.monotonic(), "nudge"))
        )

    def wait_until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Wait in real time, letting Playwright report events, until condition holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"Not {what} within {timeout_s} s; {self.describe()}")
            self.open_pages[0].wait_for_timeout(50)

    def wait_for_one_leader(self, timeout_s: float = 15) -> Page:
        self.wait_until(lambda: len(self.leaders()) == 1, timeout_s, "one leader")
        return self.leaders()[0]

    def live_leader(self) -> Page:
        """The one leader, once its footer says that its socket is up."""
        leader = self.wait_for_one_leader()
        expect(footer(leader)).to_have_text(LIVE)
        return leader

    def open_sockets(self) -> list[Page]:
        """The tabs whose sockets are open, once per socket (a closed tab's are gone)."""
        return [
            page for page, socket in self.sockets if not page.is_closed() and not socket.is_closed()
        ]

    def sockets_of(self, page: Page) -> list[WebSocket]:
        return [socket for opener, socket in self.sockets if opener is page]

    def polls(self, page: Page) -> list[float]:
        return [at for sender, at, what in self.events if sender is page and what == "poll"]

    def unprompted_polls(self, page: Page, since: float) -> list[float]:
        """When page polled after `since` with no nudge since its previous poll; [] if never."""
        unprompted, nudged = [], True  # the first: right after the socket opened
        for sender, at, what in self.events:
            if sender is not page or at < since:
                continue
            if what == "nudge":
                nudged = True
            elif not nudged:
                unprompted.append(at)
            else:
                nudged = False
        return unprompted

    def describe(self) -> str:
        tabs = [(role(page), poll_status(page)) for page in self.open_pages]
        sockets = [(self.pages.index(page), socket.is_closed()) for page, socket in self.sockets]
        return f"tabs (role, status): {tabs}; sockets (tab, closed): {sockets}"


Served = tuple[LiveServer, OperationsApi]
OpenTabs = Callable[..., "LiveTabs"]


@contextlib.contextmanager
def serving(directory: Path, **environ: str) -> Iterator[Served]:
    """A coordhub of one's own (testing profile) and a client of its API; both stopped after."""
    server = LiveServer(directory, COORDHUB_ENV="testing", **environ).start()
    api = OperationsApi(server)
    try:
        yield server, api
    finally:
        api.close()
        server.stop()


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server of this module's own, on a long ladder: its tests start operations."""
    with serving(tmp_path_factory.mktemp("live"), **LONG_LADDER) as served:
        yield served


@pytest.fixture
def api(feed: Served) -> OperationsApi:
    return feed[1]


@pytest.fixture
def open_tabs(browser: Browser, feed: Served) -> Iterator[OpenTabs]:
    """Open `count` dashboard tabs in a fresh browser context (on the module's server unless
    another is given); close the contexts after."""
    opened: list[LiveTabs] = []

    def open_tabs_on(count: int, server: LiveServer = feed[0]) -> LiveTabs:
        opened.append(LiveTabs(browser.new_context(), server))
        for _ in range(count):
            opened[-1].open()
        return opened[-1]

    yield open_tabs_on
    for tabs in opened:
        tabs.close()


def footer(page: Page) -> Locator:
    """What the footer says about the leader's polls: live, or the next poll."""
    return page.get_by_test_id("poll-status")


def role_text(page: Page) -> Locator:
    """What the footer says about where this tab's updates come from, or their pause."""
    return page.get_by_test_id("tab-role")


def operation_row(page: Page, operation_id: str) -> Locator:
    return page.locator(f"#op-{operation_id}")


def test_three_tabs_hold_one_socket_in_the_leader_and_a_new_leader_opens_its_own(
    open_tabs: OpenTabs,
) -> None:
    tabs = open_tabs(3)
    leader = tabs.live_leader()
    for page in tabs.pages:
        if page is not leader:
            expect(role_text(page)).to_have_text(FOLLOWING)

    assert tabs.open_sockets() == [leader]
    assert len(tabs.sockets) == 1

    # Closed: the lease and the socket pass to another tab at once.
    closed_at = time.monotonic()
    with leader.expect_event("close"):
        leader.close(run_before_unload=True)
    successor = tabs.wait_for_one_leader(timeout_s=HANDOVER_S)
    tabs.wait_until(lambda: tabs.open_sockets() == [successor], HANDOVER_S, "the handover")
    assert time.monotonic() - closed_at < HANDOVER_S
    expect(footer(successor)).to_have_text(LIVE)

    # Sent to the background: the visible tab takes the lead, and the old leader's socket closes.
    [last] = [page for page in tabs.open_pages if page is not successor]
    set_visibility(successor, "hidden")
    tabs.wait_until(lambda: tabs.open_sockets() == [last], HANDOVER_S, "the second handover")
    expect(role_text(successor)).to_have_text(FOLLOWING)
    expect(footer(last)).to_have_text(LIVE)
    assert [len(tabs.sockets_of(page)) for page in (leader, successor, last)] == [1, 1, 1]
    assert tabs.errors == []


def test_an_operation_reaches_every_tab_as_it_starts_and_ends_without_a_scheduled_poll(
    open_tabs: OpenTabs, api: OperationsApi
) -> None:
    tabs = open_tabs(3)
    leader = tabs.live_leader()
    # Up, the leader polled once for what it might have missed: count from there.
    tabs.wait_until(lambda: tabs.polls(leader), 5, "the leader's first poll")
    since = tabs.polls(leader)[0]

    operation_id = api.start(duration=2)
    started_at = time.monotonic()
    for page in tabs.pages:
        expect(operation_row(page, operation_id)).to_be_visible(timeout=10_000)
    shown_after_s = time.monotonic() - started_at
    api.wait_until_finished(operation_id)
    for page in tabs.pages:
        expect(operation_row(page, operation_id)).to_have_attribute("data-status", "completed")

    # Sooner than the first scheduled poll could have been (60 s on this ladder), and
    # every poll since the socket opened came right after a nudge.
    assert shown_after_s < 10
    assert tabs.unprompted_polls(leader, since) == []
    assert len(tabs.polls(leader)) >= 3  # what started, what ended (at the least)
    assert {page for page, _, what in tabs.events if what == "poll"} == {leader}
    assert tabs.errors == []


def test_the_pause_button_closes_the_socket_and_the_tab_fetches_nothing_until_resumed(
    open_tabs: OpenTabs, api: OperationsApi
) -> None:
    tabs = open_tabs(1)
    [page] = tabs.pages
    expect(footer(page)).to_have_text(LIVE)
    [socket] = tabs.sockets_of(page)

    page.get_by_test_id("poll-toggle").click()
    expect(role_text(page)).to_have_text(PAUSED)
    tabs.wait_until(socket.is_closed, 5, "the socket closed")
    polls = len(tabs.polls(page))
    # An operation runs to its end (real time) while the tab is paused.
    operation_id = api.run(duration=0.5)["id"]

    assert operation_row(page, operation_id).count() == 0
    assert len(tabs.polls(page)) == polls
    assert len(tabs.sockets_of(page)) == 1
    page.get_by_test_id("poll-toggle").click()
    expect(operation_row(page, operation_id)).to_have_attribute("data-status", "completed")
    expect(footer(page)).to_have_text(LIVE)
    assert len(tabs.sockets_of(page)) == 2
    assert tabs.errors == []


def test_tabs_poll_while_the_server_is_down_and_go_live_again_when_it_is_back(
    open_tabs: OpenTabs, tmp_path: Path
) -> None:
    # A server of this test's own: it is killed and started again.
    with serving(tmp_path) as (server, api):
        tabs = open_tabs(2, server)
        leader = tabs.live_leader()
        [follower] = [page for page in tabs.pages if page is not leader]

        server.kill()
        killed_at = time.monotonic()
        # At once back on the ladder (5 s first), polling an absent server, as without a socket.
        expect(footer(leader)).to_have_text(NEXT_POLL, timeout=5000)
        tabs.wait_until(lambda: tabs.polls(leader)[-1] > killed_at, 10, "a poll while down")

        server.start()
        expect(footer(leader)).to_have_text(LIVE, timeout=45_000)
        operation_id = api.start(duration=0.5)
        for page in tabs.pages:
            expect(operation_row(page, operation_id)).to_be_visible(timeout=10_000)

        # Reconnected by the same leader, which tried again while the server was away.
        assert tabs.leaders() == [leader]
        assert len(tabs.sockets_of(leader)) >= 3
        assert tabs.sockets_of(follower) == []
        assert [socket.is_closed() for socket in tabs.sockets_of(leader)][-1] is False


def test_a_tab_left_past_max_attempts_unchanged_polls_still_shows_an_operation_end(
    open_tabs: OpenTabs, tmp_path: Path
) -> None:
    # Without the socket this tab would pause after 2 unchanged polls, 3 s in.
    ladder = {"POLL_INITIAL_INTERVAL_MS": "1000", "POLL_MAX_INTERVAL_MS": "2000"}
    with serving(tmp_path, POLL_MAX_ATTEMPTS="2", POLL_MULTIPLIER="2", **ladder) as (server, api):
        tabs = open_tabs(1, server)
        [page] = tabs.pages
        expect(footer(page)).to_have_text(LIVE)
        # Safety polls every 2 s: wait for more than twice the attempts that pause the ladder.
        tabs.wait_until(lambda: len(tabs.polls(page)) > 5, 20, "more than 5 unchanged polls")
        expect(footer(page)).to_have_text(LIVE)

        operation_id = api.run(duration=0.5)["id"]

        expect(operation_row(page, operation_id)).to_have_attribute("data-status", "completed")
        expect(footer(page)).to_have_text(LIVE)
        assert tabs.errors == []
