"""The templates' report shapes, computed from the slot table and lifetime counters.

Each section carries the templates' field names (which their Node and React
clients read) beside coordhub's own; neither set is renamed for the other.
"""

from __future__ import annotations

import math
import platform
from datetime import datetime
from typing import Any

import django
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count
from django.utils import timezone

from operations import counters, line
from operations.models import Operation, Slot, Status, WorkerHeartbeat, iso
from operations.slots import count_live_holders

REDIS_CACHE_BACKEND = "coordhub.cache.RedisCache"
# coordhub never retires a slot for errors and keeps no per-slot error count; the templates'
# typed clients need numbers, so both are reported as 0 ("no limit", "none counted").
NO_ERROR_LIMIT = 0
NO_ERROR_COUNT = 0


def status_counts() -> dict[str, int]:
    counted = dict(Operation.objects.values_list("status").annotate(n=Count("id")))
    return {status.value: counted.get(status.value, 0) for status in Status}


def slot_usage() -> tuple[int, int]:
    """Return (held, total) for the configured slot count."""
    limit = settings.COORDHUB.max_concurrent_operations
    return count_live_holders(timezone.now()), limit


def live_holder_ids(now: datetime) -> list[str]:
    """Ids of the operations holding a slot under a live lease, in slot order."""
    return [str(slot.operation_id) for slot in Slot.objects.held() if slot.is_live(now)]


def percentage(part: float, whole: float) -> float:
    """`part` of `whole` as a percentage within 0-100 (0 of nothing is 0)."""
    return min(100.0, part * 100 / whole) if whole else 0.0


def success_percentage(counts: dict[str, int]) -> float:
    """Completed among finished operations, as a percentage; 100 before any finished."""
    ratio = counters.success_rate(counts)
    return 100.0 if ratio is None else ratio * 100  # no failures yet; typed clients never see null


def rate_limit_sentence() -> str:
    """The templates' `rate_limit` sentence, e.g. "10 requests per minute per client"."""
    config = settings.COORDHUB
    if not config.enable_rate_limiting:
        return "rate limiting disabled"
    return f"{config.requests_per_minute} requests per minute per client"


def enforcement() -> str:
    """Say whom the start limit counts, as `api.clients.client_key` keys it."""
    if not settings.COORDHUB.enable_rate_limiting:
        return "disabled"
    return "per client: the signed-in user, else the client address (IPv6 by /64)"


def limiter_storage() -> str:
    """Where the rate-limit counters live: "redis" or "memory"."""
    backend = settings.CACHES["default"]["BACKEND"]
    return "redis" if backend == REDIS_CACHE_BACKEND else "memory"


def health_figures() -> dict[str, Any]:
    """The templates' health fields; the active count is null while the database is down."""
    try:
        active: int | None = count_live_holders(timezone.now())
    except DatabaseError:  # the database check names the outage; health still answers
        active = None
    return {
        "active_operations": active,
        "max_concurrent_operations": settings.COORDHUB.max_concurrent_operations,
        "rate_limit": rate_limit_sentence(),
    }


# The waits the percentiles are taken over: the most recent ones.
WAIT_SAMPLE = 500


