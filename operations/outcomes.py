"""Every status change of an operation, each with the lifetime counters that go with it.

An operation moves (waiting →) queued → running → completed | failed | cancelled. Each
change is one conditional UPDATE fenced by the status it leaves, so that two
processes never both end one operation, and commits in one transaction with its
counters: a counter never counts a change that did not happen, nor misses one
that did. Freeing the slot is the caller's part of the same transaction
(`execution`, `cancellation`, `slots`, the admin).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from operations import counters
from operations.models import Operation, OperationQuerySet, Status

ENDED_COUNTER = {
    Status.COMPLETED: counters.COMPLETED,
    Status.FAILED: counters.FAILED,
    Status.CANCELLED: counters.CANCELLED,
}


def start_running(operation_id: uuid.UUID) -> bool:
    """Queued → running; say whether this call started it."""
    queued = Operation.objects.filter(pk=operation_id, status=Status.QUEUED)
    return bool(queued.update(status=Status.RUNNING, started_at=timezone.now(), message="Started"))


def complete(operation_id: uuid.UUID, result: object) -> bool:
    """Running → completed with `result`."""
    done = {"result": result, "progress": 100, "message": "Completed"}
    return bool(end(running(operation_id), Status.COMPLETED, **done))


def fail(
    operation_id: uuid.UUID, error: str, *, timed_out: bool = False, traceback: str = ""
) -> bool:
    """Running → failed, saying why; a timeout is counted as one and as a failure."""
    ended = end(
        running(operation_id), Status.FAILED, timed_out=timed_out, error=error, traceback=traceback
    )
    return bool(ended)


def cancel_running(operation_id: uuid.UUID, reason: str) -> bool:
    """Running → cancelled, once the kind has stopped at a check."""
    return bool(end(running(operation_id), Status.CANCELLED, error=reason, message="Cancelled"))


def cancel_queued(operation_id: uuid.UUID) -> bool:
    """Queued → cancelled, before any worker started it."""
    queued = Operation.objects.filter(pk=operation_id, status=Status.QUEUED)
    reason = "Cancelled before it started."
    return bool(end(queued, Status.CANCELLED, error=reason, message="Cancelled"))


def cancel_waiting(operation_id: uuid.UUID) -> bool:
    """Waiting → cancelled: it leaves the line, having held nothing."""
    waiting = Operation.objects.filter(pk=operation_id, status=Status.WAITING)
    reason = "Cancelled while waiting for a slot."
    return bool(end(waiting, Status.CANCELLED, error=reason, message="Cancelled"))


def request_cancel(operation_id: uuid.UUID) -> None:
    """Ask the worker running the operation to stop it at the kind's next check."""
    Operation.objects.filter(pk=operation_id).update(cancel_requested=True, message="Cancelling")


def fail_orphan(operation_id: uuid.UUID, lease_expired_at: datetime | None) -> int:
    """Fail the operation of a slot whose lease ran out, saying why; return how many ended."""
    when = lease_expired_at.isoformat(timespec="seconds") if lease_expired_at else "unknown"
    operation = Operation.objects.filter(pk=operation_id)
    lost = end(
        operation.filter(status=Status.RUNNING),
        Status.FAILED,
        error=f"Worker lost: its slot lease expired at {when} without being renewed.",
    )
    return lost + end(
        operation.filter(status=Status.QUEUED),
        Status.FAILED,
        error=f"No worker started it before its slot lease expired at {when}.",
    )


def fail_force_released(operation_id: uuid.UUID, released_by: str) -> int:
    """Fail the operation whose slot staff force-released in the admin."""
    error = f"Slot force-released by {released_by} in the admin."
    return end(Operation.objects.filter(pk=operation_id), Status.FAILED, error=error)


def running(operation_id: uuid.UUID) -> OperationQuerySet:
    return Operation.objects.filter(pk=operation_id, status=Status.RUNNING)


def end(
    operations: OperationQuerySet, status: Status, *, timed_out: bool = False, **fields: object
) -> int:
    """End the active operations in `operations` as `status` and count them; return how many."""
    with transaction.atomic(), counters.counted():
        ended = operations.finish(status, **fields)
        if ended:
            counters.add(ENDED_COUNTER[status], ended)
            if timed_out:
                counters.add(counters.TIMEOUTS, ended)
    return ended
