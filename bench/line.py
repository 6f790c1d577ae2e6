"""Section 10 of `make bench`: the line, a start waiting for a slot (`when_busy: "wait"`).

Slot idle time: daphne and a worker on 2 slots; a burst of short simulated starts
that wait is sent at once and runs to the end. For every slot the line handed over,
the time from the end of the operation that freed it to the start of the waiting
operation it went to, against the sweep interval: were the handover left to the
periodic sweep, a freed slot would stand idle for up to one interval.

Admission with a line: two daphne processes, no worker, both slots held on each. One
database has an empty line, the other 1,000 waiting operations from 10 clients, the
measuring client one of them. Starts that join the line are timed one at a time,
alternating between the two servers; each is cancelled (untimed) before the next, so
the lines stay as they were.

    python bench/run.py --only 10    # this section alone, about 1.5 minutes
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from bench.servers import BenchError, Databases, Stack, environment, run_manage
from bench.table import Row, at_most
from coordhub.testing.processes import wait_until_ready
from loadcheck.timing import percentile

Measurement = tuple[list[str], Callable[[], list[Row]]]

SLOTS = 2
SWEEP_SECONDS = 5  # CLEANUP_INTERVAL_SECONDS: the worker sweeps (and fills the line) this often
LEASE_SECONDS = 30  # the worker sweeps every min(cleanup interval, lease), on a 5 s beat
HELD_LEASE_SECONDS = 3600  # admission: no worker renews the holders' leases, none may run out
WAITING_CLIENTS = 10  # the admission line's waiting operations come from this many clients
MEASURING_CLIENT = "ip:127.0.0.1"  # every benchmark request comes from loopback
HOLDER_CLIENT = "bench-holder"
LINE_BOUND = 5000  # MAX_WAITING_OPERATIONS and MAX_WAITING_PER_CLIENT: never refused here
IDLE_TARGET = 0.1  # p95 idle / sweep interval
ADMISSION_TARGET = 1.2  # p50 join behind the line / p50 join into an empty one
FINISHED = ("completed", "failed", "cancelled")
TIMEOUT_SECONDS = 30.0
# Two moments Django took in one transaction, read back as floats: equal within this.
SAME_MOMENT_SECONDS = 1e-5
POSTGRESQL = "PostgreSQL"
ENGINES = ("SQLite", POSTGRESQL)


@dataclass(frozen=True)
class Budget:
    operations: int  # waiting starts queued at once for the idle time
    duration: float  # seconds each of them runs
    samples: int  # timed joins into each line
    warmup: int  # untimed joins into each line first
    waiting: int  # operations in the long line


DEFAULT = Budget(40, 0.2, 200, 20, 1000)
QUICK = Budget(12, 0.2, 30, 5, 1000)


# Slot idle time


@dataclass(frozen=True)
class Timeline:
    """One operation's moments, in seconds since the epoch (None: not reached)."""

    created: float
    waited: float | None  # waited_seconds: set when the line handed it a slot
    started: float | None
    finished: float | None

    @property
    def handed_over(self) -> float | None:
        """When the line gave it a slot (None: it took a free one at once, or never got one)."""
        return None if self.waited is None else self.created + self.waited


def handover_gaps(timelines: Iterable[Timeline]) -> list[float]:
    """Seconds each slot the line handed over stood idle, in the order they were handed over.

    Idle: from the end of the operation that freed the slot to the start of the
    waiting operation it went to. The operations do not record their slot, so each
    handover is paired with the end that made it: a slot is handed over in the very
    transaction of the release that frees it, after that release recorded its
    operation's end, so the moment of the handover (created_at + waited_seconds,
    both from the database) comes after exactly that end and before the next end to
    hand over. Taken in handover order, each pairs with the latest end not yet paired
    that came before it. The latest, not the earliest: an end that found the line
    empty hands nothing over and stays unpaired, and on PostgreSQL two releases may
    record their ends in one order and take the line's lock in the other. A slot
    handed over by anything but a release (the sweep filling a slot that stood free
    while an operation waited) pairs with an older end, and its long gap shows.
    """
    timelines = list(timelines)
    ends = sorted(timeline.finished for timeline in timelines if timeline.finished is not None)
    paired: set[int] = set()
    gaps = []
    takers = [timeline for timeline in timelines if timeline.handed_over is not None]
    for taker in sorted(takers, key=lambda timeline: timeline.handed_over or 0.0):
        assert taker.handed_over is not None
        if taker.started is None:
            raise BenchError("An operation the line handed a slot to never started.")
        before = [
            index
            for index, end in enumerate(ends)
            if end <= taker.handed_over + SAME_MOMENT_SECONDS and index not in paired
        ]
        if not before:
            raise BenchError("The line handed over a slot before any operation ended.")
        paired.add(before[-1])
        gaps.append(taker.started - ends[before[-1]])
    return gaps


