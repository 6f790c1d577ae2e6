"""Errors answered in one place: each exception's status, code and headers; outages; 404s."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.test import RequestFactory

import dashboard.views
from api.errors import error_response
from api.limits import Usage
from operations.exceptions import (
    AuthenticationRequired,
    DatabaseUnavailable,
    Forbidden,
    InvalidApiKey,
    InvalidJson,
    MethodNotAllowed,
    NoFreeSlot,
    NotFound,
    OperationEnded,
    OperationFinished,
    PayloadTooLarge,
    RateLimitUnavailable,
    UnsupportedMediaType,
)
from operations.models import Operation

pytestmark = pytest.mark.django_db

BEARER = 'Bearer realm="coordhub"'


def test_a_database_outage_is_a_503_with_a_clear_error(client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(Operation.objects, "all", down)

    response = client.get("/api/operations")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == "database_unavailable"


@pytest.mark.parametrize(
    ("error", "status", "code", "headers"),
    [
        (InvalidJson("The body is not valid JSON."), 400, "invalid_json", {}),
        (UnsupportedMediaType("Send JSON."), 415, "unsupported_media_type", {}),
        (PayloadTooLarge("Too large."), 413, "payload_too_large", {}),
        (AuthenticationRequired(), 401, "authentication_required", {"WWW-Authenticate": BEARER}),
        (InvalidApiKey(), 401, "invalid_api_key", {"WWW-Authenticate": BEARER}),
        (Forbidden("Not yours."), 403, "forbidden", {}),
        (NotFound("Nothing."), 404, "not_found", {}),
        (
            MethodNotAllowed("PUT", ("GET", "POST")),
            405,
            "method_not_allowed",
            {"Allow": "GET, POST"},
        ),
        (
            OperationFinished(Operation(kind="simulated", status="completed")),
            409,
            "already_finished",
            {},
        ),
        (
            OperationEnded(
                Operation(kind="simulated", status="cancelled"),
                {"operation_id": "x", "status": "cancelled", "error": "Cancelled on request."},
            ),
            409,
            "operation_cancelled",
            {},
        ),
        (NoFreeSlot(3, retry_after=7), 429, "concurrency_limit", {"Retry-After": "7"}),
        (RateLimitUnavailable(), 503, "rate_limit_unavailable", {"Retry-After": "5"}),
        (DatabaseUnavailable(), 503, "database_unavailable", {"Retry-After": "5"}),
    ],
)
def test_each_error_answers_its_own_status_code_and_headers(error, status, code, headers):
    response = error_response(RequestFactory().get("/api/operations"), error)

    assert response.status_code == status
    assert json.loads(response.content) == {"error": code, "detail": str(error), **error.fields()}
    for name, value in headers.items():
        assert response[name] == value


def test_a_refusal_after_spending_the_budget_carries_the_ratelimit_fields():
    refusal = NoFreeSlot(3, retry_after=2)
    refusal.usage = Usage("start", limit=10, count=4, reset_seconds=30)

    response = error_response(RequestFactory().post("/api/operations"), refusal)

    assert response["RateLimit"] == '"start";r=6;t=30'
    assert response["RateLimit-Policy"] == '"start";q=10;w=60'


def test_a_browser_page_that_needs_sign_in_redirects_to_the_sign_in_page():
    response = error_response(RequestFactory().get("/dashboard/live/"), AuthenticationRequired())

    assert response.status_code == 302
    assert response["Location"].endswith("?next=/dashboard/live/")


def test_unknown_api_paths_are_json_404_and_pages_are_html(client):
    api = client.get("/api/nothing-here")
    page = client.get("/nothing-here/")

    assert (api.status_code, api.json()["error"]) == (404, "not_found")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_a_failure_under_the_api_is_a_json_500_and_elsewhere_a_page(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Operation.objects, "all", broken)
    monkeypatch.setattr(dashboard.views, "start_form_context", broken)
    client.raise_request_exception = False

    api = client.get("/api/operations")
    page = client.get("/")

    assert api.status_code == 500
    assert api.json() == {
        "error": "server_error",
        "detail": "The server failed to answer; it has been logged.",
    }
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_refused_htmx_request_for_a_panel_swaps_nothing_into_it(client, configure):
    configure(allow_anonymous=True, enable_rate_limiting=True, read_requests_per_minute=1)
    htmx = {"HX-Request": "true"}
    assert client.get("/dashboard/history/", headers=htmx).status_code == 200

    refused = client.get("/dashboard/history/", headers=htmx)
    script = client.get("/api/operations", headers=htmx)

    assert refused.status_code == 429
    assert refused["HX-Reswap"] == "none"  # the panel stays as it was
    assert script.status_code == 429
    assert "HX-Reswap" not in script  # the API answers scripts, whatever they send
