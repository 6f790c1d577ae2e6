"""Waiting API calls through a real daphne: answered on a change, held without a thread.

One daphne and one worker on SQLite, and again on PostgreSQL: a long poll is
answered within a second of the change it waits for, `Prefer: wait` answers with
the finished operation, the templates' endpoint answers as the templates did, and
a hundred held requests cost the server neither threads nor database connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from coordhub.testing.environment import child_environment
from coordhub.testing.processes import (
    WebServer,
    manage,
    stop_all,
    wait_until_ready,
    web_server,
    worker,
)

HELD = 100
POOL_MAX_SIZE = 20  # coordhub.settings.POSTGRES_POOL
# Distinct clients, each within its bound of held requests: the server believes the
# X-Forwarded-For of its trusted proxy, loopback.
PROXY = {"TRUSTED_PROXIES": "127.0.0.1/32"}
GENEROUS = "100000"
# An operation that reports its first progress after 36 s: nothing wakes a waiter but us.
SLOW = 3600


def served(directory: Path, database_url: str) -> Iterator[WebServer]:
    env = child_environment(
        DATABASE_URL=database_url,
        COORDHUB_ENV="testing",
        REQUESTS_PER_MINUTE=GENEROUS,
        READ_REQUESTS_PER_MINUTE=GENEROUS,
        START_ATTEMPTS_PER_MINUTE=GENEROUS,
        MAX_CONCURRENT_OPERATIONS="4",
        **PROXY,
    )
    manage("migrate", "--no-input", env=env)
    web = web_server("daphne", directory, env)
    background = worker("worker", directory, env)
    web.start(), background.start()
    try:
        wait_until_ready(web, background)
        yield web
    finally:
        stop_all([web, background])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    directory = tmp_path_factory.mktemp(f"holding-{request.param}")
    if request.param == "sqlite":
        yield from served(directory, f"sqlite:///{directory / 'db.sqlite3'}")
    else:
        yield from served(directory, fresh_database(request.getfixturevalue("postgres_url")))


def fresh_database(postgres_url: str) -> str:
    name = f"holding_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def start(server: WebServer, duration: float, **headers: str) -> httpx.Response:
    body = {"kind": "simulated", "params": {"duration": duration}}
    return httpx.post(f"{server.url}/api/operations", json=body, headers=headers, timeout=70)


def show(server: WebServer, operation_id: str, etag: str = "", wait: int = 0, **headers: str):
    query = f"?wait={wait}" if wait else ""
    headers = {"If-None-Match": etag, **headers} if etag else headers
    url = f"{server.url}/api/operations/{operation_id}{query}"
    return httpx.get(url, headers=headers, timeout=70)


def finished_at(answer: httpx.Response) -> float:
    return datetime.fromisoformat(answer.json()["finished_at"]).timestamp()


def test_a_long_poll_is_answered_within_a_second_of_each_change(server):
    started = start(server, 2)
    assert started.status_code == 202
    operation_id, etag = started.json()["id"], started.headers["ETag"]

    statuses = []
    while not statuses or statuses[-1] != "completed":
        answer = show(server, operation_id, etag, wait=30)
        answered_at = time.time()
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] != etag
        etag = answer.headers["ETag"]
        statuses.append(answer.json()["status"])

    assert statuses[0] in ("queued", "running")  # woken by the worker's first change
    assert answered_at - finished_at(answer) < 1.0
    assert "X-Coordhub-Hold" not in answer.headers


def test_a_long_poll_on_nothing_changing_answers_304_after_its_wait(server):
    done = start(server, 0.1, Prefer="wait=10").json()
    etag = show(server, done["id"]).headers["ETag"]

    began = time.monotonic()
    answer = show(server, done["id"], etag, wait=2)
    waited = time.monotonic() - began

    assert answer.status_code == 304
    assert answer.headers["ETag"] == etag
    assert 2 <= waited < 3
    assert "X-Coordhub-Hold" not in answer.headers


def test_prefer_wait_answers_200_with_the_operation_once_it_has_ended(server):
    began = time.monotonic()
    answer = start(server, 1, Prefer="wait=10")
    waited = time.monotonic() - began

    assert answer.status_code == 200
    assert answer.json()["status"] == "completed"
    assert answer.headers["Preference-Applied"] == "wait=10"
    assert answer.headers["Location"] == f"/api/operations/{answer.json()['id']}"
    assert answer.headers["RateLimit"].startswith('"start"')  # the start's own budget
    assert 1 <= waited < 2.5
    assert time.time() - finished_at(answer) < 1.0


def test_prefer_wait_answers_202_when_the_operation_outlasts_it(server):
    began = time.monotonic()
    answer = start(server, 5, Prefer="wait=1")
    waited = time.monotonic() - began

    assert answer.status_code == 202
    assert answer.json()["status"] in ("queued", "running")
    assert answer.headers["Preference-Applied"] == "wait=1"
    assert 1 <= waited < 2
    httpx.post(f"{server.url}/api/operations/{answer.json()['id']}/cancel", timeout=10)


def test_the_templates_endpoint_answers_as_the_templates_did_once_done(server):
    sent = {"payload": "x", "n": 3}
    answer = httpx.post(f"{server.url}/api/protected-operation", json=sent, timeout=30)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"operation_id", "status", "result", "timestamp"}
    assert body["status"] == "completed"
    assert body["result"]["processed_data"] == sent
    assert body["result"]["status"] == "success"
    assert 2 <= body["result"]["processing_time"] < 3
    assert datetime.fromisoformat(body["timestamp"])


def test_a_templates_start_cancelled_while_it_waits_answers_409_saying_so(server):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.post, f"{server.url}/api/protected-operation", json={"n": 1}, timeout=30
        )
        newest = wait_for_newest(server, "running")
        httpx.post(f"{server.url}/api/operations/{newest}/cancel", timeout=10)
        answer = waiting.result()

    assert answer.status_code == 409
    assert answer.json()["error"] == "operation_cancelled"
    assert answer.json()["operation_id"] == newest
    assert answer.json()["operation_status"] == "cancelled"
    assert answer.json()["reason"] == "Cancelled on request."


def wait_for_newest(server: WebServer, status: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        newest = httpx.get(f"{server.url}/api/operations", timeout=10).json()["operations"][0]
        if newest["status"] == status:
            return newest["id"]
        time.sleep(0.05)
    raise AssertionError(f"the newest operation never was {status}")


def test_a_hundred_waiting_requests_hold_no_thread_and_no_connection(server):
    operation_id = start(server, SLOW).json()["id"]
    # The waiters are other clients: what they see (and its ETag) leaves out the params.
    etag = wait_until_running(server, operation_id, **{"X-Forwarded-For": "198.51.100.250"})
    threads_before, connections_before = thread_count(server.pid), database_connections(server)

    answers, during = asyncio.run(hold_many(server, operation_id, etag))

    assert during["threads"] - threads_before < 10, during
    assert during["health_seconds"] < 1.0, during
    assert during["list_seconds"] < 1.0, during
    if connections_before is not None:
        # The pool (at most 20) grew for the burst of arrivals; a hundred waiters each
        # holding a connection would have emptied it, and the list would wait for one.
        assert during["connections"] - connections_before <= POOL_MAX_SIZE, during
    assert [answer.status_code for answer in answers] == [200] * HELD
    assert {answer.json()["message"] for answer in answers} <= {"Cancelling", "Cancelled"}
    print(f"held {HELD}: {during}, threads before {threads_before}")


def test_past_its_bound_one_client_waiting_again_is_refused_with_429(server):
    running = start(server, SLOW).json()
    etag = wait_until_running(server, running["id"])

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            url = f"/api/operations/{running['id']}?wait=20"
            held = [
                asyncio.ensure_future(client.get(url, headers={"If-None-Match": etag}))
                for _ in range(20)
            ]
            await asyncio.sleep(1.0)
            refused = await client.get(url, headers={"If-None-Match": etag})
            await client.post(f"/api/operations/{running['id']}/cancel")
            await asyncio.gather(*held)
            return refused

    refused = asyncio.run(scenario())

    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_waiting"
    assert refused.json()["detail"].startswith("This client already has 20 waiting requests")
    assert refused.headers["Retry-After"] == "1"


def wait_until_running(server: WebServer, operation_id: str, **headers: str) -> str:
    """Wait until the operation runs; return its ETag then, as the client of `headers` sees it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = show(server, operation_id, **headers)
        if answer.json()["status"] == "running":
            return answer.headers["ETag"]
        time.sleep(0.1)
    raise AssertionError(f"{operation_id} did not start running")


