"""The slot table: claim, renew, release and reclaim leases, each fenced by its holder.

A `Hold` names a slot, its holder and the lease version it was claimed at.
Renewal and release act only while all three still match, so a worker that
wakes up late cannot free or extend a slot that has passed to someone else.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, connections, transaction
from django.db.models import Exists, QuerySet
from django.utils import timezone

from operations import counters, outcomes
from operations.estimates import expected_free_in
from operations.exceptions import NoFreeSlot
from operations.models import Operation, Slot


@dataclass(frozen=True)
class Hold:
    """A slot as held by one operation under one lease version: the fence token."""

    slot_number: int
    operation_id: uuid.UUID
    lease_version: int


def ensure_slots(limit: int) -> None:
    """Create the missing slot rows 1..limit and drop free rows above it."""
    existing = set(Slot.objects.values_list("number", flat=True))
    missing = [Slot(number=number) for number in range(1, limit + 1) if number not in existing]
    Slot.objects.bulk_create(missing, ignore_conflicts=True)
    # Held rows above the limit stay until released: a lower limit never evicts running work.
    Slot.objects.retired(limit).filter(operation__isnull=True).delete()


def claim_slot(operation: Operation, *, limit: int, lease_seconds: int) -> Hold:
    """Give `operation` a slot under a fresh lease, or raise NoFreeSlot.

    The operation's row may come later in the same transaction: the foreign key is
    checked at commit.
    """
    # No savepoint: admission's transaction rolls back whole on a refusal. The refusal is
    # raised after the block, so that it does not mark a caller's own transaction broken.
    with transaction.atomic(savepoint=False):
        claimed = take_a_slot(operation, limit, lease_seconds)
    if isinstance(claimed, NoFreeSlot):
        raise claimed
    return claimed


def take_a_slot(operation: Operation, limit: int, lease_seconds: int) -> Hold | NoFreeSlot:
    """Take the first claimable slot for `operation`, or return the refusal."""
    now = timezone.now()
    slot = first_claimable(limit, now)
    if slot is None:
        ensure_slots(limit)  # the table may be new, or the limit raised
        slot = first_claimable(limit, now)
    if slot is None:
        return rejected(limit, now)
    if slot.draining and count_live_holders(now, lock=True) >= limit:
        # A lowered limit is draining: old and new holders together stay within it.
        return rejected(limit, now)
    if slot.operation_id is not None:
        displace(slot)
    version = slot.lease_version + 1
    taken = Slot.objects.filter(number=slot.number, lease_version=slot.lease_version).update(
        operation_id=operation.id,
        lease_version=version,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        claimed_at=now,
    )
    if not taken:
        return rejected(limit, now)
    return Hold(slot.number, operation.id, version)


def first_claimable(limit: int, now: datetime) -> Slot | None:
    """Lock and return the lowest-numbered slot that may be claimed.

    In the same query, `draining` says whether slots above a lowered limit are still
    held, so that the usual claim costs one round trip.
    """
    sql, params, now_at = claimable_query(connection.alias, limit)
    params = [*params]
    params[now_at] = connection.ops.adapt_datetimefield_value(now)
    return next(iter(Slot.objects.raw(sql, params)), None)


def claimable(limit: int, now: datetime) -> QuerySet[Slot]:
    return (
        Slot.objects.in_service(limit)
        .claimable(now)
        .annotate(draining=Exists(Slot.objects.retired(limit).held()))
        # SKIP LOCKED: a slot being claimed by another request must not block the claim of a
        # free one. (SQLite ignores it; there the IMMEDIATE transaction serialises claims.)
        .select_for_update(skip_locked=True)
        .order_by("number")[:1]
    )


@functools.lru_cache(maxsize=16)
def claimable_query(alias: str, limit: int) -> tuple[str, tuple, int]:
    """The SQL of `claimable`, compiled once per database and limit: (sql, params, where now goes).

    Every start runs it; through the ORM its compiling cost more than the database's
    work (0.4 ms a start on PostgreSQL).
    """
    marker = datetime(1970, 1, 1, tzinfo=UTC)
    with transaction.atomic(using=alias, savepoint=False):  # select_for_update compiles only in one
        sql, params = claimable(limit, marker).query.get_compiler(alias).as_sql()
    adapted = connections[alias].ops.adapt_datetimefield_value(marker)
    (now_at,) = [index for index, value in enumerate(params) if value == adapted]
    return sql, tuple(params), now_at


def count_live_holders(now: datetime, *, lock: bool = False) -> int:
    """Count the slots held under a live lease; with `lock`, as of every claim before.

    Locking every row, in number order, serialises the claims of a draining pool:
    on PostgreSQL a locked read returns the latest committed version of each row it
    waited for, where a filter on holders would have been judged on an older
    snapshot and missed a slot claimed meanwhile.
    """
    if not lock:
        return sum(1 for slot in Slot.objects.held() if slot.is_live(now))
    rows = Slot.objects.select_for_update().order_by("number")
    return sum(1 for slot in rows if slot.is_live(now))


def rejected(limit: int, now: datetime) -> NoFreeSlot:
    """Build the rejection, estimating when a slot may next come free."""
    return NoFreeSlot(limit, expected_free_in(now))


def renew(hold: Hold, lease_seconds: int) -> bool:
    """Extend the lease if the slot is still this holder's; say whether it was."""
    until = timezone.now() + timedelta(seconds=lease_seconds)
    held = Slot.objects.held_by(hold.operation_id, hold.lease_version)
    return held.filter(number=hold.slot_number).update(lease_expires_at=until) == 1


def release(hold: Hold) -> bool:
    """Free the slot if it is still this holder's; say whether it was.

    The slot table alone: `operations.line.release` also hands the slot to the line.
    """
    slot = Slot.objects.filter(number=hold.slot_number).values_list("claimed_at", flat=True)
    claimed_at = slot.first()
    held = Slot.objects.held_by(hold.operation_id, hold.lease_version)
    if not held.filter(number=hold.slot_number).vacate():
        return False
    counters.add(counters.RELEASES)
    if claimed_at is not None:
        counters.add(counters.HELD_SECONDS, round((timezone.now() - claimed_at).total_seconds()))
    return True


def holds_of(operation_id: uuid.UUID) -> list[Hold]:
    rows = Slot.objects.filter(operation_id=operation_id).values_list("number", "lease_version")
    return [Hold(number, operation_id, version) for number, version in rows]


def reclaim(slot: Slot, now: datetime) -> bool:
    """Free `slot` if it is still held under the lease that ran out, failing its orphan.

    Say whether it did. Call inside a transaction; `operations.line.reclaim_expired`
    runs it for every expired slot and hands each freed one to the line.
    """
    fenced = Slot.objects.filter(
        number=slot.number, lease_version=slot.lease_version, lease_expires_at__lt=now
    )
    if not fenced.vacate():
        return False
    displace(slot)
    return True


def displace(slot: Slot) -> None:
    """Fail the operation of a slot whose lease ran out, as its slot is taken from it."""
    outcomes.fail_orphan(slot.operation_id, slot.lease_expires_at)
    counters.add(counters.RECLAIMED)
