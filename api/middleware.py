"""Authenticate scripts by API key (`Authorization: Bearer <key>`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from api.responses import json_error
from operations import apikeys

logger = logging.getLogger(__name__)


class ApiKeyMiddleware:
    """Put the key's user on the request; a bad key is refused outright.

    Key-authenticated requests carry no cookies for a forged page to ride on,
    so they skip the CSRF check that session-authenticated requests get.
    Must come after AuthenticationMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if header:
            secret = apikeys.bearer_secret(header)
            key = apikeys.authenticate(secret) if secret else None
            if key is None:
                return json_error(
                    "invalid_api_key",
                    "The API key is missing, malformed, unknown or revoked.",
                    401,
                    headers={"WWW-Authenticate": 'Bearer realm="coordhub"'},
                )
            request.user = key.user
            request.api_key = key
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """Answer 503 with a clear error, not 500, while the database cannot be reached."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("Database unavailable for %s: %s", request.path, exception)
        return json_error(
            "database_unavailable",
            "The database is unavailable or busy; try again in a few seconds.",
            503,
            headers={"Retry-After": "5"},
        )
