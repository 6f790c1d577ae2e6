"""JSON responses: errors as `{"error": code, "detail": sentence}`, one status per error."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from api.limits import RateLimitUnavailable, Usage
from operations.exceptions import (
    CoordhubError,
    InvalidParams,
    NoFreeSlot,
    OperationFinished,
    UnknownKind,
)


class BadRequest(CoordhubError):
    """A request the API cannot read."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        self.code, self.status = code, status
        super().__init__(detail)


STATUS_FOR: dict[type[CoordhubError], int] = {
    UnknownKind: 400,
    InvalidParams: 400,
    NoFreeSlot: 429,
    OperationFinished: 409,
    RateLimitUnavailable: 503,
}


def json_error(
    code: str, detail: str, status: int, *, headers: dict[str, str] | None = None, **extra: Any
) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status, headers=headers)


def error_for(exc: CoordhubError) -> JsonResponse:
    """Map one of coordhub's errors to its response."""
    if isinstance(exc, BadRequest):
        return json_error(exc.code, str(exc), exc.status)
    status = next(code for cls, code in STATUS_FOR.items() if isinstance(exc, cls))
    extra: dict[str, Any] = {}
    headers = {}
    if isinstance(exc, InvalidParams):
        extra["fields"] = exc.errors
    if isinstance(exc, NoFreeSlot):
        headers["Retry-After"] = str(exc.retry_after)
        extra["retry_after"] = exc.retry_after
    if isinstance(exc, RateLimitUnavailable):
        headers["Retry-After"] = "5"
    return json_error(exc.code, str(exc), status, headers=headers, **extra)


def rate_limited(usage: Usage) -> JsonResponse:
    """429 for a client over its limit, with the wait until its window resets."""
    what = "starts" if usage.group == "start" else "reads"
    response = json_error(
        "rate_limited",
        f"Rate limit of {usage.limit} {what} per minute reached; "
        f"try again in {usage.reset_seconds} s.",
        429,
        headers={"Retry-After": str(usage.reset_seconds)},
        retry_after=usage.reset_seconds,
    )
    return with_usage(response, usage)


def with_usage(response: HttpResponse, usage: Usage | None) -> HttpResponse:
    for name, value in (usage.headers() if usage else {}).items():
        response[name] = value
    return response


def allow_methods(*methods: str) -> Callable:
    """Like require_http_methods, but the 405 says so in JSON."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return json_error(
                    "method_not_allowed",
                    f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                    405,
                    headers={"Allow": ", ".join(methods)},
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
