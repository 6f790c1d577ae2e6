"""A scale-out coordhub on one machine, to break on purpose.

`Cluster` starts its own throwaway PostgreSQL and Redis, migrates a database,
then runs two daphne web processes and two `coordhub_worker` processes against
them, configured as a test asks, all through the harness (`coordhub.testing`).
Each process can be killed; PostgreSQL and Redis can be stopped and started
again on the same port with the same data. Every process dies with the test
process, so nothing outlives a test that crashes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from coordhub.testing import processes
from coordhub.testing.environment import child_environment
from coordhub.testing.processes import Process, WebServer, Worker
from coordhub.testing.services import PostgresServer, RedisServer, ServiceError

WEB_PROCESSES = 2
WORKERS = 2
DATABASE_NAME = "coordhub"
# Generous: four Django processes start at once on a shared two-core machine.
START_TIMEOUT_SECONDS = 120
# No request may hang: a web process that stops answering shows as a failed request.
HTTP_TIMEOUT_SECONDS = 30
FINISHED = ("completed", "failed", "cancelled")


class Cluster:
    """PostgreSQL, Redis, two web processes and two workers, all throwaway."""

    def __init__(
        self, directory: Path, *, worker_threads: int | None = None, **variables: str
    ) -> None:
        """`variables` are coordhub settings for every process (MAX_CONCURRENT_OPERATIONS=...).

        Each worker runs `worker_threads` task loops (default: one per slot).
        """
        self.directory = directory
        self.worker_threads = worker_threads
        self.variables = {
            "READ_REQUESTS_PER_MINUTE": "100000",
            "START_ATTEMPTS_PER_MINUTE": "100000",  # what is measured is the start limit
        } | variables
        self.redis = RedisServer()
        self.postgres = PostgresServer()
        self.database_url = ""
        self.web: list[WebServer] = []
        self.workers: list[Worker] = []

    @property
    def urls(self) -> list[str]:
        """Base URLs of the web processes, e.g. http://127.0.0.1:PORT."""
        return [web.url for web in self.web]

    def start(self) -> Cluster:
        self.start_redis()
        self.start_postgres()
        with psycopg.connect(self.postgres.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE_NAME}")
        self.database_url = urlsplit(self.postgres.url)._replace(path=f"/{DATABASE_NAME}").geturl()
        env = child_environment(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            WEB_CONCURRENCY=str(WEB_PROCESSES),
            **self.variables,
        )
        migrating = child_environment(DATABASE_URL=self.database_url)
        processes.manage("migrate", "--no-input", env=migrating)
        threads = ["--threads", str(self.worker_threads)] if self.worker_threads else []
        for number in range(1, WORKERS + 1):
            worker = processes.worker(
                f"worker-{number}", self.directory, env, "--interval", "0.2", *threads
            )
            self.workers.append(worker.start())
        for number in range(1, WEB_PROCESSES + 1):
            self.web.append(processes.web_server(f"web-{number}", self.directory, env).start())
        try:
            processes.wait_until_ready(*self.workers, *self.web, timeout=START_TIMEOUT_SECONDS)
        except ServiceError as exc:  # health needs the workers too: show every log
            raise ServiceError(f"{exc}\n{self.logs()}") from None
        return self

    def start_redis(self) -> None:
        """Start Redis, or start it again on the same port (its data does not persist)."""
        self.redis.start()

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_postgres(self) -> None:
        """Start PostgreSQL, or start it again on the same port with the same data."""
        self.postgres.start()

    def stop_postgres(self) -> None:
        """Stop PostgreSQL with a fast shutdown: connected sessions are cut off, not awaited."""
        self.postgres.stop()

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one query on a fresh connection (so it works across a PostgreSQL restart)."""
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as connection:
            return connection.execute(query, params).fetchall()

    def children(self) -> list[Process]:
        return [*self.web, *self.workers]

    def pids(self) -> dict[str, int | None]:
        """The pid of each web process and worker, None for one that has exited."""
        return {child.name: child.pid if child.alive else None for child in self.children()}

    def logs(self) -> str:
        """The end of every process's log, for failure messages."""
        return "\n".join(
            f"--- {child.name} (pid {child.pid}, {'alive' if child.alive else 'exited'}):\n"
            f"{child.log_tail()}"
            for child in self.children()
            if child.process is not None
        )

    def close(self) -> None:
        for child in self.children():
            child.kill()
        try:
            self.stop_postgres()
        finally:
            self.postgres.remove()
            self.redis.remove()


@dataclass(frozen=True)
class Answer:
    """One request and what came back; `status` is None when no HTTP answer came at all."""

    method: str
    url: str
    sent: float  # time.monotonic()
    received: float
    status: int | None
    error: str  # the JSON error code, or the exception when there was no answer
    body: Any = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def server_error(self) -> bool:
        """A 5xx other than the documented 503s, or no answer at all."""
        return self.status is None or (self.status >= 500 and self.status != 503)


def send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Answer:
    """Send one request and record the outcome, never raising for a failed one."""
    sent = time.monotonic()
    try:
        response = client.request(method, url, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)
    except httpx.HTTPError as exc:
        return Answer(method, url, sent, time.monotonic(), None, repr(exc))
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error", "") if isinstance(body, dict) else ""
    return Answer(
        method,
        url,
        sent,
        time.monotonic(),
        response.status_code,
        error or "",
        body,
        response.text,
        dict(response.headers),
    )


def start_operation(client: httpx.Client, base_url: str, duration: float) -> Answer:
    """POST a `simulated` operation of `duration` seconds."""
    body = {"kind": "simulated", "params": {"duration": duration}}
    return send(client, "POST", f"{base_url}/api/operations", json=body)


def wait_until_finished(
    client: httpx.Client, base_url: str, operation_ids: Iterable[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll GET /api/operations/<id> until every operation has finished; return them."""
    waiting = set(operation_ids)
    finished: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while waiting:
        for operation_id in sorted(waiting):
            answer = send(client, "GET", f"{base_url}/api/operations/{operation_id}")
            if answer.status == 200 and answer.body["status"] in FINISHED:
                finished[operation_id] = answer.body
                waiting.discard(operation_id)
        if waiting and time.monotonic() > deadline:
            raise AssertionError(f"{len(waiting)} operations did not finish within {timeout} s.")
        if waiting:
            time.sleep(0.2)
    return finished


def wait_for(condition: Callable[[], Any], what: str, timeout: float, cluster: Cluster) -> Any:
    """Poll `condition` until it returns something true; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not (outcome := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s.\n{cluster.logs()}")
        time.sleep(0.1)
    return outcome


def running_interval(operation: dict[str, Any]) -> tuple[datetime, datetime]:
    """[started_at, finished_at) of a finished operation as its worker recorded them."""
    return (
        datetime.fromisoformat(operation["started_at"]),
        datetime.fromisoformat(operation["finished_at"]),
    )
