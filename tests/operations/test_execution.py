"""Running admitted operations in-process, as the worker's task does."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from django import forms
from django.db import connection

from operations import counters, execution
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import OperationFinished
from operations.execution import execute
from operations.kinds import register, unregister
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def small_limits(configure):
    configure(max_concurrent_operations=2, slot_lease_seconds=30, operation_timeout_seconds=60)


def start(**params) -> tuple[Operation, int]:
    operation = admit("simulated", params)
    return operation, Slot.objects.get(operation=operation).lease_version


def run_in_thread(operation: Operation, version: int) -> threading.Thread:
    def target() -> None:
        try:
            execute(operation.id, version)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def wait_for_status(operation: Operation, status: Status, timeout: float = 5) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if operation.status == status:
            return operation
        time.sleep(0.02)
    raise AssertionError(f"operation stayed {operation.status}, expected {status}")


def test_a_successful_operation_completes_with_its_result_and_frees_its_slot():
    operation, version = start(duration=0.3, data={"job": 7})

    assert execute(operation.id, version) == "completed"

    operation.refresh_from_db()
    assert operation.status == Status.COMPLETED
    assert operation.progress == 100
    assert operation.result == {"duration": 0.3}  # its data is not stored twice
    assert operation.started_at <= operation.finished_at
    assert not Slot.objects.held().exists()
    counts = counters.snapshot()
    assert (counts[counters.COMPLETED], counts[counters.RELEASES]) == (1, 1)


def test_progress_is_visible_while_it_runs():
    operation, version = start(duration=2)

    thread = run_in_thread(operation, version)
    wait_for_status(operation, Status.RUNNING)
    deadline = time.monotonic() + 5
    while operation.progress == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        operation.refresh_from_db()
    thread.join()

    assert 0 < operation.progress < 100
    assert operation.status == Status.RUNNING
    assert operation.message.startswith("step ")


def test_a_failing_kind_records_its_error_and_frees_its_slot():
    operation, version = start(duration=0.1, fail=True)

    assert execute(operation.id, version) == "failed"

    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert operation.error == (
        "SimulatedFailure: Simulated failure, as requested by the 'fail' parameter."
    )
    assert not Slot.objects.held().exists()


def test_an_operation_past_its_timeout_fails_saying_so(configure):
    configure(operation_timeout_seconds=1)
    operation, version = start(duration=30)

    started = time.monotonic()
    execute(operation.id, version)

    operation.refresh_from_db()
    assert time.monotonic() - started < 3
    assert operation.status == Status.FAILED
    assert operation.error == "Timed out after 1 s (OPERATION_TIMEOUT_SECONDS)."
    assert counters.snapshot()[counters.TIMEOUTS] == 1
    assert not Slot.objects.held().exists()


def test_cancelling_a_queued_operation_ends_it_at_once_and_the_task_then_skips_it():
    operation, version = start(duration=5)

    cancel(operation)

    assert operation.status == Status.CANCELLED
    assert operation.error == "Cancelled before it started."
    assert not Slot.objects.held().exists()
    assert execute(operation.id, version).startswith("skipped")
    assert Operation.objects.get(pk=operation.pk).status == Status.CANCELLED


def test_cancelling_a_running_operation_stops_it_within_a_second():
    operation, version = start(duration=30)
    thread = run_in_thread(operation, version)
    wait_for_status(operation, Status.RUNNING)

    cancel(operation)
    cancelled = wait_for_status(operation, Status.CANCELLED, timeout=2)
    thread.join()

    assert cancelled.error == "Cancelled on request."
    assert not Slot.objects.held().exists()


def test_cancelling_a_finished_operation_is_refused():
    operation, version = start(duration=0.1)
    execute(operation.id, version)

    with pytest.raises(OperationFinished) as refused:
        cancel(operation)

    assert "has already ended (completed)" in str(refused.value)


def test_a_task_whose_lease_version_moved_on_runs_nothing():
    operation, version = start(duration=0.1)

    assert execute(operation.id, version + 1).startswith("skipped")

    operation.refresh_from_db()
    assert operation.status == Status.QUEUED
    assert Slot.objects.get(operation=operation).lease_version == version


def test_a_worker_that_lost_its_lease_stops_and_writes_nothing(configure):
    configure(slot_lease_seconds=3)  # renewed every second
    operation, version = start(duration=30)
    thread = run_in_thread(operation, version)
    wait_for_status(operation, Status.RUNNING)

    # Another process reclaims the slot, as after a long pause of this worker.
    Slot.objects.filter(operation=operation).vacate()
    Operation.objects.filter(pk=operation.pk).finish(Status.FAILED, error="Worker lost: test")
    thread.join(timeout=5)

    assert not thread.is_alive()
    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert operation.error == "Worker lost: test"


@pytest.fixture
def stubborn_kind():
    """A kind that never calls check(), so only the lease keeper can end it."""

    @register("stubborn", forms.Form, "Sleeps without checking.")
    def stubborn(context):
        time.sleep(2.5)
        return {"ignored": "the deadline"}

    yield "stubborn"
    unregister("stubborn")


def test_an_overdue_kind_ended_by_the_lease_keeper_counts_as_failed_and_timed_out(
    configure, monkeypatch, stubborn_kind
):
    configure(operation_timeout_seconds=1, slot_lease_seconds=3)  # the keeper wakes each second
    monkeypatch.setattr(execution, "TIMEOUT_GRACE_SECONDS", 0)
    operation = admit(stubborn_kind, {})
    version = Slot.objects.get(operation=operation).lease_version

    execute(operation.id, version)

    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert operation.error == "Timed out after 1 s (OPERATION_TIMEOUT_SECONDS)."
    counts = counters.snapshot()
    assert (counts[counters.FAILED], counts[counters.TIMEOUTS]) == (1, 1)
    assert counters.success_rate(counts) == 0
    assert not Slot.objects.held().exists()


def test_an_operation_keeps_its_last_messages_with_their_times():
    operation, version = start(duration=1.5)  # 15 steps, one message each

    execute(operation.id, version)

    operation.refresh_from_db()
    history = operation.message_history
    assert [entry["message"] for entry in history] == [f"step {n} of 15" for n in range(6, 16)]
    moments = [datetime.fromisoformat(entry["at"]) for entry in history]
    assert moments == sorted(moments)
    assert operation.started_at <= moments[0]
    assert moments[-1] <= operation.finished_at


@pytest.fixture
def raising_kind():
    @register("raising", forms.Form, "Raises from a helper.")
    def raising(context):
        return {"value": deep_failure()}

    yield "raising"
    unregister("raising")


def deep_failure() -> int:
    raise LookupError("no account 42")


def test_a_failing_kind_keeps_its_exception_and_where_it_was_raised(raising_kind):
    operation = admit(raising_kind, {})
    version = Slot.objects.get(operation=operation).lease_version

    assert execute(operation.id, version) == "failed"

    operation.refresh_from_db()
    assert operation.error == "LookupError: no account 42"
    assert "in deep_failure" in operation.traceback
    assert operation.traceback.rstrip().endswith("LookupError: no account 42")


def test_a_timed_out_operation_has_no_traceback(configure):
    configure(operation_timeout_seconds=1)
    operation, version = start(duration=5)

    execute(operation.id, version)

    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert operation.traceback == ""
