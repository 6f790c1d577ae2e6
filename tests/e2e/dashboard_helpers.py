"""Drive the real dashboard in Chromium under Playwright's paused clock.

Each `Dashboard` is one browser context on a live coordhub. Its clock is
installed paused, so every tab moves only by the same `run_for` steps, as in
`test_tabs.py`. Two things travel in real time and must be waited for after
each step, before fake time moves on:

* a poll in flight: the leader sets its next timer from `Date.now()` when the
  response has been handled, so letting fake time run while the server answers
  would stretch the gap. A probe wraps `fetch` to note, in the page's fake time,
  when each `/dashboard/live/` request left, and to count those not yet handled;
* storage events between tabs: after each step every tab passes a barrier in
  localStorage, so that each has seen the others' writes (leases, broadcasts).

Requests are also recorded from the network side with `page.on("request")`:
that is what the server saw, and which tab sent it.

Its tabs have no WebSocket unless asked (`socket=True`): without the change
feed's nudges the leader polls on the ladder, which is what these tests time.
The nudges themselves are tested in real time in test_live_socket.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from tests.live import LiveServer

LIVE_PATH = "/dashboard/live/"
BROADCAST_KEY = "coordhub:anonymous:broadcast"
LEADER_KEY = "coordhub:anonymous:leader"
START = datetime(2030, 1, 1, tzinfo=UTC)
HEARTBEAT_MS = 3000
# What the ladder gives from 5000 ms, times 1.2 up to 30000, rounded at each step.
LADDER = [5000, 6000, 7200, 8640, 10368, 12442, 14930, 17916, 21499, 25799, 30000, 30000]
JITTER = 0.1
# Operations are started from another loopback address: another client, whose
# start and read budgets are not the browser's.
API_ADDRESS = "127.0.0.2"

# Installed before the page's scripts: note each poll's departure in fake time and
# count the polls whose answer the page has not finished handling.
FETCH_PROBE = """(() => {
  const probe = { sentAt: [], inFlight: 0 };
  Object.defineProperty(window, "coordhubProbe", { value: probe });
  const realFetch = window.fetch;
  const settle = () => { probe.inFlight -= 1; };
  window.fetch = function (input, init) {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (url.pathname !== "/dashboard/live/") return realFetch.call(this, input, init);
    probe.sentAt.push(Date.now());
    probe.inFlight += 1;
    return realFetch.call(this, input, init).then(
      (response) => {
        if (response.status !== 200) {
          settle();
          return response;
        }
        // The dashboard reads the body, then paints and arms its next poll in the
        // same run of microtasks: settled once the body is read.
        const text = response.text.bind(response);
        response.text = () => text().finally(settle);
        return response;
      },
      (error) => {
        settle();
        throw error;
      },
    );
  };
})();"""
# The page cannot hide itself, so tests make `document.visibilityState` say so.
SET_VISIBILITY = """state => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
    document.dispatchEvent(new Event("visibilitychange"));
}"""
WRITE_BARRIER = """([index, count]) => localStorage.setItem(`test-barrier:${index}`, count)"""
PASS_BARRIER = """([tabs, count]) => new Promise(resolve => {
    const passed = () => Array.from({length: tabs}, (_, index) => index)
        .every(index => localStorage.getItem(`test-barrier:${index}`) === String(count));
    const check = () => passed() && resolve(window.removeEventListener("storage", check));
    window.addEventListener("storage", check);
    check();
})"""
POLLS_SETTLED = "() => window.coordhubProbe.inFlight === 0"
# A browser without WebSocket support: the dashboard only polls, as it did before the feed.
NO_WEBSOCKET = "delete window.WebSocket;"
NEXT_POLL = re.compile(r"Next poll in (\d+) s")
# Steps of fake time: fine near a poll, so that its answer is handled at most
# FINE_STEP_MS late (which would stretch the gap to the next poll), coarse elsewhere.
FINE_STEP_MS = 100
COARSE_STEP_MS = 1000


@dataclass
class BrowserTabs:
    """Dashboard tabs in one browser context, their errors, and their polls as sent."""

    context: BrowserContext
    server: LiveServer
    pages: list[Page] = field(default_factory=list)
    requests: list[tuple[Page, Request]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self) -> Page:
        """Open a dashboard tab."""
        page = self.context.new_page()
        self.watch(page)
        page.goto(self.server.url + "/")
        self.pages.append(page)
        return page

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.note_request(page, request))

    def note_request(self, page: Page, request: Request) -> None:
        if urlsplit(request.url).path == LIVE_PATH:
            self.requests.append((page, request))

    @property
    def open_pages(self) -> list[Page]:
        return [page for page in self.pages if not page.is_closed()]

    def requests_by(self, page: Page) -> int:
        return sum(1 for sender, _ in self.requests if sender is page)

    def leaders(self) -> list[Page]:
        return [page for page in self.open_pages if role(page) == "leader"]

    def close(self) -> None:
        self.context.close()


@dataclass
class Dashboard(BrowserTabs):
    """One browser context on the dashboard: its paused clock, tabs and their polls."""

    barriers: int = 0

    @classmethod
    def open_context(cls, browser: Browser, server: LiveServer, socket: bool = False) -> Dashboard:
        context = browser.new_context()
        context.add_init_script(FETCH_PROBE)
        if not socket:
            context.add_init_script(NO_WEBSOCKET)
        context.clock.install(time=START)
        context.clock.pause_at(START + timedelta(seconds=1))
        return cls(context, server)

    def open(self, settle: bool = True) -> Page:
        """Open a dashboard tab and let any claim it made settle."""
        page = super().open()
        if settle:
            self.step(100)
        return page

    def now(self) -> int:
        """The fake time of the tabs, in ms since the epoch."""
        return self.open_pages[0].evaluate("Date.now()")

    def step(self, ms: int) -> None:
        self.context.clock.run_for(ms)
        self.settle()

    def settle(self) -> None:
        """Wait in real time for answers in flight and for storage events between tabs."""
        pages = self.open_pages
        for page in pages:
            page.wait_for_function(POLLS_SETTLED, polling=10, timeout=15_000)
        if len(pages) < 2:
            return
        self.barriers += 1
        pass_storage_barrier(pages, self.barriers)

    def advance(self, ms: int, step: int) -> None:
        for _ in range(0, ms, step):
            self.step(step)

    def advance_until(
        self, condition: Callable[[], bool], limit_ms: int, step: int | None = None
    ) -> None:
        """Run the clock until condition holds; fail if that takes more than limit_ms.

        Without a fixed step, steps are coarse until the footer says a poll is near.
        """
        ran = 0
        while not condition():
            if ran > limit_ms:
                pytest.fail(f"Still not true after {limit_ms} ms of fake time; {self.describe()}")
            ms = step or self.paced_step()
            self.step(ms)
            ran += ms

    def paced_step(self) -> int:
        # The footer is at most one second old, so "3 s" leaves more than a coarse step.
        seconds = [
            int(found.group(1))
            for page in self.open_pages
            if (found := NEXT_POLL.search(poll_status(page)))
        ]
        return FINE_STEP_MS if seconds and min(seconds) < 3 else COARSE_STEP_MS

    def sent_at(self, page: Page) -> list[int]:
        """When page sent each poll, in its fake time."""
        return page.evaluate("window.coordhubProbe.sentAt")

    def polls(self) -> int:
        """Polls sent by all tabs, counted in the pages."""
        return sum(len(self.sent_at(page)) for page in self.open_pages)

    def wait_for_requests(self, count: int, timeout_s: float = 10) -> None:
        """Wait in real time until the network has reported `count` polls."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            self.open_pages[0].wait_for_timeout(20)

    def describe(self) -> str:
        states = [
            {"role": role(page), "sent": self.sent_at(page), "status": poll_status(page)}
            for page in self.open_pages
        ]
        return f"{len(self.requests)} polls seen; tabs: {states}"


