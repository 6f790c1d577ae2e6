"""What every request passes through once: methods, CSRF, sign-in and the read limit."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from api import limits
from operations.exceptions import RateLimitUnavailable
from operations.maintenance import beat
from operations.models import Operation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

READS_PER_MINUTE = 2


@pytest.fixture(autouse=True)
def limits_on(limits_for):
    limits_for(requests_per_minute=10, read_requests_per_minute=READS_PER_MINUTE)


def test_one_sign_in_check_answers_each_surface_in_its_own_way(client, configure):
    configure(allow_anonymous=False)

    api = client.get("/api/operations")
    fragment = client.get("/dashboard/live/")
    report = client.get("/api/performance")

    assert (api.status_code, api.json()["error"]) == (401, "authentication_required")
    assert api["WWW-Authenticate"] == 'Bearer realm="coordhub"'
    assert report.status_code == 401
    assert fragment.status_code == 302
    assert fragment["Location"].startswith(f"{reverse('login')}?next=/dashboard/live/")


@pytest.mark.parametrize("path", ["/api/operations", "/dashboard/live/"])
def test_the_read_limit_is_one_check_with_one_answer_for_the_api_and_the_dashboard(client, path):
    for _ in range(READS_PER_MINUTE):
        assert client.get(path).status_code == 200

    refused = client.get(path)

    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.json()["retry_after"] == int(refused["Retry-After"]) > 0
    assert refused["RateLimit"].startswith('"read";r=0;')


def test_reads_keep_working_when_the_cache_behind_the_read_limit_fails(client, monkeypatch):
    def unavailable(*args, **kwargs):
        raise RateLimitUnavailable()

    monkeypatch.setattr(limits, "spend", unavailable)

    for _ in range(READS_PER_MINUTE + 1):
        assert client.get("/dashboard/live/").status_code == 200


def test_a_method_the_view_does_not_take_is_405_naming_those_it_does(client):
    response = client.put("/api/protected-operation")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["detail"] == "PUT is not allowed here; use POST."


def test_a_session_post_without_its_csrf_token_is_refused_and_starts_nothing(
    django_user_model,
):
    user = django_user_model.objects.create_user("ada", password="pw")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    refused = browser.post(
        "/api/operations", json.dumps({"kind": "simulated"}), content_type="application/json"
    )

    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    assert not Operation.objects.exists()


READ_PATHS = [
    "/api/operations",
    "/api/health",
    "/api/performance",
    "/api/resource-pool/metrics",
    "/metrics",
]


@pytest.fixture
def operation_path(client):
    created = client.post(
        "/api/operations", {"kind": "simulated"}, content_type="application/json"
    ).json()
    return f"/api/operations/{created['id']}"


@pytest.mark.parametrize("path", READ_PATHS)
def test_head_answers_wherever_get_does_with_its_headers_and_no_body(client, path):
    beat("test-worker", threads=1)  # else health answers 503: no worker seen
    got = client.get(path)

    head = client.head(path)

    assert head.status_code == got.status_code == 200
    assert head["Content-Type"] == got["Content-Type"]
    assert head.content == b""


def test_head_of_one_operation_answers_as_its_get(client, operation_path):
    head = client.head(operation_path)

    assert (head.status_code, head["Content-Type"], head.content) == (200, "application/json", b"")


def test_head_of_the_operations_list_starts_nothing(client):
    assert client.head("/api/operations").status_code == 200
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/operations", "GET, POST, HEAD, OPTIONS"),
        ("/api/health", "GET, HEAD, OPTIONS"),
        ("/api/performance", "GET, HEAD, OPTIONS"),
        ("/api/resource-pool/metrics", "GET, HEAD, OPTIONS"),
        ("/metrics", "GET, HEAD, OPTIONS"),
        ("/api/protected-operation", "POST, OPTIONS"),
        ("/", "GET, HEAD, OPTIONS"),
        ("/dashboard/live/", "GET, HEAD, OPTIONS"),
        ("/dashboard/form/", "GET, HEAD, OPTIONS"),
        ("/dashboard/start/", "POST, OPTIONS"),
    ],
)
def test_options_answers_200_with_every_method_in_allow(client, path, allow):
    response = client.options(path)

    assert response.status_code == 200
    assert response["Allow"] == allow
    assert response.content == b""


def test_options_of_one_operation_and_its_cancel_name_their_methods(client, operation_path):
    assert client.options(operation_path)["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options(f"{operation_path}/cancel")["Allow"] == "POST, OPTIONS"


def test_options_runs_no_view_spends_no_limit_and_needs_no_sign_in(client, configure):
    for _ in range(READS_PER_MINUTE + 3):
        assert client.options("/api/operations").status_code == 200
    configure(allow_anonymous=False)
    assert client.options("/api/performance").status_code == 200
    configure(allow_anonymous=True)

    assert client.get("/api/operations").status_code == 200
    assert not Operation.objects.exists()


def test_options_needs_no_csrf_token_from_a_session(django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.options("/api/operations")

    assert response.status_code == 200
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
