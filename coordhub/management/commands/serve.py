"""Serve the web server (daphne) and one worker together until interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run daphne and a task worker; stop both on Ctrl-C or when either dies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web server": [
                sys.executable,
                "-m",
                "daphne",
                "--bind",
                options["host"],
                "--port",
                str(options["port"]),
                "coordhub.asgi:application",
            ],
            "worker": [sys.executable, manage, "coordhub_worker"],
        }
        processes = {name: subprocess.Popen(command) for name, command in commands.items()}
        self.stdout.write(
            f"coordhub is serving at http://{options['host']}:{options['port']}/ (Ctrl-C stops it)"
        )
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            died = wait_for_first_exit(processes, lambda: stopping)
        finally:
            stop_all(processes)
        if died is not None:
            name, code = died
            raise CommandError(f"The {name} exited with code {code}; coordhub stopped.")
        self.stdout.write("coordhub stopped.")


def wait_for_first_exit(
    processes: dict[str, subprocess.Popen], stopping: Any
) -> tuple[str, int] | None:
    """Block until asked to stop (None) or until a process exits ((name, code))."""
    while not stopping():
        for name, process in processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        time.sleep(0.2)
    return None


def stop_all(processes: dict[str, subprocess.Popen]) -> None:
    """Ask every process still running to stop, then kill what outlives the grace time."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
