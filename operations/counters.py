"""Lifetime counters kept in the database, so they survive restarts and add up across processes."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import IntegrityError, transaction
from django.db.models import F

from operations.models import Counter

Tally = collections.Counter[str]

ALLOCATIONS = "allocations"
RELEASES = "releases"
REJECTIONS = "rejections"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TIMEOUTS = "timeouts"
RECLAIMED = "reclaimed"
HELD_SECONDS = "held_seconds"
WAITS = "waits"  # starts that joined the line

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
    WAITS,
)


# Additions waiting for the end of the transaction `counted()` opened, if any.
_waiting: ContextVar[Tally | None] = ContextVar("waiting_counter_additions", default=None)


@contextmanager
def counted() -> Iterator[None]:
    """Inside, counter additions wait and are made last, merged and in name order.

    Use inside a transaction that also changes operations or slots: every such
    transaction then locks counter rows last and in one order, so two of them can
    never wait on each other's counters (a deadlock on PostgreSQL).
    """
    if _waiting.get() is not None:  # an outer block makes them
        yield
        return
    waiting: Tally = collections.Counter()
    token = _waiting.set(waiting)
    try:
        yield
    finally:
        _waiting.reset(token)
    for name in sorted(waiting):
        add_now(name, waiting[name])


def add(name: str, amount: int = 1) -> None:
    """Add `amount` to the counter `name`: at once, or last in the `counted()` block."""
    waiting = _waiting.get()
    if waiting is not None:
        waiting[name] += amount
        return
    add_now(name, amount)


def add_now(name: str, amount: int) -> None:
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
