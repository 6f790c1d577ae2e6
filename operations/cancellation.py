"""Cancelling operations: at once while waiting or queued, cooperatively while running."""

from __future__ import annotations

from django.db import transaction

from operations import counters, line, outcomes
from operations.exceptions import OperationFinished
from operations.models import Operation, Status


def cancel(operation: Operation) -> Operation:
    """Cancel `operation` and return it refreshed; raise OperationFinished if it has ended."""
    with transaction.atomic(), counters.counted():
        line.serialise()  # before the row lock: the line takes them in that order
        current = Operation.objects.select_for_update().get(pk=operation.pk)
        if current.is_finished:
            raise OperationFinished(current)
        if current.status == Status.WAITING:
            outcomes.cancel_waiting(current.pk)
        elif current.status == Status.QUEUED:
            outcomes.cancel_queued(current.pk)
            line.release_operation(current.pk)
        else:
            # The worker sees the flag at the kind's next check() and ends the operation.
            outcomes.request_cancel(current.pk)
    operation.refresh_from_db()
    return operation
