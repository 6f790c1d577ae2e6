"""SQLite's side of the change feed: notice other connections' commits, then find what changed.

`PRAGMA data_version` changes on a connection when any other connection commits to
the database file. One connection per web process asks it a few times a second,
whatever the number of waiters, and only after it changed reads the operations
that can have changed (active, or created or finished since the last look) and
the slot holders, and compares them with what it saw before.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from operations.feed.hub import EVERYTHING, Change
from operations.models import ACTIVE_STATUSES, Operation, Slot

if TYPE_CHECKING:
    from operations.feed.hub import ChangeFeed

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.25
# Clocks of other processes and commit delays: look back a little further than the last look.
LOOK_BACK = timedelta(seconds=5)

Seen = dict[uuid.UUID, tuple]
# As on PostgreSQL (migration 0004): these make a change of state, the others of progress.
STATE_FIELDS = ("status", "cancel_requested")
PROGRESS_FIELDS = ("progress", "message")


def detect(feed: ChangeFeed) -> None:
    """Watch the database until the feed stops; an error (a locked file) is retried."""
    while not feed.stopping.is_set():
        try:
            watch(feed)
        except DatabaseError as exc:
            logger.warning("Change feed lost the database (%s); retrying.", exc)
        except Exception:  # the feed must outlive any surprise: its waiters depend on it
            logger.exception("Change feed failed; retrying.")
        close_old_connections()
        feed.stopping.wait(1)
    connection.close()


def watch(feed: ChangeFeed) -> None:
    version = data_version()
    since = timezone.now() - LOOK_BACK
    operations, holders = operations_seen(since), slot_holders()
    feed.publish([EVERYTHING])
    while not feed.stopping.wait(CHECK_SECONDS):
        current = data_version()
        if current == version:
            continue
        version, looked_at = current, timezone.now()
        now_seen, now_holders = operations_seen(since), slot_holders()
        changes = list(differences(operations, now_seen))
        if now_holders != holders:
            changes.append(Change())
        operations, holders, since = now_seen, now_holders, looked_at - LOOK_BACK
        if changes:
            feed.publish(changes)


def data_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        return cursor.fetchone()[0]


def operations_seen(since) -> Seen:
    """The operations that can have changed lately, each as its STATE_FIELDS then progress."""
    fields = ("id", *STATE_FIELDS, *PROGRESS_FIELDS)
    # One query per index: asked with OR, SQLite walks the whole table instead.
    active, created, finished = (
        Operation.objects.filter(condition).values_list(*fields).order_by()
        for condition in (
            Q(status__in=ACTIVE_STATUSES),
            Q(created_at__gte=since),
            Q(finished_at__gte=since),
        )
    )
    rows = active.union(created, finished).order_by()
    return {operation_id: tuple(fields) for operation_id, *fields in rows}


def slot_holders() -> dict[int, uuid.UUID | None]:
    return dict(Slot.objects.values_list("number", "operation_id"))


def differences(before: Seen, after: Seen) -> Iterator[Change]:
    """A change for each operation that appeared, changed, or left the window while active."""
    for operation_id, fields in after.items():
        previous = before.get(operation_id)
        if previous != fields:
            state = previous is None or previous[: len(STATE_FIELDS)] != fields[: len(STATE_FIELDS)]
            yield Change(operation_id, state=state)
    for operation_id in before.keys() - after.keys():
        if before[operation_id][0] in ACTIVE_STATUSES:
            yield Change(operation_id)  # ended (or deleted) out of sight
