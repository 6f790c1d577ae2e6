"""Section 9 in Chromium: a change until the leader tab shows it, and what an idle browser asks.

Change -> visible: one dashboard tab with its nudge socket on a SQLite server and one on
a PostgreSQL + Redis server, and one tab on the SQLite server without WebSocket (it polls
on the ladder alone). Operations are started through the API, each at a random moment
up to one first ladder step after the previous one was seen (so the polling tab's next
poll is at a random distance); a MutationObserver in each page notes when the row
`#op-<id>` appears. The delay runs from the operation's `created_at` (the server's clock,
before its commit; the same machine's as the browser's) to that moment.

Idle: a browser of three tabs on a server of its own where nothing changes, its poll
ladder shortened tenfold so that the safety poll is what a short window counts; every
request its tabs send (Resource Timing) is counted over the window and scaled to ten
minutes at the default ladder. It idles while the change samples run.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from bench.servers import Databases, Stack, unlimited_environment
from bench.table import Row, at_most
from coordhub.testing.processes import WebServer, wait_until_ready
from loadcheck.timing import percentile

CHROMIUM = "/usr/bin/chromium"
# As tests/e2e: without these Chromium phones home at start and the closed network refuses it.
CHROMIUM_FLAGS = ("no-sandbox", "disable-gpu", "disable-quic", "no-first-run")
CHROMIUM_FLAGS += ("disable-background-networking", "disable-component-update", "disable-sync")
LIVE_STATUS = "Live: changes arrive as they happen."
FIRST_STEP_SECONDS = 5.0  # the default ladder's first step: a change starts the ladder again
SEEN_TIMEOUT_MS = 20_000
DEFAULT_LONGEST_SECONDS = 30.0  # POLL_MAX_INTERVAL_MS's default
IDLE_LONGEST_MS = 3000  # the idle browser's ladder, a tenth of the default
IDLE_TABS = 3
TEN_MINUTES = 600.0
# Where each page notes when an operation's row first appears (Date.now(), ms).
OBSERVE_ROWS = """
window.coordhubSeen = {};
new MutationObserver(() => {
  for (const row of document.querySelectorAll("tr.operation[id^='op-']")) {
    window.coordhubSeen[row.id] ??= Date.now();
  }
}).observe(document, { childList: true, subtree: true });
"""
NO_WEBSOCKET = "delete window.WebSocket;"
POLLING = "polling alone, SQLite"
REQUESTS_SINCE = """
since => performance.getEntriesByType("resource")
  .map(entry => ({ name: entry.name, at: performance.timeOrigin + entry.startTime }))
  .filter(entry => entry.at >= since)
"""
START_BODY = {"kind": "simulated", "params": {"duration": 60}}


@dataclass(frozen=True)
class Tab:
    label: str
    page: Page
    server: WebServer


@dataclass(frozen=True)
class Idle:
    """What an idle browser asked in a window: requests (all tabs) and sockets opened."""

    requests: int
    live_fetches: int
    sockets: int
    seconds: float
    longest_ms: int


def measure(
    stack: Stack, databases: Databases, redis_url: str, samples: int, idle_seconds: float
) -> tuple[dict[str, list[float]], Idle]:
    """Change -> visible delays (ms) per tab, and what the idle browser asked meanwhile."""
    idle_ladder = {"POLL_INITIAL_INTERVAL_MS": "1000", "POLL_MAX_INTERVAL_MS": str(IDLE_LONGEST_MS)}
    environments = {
        "live-sqlite": unlimited_environment(databases.sqlite("live")),
        "live-postgres": unlimited_environment(databases.postgres("live"), REDIS_URL=redis_url),
        "idle-sqlite": unlimited_environment(databases.sqlite("idle"), **idle_ladder),
    }
    servers = [stack.start_web(name, "daphne", env) for name, env in environments.items()]
    try:
        wait_until_ready(*servers)
        with sync_playwright() as playwright:
            flags = [f"--{flag}" for flag in CHROMIUM_FLAGS]
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
            try:
                return in_browser(browser, *servers, samples=samples, idle_seconds=idle_seconds)
            finally:
                browser.close()
    finally:
        stack.stop(*servers)


def in_browser(
    browser: Browser,
    sqlite: WebServer,
    postgres: WebServer,
    quiet: WebServer,
    *,
    samples: int,
    idle_seconds: float,
) -> tuple[dict[str, list[float]], Idle]:
    """Leave a browser of IDLE_TABS tabs idle on `quiet` while changes are timed on the others."""
    idle_tabs, sockets = [browser.new_context().new_page()], []
    idle_tabs += [idle_tabs[0].context.new_page() for _ in range(IDLE_TABS - 1)]
    for page in idle_tabs:
        page.on("websocket", lambda socket: sockets.append(socket.url))
        page.goto(f"{quiet.url}/")
    live_up(idle_tabs)
    idle_since = time.time()
    tabs = [
        open_tab(browser, "socket, SQLite", sqlite),
        open_tab(browser, "socket, PostgreSQL + Redis", postgres),
        open_tab(browser, POLLING, sqlite, NO_WEBSOCKET),
    ]
    delays = visible_delays(tabs, samples)
    if (left := idle_since + idle_seconds - time.time()) > 0:
        idle_tabs[0].wait_for_timeout(left * 1000)
    return delays, idle_requests(idle_tabs, idle_since, len(sockets))


def open_tab(browser: Browser, label: str, server: WebServer, *scripts: str) -> Tab:
    """A browser context of its own (its own tabs' storage), one tab: the leader."""
    context = browser.new_context()
    for script in (OBSERVE_ROWS, *scripts):
        context.add_init_script(script)
    page = context.new_page()
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-tab-role='leader']", timeout=SEEN_TIMEOUT_MS)
    if not scripts:
        live_up([page])
    return Tab(label, page, server)


