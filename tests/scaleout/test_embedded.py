"""Embedded mode under load: one `manage.py serve` on SQLite, sixteen busy clients.

SQLite has one writer at a time; every coordhub transaction is IMMEDIATE with a
busy timeout, so contention queues instead of failing with "database is locked".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer
from tests.scaleout.cluster import FINISHED, Answer, send, start_operation

pytestmark = pytest.mark.scaleout

LIMIT = 8
CLIENTS = 16
LOAD_SECONDS = 20
DURATION = 0.2
LOCKED = "database is locked"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path,
        COORDHUB_ENV="testing",
        MAX_CONCURRENT_OPERATIONS=str(LIMIT),
        REQUESTS_PER_MINUTE="100000",
        READ_REQUESTS_PER_MINUTE="100000",
        START_ATTEMPTS_PER_MINUTE="100000",
        WEB_CONCURRENCY="1",
    ).start()
    try:
        yield live
    finally:
        live.stop()


def client(url: str, until: float) -> tuple[list[Answer], list[dict]]:
    """Start an operation, poll it until it finishes, repeat; return answers and outcomes."""
    answers: list[Answer] = []
    outcomes: list[dict] = []
    with httpx.Client() as http:
        while time.monotonic() < until:
            start = start_operation(http, url, DURATION)
            answers.append(start)
            if start.status != 202:
                time.sleep(0.1)
                continue
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                poll = send(http, "GET", f"{url}/api/operations/{start.body['id']}")
                answers.append(poll)
                if poll.status == 200 and poll.body["status"] in FINISHED:
                    outcomes.append(poll.body)
                    break
                time.sleep(0.1)
            else:
                outcomes.append({"id": start.body["id"], "status": "not finished within 60 s"})
    return answers, outcomes


def test_sqlite_serves_sixteen_busy_clients_without_errors_or_locks(server, figures):
    answers: list[Answer] = []
    outcomes: list[dict] = []
    until = time.monotonic() + LOAD_SECONDS

    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = [pool.submit(client, server.url, until) for _ in range(CLIENTS)]
    for run in runs:
        seen, ended = run.result()  # a client that raised fails the test here
        answers += seen
        outcomes += ended

    starts = [a for a in answers if a.method == "POST"]
    failures = [a for a in answers if a.status is None or a.status >= 500]
    locked = [a for a in answers if LOCKED in a.text]
    ended = Counter(outcome["status"] for outcome in outcomes)
    figures["requests"] = f"{len(answers)} ({dict(Counter(a.status for a in answers))})"
    figures["starts"] = dict(Counter(f"{a.status} {a.error}".strip() for a in starts))
    figures["admitted operations"] = dict(ended)
    figures["answers"], figures["5xx or no answer"] = len(answers), len(failures)
    figures[f"'{LOCKED}' in the server log"] = server.log.read_text().count(LOCKED)

    assert [f"{a.method} {a.url} -> {a.status} {a.error} {a.text[:200]}" for a in failures] == []
    assert locked == []
    assert {(a.status, a.error) for a in starts} <= {(202, ""), (429, "concurrency_limit")}
    assert ended["completed"] > 0
    assert ended == {"completed": len(outcomes)}