def pass_storage_barrier(pages: list[Page], number: int) -> None:
    """Wait until every tab has seen the writes every other tab made before barrier `number`."""
    # Each tab's writes reach the others in order, so its marker comes after them.
    for index, page in enumerate(pages):
        page.evaluate(WRITE_BARRIER, [index, number])
    for page in pages:
        page.evaluate(PASS_BARRIER, [len(pages), number])


def set_visibility(page: Page, state: str) -> None:
    page.evaluate(SET_VISIBILITY, state)


def role(page: Page) -> str:
    return page.evaluate("document.body.dataset.tabRole")


def poll_status(page: Page) -> str:
    return page.locator("#poll-status").inner_text()


def gaps(times: list[int]) -> list[int]:
    return [later - earlier for earlier, later in pairwise(times)]


def within_jitter(gap: int, base: int, slack_ms: int = 0) -> bool:
    return (1 - JITTER) * base - slack_ms <= gap <= (1 + JITTER) * base + slack_ms


def off_the_ladder(observed: list[int], ladder: list[int], slack_ms: int) -> list[tuple[int, int]]:
    """Return the (gap, base) pairs that the jitter does not explain; [] when all fit."""
    pairs = zip(observed, ladder, strict=True)
    return [(gap, base) for gap, base in pairs if not within_jitter(gap, base, slack_ms)]


