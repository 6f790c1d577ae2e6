"""The dashboard's cross-tab modules in real Chromium: one leader tab polls, the others listen.

Tests come in the order of the modules in dashboard/static/dashboard/: the lease
(lease.js), messages between tabs (messages.js), the poll scheduler
(scheduler.js), the records in localStorage (storage.js), the coordinator
that ties them (coordinator.js) and the leader's nudge socket (socket.js) with
the scheduler's push mode, all driven through tests/e2e/harness/tabs.html.

The harness page and the modules are served from disk under a fake origin by
Playwright routing, which also answers `GET /poll` and records which tab asked,
and stands in for the change feed's WebSocket (`/ws/live/`), sending nudges.
Playwright's clock drives time. It is paused: each page keeps its own fake
clock, and a running one would let the pages of a context drift apart (each
`run_for` drops a different slice of real time in each page); paused, every
page moves only by the same `run_for` steps. Waits in real time therefore step
the clock too, so that timers such as the 50 ms settle of a claim can fire.
Fake time also outruns storage events, which travel between renderers in real
time: after each step the tabs pass a barrier in localStorage, so that every
tab has seen every other tab's writes before time moves on, as it would have
in a real browser, where a heartbeat of 3 s is ages for that message.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocketRoute, expect
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.dashboard_helpers import (
    HEARTBEAT_MS,
    LADDER,
    NO_WEBSOCKET,
    START,
    pass_storage_barrier,
    role,
    set_visibility,
)

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://coordhub.test"
MODULES = [
    "coordinator",
    "lease",
    "messages",
    "pause",
    "presence",
    "scheduler",
    "socket",
    "storage",
]
FILES = {
    **{
        f"/static/dashboard/{name}.js": (
            ROOT / f"dashboard/static/dashboard/{name}.js",
            "text/javascript",
        )
        for name in MODULES
    },
    "/harness/tabs.html": (ROOT / "tests/e2e/harness/tabs.html", "text/html"),
}
NAMESPACE = "coordhub:harness:"
LEADER_KEY = NAMESPACE + "leader"
BROADCAST_KEY = NAMESPACE + "broadcast"
TIMEOUT_MS = 10000
# Counters past the largest safe integer stop counting; storage.js bounds them lower.
HUGE = 2**53 - 1
MAX_SEQ = 2**31 - 1
# The fake /poll answers at the next step of the clock, so keep steps short.
STEP_MS = 500
SETTLE_MS = 100  # More than the 50 ms a claim waits before it leads.
NO_JITTER = "pollJitter=0"
SOCKET_URL = "ws://coordhub.test/ws/live/"
# The harness page with the dashboard's socket path, as index.html renders it.
WITH_SOCKET = "socketUrl=/ws/live/"
DESCRIBE_TAB = """({
    role: document.body.dataset.tabRole, now: Date.now(), polls: harness.polls,
    schedules: harness.schedules.slice(-3), errors: harness.errors, roles: harness.roles,
})"""
NO_LOCAL_STORAGE = """Object.defineProperty(window, "localStorage", {
    get() { throw new DOMException("Access is denied for this document.", "SecurityError"); },
});"""


@dataclass
class FakeServer:
    """Serve the harness and the module from disk; answer /poll like the live fragment."""

    body: str = "<p>state 1</p>"
    status: int = 200
    changing: bool = False
    hanging: bool = False
    holding: bool = False
    held: list[Route] = field(default_factory=list)
    polls: list[Page] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path == "/poll":
            self.answer_poll(route)
        elif path in FILES:
            file, content_type = FILES[path]
            route.fulfill(body=file.read_text(), content_type=content_type)
        else:
            route.fulfill(status=404)

    def answer_poll(self, route: Route) -> None:
        self.polls.append(route.request.frame.page)
        if self.hanging:
            return  # Never answered, like a server stuck behind a dead proxy.
        if self.holding:
            self.held.append(route)  # Answered by release(), like a slow server.
            return
        if self.changing:
            self.body = f"<p>state {len(self.polls)}</p>"
        route.fulfill(status=self.status, body=self.body, content_type="text/html")

    def polls_by(self, page: Page) -> int:
        return sum(1 for poller in self.polls if poller is page)

    def release(self) -> None:
        """Answer the polls held so far."""
        self.holding = False
        while self.held:
            self.held.pop(0).fulfill(body=self.body, content_type="text/html")


@dataclass
class FakeFeed:
    """Stand in for the change feed at /ws/live/: accept sockets, or fail their handshake."""

    accepting: bool = True
    sockets: list[WebSocketRoute] = field(default_factory=list)
    closed: list[WebSocketRoute] = field(default_factory=list)

    def handle(self, socket: WebSocketRoute) -> None:
        self.sockets.append(socket)
        if not self.accepting:
            # No such host behind the fake origin: the handshake fails, as with the server down.
            socket.connect_to_server()
            return
        # Not connected to a server: the page's socket opens and talks to this test only.
        socket.on_close(lambda code, reason: self.close(socket, code))

    @property
    def open_sockets(self) -> list[WebSocketRoute]:
        return [socket for socket in self.sockets if socket not in self.closed]

    def nudge(self, frame: str | bytes = '{"version": 1}') -> None:
        [socket] = self.open_sockets
        socket.send(frame)

    def drop(self, code: int = 1011) -> None:
        """Close the open socket from the server's side."""
        [socket] = self.open_sockets
        self.close(socket, code)

    def close(self, socket: WebSocketRoute, code: int | None) -> None:
        # Also when the page closed it: with on_close set, the test completes the closing.
        self.closed.append(socket)
        socket.close(code=code)


