"""The processes a benchmark run starts, and the one place that stops them all.

PostgreSQL and Redis come from `tests/services.py`; coordhub web servers (daphne,
uvicorn, gunicorn) and workers are subprocesses serving `bench.settings`, each on
its own database copied from a template migrated once per engine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from tests.live import stop_with_parent
from tests.operations.racer import without_configuration
from tests.services import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
UNLIMITED = "10000000"  # per minute: no benchmark request is ever refused by a limit
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0


class BenchError(RuntimeError):
    """Something a measurement needs could not be started or did not answer as expected."""


def environment(**variables: str) -> dict[str, str]:
    """Return a server's environment: ours without coordhub configuration, plus `variables`.

    The profile is `testing` with DEBUG and debug logging off, so no request pays for
    query recording or log lines; each scenario adds its limits and URLs.
    """
    return without_configuration("DJANGO_SETTINGS_MODULE") | {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "COORDHUB_ENV": "testing",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **variables,
    }


def web_command(server: str, port: int) -> list[str]:
    """The command line that serves coordhub with `server` on `port`, access logs off."""
    python = sys.executable
    commands = {
        # -v 0: no access log (at its default verbosity daphne writes a line per request).
        "daphne": ["-m", "daphne", "-v", "0", "--bind", HOST, "--port", str(port)],
        "uvicorn": ["-m", "uvicorn", "--host", HOST, "--port", str(port), "--no-access-log"],
        "gunicorn": ["-m", "gunicorn", "--workers", "2", "--bind", f"{HOST}:{port}"],
    }
    interface = "wsgi" if server == "gunicorn" else "asgi"  # gunicorn: 2 sync (WSGI) workers
    return [python, *commands[server], f"coordhub.{interface}:application"]


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log_path: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Web:
    """One coordhub web server process."""

    server: str
    url: str
    started: Started


@dataclass
class Stack:
    """Every process of a benchmark run, stopped together by `close` (on success, error or ^C)."""

    directory: Path
    processes: list[Started] = field(default_factory=list)
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

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> Started:
        """Start `command` in the project folder, its output going to `<name>.log`."""
        log_path = self.directory / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed by `stop`)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: ^C reaches only us, and we stop the servers in order
            # (a gunicorn master together with its workers).
            process_group=0,
            preexec_fn=stop_with_parent,
        )
        started = Started(name, process, log_path, log)
        self.processes.append(started)
        return started

    def start_web(self, name: str, server: str, env: dict[str, str]) -> Web:
        """Start a web server; `wait_ready` waits for it."""
        port = free_port()
        started = self.spawn(name, web_command(server, port), env)
        return Web(server, f"http://{HOST}:{port}", started)

    def start_worker(self, name: str, env: dict[str, str], threads: int = 4) -> Started:
        command = [sys.executable, "manage.py", "coordhub_worker", "--threads", str(threads)]
        return self.spawn(name, command, env)

    def stop(self, *stopping: Started | Web) -> None:
        """Stop the given processes (all when none are given): SIGTERM, then SIGKILL."""
        chosen = [item.started if isinstance(item, Web) else item for item in stopping]
        targets = [item for item in self.processes if not chosen or item in chosen]
        for item in targets:
            if item.process.poll() is None:
                signal_group(item.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for item in targets:
            try:
                item.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(item.process, signal.SIGKILL)
                item.process.wait()
            item.log.close()
            self.processes.remove(item)

    def close(self) -> None:
        """Stop every process and service this run started."""
        try:
            self.stop()
        finally:
            for service in (self.postgres, self.redis):
                if service is not None:
                    service.remove()


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def wait_ready(*webs: Web, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until each server answers `/bench/minimal`; fail with its log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    for web in webs:
        while True:
            if web.started.process.poll() is not None:
                raise BenchError(
                    f"{web.started.name} ({web.server}) exited with code "
                    f"{web.started.process.returncode} while starting:\n{web.started.log_tail()}"
                )
            try:
                if httpx.get(f"{web.url}/bench/minimal", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{web.started.name} ({web.server}) did not answer within {timeout:.0f} s:\n"
                    f"{web.started.log_tail()}"
                )
            time.sleep(0.2)


def run_manage(stack: Stack, name: str, arguments: list[str], env: dict[str, str]) -> str:
    """Run a management command to the end and return its output; raise if it fails."""
    started = stack.spawn(name, [sys.executable, "manage.py", *arguments], env)
    code = started.process.wait()
    stack.stop(started)
    output = started.log_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"manage.py {' '.join(arguments)} failed ({code}):\n{output[-2000:]}")
    return output


class Databases:
    """Fresh databases for each scenario, copied from a template migrated once per engine."""

    template = "bench_template"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sqlite_template = stack.directory / f"{self.template}.sqlite3"

    def migrate_templates(self, *, with_postgres: bool) -> None:
        """Migrate the SQLite template and, if asked, the PostgreSQL template database."""
        jobs = [("migrate-sqlite", f"sqlite:///{self.sqlite_template}")]
        if with_postgres:
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
            jobs.append(("migrate-postgres", self.postgres_url(self.template)))
        started = [
            self.stack.spawn(name, [sys.executable, "manage.py", "migrate", "--no-input"], env)
            for name, env in ((name, environment(DATABASE_URL=url)) for name, url in jobs)
        ]
        for item in started:
            code = item.process.wait()
            if code != 0:
                raise BenchError(f"{item.name} failed ({code}):\n{item.log_tail()}")
        self.stack.stop(*started)

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