def plant(page: Page, key: str, record: object) -> None:
    """Write a record into localStorage as anything on the origin could."""
    page.evaluate("([key, text]) => localStorage.setItem(key, text)", [key, json.dumps(record)])


def live_html(page: Page, **dataset: str) -> str:
    """The page's live region as markup, with some of its data-* attributes changed."""
    return page.evaluate(
        """dataset => {
            const live = document.getElementById("live").cloneNode(true);
            Object.assign(live.dataset, dataset);
            return live.outerHTML;
        }""",
        dataset,
    )


def live_versions(page: Page) -> dict[str, str]:
    return page.evaluate(
        "({content: document.getElementById('live').dataset.contentVersion,"
        " state: document.getElementById('live').dataset.stateVersion})"
    )


def operations_text(page: Page) -> str:
    return page.locator("#live section.operations").inner_text()


@dataclass
class OperationsApi:
    """Start and watch operations through the JSON API, as another client."""

    server: LiveServer
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        transport = httpx.HTTPTransport(local_address=API_ADDRESS)
        self.client = httpx.Client(base_url=self.server.url, transport=transport, timeout=10)

    def start(self, duration: float = 0.5) -> str:
        """Start an operation; past this client's start budget, wait for the next window once.

        The tests of a module share one server and one budget (5 starts a minute in
        the testing profile): how many fall into one window depends on their timing.
        """
        body = {"kind": "simulated", "params": {"duration": duration}}
        response = self.client.post("/api/operations", json=body)
        if response.status_code == 429 and response.json().get("error") == "rate_limited":
            time.sleep(int(response.headers["Retry-After"]) + 0.5)
            response = self.client.post("/api/operations", json=body)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def wait_for_status(self, operation_id: str, statuses: set[str], timeout_s: float = 30) -> dict:
        """Wait in real time (the worker runs operations for real) for one of `statuses`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            response = self.client.get(f"/api/operations/{operation_id}")
            if response.status_code == 200 and response.json()["status"] in statuses:
                return response.json()
            time.sleep(0.1)
        pytest.fail(f"Operation {operation_id} did not become {statuses} within {timeout_s} s.")

    def wait_until_finished(self, operation_id: str) -> dict:
        """Wait until the operation has ended and its slot is free again."""
        found = self.wait_for_status(operation_id, {"completed", "failed", "cancelled"})
        # The worker frees the slot right after recording the end: another change of state.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            live = self.client.get(LIVE_PATH)
            if live.status_code == 200 and ' class="slot held' not in live.text:
                return found
            time.sleep(0.1)
        pytest.fail(f"The slot of operation {operation_id} was not freed within 10 s.")

    def run(self, duration: float = 0.5) -> dict:
        """Start an operation and wait until it has ended and freed its slot."""
        return self.wait_until_finished(self.start(duration))

    def close(self) -> None:
        self.client.close()
