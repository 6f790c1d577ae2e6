"""Cross-process test helpers, and the entry point of the processes they start.

The tests side: `fresh_database()` makes an empty migrated database beside the
one under test (a SQLite file, or a new database on the PostgreSQL server that
DATABASE_URL names), `environment()` is what a coordhub subprocess runs with
(the harness's `child_environment` on that database), and `Tables` reads the
slot and operation rows those processes write.

The process side, run as `python -m tests.operations.racer COMMAND`:

- `race --rounds N --threads T`: in each of T threads, claim, hold 5-20 ms and
  release a slot N times, starting when a line arrives on stdin; print the held
  intervals (wall-clock nanoseconds) and the refusals as JSON.
- `race-caps --rounds N --threads T [--wait-share W]`: the same through admission,
  so that clients' shares and kinds' caps apply: each round admits an operation of
  a random client, kind and account (see `CapsTally`), refused or, for a share W of
  the rounds, waiting in line until a release hands it a slot; print what each
  operation held, with its client, kind and key, and what waited, as JSON.
- `admit --count N --duration S`: admit `simulated` operations; print their ids.
- `cancel ID`: cancel an operation.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from coordhub.testing.environment import child_environment
from coordhub.testing.processes import ROOT, manage

if TYPE_CHECKING:  # Django is set up only in the racer process, after its arguments are read
    from operations.models import Operation

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
SQLITE_PREFIX = "sqlite:///"
# Only the hold itself is timed, not the claim or release around it: with holds much
# shorter than those, even four holders at once would rarely show as overlapping.
HOLD_SECONDS = (0.005, 0.02)

# What `race-caps` mixes: three clients, a kind capped at one at a time ("capped"), a kind
# capped at one at a time per account ("keyed", two accounts) and the uncapped `simulated`.
CAPS_CLIENTS = ("ip:a", "ip:b", "ip:c")
CAPS_KINDS = ("capped", "keyed", "simulated")
CAPS_ACCOUNTS = ("acme", "globex")
# Polling a waiting operation for its slot: how often, and for how long before giving up.
POLL_SECONDS = 0.002
HANDOVER_TIMEOUT_SECONDS = 10


def most_at_once(intervals: Iterable[tuple[Any, Any]]) -> int:
    """Return the most half-open [start, end) intervals that cover any one instant."""
    # At equal times an end (-1) sorts before a start (+1): [a, b) and [b, c) never overlap.
    events = sorted(
        (moment, step) for start, end in intervals for moment, step in ((start, 1), (end, -1))
    )
    peak = covering = 0
    for _, step in events:
        covering += step
        peak = max(peak, covering)
    return peak


def environment(database_url: str, **variables: str) -> dict[str, str]:
    """Return a subprocess environment on `database_url` with `variables` (see the harness)."""
    return child_environment(DATABASE_URL=database_url, **variables)


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """Create and migrate an empty database of the kind under test; yield its URL."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(POSTGRES_SCHEMES):
        url = f"{SQLITE_PREFIX}{directory / 'coordhub.sqlite3'}"
        migrate(url)
        yield url
        return
    name = f"coordhub_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = urlsplit(server)._replace(path=f"/{name}").geturl()
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def migrate(database_url: str) -> None:
    manage("migrate", "--no-input", env=environment(database_url))


