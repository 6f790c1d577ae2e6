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
- `admit --count N --duration S`: admit `simulated` operations; print their ids.
- `cancel ID`: cancel an operation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from coordhub.testing.environment import child_environment
from coordhub.testing.processes import ROOT, manage

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
SQLITE_PREFIX = "sqlite:///"
# Only the hold itself is timed, not the claim or release around it: with holds much
# shorter than those, even four holders at once would rarely show as overlapping.
HOLD_SECONDS = (0.005, 0.02)


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


def race_in_threads(threads: int, rounds: int, *, limit: int) -> Tally:
    """Run `race` in `threads` threads at once, each on its own connection; merge their tallies."""
    from django.db import connection

    tallies: list[Tally] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            tallies.append(race(rounds, limit=limit))
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
    return merge(tallies)


def merge(tallies: list[Tally]) -> Tally:
    merged = Tally()
    for tally in tallies:
        merged.intervals += tally.intervals
        merged.rejected += tally.rejected
        merged.failed_releases += tally.failed_releases
    return merged


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.operations.racer")
    commands = parser.add_subparsers(dest="command", required=True)
    racing = commands.add_parser("race")
    racing.add_argument("--rounds", type=int, required=True)
    racing.add_argument("--threads", type=int, default=1)
    racing.add_argument("--limit", type=int, default=3)
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
    elif options.command == "admit":
        params = {"duration": options.duration}
        ids = [str(admit("simulated", params).id) for _ in range(options.count)]
        print(json.dumps(ids), flush=True)
    else:
        cancel(Operation.objects.get(pk=options.operation_id))
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
