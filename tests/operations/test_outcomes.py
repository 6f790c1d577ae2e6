"""Every status change with its counters: together, once, fenced by the status it leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from operations import counters, outcomes
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db


def operation_in(status: Status) -> Operation:
    return Operation.objects.create(kind="simulated", status=status)


def counted() -> dict[str, int]:
    snapshot = counters.snapshot()
    return {name: value for name, value in snapshot.items() if value}


def test_a_queued_operation_starts_running_once():
    operation = operation_in(Status.QUEUED)

    assert outcomes.start_running(operation.id)
    assert not outcomes.start_running(operation.id)

    operation.refresh_from_db()
    assert (operation.status, operation.message) == (Status.RUNNING, "Started")
    assert operation.started_at is not None


def test_completion_stores_the_result_and_counts_one_completion():
    operation = operation_in(Status.RUNNING)

    assert outcomes.complete(operation.id, {"rows": 3})

    operation.refresh_from_db()
    assert (operation.status, operation.progress, operation.result) == (
        Status.COMPLETED,
        100,
        {"rows": 3},
    )
    assert counted() == {counters.COMPLETED: 1}


def test_an_operation_ends_once_however_many_processes_try():
    operation = operation_in(Status.RUNNING)

    assert outcomes.fail(operation.id, "first")
    assert not outcomes.complete(operation.id, {})
    assert not outcomes.cancel_running(operation.id, "late")

    operation.refresh_from_db()
    assert (operation.status, operation.error) == (Status.FAILED, "first")
    assert counted() == {counters.FAILED: 1}


def test_a_timeout_counts_as_a_failure_and_as_a_timeout():
    operation = operation_in(Status.RUNNING)

    outcomes.fail(operation.id, "Timed out after 1 s", timed_out=True)

    assert counted() == {counters.FAILED: 1, counters.TIMEOUTS: 1}
    assert counters.success_rate(counters.snapshot()) == 0


def test_cancelling_counts_a_cancellation_whether_queued_or_running():
    queued, running = operation_in(Status.QUEUED), operation_in(Status.RUNNING)

    assert outcomes.cancel_queued(queued.id)
    assert outcomes.cancel_running(running.id, "Cancelled on request.")
    assert not outcomes.cancel_queued(running.id)

    assert counted() == {counters.CANCELLED: 2}
    assert {queued.id, running.id} == set(
        Operation.objects.filter(status=Status.CANCELLED, message="Cancelled").values_list(
            "id", flat=True
        )
    )


def test_an_orphan_is_failed_saying_whether_a_worker_had_started_it():
    expired = timezone.now() - timedelta(seconds=5)
    running, queued = operation_in(Status.RUNNING), operation_in(Status.QUEUED)

    assert outcomes.fail_orphan(running.id, expired) == 1
    assert outcomes.fail_orphan(queued.id, expired) == 1

    running.refresh_from_db()
    queued.refresh_from_db()
    assert running.error.startswith("Worker lost: its slot lease expired at")
    assert queued.error.startswith("No worker started it before its slot lease expired at")
    assert counted() == {counters.FAILED: 2}


def test_a_change_rolled_back_leaves_no_count_behind():
    operation = operation_in(Status.RUNNING)

    def complete_then_fail_to_free_the_slot() -> None:
        with transaction.atomic():
            outcomes.complete(operation.id, {})
            raise RuntimeError("the slot could not be freed")

    with pytest.raises(RuntimeError):
        complete_then_fail_to_free_the_slot()

    operation.refresh_from_db()
    assert operation.status == Status.RUNNING
    assert counted() == {}
