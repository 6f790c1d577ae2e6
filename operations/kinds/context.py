"""What a running kind receives: report progress, sleep, and check whether to stop."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque

from django.utils import timezone

from operations.exceptions import Cancelled, Interrupted, LeaseLost, TimedOut, WorkerStopping
from operations.models import Operation, Status
from operations.outages import database_outage_tolerated

CANCEL_POLL_SECONDS = 0.5
SLEEP_STEP_SECONDS = 0.1
MESSAGE_LENGTH = 200
# How many of its last messages an operation keeps, with their times.
MESSAGE_HISTORY = 10

# Set by the worker command when it must stop: running kinds are interrupted.
stop_requested = threading.Event()


class OperationContext:
    """What a running kind sees: report progress, and check whether to stop."""

    def __init__(self, operation_id: uuid.UUID, timeout_seconds: int) -> None:
        self.operation_id = operation_id
        self.timeout_seconds = timeout_seconds
        self.deadline = time.monotonic() + timeout_seconds
        self._interruption: Interrupted | None = None
        self._next_cancel_poll = 0.0
        self._messages: deque[dict[str, str]] = deque(maxlen=MESSAGE_HISTORY)

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
        fields: dict[str, object] = {"progress": percent, "message": message[:MESSAGE_LENGTH]}
        if fields["message"] and (
            not self._messages or self._messages[-1]["message"] != fields["message"]
        ):
            self._messages.append({"at": timezone.now().isoformat(), "message": fields["message"]})
            fields["message_history"] = list(self._messages)  # written only when it grows
        running = Operation.objects.filter(pk=self.operation_id, status=Status.RUNNING)
        updated = None
        with database_outage_tolerated("progress"):  # progress can wait for the next report
            updated = running.update(**fields)
        if updated == 0:
            raise LeaseLost()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, checking for interruption in short steps."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.check()
            time.sleep(min(SLEEP_STEP_SECONDS, left))
        self.check()
