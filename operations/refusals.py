"""Starts refused, counted per minute and reason: the charts' refused series.

A refusal leaves no operation behind, so each one adds to its minute's row of
`RefusalCount`. Counting is a side record: it must never change the refusal's
answer, so a database failure here is logged and otherwise ignored.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from operations.models import RefusalCount

logger = logging.getLogger(__name__)

# Kept a little longer than the longest chart (a day) shows.
RETENTION = timedelta(days=2)


def record(reason: str, at: datetime | None = None) -> None:
    """Count one start refused for `reason` (an error code) in the minute of `at` (now)."""
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    try:
        # A savepoint inside a caller's transaction: a failure here must not break it.
        with transaction.atomic():
            add_one(minute, reason)
    except DatabaseError as exc:
        logger.warning("Could not count a start refused for %s: %r", reason, exc)


def add_one(minute: datetime, reason: str) -> None:
    """Add one to the row of `minute` and `reason` in one statement; create it on a miss."""
    row = RefusalCount.objects.filter(minute=minute, reason=reason)
    if row.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            RefusalCount.objects.create(minute=minute, reason=reason, count=1)
    except IntegrityError:  # another process created it first
        row.update(count=F("count") + 1)


def prune(now: datetime | None = None) -> int:
    """Delete the rows older than RETENTION; return how many went."""
    deleted, _ = RefusalCount.objects.filter(
        minute__lt=(now or timezone.now()) - RETENTION
    ).delete()
    return deleted
