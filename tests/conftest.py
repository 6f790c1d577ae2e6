from __future__ import annotations

import dataclasses
import os

import pytest


def service_url(variable: str, name: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.fail(
            f"{variable} is unset: {name} tests need the server that `make test` starts "
            "(run the suite with `make test`, or export the URL of a throwaway server).",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the throwaway Redis server started for this run."""
    return service_url("COORDHUB_TEST_REDIS_URL", "Redis")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the throwaway PostgreSQL server started for this run."""
    return service_url("COORDHUB_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def configure(settings):
    """Change coordhub configuration values for one test."""

    def apply(**values: object) -> None:
        settings.COORDHUB = dataclasses.replace(settings.COORDHUB, **values)

    return apply


@pytest.fixture(autouse=True)
def empty_cache():
    """Start every test with empty rate-limit windows."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