def live_up(pages: list[Page]) -> None:
    """Wait until one of `pages` leads with its socket up."""
    deadline = time.monotonic() + SEEN_TIMEOUT_MS / 1000
    while not any(page.locator("#poll-status").text_content() == LIVE_STATUS for page in pages):
        if time.monotonic() > deadline:
            raise RuntimeError("No tab's nudge socket came up.")
        pages[0].wait_for_timeout(100)


def visible_delays(tabs: list[Tab], samples: int) -> dict[str, list[float]]:
    """Start `samples` operations on each server; ms from each start until each tab shows it."""
    delays: dict[str, list[float]] = {tab.label: [] for tab in tabs}
    servers = {tab.server.url for tab in tabs}
    with httpx.Client(timeout=30) as http:
        for _ in range(samples):
            tabs[0].page.wait_for_timeout(random.uniform(0, FIRST_STEP_SECONDS) * 1000)
            started = {url: start(http, url) for url in servers}
            for tab in tabs:
                operation_id, created_ms = started[tab.server.url]
                seen = tab.page.wait_for_function(
                    "id => window.coordhubSeen['op-' + id]",
                    arg=operation_id,
                    timeout=SEEN_TIMEOUT_MS,
                ).json_value()
                delays[tab.label].append(seen - created_ms)
    return delays


def start(http: httpx.Client, url: str) -> tuple[str, float]:
    """Start an operation; return its id and `created_at` in ms since the epoch."""
    response = http.post(f"{url}/api/operations", json=START_BODY)
    if response.status_code != 202:
        raise RuntimeError(f"POST {url}/api/operations answered {response.status_code}.")
    body = response.json()
    return body["id"], datetime.fromisoformat(body["created_at"]).timestamp() * 1000


def idle_requests(pages: list[Page], since: float, sockets: int) -> Idle:
    seconds = time.time() - since
    entries = [entry for page in pages for entry in page.evaluate(REQUESTS_SINCE, since * 1000)]
    live = sum("/dashboard/live/" in entry["name"] for entry in entries)
    return Idle(len(entries), live, sockets, seconds, IDLE_LONGEST_MS)


def rows(delays: dict[str, list[float]], idle: Idle) -> list[Row]:
    polling = delays[POLLING]
    built = []
    for label in ("socket, SQLite", "socket, PostgreSQL + Redis"):
        for percent in (50, 95):
            figure, baseline = percentile(delays[label], percent), percentile(polling, percent)
            built.append(
                Row(
                    f"9. change -> visible in the leader tab p{percent}, {label}",
                    f"{figure:.0f} ms",
                    f"polling alone p{percent} {baseline:.0f} ms",
                    figure / baseline,
                )
            )
    per_longest = idle.requests / (idle.seconds * 1000 / idle.longest_ms)
    built.append(
        Row(
            f"9. requests per idle browser ({IDLE_TABS} tabs) per 10 min, socket up",
            f"{per_longest * TEN_MINUTES / DEFAULT_LONGEST_SECONDS:.1f} "
            f"({idle.requests} in {idle.seconds:.0f} s at {idle.longest_ms} ms; "
            f"{idle.live_fetches} live fetches, {idle.sockets} socket)",
            f"one per longest interval: {TEN_MINUTES / DEFAULT_LONGEST_SECONDS:.0f}",
            per_longest,
            at_most(1.1),
        )
    )
    return built
