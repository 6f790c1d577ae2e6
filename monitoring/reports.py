"""The seed's report shapes, computed from the slot table and lifetime counters."""

from __future__ import annotations

import platform
from typing import Any

import django
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from operations import counters
from operations.models import Operation, Slot, Status, WorkerHeartbeat, iso
from operations.slots import count_live_holders


def status_counts() -> dict[str, int]:
    counted = dict(Operation.objects.values_list("status").annotate(n=Count("id")))
    return {status.value: counted.get(status.value, 0) for status in Status}


def slot_usage() -> tuple[int, int]:
    """Return (held, total) for the configured slot count."""
    limit = settings.COORDHUB.max_concurrent_operations
    return count_live_holders(timezone.now()), limit


def performance() -> dict[str, Any]:
    config = settings.COORDHUB
    held, total = slot_usage()
    counts = status_counts()
    return {
        "rate_limiting": {
            "enabled": config.enable_rate_limiting,
            "requests_per_minute": config.requests_per_minute,
            "read_requests_per_minute": config.read_requests_per_minute,
            "window_seconds": 60,
            "backend": settings.CACHES["default"]["BACKEND"],
        },
        "concurrency_control": {
            "max_concurrent_operations": total,
            "active_operations": held,
            "available_slots": max(0, total - held),
            "utilisation": held / total if total else 0.0,
            "queued": counts[Status.QUEUED],
            "running": counts[Status.RUNNING],
        },
        "resource_management": {
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
            "profile": config.profile,
            "python_version": platform.python_version(),
            "django_version": django.get_version(),
            "database": connection.vendor,
            "workers_alive": WorkerHeartbeat.alive().count(),
            "timestamp": timezone.now().isoformat(),
        },
    }


def resource_pool() -> dict[str, Any]:
    config = settings.COORDHUB
    held, total = slot_usage()
    counts = counters.snapshot()
    now = timezone.now()
    return {
        "pool_configuration": {
            "max_size": total,
            "lease_seconds": config.slot_lease_seconds,
            "operation_timeout_seconds": config.operation_timeout_seconds,
            "cleanup_interval_seconds": config.cleanup_interval_seconds,
        },
        "current_status": {
            "in_use": held,
            "available": max(0, total - held),
            "utilisation": held / total if total else 0.0,
        },
        "lifetime_metrics": {
            **{name: counts[name] for name in counters.NAMES},
            "success_rate": counters.success_rate(counts),
        },
        "resource_details": [
            {
                "slot": slot.number,
                "operation_id": str(slot.operation_id) if slot.operation_id else None,
                "lease_version": slot.lease_version,
                "claimed_at": iso(slot.claimed_at),
                "lease_expires_at": iso(slot.lease_expires_at),
                "expired": slot.operation_id is not None and not slot.is_live(now),
                "in_service": slot.number <= total,
            }
            for slot in Slot.objects.all()
        ],
    }
