"""Turn coordhub's exceptions into responses, in one place.

Every error answers `{"error": code, "detail": sentence}` with the status and
headers its exception class names (`operations.exceptions`). Views and the
request pipeline raise; `ErrorMiddleware` answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error

from operations.exceptions import AuthenticationRequired, CoordhubError, DatabaseUnavailable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
METRICS_PATH = "/metrics"


def json_error(
    code: str, detail: str, status: int, *, headers: dict[str, str] | None = None, **extra: Any
) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status, headers=headers)


def for_scripts(request: HttpRequest) -> bool:
    """Whether scripts call this path (the JSON API, /metrics): API keys work only there."""
    return request.path_info.startswith(API_PREFIX) or request.path_info == METRICS_PATH


def error_response(request: HttpRequest, exc: CoordhubError) -> HttpResponse:
    """The response for `exc`: JSON, except a browser page sent to sign in."""
    if type(exc) is AuthenticationRequired and not for_scripts(request):
        # Only a browser without credentials is sent to sign in; a script (an API call,
        # a Prometheus scrape) gets a 401 with the Bearer challenge it can answer.
        return redirect_to_login(request.get_full_path())
    response = json_error(exc.code, str(exc), exc.status, headers=exc.headers(), **exc.fields())
    if request.headers.get("HX-Request") == "true" and not for_scripts(request):
        # htmx swaps 4xx answers into the page (base.html): never this JSON over a panel.
        response["HX-Reswap"] = "none"
    return with_usage(response, exc.usage)


def with_usage(response: HttpResponse, usage: Any) -> HttpResponse:
    """Add the RateLimit headers of the client's start budget, when one was spent."""
    for name, value in (usage.headers() if usage else {}).items():
        response[name] = value
    return response


class ErrorMiddleware:
    """Answer coordhub's errors, and a database that cannot be reached, with their responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("Database unavailable for %s: %s", request.path, exception)
            exception = DatabaseUnavailable()
        if isinstance(exception, CoordhubError):
            return error_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """JSON 500 under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return json_error("server_error", "The server failed to answer; it has been logged.", 500)
    return django_server_error(request)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return json_error("not_found", f"Nothing at {request.path}.", 404)
    return page_not_found(request, exception)