# Read in the server's database after the run: the exact moments, not the API's rounding.
TIMELINES = """
import json
from operations.models import Operation

def stamp(moment):
    return None if moment is None else moment.timestamp()

rows = [
    [o.status, stamp(o.created_at), o.waited_seconds, stamp(o.started_at), stamp(o.finished_at)]
    for o in Operation.objects.all()
]
print(json.dumps(rows))
"""


def read_timelines(env: dict[str, str]) -> tuple[list[Timeline], list[str]]:
    """Every operation's moments, and their statuses, from the database `env` names."""
    output = run_manage(["shell", "-c", TIMELINES], env)
    rows = json.loads(output.strip().splitlines()[-1])
    timelines = [Timeline(*moments) for _, *moments in rows]
    return timelines, [status for status, *_ in rows]


def line_environment(database: str, **variables: str) -> dict[str, str]:
    """A server's environment on `database`: 2 slots, no rate limit refuses, the line unbounded."""
    return environment(
        DATABASE_URL=database,
        REQUESTS_PER_MINUTE="10000000",
        START_ATTEMPTS_PER_MINUTE="10000000",
        READ_REQUESTS_PER_MINUTE="10000000",
        MAX_CONCURRENT_OPERATIONS=str(SLOTS),
        MAX_WAITING_OPERATIONS=str(LINE_BOUND),
        MAX_WAITING_PER_CLIENT=str(LINE_BOUND),
        **variables,
    )


def slot_idle(stack: Stack, database: str, label: str, budget: Budget) -> list[Row]:
    """Queue `budget.operations` waiting starts at once, run them all, time the handovers."""
    env = line_environment(
        database, CLEANUP_INTERVAL_SECONDS=str(SWEEP_SECONDS), SLOT_LEASE_SECONDS=str(LEASE_SECONDS)
    )
    name = label.split()[0].lower()
    web = stack.start_web(f"line-idle-{name}", "daphne", env)
    worker = stack.start_worker(f"line-worker-{name}", env, SLOTS)
    try:
        wait_until_ready(web, worker)
        with httpx.Client(base_url=web.url, timeout=TIMEOUT_SECONDS) as client:
            body = {
                "kind": "simulated",
                "params": {"duration": budget.duration},
                "when_busy": "wait",
            }
            ids = [started(client, body) for _ in range(budget.operations)]
            run_seconds = budget.operations * budget.duration / SLOTS
            wait_for_the_end(client, ids, timeout=4 * run_seconds + 4 * SWEEP_SECONDS + 30)
        if worker.process.poll() is not None:
            raise BenchError(f"The worker exited during the run:\n{worker.log_tail()}")
    finally:
        stack.stop(web, worker)
    timelines, statuses = read_timelines(env)
    if statuses.count("completed") != budget.operations:
        raise BenchError(f"Not every operation completed: {sorted(statuses)}.")
    gaps = [gap * 1000 for gap in handover_gaps(timelines)]
    if not gaps:
        raise BenchError("No operation waited: the starts came slower than the slots freed.")
    return idle_rows(gaps, label)


def started(client: httpx.Client, body: dict[str, object]) -> str:
    response = client.post("/api/operations", json=body)
    if response.status_code != 202:
        raise BenchError(f"POST /api/operations answered {response.status_code}: {response.text}")
    return response.json()["id"]


def wait_for_the_end(client: httpx.Client, ids: list[str], timeout: float) -> None:
    """Wait until every one of `ids` has ended (they end about in the order they came)."""
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        response = client.get(f"/api/operations/{pending[0]}")
        if response.status_code != 200:
            raise BenchError(f"GET /api/operations/<id> answered {response.status_code}.")
        if response.json()["status"] in FINISHED:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise BenchError(f"{len(pending)} of {len(ids)} operations not ended in {timeout} s.")
        time.sleep(0.05)


def idle_rows(gaps_ms: list[float], label: str) -> list[Row]:
    sweep_ms = SWEEP_SECONDS * 1000
    rows = []
    for percent, target in ((50, None), (95, at_most(IDLE_TARGET))):
        idle = percentile(gaps_ms, percent)
        rows.append(
            Row(
                f"10. line: slot idle from an end to the next waiting start p{percent}, {label}",
                f"{idle:.0f} ms ({len(gaps_ms)} handovers)",
                f"sweep every {SWEEP_SECONDS} s",
                idle / sweep_ms,
                target,
            )
        )
    return rows


# Admission with a line


def seed_script(waiting: int) -> str:
    """Hold both slots (for another client), then put `waiting` operations in line."""
    clients = [MEASURING_CLIENT, *(f"bench-client-{n}" for n in range(1, WAITING_CLIENTS))]
    return f"""
from operations.admission import admit
from operations.models import Operation

for _ in range({SLOTS}):
    admit("simulated", {{"duration": 600}}, client_key={HOLDER_CLIENT!r})
clients = {clients!r}
for number in range({waiting}):
    client = clients[number % len(clients)]
    admit("simulated", {{"duration": 1}}, client_key=client, when_busy="wait")
print(Operation.objects.holding().count(), Operation.objects.waiting().count())
"""