async def hold_many(server: WebServer, operation_id: str, etag: str):
    """Hold HELD requests from distinct clients, measure the server, then make them change."""
    url = f"/api/operations/{operation_id}?wait=30"
    limits = httpx.Limits(max_connections=HELD + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        held = [
            asyncio.ensure_future(
                client.get(
                    url, headers={"If-None-Match": etag, "X-Forwarded-For": f"198.51.100.{n}"}
                )
            )
            for n in range(HELD)
        ]
        await asyncio.sleep(0.5)
        began = time.monotonic()
        health = await client.get("/api/health")
        health_seconds = time.monotonic() - began
        listed = await client.get("/api/operations")
        during = {
            "health_seconds": health_seconds,
            "list_seconds": time.monotonic() - began - health_seconds,
            "health": health.status_code,
            "list": listed.status_code,
            "threads": thread_count(server.pid),
            "connections": await asyncio.to_thread(database_connections, server),
        }
        await client.post(f"/api/operations/{operation_id}/cancel")
        return await asyncio.gather(*held), during


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def database_connections(server: WebServer) -> int | None:
    """Connections to the server's PostgreSQL database (its worker's too); None on SQLite."""
    url = server.env["DATABASE_URL"]
    if not url.startswith("postgres"):
        return None
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    return row[0]
