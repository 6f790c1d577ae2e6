"""Authenticate scripts by API key (`Authorization: Bearer <key>`)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from api.errors import error_response
from operations import apikeys
from operations.exceptions import InvalidApiKey


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
            secret = bearer_secret(header)
            key = apikeys.authenticate(secret) if secret else None
            if key is None:
                return error_response(request, InvalidApiKey())
            request.user = key.user
            request.api_key = key
            request._dont_enforce_csrf_checks = True
        return self.get_response(request)


def bearer_secret(authorization: str) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, if that is what it is."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