def seed(env: dict[str, str], waiting: int) -> None:
    output = run_manage(["shell", "-c", seed_script(waiting)], env)
    holding, in_line = map(int, output.strip().splitlines()[-1].split())
    if (holding, in_line) != (SLOTS, waiting):
        raise BenchError(f"Seeded {holding} holders and {in_line} waiting, not {SLOTS}, {waiting}.")


@dataclass
class Joins:
    """Milliseconds of starts joining one line, and the place the last one was given."""

    milliseconds: list[float]
    place: str = ""


def join_and_leave(client: httpx.Client, joins: Joins, timed: bool) -> None:
    """Start one operation that must join the line (timed), then cancel it (untimed)."""
    body = {"kind": "simulated", "params": {"duration": 1}, "when_busy": "wait"}
    began = time.perf_counter()
    response = client.post("/api/operations", json=body)
    elapsed = time.perf_counter() - began
    answer = response.json() if response.status_code == 202 else {}
    if answer.get("status") != "waiting":
        raise BenchError(f"A start meant to wait answered {response.status_code}: {response.text}")
    cancelled = client.post(f"/api/operations/{answer['id']}/cancel")
    if cancelled.status_code != 200:
        raise BenchError(f"Its cancel answered {cancelled.status_code}: {cancelled.text[:200]}")
    if timed:
        joins.milliseconds.append(elapsed * 1000)
        joins.place = f"{answer['line']['position']:,} of {answer['line']['of']:,}"


def admission(stack: Stack, databases: tuple[str, str], label: str, budget: Budget) -> list[Row]:
    """Joins into an empty line and into one of `budget.waiting`, alternating, one at a time."""
    envs = [
        line_environment(database, SLOT_LEASE_SECONDS=str(HELD_LEASE_SECONDS))
        for database in databases
    ]
    seed(envs[0], 0)
    seed(envs[1], budget.waiting)
    name = label.split()[0].lower()
    webs = [
        stack.start_web(f"line-{line}-{name}", "daphne", env)
        for line, env in zip(("empty", "long"), envs, strict=True)
    ]
    empty, long = Joins([]), Joins([])
    try:
        wait_until_ready(*webs)
        with (
            httpx.Client(base_url=webs[0].url, timeout=TIMEOUT_SECONDS) as to_empty,
            httpx.Client(base_url=webs[1].url, timeout=TIMEOUT_SECONDS) as to_long,
        ):
            for number in range(budget.warmup + budget.samples):
                pair = [(to_empty, empty), (to_long, long)]
                if number % 2:  # neither always goes first
                    pair.reverse()
                for client, joins in pair:
                    join_and_leave(client, joins, timed=number >= budget.warmup)
    finally:
        stack.stop(*webs)
    behind, alone = percentile(long.milliseconds, 50), percentile(empty.milliseconds, 50)
    return [
        Row(
            f"10. line: POST /api/operations joining behind {budget.waiting:,} waiting vs none "
            f"p50, {label}",
            f"{behind:.1f} ms (place {long.place})",
            f"empty line p50 {alone:.1f} ms",
            behind / alone,
            at_most(ADMISSION_TARGET),
        )
    ]


# The section


def measurements(
    stack: Stack, databases: Databases, postgres: Callable[[str], str], budget: Budget
) -> list[Measurement]:
    """Each measurement and the names of its rows, for `Run.section`."""

    def database(engine: str, name: str) -> str:
        return postgres(name) if engine == POSTGRESQL else databases.sqlite(name)

    def idle_on(engine: str) -> Callable[[], list[Row]]:
        return lambda: slot_idle(stack, database(engine, "line_idle"), engine, budget)

    def admission_on(engine: str) -> Callable[[], list[Row]]:
        return lambda: admission(
            stack, (database(engine, "line_empty"), database(engine, "line_long")), engine, budget
        )

    found: list[Measurement] = []
    for engine in ENGINES:
        found.append(([f"10. line: slot idle, {engine}"], idle_on(engine)))
    for engine in ENGINES:
        found.append(([f"10. line: admission behind a line, {engine}"], admission_on(engine)))
    return found


def describe(budget: Budget) -> str:
    """The header's line for section 10."""
    return (
        f"10: {SLOTS} slots; idle: daphne and `coordhub_worker --threads {SLOTS}`, "
        f"CLEANUP_INTERVAL_SECONDS={SWEEP_SECONDS}, SLOT_LEASE_SECONDS={LEASE_SECONDS} (a sweep "
        f"every {SWEEP_SECONDS} s), {budget.operations} simulated starts of {budget.duration} s "
        "with when_busy=wait sent at once; idle = the started_at of an operation the line "
        "handed a slot to - the finished_at of the operation whose release handed it over; "
        f"admission: two daphne, no worker, both slots held by another client; {budget.samples} "
        "starts with when_busy=wait into each line, alternating, each joining it and "
        f"cancelled untimed; the long line: {budget.waiting:,} waiting from {WAITING_CLIENTS} "
        f"clients, the measuring one among them; MAX_WAITING_OPERATIONS and "
        f"MAX_WAITING_PER_CLIENT {LINE_BOUND}"
    )
