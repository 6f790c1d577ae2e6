"""Cancelling: a queued operation ends at once, a running one is asked to stop."""

from __future__ import annotations

import pytest

from operations import counters
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import OperationFinished
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db


def test_a_queued_operation_is_cancelled_at_once_and_its_slot_freed():
    operation = admit("simulated", {"duration": 5})

    cancelled = cancel(operation)

    assert (cancelled.status, cancelled.message) == (Status.CANCELLED, "Cancelled")
    assert cancelled.error == "Cancelled before it started."
    assert not Slot.objects.held().exists()
    assert counters.snapshot()[counters.CANCELLED] == 1


def test_a_running_operation_is_asked_to_stop_and_keeps_its_slot_until_it_does():
    operation = admit("simulated", {"duration": 5})
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)

    asked = cancel(operation)

    assert (asked.status, asked.cancel_requested, asked.message) == (
        Status.RUNNING,
        True,
        "Cancelling",
    )
    assert Slot.objects.held().get().operation_id == operation.id
    assert counters.snapshot()[counters.CANCELLED] == 0


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.CANCELLED])
def test_an_ended_operation_cannot_be_cancelled(status):
    operation = Operation.objects.create(kind="simulated", status=status)

    with pytest.raises(OperationFinished) as refused:
        cancel(operation)

    assert str(refused.value) == f"Operation {operation.id} has already ended ({status})."
    assert Operation.objects.get(pk=operation.pk).status == status