def nearest_rank(ordered: list[float], percent: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def line_figures() -> dict[str, Any]:
    """The line now, and what waiting has cost lately: counts, reasons, wait percentiles."""
    config = settings.COORDHUB
    waiting = Operation.objects.waiting()
    by_reason = dict(waiting.values_list("wait_reason").annotate(n=Count("id")))
    recent = (
        Operation.objects.exclude(waited_seconds=None)
        .order_by("-created_at")
        .values_list("waited_seconds", flat=True)[:WAIT_SAMPLE]
    )
    waits = sorted(recent)
    return {
        "waiting": sum(by_reason.values()),
        "waiting_by_reason": by_reason,
        "max_waiting_operations": config.max_waiting_operations,
        "max_waiting_per_client": config.max_waiting_per_client,
        "max_slots_per_client": line.share(),
        "total_waits": counters.snapshot()[counters.WAITS],
        "wait_seconds": {
            "sample_size": len(waits),
            "p50": nearest_rank(waits, 50),
            "p95": nearest_rank(waits, 95),
            "max": waits[-1] if waits else None,
        },
    }


def performance() -> dict[str, Any]:
    config = settings.COORDHUB
    now = timezone.now()
    total = config.max_concurrent_operations
    holders = live_holder_ids(now)
    held = len(holders)
    counts = status_counts()
    return {
        "rate_limiting": {
            "enabled": config.enable_rate_limiting,
            "requests_per_minute": config.requests_per_minute,
            "enforcement": enforcement(),
            "read_requests_per_minute": config.read_requests_per_minute,
            "window_seconds": 60,
            "backend": settings.CACHES["default"]["BACKEND"],
        },
        "concurrency_control": {
            "max_concurrent": total,
            "currently_active": held,
            "active_operation_ids": holders,
            "max_concurrent_operations": total,
            "active_operations": held,
            "available_slots": max(0, total - held),
            "utilisation": held / total if total else 0.0,
            "queued": counts[Status.QUEUED],
            "running": counts[Status.RUNNING],
            "line": line_figures(),
        },
        "resource_management": {
            "cleanup_interval": config.cleanup_interval_seconds,
            "automatic_cleanup": True,  # the worker's maintenance thread sweeps
            "slot_lease_seconds": config.slot_lease_seconds,
            "operation_timeout_seconds": config.operation_timeout_seconds,
            "cleanup_interval_seconds": config.cleanup_interval_seconds,
            "operation_retention_days": config.operation_retention_days,
        },
        "polling": {
            "initial_interval_ms": config.poll_initial_interval_ms,
            "max_interval_ms": config.poll_max_interval_ms,
            "multiplier": config.poll_multiplier,
            "max_attempts": config.poll_max_attempts,
            "ladder_ms": list(config.poll_ladder_ms),
        },
        "system_info": {
            "timestamp": now.isoformat(),
            "limiter_storage": limiter_storage(),
            # Limits are enforced in the request pipeline (api.pipeline, api.limits), not a
            # middleware class; the templates' flag means "limits are being enforced".
            "middleware_active": config.enable_rate_limiting,
            "profile": config.profile,
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "database": connection.vendor,
            "workers_alive": WorkerHeartbeat.alive().count(),
        },
    }


def slot_status(slot: Slot, now: datetime, limit: int) -> str:
    """The templates' resource status: in_use, expired, retired or available."""
    if slot.is_live(now):
        return "in_use"
    if slot.operation_id is not None:
        return "expired"
    if slot.number > limit:
        return "retired"
    return "available"


def slot_details(slot: Slot, now: datetime, limit: int) -> dict[str, Any]:
    """One slot as the templates' `resource_details` entry, with coordhub's fields after."""
    held_since = slot.claimed_at if slot.operation_id is not None else None
    return {
        "resource_id": f"slot-{slot.number}",
        "status": slot_status(slot, now, limit),
        "allocated_at": iso(held_since),
        "age_seconds": (now - held_since).total_seconds() if held_since else 0,
        "error_count": NO_ERROR_COUNT,
        "slot": slot.number,
        "operation_id": str(slot.operation_id) if slot.operation_id else None,
        "lease_version": slot.lease_version,
        "claimed_at": iso(slot.claimed_at),
        "lease_expires_at": iso(slot.lease_expires_at),
        "expired": slot.operation_id is not None and not slot.is_live(now),
        "in_service": slot.number <= limit,
    }


def resource_pool() -> dict[str, Any]:
    config = settings.COORDHUB
    now = timezone.now()
    total = config.max_concurrent_operations
    slots = list(Slot.objects.all())
    held = sum(1 for slot in slots if slot.is_live(now))
    # A lowered limit drains: retired slots still held count until their operations end.
    draining = sum(1 for slot in slots if slot.number > total and slot.operation_id is not None)
    counts = counters.snapshot()
    return {
        "pool_configuration": {
            "max_resources": total,
            "cleanup_interval": config.cleanup_interval_seconds,
            "resource_timeout": config.operation_timeout_seconds,
            "max_errors_per_resource": NO_ERROR_LIMIT,
            "max_size": total,
            "lease_seconds": config.slot_lease_seconds,
            "operation_timeout_seconds": config.operation_timeout_seconds,
            "cleanup_interval_seconds": config.cleanup_interval_seconds,
        },
        "current_status": {
            "active_resources": held,
            "total_resources": total + draining,
            "available_capacity": max(0, total - held),
            "utilization_percentage": percentage(held, total),
            "in_use": held,
            "available": max(0, total - held),
            "utilisation": held / total if total else 0.0,
        },
        "lifetime_metrics": {
            "total_allocations": counts[counters.ALLOCATIONS],
            "total_releases": counts[counters.RELEASES],
            "total_timeouts": counts[counters.TIMEOUTS],
            "total_errors": counts[counters.FAILED],
            "success_rate": success_percentage(counts),
            **{name: counts[name] for name in counters.NAMES},
        },
        "resource_details": [slot_details(slot, now, total) for slot in slots],
        "line": line_figures(),
    }
