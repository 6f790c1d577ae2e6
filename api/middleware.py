"""Authenticate scripts by API key (`Authorization: Bearer <key>`) on the API and /metrics."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from api.errors import API_PREFIX, error_response, for_scripts
from operations import apikeys
from operations.exceptions import InvalidApiKey


class ApiKeyMiddleware:
    """Put the key's user on API and /metrics requests; a bad bearer key is refused outright.

    A key opens only what scripts call: elsewhere (the admin, the dashboard) the
    header is ignored and the request stays anonymous or signed in by its session,
    so a leaked script key never opens a console. Only `Bearer` is ours: a site
    behind Basic auth sends its own `Authorization`, which passes through untouched.
    Key-authenticated API requests carry no cookies for a forged page to ride on,
    so they skip the CSRF check that session-authenticated requests get.
    Must come after AuthenticationMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if is_bearer(header) and for_scripts(request):
            secret = bearer_secret(header)
            key = apikeys.authenticate(secret) if secret else None
            if key is None:
                return error_response(request, InvalidApiKey())
            request.user = key.user
            request.api_key = key
            if request.path_info.startswith(API_PREFIX):
                request._dont_enforce_csrf_checks = True
        return self.get_response(request)


def is_bearer(authorization: str) -> bool:
    """Whether the header uses the `Bearer` scheme, with or without a token."""
    return authorization.split(" ", 1)[0].lower() == "bearer"


def bearer_secret(authorization: str) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, if that is what it is."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class AdminOptionsMiddleware:
    """Answer OPTIONS on the admin's pages with `Allow`, before any of its views runs.

    coordhub's own views answer OPTIONS in `api.pipeline.allow_methods`, and Django's
    class-based views (the sign-in page) answer it themselves; the admin's views would
    render the whole page instead.
    """

    ALLOW = "GET, HEAD, POST, OPTIONS"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS" and request.path.startswith(reverse("admin:index")):
            return HttpResponse(headers={"Allow": self.ALLOW})
        return self.get_response(request)
