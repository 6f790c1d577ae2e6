"""coordhub's Redis cache: django-redis with one client per process."""

from __future__ import annotations

from coordhub.cache import RedisCache


def test_cache_objects_with_the_same_settings_share_one_redis_client():
    params = {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1}}
    first, second = (
        RedisCache("redis://127.0.0.1:1/0", params),
        RedisCache("redis://127.0.0.1:1/0", params),
    )
    elsewhere = RedisCache("redis://127.0.0.1:1/1", params)

    assert first.client is second.client
    assert elsewhere.client is not first.client
