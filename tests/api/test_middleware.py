"""API keys on the wire, and sessions beside them, where anonymous use is off."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.utils import timezone

from operations import apikeys
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db

BEARER_CHALLENGE = 'Bearer realm="coordhub"'


@pytest.fixture(autouse=True)
def anonymous_off(configure):
    configure(allow_anonymous=False, enable_rate_limiting=False, max_concurrent_operations=10)


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada")


@pytest.fixture
def grace(django_user_model):
    return django_user_model.objects.create_user("grace")


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def start(client, **extra):
    body = json.dumps({"kind": "simulated", "params": {}})
    return client.post("/api/operations", body, content_type="application/json", **extra)


def test_without_credentials_the_api_is_401_with_a_bearer_challenge(client):
    for response in (client.get("/api/operations"), start(client)):
        assert response.status_code == 401
        assert response.json()["error"] == "authentication_required"
        assert "API key" in response.json()["detail"]
        assert response["WWW-Authenticate"] == BEARER_CHALLENGE
    assert Operation.objects.count() == 0


def test_a_session_signed_in_user_can_read(client, ada):
    client.force_login(ada)

    response = client.get("/api/operations")

    assert response.status_code == 200
    assert response.json() == {"operations": [], "next": None, "prev": None}


def test_a_session_start_without_a_csrf_token_is_403(csrf_client, ada):
    csrf_client.force_login(ada)

    response = start(csrf_client)

    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert response.json()["detail"].startswith("CSRF check failed")
    assert Operation.objects.count() == 0


def test_a_session_start_with_the_csrf_token_is_202(csrf_client, ada):
    csrf_client.force_login(ada)
    page = RequestFactory().get("/")
    token = get_token(page)
    csrf_client.cookies[settings.CSRF_COOKIE_NAME] = page.META["CSRF_COOKIE"]

    response = start(csrf_client, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 202
    assert Operation.objects.get().user == ada


def test_an_api_key_needs_no_csrf_token_to_start(csrf_client, ada):
    _, secret = apikeys.issue(ada, "ci")

    started = start(csrf_client, **bearer(secret))
    listed = csrf_client.get("/api/operations", **bearer(secret))

    assert started.status_code == 202
    assert listed.status_code == 200
    assert [operation["id"] for operation in listed.json()["operations"]] == [started.json()["id"]]


def test_a_revoked_key_fails_on_the_next_request(client, ada):
    key, secret = apikeys.issue(ada, "ci")
    assert client.get("/api/operations", **bearer(secret)).status_code == 200

    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    response = client.get("/api/operations", **bearer(secret))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer chk_unknown"])
def test_a_malformed_or_unknown_bearer_key_is_401(client, ada, authorization):
    apikeys.issue(ada, "ci")

    response = start(client, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"
    assert Operation.objects.count() == 0


@pytest.mark.parametrize("authorization", ["Basic YWRhOnB3", "Token chk_abc", "chk_abc"])
def test_an_authorization_header_of_another_scheme_is_ignored(client, ada, authorization):
    apikeys.issue(ada, "ci")

    response = start(client, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401  # as if no header came: anonymous use is off
    assert response.json()["error"] == "authentication_required"
    assert Operation.objects.count() == 0


@pytest.mark.parametrize("path", ["/", "/api/operations", "/api/health", "/metrics"])
def test_behind_basic_auth_anonymous_use_goes_on(client, configure, path):
    configure(allow_anonymous=True)

    response = client.get(path, HTTP_AUTHORIZATION="Basic YWRhOnB3")

    assert response.status_code in (200, 503)  # 503: /api/health without a worker


def test_a_session_signed_in_user_behind_basic_auth_stays_signed_in(client, ada):
    client.force_login(ada)

    response = client.get("/api/operations", HTTP_AUTHORIZATION="Basic YWRhOnB3")

    assert response.status_code == 200


def test_a_bad_key_is_refused_even_alongside_a_session(client, ada):
    client.force_login(ada)

    response = client.get("/api/operations", HTTP_AUTHORIZATION="Bearer chk_unknown")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"


def test_the_key_of_an_inactive_user_fails(client, ada):
    _, secret = apikeys.issue(ada, "ci")
    ada.is_active = False
    ada.save(update_fields=["is_active"])

    response = client.get("/api/operations", **bearer(secret))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"


def test_an_operation_started_with_a_key_belongs_to_its_user(client, ada):
    _, secret = apikeys.issue(ada, "ci")

    response = start(client, **bearer(secret))

    operation = Operation.objects.get(pk=response.json()["id"])
    assert operation.user == ada
    assert operation.client_key == f"user:{ada.pk}"


def test_using_a_key_records_when_it_was_last_used(client, ada):
    key, secret = apikeys.issue(ada, "ci")
    assert key.last_used_at is None

    client.get("/api/operations", **bearer(secret))

    key.refresh_from_db()
    assert key.last_used_at is not None


def test_only_the_client_that_started_an_operation_may_cancel_it(client, ada, grace):
    _, ada_secret = apikeys.issue(ada, "ci")
    _, grace_secret = apikeys.issue(grace, "ci")
    created = start(client, **bearer(ada_secret)).json()
    cancel_path = f"/api/operations/{created['id']}/cancel"

    by_grace = client.post(cancel_path, **bearer(grace_secret))
    by_ada = client.post(cancel_path, **bearer(ada_secret))
    again = client.post(cancel_path, **bearer(ada_secret))

    assert by_grace.status_code == 403
    assert by_grace.json()["error"] == "forbidden"
    assert by_ada.status_code == 200
    assert by_ada.json()["status"] == Status.CANCELLED
    assert again.status_code == 409
    assert again.json()["error"] == "already_finished"


def test_staff_may_cancel_any_operation(client, ada, django_user_model):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    _, ada_secret = apikeys.issue(ada, "ci")
    _, boss_secret = apikeys.issue(boss, "ops")
    created = start(client, **bearer(ada_secret)).json()

    response = client.post(f"/api/operations/{created['id']}/cancel", **bearer(boss_secret))

    assert response.status_code == 200


def test_a_malformed_operation_id_is_404_in_json(client, ada):
    _, secret = apikeys.issue(ada, "ci")

    for path in ("/api/operations/not-a-uuid", "/api/operations/not-a-uuid/cancel"):
        response = client.get(path, **bearer(secret))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_a_bad_key_is_a_401_on_metrics_never_a_redirect_to_sign_in(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer chk_revoked")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE
    assert response.json()["error"] == "invalid_api_key"


@pytest.mark.parametrize("authorization", ["Bearer chk_revoked", "valid"])
def test_a_key_is_ignored_off_the_api_so_the_dashboard_sends_to_sign_in(client, ada, authorization):
    _, secret = apikeys.issue(ada, "ci")
    header = f"Bearer {secret}" if authorization == "valid" else authorization

    dashboard = client.get("/", HTTP_AUTHORIZATION=header)
    admin = client.get("/admin/", HTTP_AUTHORIZATION=header)
    sign_in = client.get("/admin/login/", HTTP_AUTHORIZATION=header)

    assert dashboard.status_code == 302
    assert "login" in dashboard["Location"]
    assert admin.status_code == 302
    assert admin["Location"].startswith("/admin/login/")
    assert sign_in.status_code == 200


def test_a_key_does_not_replace_the_session_off_the_api(client, ada, grace):
    _, grace_secret = apikeys.issue(grace, "ci")
    client.force_login(ada)

    response = client.get("/", HTTP_AUTHORIZATION=f"Bearer {grace_secret}")

    assert response.status_code == 200
    assert response.wsgi_request.user == ada
    assert not hasattr(response.wsgi_request, "api_key")


def test_a_key_earns_no_csrf_exemption_off_the_api(csrf_client, ada, configure):
    configure(allow_anonymous=True)
    _, secret = apikeys.issue(ada, "ci")

    response = csrf_client.post(
        "/dashboard/start/", {"kind": "simulated"}, HTTP_AUTHORIZATION=f"Bearer {secret}"
    )

    assert response.status_code == 403
    assert Operation.objects.count() == 0


@pytest.mark.parametrize("path", ["/admin/", "/admin/operations/operation/", "/admin/login/"])
def test_admin_pages_answer_options_with_allow_without_rendering(client, path):
    response = client.options(path)

    assert (response.status_code, response["Allow"]) == (200, "GET, HEAD, POST, OPTIONS")
    assert response.content == b""
