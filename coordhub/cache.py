"""django-redis with one client per process, however many cache objects Django makes."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django_redis.cache import RedisCache as DjangoRedisCache


class RedisCache(DjangoRedisCache):
    """The django-redis cache, its client shared by every cache object with the same settings.

    Django keeps one cache object per request context, which under ASGI is one per
    request. django-redis already shares its connection pool between them, but each
    object builds its own client (serializer, compressor, connection factory) on
    first use: a cost every request that used the cache paid for nothing.
    """

    clients: ClassVar[dict[str, Any]] = {}
    creating: ClassVar[threading.Lock] = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            key = repr((self._server, sorted(self._params.items())))
            with self.creating:
                if key not in self.clients:
                    self.clients[key] = self._client_cls(self._server, self._params, self)
            self._client = self.clients[key]
        return self._client