@dataclass
class Tabs:
    """One browser context: its fake server, its clock and the harness tabs open in it."""

    context: BrowserContext
    server: FakeServer
    feed: FakeFeed = field(default_factory=FakeFeed)
    shares_storage: bool = True
    pages: list[Page] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    barriers: int = 0

    def open(self, query: str = "") -> Page:
        """Open a harness tab and let any claim it made settle."""
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(f"{ORIGIN}/harness/tabs.html?{query}")
        self.pages.append(page)
        self.context.clock.run_for(SETTLE_MS)
        return page

    def open_many(self, count: int, query: str = "") -> list[Page]:
        return [self.open(query) for _ in range(count)]

    def advance(self, ms: int, step: int = STEP_MS) -> None:
        for _ in range(0, ms, step):
            self.step(step)

    def step(self, ms: int) -> None:
        self.context.clock.run_for(ms)
        self.pass_storage_barrier()

    def pass_storage_barrier(self) -> None:
        """Wait until every tab has seen the writes every other tab made so far."""
        pages = [page for page in self.pages if not page.is_closed()]
        if not self.shares_storage or len(pages) < 2:
            return
        self.barriers += 1
        pass_storage_barrier(pages, self.barriers)

    def advance_until(
        self, condition: Callable[[], bool], limit_ms: int, step: int = STEP_MS
    ) -> None:
        """Run the clock until condition holds, and fail if it takes longer than limit_ms."""
        for _ in range(0, limit_ms + step, step):
            if condition():
                return
            self.step(step)
        pytest.fail(f"Still not true after {limit_ms} ms of fake time; {self.describe()}")

    def describe(self) -> str:
        """Say what each tab is doing, for failure messages."""
        states = [page.evaluate(DESCRIBE_TAB) for page in self.pages if not page.is_closed()]
        return f"{len(self.server.polls)} polls served; tabs: {states}"

    def advance_until_rescheduled(self, page: Page, times: int, limit_ms: int = 40_000) -> None:
        """Run the clock until page's scheduler has armed `times` more polls."""
        target = len(delays(page)) + times
        self.advance_until(lambda: len(delays(page)) >= target, limit_ms)


@pytest.fixture
def make_tabs(browser: Browser) -> Iterator[Callable[..., Tabs]]:
    contexts: list[BrowserContext] = []

    def make(init_script: str | None = None) -> Tabs:
        context = browser.new_context()
        contexts.append(context)
        server, feed = FakeServer(), FakeFeed()
        context.route(f"{ORIGIN}/**", server.handle)
        context.route_web_socket(SOCKET_URL, feed.handle)
        if init_script:
            context.add_init_script(init_script)
        context.clock.install(time=START)
        context.clock.pause_at(START + timedelta(seconds=1))
        return Tabs(context, server, feed, shares_storage=init_script is None)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def tabs(make_tabs: Callable[..., Tabs]) -> Tabs:
    return make_tabs()


def leaders(pages: list[Page]) -> list[Page]:
    return [page for page in pages if role(page) == "leader"]


def wait_for_one_leader(
    tabs: Tabs, pages: list[Page], within_s: float, among: list[Page] | None = None
) -> Page:
    """Wait in real time until exactly one of pages leads, and it is one of `among`."""
    candidates = pages if among is None else among
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = leaders(pages)
        if len(found) == 1 and found[0] in candidates:
            return found[0]
        tabs.context.clock.run_for(10)
    pytest.fail(f"No single leader among {len(candidates)} tabs within {within_s} s.")


def role_history(page: Page) -> list[str]:
    return page.evaluate("harness.roles.map(change => change.role)")


def received(page: Page) -> list[list]:
    return page.evaluate("harness.received.map(message => [message.seq, message.html])")


def delays(page: Page) -> list[int]:
    return page.evaluate("harness.schedules.filter(s => s.delayMs !== null).map(s => s.delayMs)")


def scheduler_paused(page: Page) -> bool:
    return page.evaluate("harness.coordination.scheduler.paused")


def plant(page: Page, key: str, value: object) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    page.evaluate("([key, text]) => localStorage.setItem(key, text)", [key, text])


def wait_for_received(page: Page, count: int) -> None:
    page.wait_for_function(f"harness.received.length >= {count}", polling=50)


def crash(page: Page) -> None:
    """Kill the tab's renderer: no pagehide, no more timers, as in a real crash."""
    with page.expect_event("crash"), contextlib.suppress(PlaywrightError):
        page.goto("chrome://crash")
    # Its dead renderer would fail the clock's calls; closing it now runs nothing.
    page.close()


# The lease (lease.js): one leader, handed over on close, crash and visibility.


def test_five_tabs_elect_one_leader_that_alone_polls_as_much_as_one_tab(
    make_tabs: Callable[..., Tabs],
) -> None:
    crowd, alone = make_tabs(), make_tabs()
    pages = crowd.open_many(5, NO_JITTER)
    single = alone.open(NO_JITTER)

    # Steps of one heartbeat: the barrier after each keeps every lease fresh in every tab.
    for _ in range(0, 3 * 60_000, HEARTBEAT_MS):
        crowd.step(HEARTBEAT_MS)
        alone.step(HEARTBEAT_MS)

    [leader] = leaders(pages)
    assert set(crowd.server.polls) == {leader}
    assert abs(len(crowd.server.polls) - len(alone.server.polls)) <= 1
    assert len(alone.server.polls) >= 8
    assert alone.server.polls_by(single) == len(alone.server.polls)
    # Exactly one leader at all times: nobody's role ever changed after the election.
    assert role_history(leader) == ["leader"]
    assert all(role_history(page) == [] for page in pages if page is not leader)
    assert crowd.errors == []


