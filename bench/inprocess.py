#!/usr/bin/env python
"""What a read costs coordhub itself: milliseconds per request in one process, no server.

Django's test client sends each request straight to the handler, so the figures
leave out the web server and the network and keep what the views, middleware
and database do. Under ASGI every request runs in a thread of its own and
connects anew, so each figure is also measured connecting before every request,
through coordhub's SQLite backend and through Django's, side by side:

    python bench/inprocess.py              # a SQLite file in a temporary directory
    python bench/inprocess.py --requests 2000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: bench/ itself is sys.path[0]

from bench.servers import UNLIMITED, environment  # noqa: E402

COORDHUB_SQLITE = "coordhub.sqlite"  # keeps closed connections for the next request
DJANGO_SQLITE = "django.db.backends.sqlite3"  # opens one for every request


def use_engine(engine: str) -> None:
    """Serve the next requests through `engine`, on the same database file."""
    from django.db import DEFAULT_DB_ALIAS, connections

    connections.close_all()
    with contextlib.suppress(AttributeError):  # no connection made in this thread yet
        del connections[DEFAULT_DB_ALIAS]
    connections.settings[DEFAULT_DB_ALIAS]["ENGINE"] = engine


def per_request_ms(send: Callable[[], object], requests: int, before: Callable[[], None]) -> float:
    began = time.perf_counter()
    for _ in range(requests):
        before()
        send()
    return (time.perf_counter() - began) / requests * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per figure")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="coordhub-inprocess-"))
    try:
        measure(directory, args.requests)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def migrated_sqlite(database: Path) -> None:
    """Set Django up in this process on a SQLite file at `database`, migrated, limits on."""
    os.environ.update(
        environment(
            DATABASE_URL=f"sqlite:///{database}",
            ENABLE_RATE_LIMITING="true",
            READ_REQUESTS_PER_MINUTE=UNLIMITED,
            REQUESTS_PER_MINUTE=UNLIMITED,
            START_ATTEMPTS_PER_MINUTE=UNLIMITED,
        )
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def measure(directory: Path, count: int) -> None:
    migrated_sqlite(directory / "db.sqlite3")
    from django.db import connections
    from django.test import Client

    from dashboard.state import CONTENT_HEADER
    from operations.admission import admit

    operation = admit("simulated", {"duration": 600}, client_key="ip:127.0.0.1")
    client = Client(HTTP_HOST="127.0.0.1")
    content = client.get("/dashboard/live/").headers[CONTENT_HEADER]
    requests = {
        "/bench/minimal": lambda: client.get("/bench/minimal"),
        "/bench/limited (one read-limit spend)": lambda: client.get("/bench/limited"),
        "GET /api/operations/<id>": lambda: client.get(f"/api/operations/{operation.id}"),
        "unchanged GET /dashboard/live/ (204)": lambda: client.get(
            "/dashboard/live/", headers={CONTENT_HEADER: content}
        ),
    }
    print(f"ms per request, {count} requests each, SQLite, rate limits on (local memory)")
    columns = ("connection kept", "reconnecting", "reconnecting, Django backend")
    print(f"{'request':38} {columns[0]:>16} {columns[1]:>13} {columns[2]:>29}")
    for name, send in requests.items():
        send()  # warm up
        kept = per_request_ms(send, count, lambda: None)
        reused = per_request_ms(send, count, connections.close_all)
        use_engine(DJANGO_SQLITE)
        fresh = per_request_ms(send, count, connections.close_all)
        use_engine(COORDHUB_SQLITE)
        print(f"{name:38} {kept:16.2f} {reused:13.2f} {fresh:29.2f}")


if __name__ == "__main__":
    sys.exit(main())
