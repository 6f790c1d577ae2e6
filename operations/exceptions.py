"""Everything that can go wrong in coordhub, one exception per case.

Each class carries the HTTP `status` and the stable error `code` it answers
with; `api.errors` turns any of them into `{"error": code, "detail": str(exc)}`
in one place. The engine raises them without knowing about HTTP: the status is
only data on the class, as `Http404` is for Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operations.estimates import Estimate


class CoordhubError(Exception):
    """Base of coordhub's own errors; `str()` is a sentence for the user."""

    status = 400
    code = "invalid_request"
    # The client's start budget, when this refusal came after spending it (RateLimit headers).
    usage: Any = None

    def headers(self) -> dict[str, str]:
        """Response headers that go with this error."""
        return {}

    def fields(self) -> dict[str, Any]:
        """Fields the error body carries beside `error` and `detail`."""
        return {}


# --- Requests the HTTP layer cannot take -------------------------------------------------


class InvalidRequest(CoordhubError):
    """A request whose body or form the API cannot use."""


class InvalidJson(InvalidRequest):
    code = "invalid_json"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class AuthenticationRequired(CoordhubError):
    status = 401
    code = "authentication_required"

    def __init__(self) -> None:
        super().__init__("Sign in, or send an API key as 'Authorization: Bearer <key>'.")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="coordhub"'}


class InvalidApiKey(AuthenticationRequired):
    code = "invalid_api_key"

    def __init__(self) -> None:
        CoordhubError.__init__(self, "The API key is missing, malformed, unknown or revoked.")


class Forbidden(CoordhubError):
    status = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"CSRF check failed: {reason}")


class NotFound(CoordhubError):
    status = 404
    code = "not_found"


class MethodNotAllowed(CoordhubError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str | None, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed
        super().__init__(f"{method} is not allowed here; use {' or '.join(allowed)}.")

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class RateLimited(CoordhubError):
    """The client spent its budget for this window."""

    status = 429
    code = "rate_limited"

    def __init__(self, usage: Any) -> None:
        self.usage = usage
        what = {"start": "starts", "read": "reads"}.get(usage.group, "start attempts")
        super().__init__(
            f"Rate limit of {usage.limit} {what} per minute reached; "
            f"try again in {usage.reset_seconds} s."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.usage.reset_seconds)}

    def fields(self) -> dict[str, Any]:
        return {"retry_after": self.usage.reset_seconds}


class RateLimitUnavailable(CoordhubError):
    """The cache behind the rate-limit counters failed: starts fail closed."""

    status = 503
    code = "rate_limit_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The rate-limit store is unreachable, so no operation can be started right now; "
            "try again shortly."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class DatabaseUnavailable(CoordhubError):
    status = 503
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__("The database is unavailable or busy; try again in a few seconds.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


# --- Admission: an operation was refused; nothing was created and no slot is held ---------


class AdmissionError(CoordhubError):
    """An operation was refused; nothing was created and no slot is held."""


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

    def fields(self) -> dict[str, Any]:
        return {"fields": self.errors}


class NoFreeSlot(AdmissionError):
    """Every slot is held: the estimate says when one is expected to free, and how."""

    status = 429
    code = "concurrency_limit"

    def __init__(
        self, limit: int, estimate: Estimate | None = None, *, retry_after: int | None = None
    ) -> None:
        # `retry_after` alone: a bare figure from a caller that made no estimate of its own.
        self.limit = limit
        self.retry_after = estimate.seconds if estimate else max(1, retry_after or 1)
        self.basis = estimate.basis if estimate else None
        super().__init__(
            f"All {limit} operation slots are busy; "
            f"a slot is expected to free in about {self.retry_after} s."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

    def fields(self) -> dict[str, Any]:
        estimate = {"seconds": self.retry_after, "basis": self.basis}
        return {"retry_after": self.retry_after, "estimate": estimate}


class CapReached(NoFreeSlot):
    """A cap narrower than the pool is reached: `reached` says which, as a sentence's start."""

    def __init__(self, cap: int, reached: str, estimate: Estimate | None = None) -> None:
        super().__init__(cap, estimate)
        self.args = (f"{reached}; a slot is expected to free in about {self.retry_after} s.",)


class ClientShareFull(CapReached):
    """The client holds as many slots as one client may (MAX_SLOTS_PER_CLIENT)."""

    code = "client_share"

    def __init__(self, share: int, estimate: Estimate | None = None) -> None:
        reached = f"This client already holds {share} of the slots, as many as one client may"
        super().__init__(share, reached, estimate)


class KindCapFull(CapReached):
    """As many operations of this kind hold a slot as the kind allows (`max_concurrent`)."""

    code = "kind_limit"

    def __init__(self, kind: str, cap: int, estimate: Estimate | None = None) -> None:
        reached = f"{cap} {kind} operation(s) already hold a slot, as many as the kind allows"
        super().__init__(cap, reached, estimate)


class KeyCapFull(CapReached):
    """As many operations hold a slot for this concurrency key as the kind allows per key."""

    code = "key_limit"

    def __init__(self, kind: str, cap: int, estimate: Estimate | None = None) -> None:
        reached = (
            f"{cap} {kind} operation(s) with the same concurrency key already hold a slot, "
            "as many as the kind allows per key"
        )
        super().__init__(cap, reached, estimate)


class LineFull(CapReached):
    """The line of waiting operations is full, for this client or for everyone."""

    code = "queue_full"

    def __init__(self, bound: int, whose: str, estimate: Estimate | None = None) -> None:
        reached = f"{whose} {bound} operations are already waiting for a slot, as many as may"
        super().__init__(bound, reached, estimate)


# --- Operations and kinds -------------------------------------------------------------------


class OperationFinished(CoordhubError):
    """The operation has already ended, so it cannot be cancelled."""

    status = 409
    code = "already_finished"

    def __init__(self, operation: Any) -> None:
        super().__init__(f"Operation {operation.id} has already ended ({operation.status}).")


class OperationEnded(CoordhubError):
    """A start that waited for its operation saw it end without completing (failed, cancelled)."""

    status = 409

    def __init__(self, operation: Any, answer: dict[str, Any]) -> None:
        self.code = f"operation_{operation.status}"
        self.answer = answer
        super().__init__(f"Operation {operation.id} ended {operation.status}, not completed.")

    def fields(self) -> dict[str, Any]:
        """Which operation, how it ended and when; its own error text as `reason`."""
        fields = {
            "operation_id": self.answer["operation_id"],
            "operation_status": self.answer["status"],
            "timestamp": self.answer.get("timestamp"),
        }
        if self.answer.get("error"):
            fields["reason"] = self.answer["error"]
        return fields


class KindAlreadyRegistered(CoordhubError):
    """A second kind under a name already taken: a programming error, found at start."""

    def __init__(self, name: str) -> None:
        super().__init__(f"An operation kind named {name!r} is already registered.")


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
