"""What every request to the API and the dashboard passes through, once each.

View decorators that raise coordhub's exceptions; `api.errors` answers them.
Order them outermost first as they read: methods, CSRF, sign-in, then the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from api import limits
from api.holds import recheck_of
from operations.exceptions import (
    AuthenticationRequired,
    CsrfFailed,
    MethodNotAllowed,
    RateLimited,
    RateLimitUnavailable,
)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def allow_methods(*methods: str) -> Callable:
    """Like require_http_methods, but the 405 is coordhub's error with `Allow`.

    A view that takes GET answers HEAD too, as GET (the server sends no body).
    OPTIONS answers 200 with every method in `Allow` before anything else runs:
    no view, no CSRF check, no limit spent.
    """
    answered = (*methods, *(("HEAD",) if "GET" in methods and "HEAD" not in methods else ()))
    allow = ", ".join((*answered, "OPTIONS"))

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "OPTIONS":
                return HttpResponse(headers={"Allow": allow})
            if request.method not in answered:
                raise MethodNotAllowed(request.method, methods)
            if request.method == "HEAD" and "HEAD" not in methods:
                return as_get(view, request, *args, **kwargs)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def as_get(view: Callable, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Run `view` on a HEAD request as if it were GET, as Django's View does for `head`."""
    # Views branch on request.method; a HEAD must take their GET branch, not fall to POST's.
    request.method = "GET"
    try:
        return view(request, *args, **kwargs)
    finally:
        request.method = "HEAD"


def signed_in(view: Callable) -> Callable:
    """Refuse anonymous clients where anonymous use is off (401 for the API, sign-in page else)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.COORDHUB.allow_anonymous and not request.user.is_authenticated:
            raise AuthenticationRequired()
        return view(request, *args, **kwargs)

    return wrapper


class SessionCsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise CsrfFailed(reason)


def csrf_for_sessions(view: Callable) -> Callable:
    """Check CSRF on session-signed-in requests only.

    API-key and anonymous requests carry no session for a forged page to ride
    on, and a cross-site page cannot send application/json without a CORS
    preflight, which coordhub never grants.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session_user = request.user.is_authenticated and not hasattr(request, "api_key")
        if session_user and request.method not in SAFE_METHODS:
            check = SessionCsrfCheck(lambda request: HttpResponse())
            check.process_request(request)
            check.process_view(request, None, (), {})
        return view(request, *args, **kwargs)

    return wrapper


def start_attempts_limited(view: Callable) -> Callable:
    """Count every start attempt, refused or not, against START_ATTEMPTS_PER_MINUTE.

    A start refused for bad input, its rate or a full pool spends none of the start
    budget; this generous limit keeps a client from hammering the slot table with
    them. A start that gets as far as the budget counts its attempt in the same
    cache round trip (`api.starts`); any other ends here, where it is counted.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        request.start_attempt_counted = False
        try:
            response = view(request, *args, **kwargs)
        except Exception:
            if not request.start_attempt_counted:
                count_start_attempt(request)  # past the limit, its 429 answers instead
            raise
        if not request.start_attempt_counted:
            count_start_attempt(request)
        return response

    return wrapper


def count_start_attempt(request: HttpRequest) -> None:
    """Count one start attempt; raise RateLimited past START_ATTEMPTS_PER_MINUTE."""
    request.start_attempt_counted = True
    attempts = limits.spend(request, limits.ATTEMPT)
    if attempts and attempts.exceeded:
        raise RateLimited(attempts)  # a flood: not counted (api.starts.refused_for_rate)


def read_limited(view: Callable) -> Callable:
    """Count a read against the client's read budget; a failed cache never blocks reads.

    A held request's rechecks (`api.holds`) are part of the read it began as.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if recheck_of(request) is not None:
            return view(request, *args, **kwargs)
        try:
            usage = limits.spend(request, limits.READ)
        except RateLimitUnavailable:
            usage = None  # watching keeps working without the cache
        if usage and usage.exceeded:
            raise RateLimited(usage)
        return view(request, *args, **kwargs)

    return wrapper
