"""Cancelling operations: at once while queued, cooperatively while running."""

from __future__ import annotations

from django.db import transaction

from operations import counters, slots
from operations.exceptions import OperationFinished
from operations.models import Operation, Status


def cancel(operation: Operation) -> Operation:
    """Cancel `operation` and return it refreshed; raise OperationFinished if it has ended."""
    with transaction.atomic():
        current = Operation.objects.select_for_update().get(pk=operation.pk)
        if current.is_finished:
            raise OperationFinished(current)
        if current.status == Status.QUEUED:
            Operation.objects.filter(pk=current.pk).finish(
                Status.CANCELLED, error="Cancelled before it started.", message="Cancelled"
            )
            slots.release_operation(current.pk)
            transaction.on_commit(lambda: counters.add(counters.CANCELLED))
        else:
            # The worker sees the flag at the kind's next check() and ends the operation.
            Operation.objects.filter(pk=current.pk).update(
                cancel_requested=True, message="Cancelling"
            )
    operation.refresh_from_db()
    return operation
