"""Health checks: each answers None when its part works, else a sentence saying why not."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection

from operations.models import WorkerHeartbeat, liveness_window


def check_database() -> str | None:
    """Run a trivial query on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means the database is down for us
        return f"The database did not answer: {exc}".strip()
    return None


def check_cache() -> str | None:
    """Write and read back a short-lived key in the cache holding rate-limit counters."""
    key, value = "coordhub:health", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=10)
        answered = cache.get(key)
    except Exception as exc:  # a cache client raises its own connection errors
        return f"The cache did not answer: {exc}".strip()
    if answered != value:
        return "The cache did not return the value just written to it."
    return None


def check_workers() -> str | None:
    """Look for a worker that recorded a heartbeat within one slot lease."""
    window = liveness_window()
    try:
        alive = WorkerHeartbeat.alive(within=window).exists()
    except Exception:  # the database check reports the outage itself
        return "Worker liveness is unknown while the database does not answer."
    if not alive:
        return f"No worker has been seen in the last {window.seconds} s; operations will not run."
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "cache": check_cache,
    "workers": check_workers,
}


def run_checks(*, with_errors: bool) -> dict[str, dict[str, str]]:
    """Run every check and return `{name: {"status": "up"|"down", ...}}`.

    With `with_errors`, a failed check carries its sentence as `error`; without,
    only its status: a driver's message can name hosts, users and versions.
    """
    results = {}
    for name, check in CHECKS.items():
        error = check()
        results[name] = {"status": "up"} if error is None else {"status": "down"}
        if error is not None and with_errors:
            results[name]["error"] = error
    return results
