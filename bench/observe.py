"""A server process seen from outside: its CPU, threads and database, and many clients at once.

Section 9 opens hundreds of sockets and held requests against one daphne. Each comes
from an address of its own (X-Forwarded-For, believed from loopback through
`TRUSTED_PROXIES`), since coordhub bounds what one client may hold open; an event
loop in a thread of its own keeps them while the caller measures.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.servers import BenchError
from coordhub.testing.processes import WebServer

FIRST_ADDRESS = int(IPv4Address("10.0.0.1"))
PROXIES = {"TRUSTED_PROXIES": "127.0.0.1"}
CONNECTING_AT_ONCE = 64  # daphne's listen backlog is 50: more at once would be retried
SETTLED_CPU_SECONDS = 0.05  # per half second: the server has taken in every request


def address(number: int) -> str:
    """The `number`th client's address."""
    return str(IPv4Address(FIRST_ADDRESS + number))


class Loop:
    """An event loop in a thread of its own, holding connections while the caller measures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in USER_HZ ticks


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise BenchError(f"No thread count for process {pid}.")


def settle(web: WebServer, timeout: float = 60) -> None:
    """Wait until the server has taken in what it was sent: its CPU goes quiet."""
    deadline = time.monotonic() + timeout
    used = cpu_seconds(web.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(web.pid)
        if now - used < SETTLED_CPU_SECONDS:
            return
        used = now
    raise BenchError(f"{web.name} did not go quiet within {timeout} s.")


def cpu_share(web: WebServer, seconds: float) -> float:
    """The share of one core the server used over the next `seconds`."""
    before = cpu_seconds(web.pid)
    time.sleep(seconds)
    return (cpu_seconds(web.pid) - before) / seconds


@dataclass
class Postgres:
    """The run's PostgreSQL as an administrator sees it."""

    admin_url: str
    log: Path  # the server's log

    def execute(self, statement: sql.Composable) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(statement)

    def connections(self, database: str) -> tuple[int, int]:
        """Connections to `database`: open, and busy (in a query or a transaction)."""
        query = (
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle')"
            " FROM pg_stat_activity WHERE datname = %s"
        )
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            return connection.execute(query, (database,)).fetchone()

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, size: int, starting: bytes = b"") -> int:
        """Statements logged since the log was `size` bytes (by databases that log them)."""
        with open(self.log, "rb") as log:
            log.seek(size)
            return log.read().count(b"LOG:  statement: " + starting)
