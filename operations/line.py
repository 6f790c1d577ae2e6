"""The line: starts that chose to wait for a slot, and the handover of every slot that frees.

A start that finds no slot it may take (the pool is full, or its client holds
its share) and asked to wait joins the line as `waiting`: it holds no slot and
no worker. Whenever a slot frees (an operation ends, is cancelled, its lease is
reclaimed, staff release it) the same transaction gives every free slot to the
next eligible waiting operation and enqueues it, so a freed slot never sits idle
while an eligible operation waits. The periodic sweep does the same, should
anything have freed a slot some other way.

Order: an operation staff moved to the front first (the latest move first);
then round-robin between clients, the client given a slot least recently first
(`ClientTurn`); FIFO within a client. An operation whose client holds its share
of the slots, or whose kind or concurrency key is at its cap, is passed over
until one of those slots frees.

Joins, handovers and every claim that must count a client's slots run under one
lock (`serialise`): a transaction-level advisory lock on PostgreSQL, the
IMMEDIATE write transaction itself on SQLite. Holders are counted and slots
claimed under it, so every share and cap holds at every instant across
processes and two handovers never pick the same waiting operation. A start that
takes it not (it may not wait, and no share or cap applies to it) changes no
count a cap reads. Whoever takes it takes it before any slot or operation row
(cancelling, finishing, force-releasing included), so that no two transactions
can each hold what the other waits for. Whoever takes it takes it
before any slot row, so lock order is the same everywhere.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from operations import counters, enqueueing, slots
from operations.estimates import expected_free_in
from operations.exceptions import (
    ClientShareFull,
    KeyCapFull,
    KindCapFull,
    LineFull,
    NoFreeSlot,
    UnknownKind,
)
from operations.kinds import Kind, get_kind
from operations.models import ClientTurn, Operation, OperationQuerySet, Slot, Status

LOCK_KEY = 0x636F6F7264687562  # "coordhub": the one advisory lock of the line
WAITING_MESSAGE = "Waiting for a free slot"
QUEUED_MESSAGE = "Queued"


def serialise() -> None:
    """Take the line's lock until the end of the current transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


@dataclass
class Holders:
    """What holds the slots as of one moment: by client, kind and key.

    A holder whose lease ran out still counts until its slot is reclaimed: its
    worker may only be slow, and would go on once it renews.
    """

    by_client: Counter[str]
    by_kind: Counter[str]
    by_key: Counter[tuple[str, str]]

    @classmethod
    def now(cls, now: datetime) -> Holders:
        rows = list(
            Slot.objects.held().values_list(
                "operation__client_key", "operation__kind", "operation__concurrency_key"
            )
        )
        return cls(
            Counter(client for client, _, _ in rows),
            Counter(kind for _, kind, _ in rows),
            Counter((kind, key) for _, kind, key in rows if key),
        )

    def add(self, operation: Operation) -> None:
        self.by_client[operation.client_key] += 1
        self.by_kind[operation.kind] += 1
        if operation.concurrency_key:
            self.by_key[operation.kind, operation.concurrency_key] += 1

    def refusal_for(self, operation: Operation, kind: Kind, now: datetime) -> NoFreeSlot | None:
        """Why `operation` may not take a slot now beside these holders, or None."""
        if self.client_full(operation.client_key):
            return ClientShareFull(share(), expected_free_in(now))
        if self.kind_full(kind):
            return KindCapFull(kind.name, kind.max_concurrent, expected_free_in(now))
        if self.key_full(kind, operation.concurrency_key):
            return KeyCapFull(kind.name, kind.max_per_key, expected_free_in(now))
        return None

    def ineligible(self) -> Q:
        """The waiting operations that may not take a slot now: at a share or a cap."""
        blocked = Q(
            client_key__in=[client for client in self.by_client if self.client_full(client)]
        )
        for name in self.by_kind:
            if (kind := registered(name)) and self.kind_full(kind):
                blocked |= Q(kind=name)
        for name, key in self.by_key:
            if (kind := registered(name)) and self.key_full(kind, key):
                blocked |= Q(kind=name, concurrency_key=key)
        return blocked

    def client_full(self, client_key: str) -> bool:
        # A share as large as the pool binds only as the pool does: call that a full pool.
        return shares_bind() and self.by_client[client_key] >= share()

    def kind_full(self, kind: Kind) -> bool:
        return kind.max_concurrent is not None and self.by_kind[kind.name] >= kind.max_concurrent

    def key_full(self, kind: Kind, key: str) -> bool:
        return bool(key) and self.by_key[kind.name, key] >= kind.max_per_key


def registered(name: str) -> Kind | None:
    try:
        return get_kind(name)
    except UnknownKind:
        return None


def share() -> int:
    """Slots one client may hold at once; never more than the slots there are."""
    config = settings.COORDHUB
    return min(config.max_slots_per_client, config.max_concurrent_operations)


def shares_bind() -> bool:
    """Whether one client's share is smaller than the pool (else the pool is the only cap)."""
    return share() < settings.COORDHUB.max_concurrent_operations


def check_caps(operation: Operation, kind: Kind, now: datetime) -> None:
    """Raise why `operation` may not take a slot beside the live holders (under the lock)."""
    refusal = Holders.now(now).refusal_for(operation, kind, now)
    if refusal is not None:
        raise refusal


