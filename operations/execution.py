"""Run one admitted operation inside a worker: start it, keep its lease, end it, free its slot."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from operations import counters, line, outcomes, slots
from operations.exceptions import Cancelled, CoordhubError, Interrupted, LeaseLost, TimedOut
from operations.kinds import OperationContext, get_kind
from operations.models import Operation, Slot
from operations.outages import database_outage_tolerated

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
# A kind that ignores check() is ended this long after its deadline by the lease keeper.
TIMEOUT_GRACE_SECONDS = 5
FINISH_RETRY_SECONDS = 1
# The tail of a failed kind's traceback that is kept: where it was raised.
TRACEBACK_LENGTH = 16_000


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
        finish(
            self.hold,
            partial(outcomes.fail, self.hold.operation_id, str(timed_out), timed_out=True),
        )

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
    context = OperationContext(operation.id, config.operation_timeout_seconds)
    keeper = LeaseKeeper(hold, context, config.slot_lease_seconds)
    keeper.start()
    try:
        return run_kind(operation, context, hold)
    finally:
        keeper.stop()
        line.release(hold)


def current_hold(operation_id: uuid.UUID, lease_version: int) -> slots.Hold | None:
    number = (
        Slot.objects.held_by(operation_id, lease_version).values_list("number", flat=True).first()
    )
    return None if number is None else slots.Hold(number, operation_id, lease_version)


def begin(hold: slots.Hold, lease_seconds: int) -> bool:
    """Renew the lease and mark the operation running, both or neither."""
    with transaction.atomic():
        if slots.renew(hold, lease_seconds) and outcomes.start_running(hold.operation_id):
            return True
    line.release(hold)
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
        finish(hold, partial(outcomes.cancel_running, operation.id, str(exc)))
        return "cancelled"
    except Interrupted as exc:
        timed_out = isinstance(exc, TimedOut)
        finish(hold, partial(outcomes.fail, operation.id, str(exc), timed_out=timed_out))
        return "interrupted"
    except Exception as exc:  # a kind's own failure, whatever it is, fails the operation
        logger.info("Operation %s failed: %r", operation.id, exc)
        failure = partial(
            outcomes.fail, operation.id, describe_failure(exc), traceback=traceback_of(exc)
        )
        finish(hold, failure)
        return "failed"
    finish(hold, partial(outcomes.complete, operation.id, result))
    return "completed"


def traceback_of(exc: Exception) -> str:
    """Where `exc` was raised, for staff: its last TRACEBACK_LENGTH characters."""
    text = "".join(traceback.format_exception(exc))
    return text[-TRACEBACK_LENGTH:]


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, CoordhubError):
        return str(exc)
    if isinstance(exc, TypeError) and "JSON serializable" in str(exc):
        return f"The result could not be stored as JSON: {exc}"
    return f"{type(exc).__name__}: {exc}"


def finish(hold: slots.Hold, outcome: Callable[[], bool]) -> bool:
    """Record the operation's `outcome` and free its slot, together.

    Fenced by status and lease: say whether this call ended the operation.
    Retried through a database outage of up to about one lease, so that the
    recorded outcome is the real one rather than a later "worker lost".
    """
    deadline = time.monotonic() + settings.COORDHUB.slot_lease_seconds
    while True:
        try:
            with transaction.atomic(), counters.counted():
                line.serialise()  # before the operation's row: the line's lock order
                ended = outcome()
                line.release(hold)
            return ended
        except DatabaseError:
            close_old_connections()
            if time.monotonic() >= deadline:
                raise
            time.sleep(FINISH_RETRY_SECONDS)
