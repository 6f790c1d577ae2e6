"""Real `coordhub_worker` processes: completing, cancelling, dying, freezing and stopping.

Each test gets a fresh database of the kind under test (a SQLite file, or a new
PostgreSQL database), admits operations through `admit()` in a subprocess, and
watches the rows with a plain driver connection.
"""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from coordhub.testing import processes
from coordhub.testing.processes import Worker
from operations.kinds.context import CANCEL_POLL_SECONDS
from tests.operations.racer import Tables, environment, fresh_database, run

# Selects these tests for the PostgreSQL pass; the workers use a fresh database.
pytestmark = pytest.mark.django_db

LEASE_SECONDS = 3
SWEEP_SECONDS = 1
LIMIT = 3
# Slack for process start-up, scheduling and the task loop's poll on a busy two-core machine.
MARGIN_SECONDS = 5
WORKER_LOST = "Worker lost"

T = TypeVar("T")


class Deployment:
    """A fresh database, the workers serving it, and ways to start and watch operations."""

    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory, self.database_url = directory, database_url
        self.tables = Tables(database_url)
        self.workers: list[Worker] = []
        self.configure()

    def configure(self, **variables: str) -> None:
        """Set the configuration every later subprocess gets."""
        self.variables = {
            "SLOT_LEASE_SECONDS": str(LEASE_SECONDS),
            "CLEANUP_INTERVAL_SECONDS": str(SWEEP_SECONDS),
            "MAX_CONCURRENT_OPERATIONS": str(LIMIT),
        } | variables

    def start_worker(self, name: str, *options: str) -> Worker:
        env = environment(self.database_url, **self.variables)
        worker = processes.worker(name, self.directory, env, "--interval", "0.2", *options)
        self.workers.append(worker.start())
        worker.wait_until_ready(timeout=30)
        return worker

    def admit(self, duration: float, count: int = 1) -> list[uuid.UUID]:
        printed = run(
            self.database_url,
            "admit",
            f"--count={count}",
            f"--duration={duration}",
            **self.variables,
        )
        return [uuid.UUID(operation_id) for operation_id in json.loads(printed)]

    def cancel(self, operation_id: uuid.UUID) -> None:
        run(self.database_url, "cancel", str(operation_id), **self.variables)

    def freeze(self, worker: Worker, attempts: int = 20) -> None:
        """SIGSTOP `worker` between two of its transactions.

        Frozen inside one, it would hold its locks (on SQLite, the write lock) and block
        the other worker's sweep: a stall no lease can cure, and not the case under test.
        """
        for _ in range(attempts):
            worker.signal(signal.SIGSTOP)
            if not self.tables.transaction_open_for(0.5):
                return
            worker.signal(signal.SIGCONT)
            time.sleep(random.uniform(0, 0.1))
        pytest.fail(f"{worker.name} was inside a transaction at every one of {attempts} freezes.")

    def wait_for(self, condition: Callable[[], T], what: str, timeout: float) -> T:
        """Poll `condition` until it returns something true; fail saying `what` did not happen."""
        deadline = time.monotonic() + timeout
        while not (outcome := condition()):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout:.0f} s.\n{self.logs()}")
            time.sleep(0.05)
        return outcome

    def wait_until_running(self, operation_ids: list[uuid.UUID], timeout: float = 15) -> None:
        running = ["running"] * len(operation_ids)
        self.wait_for(
            lambda: self.tables.statuses(operation_ids) == running, "every start", timeout
        )

    def logs(self) -> str:
        return "\n".join(f"--- {worker.name}:\n{worker.output()}" for worker in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.tables.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with fresh_database(tmp_path) as database_url:
        deployment = Deployment(tmp_path, database_url)
        try:
            yield deployment
        finally:
            deployment.close()


def test_an_operation_completes_with_its_result_and_frees_its_slot(deployment: Deployment):
    deployment.start_worker("worker")

    [operation_id] = deployment.admit(duration=1)
    deployment.wait_for(
        lambda: deployment.tables.operation(operation_id).status == "completed",
        "completion",
        timeout=10,
    )

    operation = deployment.tables.operation(operation_id)
    assert operation.progress == 100
    assert operation.result == {"duration": 1.0}
    assert operation.error == ""
    assert deployment.tables.held() == []


def test_a_cancelled_operation_ends_cancelled_within_seconds(deployment: Deployment):
    deployment.start_worker("worker")
    [operation_id] = deployment.admit(duration=60)
    deployment.wait_until_running([operation_id])

    deployment.cancel(operation_id)
    deployment.wait_for(
        lambda: deployment.tables.operation(operation_id).status == "cancelled",
        "cancellation",
        timeout=CANCEL_POLL_SECONDS + MARGIN_SECONDS,
    )

    assert deployment.tables.operation(operation_id).error == "Cancelled on request."
    assert deployment.tables.held() == []


def test_operations_of_a_killed_worker_fail_and_free_their_slots(deployment: Deployment):
    doomed = deployment.start_worker("doomed", "--threads", str(LIMIT))
    operation_ids = deployment.admit(duration=60, count=LIMIT)
    deployment.wait_until_running(operation_ids)
    deployment.start_worker("survivor")  # its sweeps reclaim the dead worker's slots

    doomed.signal(signal.SIGKILL)
    deployment.wait_for(
        lambda: deployment.tables.statuses(operation_ids) == ["failed"] * LIMIT,
        "failing the dead worker's operations",
        timeout=LEASE_SECONDS + SWEEP_SECONDS + MARGIN_SECONDS,
    )

    assert deployment.tables.held() == []  # freed in the transactions that failed them
    for operation_id in operation_ids:
        assert deployment.tables.operation(operation_id).error.startswith(WORKER_LOST)
    [again] = deployment.admit(duration=60)
    deployment.wait_until_running([again])


def test_a_frozen_worker_that_wakes_up_cannot_touch_the_slot_it_lost(deployment: Deployment):
    # One slot: the operation started after the reclaim must take the frozen one's slot.
    deployment.configure(MAX_CONCURRENT_OPERATIONS="1")
    frozen = deployment.start_worker("frozen", "--threads", "1")
    [stale] = deployment.admit(duration=60)
    deployment.wait_until_running([stale])
    deployment.start_worker("awake", "--threads", "1")

    deployment.freeze(frozen)
    deployment.wait_for(
        lambda: deployment.tables.operation(stale).status == "failed",
        "reclaiming the frozen worker's slot",
        timeout=LEASE_SECONDS + SWEEP_SECONDS + MARGIN_SECONDS,
    )
    reclaimed = deployment.tables.operation(stale)
    assert reclaimed.error.startswith(WORKER_LOST)
    [fresh] = deployment.admit(duration=60)
    deployment.wait_until_running([fresh])
    [taken] = deployment.tables.held()

    frozen.signal(signal.SIGCONT)
    samples = []
    deadline = time.monotonic() + LEASE_SECONDS + 1  # the frozen lease keeper renews every 1 s
    while time.monotonic() < deadline or "lost its slot lease" not in frozen.output():
        assert time.monotonic() < deadline + MARGIN_SECONDS, (
            f"the frozen worker never noticed it lost its lease:\n{deployment.logs()}"
        )
        samples.append(deployment.tables.held())
        time.sleep(0.05)

    assert taken.operation_id == fresh
    assert all(held == [taken] for held in samples), {tuple(held) for held in samples}
    assert deployment.tables.operation(fresh).status == "running"
    assert deployment.tables.operation(stale) == reclaimed  # not completed, not even progressed
    assert reclaimed.status == "failed"
    assert reclaimed.result is None


def test_a_terminated_worker_fails_its_operation_and_the_cap_holds_after_restart(
    deployment: Deployment,
):
    worker = deployment.start_worker("worker", "--shutdown-grace", "1")
    [operation_id] = deployment.admit(duration=60)
    deployment.wait_until_running([operation_id])

    worker.signal(signal.SIGTERM)
    exit_code = worker.wait(timeout=1 + MARGIN_SECONDS)

    assert exit_code == 0, deployment.logs()
    operation = deployment.tables.operation(operation_id)
    assert operation.status == "failed"
    assert operation.error == "Its worker was shut down before the operation finished."
    assert deployment.tables.held() == []

    # After a restart the cap still holds: LIMIT operations run, the next start is refused.
    deployment.start_worker("restarted")
    started = deployment.admit(duration=60, count=LIMIT)
    deployment.wait_until_running(started)
    with pytest.raises(AssertionError, match="NoFreeSlot"):
        deployment.admit(duration=60)
    assert len(deployment.tables.held()) == LIMIT
