"""Fixtures for the HTTP layer's tests."""

from __future__ import annotations

import django_ratelimit.core
import pytest
from django.test import RequestFactory

from api import limits


@pytest.fixture
def limits_for(configure):
    """Return a function that turns the rate limits on, for anonymous clients, at given figures."""

    def turn_on(**figures: int) -> None:
        configure(enable_rate_limiting=True, allow_anonymous=True, **figures)

    return turn_on


class Clock:
    """A stand-in for django-ratelimit's `time` module that moves only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, limits_on, empty_cache):
    """Freeze django-ratelimit's clock at the start of a fresh window for 127.0.0.1.

    Each test module defines `limits_on`, turning the limits on. Without a frozen
    clock, a burst that straddles the end of a window would find its count reset.
    """
    clock = Clock(float(django_ratelimit.core.time.time()))
    monkeypatch.setattr(django_ratelimit.core, "time", clock)
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")
    clock.now += limits.peek(request, limits.START).reset_seconds + 1
    return clock
