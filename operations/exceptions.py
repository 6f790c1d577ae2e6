"""What can go wrong with an operation, one exception per case.

The HTTP layer maps each `AdmissionError` to one status and error code.
"""

from __future__ import annotations

from typing import Any


class CoordhubError(Exception):
    """Base of coordhub's own errors; `str()` is a sentence for the user."""


class AdmissionError(CoordhubError):
    """An operation was refused; nothing was created and no slot is held."""

    code = "invalid_request"


class UnknownKind(AdmissionError):
    code = "unknown_kind"

    def __init__(self, kind: object, known: list[str]) -> None:
        self.kind = kind
        super().__init__(f"There is no operation kind {kind!r}; known kinds: {', '.join(known)}.")


class InvalidParams(AdmissionError):
    code = "invalid_params"

    def __init__(self, kind: str, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        super().__init__(f"The parameters for {kind!r} are not valid: {problems}")


class NoFreeSlot(AdmissionError):
    code = "concurrency_limit"

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"All {limit} operation slots are busy; try again in about {retry_after} s."
        )


class OperationFinished(CoordhubError):
    """The operation has already ended, so it cannot be cancelled."""

    code = "already_finished"

    def __init__(self, operation: Any) -> None:
        super().__init__(f"Operation {operation.id} has already ended ({operation.status}).")


class Interrupted(CoordhubError):
    """Raised inside a running kind by `OperationContext.check()` to stop it."""


class Cancelled(Interrupted):
    def __init__(self) -> None:
        super().__init__("Cancelled on request.")


class TimedOut(Interrupted):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"Timed out after {seconds} s (OPERATION_TIMEOUT_SECONDS).")


class LeaseLost(Interrupted):
    def __init__(self) -> None:
        super().__init__("Its slot lease was lost; another process took the slot over.")


class WorkerStopping(Interrupted):
    def __init__(self) -> None:
        super().__init__("Its worker was shut down before the operation finished.")