def run(database_url: str, *args: str, **variables: str) -> str:
    """Run one of this module's commands against `database_url`; return what it printed."""
    finished = subprocess.run(
        [sys.executable, "-m", "tests.operations.racer", *args],
        cwd=ROOT,
        env=environment(database_url, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, f"racer {' '.join(args)} failed:\n{finished.stderr}"
    return finished.stdout


@dataclass(frozen=True)
class SlotRow:
    number: int
    operation_id: uuid.UUID | None
    lease_version: int


@dataclass(frozen=True)
class OperationRow:
    status: str
    progress: int
    message: str
    error: str
    result: Any


class Tables:
    """Read coordhub's tables with a plain driver connection, outside Django."""

    def __init__(self, database_url: str) -> None:
        self.postgres = database_url.startswith(POSTGRES_SCHEMES)
        if self.postgres:
            self.connection: Any = psycopg.connect(database_url, autocommit=True)
        else:
            path = database_url.removeprefix(SQLITE_PREFIX)
            self.connection = sqlite3.connect(path, timeout=20, isolation_level=None)

    def close(self) -> None:
        self.connection.close()

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        if not self.postgres:
            query = query.replace("%s", "?")
        return self.connection.execute(query, params).fetchall()

    def key(self, operation_id: uuid.UUID) -> Any:
        # Django stores a UUID as 32 hex digits on SQLite and as a native uuid on PostgreSQL.
        return operation_id if self.postgres else operation_id.hex

    def slots(self) -> list[SlotRow]:
        rows = self.rows(
            "SELECT number, operation_id, lease_version FROM operations_slot ORDER BY number"
        )
        return [
            SlotRow(number, None if holder is None else uuid.UUID(str(holder)), version)
            for number, holder, version in rows
        ]

    def held(self) -> list[SlotRow]:
        return [slot for slot in self.slots() if slot.operation_id is not None]

    def operation(self, operation_id: uuid.UUID) -> OperationRow:
        [(status, progress, message, error, result)] = self.rows(
            "SELECT status, progress, message, error, result FROM operations_operation"
            " WHERE id = %s",
            self.key(operation_id),
        )
        if isinstance(result, str):  # SQLite returns JSON as text
            result = json.loads(result)
        return OperationRow(status, progress, message, error, result)

    def statuses(self, operation_ids: list[uuid.UUID]) -> list[str]:
        return [self.operation(operation_id).status for operation_id in operation_ids]

    def transaction_open_for(self, seconds: float) -> bool:
        """Say whether another connection has been inside a transaction for `seconds` or more."""
        if self.postgres:
            time.sleep(seconds)
            [(count,)] = self.rows(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND xact_start < now() - make_interval(secs => %s)",
                seconds,
            )
            return count > 0
        # Every coordhub transaction on SQLite is IMMEDIATE, so an open one holds the write lock.
        self.connection.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # database is locked
            return True
        finally:
            self.connection.execute("PRAGMA busy_timeout = 20000")
        self.connection.execute("ROLLBACK")
        return False


@dataclass
class Tally:
    """What one racer saw: the intervals it held a slot, and its refusals."""

    intervals: list[tuple[int, int]] = field(default_factory=list)
    rejected: int = 0
    failed_releases: int = 0


def race(rounds: int, *, limit: int) -> Tally:
    """Claim, briefly hold and release a slot `rounds` times, timing each hold."""
    from operations.exceptions import NoFreeSlot
    from operations.models import Operation
    from operations.slots import claim_slot, release

    tally = Tally()
    for _ in range(rounds):
        operation = Operation.objects.create(kind="simulated")
        try:
            hold = claim_slot(operation, limit=limit, lease_seconds=30)
        except NoFreeSlot:
            tally.rejected += 1
            continue
        # Timed inside the true hold (after the claim committed, before the release starts),
        # so overlapping intervals mean overlapping holders. The wall clock, unlike
        # time.monotonic(), compares across processes.
        claimed = time.time_ns()
        time.sleep(random.uniform(*HOLD_SECONDS))
        released = time.time_ns()
        if not release(hold):
            tally.failed_releases += 1
        tally.intervals.append((claimed, released))
    return tally


def in_threads[T](threads: int, work: Callable[[], T]) -> list[T]:
    """Run `work` in `threads` threads at once, each on its own connection; return the results."""
    from django.db import connection

    results: list[T] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # reported, and the command fails
            errors.append(exc)
        finally:
            connection.close()

    running = [threading.Thread(target=racer) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    if errors:
        raise errors[0]
    return results


def race_in_threads(threads: int, rounds: int, *, limit: int) -> Tally:
    """Run `race` in `threads` threads at once; merge their tallies."""
    return merge(in_threads(threads, lambda: race(rounds, limit=limit)))


def merge(tallies: list[Tally]) -> Tally:
    merged = Tally()
    for tally in tallies:
        merged.intervals += tally.intervals
        merged.rejected += tally.rejected
        merged.failed_releases += tally.failed_releases
    return merged


@dataclass(frozen=True)
class Held:
    """A stretch of time an operation held a slot (wall-clock nanoseconds), and what it was."""

    start: int
    end: int
    client: str
    kind: str
    key: str


@dataclass
class CapsTally:
    """What a `race-caps` racer saw.

    `holds`: when each admitted operation held its slot; `refused`: the refusals, by
    error code; `waits`: for each operation that joined the line, by client, a stretch
    of time it was seen waiting ([start, end) of wall-clock nanoseconds); `handed_over`:
    how many of those a release handed a slot; `stranded`: how many were not handed
    one (or ended otherwise) within HANDOVER_TIMEOUT_SECONDS; `failed_releases`: holds
    found gone or not released.
    """

    holds: list[Held] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    waits: list[tuple[str, int, int]] = field(default_factory=list)
    handed_over: int = 0
    stranded: int = 0
    failed_releases: int = 0

    def to_json(self) -> str:
        # Not asdict(self): it would rebuild the Counter from its items, counting them.
        return json.dumps(asdict(self) | {"refused": dict(self.refused)})

    @classmethod
    def from_json(cls, text: str) -> CapsTally:
        data = json.loads(text)
        return cls(
            holds=[Held(**held) for held in data["holds"]],
            refused=Counter(data["refused"]),
            waits=[(client, start, end) for client, start, end in data["waits"]],
            handed_over=data["handed_over"],
            stranded=data["stranded"],
            failed_releases=data["failed_releases"],
        )

    def merge(self, other: CapsTally) -> CapsTally:
        return CapsTally(
            self.holds + other.holds,
            self.refused + other.refused,
            self.waits + other.waits,
            self.handed_over + other.handed_over,
            self.stranded + other.stranded,
            self.failed_releases + other.failed_releases,
        )


def register_capped_kinds() -> None:
    """Register `capped` (one at a time) and `keyed` (one at a time per `account`)."""
    from django import forms

    from operations.kinds import register

    class NoParams(forms.Form):
        pass

    class AccountParams(forms.Form):
        account = forms.CharField(max_length=64)

    register("capped", NoParams, max_concurrent=1)(lambda context: None)
    register("keyed", AccountParams, concurrency_key=lambda params: params["account"])(
        lambda context, account: None
    )


def race_caps(rounds: int, *, wait_share: float) -> CapsTally:
    """Admit, briefly hold and release an operation `rounds` times, timing each hold.

    Each round picks a client, a kind and an account at random. With probability
    `wait_share` it asks to wait when busy: it then polls its operation until a
    release (another racer's) hands it a slot, and holds and releases that slot
    like any other.
    """
    from operations.admission import admit
    from operations.exceptions import NoFreeSlot

    tally = CapsTally()
    for _ in range(rounds):
        client, kind = random.choice(CAPS_CLIENTS), random.choice(CAPS_KINDS)
        params = {"account": random.choice(CAPS_ACCOUNTS)} if kind == "keyed" else {}
        when_busy = "wait" if random.random() < wait_share else "refuse"
        try:
            operation = admit(kind, params, client_key=client, when_busy=when_busy)
        except NoFreeSlot as refusal:
            tally.refused[refusal.code] += 1
            continue
        if operation.status == "waiting":
            if not handed_a_slot(operation, tally):
                tally.stranded += 1
                continue
            tally.handed_over += 1
        hold_and_release(operation, tally)
    return tally


def handed_a_slot(operation: Operation, tally: CapsTally) -> bool:
    """Poll a waiting operation until it is queued (handed a slot); say whether it was.

    The stretch recorded in `tally.waits` lies inside the true wait: it starts after
    the operation joined the line (committed) and ends before the last read that
    still saw it waiting began, so before the handover committed.
    """
    from operations.models import Operation

    joined = last_seen_waiting = time.time_ns()
    deadline = time.monotonic() + HANDOVER_TIMEOUT_SECONDS
    status = "waiting"
    while time.monotonic() < deadline:
        before = time.time_ns()
        status = Operation.objects.filter(pk=operation.pk).values_list("status", flat=True).get()
        if status != "waiting":
            break
        last_seen_waiting = before
        time.sleep(POLL_SECONDS)
    if last_seen_waiting > joined:
        tally.waits.append((operation.client_key, joined, last_seen_waiting))
    return status == "queued"


def hold_and_release(operation: Operation, tally: CapsTally) -> None:
    """Time a 5-20 ms hold of the slot `operation` holds now, then release it to the line."""
    from operations.line import release
    from operations.slots import holds_of

    # Timed inside the true hold: after the slot was claimed (or handed over) and
    # committed, before the release starts.
    start = time.time_ns()
    time.sleep(random.uniform(*HOLD_SECONDS))
    holds = holds_of(operation.pk)
    end = time.time_ns()
    if len(holds) != 1 or not release(holds[0]):
        tally.failed_releases += 1
        return
    held = Held(start, end, operation.client_key, operation.kind, operation.concurrency_key)
    tally.holds.append(held)


def race_processes(
    database_url: str, arguments: list[str], *, processes: int, **variables: str
) -> list[str]:
    """Start `processes` racers with `arguments`, let them go at once; return their output.

    `variables`: configuration settings of the racers' environment.
    """
    command = [sys.executable, "-m", "tests.operations.racer", *arguments]
    racers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment(database_url, **variables),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
        for racer in racers:
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=120) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    assert [racer.returncode for racer in racers] == [0] * processes, outputs
    return [stdout for stdout, _ in outputs]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.operations.racer")
    commands = parser.add_subparsers(dest="command", required=True)
    racing = commands.add_parser("race")
    racing.add_argument("--rounds", type=int, required=True)
    racing.add_argument("--threads", type=int, default=1)
    racing.add_argument("--limit", type=int, default=3)
    capping = commands.add_parser("race-caps")
    capping.add_argument("--rounds", type=int, required=True)
    capping.add_argument("--threads", type=int, default=1)
    capping.add_argument("--wait-share", type=float, default=0.0)
    admitting = commands.add_parser("admit")
    admitting.add_argument("--count", type=int, default=1)
    admitting.add_argument("--duration", type=float, required=True)
    cancelling = commands.add_parser("cancel")
    cancelling.add_argument("operation_id")
    options = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordhub.settings")
    import django

    django.setup()
    from django.db import connection

    from operations.admission import admit
    from operations.cancellation import cancel
    from operations.models import Operation

    if options.command == "race":
        connection.ensure_connection()
        print("ready", flush=True)
        sys.stdin.readline()  # every racer starts on the same signal
        tally = race_in_threads(options.threads, options.rounds, limit=options.limit)
        print(json.dumps(asdict(tally)), flush=True)
    elif options.command == "race-caps":
        register_capped_kinds()
        connection.ensure_connection()
        print("ready", flush=True)
        sys.stdin.readline()
        tallies = in_threads(
            options.threads,
            lambda: race_caps(options.rounds, wait_share=options.wait_share),
        )
        print(functools.reduce(CapsTally.merge, tallies).to_json(), flush=True)
    elif options.command == "admit":
        params = {"duration": options.duration}
        ids = [str(admit("simulated", params).id) for _ in range(options.count)]
        print(json.dumps(ids), flush=True)
    else:
        cancel(Operation.objects.get(pk=options.operation_id))
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
