"""Per-client rate limits in the Django cache, with honest remaining/reset figures.

The keys and windows are django-ratelimit's own (`_make_cache_key`, `_get_window`:
fixed one-minute windows, jittered per client), so its system checks and tools
apply. Counting is done here rather than through its `get_usage`, which makes two
cache round trips per request (`add`, then `incr`): on Redis one script counts and
sets the expiry in a single round trip (`api.redis_counter`), and a refusal that
started nothing can give its start back (`refund`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, lru_cache

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit

from api.clients import client_key
from api.redis_counter import RedisCounter
from coordhub.cache import RedisCache
from operations.exceptions import RateLimitUnavailable

logger = logging.getLogger(__name__)

START = "start"
READ = "read"
ATTEMPT = "attempt"
WINDOW_SECONDS = 60
# As django-ratelimit: a counter outlives its window by a few seconds, never less.
EXPIRY_SECONDS = WINDOW_SECONDS + ratelimit.EXPIRATION_FUDGE


@dataclass(frozen=True)
class Usage:
    """A client's standing in one limit's current window."""

    group: str
    limit: int
    count: int
    reset_seconds: int
    key: str = ""  # the counter's cache key, so a refund gives back to the window it spent

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        """The IETF draft RateLimit-Policy and RateLimit fields."""
        return {
            "RateLimit-Policy": f'"{self.group}";q={self.limit};w={WINDOW_SECONDS}',
            "RateLimit": f'"{self.group}";r={self.remaining};t={self.reset_seconds}',
        }


def limit_per_minute(group: str) -> int:
    config = settings.COORDHUB
    return {
        START: config.requests_per_minute,
        READ: config.read_requests_per_minute,
        ATTEMPT: config.start_attempts_per_minute,
    }[group]


def enabled() -> bool:
    return settings.COORDHUB.enable_rate_limiting


def spend(request: HttpRequest, group: str) -> Usage | None:
    """Count this request against the client's `group` limit; None while limits are off.

    Raises RateLimitUnavailable when the cache behind the counters fails.
    """
    return spend_together(request, group)[0]


def spend_together(request: HttpRequest, *groups: str) -> list[Usage | None]:
    """Count this request against several of the client's limits in one cache round trip."""
    if not enabled():
        return [None] * len(groups)
    windows = [Window.of(request, group) for group in groups]
    counts = cache_call(lambda: counter().add([window.key for window in windows]))
    return [window.usage(count) for window, count in zip(windows, counts, strict=True)]


def peek(request: HttpRequest, group: str) -> Usage | None:
    """Return the client's standing without counting a request."""
    if not enabled():
        return None
    window = Window.of(request, group)
    return replace(window.usage(cache_call(lambda: counter().get(window.key))), key="")


def refund(usage: Usage | None) -> Usage | None:
    """Give back what `usage` spent, for a request that started nothing; return the standing.

    A cache failure here is logged and otherwise ignored: the start stays spent.
    """
    if usage is None or not usage.key:
        return usage
    try:
        count = counter().refund(usage.key)
    except Exception as exc:  # any cache client error: keep the request's answer
        logger.warning("Rate-limit refund failed: %r", exc)
        return usage
    return replace(usage, count=count, key="")  # given back once, never twice


@dataclass(frozen=True)
class Window:
    """One limit's current window for one client: django-ratelimit's key and end."""

    group: str
    limit: int
    key: str
    ends_at: int

    @classmethod
    def of(cls, request: HttpRequest, group: str) -> Window:
        limit = limit_per_minute(group)
        value = client_key(request)
        ends_at = ratelimit._get_window(value, WINDOW_SECONDS)
        return cls(group, limit, window_key(group, limit, value, ends_at), ends_at)

    def usage(self, count: int | None) -> Usage:
        if count is None:
            logger.warning("Rate-limit cache gave no count for %s", self.group)
            raise RateLimitUnavailable()
        # The window still counts during its last second (time_left == 0), so a client
        # may succeed only time_left + 1 seconds from now. A request counted just before
        # its window ended and finished just after sees time_left == -1: the window it
        # was counted in is over, so the next request may come at once.
        time_left = self.ends_at - int(ratelimit.time.time())
        return Usage(self.group, self.limit, int(count), max(time_left, 0) + 1, self.key)


@lru_cache(maxsize=4096)
def window_key(group: str, limit: int, value: str, ends_at: int) -> str:
    """django-ratelimit's key for one window, hashed once per client and window."""
    return ratelimit._make_cache_key(group, ends_at, f"{limit}/m", value, ALL)


def cache_call[T](call: Callable[[], T]) -> T:
    """Run a counter call; any cache client error means the counters cannot be trusted."""
    try:
        return call()
    except Exception as exc:
        logger.warning("Rate-limit cache failed: %r", exc)
        raise RateLimitUnavailable() from exc


class CacheCounter:
    """Counters through Django's cache API: in process for local memory, any cache else."""

    def __init__(self, backend: BaseCache) -> None:
        self.cache = backend

    def add(self, keys: list[str]) -> list[int]:
        return [self.add_one(key) for key in keys]

    def add_one(self, key: str) -> int:
        try:
            return self.cache.incr(key)
        except ValueError:  # no counter yet in this window
            if self.cache.add(key, 1, EXPIRY_SECONDS):
                return 1
            return self.cache.incr(key)  # another request created it first

    def get(self, key: str) -> int | None:
        return self.cache.get(key, 0)

    def refund(self, key: str) -> int:
        try:
            if self.cache.get(key, 0) > 0:
                return self.cache.decr(key)
        except ValueError:  # the window expired meanwhile: nothing to give back
            pass
        return 0


@cache
def counter() -> CacheCounter | RedisCounter:
    """The counter for the default cache, made once: the one-round-trip one for Redis.

    Django makes a cache object per request context, which under ASGI is one per
    request, and making a django-redis one cost as much as the count itself (row 4 of
    `make bench`). A counter holds no per-request state, so it keeps a cache object
    of its own for the process, made afresh only when the CACHES setting changes.
    """
    backend = caches.create_connection(DEFAULT_CACHE_ALIAS)
    if isinstance(backend, RedisCache):
        return RedisCounter(backend, EXPIRY_SECONDS)
    return CacheCounter(backend)


@receiver(setting_changed)
def forget_counter(*, setting: str, **kwargs: object) -> None:
    if setting == "CACHES":
        counter.cache_clear()
