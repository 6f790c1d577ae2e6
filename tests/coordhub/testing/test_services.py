from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordhub.testing.services import ServiceError, free_port, log_tail, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_free_port_can_be_bound_on_loopback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_wait_until_returns_once_ready():
    with subprocess.Popen(SLEEPER) as process:
        answers = iter([False, False, True])
        try:
            wait_until(lambda: next(answers), "the sleeper", process, timeout=5, interval=0.01)
        finally:
            process.kill()


def test_wait_until_fails_with_the_log_when_the_process_exits(tmp_path: Path):
    log = tmp_path / "out.log"
    log.write_text("something went wrong\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    with pytest.raises(ServiceError) as raised:
        wait_until(lambda: False, "the server", process, timeout=30, log=log)

    assert str(raised.value) == (
        "the server exited with code 3 while starting.\nsomething went wrong\n"
    )


def test_wait_until_fails_when_time_runs_out():
    with subprocess.Popen(SLEEPER) as process:
        try:
            with pytest.raises(
                ServiceError, match=r"^the sleeper did not become ready within 0 s\.$"
            ):
                wait_until(lambda: False, "the sleeper", process, timeout=0.2)
        finally:
            process.kill()


def test_log_tail_is_the_end_of_the_log_or_nothing(tmp_path: Path):
    log = tmp_path / "out.log"

    assert log_tail(log) == ""
    log.write_text("0123456789")
    assert log_tail(log, characters=3) == "789"


def test_a_child_started_with_stop_with_parent_dies_with_its_parent():
    parent = subprocess.run(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "from coordhub.testing.services import stop_with_parent\n"
            f"child = subprocess.Popen({SLEEPER!r}, preexec_fn=stop_with_parent)\n"
            "print(child.pid)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    orphan = int(parent.stdout)

    assert ends_within(orphan, seconds=5), f"pid {orphan} outlived its parent"


def ends_within(pid: int, seconds: float) -> bool:
    """Say whether `pid` ends within `seconds` (a signal is delivered asynchronously)."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def alive(pid: int) -> bool:
    """Say whether `pid` runs (a zombie, reaped by init soon, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
