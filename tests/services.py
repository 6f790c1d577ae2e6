"""Throwaway PostgreSQL and Redis servers on loopback, in temporary directories.

`scripts/run_tests.py` starts one of each for a test run; tests that stop and
start a server (fault tests) start their own with the same classes.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


class ServiceError(RuntimeError):
    """A server could not be started."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll `ready()` until it is true; fail if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with code {process.returncode} while starting.")
        if ready():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not become ready within {timeout:.0f} s.")


class RedisServer:
    """A redis-server without persistence, on a free loopback port."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="coordhub-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (Debian package redis-server).")
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, f"redis-server on port {self.port}", self.process)
        return self

    def answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_binary(name: str) -> str:
    """Find a PostgreSQL server binary (Debian keeps them out of PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise ServiceError(f"PostgreSQL's {name} is not installed (Debian package postgresql).")
    return found[-1]


class PostgresServer:
    """A PostgreSQL cluster tuned for tests (no fsync), on a free loopback port."""

    user = "coordhub"

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="coordhub-postgres-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: run it as the postgres account instead.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        if self.run_as:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        if not self.data.exists():
            subprocess.run(
                [
                    *self.run_as,
                    postgres_binary("initdb"),
                    "--pgdata",
                    str(self.data),
                    "--username",
                    self.user,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
            )
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.process = subprocess.Popen(
            [
                *self.run_as,
                postgres_binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.directory),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, f"PostgreSQL on port {self.port}", self.process)
        return self

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
