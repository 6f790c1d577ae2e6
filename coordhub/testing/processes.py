"""coordhub's own processes, started by a test or a benchmark: web servers and workers.

A `Process` is one child: started in the project folder with the environment
it is given, its output in a log file, dying with us, in a process group of its
own (^C at a terminal reaches only us, and killing it takes a gunicorn master's
or `manage.py serve`'s children along). It can be waited for until ready,
stopped (SIGTERM, then SIGKILL), killed with SIGKILL, or sent any signal
(SIGSTOP freezes it, SIGCONT wakes it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Self

import httpx

from coordhub.testing.services import (
    HOST,
    LOG_TAIL_CHARACTERS,
    ServiceError,
    free_port,
    log_tail,
    start_logged,
    stop_with_parent,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 90.0
# Longer than `manage.py serve` gives its own children (STOP_GRACE_SECONDS) before killing them.
STOP_TIMEOUT_SECONDS = 30.0
# What `coordhub_worker` prints once its task loops run.
WORKER_READY = "task loops"


def manage_command(*arguments: str) -> list[str]:
    """The command line of a management command."""
    return [sys.executable, "manage.py", *arguments]


def web_command(server: str, port: int) -> list[str]:
    """The command line that serves coordhub with `server` on `port`, access logs off."""
    commands = {
        # -v 0: no access log (at its default verbosity daphne writes a line per request).
        "daphne": ["-m", "daphne", "-v", "0", "--bind", HOST, "--port", str(port)],
        "uvicorn": ["-m", "uvicorn", "--host", HOST, "--port", str(port), "--no-access-log"],
        "gunicorn": ["-m", "gunicorn", "--workers", "2", "--bind", f"{HOST}:{port}"],
    }
    interface = "wsgi" if server == "gunicorn" else "asgi"  # gunicorn: 2 sync (WSGI) workers
    return [sys.executable, *commands[server], f"coordhub.{interface}:application"]


def manage(*arguments: str, env: dict[str, str], timeout: float | None = None) -> str:
    """Run a management command to its end and return what it printed; raise if it fails."""
    finished = subprocess.run(
        manage_command(*arguments),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=stop_with_parent,
    )
    if finished.returncode != 0:
        output = (finished.stdout + finished.stderr)[-LOG_TAIL_CHARACTERS:]
        command = " ".join(arguments)
        raise ServiceError(f"manage.py {command} failed ({finished.returncode}):\n{output}")
    return finished.stdout


class Process:
    """One child process, its output in `log`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        self.process = start_logged(self.argv, self.log, cwd=ROOT, env=self.env, process_group=0)
        return self

    def ready(self) -> bool:
        """Say whether it is ready for work; subclasses say what that means."""
        return True

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait for `ready()`; fail with the log's tail if it exits or time runs out."""
        wait_until(self.ready, self.name, self.started, timeout, log=self.log)

    @property
    def started(self) -> subprocess.Popen:
        if self.process is None:
            raise ServiceError(f"{self.name} was never started.")
        return self.process

    @property
    def pid(self) -> int:
        return self.started.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the process itself (not its group)."""
        self.started.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit; return its exit code."""
        return self.started.wait(timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL after `timeout`; return its exit code."""
        stop_all([self], timeout)
        return self.started.returncode

    def kill(self) -> None:
        """SIGKILL to its whole group: no clean-up of any kind (it ends a frozen process too)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def output(self) -> str:
        """What the process printed."""
        return log_tail(self.log, characters=sys.maxsize)

    def log_tail(self, characters: int = LOG_TAIL_CHARACTERS) -> str:
        return log_tail(self.log, characters)

    def children(self) -> list[tuple[int, str]]:
        """Return (pid, command line) of the processes it started."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.pid:
                found.append((int(entry.name), cmdline))
        return found


class WebServer(Process):
    """A coordhub web server, ready once `ready_path` answers 200."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        *,
        port: int,
        ready_path: str = "/api/health",
    ) -> None:
        super().__init__(name, argv, env, log)
        self.port, self.ready_path = port, ready_path
        self.url = f"http://{HOST}:{port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class Worker(Process):
    """A `coordhub_worker`, ready once its task loops run."""

    def ready(self) -> bool:
        return WORKER_READY in self.output()


def web_server(
    name: str,
    directory: Path,
    env: dict[str, str],
    server: str = "daphne",
    *,
    ready_path: str = "/api/health",
) -> WebServer:
    """A web server (daphne, uvicorn or gunicorn) on a free port, logging to `<name>.log`."""
    port = free_port()
    log = directory / f"{name}.log"
    return WebServer(name, web_command(server, port), env, log, port=port, ready_path=ready_path)


def worker(name: str, directory: Path, env: dict[str, str], *options: str) -> Worker:
    """A `coordhub_worker` with id `name` and `options`, logging to `<name>.log`."""
    argv = manage_command("coordhub_worker", "--worker-id", name, *options)
    return Worker(name, argv, env, directory / f"{name}.log")


def wait_until_ready(*processes: Process, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until every one of `processes` is ready, all within one `timeout`."""
    deadline = time.monotonic() + timeout
    for process in processes:
        process.wait_until_ready(max(0.0, deadline - time.monotonic()))


def stop_all(processes: Iterable[Process], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM each process, then SIGKILL each group once it exits or `timeout` runs out.

    Killing the group after a clean exit ends children the process left behind.
    """
    started = [process for process in processes if process.process is not None]
    for process in started:
        if process.alive:
            process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        process.kill()
