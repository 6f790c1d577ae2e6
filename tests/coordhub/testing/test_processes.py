from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from coordhub.testing.environment import child_environment
from coordhub.testing.processes import (
    Process,
    Worker,
    manage,
    stop_all,
    wait_until_ready,
    web_command,
)
from coordhub.testing.services import ServiceError
from tests.coordhub.testing.test_services import ends_within

SLEEP = "import time; time.sleep(60)"


class Printed(Process):
    """Ready once it has printed something."""

    def ready(self) -> bool:
        return bool(self.output().strip())


def python(tmp_path: Path, name: str, code: str, kind: type[Process] = Process) -> Process:
    """A child running `code`, started as the harness starts coordhub's processes."""
    return kind(name, [sys.executable, "-c", code], child_environment(), tmp_path / f"{name}.log")


def test_a_worker_is_ready_once_it_prints_that_its_task_loops_run(tmp_path: Path):
    code = f"import time; time.sleep(0.3); print('2 task loops', flush=True); {SLEEP}"
    worker = python(tmp_path, "worker", code, Worker).start()
    try:
        assert not worker.ready()
        wait_until_ready(worker, timeout=10)
        assert worker.ready()
    finally:
        worker.kill()


def test_waiting_for_a_process_that_exits_fails_with_the_end_of_its_log(tmp_path: Path):
    worker = python(tmp_path, "worker", "print('no database'); raise SystemExit(2)", Worker)

    with pytest.raises(ServiceError) as raised:
        worker.start().wait_until_ready(timeout=10)

    assert str(raised.value) == "worker exited with code 2 while starting.\nno database\n"


def test_stop_terminates_and_returns_the_exit_code(tmp_path: Path):
    process = python(tmp_path, "sleeper", SLEEP).start()

    assert process.stop() == -signal.SIGTERM
    assert not process.alive


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path):
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    process = python(tmp_path, "stubborn", f"{ignore}; print('up', flush=True); {SLEEP}", Printed)
    process.start().wait_until_ready(timeout=10)

    assert process.stop(timeout=0.3) == -signal.SIGKILL


def test_kill_ends_a_frozen_process_and_the_children_it_started(tmp_path: Path):
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SLEEP!r}])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)"
    )
    parent = python(tmp_path, "parent", code, Printed).start()
    parent.wait_until_ready(timeout=10)
    child = int(parent.output())
    parent.signal(signal.SIGSTOP)

    parent.kill()

    assert parent.wait() == -signal.SIGKILL
    assert ends_within(child, seconds=5)


def test_stop_all_stops_every_process_it_is_given(tmp_path: Path):
    started = [python(tmp_path, f"sleeper-{n}", SLEEP).start() for n in range(3)]

    stop_all(started[:2])

    assert [process.alive for process in started] == [False, False, True]
    started[2].kill()


def test_gunicorn_serves_the_wsgi_application_and_the_others_asgi():
    assert web_command("gunicorn", 8000)[-1] == "coordhub.wsgi:application"
    assert web_command("daphne", 8000)[-1] == "coordhub.asgi:application"
    assert web_command("uvicorn", 8000)[-1] == "coordhub.asgi:application"


def test_a_failing_management_command_raises_with_its_output():
    with pytest.raises(ServiceError, match=r"manage.py no_such_command failed \(1\):\n.*Unknown"):
        manage("no_such_command", env=child_environment())