def test_closing_the_leader_makes_another_tab_leader_at_once(tabs: Tabs) -> None:
    pages = tabs.open_many(3)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    background = [page for page in pages if page is not leader]
    # The user reads the leader; the others are background tabs, which cannot take
    # over by being visible: only the leader's resignation on pagehide hands over.
    for page in background:
        set_visibility(page, "hidden")

    closed_at = time.monotonic()
    with leader.expect_event("close"):
        leader.close(run_before_unload=True)
    successor = wait_for_one_leader(tabs, background, within_s=1)

    assert time.monotonic() - closed_at < 1

    tabs.server.polls.clear()
    tabs.advance(36_000, step=HEARTBEAT_MS)
    # Nobody looks at any tab now, so the successor polls at the 30 s maximum.
    assert tabs.server.polls == [successor]


def test_a_crashed_leader_is_replaced_within_the_timeout(tabs: Tabs) -> None:
    pages = tabs.open_many(3)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    survivors = [page for page in pages if page is not leader]

    crash(leader)
    # The last heartbeat gave the visible lease timeoutMs from then.
    lease = json.loads(survivors[0].evaluate(f"localStorage['{LEADER_KEY}']"))
    last_heartbeat_at = lease["expiresAt"] - TIMEOUT_MS
    tabs.advance_until(lambda: len(leaders(survivors)) == 1, limit_ms=TIMEOUT_MS + 2000)

    [successor] = leaders(survivors)
    took_over_at = successor.evaluate("harness.roles.at(-1).at")
    # Not before the lease runs out (a late heartbeat is not a crash), and right after.
    assert TIMEOUT_MS <= took_over_at - last_heartbeat_at <= TIMEOUT_MS + 250


def test_a_hidden_leader_hands_over_to_a_visible_tab_at_once(tabs: Tabs) -> None:
    pages = tabs.open_many(2)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    [other] = [page for page in pages if page is not leader]

    set_visibility(leader, "hidden")

    wait_for_one_leader(tabs, pages, within_s=1, among=[other])
    tabs.advance(120_000, step=HEARTBEAT_MS)
    assert role_history(leader) == ["leader", "follower"]
    assert role_history(other) == ["leader"]


def test_hidden_tabs_do_not_take_the_lease_of_a_throttled_hidden_leader(tabs: Tabs) -> None:
    pages = tabs.open_many(2)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    [other] = [page for page in pages if page is not leader]
    for page in (other, leader):
        set_visibility(page, "hidden")

    # Chrome may run a hidden tab's timers once a minute: freeze them for 60 s.
    leader.evaluate("harness.coordination.lease.stop()")
    tabs.advance(60_000, step=HEARTBEAT_MS)
    leader.evaluate("harness.coordination.lease.start()")
    tabs.advance(30_000, step=HEARTBEAT_MS)

    assert role_history(leader) == ["leader"]
    assert role_history(other) == []
    # And the moment someone looks at the other tab, it leads.
    set_visibility(other, "visible")
    wait_for_one_leader(tabs, pages, within_s=1, among=[other])


# Messages between tabs (messages.js): broadcasts in order, signals to the leader.


def test_followers_receive_each_broadcast_in_order_and_drop_stale_ones(tabs: Tabs) -> None:
    tabs.server.changing = True
    pages = tabs.open_many(3, NO_JITTER)
    tabs.advance_until(lambda: len(tabs.server.polls) == 3, limit_ms=30_000)
    [leader] = leaders(pages)
    followers = [page for page in pages if page is not leader]
    expected = [[1, "<p>state 1</p>"], [2, "<p>state 2</p>"], [3, "<p>state 3</p>"]]

    for page in pages:
        wait_for_received(page, 3)
        assert received(page) == expected

    plant(leader, BROADCAST_KEY, {"seq": 2, "html": "<p>stale</p>"})
    plant(leader, BROADCAST_KEY, {"seq": 7, "html": "<p>fresh</p>"})
    for follower in followers:
        follower.wait_for_function("harness.received.at(-1).seq === 7", polling=50)
        assert received(follower) == [*expected, [7, "<p>fresh</p>"]]
        assert follower.locator("#live").inner_text() == "<p>fresh</p>"


def test_a_new_tab_paints_the_last_broadcast_at_once(tabs: Tabs) -> None:
    tabs.server.body = "<p>operations: 2 running</p>"
    first = tabs.open(NO_JITTER)
    tabs.advance(6000)
    wait_for_received(first, 1)

    newcomer = tabs.open(NO_JITTER)

    assert newcomer.locator("#live").text_content() == "<p>operations: 2 running</p>"
    assert received(newcomer) == [[1, "<p>operations: 2 running</p>"]]
    assert tabs.server.polls_by(newcomer) == 0


def test_a_follower_forwards_actions_to_the_leader(tabs: Tabs) -> None:
    pages = tabs.open_many(2, NO_JITTER)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    [follower] = [page for page in pages if page is not leader]
    tabs.advance_until(lambda: delays(leader)[-1] == 6000, limit_ms=20_000)

    follower.evaluate("harness.coordination.noteAction()")

    leader.wait_for_function("harness.schedules.at(-1).delayMs === 5000", polling=50)


# The poll scheduler (scheduler.js): the server's ladder, pauses, errors, jitter.


