from __future__ import annotations

import dataclasses
import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the tests of the other database: each runs in its own pass of `make test`.

    Deselected, not skipped: the PostgreSQL pass runs the `postgresql` tests, and it
    fails when its server cannot start.
    """
    from django.db import connection

    other = "sqlite" if connection.vendor == "postgresql" else "postgresql"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


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
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Test on a SQLite file, as coordhub runs, not Django's shared-cache in-memory database.

    In shared-cache mode SQLite locks whole tables between connections and answers
    "database table is locked" at once, ignoring the busy timeout, so a test that
    reads while a worker thread writes could fail where coordhub itself would wait.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == settings.SQLITE_ENGINE:
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session", autouse=True)
def change_feed_stopped_before_the_database_goes(django_db_setup, django_db_blocker):
    """Stop the process's change feed, if a test started it, before the test database is dropped.

    Its listener holds a connection of its own, which would keep PostgreSQL from
    dropping the database.
    """
    yield
    from operations.feed import stop_process_feed

    stop_process_feed()


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
        current = settings.COORDHUB
        every_slot = current.max_slots_per_client == current.max_concurrent_operations
        if "max_concurrent_operations" in values and every_slot:
            # The testing profile's share is every slot, however many there are.
            values.setdefault("max_slots_per_client", values["max_concurrent_operations"])
        settings.COORDHUB = dataclasses.replace(current, **values)

    return apply


@pytest.fixture(autouse=True)
def empty_cache():
    """Start every test with empty rate-limit windows."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def report_kind():
    """A second registered kind, "report", to filter by."""
    from django import forms

    from operations.kinds import register, unregister

    class ReportParams(forms.Form):
        pages = forms.IntegerField(required=False)

    register("report", ReportParams, "A report.")(lambda context, **params: None)
    yield "report"
    unregister("report")
