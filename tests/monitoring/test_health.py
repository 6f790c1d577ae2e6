from __future__ import annotations

import json

import pytest
from django.test import override_settings

from coordhub.testing.services import free_port
from operations import apikeys
from operations.maintenance import beat

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_alive():
    beat("test-worker", threads=1)


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "coordhub.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }


@pytest.mark.usefixtures("worker_alive")
def test_health_is_200_when_database_cache_and_a_worker_answer(client):
    response = client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {
        "database": {"status": "up"},
        "cache": {"status": "up"},
        "workers": {"status": "up"},
    }
    assert body["failed"] == []
    assert body["timestamp"].endswith("+00:00")


@pytest.mark.usefixtures("worker_alive")
def test_health_is_200_on_a_real_redis_cache(client, redis_url):
    with override_settings(CACHES=redis_cache(redis_url)):
        response = client.get("/api/health")

    assert response.status_code == 200
    assert response.json()["checks"]["cache"] == {"status": "up"}


def health_with_redis_down(client) -> tuple[int, dict]:
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{free_port()}/0")):
        response = client.get("/api/health")
    return response.status_code, response.json()


@pytest.mark.usefixtures("worker_alive")
def test_health_is_503_naming_the_cache_when_redis_is_down(admin_client):
    status, body = health_with_redis_down(admin_client)

    assert status == 503
    assert body["status"] == "degraded"
    assert body["failed"] == ["cache"]
    assert body["checks"]["cache"]["status"] == "down"
    assert "cache did not answer" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"] == {"status": "up"}


@pytest.mark.usefixtures("worker_alive")
def test_anonymous_health_names_the_failed_check_but_not_its_error(client):
    status, body = health_with_redis_down(client)

    assert status == 503
    assert body["failed"] == ["cache"]
    assert body["checks"]["cache"] == {"status": "down"}
    assert body["detail"] == (
        "Failed: cache. Staff and API-key callers see why each failed check failed."
    )
    assert "redis" not in json.dumps(body).lower()


def test_a_signed_in_user_who_is_not_staff_sees_no_error_text(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ada"))

    body = client.get("/api/health").json()

    assert body["checks"]["workers"] == {"status": "down"}


def test_an_api_key_sees_why_a_check_failed(client, django_user_model):
    _, secret = apikeys.issue(django_user_model.objects.create_user("ada"), "probe")

    response = client.get("/api/health", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 503
    assert response.json()["failed"] == ["workers"]
    assert "No worker has been seen" in response.json()["checks"]["workers"]["error"]
    assert "detail" not in response.json()


def test_health_is_503_naming_the_workers_when_none_is_alive(admin_client):
    response = admin_client.get("/api/health")

    assert response.status_code == 503
    assert response.json()["failed"] == ["workers"]
    assert "No worker has been seen" in response.json()["checks"]["workers"]["error"]


def test_health_answers_get_only(client):
    assert client.post("/api/health").status_code == 405
