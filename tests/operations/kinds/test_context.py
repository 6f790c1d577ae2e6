"""What a running kind sees: checks that stop it, and progress fenced by status."""

from __future__ import annotations

import threading
import time

import pytest

from operations.exceptions import Cancelled, LeaseLost, TimedOut, WorkerStopping
from operations.kinds import OperationContext
from operations.kinds import context as context_module
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db


def running_operation() -> Operation:
    return Operation.objects.create(kind="simulated", status=Status.RUNNING)


def test_progress_is_recorded_clamped_and_its_message_cut_to_fit():
    operation = running_operation()
    context = OperationContext(operation.id, timeout_seconds=60)

    context.progress(140.7, "x" * 500)

    operation.refresh_from_db()
    assert (operation.progress, len(operation.message)) == (100, 200)


def test_progress_on_an_operation_that_is_no_longer_running_stops_the_kind():
    operation = running_operation()
    Operation.objects.filter(pk=operation.pk).finish(Status.FAILED, error="reclaimed")
    context = OperationContext(operation.id, timeout_seconds=60)

    with pytest.raises(LeaseLost):
        context.progress(50)


def test_a_cancel_request_is_seen_at_the_next_check():
    operation = running_operation()
    context = OperationContext(operation.id, timeout_seconds=60)
    context.check()

    Operation.objects.filter(pk=operation.pk).update(cancel_requested=True)
    context._next_cancel_poll = 0.0  # the poll interval has passed

    with pytest.raises(Cancelled):
        context.check()


def test_check_raises_once_the_deadline_passes():
    context = OperationContext(running_operation().id, timeout_seconds=0)

    with pytest.raises(TimedOut, match="Timed out after 0 s"):
        context.check()


def test_an_interruption_from_the_lease_keeper_wins_over_later_ones():
    context = OperationContext(running_operation().id, timeout_seconds=60)
    context.interrupt(LeaseLost())
    context.interrupt(TimedOut(60))

    with pytest.raises(LeaseLost):
        context.sleep(1)


def test_a_stopping_worker_interrupts_its_kinds(monkeypatch):
    monkeypatch.setattr(context_module, "stop_requested", stopped_event())
    context = OperationContext(running_operation().id, timeout_seconds=60)

    started = time.monotonic()
    with pytest.raises(WorkerStopping):
        context.sleep(5)
    assert time.monotonic() - started < 1


def stopped_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event