def test_backoff_grows_to_the_cap_and_pauses_after_max_attempts(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&pollMaxAttempts=12")

    tabs.advance_until(lambda: scheduler_paused(page), limit_ms=260_000, step=1000)

    # The first poll is a change (nothing was shown yet), so the ladder restarts after it.
    assert delays(page) == [5000, *LADDER]
    assert len(tabs.server.polls) == 13
    assert page.locator("#next-poll").inner_text() == "paused"
    tabs.advance(120_000, step=5000)
    assert len(tabs.server.polls) == 13


def test_polling_resumes_on_focus_and_resets_on_change_or_action(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&pollMaxAttempts=4")
    tabs.advance_until(lambda: scheduler_paused(page), limit_ms=60_000)

    page.evaluate("window.dispatchEvent(new Event('focus'))")
    tabs.advance_until_rescheduled(page, times=2)
    assert delays(page)[-3:] == [0, 6000, 7200]

    tabs.server.body = "<p>state 2</p>"
    tabs.advance_until_rescheduled(page, times=1)
    assert delays(page)[-1] == 5000

    tabs.advance_until_rescheduled(page, times=1)
    assert delays(page)[-1] == 6000
    page.evaluate("harness.coordination.noteAction()")
    assert delays(page)[-1] == 5000


def test_polling_continues_with_backoff_through_server_errors(tabs: Tabs) -> None:
    tabs.server.status = 500
    page = tabs.open(NO_JITTER)
    wait_for_one_leader(tabs, [page], within_s=1)

    tabs.advance_until_rescheduled(page, times=3)

    assert delays(page) == [5000, 6000, 7200, 8640]
    assert page.evaluate("harness.errors") == ["Error: GET /poll answered 500"] * 3


def test_resuming_polls_at_once_even_though_the_click_is_an_action(tabs: Tabs) -> None:
    page = tabs.open(NO_JITTER)
    tabs.advance_until_rescheduled(page, times=2)
    page.evaluate("harness.coordination.pause()")
    polls, armed = len(tabs.server.polls), len(delays(page))

    # The Resume button's click reaches the page as an action too, right after it.
    page.evaluate("harness.coordination.resume(); harness.coordination.noteAction()")
    # Well before the first step of the ladder (5 s), where an action would have put it.
    tabs.advance_until(lambda: len(tabs.server.polls) == polls + 1, limit_ms=2000)

    assert delays(page)[armed] == 0


def test_a_hung_poll_is_abandoned_and_polling_goes_on(tabs: Tabs) -> None:
    tabs.server.hanging = True
    page = tabs.open(NO_JITTER)
    wait_for_one_leader(tabs, [page], within_s=5)

    tabs.advance_until_rescheduled(page, times=1)

    assert delays(page) == [5000, 6000]
    assert page.evaluate("harness.errors") == ["Error: The poll took longer than 30000 ms."]


def test_poll_intervals_carry_up_to_ten_percent_of_jitter(tabs: Tabs) -> None:
    page = tabs.open()
    wait_for_one_leader(tabs, [page], within_s=1)

    tabs.advance_until_rescheduled(page, times=3)

    ladder = [5000, 5000, 6000, 7200]
    pairs = zip(delays(page), ladder, strict=True)
    assert all(0.9 * base <= delay <= 1.1 * base for delay, base in pairs)
    assert delays(page) != ladder


# Records in localStorage (storage.js): untrusted, validated, cleared per namespace.


def test_markup_planted_in_the_broadcast_key_is_never_executed(tabs: Tabs) -> None:
    planter, victim = tabs.open_many(2)
    attack = '<img src=x onerror="window.pwned = true"><script>window.pwned = true</script>'

    plant(planter, BROADCAST_KEY, "not json {")
    plant(planter, BROADCAST_KEY, {"seq": "9", "html": {"toString": "x"}})
    plant(planter, BROADCAST_KEY, {"seq": 50, "html": attack})
    victim.wait_for_function("harness.received.length === 1", polling=50)
    newcomer = tabs.open()

    for page in (victim, newcomer):
        assert received(page) == [[50, attack]]
        assert page.locator("#live").text_content() == attack
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("window.pwned") is None
    assert tabs.errors == []


def test_a_planted_lease_far_in_the_future_does_not_block_elections(tabs: Tabs) -> None:
    planter = tabs.open()
    planter.evaluate("harness.coordination.stop()")
    forever = {"tabId": "intruder", "epoch": 9, "expiresAt": 10**15, "hidden": False}
    plant(planter, LEADER_KEY, forever)

    newcomer = tabs.open()

    assert wait_for_one_leader(tabs, [newcomer], within_s=1) is newcomer


def test_a_planted_lease_with_a_huge_epoch_does_not_stop_elections(tabs: Tabs) -> None:
    planter = tabs.open()
    planter.evaluate("harness.coordination.stop()")
    now = planter.evaluate("Date.now()")
    # One claim past it, an epoch is no longer a safe integer and no claim would check out.
    huge = {"tabId": "intruder", "epoch": HUGE, "expiresAt": now + 5000, "hidden": False}
    plant(planter, LEADER_KEY, huge)

    pages = tabs.open_many(2, NO_JITTER)

    tabs.advance_until(lambda: len(leaders(pages)) == 1, limit_ms=TIMEOUT_MS)
    [leader] = leaders(pages)
    tabs.advance_until(lambda: tabs.server.polls_by(leader) >= 2, limit_ms=15_000)
    tabs.advance(30_000, step=HEARTBEAT_MS)
    assert leaders(pages) == [leader]
    assert set(tabs.server.polls) == {leader}


def test_broadcasts_go_on_after_planted_sequence_numbers_at_or_past_the_bound(
    tabs: Tabs,
) -> None:
    pages = tabs.open_many(2, NO_JITTER)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    [follower] = [page for page in pages if page is not leader]
    broadcast = "html => harness.coordination.messages.broadcast(html)"

    # Past the safe integers: read as absent, so the leader counts on from its own.
    plant(follower, BROADCAST_KEY, {"seq": HUGE, "html": "<p>planted</p>"})
    leader.evaluate(broadcast, "<p>one</p>")
    follower.wait_for_function("harness.received.at(-1)?.html === '<p>one</p>'", polling=50)
    assert [html for _, html in received(follower)] == ["<p>one</p>"]
    # At the bound: taken, and the next broadcast starts again from 1 everywhere.
    plant(follower, BROADCAST_KEY, {"seq": MAX_SEQ, "html": "<p>at the bound</p>"})
    leader.wait_for_function(f"harness.received.at(-1).seq === {MAX_SEQ}", polling=50)
    leader.evaluate(broadcast, "<p>two</p>")
    leader.evaluate(broadcast, "<p>three</p>")
    follower.wait_for_function("harness.received.at(-1)?.html === '<p>three</p>'", polling=50)
    assert received(follower)[-2:] == [[1, "<p>two</p>"], [2, "<p>three</p>"]]


def test_clearing_a_namespace_removes_its_keys_only(tabs: Tabs) -> None:
    page = tabs.open()
    plant(page, "coordhub:someone-else:broadcast", {"seq": 1, "html": "theirs"})
    plant(page, "unrelated", "kept")
    page.evaluate("harness.coordination.messages.broadcast('<p>mine</p>')")

    page.evaluate("harness.coordination.clear()")

    keys = page.evaluate("Object.keys(localStorage)")
    assert sorted(keys) == ["coordhub:someone-else:broadcast", "unrelated"]


# The coordinator (coordinator.js): the leader polls and every tab gets the result.


def test_a_single_tab_leads_and_polls(tabs: Tabs) -> None:
    page = tabs.open(NO_JITTER)

    tabs.advance(6000)

    assert role(page) == "leader"
    assert tabs.server.polls == [page]
    expect(page.locator("#live")).to_have_text("<p>state 1</p>")
    expect(page.locator("#next-poll")).to_have_text(re.compile(r"^2030-01-01T00:00:1"))


def test_without_local_storage_each_tab_polls_on_its_own(make_tabs: Callable[..., Tabs]) -> None:
    tabs = make_tabs(init_script=NO_LOCAL_STORAGE)
    pages = tabs.open_many(3, NO_JITTER)

    tabs.advance_until(lambda: all(len(delays(page)) == 4 for page in pages), limit_ms=30_000)

    assert [role(page) for page in pages] == ["leader"] * 3
    # Each tab on its own ladder: 5 s (first result), 5 s, then 6 s.
    assert [tabs.server.polls_by(page) for page in pages] == [3, 3, 3]
    assert all(delays(page) == [5000, 5000, 6000, 7200] for page in pages)
    assert tabs.errors == []


# The nudge socket (socket.js) and the scheduler's push mode: the leader alone holds
# the socket, polls on nudges and a safety poll at the longest interval while it is up,
# and falls back to the ladder at once when it drops.

LONGEST_MS = LADDER[-1]
MALFORMED_FRAMES = [
    "not json",
    "[1]",
    "null",
    "7",
    '"version"',
    "{}",
    '{"version": "8"}',
    '{"version": null}',
    '{"version": [8]}',
    '{"version": 1e999}',  # Infinity once parsed
    '{"version": 8, "padding": "' + "x" * 300 + '"}',  # longer than any nudge
    b'{"version": 8}',  # a binary frame
]


def sockets(page: Page) -> list[dict]:
    """The WebSockets page opened: url, opened and closed at (fake time), frames, close code."""
    return page.evaluate("harness.sockets")


def wait_until_live(page: Page) -> None:
    """Wait in real time until page's socket is up and its catch-up poll has been answered."""
    page.wait_for_function("harness.schedules.at(-1)?.live === true", polling=20)


def wait_for_announcements(page: Page, count: int) -> None:
    """Wait until page's scheduler has announced `count` schedules: each poll ends with one."""
    page.wait_for_function(f"harness.schedules.length >= {count}", polling=20)


def announcements(page: Page) -> int:
    return page.evaluate("harness.schedules.length")


def retry_gaps(page: Page) -> list[int]:
    """How long after each socket closed the next one was opened, in fake time."""
    return [later["at"] - earlier["closedAt"] for earlier, later in pairwise(sockets(page))]


def off_the_backoff(page: Page, bases: list[int], slack_ms: int = 100) -> list[tuple[int, int]]:
    """The (gap, base) pairs of page's reconnects that ±20% jitter does not explain."""
    observed = retry_gaps(page)
    assert len(observed) == len(bases), sockets(page)
    pairs = zip(observed, bases, strict=True)
    return [
        (gap, base)
        for gap, base in pairs
        if not 0.8 * base - slack_ms <= gap <= 1.2 * base + slack_ms
    ]


def test_only_the_leader_opens_a_socket_and_closes_it_when_it_stops_leading(tabs: Tabs) -> None:
    pages = tabs.open_many(3, WITH_SOCKET)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    wait_until_live(leader)
    followers = [page for page in pages if page is not leader]

    assert [socket["url"] for socket in sockets(leader)] == [SOCKET_URL]
    assert [sockets(page) for page in followers] == [[], []]
    assert len(tabs.feed.sockets) == 1

    # The leader goes to the background: a visible tab takes the lead, and the socket.
    set_visibility(leader, "hidden")
    successor = wait_for_one_leader(tabs, pages, within_s=1, among=followers)
    wait_until_live(successor)

    [old] = sockets(leader)
    assert old["closedAt"] is not None
    assert [socket["closedAt"] for socket in sockets(successor)] == [None]
    assert [len(sockets(page)) for page in pages] == [
        1 if page in (leader, successor) else 0 for page in pages
    ]
    assert len(tabs.feed.sockets) == 2
    assert tabs.errors == []


def test_a_nudge_polls_once_at_once_and_nudges_during_a_poll_add_one_poll(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)
    # Once up, it polls at once for what changed before the socket was there.
    assert tabs.server.polls == [page]
    now = page.evaluate("Date.now()")

    announced = announcements(page)
    tabs.feed.nudge('{"version": 1}')
    wait_for_announcements(page, announced + 1)
    assert len(tabs.server.polls) == 2

    # Three nudges while a poll is in flight: one more poll right after it, not three.
    tabs.server.holding = True
    tabs.feed.nudge('{"version": 2}')
    page.wait_for_function("harness.polls === 3", polling=20)
    tabs.feed.nudge('{"version": 3}')
    tabs.feed.nudge('{"version": 4}')
    page.wait_for_function("harness.sockets[0].frames === 4", polling=20)
    announced = announcements(page)
    tabs.server.release()
    wait_for_announcements(page, announced + 1)

    assert len(tabs.server.polls) == 4
    # Nudges are acted on without waiting for any timer: the clock never moved.
    assert page.evaluate("Date.now()") == now
    assert delays(page)[-1] == LONGEST_MS
    assert tabs.errors == []


def test_while_the_socket_is_up_only_safety_polls_at_the_longest_interval_and_no_pause(
    tabs: Tabs,
) -> None:
    page = tabs.open(f"{NO_JITTER}&pollMaxAttempts=3&{WITH_SOCKET}")
    wait_until_live(page)

    tabs.advance(10 * 60_000)
    page.evaluate("harness.coordination.noteAction()")
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    set_visibility(page, "visible")

    # The ladder's first step was armed before the socket opened; then only safety polls,
    # far more than pollMaxAttempts unchanged ones, and neither actions nor focus poll.
    armed = delays(page)
    assert armed[0] == 5000
    assert set(armed[1:]) == {LONGEST_MS}
    assert len(tabs.server.polls) == len(armed) - 1 >= 19
    assert not scheduler_paused(page)
    expect(page.locator("#next-poll")).not_to_have_text("paused")


def test_when_the_socket_drops_polling_takes_the_ladder_at_once_and_reconnects_with_backoff(
    tabs: Tabs,
) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)
    dropped_at = page.evaluate("Date.now()")

    tabs.feed.accepting = False  # the server is down: every handshake fails
    tabs.feed.drop()
    page.wait_for_function("harness.schedules.at(-1).live === false", polling=20)
    schedule = page.evaluate("harness.schedules.at(-1)")
    assert (schedule["delayMs"], schedule["at"]) == (5000, dropped_at)

    tabs.advance(20_000, step=100)

    # Reconnects 1, 2, 4 and 8 s (±20%) after each close, while polling climbs the ladder.
    assert off_the_backoff(page, [1000, 2000, 4000, 8000]) == []
    assert [socket["code"] for socket in sockets(page)] == [1011, 1006, 1006, 1006, 1006]
    assert delays(page)[-4:] == [5000, 6000, 7200, 8640]
    assert len(tabs.server.polls) == 4

    # The server is back: the next attempt (16 s after the last) puts the tab back live.
    tabs.feed.accepting = True
    tabs.advance_until(lambda: len(sockets(page)) == 6, limit_ms=20_000, step=100)
    wait_until_live(page)
    assert off_the_backoff(page, [1000, 2000, 4000, 8000, 16_000]) == []
    # Up again, it polls at once for what it missed, then waits for nudges.
    assert 0 <= page.evaluate("harness.polledAt.at(-1)") - sockets(page)[-1]["at"] <= 200
    assert delays(page)[-1] == LONGEST_MS


def test_backoff_starts_again_after_a_socket_that_stayed_up(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)

    def drop_and_reconnect() -> None:
        count = len(sockets(page)) + 1
        tabs.feed.drop()
        tabs.advance_until(lambda: len(sockets(page)) == count, limit_ms=3000, step=100)
        wait_until_live(page)

    # Dropped right after opening: 1 s, then 2 s; after 15 s up, 1 s again.
    drop_and_reconnect()
    drop_and_reconnect()
    tabs.advance(15_000)
    drop_and_reconnect()

    assert off_the_backoff(page, [1000, 2000, 1000]) == []


def test_too_many_sockets_waits_longest_and_a_refusal_ends_the_attempts(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)

    tabs.feed.drop(code=4429)
    tabs.advance_until(lambda: len(sockets(page)) == 2, limit_ms=40_000)
    wait_until_live(page)
    assert off_the_backoff(page, [30_000], slack_ms=STEP_MS) == []

    # A forged origin will not be mended by trying again: the tab only polls from now on.
    armed = len(delays(page))
    tabs.feed.drop(code=4403)
    tabs.advance(5 * 60_000, step=1000)
    assert len(sockets(page)) == 2
    assert delays(page)[armed : armed + 6] == LADDER[:6]
    assert len(delays(page)) > armed + 10


def test_malformed_frames_are_ignored(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)
    polls = len(tabs.server.polls)

    for frame in MALFORMED_FRAMES:
        tabs.feed.nudge(frame)
    # A real nudge after them: had any of them polled, this one would poll a second time.
    announced = announcements(page)
    tabs.feed.nudge('{"version": 9, "more": "ignored"}')
    page.wait_for_function(f"harness.sockets[0].frames === {len(MALFORMED_FRAMES) + 1}")
    wait_for_announcements(page, announced + 1)

    assert len(tabs.server.polls) == polls + 1
    assert page.evaluate("harness.coordination.scheduler.live") is True
    assert tabs.errors == []


def test_pausing_closes_the_socket_and_stops_polling_until_resumed(tabs: Tabs) -> None:
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")
    wait_until_live(page)
    polls = len(tabs.server.polls)

    page.evaluate("harness.coordination.pause()")
    tabs.advance(5 * 60_000, step=5000)

    assert sockets(page)[0]["closedAt"] is not None
    assert len(sockets(page)) == 1
    assert len(tabs.server.polls) == polls
    page.evaluate("harness.coordination.resume()")
    wait_until_live(page)
    assert len(sockets(page)) == 2
    assert len(tabs.server.polls) > polls


def test_without_websocket_the_leader_polls_on_the_ladder_as_before(
    make_tabs: Callable[..., Tabs],
) -> None:
    tabs = make_tabs(init_script=NO_WEBSOCKET)
    page = tabs.open(f"{NO_JITTER}&{WITH_SOCKET}")

    tabs.advance_until_rescheduled(page, times=3)

    assert role(page) == "leader"
    assert delays(page) == [5000, 5000, 6000, 7200]
    assert tabs.server.polls == [page] * 3
    assert tabs.feed.sockets == []
    assert page.evaluate("harness.coordination.socket") is None
    assert tabs.errors == []


# The open tabs (presence.js): each tab's record, renewed on the heartbeat, counted
# by every tab, with planted records bounded; and the user's pause, shared by every
# tab through one record (pause.js).

PAUSE_KEY = NAMESPACE + "pause"
TAB_PREFIX = NAMESPACE + "tab:"
MAX_COUNTED_TABS = 100
# Presence records planted in bulk: as many with ids of the right form as junk keys.
PLANT_PRESENCE_FLOOD = """([prefix, count, seenAt]) => {
    for (let index = 0; index < count; index += 1) {
        const id = index.toString(16).padStart(16, "0");
        localStorage.setItem(prefix + id, JSON.stringify({seenAt, hidden: false}));
        localStorage.setItem(`flood:${id}`, "x");
    }
}"""


def tab_count(page: Page) -> dict | None:
    """What page last reported: {tabs, capped}."""
    return page.evaluate("harness.counts.at(-1) ?? null")


def pause_state(page: Page) -> str:
    """ "here" (this tab paused), "elsewhere" (another tab did) or "no"."""
    return page.locator("#paused").inner_text()


def presence_keys(page: Page) -> list[str]:
    return page.evaluate(f"Object.keys(localStorage).filter(key => key.startsWith('{TAB_PREFIX}'))")


def test_every_tab_counts_the_open_tabs_and_a_closed_or_crashed_tab_drops_out(
    tabs: Tabs,
) -> None:
    pages = tabs.open_many(4)
    tabs.step(STEP_MS)
    assert [tab_count(page) for page in pages] == [{"tabs": 4, "capped": False}] * 4

    closed, crashed, *survivors = pages
    with closed.expect_event("close"):
        closed.close(run_before_unload=True)
    # Counted again on the storage event: sooner than a heartbeat.
    tabs.advance_until(
        lambda: all(tab_count(page)["tabs"] == 3 for page in [crashed, *survivors]),
        limit_ms=2 * STEP_MS,
    )

    # A crash leaves its record; it counts until it is older than the lease's timeout.
    crash(crashed)
    tabs.advance_until(
        lambda: all(tab_count(page)["tabs"] == 2 for page in survivors),
        limit_ms=TIMEOUT_MS + HEARTBEAT_MS,
    )
    assert len(presence_keys(survivors[0])) == 3  # not yet gone for good: hidden tabs lag
    tabs.advance(75_000, step=HEARTBEAT_MS)
    assert len(presence_keys(survivors[0])) == 2
    assert tabs.errors == []


def test_a_hidden_tab_counts_while_its_timers_run_a_minute_late(tabs: Tabs) -> None:
    watcher = tabs.open()
    # The last record of a hidden tab whose timers Chrome now runs once a minute.
    now = watcher.evaluate("Date.now()")
    plant(watcher, TAB_PREFIX + "0123456789abcdef", {"seenAt": now, "hidden": True})

    tabs.advance(60_000, step=HEARTBEAT_MS)
    assert tab_count(watcher) == {"tabs": 2, "capped": False}
    tabs.advance(18_000, step=HEARTBEAT_MS)
    assert tab_count(watcher) == {"tabs": 1, "capped": False}


def test_a_flood_of_planted_presence_records_counts_as_100_plus_and_keeps_tabs_fast(
    tabs: Tabs,
) -> None:
    pages = tabs.open_many(2, NO_JITTER)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    now = leader.evaluate("Date.now()")

    leader.evaluate(PLANT_PRESENCE_FLOOD, [TAB_PREFIX, 1500, now])
    tabs.step(STEP_MS)
    started = time.monotonic()
    # A heartbeat counts the tabs again (the storage events of the flood, once).
    set_visibility(leader, "visible")
    beat_s = time.monotonic() - started

    assert [tab_count(page) for page in pages] == [{"tabs": MAX_COUNTED_TABS, "capped": True}] * 2
    assert beat_s < 0.5
    # Stale, the flood is removed as it is read; until then a tab may count short (only
    # the first keys are read), but never slowly.
    tabs.server.polls.clear()
    tabs.advance(30_000, step=HEARTBEAT_MS)
    tabs.advance_until(
        lambda: all(tab_count(page)["tabs"] == 2 for page in pages),
        limit_ms=120_000,
        step=HEARTBEAT_MS,
    )
    assert set(tabs.server.polls) == {leader}
    assert len(tabs.server.polls) >= 3
    assert tabs.errors == []


def test_planted_presence_records_that_fail_their_checks_neither_count_nor_stay(
    tabs: Tabs,
) -> None:
    page = tabs.open()
    now = page.evaluate("Date.now()")
    planted = {
        "0000000000000001": "not json",
        "0000000000000002": {"seenAt": "now", "hidden": False},
        "0000000000000003": {"seenAt": now},
        "0000000000000004": {"seenAt": now + 10**12, "hidden": False},  # from "the future"
        "0000000000000005": {"seenAt": now - 10**6, "hidden": True},  # long gone
    }
    for tab_id, record in planted.items():
        plant(page, TAB_PREFIX + tab_id, record)
    plant(page, TAB_PREFIX + "NOT-A-TAB-ID", {"seenAt": now, "hidden": False})

    tabs.advance(HEARTBEAT_MS)

    assert tab_count(page) == {"tabs": 1, "capped": False}
    assert len(presence_keys(page)) == 2  # this tab's, and the key no tab id names
    assert tabs.errors == []


def test_a_pause_in_a_follower_quiets_the_leader_and_a_resume_in_another_tab_polls_at_once(
    tabs: Tabs,
) -> None:
    pages = tabs.open_many(3, f"{NO_JITTER}&{WITH_SOCKET}")
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    pauser, resumer = [page for page in pages if page is not leader]
    tabs.advance_until(lambda: tabs.server.polls_by(leader) >= 1, limit_ms=10_000)

    pauser.evaluate("harness.coordination.pause()")
    tabs.step(STEP_MS)
    polls = len(tabs.server.polls)
    tabs.advance(5 * 60_000, step=5000)

    assert [pause_state(page) for page in pages] == [
        "here" if page is pauser else "elsewhere" for page in pages
    ]
    assert len(tabs.server.polls) == polls
    assert [socket["closedAt"] is not None for socket in sockets(leader)] == [True]
    resumer.evaluate("harness.coordination.resume()")
    # At once, and the socket opens again (up, it asks for what it missed once more).
    tabs.advance_until(lambda: len(tabs.server.polls) > polls, limit_ms=STEP_MS)
    assert set(tabs.server.polls[polls:]) == {leader}
    wait_until_live(leader)
    assert len(sockets(leader)) == 2
    assert [pause_state(page) for page in pages] == ["no"] * 3
    # Pausing in one tab and resuming in another is one change each, in every tab.
    assert [len(page.evaluate("harness.pauses")) for page in pages] == [3] * 3
    assert tabs.errors == []


def test_the_lead_passing_during_a_pause_stays_quiet_and_a_new_tab_starts_paused(
    tabs: Tabs,
) -> None:
    pages = tabs.open_many(2, NO_JITTER)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    [follower] = [page for page in pages if page is not leader]
    leader.evaluate("harness.coordination.pause()")
    tabs.step(STEP_MS)
    polls = len(tabs.server.polls)

    with leader.expect_event("close"):
        leader.close(run_before_unload=True)
    wait_for_one_leader(tabs, [follower], within_s=1)
    newcomer = tabs.open(NO_JITTER)
    tabs.advance(60_000, step=HEARTBEAT_MS)

    assert [pause_state(page) for page in (follower, newcomer)] == ["elsewhere"] * 2
    assert len(tabs.server.polls) == polls
    newcomer.evaluate("harness.coordination.resume()")
    tabs.advance_until(lambda: tabs.server.polls_by(follower) > 0, limit_ms=STEP_MS)


def test_a_pause_left_by_tabs_all_closed_ends_and_clearing_the_namespace_ends_one(
    tabs: Tabs,
) -> None:
    first = tabs.open(NO_JITTER)
    first.evaluate("harness.coordination.pause()")
    with first.expect_event("close"):
        first.close(run_before_unload=True)

    # Alone, a new visit does not start paused: the pause was that of the closed tabs.
    alone = tabs.open(NO_JITTER)
    assert pause_state(alone) == "no"
    assert alone.evaluate(f"localStorage.getItem('{PAUSE_KEY}')") is None
    other = tabs.open(NO_JITTER)
    other.evaluate("harness.coordination.pause()")
    tabs.step(STEP_MS)
    assert pause_state(alone) == "elsewhere"

    # Sign-out clears the namespace: the pause goes with it, in every tab.
    other.evaluate("harness.coordination.clear()")
    tabs.step(STEP_MS)
    assert pause_state(alone) == "no"
    tabs.advance_until(lambda: tabs.server.polls_by(alone) > 0, limit_ms=STEP_MS)


@pytest.mark.parametrize(
    "record",
    [
        "not json {",
        "null",
        '"paused"',
        {"paused": True},
        {"tabId": 7, "since": 1},
        {"tabId": "x" * 65, "since": 1},
        {"tabId": "intruder", "since": "yesterday"},
        {"tabId": "intruder", "since": 1e999},
    ],
)
def test_a_planted_pause_record_that_fails_its_checks_reads_as_not_paused(
    tabs: Tabs, record: object
) -> None:
    pages = tabs.open_many(2, NO_JITTER)
    leader = wait_for_one_leader(tabs, pages, within_s=1)
    text = json.dumps(record).replace("Infinity", "1e999") if isinstance(record, dict) else record

    plant(leader, PAUSE_KEY, text)
    newcomer = tabs.open(NO_JITTER)
    tabs.server.polls.clear()
    tabs.advance(12_000)

    assert [pause_state(page) for page in [*pages, newcomer]] == ["no"] * 3
    assert set(tabs.server.polls) == {leader}
    assert len(tabs.server.polls) >= 1
    assert tabs.errors == []
