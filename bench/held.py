"""Section 9: how many held requests one daphne keeps open before anything else slows.

Two daphne processes on one PostgreSQL database (and Redis), no worker. Process A
holds K `GET /api/operations/<id>?wait=60` showing the ETag any client but the owner
sees, each from its own address; process B holds none. The load generator drives
`/bench/minimal` on each in turn, A's runs between two of B's (`bench.throughput`),
so the ratio is what holding costs; K = 0 first says how far two idle processes
differ. Beside the rate: the share of a core A spends holding them while idle, its
threads (/proc) and its database connections (pg_stat_activity). At the end one
change (a cancel) wakes the last K at once, and /bench/minimal is timed meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from bench import throughput
from bench.load import LoadGenerator
from bench.observe import (
    CONNECTING_AT_ONCE,
    PROXIES,
    Loop,
    Postgres,
    address,
    cpu_share,
    settle,
    threads,
)
from bench.servers import BenchError, Databases, Stack, unlimited_environment
from bench.table import Row, at_least
from coordhub.testing.processes import WebServer, wait_until_ready

HOLD_SECONDS = 60
KEPT_SHARE = 0.9
WAKE_TIMEOUT_SECONDS = 60
IDLE_CPU_SECONDS = 2.0
REFUSED = "429 too_many_waiting"
ANSWER_BYTES = 4096
ERROR_CODE = re.compile(rb'"error": ?"([a-z_]+)"')


@dataclass
class Held:
    """One held request: its connection and, once answered, when and how."""

    writer: asyncio.StreamWriter
    answer: asyncio.Task  # the status line and the first bytes after it
    answered_at: float | None = None  # time.monotonic()

    def answered(self, task: asyncio.Task) -> None:
        self.answered_at = time.monotonic()

    @property
    def outcome(self) -> str:
        """ "200", or "503 database_unavailable": the status and the error code, if any."""
        if self.answered_at is None or self.answer.cancelled() or self.answer.exception():
            return "none"
        status_line, rest = self.answer.result()
        status = [*status_line.split(), b"?", b"?"][1].decode()
        error = ERROR_CODE.search(rest)
        return f"{status} {error[1].decode()}" if error else status


async def answer_of(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    status_line = await reader.readline()
    return status_line, await reader.read(ANSWER_BYTES)


async def hold_requests(web: WebServer, path: str, etag: str, count: int) -> list[Held]:
    """Send `count` GETs of `path?wait=HOLD_SECONDS`, each from its own address; don't read yet."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one(number: int) -> Held:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        lines = [f"GET {path}?wait={HOLD_SECONDS} HTTP/1.1", f"Host: 127.0.0.1:{web.port}"]
        lines += [f"If-None-Match: {etag}", f"X-Forwarded-For: {address(number)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        held = Held(writer, asyncio.ensure_future(answer_of(reader)))
        held.answer.add_done_callback(held.answered)
        return held

    return await asyncio.gather(*(one(number) for number in range(count)))


async def hang_up(held: list[Held]) -> None:
    for request in held:
        request.answer.cancel()
        request.writer.close()


@dataclass(frozen=True)
class Step:
    sent: int
    held: int  # the rest were refused at once (429 too_many_waiting: the process's bound)
    rate: float  # requests per second of /bench/minimal on the process holding them
    baseline: float  # the same on the process holding none
    ratio: float  # median over rounds of rate / mean of the two baseline runs around it
    idle_cpu: float  # share of a core the holding process used, idle, before the load
    threads: int
    connections: tuple[int, int]  # open, busy


@dataclass(frozen=True)
class Wake:
    held: int
    first_ms: float
    last_ms: float
    outcomes: dict[str, int]
    slowest_minimal_ms: float  # of /bench/minimal requests sent one after another meanwhile
    most_threads: int  # of the holding process, sampled meanwhile


def measure(
    stack: Stack,
    databases: Databases,
    redis_url: str,
    load: LoadGenerator,
    steps: tuple[int, ...],
    rounds: int,
    seconds: float,
) -> tuple[list[Step], Wake]:
    """/bench/minimal beside each number of held requests, and one wake of the last."""
    assert stack.postgres is not None
    pg = Postgres(stack.postgres.url, stack.postgres.log)
    database = "held_requests"
    env = unlimited_environment(databases.postgres(database), REDIS_URL=redis_url, **PROXIES)
    holding, idle = (stack.start_web(name, "daphne", env) for name in ("holding", "holding-none"))
    comparison = throughput.Comparison(
        throughput.Endpoint("none-held", "none held", f"{idle.url}/bench/minimal"),
        [throughput.Endpoint("held", "held", f"{holding.url}/bench/minimal")],
    )
    loop, measured = Loop(), []
    try:
        wait_until_ready(holding, idle)
        with httpx.Client(base_url=holding.url, timeout=30) as http:
            started = http.post("/api/operations", json={"kind": "simulated", "params": {}})
            path = started.headers["Location"]
            # What any client but the owner shows: the ETag the held requests send.
            etag = http.get(path, headers={"X-Forwarded-For": address(0)}).headers["ETag"]
            for count in (0, *steps):
                sent = loop.run(hold_requests(holding, path, etag, count))
                settle(holding)
                held = [request for request in sent if request.answered_at is None]
                early = Counter(request.outcome for request in sent if request.answered_at)
                if set(early) - {REFUSED}:
                    raise BenchError(f"Held requests answered before any change: {early}.")
                idle_cpu = cpu_share(holding, IDLE_CPU_SECONDS)
                beside = threads(holding.pid), pg.connections(database)
                results = throughput.measure(load, [comparison], rounds, seconds, 1)
                if problem := results.problem("held") or results.problem("none-held"):
                    raise BenchError(problem)
                ratio = statistics.median(results.ratios["held"])
                rates = results.rate("held"), results.rate("none-held")
                measured.append(Step(count, len(held), *rates, ratio, idle_cpu, *beside))
                if count == steps[-1]:
                    wake = wake_all(http, holding, path, held)
                loop.run(hang_up(sent))
                settle(holding)
    finally:
        loop.close()
        stack.stop(holding, idle)
    return measured, wake


def wake_all(http: httpx.Client, web: WebServer, path: str, held: list[Held]) -> Wake:
    """Change the operation (cancel it) and time the held requests' answers.

    Meanwhile /bench/minimal is asked one request after another: what anyone else waits.
    """
    changed = time.monotonic()
    if http.post(f"{path}/cancel").status_code != 200:
        raise BenchError(f"POST {path}/cancel did not answer 200.")
    deadline, slowest, most_threads = changed + WAKE_TIMEOUT_SECONDS, 0.0, 0
    while time.monotonic() < deadline and any(r.answered_at is None for r in held):
        most_threads = max(most_threads, threads(web.pid))
        sent = time.monotonic()
        http.get("/bench/minimal")
        slowest = max(slowest, time.monotonic() - sent)
        time.sleep(0.05)
    times = [r.answered_at - changed for r in held if r.answered_at is not None]
    outcomes = Counter(request.outcome for request in held)
    if not times:
        raise BenchError("No held request answered the change.")
    first, last = min(times) * 1000, max(times) * 1000
    return Wake(len(held), first, last, dict(outcomes), slowest * 1000, most_threads)


def describe(step: Step) -> str:
    open_, busy = step.connections
    return (
        f"{step.idle_cpu:.0%} of a core idle; {step.threads} threads, "
        f"{open_} DB connections ({busy} busy)"
    )


def reach(steps: list[Step]) -> str:
    """The most held requests before /bench/minimal first fell below KEPT_SHARE, and the bound."""
    kept, found = 0, ""
    for step in steps:
        if step.ratio < KEPT_SHARE:
            found = f">= {kept} (below {KEPT_SHARE:.0%} with {held_of(step)} held)"
            break
        kept = max(kept, step.held)
    found = found or f">= {kept} (the most measured)"
    if refused := [step for step in steps if step.held < step.sent]:
        return f"{found}; it holds no more than {refused[0].held} ({REFUSED} past them)"
    return found


def held_of(step: Step) -> str:
    return f"{step.held} of {step.sent}" if step.sent > step.held else f"{step.held}"


def rows(steps: list[Step], wake: Wake) -> list[Row]:
    built = [
        Row(
            f"9. /bench/minimal on a daphne holding {held_of(step)} requests vs one holding none",
            f"{step.rate:.0f} req/s; {describe(step)}",
            f"none held {step.baseline:.0f} req/s",
            step.ratio,
            at_least(KEPT_SHARE),
        )
        for step in steps
    ]
    built.append(Row("9. held requests one daphne keeps before /bench/minimal slows", reach(steps)))
    built.append(
        Row(
            f"9. one change wakes {wake.held} held requests: first, last answer after",
            f"{wake.first_ms:.0f} ms, {wake.last_ms:.0f} ms; "
            + ", ".join(f"{outcome} x{n}" for outcome, n in sorted(wake.outcomes.items())),
            f"meanwhile: slowest /bench/minimal {wake.slowest_minimal_ms:.0f} ms, "
            f"up to {wake.most_threads} threads",
        )
    )
    return built
