"""A scale-out coordhub on one machine, to break on purpose.

`Cluster` starts its own throwaway PostgreSQL and Redis (`tests.services`),
migrates a database, then runs two daphne web processes and two
`coordhub_worker` processes against them, configured as a test asks. Each
process can be killed; PostgreSQL and Redis can be stopped and started again
on the same port with the same data. Every
process it starts dies with the test process (PR_SET_PDEATHSIG), so nothing
outlives a test that crashes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import httpx
import psycopg

from tests import services
from tests.live import stop_with_parent
from tests.operations.racer import environment, migrate
from tests.services import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
WEB_PROCESSES = 2
WORKERS = 2
DATABASE_NAME = "coordhub"
# Generous: four Django processes start at once on a shared two-core machine.
START_TIMEOUT_SECONDS = 120
LOG_TAIL_CHARACTERS = 3000
# No request may hang: a web process that stops answering shows as a failed request.
HTTP_TIMEOUT_SECONDS = 30
FINISHED = ("completed", "failed", "cancelled")
# Where a test's figures go as JSON lines (tests/scaleout/conftest.py), for bench/faults.py.
FIGURES_FILE_VARIABLE = "COORDHUB_FIGURES_FILE"


class DyingSubprocess:
    """The `subprocess` module as `tests.services` sees it, but its servers die with us."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(*args, preexec_fn=stop_with_parent, **kwargs)


@contextmanager
def servers_die_with_us() -> Iterator[None]:
    """Start `tests.services` servers that get SIGTERM when the test process dies.

    The parent-death signal fires when the thread that forked exits, so call
    this from the test's main thread only.
    """
    with mock.patch.object(services, "subprocess", DyingSubprocess()):
        yield


class Child:
    """One coordhub process (web or worker), its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, url: str = ""
    ) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.url = url  # a web process's base URL
        self.process: subprocess.Popen | None = None

    def start(self) -> Child:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=stop_with_parent,
            )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (it ends a frozen process too)."""
        if self.alive:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=30)

    def output(self) -> str:
        """What the process printed."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


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
        self.variables = {"READ_REQUESTS_PER_MINUTE": "100000"} | variables
        self.redis = RedisServer()
        self.postgres = PostgresServer()
        self.database_url = ""
        self.web: list[Child] = []
        self.workers: list[Child] = []

    @property
    def urls(self) -> list[str]:
        """Base URLs of the web processes, e.g. http://127.0.0.1:PORT."""
        return [child.url for child in self.web]

    def start(self) -> Cluster:
        self.start_redis()
        self.start_postgres()
        with psycopg.connect(self.postgres.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE_NAME}")
        self.database_url = urlsplit(self.postgres.url)._replace(path=f"/{DATABASE_NAME}").geturl()
        migrate(self.database_url)
        env = environment(
            self.database_url,
            REDIS_URL=self.redis.url,
            WEB_CONCURRENCY=str(WEB_PROCESSES),
            **self.variables,
        )
        threads = ["--threads", str(self.worker_threads)] if self.worker_threads else []
        for number in range(1, WORKERS + 1):
            name = f"worker-{number}"
            argv = [
                *(sys.executable, "manage.py", "coordhub_worker"),
                *("--worker-id", name, "--interval", "0.2", *threads),
            ]
            self.workers.append(Child(name, argv, env, self.directory / f"{name}.log").start())
        for number in range(1, WEB_PROCESSES + 1):
            port = free_port()
            argv = [
                *(sys.executable, "-m", "daphne", "--bind", "127.0.0.1", "--port", str(port)),
                "coordhub.asgi:application",
            ]
            log = self.directory / f"web-{number}.log"
            child = Child(f"web-{number}", argv, env, log, url=f"http://127.0.0.1:{port}")
            self.web.append(child.start())
        for worker in self.workers:
            self.wait_until_worker_runs(worker)
        for web in self.web:
            self.wait_until_healthy(web)
        return self

    def wait_until_worker_runs(self, worker: Child, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while "task loops" not in worker.output():
            if not worker.alive:
                raise AssertionError(f"{worker.name} exited while starting:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{worker.name} did not start:\n{self.logs()}")
            time.sleep(0.1)

    def wait_until_healthy(self, web: Child, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait for /api/health to answer 200: database, cache and a worker all up."""
        deadline = time.monotonic() + timeout
        while True:
            if not web.alive:
                raise AssertionError(f"{web.name} exited while starting:\n{self.logs()}")
            try:
                if httpx.get(f"{web.url}/api/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{web.name} did not become healthy:\n{self.logs()}")
            time.sleep(0.2)

    def start_redis(self) -> None:
        """Start Redis, or start it again on the same port (its data does not persist)."""
        with servers_die_with_us():
            self.redis.start()

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_postgres(self) -> None:
        """Start PostgreSQL, or start it again on the same port with the same data."""
        with servers_die_with_us():
            self.postgres.start()

    def stop_postgres(self) -> None:
        """Stop PostgreSQL with a fast shutdown: connected sessions are cut off, not awaited.

        `PostgresServer.stop()` sends SIGTERM, PostgreSQL's smart shutdown, which waits
        for every client to disconnect; coordhub's pooled connections never would.
        """
        process = self.postgres.process
        if process is None or process.poll() is not None:
            return
        try:  # the postmaster may be runuser's child rather than `process` itself
            postmaster = int((self.postgres.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        except (OSError, ValueError, IndexError):  # not up yet, or already going
            self.postgres.stop()
        process.wait(timeout=60)

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one query on a fresh connection (so it works across a PostgreSQL restart)."""
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as connection:
            return connection.execute(query, params).fetchall()

    def pids(self) -> dict[str, int | None]:
        """The pid of each web process and worker, None for one that has exited."""
        return {child.name: child.pid if child.alive else None for child in self.web + self.workers}

    def logs(self) -> str:
        """The end of every process's log, for failure messages."""
        return "\n".join(
            f"--- {child.name} (pid {child.pid}, {'alive' if child.alive else 'exited'}):\n"
            f"{child.output()[-LOG_TAIL_CHARACTERS:]}"
            for child in [*self.web, *self.workers]
            if child.process is not None
        )

    def close(self) -> None:
        for child in [*self.web, *self.workers]:
            if child.process is not None:
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


def running_interval(operation: dict[str, Any]) -> tuple[datetime, datetime]:
    """[started_at, finished_at) of a finished operation as its worker recorded them."""
    return (
        datetime.fromisoformat(operation["started_at"]),
        datetime.fromisoformat(operation["finished_at"]),
    )
