"""Throwaway PostgreSQL and Redis servers on loopback, in temporary directories.

`scripts/run_tests.py` starts one of each for a test run and `bench/run.py` one
of each for a benchmark run; fault tests start their own to stop and start
again. Here too live the two primitives every launcher shares: `free_port` and
`wait_until`, and `stop_with_parent`, which makes every child die with us.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

HOST = "127.0.0.1"
LOG_TAIL_CHARACTERS = 3000
PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A server or process could not be started, or did not become ready."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_with_parent() -> None:
    """Have the kernel send SIGTERM to this child if the process that started it dies.

    Pass as `preexec_fn`. The signal fires when the *thread* that forked exits, so
    start long-lived children from the main thread.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log_tail(log: Path, characters: int = LOG_TAIL_CHARACTERS) -> str:
    """Return the end of a log file, or nothing if it does not exist yet."""
    return log.read_text(errors="replace")[-characters:] if log.exists() else ""


def wait_until(
    ready: Callable[[], bool],
    what: str,
    process: subprocess.Popen,
    timeout: float = 30.0,
    *,
    log: Path | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `ready()` until it is true; fail if `process` exits or time runs out.

    The error names `what` and ends with the tail of `log`, when given.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            problem = f"{what} exited with code {process.returncode} while starting."
            break
        if ready():
            return
        if time.monotonic() > deadline:
            problem = f"{what} did not become ready within {timeout:.0f} s."
            break
        time.sleep(interval)
    raise ServiceError(f"{problem}\n{log_tail(log)}" if log else problem)


def start_logged(argv: list[str], log: Path, **options: object) -> subprocess.Popen:
    """Start `argv` dying with us, its output appended to `log`."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=stop_with_parent,
            **options,
        )


class RedisServer:
    """A redis-server without persistence, on a free loopback port."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="coordhub-redis-"))
        self.log = self.directory / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it, or start it again on the same port (its data does not persist)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (Debian package redis-server).")
        argv = [binary, "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory)]
        self.process = start_logged([*argv, "--save", "", "--appendonly", "no"], self.log)
        wait_until(self.answers, f"redis-server on port {self.port}", self.process, log=self.log)
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
    settings = (
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "max_connections=300",
    )

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="coordhub-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: run it as the postgres account instead.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@{HOST}:{self.port}/postgres"

    def start(self) -> PostgresServer:
        """Start it, or start it again on the same port with the same data."""
        if self.run_as:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        if not self.data.exists():
            initdb = [postgres_binary("initdb"), "--pgdata", str(self.data), "--no-sync"]
            options = ["--username", self.user, "--auth", "trust", "--encoding", "UTF8"]
            subprocess.run([*self.run_as, *initdb, *options], check=True, capture_output=True)
        argv = [postgres_binary("postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-h", HOST, "-k", str(self.directory)]
        argv += [option for setting in self.settings for option in ("-c", setting)]
        self.process = start_logged([*self.run_as, *argv], self.log)
        wait_until(self.answers, f"PostgreSQL on port {self.port}", self.process, log=self.log)
        return self

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self) -> None:
        """Stop with a fast shutdown: connected sessions are cut off, not awaited.

        SIGTERM is PostgreSQL's smart shutdown, which waits for every client to
        disconnect; a coordhub process's pooled connections never would.
        """
        if self.process is None or self.process.poll() is not None:
            return
        try:  # the postmaster may be runuser's child rather than `process` itself
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        except (OSError, ValueError, IndexError):  # not up yet, or already going
            self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
