"""Run one admitted operation inside a worker: start it, keep its lease, end it, free its slot."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from operations import counters, slots
from operations.exceptions import (
    Cancelled,
    CoordhubError,
    Interrupted,
    LeaseLost,
    TimedOut,
    WorkerStopping,
)
from operations.kinds import get_kind
from operations.models import Operation, Slot, Status

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
CANCEL_POLL_SECONDS = 0.5
SLEEP_STEP_SECONDS = 0.1
# A kind that ignores check() is ended this long after its deadline by the lease keeper.
TIMEOUT_GRACE_SECONDS = 5
FINISH_RETRY_SECONDS = 1

# Set by the worker command when it must stop: running kinds are interrupted.
stop_requested = threading.Event()


class OperationContext:
    """What a running kind sees: report progress, and check whether to stop."""

    def __init__(self, operation: Operation, timeout_seconds: int) -> None:
        self.operation_id = operation.id
        self.params = operation.params
        self.timeout_seconds = timeout_seconds
        self.deadline = time.monotonic() + timeout_seconds
        self._interruption: Interrupted | None = None
        self._next_cancel_poll = 0.0

    def interrupt(self, interruption: Interrupted) -> None:
        """Make the next check() raise `interruption` (called from the lease keeper)."""
        self._interruption = self._interruption or interruption

    def check(self) -> None:
        """Raise an `Interrupted` if the operation must stop now."""
        if self._interruption is not None:
            raise self._interruption
        if time.monotonic() >= self.deadline:
            raise TimedOut(self.timeout_seconds)
        if stop_requested.is_set():
            raise WorkerStopping()
        if time.monotonic() >= self._next_cancel_poll:
            self._next_cancel_poll = time.monotonic() + CANCEL_POLL_SECONDS
            operation = Operation.objects.filter(pk=self.operation_id)
            with database_outage_tolerated("cancellation check"):
                if operation.filter(cancel_requested=True).exists():
                    raise Cancelled()

    def progress(self, percent: float, message: str = "") -> None:
        """Record progress (0-100) and a short message; stop if the operation is no longer ours."""
        self.check()
        percent = max(0, min(100, int(percent)))
        running = Operation.objects.filter(pk=self.operation_id, status=Status.RUNNING)
        updated = None
        with database_outage_tolerated("progress"):  # progress can wait for the next report
            updated = running.update(progress=percent, message=message[:200])
        if updated == 0:
            raise LeaseLost()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, checking for interruption in short steps."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.check()
            time.sleep(min(SLEEP_STEP_SECONDS, left))
        self.check()


class LeaseKeeper(threading.Thread):
    """Renew the slot lease while the kind runs; interrupt it if the lease is lost."""

    def __init__(self, hold: slots.Hold, context: OperationContext, lease_seconds: int) -> None:
        super().__init__(name=f"lease-{hold.slot_number}", daemon=True)
        self.hold, self.context, self.lease_seconds = hold, context, lease_seconds
        self.done = threading.Event()

    def run(self) -> None:
        interval = self.lease_seconds / RENEWALS_PER_LEASE
        try:
            while not self.done.wait(interval):
                if time.monotonic() > self.context.deadline + TIMEOUT_GRACE_SECONDS:
                    self.end_overdue_operation()
                    return
                renewed = None
                # A brief outage is retried at the next renewal; a long one lets the lease
                # expire, and then the renewal after it finds the slot gone.
                with database_outage_tolerated("lease renewal"):
                    renewed = slots.renew(self.hold, self.lease_seconds)
                if renewed is False:
                    self.context.interrupt(LeaseLost())
                    return
        finally:
            close_old_connections()

    def end_overdue_operation(self) -> None:
        """A kind that never calls check() still ends, and its slot comes back."""
        timed_out = TimedOut(self.context.timeout_seconds)
        self.context.interrupt(timed_out)
        if finish(self.hold, Status.FAILED, error=str(timed_out)):
            counters.add(counters.TIMEOUTS)

    def stop(self) -> None:
        self.done.set()
        self.join()


def execute(operation_id: str | uuid.UUID, lease_version: int) -> str:
    """Run the operation if it still holds its slot under `lease_version`; return what happened."""
    config = settings.COORDHUB
    hold = current_hold(uuid.UUID(str(operation_id)), lease_version)
    if hold is None or not begin(hold, config.slot_lease_seconds):
        return "skipped: the operation no longer holds its slot or was cancelled"
    operation = Operation.objects.get(pk=hold.operation_id)
    context = OperationContext(operation, config.operation_timeout_seconds)
    keeper = LeaseKeeper(hold, context, config.slot_lease_seconds)
    keeper.start()
    try:
        return run_kind(operation, context, hold)
    finally:
        keeper.stop()
        slots.release(hold)


def current_hold(operation_id: uuid.UUID, lease_version: int) -> slots.Hold | None:
    number = (
        Slot.objects.held_by(operation_id, lease_version).values_list("number", flat=True).first()
    )
    return None if number is None else slots.Hold(number, operation_id, lease_version)


def begin(hold: slots.Hold, lease_seconds: int) -> bool:
    """Renew the lease and mark the operation running, both or neither."""
    with transaction.atomic():
        queued = Operation.objects.filter(pk=hold.operation_id, status=Status.QUEUED)
        if slots.renew(hold, lease_seconds) and queued.update(
            status=Status.RUNNING, started_at=timezone.now(), message="Started"
        ):
            return True
    slots.release(hold)
    return False


def run_kind(operation: Operation, context: OperationContext, hold: slots.Hold) -> str:
    """Call the kind and record how it ended."""
    try:
        result = get_kind(operation.kind).function(context, **operation.params)
        json.dumps(result)
    except LeaseLost:
        logger.warning(
            "Operation %s lost its slot lease; its outcome is not recorded.", operation.id
        )
        return "lease lost"
    except Cancelled as exc:
        finish(hold, Status.CANCELLED, error=str(exc), message="Cancelled")
        counters.add(counters.CANCELLED)
        return "cancelled"
    except Interrupted as exc:
        if finish(hold, Status.FAILED, error=str(exc)):
            counters.add(counters.FAILED)
            if isinstance(exc, TimedOut):
                counters.add(counters.TIMEOUTS)
        return "interrupted"
    except Exception as exc:  # a kind's own failure, whatever it is, fails the operation
        logger.info("Operation %s failed: %r", operation.id, exc)
        if finish(hold, Status.FAILED, error=describe_failure(exc)):
            counters.add(counters.FAILED)
        return "failed"
    if finish(hold, Status.COMPLETED, result=result, progress=100, message="Completed"):
        counters.add(counters.COMPLETED)
    return "completed"


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, CoordhubError):
        return str(exc)
    if isinstance(exc, TypeError) and "JSON serializable" in str(exc):
        return f"The result could not be stored as JSON: {exc}"
    return f"{type(exc).__name__}: {exc}"


def finish(hold: slots.Hold, status: Status, **fields: Any) -> bool:
    """End the operation if it is still running and free its slot, together.

    Fenced by status and lease: say whether this call ended the operation.
    Retried through a database outage of up to about one lease, so that the
    recorded outcome is the real one rather than a later "worker lost".
    """
    running = Operation.objects.filter(pk=hold.operation_id, status=Status.RUNNING)
    deadline = time.monotonic() + settings.COORDHUB.slot_lease_seconds
    while True:
        try:
            with transaction.atomic():
                ended = bool(running.finish(status, **fields))
                slots.release(hold)
            return ended
        except DatabaseError:
            close_old_connections()
            if time.monotonic() >= deadline:
                raise
            time.sleep(FINISH_RETRY_SECONDS)


@contextmanager
def database_outage_tolerated(what: str) -> Iterator[None]:
    """Let a database error pass (logged), dropping the broken connection."""
    try:
        yield
    except DatabaseError as exc:
        logger.warning("Database unavailable for %s: %s", what, exc)
        close_old_connections()
