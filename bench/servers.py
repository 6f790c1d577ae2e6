"""The processes a benchmark run starts, and the one place that stops them all.

PostgreSQL and Redis, coordhub web servers (daphne, uvicorn, gunicorn) and
workers all come from the harness (`coordhub.testing`); here they serve
`bench.settings`, each on its own database copied from a template migrated once
per engine.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from coordhub.testing import processes
from coordhub.testing.environment import child_environment
from coordhub.testing.processes import Process, WebServer, Worker
from coordhub.testing.services import PostgresServer, RedisServer, ServiceError

UNLIMITED = "10000000"  # per minute: no benchmark request is ever refused by a limit
READY_PATH = "/bench/minimal"


class BenchError(RuntimeError):
    """Something a measurement needs could not be started or did not answer as expected."""


def environment(**variables: str) -> dict[str, str]:
    """Return a server's environment: the harness's child environment for `bench.settings`.

    The profile is `testing` with DEBUG and debug logging off, so no request pays for
    query recording or log lines; each scenario adds its limits and URLs.
    """
    return child_environment(
        DJANGO_SETTINGS_MODULE="bench.settings", DEBUG="false", LOG_LEVEL="WARNING", **variables
    )


def unlimited_environment(database: str, **variables: str) -> dict[str, str]:
    """A server's environment on `database` where no limit refuses a request or a start."""
    limits = {
        "REQUESTS_PER_MINUTE": UNLIMITED,
        "START_ATTEMPTS_PER_MINUTE": UNLIMITED,
        "READ_REQUESTS_PER_MINUTE": UNLIMITED,
        "MAX_CONCURRENT_OPERATIONS": "1000",
    }
    return environment(DATABASE_URL=database, **limits, **variables)


@dataclass
class Stack:
    """Every process of a benchmark run, stopped together by `close` (on success, error or ^C)."""

    directory: Path
    processes: list[Process] = field(default_factory=list)
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None

    # Services

    def start_redis(self) -> RedisServer:
        self.redis = RedisServer()
        return self.redis.start()

    def start_postgres(self) -> PostgresServer:
        self.postgres = PostgresServer()
        return self.postgres.start()

    # Processes

    def start_web(self, name: str, server: str, env: dict[str, str]) -> WebServer:
        """Start a web server; `processes.wait_until_ready` waits for it."""
        web = processes.web_server(name, self.directory, env, server, ready_path=READY_PATH)
        self.processes.append(web.start())
        return web

    def start_worker(self, name: str, env: dict[str, str], threads: int = 4) -> Worker:
        worker = processes.worker(name, self.directory, env, "--threads", str(threads))
        self.processes.append(worker.start())
        return worker

    def stop(self, *stopping: Process) -> None:
        """Stop the given processes (all when none are given): SIGTERM, then SIGKILL."""
        targets = [item for item in self.processes if not stopping or item in stopping]
        processes.stop_all(targets)
        for item in targets:
            self.processes.remove(item)

    def close(self) -> None:
        """Stop every process and service this run started."""
        try:
            self.stop()
        finally:
            for service in (self.postgres, self.redis):
                if service is not None:
                    service.remove()


def run_manage(arguments: list[str], env: dict[str, str]) -> str:
    """Run a management command to the end and return its output; raise if it fails."""
    try:
        return processes.manage(*arguments, env=env)
    except ServiceError as exc:
        raise BenchError(str(exc)) from exc


class Databases:
    """Fresh databases for each scenario, copied from a template migrated once per engine."""

    template = "bench_template"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sqlite_template = stack.directory / f"{self.template}.sqlite3"

    def migrate_templates(self, *, with_postgres: bool) -> None:
        """Migrate the SQLite template and, if asked, the PostgreSQL template database."""
        urls = [f"sqlite:///{self.sqlite_template}"]
        if with_postgres:
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
            urls.append(self.postgres_url(self.template))
        with ThreadPoolExecutor() as pool:  # side by side: each takes seconds
            migrations = [
                pool.submit(run_manage, ["migrate", "--no-input"], environment(DATABASE_URL=url))
                for url in urls
            ]
        for migration in migrations:
            migration.result()

    def sqlite(self, name: str) -> str:
        """Return the URL of a new SQLite copy of the template."""
        path = self.stack.directory / f"{name}.sqlite3"
        shutil.copyfile(self.sqlite_template, path)
        return f"sqlite:///{path}"

    def postgres(self, name: str) -> str:
        """Return the URL of a new PostgreSQL database copied from the template."""
        self.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
        )
        return self.postgres_url(name)

    def postgres_url(self, database: str) -> str:
        assert self.stack.postgres is not None
        return urlsplit(self.stack.postgres.url)._replace(path=f"/{database}").geturl()

    def execute(self, statement: sql.Composable) -> None:
        assert self.stack.postgres is not None
        with psycopg.connect(self.stack.postgres.url, autocommit=True) as connection:
            connection.execute(statement)
