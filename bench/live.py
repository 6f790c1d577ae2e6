"""Section 9 of `make bench`: live updates, the socket against polling, and what waiting costs.

Three measurements, a module each: `bench.browser` (Chromium: a change until the leader
tab shows it, with the socket and with polling alone; the requests of an idle
browser), `bench.idle` (the database queries of an idle web process with 0, 50 and
200 sockets) and `bench.held` (the requests one daphne holds open before
/bench/minimal slows, and one change waking them all).

    python bench/run.py --only 9    # this section alone, about 4 minutes
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import browser, held, idle
from bench.load import LoadGenerator
from bench.servers import Databases, Stack
from bench.table import Row

Measurement = tuple[list[str], Callable[[], list[Row]]]


@dataclass(frozen=True)
class Budget:
    samples: int  # changes timed in the browser
    idle_seconds: float  # the idle browser's window, at least (it idles while changes are timed)
    query_seconds: float  # window per number of sockets
    sockets: tuple[int, ...]  # 0 first: the baseline
    held: tuple[int, ...]
    rounds: int  # of /bench/minimal on the process holding them between two on one holding none
    seconds: float  # per /bench/minimal run


DEFAULT = Budget(20, 90, 10, (0, 50, 200), (100, 250, 500, 1000), 2, 2)
QUICK = Budget(3, 15, 3, (0, 10, 50), (100,), 1, 1)


def measurements(
    stack: Stack,
    databases: Databases,
    redis_url: Callable[[], str],
    load: LoadGenerator,
    budget: Budget,
) -> list[Measurement]:
    """Each measurement and the names of its rows, for `Run.section`."""

    def in_browser() -> list[Row]:
        delays, idle_browser = browser.measure(
            stack, databases, redis_url(), budget.samples, budget.idle_seconds
        )
        return browser.rows(delays, idle_browser)

    def idle_queries() -> list[Row]:
        statements = idle.measure(
            stack, databases, redis_url(), budget.query_seconds, budget.sockets
        )
        return idle.rows(statements, budget.query_seconds)

    def held_requests() -> list[Row]:
        steps, wake = held.measure(
            stack, databases, redis_url(), load, budget.held, budget.rounds, budget.seconds
        )
        return held.rows(steps, wake)

    return [
        (["9. change -> visible in the leader tab", "9. requests per idle browser"], in_browser),
        (["9. idle web process: queries/s"], idle_queries),
        (["9. requests held by one daphne"], held_requests),
    ]


def describe(budget: Budget) -> str:
    """The header's line for section 9."""
    return (
        f"9: Chromium ({browser.CHROMIUM}), no worker (every start stays queued); "
        f"{budget.samples} starts, each at a random moment up to "
        f"{browser.FIRST_STEP_SECONDS:.0f} s (the ladder's first step) after the previous one "
        "showed, timed from the operation's "
        "created_at to its row in each tab; idle browser: "
        f"{browser.IDLE_TABS} tabs, ladder ending at {browser.IDLE_LONGEST_MS} ms, "
        f">= {budget.idle_seconds:.0f} s, scaled to the default 30 s; queries: statements "
        f"PostgreSQL logs (log_statement = all) over {budget.query_seconds:.0f} s per count of "
        "sockets, ratio = extra per second per socket; held: GET ?wait=60 with If-None-Match, "
        "each from its own address (TRUSTED_PROXIES), on one of two daphne processes; "
        f"{budget.rounds} round(s) of {budget.seconds:.0f} s runs on each in turn"
    )
