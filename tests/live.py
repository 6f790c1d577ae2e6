"""A real coordhub served by `manage.py serve` (daphne and a worker) for outside-in tests."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent


PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """Have the kernel send SIGTERM to the server if the test process dies first."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LiveServer:
    """`manage.py serve` on a free port with its own SQLite database."""

    def __init__(self, directory: Path, **environ: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "serve.log"
        clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env = clean | {"DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}"} | environ
        self.process: subprocess.Popen | None = None

    def start(self) -> LiveServer:
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--no-input"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*manage, "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=stop_with_parent,
            )
        self.wait_until_healthy()
        return self

    def wait_until_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited: {self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"coordhub did not become healthy: {self.log.read_text()}")

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)

    def children(self) -> list[tuple[int, str]]:
        """Return (pid, command line) of the processes `serve` started."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                found.append((int(entry.name), cmdline))
        return found
