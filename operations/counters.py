"""Lifetime counters kept in the database, so they survive restarts and add up across processes."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from operations.models import Counter

ALLOCATIONS = "allocations"
RELEASES = "releases"
REJECTIONS = "rejections"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TIMEOUTS = "timeouts"
RECLAIMED = "reclaimed"
HELD_SECONDS = "held_seconds"

NAMES = (
    ALLOCATIONS,
    RELEASES,
    REJECTIONS,
    COMPLETED,
    FAILED,
    CANCELLED,
    TIMEOUTS,
    RECLAIMED,
    HELD_SECONDS,
)


def add(name: str, amount: int = 1) -> None:
    """Add `amount` to the counter `name` in one atomic statement."""
    if Counter.objects.filter(name=name).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            Counter.objects.create(name=name, value=amount)
    except IntegrityError:  # another process created it first
        Counter.objects.filter(name=name).update(value=F("value") + amount)


def snapshot() -> dict[str, int]:
    """Return every counter, zero where nothing was counted yet."""
    stored = dict(Counter.objects.values_list("name", "value"))
    return {name: stored.get(name, 0) for name in NAMES}


def success_rate(counts: dict[str, int]) -> float | None:
    """Completed among finished operations, or None before any finished."""
    finished = counts[COMPLETED] + counts[FAILED] + counts[CANCELLED]
    return counts[COMPLETED] / finished if finished else None
