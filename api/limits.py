"""Per-client rate limits through django-ratelimit, with honest remaining/reset figures."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from api.clients import client_key
from operations.exceptions import RateLimitUnavailable

logger = logging.getLogger(__name__)

START = "start"
READ = "read"


@dataclass(frozen=True)
class Usage:
    """A client's standing in one limit's current window."""

    group: str
    limit: int
    count: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        """The IETF draft RateLimit-Policy and RateLimit fields."""
        return {
            "RateLimit-Policy": f'"{self.group}";q={self.limit};w=60',
            "RateLimit": f'"{self.group}";r={self.remaining};t={self.reset_seconds}',
        }


def limit_per_minute(group: str) -> int:
    config = settings.COORDHUB
    return config.requests_per_minute if group == START else config.read_requests_per_minute


def enabled() -> bool:
    return settings.COORDHUB.enable_rate_limiting


def spend(request: HttpRequest, group: str) -> Usage | None:
    """Count this request against the client's `group` limit; None while limits are off.

    Raises RateLimitUnavailable when the cache behind the counters fails.
    """
    if not enabled():
        return None
    return usage(request, group, increment=True)


def peek(request: HttpRequest, group: str) -> Usage | None:
    """Return the client's standing without counting a request."""
    if not enabled():
        return None
    return usage(request, group, increment=False)


def usage(request: HttpRequest, group: str, *, increment: bool) -> Usage:
    limit = limit_per_minute(group)
    key = client_key(request)
    try:
        found = get_usage(
            request,
            group=group,
            key=lambda group, request: key,
            rate=f"{limit}/m",
            increment=increment,
        )
    except Exception as exc:  # any cache client error: the counters cannot be trusted
        logger.warning("Rate-limit cache failed: %r", exc)
        raise RateLimitUnavailable() from exc
    if found is None or found["limit"] != limit:
        # django-ratelimit reports a cache that answered nothing as limit 0.
        logger.warning("Rate-limit cache gave no count for %s: %r", group, found)
        raise RateLimitUnavailable()
    # django-ratelimit's window still counts during its last second (time_left == 0), so a
    # client may succeed only time_left + 1 seconds from now. A request that was counted
    # just before its window ended and finished just after sees time_left == -1: the window
    # it was counted in is over, so the next request may come at once (Retry-After 1).
    return Usage(group, limit, found["count"], max(found["time_left"], 0) + 1)
