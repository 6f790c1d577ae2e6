from __future__ import annotations

import pytest
from django.test import override_settings

from tests.services import free_port

pytestmark = pytest.mark.django_db


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }


def test_health_is_200_when_database_and_cache_answer(client):
    response = client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"database": {"status": "up"}, "cache": {"status": "up"}}
    assert body["failed"] == []
    assert body["timestamp"].endswith("+00:00")


def test_health_is_200_on_a_real_redis_cache(client, redis_url):
    with override_settings(CACHES=redis_cache(redis_url)):
        response = client.get("/api/health")

    assert response.status_code == 200
    assert response.json()["checks"]["cache"] == {"status": "up"}


def test_health_is_503_naming_the_cache_when_redis_is_down(client):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{free_port()}/0")):
        response = client.get("/api/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failed"] == ["cache"]
    assert body["checks"]["cache"]["status"] == "down"
    assert "cache did not answer" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"] == {"status": "up"}


def test_health_answers_get_only(client):
    assert client.post("/api/health").status_code == 405