def join(operation: Operation, refusal: NoFreeSlot) -> None:
    """Insert `operation` (not yet saved) into the line, or raise LineFull (under the lock)."""
    config = settings.COORDHUB
    now = timezone.now()
    waiting = Operation.objects.waiting()
    if waiting[: config.max_waiting_operations].count() >= config.max_waiting_operations:
        raise LineFull(config.max_waiting_operations, "In all,", expected_free_in(now))
    mine = waiting.filter(client_key=operation.client_key)
    if mine[: config.max_waiting_per_client].count() >= config.max_waiting_per_client:
        raise LineFull(config.max_waiting_per_client, "For this client,", expected_free_in(now))
    operation.status = Status.WAITING
    operation.message = WAITING_MESSAGE
    operation.wait_reason = refusal.code
    operation.save(force_insert=True)
    counters.add(counters.WAITS)


def hand_over() -> list[Operation]:
    """Give every free slot to the next eligible waiting operation, in this transaction.

    The caller holds the lock. Returns the operations now queued, in order.
    """
    if not Operation.objects.waiting().exists():
        return []
    config = settings.COORDHUB
    now = timezone.now()
    holders = Holders.now(now)
    given: list[Operation] = []
    while (candidate := next_in_line(holders.ineligible())) is not None:
        claimed = slots.take_a_slot(
            candidate, config.max_concurrent_operations, config.slot_lease_seconds
        )
        if isinstance(claimed, NoFreeSlot):
            break
        promote(candidate, claimed, now)
        holders.add(candidate)
        given.append(candidate)
    return given


def next_in_line(ineligible: Q) -> Operation | None:
    """The waiting operation to serve next, skipping the `ineligible`.

    Locked, skipping one being cancelled right now (which holds its row).
    """
    waiting = Operation.objects.waiting().exclude(ineligible)
    return in_order(waiting).select_for_update(skip_locked=True).first()


def in_order(waiting: OperationQuerySet) -> OperationQuerySet:
    """`waiting` in the order the line serves it."""
    served = ClientTurn.objects.filter(client_key=OuterRef("client_key")).values("served_at")
    return waiting.annotate(served_at=Subquery(served[:1])).order_by(
        F("moved_to_front_at").desc(nulls_last=True),
        F("served_at").asc(nulls_first=True),
        "created_at",
        "id",
    )


def promote(operation: Operation, hold: slots.Hold, now: datetime) -> None:
    """Waiting → queued on `hold`'s slot, enqueued, its wait recorded."""
    operation.status = Status.QUEUED
    operation.message = QUEUED_MESSAGE
    operation.waited_seconds = max(0.0, (now - operation.created_at).total_seconds())
    enqueueing.hand_to_worker(operation, hold)
    Operation.objects.filter(pk=operation.pk, status=Status.WAITING).update(
        status=Status.QUEUED,
        message=QUEUED_MESSAGE,
        waited_seconds=operation.waited_seconds,
        task_id=operation.task_id,
    )
    mark_served(operation.client_key, now)
    counters.add(counters.ALLOCATIONS)


def mark_served(client_key: str, now: datetime) -> None:
    """Record that `client_key` was given a slot at `now`: it goes to the back of the turn."""
    ClientTurn.objects.bulk_create(
        [ClientTurn(client_key=client_key, served_at=now)],
        update_conflicts=True,
        unique_fields=["client_key"],
        update_fields=["served_at"],
    )


def release(hold: slots.Hold) -> bool:
    """Free the slot if it is still this holder's and hand it to the line; say whether it was."""
    with transaction.atomic(savepoint=False), counters.counted():
        serialise()
        if not slots.release(hold):
            return False
        hand_over()
    return True


def release_operation(operation_id: uuid.UUID) -> bool:
    """Free whatever slot `operation_id` holds (ending a queued operation), for the line."""
    for hold in slots.holds_of(operation_id):
        return release(hold)
    return False


def reclaim_expired() -> int:
    """Free every slot whose lease ran out, failing its orphan, each straight to the line.

    Return how many were freed.
    """
    now = timezone.now()
    reclaimed = 0
    for slot in Slot.objects.expired(now):
        with transaction.atomic(), counters.counted():
            serialise()
            if slots.reclaim(slot, now):
                reclaimed += 1
                hand_over()
    return reclaimed


def move_to_front(operations: OperationQuerySet) -> list[Operation]:
    """Put the waiting ones of `operations` at the front of the line; return them.

    The latest moved is served first. A slot free at this moment is handed over
    in the same transaction, so a moved operation that may take it does.
    """
    with transaction.atomic(), counters.counted():
        serialise()
        moved = list(operations.waiting().order_by("-created_at"))
        now = timezone.now()
        for offset, operation in enumerate(moved):  # the oldest of them latest: served first
            operation.moved_to_front_at = now + timedelta(microseconds=offset)
            operation.save(update_fields=["moved_to_front_at"])
        hand_over()
    return moved


def fill() -> list[Operation]:
    """Hand over whatever slot is free to the line, in a transaction of its own (the sweep)."""
    with transaction.atomic(), counters.counted():
        serialise()
        return hand_over()
