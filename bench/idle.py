"""Section 9: the database queries of an idle web process, with 0, 50 and 200 sockets open.

daphne on PostgreSQL (and Redis), no worker, nothing changing; its database is set to
`log_statement = all`, and the statements PostgreSQL logs are counted over a window
with each number of nudge sockets open. On SQLite the change feed's detector asks
`PRAGMA data_version` a few times a second whatever the sockets: that figure is
computed from its interval, not measured.
"""

from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path

import httpx
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from bench.observe import CONNECTING_AT_ONCE, PROXIES, Loop, Postgres, address, settle
from bench.servers import BenchError, Databases, Stack, unlimited_environment
from bench.table import Row, at_most
from coordhub.testing.processes import WebServer, wait_until_ready

# Extra statements per second per socket an idle web process may run.
PER_SOCKET_TARGET = 0.01


def sqlite_check_seconds() -> float:
    """`operations.feed.sqlite.CHECK_SECONDS`, read from the source: importing it sets Django up."""
    source = Path(__file__).resolve().parent.parent / "operations" / "feed" / "sqlite.py"
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "CHECK_SECONDS":
            return ast.literal_eval(node.value)
    raise BenchError(f"No CHECK_SECONDS in {source}.")


async def open_sockets(web: WebServer, first: int, count: int) -> list[ClientConnection]:
    url = web.url.replace("http://", "ws://") + "/ws/live/"
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one(number: int) -> ClientConnection:
        async with gate:
            headers = {"X-Forwarded-For": address(number)}
            return await connect(
                url, origin=web.url, additional_headers=headers, ping_interval=None, proxy=None
            )

    return await asyncio.gather(*(one(first + number) for number in range(count)))


async def close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(socket.close() for socket in sockets))


def measure(
    stack: Stack, databases: Databases, redis_url: str, window: float, counts: tuple[int, ...]
) -> dict[int, int]:
    """Statements an idle daphne runs over `window` s with each number of sockets open."""
    assert stack.postgres is not None
    pg = Postgres(stack.postgres.url, stack.postgres.log)
    database = "idle_sockets"
    url = databases.postgres(database)
    pg.execute(
        sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(sql.Identifier(database))
    )
    env = unlimited_environment(url, REDIS_URL=redis_url, **PROXIES)
    began = pg.log_size()
    web = stack.start_web("idle-postgres", "daphne", env)
    loop, sockets, statements = Loop(), [], {}
    try:
        wait_until_ready(web)
        for count in counts:
            sockets += loop.run(open_sockets(web, len(sockets), count - len(sockets)))
            settle(web)
            logged = pg.log_size()
            time.sleep(window)
            statements[count] = pg.statements_since(logged)
        loop.run(close_all(sockets))
        # Proof that the sockets started the feed (one LISTEN) and that statements are logged.
        if pg.statements_since(began, b"LISTEN") != 1:
            raise BenchError("The sockets did not start one change feed listening.")
        logged = pg.log_size()
        httpx.get(f"{web.url}/api/operations", timeout=30)  # a request that queries
        time.sleep(0.5)
        if not pg.statements_since(logged):
            raise BenchError("PostgreSQL logged no statement of a request that queries.")
    finally:
        loop.close()
        stack.stop(web)
    return statements


def rows(statements: dict[int, int], window: float) -> list[Row]:
    none = statements[0] / window
    built = [
        Row(
            f"9. idle web process, PostgreSQL: queries/s with {count} sockets",
            f"{found / window:.2f} ({found} statements in {window:.0f} s)",
            f"no socket {none:.2f}",
            (found / window - none) / count,
            at_most(PER_SOCKET_TARGET),
        )
        for count, found in statements.items()
        if count
    ]
    check = sqlite_check_seconds()
    built.append(
        Row(
            "9. idle web process, SQLite: queries/s with any number of sockets (computed)",
            f"{1 / check:.0f} (PRAGMA data_version every {check} s)",
            "0 until a socket or a wait starts the feed",
        )
    )
    return built
